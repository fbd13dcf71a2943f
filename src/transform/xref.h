/*
 * The cross-reference tables the hub's jq programs see as `$xref` (and
 * `xref(TABLE; KEY)`): the config's tables overlaid with the entries added
 * through the API (`PUT /v1/xref/{table}/{key}`, kept in the store). One set
 * per process, shared by every thread behind a mutex; a version number
 * says when it changed, and each compiled program (transform.c) rebuilds
 * its own `$xref` value from it on its next run. No jq value crosses
 * threads: this file holds plain strings.
 *
 * Until xd_xref_use_config() is called (the hub does at start) the set is
 * inactive and programs see the config they were compiled with, as
 * `crossdock check` and `crossdock rate` do.
 */
#ifndef XD_XREF_H
#define XD_XREF_H

#include <stdint.h>

struct xd_config;

/* Takes (copies) cfg's tables as the base, keeps the overlay; activates. 0 or XD_ENOMEM. */
int xd_xref_use_config(const struct xd_config *cfg);
/* Adds or replaces an overlay entry (API). 0 or XD_ENOMEM / XD_EINVAL. */
int xd_xref_set(const char *table, const char *key, const char *value);
/* Removes an overlay entry; the config's entry, if any, shows again. 1 removed, 0 none. */
int xd_xref_unset(const char *table, const char *key);
/* Is TABLE.KEY in the merged tables? */
int xd_xref_has(const char *table, const char *key);
/* 0 while inactive; otherwise changes with every change. */
uint64_t xd_xref_version(void);
/*
 * Calls cb for every entry, the config's first and then the overlay's (so a
 * later call for the same table and key wins; api says which), under the
 * lock: cb must not call back into this file.
 */
void xd_xref_each(void (*cb)(void *ctx, const char *table, const char *key, const char *value,
                             int api),
                  void *ctx);
/* Frees everything and deactivates (hub stop, tests). */
void xd_xref_reset(void);

#endif
