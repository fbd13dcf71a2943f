/*
 * The audit log: an append-only, hash-chained record of every change and
 * operator action (config loads, replays, exception changes, billing period
 * closes, any use of an `ops` or `admin` key to change something). Entries
 * live in the store (store.h: xd_store_audit_append) and are chained by
 * hash (chain.h); `crossdock audit verify` walks the chain, GET /v1/audit
 * lists it. docs/security.md says what it proves and what it does not.
 *
 * When. An action is recorded right after it succeeded (or, for HTTP, was
 * answered), in its own group commit, and before the caller is told: an
 * operator who got an answer knows the entry is on disk. The action and its
 * entry are two commits, so a crash between them can leave an action
 * without its entry; never an entry for an action that did not happen.
 *
 * Every function here redacts registered secrets (core/redact.h) from what
 * it records, logs the entry (seq, action, actor, hash) at info level — a
 * shipped log is an outside copy of the chain's heads — and logs a failure
 * to record at error level with the whole entry. They return 0 or the
 * store's error; callers need not act on it (the action is done).
 */
#ifndef XD_AUDIT_H
#define XD_AUDIT_H

#include <stddef.h>

struct xd_config;
struct xd_store;

/* The actor of a local command: "local:USER" (the effective user), into out. */
void xd_audit_local_actor(char *out, size_t n);

/* Records one entry; object may be NULL (""), detail a JSON object's text or NULL ({}). */
int xd_audit_record(struct xd_store *s, const char *actor, const char *action, const char *object,
                    const char *detail);

/*
 * Keeps the command line as typed (main() calls it before any getopt()
 * reorders argv): up to 64 arguments from the command's name on, pointers
 * only (argv's strings live as long as the process).
 */
void xd_audit_argv(int argc, char **argv);

/*
 * Records an action of a local command (`crossdock dlq replay`, `billing
 * close`): actor "local:USER", detail {"argv": [the command line as typed],
 * MEMBERS} where MEMBERS is fmt's output, JSON object members such as
 * "\"replayed\":3" (fmt may be NULL).
 */
int xd_audit_cli(struct xd_store *s, const char *action, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Records a config load (reason: "start", "reload"): object the config's
 * path; detail the SHA-256 and size of the file as read now, the key ids
 * (never secrets), the counts of targets and routes, and the process id.
 */
int xd_audit_config_load(struct xd_store *s, const struct xd_config *cfg, const char *reason);

#endif
