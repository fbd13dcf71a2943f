/*
 * The configuration's key tables (internal to core/config*.c). Every struct
 * in config.h that YAML fills has a table of keys {key, type, default,
 * offset, help}; the loader (config.c) walks the YAML document with them,
 * and the same tables give defaults, destruction and the docs rows
 * (xd_config_describe). The tables and the checks that need more than one
 * key (a postgres store needs a url, a step names a defined target) live in
 * config_keys.c. As Fluent Bit's config_map: add a key by adding a row.
 */
#ifndef XD_CONFIG_MAP_H
#define XD_CONFIG_MAP_H

#include "core/config.h"

#include <stddef.h>
#include <yaml.h>

enum xd_ctype {
    XD_CT_STR,     /* char *; any non-null scalar, numbers keep their text */
    XD_CT_UINT,    /* unsigned */
    XD_CT_SIZE,    /* size_t; also 64KiB, 1MiB, 1GiB */
    XD_CT_BOOL,    /* int; true | false */
    XD_CT_STRLIST, /* char ** at off, size_t count at off_n; a lone scalar is a list of one */
    XD_CT_SCOPES,  /* unsigned XD_SCOPE_* bits from a list of scope names */
    XD_CT_PAIRS,   /* {char *, char *} array at off, count at off_n, from a map of scalars */
    XD_CT_TABLE,   /* a nested struct at off, read with sub */
    XD_CT_LIST,    /* array of sub structs at off, count at off_n, from a sequence */
    XD_CT_MAP,     /* array of sub structs at off, count at off_n, from a map NAME -> struct */
    XD_CT__COUNT
};

#define XD_CF_REQUIRED 1u /* must be present */
#define XD_CF_NONZERO  2u /* numbers: greater than 0; lists and maps: not empty */
#define XD_CF_INTERNAL 4u /* not read from YAML: set by code, freed with the rest */
#define XD_CF_SECRET   8u /* wiped before it is freed */

struct xd_cfg_walk; /* the loader's state, passed to the checks */
struct xd_cfg_struct;

/* A check on a string value: NULL when fine, else the problem ("must be ..."). */
typedef const char *xd_cfg_check_fn(const char *s);

struct xd_cfg_key {
    const char *key;
    enum xd_ctype type;
    const char *def;            /* default, as YAML text; NULL: none */
    size_t off;                 /* offsetof the field in the struct */
    size_t off_n;               /* LIST, MAP, STRLIST, PAIRS: offsetof the size_t count */
    size_t pos_off;             /* offsetof + 1 of a struct xd_config_pos for the value; 0: none */
    unsigned flags;             /* XD_CF_* */
    const char *const *choices; /* STR: the allowed values, NULL-terminated */
    xd_cfg_check_fn *check;     /* STR, STRLIST items, PAIRS values */
    xd_cfg_check_fn *check_key; /* PAIRS keys, MAP names */
    const struct xd_cfg_struct *sub; /* TABLE, LIST, MAP */
    const char *doc_type;            /* type column of the docs when not the type's own name */
    const char *help;                /* one sentence or two, Markdown */
};

/*
 * Validates what one key alone cannot (called after the struct's keys were
 * read, also when some of them were wrong: fields may be NULL). node is the
 * struct's YAML node (maybe a null scalar), path its name ("targets.erp").
 */
typedef void xd_cfg_validate_fn(struct xd_cfg_walk *w, void *base, const yaml_node_t *node,
                                const char *path);

struct xd_cfg_struct {
    const char *what; /* "target": named in the docs ("map of target") */
    size_t size;      /* sizeof the struct */
    const struct xd_cfg_key *keys;
    size_t nkeys;
    size_t name_off;                /* MAP elements: offsetof + 1 of the char *name */
    size_t pos_off;                 /* offsetof + 1 of its struct xd_config_pos; 0: none */
    const struct xd_cfg_key *value; /* MAP elements that are one value, not a mapping (xref) */
    xd_cfg_validate_fn *validate;
};

extern const struct xd_cfg_struct xd_cfg_root; /* struct xd_config */

/* For the checks: record a problem at node (1-based line/col taken from it). */
void xd_cfg_error(struct xd_cfg_walk *w, const yaml_node_t *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The value node of key in mapping map; NULL when map is not a mapping or has no such key. */
const yaml_node_t *xd_cfg_find(struct xd_cfg_walk *w, const yaml_node_t *map, const char *key);
/* Item i of a sequence; NULL when seq is not a sequence or too short. */
const yaml_node_t *xd_cfg_item(struct xd_cfg_walk *w, const yaml_node_t *seq, size_t i);
/*
 * Reports every name that equals an earlier one in names[0..n), at at[i]:
 * "LIST[i].FIELD: duplicate WHAT 'NAME' (first at line L)" (FIELD may be
 * NULL). NULL names are skipped. O(n log n).
 */
void xd_cfg_dups(struct xd_cfg_walk *w, const char *const *names, const yaml_node_t *const *at,
                 size_t n, const char *list, const char *field, const char *what);
/* Set when memory ran out; the load then fails. */
void xd_cfg_oom(struct xd_cfg_walk *w);

#endif
