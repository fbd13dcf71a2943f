/*
 * X12 transaction sets to canonical events (contract section 7), as tables.
 *
 * Each supported set is a setdef: the event type, its header segment (W06,
 * W17, W15, BIA), the segment that starts a line (W12, W07, W19, LIN) and a
 * list of rules, one per member of the event, saying where the value comes
 * from (segment, element, and for QTY the qualifiers in order of
 * preference), where it goes (the envelope, data, data.carrier, a line) and
 * what kind of value it is. The rules' order is the members' order in the
 * output. Mapping a set is two passes over the rules:
 *
 *   1. capture: one walk over the segments notes, for every rule, the
 *      segment that holds its value (the first one; for qualified rules the
 *      most preferred), once for the header and once per line. A line is
 *      its line segment, the segments after it up to the next line or LX,
 *      and the LX it sits in. N1 parties count only before the first LX or
 *      line (the header); N1s inside line loops name other parties.
 *   2. convert: every captured element is checked and turned into JSON,
 *      every problem reported with its segment and element. A set with any
 *      problem produces nothing.
 *
 * A line whose quantity is 0 is left out (945 W12-03, 944 W07-01, 846 QTY);
 * a 947 makes one event per W19. The events are checked with
 * xd_event_validate() before they leave, so what this file produces is
 * always a valid event.
 */
#include "core/buf.h"
#include "core/err.h"
#include "formats/docid.h"
#include "formats/x12_int.h"
#include "ingest/event.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_RULES      16
#define MAX_CODE_CHARS 128
#define MAX_CODE_BYTES (MAX_CODE_CHARS * 4)
#define MAX_DIGITS     15 /* a double holds 15 decimal digits exactly */
#define MAX_QTY        1e12
#define LB_TO_KG       45359237u /* 1 lb = 0.45359237 kg, exactly, 8 decimals */

/* Where a value goes. */
enum x12_obj {
    XO_ENV,     /* the envelope: occurred_at */
    XO_DATA,    /* data */
    XO_CARRIER, /* data.carrier */
    XO_LINE,    /* a line (or, for a 947, the data of the line's own event) */
};

/* What a value is, and how it is checked and converted. */
enum x12_kind {
    XK_CODE,    /* string, spaces trimmed, 1-128 characters of UTF-8, no control characters */
    XK_QTY,     /* decimal >= 0; 0 leaves the line out */
    XK_DELTA,   /* signed decimal, not 0 */
    XK_LINE_NO, /* integer 1..2^31-1 */
    XK_TIME,    /* CCYYMMDD, becomes "CCYY-MM-DDT00:00:00Z" */
    XK_DATE,    /* CCYYMMDD, becomes "CCYY-MM-DD" */
    XK_WEIGHT, /* decimal >= 0 in the unit of the next element: LB (x 0.45359237, 3 decimals), KG */
    XK_WAREHOUSE, /* N1*SF / N1*WH, else the partner, else --warehouse */
    XK_CUSTOMER,  /* N1*DE, else the partner, else --customer */
};

struct x12_rule {
    const char *key;     /* member name */
    unsigned char obj;   /* enum x12_obj */
    unsigned char kind;  /* enum x12_kind */
    unsigned char req;   /* the event needs it */
    char seg[4];         /* segment holding it ("" for XK_WAREHOUSE, XK_CUSTOMER) */
    unsigned char el;    /* element position in that segment */
    const char *qual[2]; /* if set: element 1 must be one of these, the first preferred */
};

struct x12_setdef {
    const char *st01; /* "945" */
    const char *gs01; /* the functional group it travels in */
    enum xd_event_type type;
    const char *wh_qual;    /* N1 entity code naming the warehouse */
    char head[4];           /* header segment, required, once */
    char line[4];           /* segment starting a line */
    const char *lines_key;  /* data member holding the lines; NULL: one event per line */
    const char *id_keys[2]; /* data members making the document id */
    const struct x12_rule *rules;
    unsigned nrules;
};

/* Tables read best one rule a line. */
/* clang-format off */
static const struct x12_rule r945[] = {
    {"warehouse",   XO_DATA,    XK_WAREHOUSE, 1, "",    0, {0}},
    {"shipment_id", XO_DATA,    XK_CODE,      1, "W06", 4, {0}},
    {"order_id",    XO_DATA,    XK_CODE,      1, "W06", 2, {0}},
    {"customer",    XO_DATA,    XK_CUSTOMER,  1, "",    0, {0}},
    {"sku",         XO_LINE,    XK_CODE,      1, "W12", 8, {0}},
    {"qty",         XO_LINE,    XK_QTY,       1, "W12", 3, {0}},
    {"line_no",     XO_LINE,    XK_LINE_NO,   0, "LX",  1, {0}},
    {"uom",         XO_LINE,    XK_CODE,      0, "W12", 5, {0}},
    {"lot",         XO_LINE,    XK_CODE,      0, "W12", 9, {0}},
    {"code",        XO_CARRIER, XK_CODE,      0, "W27", 2, {0}},
    {"tracking",    XO_CARRIER, XK_CODE,      0, "W06", 7, {0}},
    {"weight_kg",   XO_DATA,    XK_WEIGHT,    0, "W03", 2, {0}},
    {"occurred_at", XO_ENV,     XK_TIME,      1, "W06", 3, {0}},
};

static const struct x12_rule r944[] = {
    {"warehouse",   XO_DATA,    XK_WAREHOUSE, 1, "",    0, {0}},
    {"receipt_id",  XO_DATA,    XK_CODE,      1, "W17", 3, {0}},
    {"customer",    XO_DATA,    XK_CUSTOMER,  1, "",    0, {0}},
    {"sku",         XO_LINE,    XK_CODE,      1, "W07", 5, {0}},
    {"qty",         XO_LINE,    XK_QTY,       1, "W07", 1, {0}},
    {"uom",         XO_LINE,    XK_CODE,      0, "W07", 2, {0}},
    {"lot",         XO_LINE,    XK_CODE,      0, "W07", 8, {0}},
    {"po_number",   XO_DATA,    XK_CODE,      0, "W17", 4, {0}},
    {"occurred_at", XO_ENV,     XK_TIME,      1, "W17", 2, {0}},
};

static const struct x12_rule r947[] = {
    {"warehouse",     XO_DATA,  XK_WAREHOUSE, 1, "",    0, {0}},
    {"adjustment_id", XO_DATA,  XK_CODE,      1, "W15", 2, {0}},
    {"customer",      XO_DATA,  XK_CUSTOMER,  1, "",    0, {0}},
    {"sku",           XO_LINE,  XK_CODE,      1, "W19", 6, {0}},
    {"qty_delta",     XO_LINE,  XK_DELTA,     1, "W19", 2, {0}},
    {"reason_code",   XO_LINE,  XK_CODE,      1, "W19", 1, {0}},
    {"uom",           XO_LINE,  XK_CODE,      0, "W19", 3, {0}},
    {"lot",           XO_LINE,  XK_CODE,      0, "W19", 9, {0}},
    {"occurred_at",   XO_ENV,   XK_TIME,      1, "W15", 1, {0}},
};

static const struct x12_rule r846[] = {
    {"warehouse",   XO_DATA,    XK_WAREHOUSE, 1, "",    0, {0}},
    {"customer",    XO_DATA,    XK_CUSTOMER,  1, "",    0, {0}},
    {"as_of",       XO_DATA,    XK_DATE,      1, "BIA", 4, {0}},
    {"sku",         XO_LINE,    XK_CODE,      1, "LIN", 3, {0}},
    {"qty",         XO_LINE,    XK_QTY,       1, "QTY", 2, {"17", "33"}},
    {"uom",         XO_LINE,    XK_CODE,      0, "QTY", 3, {"17", "33"}},
    {"occurred_at", XO_ENV,     XK_TIME,      1, "BIA", 4, {0}},
};

#define RULES(r) r, sizeof r / sizeof r[0]
static const struct x12_setdef setdefs[] = {
    {"945", "SW", XD_EV_SHIPMENT_CONFIRMED, "SF", "W06", "W12", "lines", {"shipment_id", NULL}, RULES(r945)},
    {"944", "RE", XD_EV_GOODS_RECEIVED,     "WH", "W17", "W07", "lines", {"receipt_id", NULL},  RULES(r944)},
    {"947", "AW", XD_EV_INVENTORY_ADJUSTED, "WH", "W15", "W19", NULL,    {"adjustment_id", NULL}, RULES(r947)},
    {"846", "IB", XD_EV_INVENTORY_SNAPSHOT, "WH", "BIA", "LIN", "items", {"customer", "as_of"}, RULES(r846)},
};
/* clang-format on */

#define FITS(r) _Static_assert(sizeof r / sizeof r[0] <= MAX_RULES, #r " fits the slot arrays")
FITS(r945);
FITS(r944);
FITS(r947);
FITS(r846);

static const struct x12_setdef *setdef_for(struct x12_view st01)
{
    for (size_t i = 0; i < sizeof setdefs / sizeof setdefs[0]; i++)
        if (xd_x12_eq(st01, setdefs[i].st01))
            return &setdefs[i];
    return NULL;
}

const char *xd_x12_set_gs01(struct x12_view st01)
{
    const struct x12_setdef *def = setdef_for(st01);
    return def ? def->gs01 : NULL;
}

/* ---- capture ---- */

/* The segment holding a rule's value, and how preferred it is (0 best). */
struct slot {
    const struct x12_seg *s;
    unsigned char prio;
};

struct line {
    const struct x12_seg *s;  /* the line segment */
    const struct x12_seg *lx; /* the LX it sits in, or NULL */
    size_t nth;               /* 1 = the set's first line */
    size_t in_lx;             /* 1 = the first line of its LX */
    struct slot v[MAX_RULES];
};

struct mctx {
    const struct x12_setdef *def;
    const struct x12_doc *d;
    const struct xd_convert_opts *o;
    struct x12_sink *sk;
    const struct x12_seg *st, *se; /* first and last segment of the set */
    const struct x12_seg *head;
    const struct x12_seg *n1_cust; /* N1*DE */
    const struct x12_seg *n1_wh;   /* N1*SF / N1*WH */
    struct slot hv[MAX_RULES];     /* header values */
    struct line *lines;            /* kept in the reader's scratch */
    size_t nlines, cap;
    unsigned missing_done; /* rules whose missing segment was reported */
    int bad;               /* a problem was reported */
};

/* Segment ids compare as 4 bytes, NUL-padded: id must be a char[4]. */
static int is(const struct x12_seg *s, const char id[4])
{
    return memcmp(s->id, id, 4) == 0;
}

static const char LX[4] = "LX", N1[4] = "N1";

/* Preference of segment s for rule ru: 0 best, -1 not a match. */
static int prio_of(const struct mctx *m, const struct x12_rule *ru, const struct x12_seg *s)
{
    if (!ru->qual[0])
        return 0;
    struct x12_view q = xd_x12_trim(xd_x12_el(m->d, s, 1));
    for (int i = 0; i < 2; i++)
        if (ru->qual[i] && xd_x12_eq(q, ru->qual[i]))
            return i;
    return -1;
}

static void take(struct slot *sl, const struct x12_seg *s, int prio)
{
    if (prio >= 0 && (!sl->s || prio < sl->prio)) {
        sl->s = s;
        sl->prio = (unsigned char)prio;
    }
}

static int new_line(struct mctx *m, const struct x12_seg *s, const struct x12_seg *lx, size_t in_lx)
{
    if (m->nlines == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 8;
        struct line *l = realloc(m->lines, cap * sizeof *l);
        if (!l)
            return XD_ENOMEM;
        m->lines = l;
        m->cap = cap;
    }
    struct line *l = &m->lines[m->nlines++];
    memset(l, 0, sizeof *l);
    l->s = s;
    l->lx = lx;
    l->nth = m->nlines;
    l->in_lx = in_lx;
    for (unsigned k = 0; k < m->def->nrules; k++) {
        const struct x12_rule *ru = &m->def->rules[k];
        if (ru->obj != XO_LINE)
            continue;
        if (memcmp(ru->seg, m->def->line, 4) == 0)
            take(&l->v[k], s, prio_of(m, ru, s));
        else if (lx && memcmp(ru->seg, LX, 4) == 0)
            take(&l->v[k], lx, prio_of(m, ru, lx));
    }
    return 0;
}

static int capture(struct mctx *m)
{
    const struct x12_setdef *def = m->def;
    const struct x12_seg *lx = NULL;
    struct line *cur = NULL; /* the line whose loop we are in */
    size_t in_lx = 0;
    int header = 1;
    for (size_t i = 1; i + 1 < m->d->nsegs; i++) {
        const struct x12_seg *s = &m->d->segs[i];
        if (is(s, def->head)) {
            if (m->head) {
                m->bad = 1;
                if (xd_x12_issue(m->sk, s, 0, X12_AK3_MAX_USE, 0, (struct x12_view){"", 0},
                                 "more than one %s segment", def->head) < 0)
                    return XD_ENOMEM;
                continue;
            }
            m->head = s;
        } else if (is(s, LX)) {
            lx = s;
            in_lx = 0;
            cur = NULL;
            header = 0;
            continue;
        } else if (is(s, def->line)) {
            header = 0;
            if (new_line(m, s, lx, ++in_lx) < 0)
                return XD_ENOMEM;
            cur = &m->lines[m->nlines - 1];
            continue;
        } else if (header && is(s, N1)) {
            struct x12_view q = xd_x12_trim(xd_x12_el(m->d, s, 1));
            if (!m->n1_cust && xd_x12_eq(q, "DE"))
                m->n1_cust = s;
            else if (!m->n1_wh && xd_x12_eq(q, def->wh_qual))
                m->n1_wh = s;
            continue;
        }
        for (unsigned k = 0; k < def->nrules; k++) {
            const struct x12_rule *ru = &def->rules[k];
            if (!is(s, ru->seg))
                continue;
            if (ru->obj != XO_LINE)
                take(&m->hv[k], s, prio_of(m, ru, s));
            else if (cur)
                take(&cur->v[k], s, prio_of(m, ru, s));
        }
    }
    return 0;
}

/* ---- convert ---- */

static int problem(struct mctx *m, const struct x12_seg *s, unsigned el, int ak4,
                   struct x12_view bad, const char *msg, const char *arg)
{
    m->bad = 1;
    return xd_x12_issue(m->sk, s, el, X12_AK3_ELEMENTS, ak4, bad, msg, arg);
}

/* A problem was reported (rc 0) or could not be (XD_ENOMEM). */
static int reported(int rc)
{
    return rc < 0 ? rc : 1;
}

/* Up to 24 bytes of v for a message, anything unprintable as '?'. */
static const char *printable(char out[32], struct x12_view v)
{
    size_t n = v.n < 24 ? v.n : 24;
    for (size_t i = 0; i < n; i++)
        out[i] = v.p[i] >= 0x20 && v.p[i] < 0x7f ? v.p[i] : '?';
    out[n] = '\0';
    return out;
}

/* Why v is not a usable code (1-128 characters of UTF-8, no control characters), or NULL. */
static const char *code_problem(struct x12_view v, int *ak4)
{
    const unsigned char *p = (const unsigned char *)v.p, *end = p + v.n;
    size_t chars = 0;
    *ak4 = X12_AK4_BAD_CHAR;
    if (v.n > MAX_CODE_BYTES)
        goto too_long;
    while (p < end) {
        unsigned c = *p, need;
        unsigned long cp;
        if (c < 0x80) {
            if (c < 0x20 || c == 0x7f)
                return "contains a control character";
            p++;
            chars++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf)
            need = 1, cp = c & 0x1f;
        else if (c >= 0xe0 && c <= 0xef)
            need = 2, cp = c & 0x0f;
        else if (c >= 0xf0 && c <= 0xf4)
            need = 3, cp = c & 0x07;
        else
            return "not valid UTF-8";
        if ((size_t)(end - p) <= need)
            return "not valid UTF-8";
        for (unsigned i = 1; i <= need; i++) {
            if ((p[i] & 0xc0) != 0x80)
                return "not valid UTF-8";
            cp = cp << 6 | (p[i] & 0x3f);
        }
        if ((need == 2 && cp < 0x800) || (need == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return "not valid UTF-8";
        if (cp >= 0x80 && cp <= 0x9f)
            return "contains a control character";
        p += need + 1;
        chars++;
    }
    if (chars <= MAX_CODE_CHARS)
        return NULL;
too_long:
    *ak4 = X12_AK4_TOO_LONG;
    return "longer than 128 characters";
}

static cJSON *string_of(struct x12_view v)
{
    char tmp[MAX_CODE_BYTES + 1];
    if (v.n > MAX_CODE_BYTES)
        return NULL;
    memcpy(tmp, v.p, v.n);
    tmp[v.n] = '\0';
    return cJSON_CreateString(tmp);
}

/* An X12 decimal (R): [-]digits[.digits], at most 15 digits and 15 decimals. */
struct dec {
    uint64_t mant;
    int scale;
    int neg;
};

static const char *dec_parse(struct x12_view v, struct dec *d)
{
    size_t i = 0;
    int digits = 0, dot = 0, any = 0;
    memset(d, 0, sizeof *d);
    if (i < v.n && v.p[i] == '-')
        d->neg = 1, i++;
    for (; i < v.n; i++) {
        char c = v.p[i];
        if (c == '.' && !dot) {
            dot = 1;
            continue;
        }
        if (c < '0' || c > '9')
            return "not a number";
        any = 1;
        if (dot && ++d->scale > MAX_DIGITS)
            return "more than 15 decimals";
        if (d->mant == 0 && c == '0')
            continue; /* leading zeros are not digits */
        if (++digits > MAX_DIGITS)
            return "more than 15 digits";
        d->mant = d->mant * 10 + (uint64_t)(c - '0');
    }
    return any ? NULL : "not a number";
}

static const double pow10s[] = {1e0, 1e1, 1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15};

/* mant / 10^scale, correctly rounded: both are exact doubles. */
static double dec_value(const struct dec *d)
{
    double v = (double)d->mant / pow10s[d->scale];
    return d->neg ? -v : v;
}

/* Pounds to kilograms, rounded half away from zero to 3 decimals, in exact integers. */
static double lb_to_kg(const struct dec *d)
{
    unsigned __int128 num = (unsigned __int128)d->mant * LB_TO_KG, den = 1;
    for (int i = 0; i < d->scale + 5; i++)
        den *= 10; /* kg/1000 = mant * 45359237 / 10^(scale + 8 - 3) */
    unsigned __int128 q = (num + den / 2) / den;
    double v = (double)q / 1000.0;
    return d->neg ? -v : v;
}

/* CCYYMMDD to "CCYY-MM-DD" in out[11]; 0, or -1 when not a calendar day. */
static int date_of(struct x12_view v, char out[11])
{
    if (v.n != 8)
        return -1;
    for (int i = 0; i < 8; i++)
        if (v.p[i] < '0' || v.p[i] > '9')
            return -1;
    memcpy(out, v.p, 4);
    out[4] = '-';
    memcpy(out + 5, v.p + 4, 2);
    out[7] = '-';
    memcpy(out + 8, v.p + 6, 2);
    out[10] = '\0';
    return xd_date_valid(out) ? 0 : -1;
}

/* A decimal for a quantity-like rule; 0 with *val, 1 when a problem was reported, <0. */
static int number(struct mctx *m, const struct x12_seg *s, unsigned el, struct x12_view v, int kind,
                  struct dec *d, double *val)
{
    const char *why = dec_parse(v, d);
    if (why)
        return reported(problem(m, s, el, X12_AK4_BAD_CHAR, v, "%s", why));
    *val = dec_value(d);
    if (kind != XK_DELTA && d->neg && d->mant)
        return reported(problem(m, s, el, X12_AK4_BAD_VALUE, v, "%s", "must not be negative"));
    if (kind == XK_DELTA && d->mant == 0)
        return reported(problem(m, s, el, X12_AK4_BAD_VALUE, v, "%s", "must not be zero"));
    if (fabs(*val) > MAX_QTY)
        return reported(
            problem(m, s, el, X12_AK4_BAD_VALUE, v, "%s", "must be at most 1000000000000"));
    return 0;
}

/*
 * One converter per kind: v is the rule's element in s, trimmed and not
 * empty. Each returns 0 with *out, 1 when a problem was reported, 2 for a
 * quantity of 0 (the line is left out), XD_ENOMEM.
 */
typedef int conv_fn(struct mctx *m, const struct x12_rule *ru, const struct x12_seg *s,
                    struct x12_view v, cJSON **out);

static int conv_code(struct mctx *m, const struct x12_rule *ru, const struct x12_seg *s,
                     struct x12_view v, cJSON **out)
{
    int ak4;
    const char *why = code_problem(v, &ak4);
    if (why)
        return reported(problem(m, s, ru->el, ak4, v, "%s", why));
    *out = string_of(v);
    return *out ? 0 : XD_ENOMEM;
}

static int conv_qty(struct mctx *m, const struct x12_rule *ru, const struct x12_seg *s,
                    struct x12_view v, cJSON **out)
{
    struct dec d;
    double val;
    int rc = number(m, s, ru->el, v, ru->kind, &d, &val);
    if (rc)
        return rc;
    if (d.mant == 0)
        return 2;
    *out = cJSON_CreateNumber(val);
    return *out ? 0 : XD_ENOMEM;
}

static int conv_line_no(struct mctx *m, const struct x12_rule *ru, const struct x12_seg *s,
                        struct x12_view v, cJSON **out)
{
    struct dec d;
    double val;
    int rc = number(m, s, ru->el, v, ru->kind, &d, &val);
    if (rc)
        return rc;
    if (d.scale || d.neg || val < 1 || val > 2147483647.0)
        return reported(
            problem(m, s, ru->el, X12_AK4_BAD_VALUE, v, "%s", "not a line number (1-2147483647)"));
    *out = cJSON_CreateNumber(val);
    return *out ? 0 : XD_ENOMEM;
}

static int conv_date(struct mctx *m, const struct x12_rule *ru, const struct x12_seg *s,
                     struct x12_view v, cJSON **out)
{
    char date[24];
    if (date_of(v, date) < 0)
        return reported(problem(m, s, ru->el, X12_AK4_BAD_DATE, v, "%s", "not a date (CCYYMMDD)"));
    if (ru->kind == XK_TIME)
        memcpy(date + 10, "T00:00:00Z", 11);
    *out = cJSON_CreateString(date);
    return *out ? 0 : XD_ENOMEM;
}

static int conv_weight(struct mctx *m, const struct x12_rule *ru, const struct x12_seg *s,
                       struct x12_view v, cJSON **out)
{
    struct x12_view unit = xd_x12_trim(xd_x12_el(m->d, s, ru->el + 1u));
    struct dec d;
    double val;
    char a[32];
    int rc = number(m, s, ru->el, v, ru->kind, &d, &val);
    if (rc)
        return rc;
    if (xd_x12_eq(unit, "LB") || xd_x12_eq(unit, "L")) {
        val = lb_to_kg(&d);
    } else if (!unit.n) {
        return reported(problem(m, s, ru->el + 1u, X12_AK4_MISSING, unit, "%s",
                                "missing (weight unit LB or KG)"));
    } else if (!xd_x12_eq(unit, "KG") && !xd_x12_eq(unit, "K")) {
        return reported(problem(m, s, ru->el + 1u, X12_AK4_BAD_VALUE, unit,
                                "unknown weight unit '%s' (LB or KG)", printable(a, unit)));
    }
    *out = cJSON_CreateNumber(val);
    return *out ? 0 : XD_ENOMEM;
}

static conv_fn *const converters[] = {
    [XK_CODE] = conv_code,       [XK_QTY] = conv_qty,   [XK_DELTA] = conv_qty,
    [XK_LINE_NO] = conv_line_no, [XK_TIME] = conv_date, [XK_DATE] = conv_date,
    [XK_WEIGHT] = conv_weight,
};

/* The value rule ru captured in s: a missing element is a problem only when required. */
static int convert(struct mctx *m, const struct x12_rule *ru, const struct x12_seg *s, cJSON **out)
{
    struct x12_view v = xd_x12_trim(xd_x12_el(m->d, s, ru->el));
    *out = NULL;
    if (v.n == 0) {
        if (!ru->req)
            return 0;
        return reported(problem(m, s, ru->el, X12_AK4_MISSING, v, "missing (%s)", ru->key));
    }
    return converters[ru->kind](m, ru, s, v, out);
}

static const struct xd_partner *partner_for(const struct mctx *m)
{
    for (size_t i = 0; i < m->o->npartners; i++) {
        const struct xd_partner *p = &m->o->partners[i];
        if (p->id && xd_x12_eq(m->d->isa06, p->id))
            return p;
    }
    return NULL;
}

/*
 * The customer or warehouse: N104 (else N102) of the N1 naming it, else the
 * partner entry for the sender, else the option. 0 with *out, 1 when a
 * problem was reported, XD_ENOMEM.
 */
static int party(struct mctx *m, const struct x12_rule *ru, cJSON **out)
{
    int cust = ru->kind == XK_CUSTOMER;
    const struct x12_seg *n1 = cust ? m->n1_cust : m->n1_wh;
    const struct xd_partner *p = partner_for(m);
    const char *v = NULL;
    *out = NULL;
    if (n1) {
        for (unsigned el = 4;; el = 2) {
            struct x12_view x = xd_x12_trim(xd_x12_el(m->d, n1, el));
            int ak4;
            if (x.n) {
                const char *why = code_problem(x, &ak4);
                if (why)
                    return reported(problem(m, n1, el, ak4, x, "%s", why));
                *out = string_of(x);
                return *out ? 0 : XD_ENOMEM;
            }
            if (el == 2)
                break;
        }
    }
    if (p)
        v = cust ? p->customer : p->warehouse;
    if (!v || !*v)
        v = cust ? m->o->customer : m->o->warehouse;
    if (v && *v) {
        *out = cJSON_CreateString(v);
        return *out ? 0 : XD_ENOMEM;
    }
    char who[32];
    m->bad = 1;
    return reported(xd_x12_missing(m->sk, m->se, "N1",
                                   "no %s: no N1*%s, no partner entry for sender '%s' names one, "
                                   "and no --%s was given",
                                   ru->key, cust ? "DE" : m->def->wh_qual,
                                   printable(who, m->d->isa06), ru->key));
}

/* The rule's segment was never seen: reported once per segment id. */
static int missing_seg(struct mctx *m, unsigned k, const struct x12_seg *at, const char *where)
{
    const struct x12_rule *ru = &m->def->rules[k];
    if (m->missing_done & (1u << k))
        return 1;
    for (unsigned j = 0; j < m->def->nrules; j++)
        if (strcmp(m->def->rules[j].seg, ru->seg) == 0)
            m->missing_done |= 1u << j;
    m->bad = 1;
    if (ru->qual[0])
        return reported(xd_x12_missing(m->sk, at, ru->seg, "no %s*%s or %s*%s %s", ru->seg,
                                       ru->qual[0], ru->seg, ru->qual[1], where));
    return reported(xd_x12_missing(m->sk, at, ru->seg, "no %s segment %s", ru->seg, where));
}

/* Converts a rule whose value was captured in sl (or derived). */
static int value(struct mctx *m, unsigned k, const struct slot *sl, const struct x12_seg *at,
                 const char *where, cJSON **out)
{
    const struct x12_rule *ru = &m->def->rules[k];
    *out = NULL;
    if (ru->kind == XK_WAREHOUSE || ru->kind == XK_CUSTOMER)
        return party(m, ru, out);
    if (sl->s)
        return convert(m, ru, sl->s, out);
    return ru->req ? missing_seg(m, k, at, where) : 0;
}

/* ---- events ---- */

static void free_items(cJSON **items, unsigned n)
{
    for (unsigned k = 0; k < n; k++) {
        cJSON_Delete(items[k]);
        items[k] = NULL;
    }
}

static const char *member_str(const cJSON *data, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(data, key);
    return cJSON_IsString(v) ? v->valuestring : "";
}

/*
 * Wraps data (taken) in the envelope: event_id "<type>:<warehouse>:<document
 * id>[:<suffix>]" (formats/docid.h: the same rule as CSV's), type,
 * occurred_at (*at, taken when take is set, else copied), data. Returns 0
 * with *ev, XD_ENOMEM.
 */
static int envelope(struct mctx *m, cJSON *data, cJSON **at, int take, const char *suffix,
                    cJSON **ev)
{
    const char *type = xd_event_type_name(m->def->type);
    struct xd_buf id;
    cJSON *t = NULL, *idv = NULL, *typev = NULL;
    int rc = XD_ENOMEM;
    *ev = NULL;
    xd_buf_init(&id);
    xd_docid_part(&id, type);
    xd_docid_part(&id, member_str(data, "warehouse"));
    for (int i = 0; i < 2 && m->def->id_keys[i]; i++)
        xd_docid_part(&id, member_str(data, m->def->id_keys[i]));
    if (suffix)
        xd_docid_part(&id, suffix);
    xd_docid_finish(&id);
    *ev = cJSON_CreateObject();
    idv = id.oom ? NULL : cJSON_CreateString(id.data);
    xd_buf_dispose(&id);
    typev = cJSON_CreateString(type);
    if (take) {
        t = *at;
        *at = NULL;
    } else {
        t = cJSON_Duplicate(*at, 1);
    }
    if (!*ev || !idv || !typev || !t)
        goto fail;
    cJSON_AddItemToObjectCS(*ev, "event_id", idv);
    cJSON_AddItemToObjectCS(*ev, "type", typev);
    cJSON_AddItemToObjectCS(*ev, "occurred_at", t);
    cJSON_AddItemToObjectCS(*ev, "data", data);
    return 0;
fail:
    cJSON_Delete(idv);
    cJSON_Delete(typev);
    cJSON_Delete(t);
    cJSON_Delete(*ev);
    cJSON_Delete(data);
    *ev = NULL;
    return rc;
}

/*
 * Adds *item (NULL: nothing) to obj as key: the item itself when take is
 * set (and *item becomes NULL), else a copy. 0 or XD_ENOMEM.
 */
static int add_item(cJSON *obj, const char *key, cJSON **item, int take)
{
    cJSON *c = *item;
    if (!c)
        return 0;
    if (take)
        *item = NULL;
    else if (!(c = cJSON_Duplicate(c, 1)))
        return XD_ENOMEM;
    cJSON_AddItemToObjectCS(obj, key, c);
    return 0;
}

/*
 * The data object: header values in rule order; where the first line rule
 * stands, the lines array (*lines, taken) or, for an event per line, that
 * line's values flat; where the first carrier rule stands, the carrier
 * object when it has anything. Header values are taken when take is set
 * (the set makes one event), else copied; line values are always taken.
 * NULL when out of memory.
 */
static cJSON *data_of(const struct mctx *m, cJSON **hitems, int take, cJSON **lines, cJSON **litems)
{
    const struct x12_setdef *def = m->def;
    cJSON *data = cJSON_CreateObject(), *carrier = NULL;
    int lines_done = 0, carrier_done = 0;
    if (!data)
        return NULL;
    for (unsigned k = 0; k < def->nrules; k++) {
        const struct x12_rule *ru = &def->rules[k];
        if (ru->obj == XO_DATA) {
            if (add_item(data, ru->key, &hitems[k], take) < 0)
                goto fail;
        } else if (ru->obj == XO_LINE && !lines_done) {
            lines_done = 1;
            if (lines) {
                cJSON_AddItemToObjectCS(data, def->lines_key, *lines);
                *lines = NULL;
                continue;
            }
            for (unsigned j = k; j < def->nrules; j++)
                if (def->rules[j].obj == XO_LINE)
                    add_item(data, def->rules[j].key, &litems[j], 1);
        } else if (ru->obj == XO_CARRIER && !carrier_done) {
            carrier_done = 1;
            for (unsigned j = k; j < def->nrules; j++) {
                if (def->rules[j].obj != XO_CARRIER || !hitems[j])
                    continue;
                if (!carrier) {
                    carrier = cJSON_CreateObject();
                    if (!carrier)
                        goto fail;
                    cJSON_AddItemToObjectCS(data, "carrier", carrier);
                }
                if (add_item(carrier, def->rules[j].key, &hitems[j], take) < 0)
                    goto fail;
            }
        }
    }
    return data;
fail:
    cJSON_Delete(data);
    return NULL;
}

/*
 * Checks ev against the canonical schema, a backstop: a problem here is a
 * gap in the checks above, reported as one of the set's. Then appends it
 * to evs. Returns 0, 1 (rejected, ev freed), XD_ENOMEM (ev freed).
 */
static int keep(struct mctx *m, cJSON *evs, cJSON *ev)
{
    static const struct x12_view none = {"", 0};
    struct xd_verrs e = {0};
    int rc = xd_event_validate(ev, NULL, &e);
    if (rc == XD_ESCHEMA) {
        m->bad = 1;
        rc = 1;
        for (size_t i = 0; i < e.n && rc == 1; i++)
            if (xd_x12_issue(m->sk, m->st, 0, 0, 0, none, "the event would be invalid: %s: %s",
                             e.v[i].path, e.v[i].message) < 0)
                rc = XD_ENOMEM;
    }
    xd_verrs_dispose(&e);
    if (rc != 0) {
        cJSON_Delete(ev);
        return rc;
    }
    cJSON_AddItemToArray(evs, ev);
    return 0;
}

/* The event of one line of a 947: its id ends in the line's LX01, or its position. */
static int line_event(struct mctx *m, const struct line *l, cJSON **hitems, cJSON **litems,
                      cJSON **at, cJSON *evs)
{
    struct x12_view lx01 = {"", 0};
    char suffix[48];
    cJSON *ev;
    if (l->lx)
        lx01 = xd_x12_trim(xd_x12_el(m->d, l->lx, 1));
    if (lx01.n && lx01.n <= 24 && l->in_lx == 1)
        snprintf(suffix, sizeof suffix, "%.*s", (int)lx01.n, lx01.p);
    else if (lx01.n && lx01.n <= 24) /* a second W19 in one LX */
        snprintf(suffix, sizeof suffix, "%.*s.%zu", (int)lx01.n, lx01.p, l->in_lx);
    else
        snprintf(suffix, sizeof suffix, "%zu", l->nth);
    cJSON *data = data_of(m, hitems, 0, NULL, litems);
    if (!data)
        return XD_ENOMEM;
    int rc = envelope(m, data, at, 0, suffix, &ev);
    if (rc != 0)
        return rc;
    return keep(m, evs, ev);
}

/* Header values into hitems; reports a missing header segment once. */
static int header(struct mctx *m, cJSON **hitems)
{
    const struct x12_setdef *def = m->def;
    char where[32];
    int rc;
    snprintf(where, sizeof where, "in this %s set", def->st01);
    if (!m->head) {
        m->bad = 1;
        for (unsigned k = 0; k < def->nrules; k++)
            if (strcmp(def->rules[k].seg, def->head) == 0)
                m->missing_done |= 1u << k;
        rc = xd_x12_missing(m->sk, m->se, def->head, "no %s segment", def->head);
        if (rc < 0)
            return rc;
    }
    for (unsigned k = 0; k < def->nrules; k++) {
        if (def->rules[k].obj == XO_LINE)
            continue;
        rc = value(m, k, &m->hv[k], m->se, where, &hitems[k]);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* Builds the set's events into evs; 0, 1 when the set is rejected, XD_ENOMEM. */
static int build(struct mctx *m, cJSON *evs)
{
    static const struct x12_view none = {"", 0};
    const struct x12_setdef *def = m->def;
    cJSON *hitems[MAX_RULES] = {0}, *litems[MAX_RULES] = {0}, *lines = NULL, *ev;
    cJSON **at = NULL;
    size_t kept = 0;
    char where[32];
    int rc = header(m, hitems);
    if (rc < 0)
        goto fail;
    for (unsigned k = 0; k < def->nrules; k++)
        if (def->rules[k].obj == XO_ENV)
            at = &hitems[k];
    if (def->lines_key) {
        lines = cJSON_CreateArray();
        if (!lines) {
            rc = XD_ENOMEM;
            goto fail;
        }
    }
    snprintf(where, sizeof where, "for this %s", def->line);
    for (size_t i = 0; i < m->nlines; i++) {
        const struct line *l = &m->lines[i];
        int drop = 0;
        for (unsigned k = 0; k < def->nrules; k++) {
            if (def->rules[k].obj != XO_LINE)
                continue;
            m->missing_done &= ~(1u << k); /* each line reports its own */
            rc = value(m, k, &l->v[k], l->s, where, &litems[k]);
            if (rc < 0)
                goto fail;
            drop |= rc == 2;
        }
        if (m->bad || drop) {
            free_items(litems, def->nrules);
        } else if (lines) {
            cJSON *obj = cJSON_CreateObject();
            if (!obj) {
                rc = XD_ENOMEM;
                goto fail;
            }
            cJSON_AddItemToArray(lines, obj);
            for (unsigned k = 0; k < def->nrules; k++)
                if (litems[k])
                    cJSON_AddItemToObjectCS(obj, def->rules[k].key, litems[k]);
            memset(litems, 0, sizeof litems);
            kept++;
        } else {
            rc = line_event(m, l, hitems, litems, at, evs);
            free_items(litems, def->nrules);
            if (rc < 0)
                goto fail;
            kept += rc == 0;
        }
    }
    rc = 0;
    if (!m->bad && m->nlines == 0) {
        m->bad = 1;
        rc = xd_x12_missing(m->sk, m->se, def->line, "no %s segment", def->line);
    } else if (!m->bad && kept == 0) {
        m->bad = 1;
        rc = xd_x12_issue(m->sk, m->se, 0, 0, 0, none, "no %s with a quantity above 0", def->line);
    }
    if (rc < 0)
        goto fail;
    if (!m->bad && lines) {
        cJSON *data = data_of(m, hitems, 1, &lines, NULL);
        if (!data) {
            rc = XD_ENOMEM;
            goto fail;
        }
        rc = envelope(m, data, at, 1, NULL, &ev);
        if (rc == 0)
            rc = keep(m, evs, ev);
        if (rc < 0)
            goto fail;
    }
    rc = m->bad ? 1 : 0;
fail:
    free_items(hitems, def->nrules);
    free_items(litems, def->nrules);
    cJSON_Delete(lines);
    return rc;
}

int xd_x12_map(const struct x12_doc *d, const struct xd_convert_opts *o, struct x12_sink *sk,
               struct x12_scratch *scratch, cJSON *out, size_t *nout)
{
    struct mctx m = {.d = d, .o = o, .sk = sk};
    m.lines = scratch->p;
    m.cap = scratch->cap / sizeof *m.lines;
    cJSON *evs = NULL;
    int rc;
    m.def = setdef_for(d->st01);
    if (!m.def || d->nsegs < 2)
        return XD_EINVAL;
    m.st = &d->segs[0];
    m.se = &d->segs[d->nsegs - 1];
    rc = capture(&m);
    if (rc < 0)
        goto fail;
    evs = cJSON_CreateArray();
    if (!evs) {
        rc = XD_ENOMEM;
        goto fail;
    }
    rc = build(&m, evs);
    if (rc != 0)
        goto fail;
    while (evs->child) { /* move them over, in order */
        cJSON *ev = cJSON_DetachItemViaPointer(evs, evs->child);
        cJSON_AddItemToArray(out, ev);
        (*nout)++;
    }
fail:
    cJSON_Delete(evs);
    scratch->p = m.lines;
    scratch->cap = m.cap * sizeof *m.lines;
    return rc;
}
