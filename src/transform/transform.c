/*
 * jq programs compiled once and run on events (see transform.h).
 *
 * The hot path is xd_jq_map(): cJSON event -> jv -> jq -> first output ->
 * JSON text. Text parsing with jv_parse() costs more than the whole mapping
 * (about 22 µs for a 550-byte event), so the event tree is converted node by
 * node instead, and object keys and short string values, which repeat from
 * one event to the next, come from a small per-program cache of jv strings
 * (jq keeps a string's hash inside it, so a cached key is neither allocated
 * nor hashed again).
 * The output is written straight into the caller's buffer by our own
 * writer, numbers through xd_json_write() so that a mapped document prints
 * its numbers exactly as every other JSON the hub writes.
 *
 * jq 1.6 quirks handled here: a jq_state has no default debug or input
 * callback (`debug` or `input` would crash the process), get_search_list
 * and module loading crash without JQ_LIBRARY_PATH, strftime/todate abort
 * on a number gmtime cannot convert, and indices("") never returns. The
 * prelude and the callbacks below close those off; the prelude is one line,
 * so jq's "line N" is the program's line N + 1.
 *
 * `$xref` is not compiled into the program: it is the jq_state's attribute
 * PROGRAM_ORIGIN (read by jq 1.6's get_prog_origin builtin, which the prelude
 * renames and hides; this hub loads no modules, its only other use), bound
 * once per run. When the process's tables change (transform/xref.h: an entry
 * added through the API, a config reload) each program rebuilds that value
 * on its next run, on its own thread, instead of being recompiled: setting
 * it costs one object build per program per change, a recompile several
 * milliseconds per program (docs/mapping.md has the figures).
 */
#include "transform/transform.h"
#include "transform/xref.h"
#include "core/buf.h"
#include "core/config.h"
#include "core/err.h"
#include "formats/json.h"

#include <jq.h>
#include <jv.h>

#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/*
 * Prepended to every program, all on one line. It shadows what a mapping
 * must not reach or what crashes jq 1.6 (see above), defines xref(), and
 * ends by binding `$ENV` to {} around the program itself (a program
 * argument cannot override jq's own `$ENV`). Nothing is appended after the
 * program, so a trailing `# comment` in it stays harmless.
 */
static const char prelude[] =
    "def env: {}; def stderr: .; def debug: .; def input_filename: null; "
    "def input: error(\"input is not available in a mapping\"); def inputs: empty; "
    "def modulemeta: error(\"modules are not available in a mapping\"); "
    "def get_search_list: []; "
    "def _xd_strftime($f): strftime($f); def _xd_strflocaltime($f): strflocaltime($f); "
    "def strftime($f): if type == \"number\" then gmtime | _xd_strftime($f) "
    "else _xd_strftime($f) end; "
    "def strflocaltime($f): if type == \"number\" then localtime | _xd_strflocaltime($f) "
    "else _xd_strflocaltime($f) end; "
    "def todateiso8601: strftime(\"%Y-%m-%dT%H:%M:%SZ\"); def todate: todateiso8601; "
    "def indices($i): if type == \"array\" and ($i|type) == \"array\" then .[$i] "
    "elif type == \"array\" then .[[$i]] "
    "elif type == \"string\" and ($i|type) == \"string\" then "
    "(if $i == \"\" then [] else _strindices($i) end) else .[$i] end; "
    "def index($i): indices($i) | .[0]; def rindex($i): indices($i) | .[-1:][0]; "
    "def _xd_xref: get_prog_origin; def get_prog_origin: null; def get_jq_origin: null; "
    "def xref($table; $key): (_xd_xref[$table][$key|tostring]) // "
    "error(\"xref \\($table): no entry for \\($key|tostring)\"); "
    "_xd_xref as $xref | {} as $ENV |\n";
#define PRELUDE_LINES 1

#define KEY_SLOTS     256  /* key cache: open addressing, a power of two */
#define KEY_MAX       192  /* at most this many keys cached (3/4 full) */
#define KEY_LONGEST   64   /* longer keys are not cached */
#define VALUE_SLOTS   256  /* value cache: direct-mapped, a power of two */
#define VALUE_LONGEST 24   /* longer string values are not cached */
#define MAX_DEPTH     1000 /* deepest output written (cJSON's own limit) */
#define MAX_MESSAGE   2048 /* longest error message kept, in bytes */

struct key_slot {
    uint32_t hash; /* FNV-1a of the string's bytes */
    uint32_t len;  /* its length in bytes */
    int used;      /* 0: free */
    jv key;        /* the string, one reference held by the cache */
};

/* Strings reused from one conversion to the next (one program's, one thread's). */
struct str_cache {
    size_t nkeys; /* slots used in keys[] */
    struct key_slot keys[KEY_SLOTS];
    struct key_slot values[VALUE_SLOTS];
};

struct xd_jq {
    jq_state *jq;
    struct xd_buf msgs;     /* what jq reported through the error callback, cleaned up */
    int multiline;          /* the program has several lines: messages name the line */
    uint64_t xref_version;  /* of transform/xref.h's tables when $xref was last set (0: cfg's) */
    struct str_cache cache; /* for converting this program's inputs */
};

struct xd_jq_input {
    jv value; /* the converted event, one reference */
};

/* ---- messages ---------------------------------------------------------- */

/* Cuts b back to at most start + MAX_MESSAGE bytes, on a UTF-8 boundary. */
static void cap_message(struct xd_buf *b, size_t start)
{
    if (!b->data || b->len - start <= MAX_MESSAGE)
        return;
    size_t n = start + MAX_MESSAGE - 3;
    while (n > start && ((unsigned char)b->data[n] & 0xc0) == 0x80)
        n--;
    b->len = n;
    b->data[n] = '\0';
    xd_buf_puts(b, "...");
}

static int write_top(struct xd_buf *b, jv v);

/* Appends a runtime error value (consumed) to err: a string as it is, anything else as JSON. */
static void put_error_value(struct xd_buf *err, jv msg)
{
    if (!err) {
        jv_free(msg);
        return;
    }
    size_t start = err->len;
    if (jv_get_kind(msg) == JV_KIND_STRING) {
        int n = jv_string_length_bytes(jv_copy(msg));
        const char *s = jv_string_value(msg);
        while (n > 0 && s[n - 1] == '\n') /* halt_error text usually ends with one */
            n--;
        xd_buf_append(err, s, (size_t)n);
    } else {
        xd_buf_puts(err, "error (not a string): ");
        write_top(err, msg); /* on failure the prefix alone */
    }
    cap_message(err, start);
    jv_free(msg);
}

/*
 * One message from jq's error callback during compilation, made readable:
 * "jq: error: foo/0 is not defined at <top-level>, line 2:\n<source line>"
 * becomes "foo/0 is not defined", plus " (program line 1)" for a program of
 * several lines. The summary "jq: 1 compile error" is dropped, and so is the
 * command-line hint "(Unix shell quoting issues?)".
 */
static void add_compile_message(struct xd_jq *p, const char *m)
{
    static const char at_line[] = " at <top-level>, line ";
    static const char hint[] = " (Unix shell quoting issues?)";
    long line = 0;
    if (strncmp(m, "jq: error: ", 11) == 0)
        m += 11;
    else if (strncmp(m, "jq: ", 4) == 0) {
        if (strstr(m, "compile error"))
            return;
        m += 4;
    }
    size_t n = strlen(m);
    const char *at = strstr(m, at_line);
    if (at) {
        line = strtol(at + sizeof at_line - 1, NULL, 10) - PRELUDE_LINES;
        n = (size_t)(at - m);
    }
    const char *nl = memchr(m, '\n', n); /* "\n<unknown location>" */
    if (nl)
        n = (size_t)(nl - m);
    if (p->msgs.len)
        xd_buf_puts(&p->msgs, "; ");
    const char *h = memmem(m, n, hint, sizeof hint - 1);
    if (h) {
        xd_buf_append(&p->msgs, m, (size_t)(h - m));
        xd_buf_append(&p->msgs, h + sizeof hint - 1, n - (size_t)(h - m) - (sizeof hint - 1));
    } else {
        xd_buf_append(&p->msgs, m, n);
    }
    if (p->multiline && line >= 1)
        xd_buf_printf(&p->msgs, " (program line %ld)", line);
}

static void on_error(void *data, jv msg)
{
    struct xd_jq *p = data;
    if (p->msgs.len < MAX_MESSAGE) { /* a runaway program cannot grow it */
        if (jv_get_kind(msg) == JV_KIND_STRING) {
            add_compile_message(p, jv_string_value(msg));
        } else if (jv_is_valid(msg)) {
            if (p->msgs.len)
                xd_buf_puts(&p->msgs, "; ");
            write_top(&p->msgs, msg);
        }
    }
    jv_free(msg);
}

/* `debug` is shadowed by the prelude; this only guards against jq calling a NULL callback. */
static void on_debug(void *data, jv msg)
{
    (void)data;
    jv_free(msg);
}

/* No further inputs: jq 1.6 calls a NULL input callback otherwise. */
static jv on_input(jq_state *jq, void *data)
{
    (void)jq;
    (void)data;
    return jv_invalid();
}

/* ---- cJSON -> jv -------------------------------------------------------- */

static uint32_t fnv1a(const char *s, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

static jv new_string(const char *s, size_t n)
{
    return jv_string_sized(s, (int)(n > INT_MAX ? INT_MAX : n));
}

/*
 * The key s as a jv string, from the key cache when it is there. Keys are
 * few and recur in every event, so the first KEY_MAX short ones stay for
 * the program's life (open addressing, never evicted).
 */
static jv key_jv(struct str_cache *p, const char *s)
{
    size_t n = strlen(s);
    if (!p || n > KEY_LONGEST || n == 0)
        return new_string(s, n);
    uint32_t h = fnv1a(s, n);
    for (uint32_t i = h & (KEY_SLOTS - 1);; i = (i + 1) & (KEY_SLOTS - 1)) {
        struct key_slot *k = &p->keys[i];
        if (!k->used) {
            jv v = new_string(s, n);
            if (p->nkeys >= KEY_MAX)
                return v;
            k->used = 1;
            k->hash = h;
            k->len = (uint32_t)n;
            k->key = jv_copy(v);
            p->nkeys++;
            return v;
        }
        if (k->hash == h && k->len == n && memcmp(jv_string_value(k->key), s, n) == 0)
            return jv_copy(k->key);
    }
}

/*
 * A string value. Short values often recur too ("DC1", "EA", "USD", the
 * event type) but so do one-off ids, so this cache is direct-mapped: a
 * new value takes its slot from whatever was there. A hit saves jq's
 * UTF-8 check, a malloc and a free.
 */
static jv value_jv(struct str_cache *p, const char *s)
{
    size_t n = strlen(s);
    if (!p || n > VALUE_LONGEST)
        return new_string(s, n);
    uint32_t h = fnv1a(s, n);
    struct key_slot *v = &p->values[h & (VALUE_SLOTS - 1)];
    if (v->used && v->hash == h && v->len == n && memcmp(jv_string_value(v->key), s, n) == 0)
        return jv_copy(v->key);
    jv str = new_string(s, n);
    if (v->used)
        jv_free(v->key);
    v->used = 1;
    v->hash = h;
    v->len = (uint32_t)n;
    v->key = jv_copy(str);
    return str;
}

/*
 * The cJSON tree as a jv (produced), strings through the cache p (or none,
 * when NULL). Its depth is bounded by the JSON parser.
 */
static jv to_jv(struct str_cache *p, const cJSON *c)
{
    const cJSON *x;
    switch (c->type & 0xff) {
    case cJSON_False:
        return jv_false();
    case cJSON_True:
        return jv_true();
    case cJSON_Number:
        return jv_number(c->valuedouble);
    case cJSON_String:
        return value_jv(p, c->valuestring ? c->valuestring : "");
    case cJSON_Raw: /* never made by our parser; taken at its word */
        return c->valuestring ? jv_parse(c->valuestring) : jv_null();
    case cJSON_Array: {
        int n = 0;
        for (x = c->child; x; x = x->next)
            n++;
        jv a = jv_array_sized(n);
        for (x = c->child; x; x = x->next)
            a = jv_array_append(a, to_jv(p, x));
        return a;
    }
    case cJSON_Object: {
        jv o = jv_object();
        for (x = c->child; x; x = x->next)
            o = jv_object_set(o, key_jv(p, x->string ? x->string : ""), to_jv(p, x));
        return o;
    }
    default: /* cJSON_NULL, cJSON_Invalid */
        return jv_null();
    }
}

/* ---- jv -> JSON text / cJSON -------------------------------------------- */

/*
 * Strings and numbers are printed by formats/json.c (xd_json_write_string,
 * xd_json_write_number), so a mapping's output has the hub's one JSON form.
 */
static int put(struct xd_buf *b, const char *s, size_t n)
{
    return xd_buf_append(b, s, n);
}

/* Appends v (borrowed) as compact JSON, numbers as xd_json_write() prints them. */
static int write_jv(struct xd_buf *b, jv v, int depth)
{
    int rc = 0;
    if (depth > MAX_DEPTH)
        return XD_ELIMIT;
    switch (jv_get_kind(v)) {
    case JV_KIND_NULL:
        return put(b, "null", 4);
    case JV_KIND_FALSE:
        return put(b, "false", 5);
    case JV_KIND_TRUE:
        return put(b, "true", 4);
    case JV_KIND_NUMBER:
        return xd_json_write_number(b, jv_number_value(v));
    case JV_KIND_STRING:
        return xd_json_write_string(b, jv_string_value(v),
                                    (size_t)jv_string_length_bytes(jv_copy(v)));
    case JV_KIND_ARRAY: {
        int n = jv_array_length(jv_copy(v));
        rc = put(b, "[", 1);
        for (int i = 0; i < n && rc == 0; i++) {
            if (i > 0)
                rc = put(b, ",", 1);
            jv e = jv_array_get(jv_copy(v), i);
            if (rc == 0)
                rc = write_jv(b, e, depth + 1);
            jv_free(e);
        }
        return rc < 0 ? rc : put(b, "]", 1);
    }
    case JV_KIND_OBJECT: {
        int first = 1;
        rc = put(b, "{", 1);
        for (int it = jv_object_iter(v); rc == 0 && jv_object_iter_valid(v, it);
             it = jv_object_iter_next(v, it)) {
            jv k = jv_object_iter_key(v, it);
            jv e = jv_object_iter_value(v, it);
            if (!first)
                rc = put(b, ",", 1);
            first = 0;
            if (rc == 0)
                rc = xd_json_write_string(b, jv_string_value(k),
                                          (size_t)jv_string_length_bytes(jv_copy(k)));
            if (rc == 0)
                rc = put(b, ":", 1);
            if (rc == 0)
                rc = write_jv(b, e, depth + 1);
            jv_free(k);
            jv_free(e);
        }
        return rc < 0 ? rc : put(b, "}", 1);
    }
    default: /* JV_KIND_INVALID never reaches here */
        return XD_EINVAL;
    }
}

/* write_jv() for a whole document: on failure b is as it was; NUL-terminated either way. */
static int write_top(struct xd_buf *b, jv v)
{
    size_t mark = b->len;
    int rc = write_jv(b, v, 0);
    if (rc < 0)
        b->len = mark;
    if (b->data)
        b->data[b->len] = '\0'; /* xd_buf keeps a byte for it */
    return rc;
}

/* v (borrowed) as a new cJSON tree; NULL when out of memory or too deep (*rc says which). */
static cJSON *to_cjson(jv v, int depth, int *rc)
{
    cJSON *c = NULL;
    if (depth > MAX_DEPTH) {
        *rc = XD_ELIMIT;
        return NULL;
    }
    switch (jv_get_kind(v)) {
    case JV_KIND_NULL:
        c = cJSON_CreateNull();
        break;
    case JV_KIND_FALSE:
        c = cJSON_CreateFalse();
        break;
    case JV_KIND_TRUE:
        c = cJSON_CreateTrue();
        break;
    case JV_KIND_NUMBER:
        c = cJSON_CreateNumber(jv_number_value(v));
        break;
    case JV_KIND_STRING:
        c = cJSON_CreateString(jv_string_value(v));
        break;
    case JV_KIND_ARRAY: {
        int n = jv_array_length(jv_copy(v));
        c = cJSON_CreateArray();
        for (int i = 0; c && i < n; i++) {
            jv e = jv_array_get(jv_copy(v), i);
            cJSON *ce = to_cjson(e, depth + 1, rc);
            jv_free(e);
            if (!ce || !cJSON_AddItemToArray(c, ce)) {
                cJSON_Delete(ce);
                cJSON_Delete(c);
                return NULL;
            }
        }
        break;
    }
    case JV_KIND_OBJECT:
        c = cJSON_CreateObject();
        for (int it = jv_object_iter(v); c && jv_object_iter_valid(v, it);
             it = jv_object_iter_next(v, it)) {
            jv k = jv_object_iter_key(v, it);
            jv e = jv_object_iter_value(v, it);
            cJSON *ce = to_cjson(e, depth + 1, rc);
            int ok = ce && cJSON_AddItemToObject(c, jv_string_value(k), ce);
            jv_free(k);
            jv_free(e);
            if (!ok) {
                cJSON_Delete(ce);
                cJSON_Delete(c);
                return NULL;
            }
        }
        break;
    default:
        *rc = XD_EINVAL;
        return NULL;
    }
    if (!c && *rc == 0)
        *rc = XD_ENOMEM;
    return c;
}

/* ---- compile and run ---------------------------------------------------- */

static void xref_add(void *ctx, const char *table, const char *key, const char *value, int api)
{
    (void)api;
    jv *all = ctx;
    jv tab = jv_object_get(jv_copy(*all), jv_string(table));
    if (!jv_is_valid(tab)) {
        jv_free(tab);
        tab = jv_object();
    } else {
        /* Take it out first: with one reference the set below is in place, not a copy. */
        *all = jv_object_delete(*all, jv_string(table));
    }
    tab = jv_object_set(tab, jv_string(key), jv_string(value));
    *all = jv_object_set(*all, jv_string(table), tab);
}

/* Sets $xref for p's next runs from the process's tables when they changed. */
static void xref_refresh(struct xd_jq *p)
{
    uint64_t v = xd_xref_version();
    if (v == 0 || v == p->xref_version)
        return;
    jv all = jv_object();
    xd_xref_each(xref_add, &all);
    jq_set_attr(p->jq, jv_string("PROGRAM_ORIGIN"), all);
    p->xref_version = v;
}

/* $xref: {TABLE: {KEY: "value"}} from the config. */
static jv xref_object(const struct xd_config *cfg)
{
    jv all = jv_object();
    for (size_t i = 0; cfg && i < cfg->nxref; i++) {
        const struct xd_xref_table *t = &cfg->xref[i];
        jv tab = jv_object();
        for (size_t j = 0; j < t->n; j++) {
            const struct xd_xref_entry *e = &t->entries[j];
            if (e->key)
                tab = jv_object_set(tab, jv_string(e->key),
                                    e->value ? jv_string(e->value) : jv_null());
        }
        all = jv_object_set(all, jv_string(t->name ? t->name : ""), tab);
    }
    return all;
}

/* The program has more than one line, trailing blank lines aside (YAML `|` ends with one). */
static int is_multiline(const char *s)
{
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    return memchr(s, '\n', n) != NULL;
}

static int is_blank(const char *s)
{
    for (; *s; s++)
        if (*s != ' ' && *s != '\t' && *s != '\n' && *s != '\r')
            return 0;
    return 1;
}

int xd_jq_compile(const char *program, const struct xd_config *cfg, struct xd_jq **out,
                  struct xd_buf *err)
{
    struct xd_jq *p = NULL;
    char *text = NULL;
    int rc;

    if (!program || !out)
        return XD_EINVAL;
    *out = NULL;
    if (is_blank(program)) {
        if (err)
            xd_buf_puts(err, "empty program");
        return XD_EPARSE;
    }
    size_t np = strlen(program);
    p = calloc(1, sizeof *p);
    text = malloc(sizeof prelude + np);
    if (!p || !text) {
        rc = XD_ENOMEM;
        goto fail;
    }
    memcpy(text, prelude, sizeof prelude - 1);
    memcpy(text + sizeof prelude - 1, program, np + 1);
    xd_buf_init(&p->msgs);
    p->multiline = is_multiline(program);

    p->jq = jq_init();
    if (!p->jq) {
        rc = XD_ENOMEM;
        goto fail;
    }
    jq_set_error_cb(p->jq, on_error, p);
    jq_set_debug_cb(p->jq, on_debug, p);
    jq_set_input_cb(p->jq, on_input, p);
    jq_set_attr(p->jq, jv_string("JQ_LIBRARY_PATH"), jv_array());

    jq_set_attr(p->jq, jv_string("PROGRAM_ORIGIN"), xref_object(cfg));
    xref_refresh(p); /* the process's tables, when the hub set them */
    if (!jq_compile_args(p->jq, text, jv_object())) { /* args consumed either way */
        if (err)
            xd_buf_puts(err, p->msgs.len ? xd_buf_str(&p->msgs) : "does not compile");
        rc = p->msgs.oom ? XD_ENOMEM : XD_EPARSE;
        goto fail;
    }
    xd_buf_reset(&p->msgs);
    free(text);
    *out = p;
    return 0;

fail:
    free(text);
    xd_jq_destroy(p);
    return rc;
}

void xd_jq_destroy(struct xd_jq *p)
{
    if (!p)
        return;
    if (p->jq)
        jq_teardown(&p->jq);
    for (size_t i = 0; i < KEY_SLOTS; i++)
        if (p->cache.keys[i].used)
            jv_free(p->cache.keys[i].key);
    for (size_t i = 0; i < VALUE_SLOTS; i++)
        if (p->cache.values[i].used)
            jv_free(p->cache.values[i].key);
    xd_buf_dispose(&p->msgs);
    free(p);
}

/*
 * Runs p on input (consumed) up to its first output. Returns 0 with *result
 * (a valid jv the caller frees), XD_ENOTFOUND when there was no output, or
 * XD_EINVAL with the message in err. No later output is ever computed. The
 * jq_state keeps its reference to the input until the next run (or
 * xd_jq_destroy), one reason nothing here may cross threads.
 */
static int run(struct xd_jq *p, jv input, jv *result, struct xd_buf *err)
{
    xd_buf_reset(&p->msgs);
    xref_refresh(p);
    jq_start(p->jq, input, 0);
    jv r = jq_next(p->jq);
    if (jv_is_valid(r)) {
        *result = r;
        return 0;
    }
    if (jv_invalid_has_msg(jv_copy(r))) {
        put_error_value(err, jv_invalid_get_msg(r));
        return XD_EINVAL;
    }
    jv_free(r);
    if (jq_halted(p->jq)) { /* halt_error: its value is the message; plain halt: no output */
        jv msg = jq_get_error_message(p->jq);
        if (jv_is_valid(msg)) {
            put_error_value(err, msg);
            return XD_EINVAL;
        }
        jv_free(msg);
    }
    return XD_ENOTFOUND;
}

static const char no_output[] = "mapping produced no output";

/* run() and the first output as text appended to out. */
static int map_text(struct xd_jq *p, jv input, struct xd_buf *out, struct xd_buf *err)
{
    jv r;
    int rc = run(p, input, &r, err);
    if (rc == XD_ENOTFOUND && err)
        xd_buf_puts(err, no_output);
    if (rc < 0)
        return rc;
    rc = write_top(out, r);
    jv_free(r);
    if (rc < 0 && err)
        xd_buf_puts(err,
                    rc == XD_ELIMIT ? "mapping output nested deeper than 1000" : "out of memory");
    return rc;
}

/* run() and the truthiness of the first output (no output: false). */
static int test(struct xd_jq *p, jv input, int *truthy, struct xd_buf *err)
{
    jv r;
    *truthy = 0;
    int rc = run(p, input, &r, err);
    if (rc == XD_ENOTFOUND)
        return 0;
    if (rc < 0)
        return rc;
    jv_kind k = jv_get_kind(r);
    *truthy = k != JV_KIND_NULL && k != JV_KIND_FALSE;
    jv_free(r);
    return 0;
}

int xd_jq_map(struct xd_jq *p, const cJSON *input, struct xd_buf *out, struct xd_buf *err)
{
    if (!p || !input || !out)
        return XD_EINVAL;
    return map_text(p, to_jv(&p->cache, input), out, err);
}

int xd_jq_map_text(struct xd_jq *p, const char *json, size_t len, struct xd_buf *out,
                   struct xd_buf *err)
{
    cJSON *tree = NULL;
    struct xd_json_error jerr;
    int rc = xd_json_parse(json, len, NULL, &tree, &jerr);
    if (rc < 0) {
        if (err)
            xd_buf_printf(err, "input: byte %zu: %s", jerr.offset, jerr.message);
        return rc;
    }
    rc = xd_jq_map(p, tree, out, err);
    cJSON_Delete(tree);
    return rc;
}

int xd_jq_map_json(struct xd_jq *p, const cJSON *input, cJSON **out, struct xd_buf *err)
{
    jv r;
    if (!p || !input || !out)
        return XD_EINVAL;
    *out = NULL;
    int rc = run(p, to_jv(&p->cache, input), &r, err);
    if (rc == XD_ENOTFOUND && err)
        xd_buf_puts(err, no_output);
    if (rc < 0)
        return rc;
    *out = to_cjson(r, 0, &rc);
    jv_free(r);
    if (!*out && err)
        xd_buf_puts(err,
                    rc == XD_ELIMIT ? "mapping output nested deeper than 1000" : "out of memory");
    return *out ? 0 : rc;
}

int xd_jq_test(struct xd_jq *p, const cJSON *input, int *truthy, struct xd_buf *err)
{
    if (!p || !input || !truthy)
        return XD_EINVAL;
    return test(p, to_jv(&p->cache, input), truthy, err);
}

int xd_jq_input_create(struct xd_jq *p, const cJSON *event, struct xd_jq_input **out)
{
    if (!event || !out)
        return XD_EINVAL;
    *out = malloc(sizeof **out);
    if (!*out)
        return XD_ENOMEM;
    (*out)->value = to_jv(p ? &p->cache : NULL, event);
    return 0;
}

void xd_jq_input_destroy(struct xd_jq_input *in)
{
    if (!in)
        return;
    jv_free(in->value);
    free(in);
}

int xd_jq_map_input(struct xd_jq *p, const struct xd_jq_input *in, struct xd_buf *out,
                    struct xd_buf *err)
{
    if (!p || !in || !out)
        return XD_EINVAL;
    return map_text(p, jv_copy(in->value), out, err);
}

int xd_jq_test_input(struct xd_jq *p, const struct xd_jq_input *in, int *truthy, struct xd_buf *err)
{
    if (!p || !in || !truthy)
        return XD_EINVAL;
    return test(p, jv_copy(in->value), truthy, err);
}

int xd_jq_xref_miss(const char *msg, const char **table, size_t *tlen, const char **key,
                    size_t *klen)
{
    static const char pre[] = "xref ", mid[] = ": no entry for ";
    if (!msg || strncmp(msg, pre, sizeof pre - 1) != 0)
        return 0;
    const char *t = msg + sizeof pre - 1;
    const char *m = strstr(t, mid);
    if (!m || m == t)
        return 0;
    if (table)
        *table = t;
    if (tlen)
        *tlen = (size_t)(m - t);
    if (key)
        *key = m + sizeof mid - 1;
    if (klen)
        *klen = strlen(m + sizeof mid - 1);
    return 1;
}

/* ---- crossdock check ---------------------------------------------------- */

/* Compiles one program; on failure appends "FILE:LINE:COL: WHAT: message". 1 failed, 0 ok. */
static int check_one(const struct xd_config *cfg, const char *program, struct xd_config_pos pos,
                     struct xd_buf *errs, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static int check_one(const struct xd_config *cfg, const char *program, struct xd_config_pos pos,
                     struct xd_buf *errs, const char *fmt, ...)
{
    struct xd_jq *p = NULL;
    struct xd_buf msg;
    va_list ap;
    xd_buf_init(&msg);
    int rc = xd_jq_compile(program, cfg, &p, &msg);
    xd_jq_destroy(p);
    if (rc == 0 || rc == XD_ENOMEM) {
        xd_buf_dispose(&msg);
        return rc;
    }
    xd_buf_printf(errs, "%s:%u:%u: ", cfg->path ? cfg->path : "config", pos.line, pos.col);
    va_start(ap, fmt);
    xd_buf_vprintf(errs, fmt, ap);
    va_end(ap);
    xd_buf_printf(errs, ": %s\n", xd_buf_str(&msg));
    xd_buf_dispose(&msg);
    return errs->oom ? XD_ENOMEM : 1;
}

int xd_transform_check(const struct xd_config *cfg, struct xd_buf *errs)
{
    int bad = 0, rc;
    if (!cfg || !errs)
        return XD_EINVAL;
    for (size_t i = 0; i < cfg->nroutes; i++) {
        const struct xd_route *r = &cfg->routes[i];
        const char *name = r->name ? r->name : "?";
        if (r->filter) {
            rc = check_one(cfg, r->filter, r->filter_pos.line ? r->filter_pos : r->pos, errs,
                           "routes[%s].filter", name);
            if (rc < 0)
                return rc;
            bad += rc;
        }
        for (size_t j = 0; j < r->nsteps; j++) {
            const struct xd_step *s = &r->steps[j];
            if (!s->map)
                continue;
            rc = check_one(cfg, s->map, s->map_pos.line ? s->map_pos : s->pos, errs,
                           "routes[%s].steps[%zu].map", name, j);
            if (rc < 0)
                return rc;
            bad += rc;
        }
    }
    for (size_t i = 0; i < cfg->ntargets; i++) {
        const struct xd_target *t = &cfg->targets[i];
        if (!t->ack)
            continue;
        rc = check_one(cfg, t->ack, t->ack_pos.line ? t->ack_pos : t->pos, errs,
                       "targets.%s.ack", t->name ? t->name : "?");
        if (rc < 0)
            return rc;
        bad += rc;
    }
    for (size_t i = 0; i < cfg->nrate_cards; i++) {
        const struct xd_rate_card *c = &cfg->rate_cards[i];
        for (size_t j = 0; j < c->ncharges; j++) {
            const struct xd_charge_rule *ch = &c->charges[j];
            if (!ch->when)
                continue;
            rc = check_one(cfg, ch->when, ch->when_pos.line ? ch->when_pos : ch->pos, errs,
                           "rate_cards[%zu].charges[%zu].when", i, j);
            if (rc < 0)
                return rc;
            bad += rc;
        }
    }
    return bad;
}

/* ---- a cache of programs, by the address of their text ---- */

struct xd_jq_cache {
    const struct xd_config *cfg;
    struct {
        const char *text;
        struct xd_jq *p;
    } *v;
    size_t n, cap;
};

struct xd_jq_cache *xd_jq_cache_create(const struct xd_config *cfg)
{
    struct xd_jq_cache *c = calloc(1, sizeof *c);
    if (c)
        c->cfg = cfg;
    return c;
}

void xd_jq_cache_destroy(struct xd_jq_cache *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n; i++)
        xd_jq_destroy(c->v[i].p);
    free(c->v);
    free(c);
}

int xd_jq_cache_test(struct xd_jq_cache *c, const char *program, const cJSON *input, int *truthy,
                     struct xd_buf *err)
{
    struct xd_jq *p = NULL;
    for (size_t i = 0; i < c->n && !p; i++)
        if (c->v[i].text == program)
            p = c->v[i].p;
    if (!p) {
        if (c->n == c->cap) {
            size_t cap = c->cap ? c->cap * 2 : 8;
            void *v = realloc(c->v, cap * sizeof *c->v);
            if (!v)
                return XD_ENOMEM;
            c->v = v;
            c->cap = cap;
        }
        int rc = xd_jq_compile(program, c->cfg, &p, err);
        if (rc < 0)
            return rc;
        c->v[c->n].text = program;
        c->v[c->n].p = p;
        c->n++;
    }
    return xd_jq_test(p, input, truthy, err);
}

int xd_jq_cache_cond(void *ctx, const char *program, const cJSON *input, int *truthy,
                     struct xd_buf *why)
{
    struct xd_buf err;
    xd_buf_init(&err);
    int rc = xd_jq_cache_test(ctx, program, input, truthy, &err);
    if (rc < 0 && why)
        xd_buf_printf(why, "when: %s", xd_buf_str(&err));
    xd_buf_dispose(&err);
    return rc;
}
