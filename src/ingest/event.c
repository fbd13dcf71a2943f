/*
 * Validation and normalisation of canonical events (see event.h).
 *
 * Validation walks the cJSON tree against the tables in event_schema.c:
 * each object's members are matched to its spec once, then each known field
 * is checked by the checker of its kind (the kinds[] table below). Every
 * error is collected with its JSON path. The path of the value being checked
 * is a chain of stack frames and is only turned into a string when there is
 * an error, so a valid event is checked without allocating.
 *
 * Preparation fills the defaults the tables name, derives the business key,
 * writes the compact body (formats/json.h) and hashes it.
 */
#include "ingest/event.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/sha256.h"
#include "formats/json.h"
#include "ingest/event_schema.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_QTY          1e12
#define MAX_CODE         128
#define MAX_TEXT         1024
#define MAX_MONEY_DIGITS 18
#define MAX_TYPE_SHOWN   64 /* bytes of an unknown type name quoted back */

/* ---- error lists ---- */

static int verrs_addv(struct xd_verrs *e, const char *path, const char *fmt, va_list ap)
{
    char *p = NULL, *m = NULL;
    if (e->n >= XD_VERRS_MAX) {
        e->dropped++;
        return 0;
    }
    if (e->n == e->cap) {
        size_t cap = e->cap ? e->cap * 2 : 8;
        struct xd_verr *v = realloc(e->v, cap * sizeof *v);
        if (!v)
            return XD_ENOMEM;
        e->v = v;
        e->cap = cap;
    }
    p = strdup(path ? path : "");
    if (!p)
        goto fail;
    if (vasprintf(&m, fmt, ap) < 0) {
        m = NULL;
        goto fail;
    }
    e->v[e->n].path = p;
    e->v[e->n].message = m;
    e->n++;
    return 0;
fail:
    free(p);
    return XD_ENOMEM;
}

int xd_verrs_add(struct xd_verrs *e, const char *path, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = verrs_addv(e, path, fmt, ap);
    va_end(ap);
    return rc;
}

void xd_verrs_dispose(struct xd_verrs *e)
{
    for (size_t i = 0; i < e->n; i++) {
        free(e->v[i].path);
        free(e->v[i].message);
    }
    free(e->v);
    memset(e, 0, sizeof *e);
}

/* ---- value formats, also used by converters ---- */

static const unsigned char id_chars[256] = {
    ['A' ... 'Z'] = 1, ['a' ... 'z'] = 1, ['0' ... '9'] = 1, ['.'] = 1,
    ['_'] = 1,         [':'] = 1,         ['-'] = 1,
};

int xd_event_id_valid(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++)
        if (!id_chars[(unsigned char)s[n]] || n >= 128)
            return 0;
    return n >= 1;
}

/* Reads exactly n decimal digits; -1 if any is not a digit. */
static int num(const char *s, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

/* YYYY-MM-DD at s (exactly 10 bytes looked at), a real calendar day. */
static int date_at(const char *s)
{
    static const unsigned char mdays[13] = {0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int y = num(s, 4), m, d;
    if (y < 1 || s[4] != '-' || s[7] != '-')
        return 0;
    m = num(s + 5, 2);
    d = num(s + 8, 2);
    if (m < 1 || m > 12 || d < 1 || d > mdays[m])
        return 0;
    if (m == 2 && d == 29 && !(y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)))
        return 0;
    return 1;
}

int xd_date_valid(const char *s)
{
    return strnlen(s, 11) == 10 && date_at(s);
}

/* HH:MM at s with HH <= maxh and MM <= 59. */
static int hhmm_at(const char *s, int maxh)
{
    int h = num(s, 2), m = num(s + 3, 2);
    return s[2] == ':' && h >= 0 && h <= maxh && m >= 0 && m <= 59;
}

int xd_datetime_valid(const char *s)
{
    if (strnlen(s, 19) < 19 || !date_at(s) || s[10] != 'T' || !hhmm_at(s + 11, 23) || s[16] != ':')
        return 0;
    int sec = num(s + 17, 2);
    if (sec < 0 || sec > 60) /* 60: a leap second, as RFC 3339 allows */
        return 0;
    const char *p = s + 19;
    if (*p == '.') {
        int n = 0;
        for (p++; *p >= '0' && *p <= '9'; p++)
            n++;
        if (n < 1 || n > 9)
            return 0;
    }
    if (*p == 'Z')
        return p[1] == '\0';
    if (*p != '+' && *p != '-')
        return 0;
    return strnlen(p + 1, 6) == 5 && hhmm_at(p + 1, 23);
}

/* ---- validation ---- */

/* Where a value sits: a chain from the value up to the event. */
struct path {
    const struct path *up;
    const char *key; /* member name; NULL for an array element */
    size_t index;
};

struct vctx {
    struct xd_verrs *errs;
    const char *prefix; /* path of the event itself */
    int type;           /* the event's type once known, else -1 */
    int oom;
    struct xd_buf pb; /* path rendering, reused */
};

static void render(struct xd_buf *b, const char *prefix, const struct path *p)
{
    if (!p) {
        xd_buf_puts(b, prefix);
        return;
    }
    render(b, prefix, p->up);
    if (p->key) {
        if (b->len)
            xd_buf_putc(b, '.');
        xd_buf_puts(b, p->key);
    } else {
        xd_buf_printf(b, "[%zu]", p->index);
    }
}

static void err(struct vctx *c, const struct path *p, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void err(struct vctx *c, const struct path *p, const char *fmt, ...)
{
    va_list ap;
    xd_buf_reset(&c->pb);
    render(&c->pb, c->prefix, p);
    if (c->pb.oom) {
        c->oom = 1;
        return;
    }
    va_start(ap, fmt);
    if (verrs_addv(c->errs, xd_buf_str(&c->pb), fmt, ap) < 0)
        c->oom = 1;
    va_end(ap);
}

typedef void check_fn(struct vctx *c, const cJSON *v, const struct xd_field *f,
                      const struct path *p);

static void check_object(struct vctx *c, const cJSON *obj, const struct xd_spec *s,
                         const struct path *up);

/*
 * Characters (code points) in a UTF-8 string, up to a little past max; sets
 * *ctl when it holds a control character (U+0000-U+001F, U+007F).
 */
static size_t chars(const char *s, size_t max, int *ctl)
{
    /* Per byte: 1 if it starts a character (not 10xxxxxx), 2 if a control. */
    static const unsigned char cls[256] = {
        [0x01 ... 0x1f] = 3, [0x20 ... 0x7e] = 1, [0x7f] = 3, [0xc0 ... 0xff] = 1,
    };
    size_t n = 0;
    unsigned seen = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p && n <= max; p++) {
        unsigned k = cls[*p];
        n += k & 1;
        seen |= k;
    }
    *ctl = (seen & 2) != 0;
    return n;
}

static void chk_event_id(struct vctx *c, const cJSON *v, const struct xd_field *f,
                         const struct path *p)
{
    (void)f;
    if (!xd_event_id_valid(v->valuestring))
        err(c, p, "must be 1-128 characters of A-Za-z0-9._:-");
}

static void chk_type(struct vctx *c, const cJSON *v, const struct xd_field *f, const struct path *p)
{
    (void)f;
    const char *s = v->valuestring;
    c->type = xd_event_type_parse(s);
    if (c->type >= 0)
        return;
    size_t n = strnlen(s, MAX_TYPE_SHOWN + 1);
    if (n <= MAX_TYPE_SHOWN) {
        err(c, p, "unknown event type '%s'", s);
        return;
    }
    n = MAX_TYPE_SHOWN;
    while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
        n--; /* cut at a character boundary */
    err(c, p, "unknown event type '%.*s...'", (int)n, s);
}

static void chk_time(struct vctx *c, const cJSON *v, const struct xd_field *f, const struct path *p)
{
    (void)f;
    if (!xd_datetime_valid(v->valuestring))
        err(c, p, "must be an RFC 3339 date-time");
}

static void chk_date(struct vctx *c, const cJSON *v, const struct xd_field *f, const struct path *p)
{
    (void)f;
    if (!xd_date_valid(v->valuestring))
        err(c, p, "must be a date YYYY-MM-DD");
}

static void chk_code(struct vctx *c, const cJSON *v, const struct xd_field *f, const struct path *p)
{
    (void)f;
    int ctl;
    size_t n = chars(v->valuestring, MAX_CODE, &ctl);
    if (n < 1 || n > MAX_CODE)
        err(c, p, "must be 1-%d characters", MAX_CODE);
    else if (ctl)
        err(c, p, "must not contain control characters");
}

static void chk_text(struct vctx *c, const cJSON *v, const struct xd_field *f, const struct path *p)
{
    int ctl;
    size_t n = chars(v->valuestring, MAX_TEXT, &ctl);
    if (n > MAX_TEXT)
        err(c, p, "must be at most %d characters", MAX_TEXT);
    else if (n == 0 && f->kind == XD_FK_NTEXT)
        err(c, p, "must not be empty");
}

static void chk_qty(struct vctx *c, const cJSON *v, const struct xd_field *f, const struct path *p)
{
    (void)f;
    double d = v->valuedouble;
    if (!isfinite(d))
        err(c, p, "must be a finite number");
    else if (d <= 0)
        err(c, p, "must be greater than 0");
    else if (d > MAX_QTY)
        err(c, p, "must be at most 1000000000000");
}

static void chk_delta(struct vctx *c, const cJSON *v, const struct xd_field *f,
                      const struct path *p)
{
    (void)f;
    double d = v->valuedouble;
    if (!isfinite(d))
        err(c, p, "must be a finite number");
    else if (d == 0)
        err(c, p, "must not be zero");
    else if (fabs(d) > MAX_QTY)
        err(c, p, "must be between -1000000000000 and 1000000000000");
}

static void chk_count(struct vctx *c, const cJSON *v, const struct xd_field *f,
                      const struct path *p)
{
    (void)f;
    double d = v->valuedouble;
    if (!isfinite(d))
        err(c, p, "must be a finite number");
    else if (d < 0)
        err(c, p, "must not be negative");
    else if (d > MAX_QTY)
        err(c, p, "must be at most 1000000000000");
}

static void chk_line_no(struct vctx *c, const cJSON *v, const struct xd_field *f,
                        const struct path *p)
{
    (void)f;
    double d = v->valuedouble;
    if (!(d >= 1 && d <= INT32_MAX && d == floor(d)))
        err(c, p, "must be a positive integer");
}

static void chk_version(struct vctx *c, const cJSON *v, const struct xd_field *f,
                        const struct path *p)
{
    (void)f;
    if (v->valuedouble != 1)
        err(c, p, "unsupported schema_version %g", v->valuedouble);
}

static void chk_money(struct vctx *c, const cJSON *v, const struct xd_field *f,
                      const struct path *p)
{
    (void)f;
    const char *s = v->valuestring;
    int digits = 0, ok = 1;
    if (*s == '-')
        s++;
    ok = *s >= '0' && *s <= '9';
    for (; *s >= '0' && *s <= '9'; s++)
        digits++;
    if (ok && *s == '.') {
        s++;
        ok = *s >= '0' && *s <= '9';
        for (; *s >= '0' && *s <= '9'; s++)
            digits++;
    }
    if (!ok || *s)
        err(c, p, "must be a decimal string such as \"12.50\"");
    else if (digits > MAX_MONEY_DIGITS)
        err(c, p, "must have at most %d digits", MAX_MONEY_DIGITS);
}

static void chk_currency(struct vctx *c, const cJSON *v, const struct xd_field *f,
                         const struct path *p)
{
    (void)f;
    const char *s = v->valuestring;
    int ok = strlen(s) == 3;
    for (int i = 0; ok && i < 3; i++)
        ok = s[i] >= 'A' && s[i] <= 'Z';
    if (!ok)
        err(c, p, "must be 3 uppercase letters (ISO 4217)");
}

static void chk_object(struct vctx *c, const cJSON *v, const struct xd_field *f,
                       const struct path *p)
{
    check_object(c, v, f->sub, p);
}

/* Elements in an array, counting no further than XD_EVENT_MAX_ITEMS + 1. */
static size_t elements(const cJSON *v)
{
    size_t n = 0;
    for (const cJSON *e = v->child; e && n <= XD_EVENT_MAX_ITEMS; e = e->next)
        n++;
    return n;
}

static void chk_objects(struct vctx *c, const cJSON *v, const struct xd_field *f,
                        const struct path *p)
{
    size_t n = elements(v), i = 0;
    if (n == 0) {
        err(c, p, "must not be empty");
        return;
    }
    if (n > XD_EVENT_MAX_ITEMS) {
        err(c, p, "must have at most %d elements", XD_EVENT_MAX_ITEMS);
        return;
    }
    for (const cJSON *e = v->child; e; e = e->next, i++) {
        struct path ep = {p, NULL, i};
        if (!cJSON_IsObject(e))
            err(c, &ep, "must be an object");
        else
            check_object(c, e, f->sub, &ep);
    }
}

static void chk_texts(struct vctx *c, const cJSON *v, const struct xd_field *f,
                      const struct path *p)
{
    static const struct xd_field text = {"", XD_FK_TEXT, 0, NULL, NULL};
    size_t i = 0;
    (void)f;
    if (elements(v) > XD_EVENT_MAX_ITEMS) {
        err(c, p, "must have at most %d elements", XD_EVENT_MAX_ITEMS);
        return;
    }
    for (const cJSON *e = v->child; e; e = e->next, i++) {
        struct path ep = {p, NULL, i};
        if (!cJSON_IsString(e))
            err(c, &ep, "must be a string");
        else
            chk_text(c, e, &text, &ep);
    }
}

static void chk_data(struct vctx *c, const cJSON *v, const struct xd_field *f, const struct path *p)
{
    (void)f;
    if (c->type >= 0) /* an unknown type has been reported; its data can't be checked */
        check_object(c, v, xd_data_specs[c->type], p);
}

/* Per kind: the JSON type the value must have, and the checker. */
static const struct kind {
    int json;
    check_fn *check;
} kinds[XD_FK__COUNT] = {
    [XD_FK_EVENT_ID] = {cJSON_String, chk_event_id},
    [XD_FK_TYPE] = {cJSON_String, chk_type},
    [XD_FK_TIME] = {cJSON_String, chk_time},
    [XD_FK_DATE] = {cJSON_String, chk_date},
    [XD_FK_CODE] = {cJSON_String, chk_code},
    [XD_FK_TEXT] = {cJSON_String, chk_text},
    [XD_FK_NTEXT] = {cJSON_String, chk_text},
    [XD_FK_QTY] = {cJSON_Number, chk_qty},
    [XD_FK_DELTA] = {cJSON_Number, chk_delta},
    [XD_FK_COUNT] = {cJSON_Number, chk_count},
    [XD_FK_LINE_NO] = {cJSON_Number, chk_line_no},
    [XD_FK_VERSION] = {cJSON_Number, chk_version},
    [XD_FK_MONEY] = {cJSON_String, chk_money},
    [XD_FK_CURRENCY] = {cJSON_String, chk_currency},
    [XD_FK_OBJECT] = {cJSON_Object, chk_object},
    [XD_FK_OBJECTS] = {cJSON_Array, chk_objects},
    [XD_FK_TEXTS] = {cJSON_Array, chk_texts},
    [XD_FK_DATA] = {cJSON_Object, chk_data},
};

static const char *type_message(int json)
{
    switch (json) {
    case cJSON_String:
        return "must be a string";
    case cJSON_Number:
        return "must be a number";
    case cJSON_Object:
        return "must be an object";
    default:
        return "must be an array";
    }
}

static int field_index(const struct xd_spec *s, const char *name)
{
    for (unsigned i = 0; i < s->n; i++)
        if (s->fields[i].name[0] == name[0] && strcmp(s->fields[i].name, name) == 0)
            return (int)i;
    return -1;
}

/*
 * Matches the members of obj to the spec in one pass (a repeated known key
 * is an error: later readers such as jq would take the last one, we would
 * have checked the first), then checks each field in the spec's order. A
 * null member counts as absent.
 */
static void check_object(struct vctx *c, const cJSON *obj, const struct xd_spec *s,
                         const struct path *up)
{
    const cJSON *found[XD_SPEC_MAX_FIELDS] = {0};
    uint32_t seen = 0;

    for (const cJSON *m = obj->child; m; m = m->next) {
        int i = m->string ? field_index(s, m->string) : -1;
        if (i < 0)
            continue;
        if (seen & 1u << i) {
            struct path mp = {up, s->fields[i].name, 0};
            err(c, &mp, "duplicate key");
            continue;
        }
        seen |= 1u << i;
        if (!cJSON_IsNull(m))
            found[i] = m;
    }
    for (unsigned i = 0; i < s->n; i++) {
        const struct xd_field *f = &s->fields[i];
        const struct kind *k = &kinds[f->kind];
        struct path p = {up, f->name, 0};
        const cJSON *v = found[i];
        if (!v) {
            if (f->required)
                err(c, &p, "is required");
            continue;
        }
        if ((v->type & 0xff) != k->json) {
            err(c, &p, "%s", type_message(k->json));
            continue;
        }
        k->check(c, v, f, &p);
    }
}

int xd_event_validate(const cJSON *ev, const char *prefix, struct xd_verrs *errs)
{
    struct vctx c = {.errs = errs, .prefix = prefix ? prefix : "", .type = -1};
    size_t before = errs->n + errs->dropped;

    xd_buf_init(&c.pb);
    if (!cJSON_IsObject(ev))
        err(&c, NULL, "must be an object");
    else
        check_object(&c, ev, &xd_envelope_spec, NULL);
    xd_buf_dispose(&c.pb);
    if (c.oom)
        return XD_ENOMEM;
    return errs->n + errs->dropped > before ? XD_ESCHEMA : 0;
}

/* ---- preparation ---- */

/*
 * cJSON_GetObjectItemCaseSensitive(obj, name), the same answer (the first
 * member of that name; a member without a name ends the search as there),
 * comparing first bytes before calling strcmp(): cJSON calls it for every
 * member it passes.
 */
static cJSON *member(const cJSON *obj, const char *name)
{
    cJSON *m = obj ? obj->child : NULL;
    for (; m && m->string; m = m->next)
        if (m->string[0] == name[0] && strcmp(m->string, name) == 0)
            return m;
    return NULL;
}

/* Sets obj.name to item when it is absent or null; takes item (even on failure). */
static int set_default(cJSON *obj, const char *name, cJSON *item)
{
    cJSON *cur = member(obj, name);
    if (!item)
        return XD_ENOMEM;
    if (!cur) {
        /* name is a static string from the tables: the tree may keep a reference. */
        if (!cJSON_AddItemToObjectCS(obj, name, item))
            goto fail;
        return 0;
    }
    if (!cJSON_ReplaceItemInObjectCaseSensitive(obj, name, item))
        goto fail;
    return 0;
fail:
    cJSON_Delete(item);
    return XD_ENOMEM;
}

/*
 * Fills the defaults named in spec s into obj and the objects below it.
 * Returns 1 when it changed anything (obj and every container on the way
 * down to the change are then touched, formats/json.h), 0 when not, or an
 * error.
 */
static int fill_defaults(cJSON *obj, const struct xd_spec *s)
{
    int changed = 0;
    for (unsigned i = 0; i < s->n; i++) {
        const struct xd_field *f = &s->fields[i];
        cJSON *v;
        int rc = 0;
        if (f->dflt) {
            v = member(obj, f->name);
            if (!v || cJSON_IsNull(v)) {
                rc = set_default(obj, f->name, cJSON_CreateStringReference(f->dflt));
                if (rc == 0)
                    rc = 1;
            }
        } else if (f->kind == XD_FK_OBJECT || f->kind == XD_FK_OBJECTS) {
            v = member(obj, f->name);
            if (cJSON_IsObject(v))
                rc = fill_defaults(v, f->sub);
            for (cJSON *e = cJSON_IsArray(v) ? v->child : NULL; e && rc >= 0; e = e->next) {
                int r = fill_defaults(e, f->sub);
                rc = r < 0 ? r : rc | r;
            }
            if (rc > 0 && cJSON_IsArray(v))
                xd_json_touch(v);
        }
        if (rc < 0)
            return rc;
        changed |= rc;
    }
    if (changed)
        xd_json_touch(obj); /* the spliced writer must print it again */
    return changed;
}

static const char *member_string(const cJSON *obj, const char *name)
{
    const cJSON *v = member(obj, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

int xd_event_prepare(cJSON *ev, const char *default_source, struct xd_event *out)
{
    struct xd_buf b;
    const char *type;
    cJSON *data;
    int rc = XD_EINVAL, t, changed;

    memset(out, 0, sizeof *out);
    xd_buf_init(&b);
    type = member_string(ev, "type");
    t = type ? xd_event_type_parse(type) : -1;
    data = member(ev, "data");
    if (t < 0 || !cJSON_IsObject(data))
        goto fail; /* not validated */

    rc = fill_defaults(data, xd_data_specs[t]);
    if (rc < 0)
        goto fail;
    changed = rc;
    if (!cJSON_IsString(member(ev, "source"))) {
        rc = set_default(ev, "source",
                         cJSON_CreateString(default_source ? default_source : "unknown"));
        if (rc < 0)
            goto fail;
        changed = 1;
    }
    if (!cJSON_IsNumber(member(ev, "schema_version"))) {
        rc = set_default(ev, "schema_version", cJSON_CreateNumber(1));
        if (rc < 0)
            goto fail;
        changed = 1;
    }
    if (changed)
        xd_json_touch(ev);

    out->json = ev;
    out->type = (enum xd_event_type)t;
    out->event_id = member_string(ev, "event_id");
    out->occurred_at = member_string(ev, "occurred_at");
    out->source = member_string(ev, "source");

    const struct xd_bkey_spec *k = &xd_bkey_specs[t];
    xd_buf_puts(&b, k->prefix);
    for (int i = 0; i < 2 && k->parts[i]; i++) {
        const char *part = member_string(data, k->parts[i]);
        xd_buf_putc(&b, ':');
        xd_buf_puts(&b, part ? part : "");
    }
    if (b.oom) {
        rc = XD_ENOMEM;
        goto fail;
    }
    out->bkey = xd_buf_steal(&b);

    rc = xd_buf_reserve(&b, 1024);
    if (rc < 0)
        goto fail;
    /* Containers nothing was added to are copied from the input as they were written. */
    rc = xd_json_write_spliced(&b, ev);
    if (rc < 0)
        goto fail;
    out->body_len = b.len;
    out->body = xd_buf_steal(&b);
    xd_sha256(out->body, out->body_len, out->hash);
    return 0;

fail:
    xd_buf_dispose(&b);
    xd_event_dispose(out);
    return rc;
}

void xd_event_dispose(struct xd_event *ev)
{
    free(ev->bkey);
    free(ev->body);
    memset(ev, 0, sizeof *ev);
}
