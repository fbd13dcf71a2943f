/*
 * The configuration loader: libyaml composes the document (aliases
 * resolved, every node with its position), then one walk over it guided by
 * the key tables of config_keys.c fills the structs of config.h. Nothing
 * stops at the first problem: each one is recorded with its position, and
 * at the end they are sorted by position and written as FILE:LINE:COL lines.
 *
 * Robustness: the walk only goes where the tables lead, so its depth is
 * bounded whatever the YAML nests (an alias may even point at its own
 * ancestor). Aliases may make the same nodes be read many times (the
 * "billion laughs"); reads of a node already read are counted and the load
 * stops past XD_CFG_MAX_REVISITS. libyaml itself slows down with the square
 * of the nesting depth ("[[[[..."), so a first pass over its events refuses
 * anything nested deeper than XD_CFG_MAX_DEPTH before the document is built.
 */
#include "core/buf.h"
#include "core/config_map.h"
#include "core/err.h"

#include <errno.h>
#include <stdarg.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define XD_CFG_MAX_REVISITS (1u << 20) /* node reads through aliases, beyond the first */
#define XD_CFG_MAX_ERRORS   1000       /* problems listed; the rest are counted */
#define XD_CFG_MAX_KEYS     32         /* keys in one table */
#define XD_CFG_MAX_DEPTH    64         /* nesting of YAML collections; the schema needs 7 */
#define PATH_MAX_LEN        512        /* "routes[3].steps[1].deliver", clipped when longer */

struct cfg_err {
    unsigned line, col; /* 1-based; 0 when the problem has no position */
    size_t seq;         /* order found, to keep the sort stable */
    char *msg;
};

struct xd_cfg_walk {
    yaml_document_t *doc;
    const char *name;
    struct cfg_err *errs;
    size_t nerrs, cap, dropped, seq;
    unsigned char *visited; /* per node: read once already */
    size_t revisits;
    int stop; /* too many revisits: read nothing more */
    int oom;
};

/* ---- problems ----------------------------------------------------------- */

static void add_error(struct xd_cfg_walk *w, unsigned line, unsigned col, const char *fmt,
                      va_list ap)
{
    if (w->nerrs == XD_CFG_MAX_ERRORS) {
        w->dropped++;
        return;
    }
    if (w->nerrs == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 16;
        struct cfg_err *e = realloc(w->errs, cap * sizeof *e);
        if (!e) {
            w->oom = 1;
            return;
        }
        w->errs = e;
        w->cap = cap;
    }
    struct xd_buf b;
    xd_buf_init(&b);
    xd_buf_vprintf(&b, fmt, ap);
    if (b.oom) {
        xd_buf_dispose(&b);
        w->oom = 1;
        return;
    }
    /* One line per problem, whatever the YAML's keys and values contain. */
    for (size_t i = 0; i < b.len; i++)
        if ((unsigned char)b.data[i] < ' ' || b.data[i] == 0x7f)
            b.data[i] = '?';
    w->errs[w->nerrs++] = (struct cfg_err){line, col, w->seq++, xd_buf_steal(&b)};
}

void xd_cfg_error(struct xd_cfg_walk *w, const yaml_node_t *at, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    unsigned line = at ? (unsigned)at->start_mark.line + 1 : 0;
    unsigned col = at ? (unsigned)at->start_mark.column + 1 : 0;
    add_error(w, line, col, fmt, ap);
    va_end(ap);
}

static void error_at(struct xd_cfg_walk *w, unsigned line, unsigned col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void error_at(struct xd_cfg_walk *w, unsigned line, unsigned col, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    add_error(w, line, col, fmt, ap);
    va_end(ap);
}

void xd_cfg_oom(struct xd_cfg_walk *w)
{
    w->oom = 1;
}

static int cmp_err(const void *a, const void *b)
{
    const struct cfg_err *x = a, *y = b;
    if (x->line != y->line)
        return x->line < y->line ? -1 : 1;
    if (x->col != y->col)
        return x->col < y->col ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Writes the problems, sorted by position, to out (which may be NULL); frees them. */
static void flush_errors(struct xd_cfg_walk *w, struct xd_buf *out)
{
    if (w->nerrs)
        qsort(w->errs, w->nerrs, sizeof *w->errs, cmp_err);
    for (size_t i = 0; i < w->nerrs; i++) {
        const struct cfg_err *e = &w->errs[i];
        if (out && e->line)
            xd_buf_printf(out, "%s:%u:%u: %s\n", w->name, e->line, e->col, e->msg);
        else if (out)
            xd_buf_printf(out, "%s: %s\n", w->name, e->msg);
        free(e->msg);
    }
    if (out && w->dropped)
        xd_buf_printf(out, "%s: %zu more problems not listed\n", w->name, w->dropped);
    if (out && w->oom)
        xd_buf_printf(out, "%s: %s\n", w->name, xd_strerror(XD_ENOMEM));
    free(w->errs);
    w->errs = NULL;
    w->nerrs = w->cap = 0;
}

/* ---- nodes -------------------------------------------------------------- */

static const char *sval(const yaml_node_t *n)
{
    return (const char *)n->data.scalar.value;
}

/* A plain ~, null or nothing: the key is there without a value. */
static int is_null(const yaml_node_t *n)
{
    if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return 0;
    static const char *const nulls[] = {"", "~", "null", "Null", "NULL"};
    for (size_t i = 0; i < sizeof nulls / sizeof nulls[0]; i++)
        if (strcmp(sval(n), nulls[i]) == 0)
            return 1;
    return 0;
}

static const yaml_node_t *node_at(struct xd_cfg_walk *w, int index)
{
    return yaml_document_get_node(w->doc, index);
}

/* Marks n read; 0 when reading must stop (aliases expanded too far). */
static int visit(struct xd_cfg_walk *w, const yaml_node_t *n)
{
    if (w->stop || !n)
        return 0;
    size_t i = (size_t)(n - w->doc->nodes.start);
    if (!w->visited[i]) {
        w->visited[i] = 1;
        return 1;
    }
    if (++w->revisits <= XD_CFG_MAX_REVISITS)
        return 1;
    xd_cfg_error(w, n, "aliases expand to too many values (over %u repeated); stopped reading",
                 XD_CFG_MAX_REVISITS);
    w->stop = 1;
    return 0;
}

const yaml_node_t *xd_cfg_find(struct xd_cfg_walk *w, const yaml_node_t *map, const char *key)
{
    if (!map || map->type != YAML_MAPPING_NODE)
        return NULL;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        const yaml_node_t *k = node_at(w, p->key);
        if (k && k->type == YAML_SCALAR_NODE && strcmp(sval(k), key) == 0)
            return node_at(w, p->value);
    }
    return NULL;
}

const yaml_node_t *xd_cfg_item(struct xd_cfg_walk *w, const yaml_node_t *seq, size_t i)
{
    if (!seq || seq->type != YAML_SEQUENCE_NODE)
        return NULL;
    if (i >= (size_t)(seq->data.sequence.items.top - seq->data.sequence.items.start))
        return NULL;
    return node_at(w, seq->data.sequence.items.start[i]);
}

static void join(char *out, const char *path, const char *key)
{
    snprintf(out, PATH_MAX_LEN, "%s%s%.200s", path, *path ? "." : "", key);
}

static void join_idx(char *out, const char *path, size_t i)
{
    snprintf(out, PATH_MAX_LEN, "%s[%zu]", path, i);
}

static void set_pos(void *base, size_t pos_off, const yaml_node_t *n)
{
    if (!pos_off)
        return;
    struct xd_config_pos *p = (struct xd_config_pos *)((char *)base + pos_off - 1);
    p->line = (unsigned)n->start_mark.line + 1;
    p->col = (unsigned)n->start_mark.column + 1;
}

static const char *const type_names[] = {"a mapping", "a list", "a scalar"};

static void wrong_type(struct xd_cfg_walk *w, const yaml_node_t *n, const char *path,
                       const char *expect)
{
    if (is_null(n))
        xd_cfg_error(w, n, "%s: expected %s", path, expect);
    else if (n->type == YAML_SCALAR_NODE)
        xd_cfg_error(w, n, "%s: expected %s, not '%.60s'", path, expect, sval(n));
    else
        xd_cfg_error(w, n, "%s: expected %s, not %s", path, expect,
                     type_names[n->type == YAML_SEQUENCE_NODE ? 1 : 0]);
}

/* A scalar usable as text, or reports why not: NULL. */
static const char *text_of(struct xd_cfg_walk *w, const yaml_node_t *n, const char *path,
                           const char *expect)
{
    if (n->type != YAML_SCALAR_NODE || is_null(n)) {
        wrong_type(w, n, path, expect);
        return NULL;
    }
    if (strlen(sval(n)) != n->data.scalar.length) {
        xd_cfg_error(w, n, "%s: must not contain a NUL character", path);
        return NULL;
    }
    return sval(n);
}

/* ---- reading values, one function per type ------------------------------ */

static void *field(void *base, size_t off)
{
    return (char *)base + off;
}

static int set_str(struct xd_cfg_walk *w, char **slot, const char *s)
{
    char *copy = strdup(s);
    if (!copy) {
        w->oom = 1;
        return -1;
    }
    free(*slot);
    *slot = copy;
    return 0;
}

/* Runs the choices and the check of k on s; 0 when s passes. */
static int check_text(struct xd_cfg_walk *w, const struct xd_cfg_key *k, xd_cfg_check_fn *check,
                      const yaml_node_t *n, const char *path, const char *s)
{
    if (!*s) {
        xd_cfg_error(w, n, "%s: must not be empty", path);
        return -1;
    }
    if (k->choices) {
        size_t i, count = 0;
        for (i = 0; k->choices[i]; i++)
            if (strcmp(k->choices[i], s) == 0)
                return 0;
        count = i;
        struct xd_buf b;
        xd_buf_init(&b);
        for (i = 0; i < count; i++)
            xd_buf_printf(&b, "%s%s", i == 0 ? "" : i + 1 == count ? " or " : ", ", k->choices[i]);
        xd_cfg_error(w, n, "%s: must be %s, not '%.60s'", path, xd_buf_str(&b), s);
        xd_buf_dispose(&b);
        return -1;
    }
    const char *why = check ? check(s) : NULL;
    if (why) {
        xd_cfg_error(w, n, "%s: %s, not '%.60s'", path, why, s);
        return -1;
    }
    return 0;
}

static void parse_str(struct xd_cfg_walk *w, const struct xd_cfg_key *k, void *base,
                      const yaml_node_t *n, const char *path)
{
    const char *s = text_of(w, n, path, "a string");
    if (s && check_text(w, k, k->check, n, path, s) == 0)
        set_str(w, field(base, k->off), s);
}

enum num_result { NUM_OK, NUM_NOT, NUM_NEG, NUM_BIG };

/* Digits (and for sizes a KiB/MiB/GiB suffix) into *out, at most max. */
static enum num_result parse_num(const char *s, uint64_t max, int units, uint64_t *out)
{
    static const struct {
        const char *suffix;
        uint64_t mult;
    } suffixes[] = {{"", 1}, {"KiB", 1u << 10}, {"MiB", 1u << 20}, {"GiB", 1u << 30}};
    const char *p = s;
    if (*p == '-' && p[1] >= '0' && p[1] <= '9')
        return NUM_NEG;
    if (*p == '+')
        p++;
    uint64_t v = 0;
    int big = 0;
    const char *d = p;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (v > (UINT64_MAX - 9) / 10)
            big = 1;
        else
            v = v * 10 + (uint64_t)(*p - '0');
    }
    if (p == d)
        return NUM_NOT;
    for (size_t i = 0; i < (units ? 4u : 1u); i++) {
        if (strcmp(p, suffixes[i].suffix) != 0)
            continue;
        if (big || v > max / suffixes[i].mult)
            return NUM_BIG;
        *out = v * suffixes[i].mult;
        return NUM_OK;
    }
    return NUM_NOT;
}

static void parse_number(struct xd_cfg_walk *w, const struct xd_cfg_key *k, void *base,
                         const yaml_node_t *n, const char *path)
{
    int size = k->type == XD_CT_SIZE;
    uint64_t max = size ? (uint64_t)SIZE_MAX : (uint64_t)UINT32_MAX, v = 0;
    const char *s = text_of(w, n, path, "an integer");
    if (!s)
        return;
    switch (parse_num(s, max, size, &v)) {
    case NUM_NOT:
        wrong_type(w, n, path, size ? "an integer (or with KiB, MiB, GiB)" : "an integer");
        return;
    case NUM_NEG:
        xd_cfg_error(w, n, "%s: must not be negative", path);
        return;
    case NUM_BIG:
        xd_cfg_error(w, n, "%s: is too large (at most %llu)", path, (unsigned long long)max);
        return;
    case NUM_OK:
        break;
    }
    if (v == 0 && (k->flags & XD_CF_NONZERO)) {
        xd_cfg_error(w, n, "%s: must be greater than 0", path);
        return;
    }
    if (size)
        *(size_t *)field(base, k->off) = (size_t)v;
    else
        *(unsigned *)field(base, k->off) = (unsigned)v;
}

static int bool_of(const char *s, int *out)
{
    static const char *const words[] = {"false", "False", "FALSE", "true", "True", "TRUE"};
    for (int i = 0; i < 6; i++)
        if (strcmp(s, words[i]) == 0) {
            *out = i >= 3;
            return 0;
        }
    return -1;
}

static void parse_bool(struct xd_cfg_walk *w, const struct xd_cfg_key *k, void *base,
                       const yaml_node_t *n, const char *path)
{
    const char *s = text_of(w, n, path, "true or false");
    int v;
    if (!s)
        return;
    if (bool_of(s, &v) < 0) {
        wrong_type(w, n, path, "true or false");
        return;
    }
    *(int *)field(base, k->off) = v;
}

/* The items of a list key; a lone scalar is a list of one. */
static size_t list_items(const yaml_node_t *n, yaml_node_item_t **items, yaml_node_item_t *one,
                         struct xd_cfg_walk *w)
{
    if (n->type == YAML_SEQUENCE_NODE) {
        *items = n->data.sequence.items.start;
        return (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
    }
    *one = (yaml_node_item_t)(n - w->doc->nodes.start + 1);
    *items = one;
    return 1;
}

static void parse_strlist(struct xd_cfg_walk *w, const struct xd_cfg_key *k, void *base,
                          const yaml_node_t *n, const char *path)
{
    yaml_node_item_t *items, one;
    if (n->type == YAML_MAPPING_NODE) {
        wrong_type(w, n, path, "a list of strings");
        return;
    }
    size_t count = list_items(n, &items, &one, w);
    if (count == 0) {
        if (k->flags & XD_CF_NONZERO)
            xd_cfg_error(w, n, "%s: must not be empty", path);
        return;
    }
    char **arr = calloc(count, sizeof *arr);
    if (!arr) {
        w->oom = 1;
        return;
    }
    *(char ***)field(base, k->off) = arr;
    size_t got = 0;
    for (size_t i = 0; i < count; i++) {
        const yaml_node_t *it = node_at(w, items[i]);
        char sub[PATH_MAX_LEN];
        if (n->type == YAML_SEQUENCE_NODE)
            join_idx(sub, path, i);
        else
            snprintf(sub, sizeof sub, "%s", path);
        if (n->type == YAML_SEQUENCE_NODE && !visit(w, it)) /* a lone scalar was read already */
            break;
        const char *s = text_of(w, it, sub, "a string");
        if (!s || check_text(w, k, k->check, it, sub, s) < 0)
            continue;
        arr[got] = strdup(s);
        if (!arr[got]) {
            w->oom = 1;
            break;
        }
        got++;
    }
    *(size_t *)field(base, k->off_n) = got;
}

static const char *const scope_names[] = {"events:write", "read", "ops", "admin"};

unsigned xd_scope_parse(const char *name)
{
    for (unsigned i = 0; i < 4; i++)
        if (strcmp(scope_names[i], name) == 0)
            return 1u << i;
    return 0;
}

const char *xd_scope_name(unsigned scope)
{
    for (unsigned i = 0; i < 4; i++)
        if (scope == 1u << i)
            return scope_names[i];
    return NULL;
}

static void parse_scopes(struct xd_cfg_walk *w, const struct xd_cfg_key *k, void *base,
                         const yaml_node_t *n, const char *path)
{
    yaml_node_item_t *items, one;
    if (n->type == YAML_MAPPING_NODE) {
        wrong_type(w, n, path, "a list of scopes");
        return;
    }
    size_t count = list_items(n, &items, &one, w);
    if (count == 0 && (k->flags & XD_CF_NONZERO))
        xd_cfg_error(w, n, "%s: must name at least one scope", path);
    unsigned bits = 0;
    for (size_t i = 0; i < count; i++) {
        const yaml_node_t *it = node_at(w, items[i]);
        char sub[PATH_MAX_LEN];
        if (n->type == YAML_SEQUENCE_NODE)
            join_idx(sub, path, i);
        else
            snprintf(sub, sizeof sub, "%s", path);
        if (n->type == YAML_SEQUENCE_NODE && !visit(w, it)) /* a lone scalar was read already */
            break;
        const char *s = text_of(w, it, sub, "a scope");
        if (!s)
            continue;
        unsigned bit = xd_scope_parse(s);
        if (!bit)
            xd_cfg_error(w, it, "%s: must be events:write, read, ops or admin, not '%.60s'", sub,
                         s);
        bits |= bit;
    }
    *(unsigned *)field(base, k->off) = bits;
}

/* The scalar keys of a mapping and which ones repeat an earlier one, in O(n log n). */
struct key_ref {
    const char *name;
    size_t i;
};

static int cmp_key_ref(const void *a, const void *b)
{
    const struct key_ref *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    if (c)
        return c;
    return x->i < y->i ? -1 : x->i > y->i;
}

/* Sets dup[i] for each key of mapping n that repeats one before it, and reports it. */
static int mark_dups(struct xd_cfg_walk *w, const yaml_node_t *n, const char *path,
                     unsigned char *dup)
{
    size_t count = (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
    struct key_ref *refs = calloc(count + 1, sizeof *refs);
    if (!refs) {
        w->oom = 1;
        return -1;
    }
    size_t m = 0;
    for (size_t i = 0; i < count; i++) {
        const yaml_node_t *kn = node_at(w, n->data.mapping.pairs.start[i].key);
        if (kn && kn->type == YAML_SCALAR_NODE)
            refs[m++] = (struct key_ref){sval(kn), i};
    }
    qsort(refs, m, sizeof *refs, cmp_key_ref);
    for (size_t i = 1, first = 0; i < m; i++) {
        if (strcmp(refs[i].name, refs[first].name) != 0) {
            first = i;
            continue;
        }
        const yaml_node_t *kn = node_at(w, n->data.mapping.pairs.start[refs[i].i].key);
        const yaml_node_t *fn = node_at(w, n->data.mapping.pairs.start[refs[first].i].key);
        xd_cfg_error(w, kn, "duplicate key '%.60s' in %s (first at line %u)", refs[i].name,
                     *path ? path : "the top level", (unsigned)fn->start_mark.line + 1);
        dup[refs[i].i] = 1;
    }
    free(refs);
    return 0;
}

void xd_cfg_dups(struct xd_cfg_walk *w, const char *const *names, const yaml_node_t *const *at,
                 size_t n, const char *list, const char *field_name, const char *what)
{
    struct key_ref *refs = calloc(n + 1, sizeof *refs);
    if (!refs) {
        w->oom = 1;
        return;
    }
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (names[i])
            refs[m++] = (struct key_ref){names[i], i};
    qsort(refs, m, sizeof *refs, cmp_key_ref);
    for (size_t i = 1, first = 0; i < m; i++) {
        if (strcmp(refs[i].name, refs[first].name) != 0) {
            first = i;
            continue;
        }
        const yaml_node_t *fn = at[refs[first].i];
        xd_cfg_error(w, at[refs[i].i], "%s[%zu]%s%s: duplicate %s '%.60s' (first at line %u)", list,
                     refs[i].i, field_name ? "." : "", field_name ? field_name : "", what,
                     refs[i].name, fn ? (unsigned)fn->start_mark.line + 1 : 0);
    }
    free(refs);
}

static void parse_pairs(struct xd_cfg_walk *w, const struct xd_cfg_key *k, void *base,
                        const yaml_node_t *n, const char *path)
{
    if (n->type != YAML_MAPPING_NODE) {
        wrong_type(w, n, path, "a mapping of names to values");
        return;
    }
    size_t count = (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
    if (count == 0)
        return;
    /* struct xd_header and struct xd_xref_entry: two strings */
    struct pair {
        char *k, *v;
    } *arr = calloc(count, sizeof *arr);
    unsigned char *dup = calloc(count, 1);
    if (!arr || !dup) {
        free(arr);
        free(dup);
        w->oom = 1;
        return;
    }
    *(struct pair **)field(base, k->off) = arr;
    size_t got = 0;
    if (mark_dups(w, n, path, dup) < 0)
        goto done;
    for (size_t i = 0; i < count; i++) {
        const yaml_node_t *kn = node_at(w, n->data.mapping.pairs.start[i].key);
        const yaml_node_t *vn = node_at(w, n->data.mapping.pairs.start[i].value);
        if (!visit(w, vn))
            break;
        char sub[PATH_MAX_LEN];
        const char *key = text_of(w, kn, path, "a name as key");
        if (!key || dup[i])
            continue;
        if (!*key) {
            xd_cfg_error(w, kn, "%s: a name must not be empty", path);
            continue;
        }
        join(sub, path, key);
        if (k->check_key && check_text(w, k, k->check_key, kn, sub, key) < 0)
            continue;
        const char *val = text_of(w, vn, sub, "a value");
        if (!val)
            continue;
        if (k->check) {
            const char *why = k->check(val);
            if (why) {
                xd_cfg_error(w, vn, "%s: %s", sub, why);
                continue;
            }
        }
        arr[got].k = strdup(key);
        arr[got].v = strdup(val);
        got++;
        if (!arr[got - 1].k || !arr[got - 1].v) {
            w->oom = 1;
            break;
        }
    }
done:
    *(size_t *)field(base, k->off_n) = got;
    free(dup);
}

static void apply_defaults(struct xd_cfg_walk *w, const struct xd_cfg_struct *s, void *base);
static void parse_struct(struct xd_cfg_walk *w, const struct xd_cfg_struct *s, void *base,
                         const yaml_node_t *n, const char *path);
static void parse_value(struct xd_cfg_walk *w, const struct xd_cfg_key *k, void *base,
                        const yaml_node_t *n, const char *path);

static void parse_table(struct xd_cfg_walk *w, const struct xd_cfg_key *k, void *base,
                        const yaml_node_t *n, const char *path)
{
    parse_struct(w, k->sub, field(base, k->off), n, path);
}

static void parse_list(struct xd_cfg_walk *w, const struct xd_cfg_key *k, void *base,
                       const yaml_node_t *n, const char *path)
{
    const struct xd_cfg_struct *sub = k->sub;
    if (n->type != YAML_SEQUENCE_NODE) {
        wrong_type(w, n, path, "a list");
        return;
    }
    size_t count = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
    if (count == 0) {
        if (k->flags & XD_CF_NONZERO)
            xd_cfg_error(w, n, "%s: must not be empty", path);
        return;
    }
    char *arr = calloc(count, sub->size);
    if (!arr) {
        w->oom = 1;
        return;
    }
    *(void **)field(base, k->off) = arr;
    *(size_t *)field(base, k->off_n) = count;
    for (size_t i = 0; i < count; i++) {
        char *elem = arr + i * sub->size;
        const yaml_node_t *it = node_at(w, n->data.sequence.items.start[i]);
        char sub_path[PATH_MAX_LEN];
        apply_defaults(w, sub, elem);
        set_pos(elem, sub->pos_off, it);
        join_idx(sub_path, path, i);
        parse_struct(w, sub, elem, it, sub_path);
    }
}

static void parse_map(struct xd_cfg_walk *w, const struct xd_cfg_key *k, void *base,
                      const yaml_node_t *n, const char *path)
{
    const struct xd_cfg_struct *sub = k->sub;
    if (n->type != YAML_MAPPING_NODE) {
        wrong_type(w, n, path, "a mapping of names");
        return;
    }
    size_t count = (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
    if (count == 0) {
        if (k->flags & XD_CF_NONZERO)
            xd_cfg_error(w, n, "%s: must not be empty", path);
        return;
    }
    char *arr = calloc(count, sub->size);
    unsigned char *dup = calloc(count, 1);
    if (!arr || !dup) {
        free(arr);
        free(dup);
        w->oom = 1;
        return;
    }
    *(void **)field(base, k->off) = arr;
    size_t got = 0;
    if (mark_dups(w, n, path, dup) < 0)
        goto done;
    for (size_t i = 0; i < count && !w->stop; i++) {
        const yaml_node_t *kn = node_at(w, n->data.mapping.pairs.start[i].key);
        const yaml_node_t *vn = node_at(w, n->data.mapping.pairs.start[i].value);
        const char *name = text_of(w, kn, path, "a name as key");
        char sub_path[PATH_MAX_LEN];
        if (!name || dup[i])
            continue;
        if (!*name) {
            xd_cfg_error(w, kn, "%s: a name must not be empty", path);
            continue;
        }
        join(sub_path, path, name);
        if (k->check_key && check_text(w, k, k->check_key, kn, sub_path, name) < 0)
            continue;
        char *elem = arr + got * sub->size;
        got++;
        apply_defaults(w, sub, elem);
        set_str(w, field(elem, sub->name_off - 1), name);
        set_pos(elem, sub->pos_off, kn);
        if (sub->value)
            parse_value(w, sub->value, elem, vn, sub_path);
        else
            parse_struct(w, sub, elem, vn, sub_path);
    }
done:
    *(size_t *)field(base, k->off_n) = got;
    free(dup);
}

/* ---- types: reading, defaults, freeing, docs ---------------------------- */

static void free_struct(const struct xd_cfg_struct *s, void *base);

static void free_str(const struct xd_cfg_key *k, void *base)
{
    char **slot = field(base, k->off);
    if (*slot && (k->flags & XD_CF_SECRET))
        OPENSSL_cleanse(*slot, strlen(*slot));
    free(*slot);
    *slot = NULL;
}

static void free_strlist(const struct xd_cfg_key *k, void *base)
{
    char **arr = *(char ***)field(base, k->off);
    size_t n = *(size_t *)field(base, k->off_n);
    for (size_t i = 0; arr && i < n; i++)
        free(arr[i]);
    free(arr);
}

static void free_pairs(const struct xd_cfg_key *k, void *base)
{
    char **arr = *(char ***)field(base, k->off);
    size_t n = *(size_t *)field(base, k->off_n);
    for (size_t i = 0; arr && i < 2 * n; i++)
        free(arr[i]);
    free(arr);
}

static void free_table(const struct xd_cfg_key *k, void *base)
{
    free_struct(k->sub, field(base, k->off));
}

static void free_array(const struct xd_cfg_key *k, void *base)
{
    char *arr = *(char **)field(base, k->off);
    size_t n = *(size_t *)field(base, k->off_n);
    for (size_t i = 0; arr && i < n; i++)
        free_struct(k->sub, arr + i * k->sub->size);
    free(arr);
}

static const struct ctype_ops {
    const char *doc; /* docs type column */
    void (*parse)(struct xd_cfg_walk *w, const struct xd_cfg_key *k, void *base,
                  const yaml_node_t *n, const char *path);
    void (*dispose)(const struct xd_cfg_key *k, void *base);
    int collection; /* a null value is an empty one */
} ctypes[XD_CT__COUNT] = {
    [XD_CT_STR] = {"string", parse_str, free_str, 0},
    [XD_CT_UINT] = {"integer", parse_number, NULL, 0},
    [XD_CT_SIZE] = {"size", parse_number, NULL, 0},
    [XD_CT_BOOL] = {"boolean", parse_bool, NULL, 0},
    [XD_CT_STRLIST] = {"list of string", parse_strlist, free_strlist, 1},
    [XD_CT_SCOPES] = {"list of scope", parse_scopes, NULL, 1},
    [XD_CT_PAIRS] = {"map of string", parse_pairs, free_pairs, 1},
    [XD_CT_TABLE] = {"mapping", parse_table, free_table, 1},
    [XD_CT_LIST] = {"list", parse_list, free_array, 1},
    [XD_CT_MAP] = {"map", parse_map, free_array, 1},
};

static void free_struct(const struct xd_cfg_struct *s, void *base)
{
    for (size_t i = 0; i < s->nkeys; i++)
        if (ctypes[s->keys[i].type].dispose)
            ctypes[s->keys[i].type].dispose(&s->keys[i], base);
}

/* Sets every default of s in base (recursing into nested tables). */
static void apply_defaults(struct xd_cfg_walk *w, const struct xd_cfg_struct *s, void *base)
{
    for (size_t i = 0; i < s->nkeys; i++) {
        const struct xd_cfg_key *k = &s->keys[i];
        uint64_t v = 0;
        int b = 0;
        if (k->type == XD_CT_TABLE)
            apply_defaults(w, k->sub, field(base, k->off));
        if (!k->def)
            continue;
        if (k->type == XD_CT_STR)
            set_str(w, field(base, k->off), k->def);
        else if (k->type == XD_CT_UINT && parse_num(k->def, UINT32_MAX, 0, &v) == NUM_OK)
            *(unsigned *)field(base, k->off) = (unsigned)v;
        else if (k->type == XD_CT_SIZE && parse_num(k->def, SIZE_MAX, 1, &v) == NUM_OK)
            *(size_t *)field(base, k->off) = (size_t)v;
        else if (k->type == XD_CT_BOOL && bool_of(k->def, &b) == 0)
            *(int *)field(base, k->off) = b;
    }
}

/* ---- the walk ----------------------------------------------------------- */

static void parse_value(struct xd_cfg_walk *w, const struct xd_cfg_key *k, void *base,
                        const yaml_node_t *n, const char *path)
{
    /* a nested table is marked read by parse_struct() */
    if (k->type == XD_CT_TABLE ? w->stop : !visit(w, n))
        return;
    set_pos(base, k->pos_off, n);
    if (is_null(n)) {
        /* Nothing given: the default stands; an empty collection may not. */
        if (ctypes[k->type].collection && (k->flags & XD_CF_NONZERO))
            xd_cfg_error(w, n, "%s: must not be empty", path);
        else if (k->flags & XD_CF_REQUIRED)
            xd_cfg_error(w, n, "%s: needs a value", path);
        if (k->type == XD_CT_TABLE)
            parse_struct(w, k->sub, field(base, k->off), n, path);
        return;
    }
    ctypes[k->type].parse(w, k, base, n, path);
}

/* Edit distance, for "did you mean"; large when either word is long. */
static size_t distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b), row[65];
    if (la > 64 || lb > 64)
        return SIZE_MAX;
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

static const struct xd_cfg_key *suggest(const struct xd_cfg_struct *s, const char *key)
{
    const struct xd_cfg_key *best = NULL;
    size_t best_d = strlen(key) >= 5 ? 3 : 2;
    for (size_t i = 0; i < s->nkeys; i++) {
        if (s->keys[i].flags & XD_CF_INTERNAL)
            continue;
        size_t d = distance(key, s->keys[i].key);
        if (d < best_d) {
            best_d = d;
            best = &s->keys[i];
        }
    }
    return best;
}

static void unknown_key(struct xd_cfg_walk *w, const struct xd_cfg_struct *s, const yaml_node_t *kn,
                        const char *path)
{
    const char *key = sval(kn);
    const struct xd_cfg_key *near = suggest(s, key);
    if (strcmp(key, "<<") == 0)
        xd_cfg_error(w, kn, "merge keys (<<) are not supported; use an alias for the whole value");
    else if (*path)
        xd_cfg_error(w, kn, "unknown key '%.60s' in %s%s%s%s", key, path,
                     near ? " (did you mean '" : "", near ? near->key : "", near ? "'?)" : "");
    else
        xd_cfg_error(w, kn, "unknown top-level key '%.60s'%s%s%s", key,
                     near ? " (did you mean '" : "", near ? near->key : "", near ? "'?)" : "");
}

static void parse_struct(struct xd_cfg_walk *w, const struct xd_cfg_struct *s, void *base,
                         const yaml_node_t *n, const char *path)
{
    const yaml_node_t *first[XD_CFG_MAX_KEYS] = {0};
    if (s->nkeys > XD_CFG_MAX_KEYS) {
        xd_cfg_error(w, n, "%s: internal error: more than %d keys in a table", path,
                     XD_CFG_MAX_KEYS);
        return;
    }
    if (!visit(w, n))
        return;
    if (n->type != YAML_MAPPING_NODE && !is_null(n)) {
        if (*path)
            wrong_type(w, n, path, "a mapping");
        else
            xd_cfg_error(w, n,
                         "the configuration must be a mapping of sections (server:, "
                         "store:, targets:, ...)");
        return;
    }
    size_t count = 0;
    if (n->type == YAML_MAPPING_NODE)
        count = (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
    for (size_t i = 0; i < count && !w->stop; i++) {
        const yaml_node_t *kn = node_at(w, n->data.mapping.pairs.start[i].key);
        const yaml_node_t *vn = node_at(w, n->data.mapping.pairs.start[i].value);
        if (!kn || !vn)
            continue;
        if (kn->type != YAML_SCALAR_NODE) {
            xd_cfg_error(w, kn, "%s%skeys must be names, not %s", path, *path ? ": " : "",
                         type_names[kn->type == YAML_SEQUENCE_NODE ? 1 : 0]);
            continue;
        }
        size_t ki = 0;
        while (ki < s->nkeys &&
               ((s->keys[ki].flags & XD_CF_INTERNAL) || strcmp(s->keys[ki].key, sval(kn)) != 0))
            ki++;
        if (ki == s->nkeys) {
            unknown_key(w, s, kn, path);
            continue;
        }
        if (first[ki]) {
            xd_cfg_error(w, kn, "duplicate key '%s' in %s (first at line %u)", s->keys[ki].key,
                         *path ? path : "the top level", (unsigned)first[ki]->start_mark.line + 1);
            continue;
        }
        first[ki] = kn;
        char sub[PATH_MAX_LEN];
        join(sub, path, s->keys[ki].key);
        parse_value(w, &s->keys[ki], base, vn, sub);
    }
    if (w->stop)
        return;
    for (size_t ki = 0; ki < s->nkeys; ki++)
        if ((s->keys[ki].flags & XD_CF_REQUIRED) && !first[ki])
            xd_cfg_error(w, n, "%s%smissing required key '%s'", path, *path ? ": " : "",
                         s->keys[ki].key);
    if (s->validate)
        s->validate(w, base, n, path);
}

/* A libyaml syntax error, at its position (reader errors give a byte offset). */
static void syntax_error(struct xd_cfg_walk *w, const yaml_parser_t *p, const char *text,
                         size_t len)
{
    unsigned line = (unsigned)p->problem_mark.line + 1, col = (unsigned)p->problem_mark.column + 1;
    if (p->error == YAML_MEMORY_ERROR) {
        w->oom = 1;
        return;
    }
    if (p->error == YAML_READER_ERROR) {
        line = col = 1;
        for (size_t i = 0; i < p->problem_offset && i < len; i++) {
            if (text[i] == '\n')
                line++, col = 1;
            else if (((unsigned char)text[i] & 0xc0) != 0x80)
                col++;
        }
        error_at(w, line, col, "not valid YAML: %s", p->problem ? p->problem : "unreadable");
        return;
    }
    if (p->context)
        error_at(w, line, col, "not valid YAML: %s (%s at line %u)",
                 p->problem ? p->problem : "syntax error", p->context,
                 (unsigned)p->context_mark.line + 1);
    else
        error_at(w, line, col, "not valid YAML: %s", p->problem ? p->problem : "syntax error");
}

/* The first pass: -1 (and a problem recorded) when the YAML nests too deep. */
static int check_depth(struct xd_cfg_walk *w, const char *text, size_t len)
{
    yaml_parser_t p;
    yaml_event_t ev;
    int depth = 0, rc = 0;
    if (!yaml_parser_initialize(&p)) {
        w->oom = 1;
        return -1;
    }
    yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
    while (yaml_parser_parse(&p, &ev)) { /* a syntax error is reported by the real pass */
        int end = ev.type == YAML_STREAM_END_EVENT;
        if (ev.type == YAML_SEQUENCE_START_EVENT || ev.type == YAML_MAPPING_START_EVENT)
            depth++;
        else if (ev.type == YAML_SEQUENCE_END_EVENT || ev.type == YAML_MAPPING_END_EVENT)
            depth--;
        if (depth > XD_CFG_MAX_DEPTH) {
            error_at(w, (unsigned)ev.start_mark.line + 1, (unsigned)ev.start_mark.column + 1,
                     "nested more than %d levels deep", XD_CFG_MAX_DEPTH);
            rc = -1;
            end = 1;
        }
        yaml_event_delete(&ev);
        if (end)
            break;
    }
    yaml_parser_delete(&p);
    return rc;
}

struct xd_config *xd_config_parse(const char *name, const char *text, size_t len,
                                  struct xd_buf *errs)
{
    struct xd_cfg_walk w = {.name = name};
    yaml_parser_t parser;
    yaml_document_t doc, more;
    int have_parser = 0, have_doc = 0;
    struct xd_config *cfg = calloc(1, sizeof *cfg);
    if (!cfg) {
        w.oom = 1;
        goto done;
    }
    apply_defaults(&w, &xd_cfg_root, cfg);
    set_str(&w, &cfg->path, name);
    if (check_depth(&w, text, len) < 0)
        goto done;
    if (!yaml_parser_initialize(&parser)) {
        w.oom = 1;
        goto done;
    }
    have_parser = 1;
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    if (!yaml_parser_load(&parser, &doc)) {
        syntax_error(&w, &parser, text, len);
        goto done;
    }
    have_doc = 1;
    w.doc = &doc;
    const yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (!root)
        goto done; /* an empty file: the defaults */

    /* One document only: a second one would be silently ignored otherwise. */
    for (;;) {
        if (!yaml_parser_load(&parser, &more)) {
            syntax_error(&w, &parser, text, len);
            break;
        }
        const yaml_node_t *r2 = yaml_document_get_root_node(&more);
        int last = !r2 || !is_null(r2); /* an empty document ("---" alone) is harmless */
        if (r2 && !is_null(r2))
            xd_cfg_error(&w, r2,
                         "a second YAML document: the configuration is one document "
                         "(remove the '---')");
        yaml_document_delete(&more);
        if (last)
            break;
    }

    w.visited = calloc((size_t)(doc.nodes.top - doc.nodes.start) + 1, 1);
    if (!w.visited) {
        w.oom = 1;
        goto done;
    }
    parse_struct(&w, &xd_cfg_root, cfg, root, "");

done:
    if (have_doc)
        yaml_document_delete(&doc);
    if (have_parser)
        yaml_parser_delete(&parser);
    free(w.visited);
    if (w.nerrs || w.oom || w.dropped) {
        flush_errors(&w, errs);
        xd_config_destroy(cfg);
        return NULL;
    }
    flush_errors(&w, errs);
    return cfg;
}

struct xd_config *xd_config_load(const char *path, struct xd_buf *errs)
{
    struct xd_buf text;
    char chunk[65536];
    xd_buf_init(&text);
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (errs)
            xd_buf_printf(errs, "%s: cannot open: %s\n", path, strerror(errno));
        return NULL;
    }
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        if (xd_buf_append(&text, chunk, n) < 0)
            break;
    int bad = ferror(f), err = errno;
    fclose(f);
    if (bad || text.oom) {
        if (errs)
            xd_buf_printf(errs, "%s: cannot read: %s\n", path,
                          text.oom ? xd_strerror(XD_ENOMEM) : strerror(err));
        xd_buf_dispose(&text);
        return NULL;
    }
    struct xd_config *cfg = xd_config_parse(path, xd_buf_str(&text), text.len, errs);
    xd_buf_dispose(&text);
    return cfg;
}

struct xd_config *xd_config_default(void)
{
    return xd_config_parse("(defaults)", "", 0, NULL);
}

void xd_config_destroy(struct xd_config *cfg)
{
    if (!cfg)
        return;
    free_struct(&xd_cfg_root, cfg);
    free(cfg);
}

/* ---- lookups ------------------------------------------------------------ */

const struct xd_key *xd_config_key_by_secret(const struct xd_config *cfg, const char *secret,
                                             size_t len)
{
    unsigned char digest[32];
    unsigned int mdlen = 0;
    if (!cfg || !secret || len == 0)
        return NULL;
    if (!EVP_Digest(secret, len, digest, &mdlen, EVP_sha256(), NULL))
        return NULL;
    /* Every key is compared, match or not, so timing says nothing about which matched. */
    size_t hit = cfg->auth.nkeys;
    for (size_t i = cfg->auth.nkeys; i-- > 0;) {
        const struct xd_key *k = &cfg->auth.keys[i];
        size_t eq = (size_t)(CRYPTO_memcmp(digest, k->secret_sha256, sizeof digest) == 0);
        size_t set = (size_t)(k->secret != NULL);
        size_t mask = (size_t)0 - (eq & set);
        hit = (i & mask) | (hit & ~mask); /* keeps the first match */
    }
    OPENSSL_cleanse(digest, sizeof digest);
    return hit < cfg->auth.nkeys ? &cfg->auth.keys[hit] : NULL;
}

const struct xd_target *xd_config_target(const struct xd_config *cfg, const char *name)
{
    for (size_t i = 0; cfg && name && i < cfg->ntargets; i++)
        if (strcmp(cfg->targets[i].name, name) == 0)
            return &cfg->targets[i];
    return NULL;
}

const char *xd_config_xref(const struct xd_config *cfg, const char *table, const char *key)
{
    for (size_t i = 0; cfg && table && key && i < cfg->nxref; i++) {
        const struct xd_xref_table *t = &cfg->xref[i];
        if (strcmp(t->name, table) != 0)
            continue;
        for (size_t j = 0; j < t->n; j++)
            if (strcmp(t->entries[j].key, key) == 0)
                return t->entries[j].value;
        return NULL;
    }
    return NULL;
}

const struct xd_partner *xd_config_partner(const struct xd_config *cfg, const char *id)
{
    for (size_t i = 0; cfg && id && i < cfg->npartners; i++)
        if (strcmp(cfg->partners[i].id, id) == 0)
            return &cfg->partners[i];
    return NULL;
}

/* ---- docs --------------------------------------------------------------- */

/* Appends s with Markdown table pipes escaped. */
static void put_cell(struct xd_buf *out, const char *s)
{
    for (; *s; s++) {
        if (*s == '|')
            xd_buf_putc(out, '\\');
        xd_buf_putc(out, *s);
    }
}

static void describe_type(struct xd_buf *out, const struct xd_cfg_key *k)
{
    if (k->choices) {
        for (size_t i = 0; k->choices[i]; i++)
            xd_buf_printf(out, "%s`%s`", i ? " \\| " : "", k->choices[i]);
    } else if (k->doc_type) {
        put_cell(out, k->doc_type);
    } else if (k->type == XD_CT_LIST || k->type == XD_CT_MAP) {
        xd_buf_printf(out, "%s of %s", ctypes[k->type].doc, k->sub->what);
    } else {
        xd_buf_puts(out, ctypes[k->type].doc);
    }
}

static void describe_row(struct xd_buf *out, const char *path, const struct xd_cfg_key *k)
{
    xd_buf_printf(out, "| `%s` | ", path);
    describe_type(out, k);
    if (k->def)
        xd_buf_printf(out, " | `%s` | ", k->def);
    else
        xd_buf_puts(out, (k->flags & XD_CF_REQUIRED) ? " | required | " : " | | ");
    put_cell(out, k->help ? k->help : "");
    xd_buf_puts(out, " |\n");
}

static void describe_struct(struct xd_buf *out, const struct xd_cfg_struct *s, const char *prefix)
{
    for (size_t i = 0; i < s->nkeys; i++) {
        const struct xd_cfg_key *k = &s->keys[i];
        char path[PATH_MAX_LEN], inner[PATH_MAX_LEN + 8];
        if (k->flags & XD_CF_INTERNAL)
            continue;
        snprintf(path, sizeof path, "%s%s", prefix, k->key);
        describe_row(out, path, k);
        if (k->type == XD_CT_TABLE) {
            snprintf(inner, sizeof inner, "%s.", path);
            describe_struct(out, k->sub, inner);
        } else if (k->type == XD_CT_LIST) {
            snprintf(inner, sizeof inner, "%s[].", path);
            describe_struct(out, k->sub, inner);
        } else if (k->type == XD_CT_MAP && k->sub->value) {
            snprintf(inner, sizeof inner, "%s.NAME", path);
            describe_row(out, inner, k->sub->value);
        } else if (k->type == XD_CT_MAP) {
            snprintf(inner, sizeof inner, "%s.NAME.", path);
            describe_struct(out, k->sub, inner);
        }
    }
}

int xd_config_describe(struct xd_buf *out)
{
    describe_struct(out, &xd_cfg_root, "");
    return out->oom ? XD_ENOMEM : 0;
}
