/*
 * Rating one event (rate.h): find the customer's card for the service
 * date, count each rule's quantity with the basis table (basis.c), price it
 * flat or band by band, round each amount half-even to the currency's minor
 * unit (xd_dec_round, the only rounding), apply min_amount, derive the
 * charge ids; then voids and their reversals through the ledger interface.
 * Also the charge list (with its string storage) and the JSON of a charge.
 */
#include "rating/rate.h"

#include "core/buf.h"
#include "core/err.h"

#include <openssl/evp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the charge list and its strings --------------------------------------- */

/* Strings of a charge list live in blocks that never move (the array of charges may). */
struct xd_strblock {
    struct xd_strblock *next;
    size_t used, cap;
    char data[];
};

#define XD_STRBLOCK_MIN 8192

void xd_charges_init(struct xd_charges *cs)
{
    memset(cs, 0, sizeof *cs);
}

void xd_charges_dispose(struct xd_charges *cs)
{
    struct xd_strblock *b = cs->blocks;
    while (b) {
        struct xd_strblock *next = b->next;
        free(b);
        b = next;
    }
    free(cs->v);
    memset(cs, 0, sizeof *cs);
}

void xd_charges_clear(struct xd_charges *cs)
{
    /* Keep the newest block (the first in the chain), free the rest. */
    struct xd_strblock *b = cs->blocks;
    if (b) {
        struct xd_strblock *rest = b->next;
        while (rest) {
            struct xd_strblock *next = rest->next;
            free(rest);
            rest = next;
        }
        b->next = NULL;
        b->used = 0;
    }
    cs->n = 0;
}

static const char *strcopy(struct xd_charges *cs, const char *s)
{
    if (!s)
        return NULL;
    size_t n = strlen(s) + 1;
    struct xd_strblock *b = cs->blocks;
    if (!b || b->cap - b->used < n) {
        size_t cap = n > XD_STRBLOCK_MIN ? n : XD_STRBLOCK_MIN;
        b = malloc(sizeof *b + cap);
        if (!b)
            return NULL;
        b->cap = cap;
        b->used = 0;
        b->next = cs->blocks;
        cs->blocks = b;
    }
    char *p = b->data + b->used;
    memcpy(p, s, n);
    b->used += n;
    return p;
}

int xd_charges_push(struct xd_charges *cs, const struct xd_charge *c)
{
    if (cs->n == cs->cap) {
        size_t cap = cs->cap ? cs->cap * 2 : 16;
        struct xd_charge *v = realloc(cs->v, cap * sizeof *v);
        if (!v)
            return XD_ENOMEM;
        cs->v = v;
        cs->cap = cap;
    }
    struct xd_charge *d = &cs->v[cs->n];
    *d = *c;
    const char *const src[] = {c->event_id, c->customer,  c->code,
                               c->unit,     c->warehouse, c->reference};
    const char **dst[] = {&d->event_id, &d->customer,  &d->code,
                          &d->unit,     &d->warehouse, &d->reference};
    for (size_t i = 0; i < sizeof src / sizeof src[0]; i++) {
        *dst[i] = strcopy(cs, src[i]);
        if (src[i] && !*dst[i])
            return XD_ENOMEM;
    }
    cs->n++;
    return 0;
}

/* ---- JSON ------------------------------------------------------------------ */

int xd_charge_json(struct xd_buf *b, const struct xd_charge *c)
{
    char q[XD_DEC_BUFSZ], p[XD_DEC_BUFSZ], a[XD_DEC_BUFSZ];
    xd_dec_format(xd_dec_normal(c->quantity), q, sizeof q);
    xd_dec_format(c->unit_price, p, sizeof p);
    xd_dec_format(c->amount, a, sizeof a);
    const struct {
        const char *key, *value;
    } f[] = {
        {"charge_id", c->charge_id},
        {"event_id", c->event_id},
        {"customer", c->customer},
        {"code", c->code},
        {"quantity", q},
        {"unit", c->unit},
        {"unit_price", p},
        {"amount", a},
        {"currency", c->currency},
        {"service_date", c->service_date},
        {"warehouse", c->warehouse},
        {"reference", c->reference},
    };
    xd_buf_putc(b, '{');
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
        if (i)
            xd_buf_putc(b, ',');
        xd_buf_putc(b, '"');
        xd_buf_puts(b, f[i].key);
        xd_buf_puts(b, "\":");
        if (f[i].value)
            xd_buf_json_str(b, f[i].value);
        else
            xd_buf_puts(b, "null");
    }
    xd_buf_putc(b, '}');
    return b->oom ? XD_ENOMEM : 0;
}

/* ---- ids ------------------------------------------------------------------- */

static EVP_MD *sha256_md;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

/* Fetched once: EVP_sha256() would look the implementation up again on every digest. */
static void sha256_init(void)
{
    sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

static void hashed_id(const void *data, size_t len, char *out)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    pthread_once(&sha256_once, sha256_init);
    if (!EVP_Digest(data, len, md, &mdlen, sha256_md ? sha256_md : EVP_sha256(), NULL))
        memset(md, 0, sizeof md); /* never seen; an all-zero id is still stable */
    memcpy(out, "chg-", 4);
    for (int i = 0; i < 8; i++) {
        out[4 + 2 * i] = hex[md[i] >> 4];
        out[5 + 2 * i] = hex[md[i] & 15];
    }
    out[XD_CHARGE_ID_LEN] = 0;
}

void xd_charge_id(const char *event_id, const char *code, unsigned band, char *out)
{
    /* event_id NUL code NUL band: unambiguous, as neither string holds a NUL. */
    char buf[XD_EVENT_ID_MAX + 1 + 512 + 1 + 16];
    size_t ne = strnlen(event_id, XD_EVENT_ID_MAX), nc = strnlen(code, 512);
    memcpy(buf, event_id, ne);
    buf[ne] = 0;
    memcpy(buf + ne + 1, code, nc);
    buf[ne + 1 + nc] = 0;
    int nb = snprintf(buf + ne + nc + 2, 16, "%u", band);
    hashed_id(buf, ne + nc + 2 + (size_t)nb, out);
}

void xd_reversal_id(const char *charge_id, char *out)
{
    char buf[XD_CHARGE_ID_LEN + 8];
    size_t n = strnlen(charge_id, XD_CHARGE_ID_LEN);
    memcpy(buf, charge_id, n);
    memcpy(buf + n, ":void", 5);
    hashed_id(buf, n + 5, out);
}

/* ---- when ------------------------------------------------------------------ */

static int digits(const char *s, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++)
        v = v * 10 + (s[i] - '0');
    return v;
}

static long floor_div(int64_t a, int64_t b)
{
    return (long)(a / b - (a % b != 0 && (a < 0) != (b < 0)));
}

static const char *str_at(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

int xd_rate_when(const cJSON *ev, enum xd_event_type type, int64_t *occurred_us, long *day)
{
    const char *t = str_at(ev, "occurred_at");
    char date[11];
    long d0;
    if (!t || !xd_datetime_valid(t))
        return XD_EINVAL;
    memcpy(date, t, 10);
    date[10] = 0;
    if (xd_day_parse(date, &d0) < 0)
        return XD_EINVAL;
    int64_t secs =
        (int64_t)d0 * 86400 + digits(t + 11, 2) * 3600 + digits(t + 14, 2) * 60 + digits(t + 17, 2);
    const char *p = t + 19;
    int64_t frac = 0;
    if (*p == '.') {
        int n = 0;
        for (p++; *p >= '0' && *p <= '9'; p++, n++)
            if (n < 6)
                frac = frac * 10 + (*p - '0');
        for (; n < 6; n++)
            frac *= 10;
    }
    if (*p == '+' || *p == '-') {
        int off = digits(p + 1, 2) * 3600 + digits(p + 4, 2) * 60;
        secs -= *p == '+' ? off : -off; /* 14:00+02:00 is 12:00Z */
    }
    *occurred_us = secs * 1000000 + frac;
    *day = floor_div(secs, 86400);
    if (type == XD_EV_INVENTORY_SNAPSHOT) {
        const cJSON *data = cJSON_GetObjectItemCaseSensitive(ev, "data");
        if (xd_day_parse(str_at(data, "as_of"), day) < 0)
            return XD_EINVAL;
    }
    return 0;
}

/* ---- rating ---------------------------------------------------------------- */

/* The document a charge refers to, by event type. */
static const char *const reference_field[XD_EV__COUNT] = {
    [XD_EV_SHIPMENT_CONFIRMED] = "shipment_id", [XD_EV_SHIPMENT_VOIDED] = "shipment_id",
    [XD_EV_GOODS_RECEIVED] = "receipt_id",      [XD_EV_INVENTORY_ADJUSTED] = "adjustment_id",
    [XD_EV_INVENTORY_SNAPSHOT] = "as_of",       [XD_EV_DELIVERY_CONFIRMED] = "shipment_id",
};

static void why_printf(struct xd_buf *why, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void why_printf(struct xd_buf *why, const char *fmt, ...)
{
    if (!why)
        return;
    va_list ap;
    va_start(ap, fmt);
    xd_buf_vprintf(why, fmt, ap);
    va_end(ap);
}

/* Everything one rating call shares. */
struct rating {
    const struct xd_card *card;
    const cJSON *data;
    struct xd_charge tmpl; /* the fields every charge of the event has */
    struct xd_charges *out;
    struct xd_buf *why;
};

static int emit(struct rating *g, const struct xd_rule *rule, unsigned band, struct xd_dec qty,
                struct xd_dec price, struct xd_dec amount)
{
    struct xd_charge c = g->tmpl;
    xd_charge_id(c.event_id, rule->code, band, c.charge_id);
    c.code = rule->code;
    c.unit = xd_bases[rule->per].unit;
    c.band = band;
    c.quantity = qty;
    c.unit_price = price;
    c.amount = amount;
    return xd_charges_push(g->out, &c);
}

static int overflow(struct rating *g, const struct xd_rule *rule)
{
    why_printf(g->why, "%s: the amount is beyond the exact decimal range (36 digits)", rule->code);
    return XD_ELIMIT;
}

/* quantity × price rounded half-even to the currency's minor unit. */
static int priced(struct rating *g, const struct xd_rule *rule, struct xd_dec q, struct xd_dec p,
                  struct xd_dec *amount)
{
    struct xd_dec x;
    if (xd_dec_mul(q, p, &x) < 0 || xd_dec_round(x, g->card->minor, amount) < 0)
        return overflow(g, rule);
    return 0;
}

/* Graduated within the event: band i takes the units above band i-1's up_to, up to its own. */
static int rate_bands(struct rating *g, const struct xd_rule *rule, struct xd_dec q)
{
    struct xd_dec below = xd_dec_int(0); /* units already priced */
    for (size_t i = 0; i < rule->nbands; i++) {
        const struct xd_band *b = &rule->bands[i];
        struct xd_dec top = b->open || xd_dec_cmp(q, b->up_to) < 0 ? q : b->up_to;
        struct xd_dec bq, amount;
        if (xd_dec_sub(top, below, &bq) < 0)
            return overflow(g, rule);
        if (xd_dec_sign(bq) <= 0)
            break;
        int rc = priced(g, rule, bq, b->price, &amount);
        if (rc < 0)
            return rc;
        rc = emit(g, rule, (unsigned)i, bq, b->price, amount);
        if (rc < 0)
            return rc;
        below = top;
    }
    return 0;
}

/* per: freight — quantity 1 at freight.amount × (1 + markup/100), rounded to the minor unit. */
static int rate_freight(struct rating *g, const struct xd_rule *rule)
{
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(g->data, "freight");
    if (!cJSON_IsObject(f))
        return 0;
    const char *amount_s = str_at(f, "amount"), *cur = str_at(f, "currency");
    struct xd_dec amount, factor, x, price;
    if (!amount_s || !cur || xd_dec_parse(amount_s, &amount) < 0) {
        why_printf(g->why, "%s: data.freight needs amount (a decimal string) and currency",
                   rule->code);
        return XD_EINVAL;
    }
    if (strcmp(cur, g->card->currency) != 0) {
        why_printf(g->why,
                   "%s: data.freight.currency is %s but the card for customer '%s' from %s is in "
                   "%s (no conversion)",
                   rule->code, cur, g->card->customer, g->card->from, g->card->currency);
        return XD_EINVAL;
    }
    if (xd_dec_sign(amount) == 0)
        return 0; /* nothing to pass on */
    if (xd_dec_add(xd_dec_int(100), rule->markup, &factor) < 0 ||
        xd_dec_mul(amount, factor, &x) < 0)
        return overflow(g, rule);
    x = xd_dec_normal(x);
    if (x.scale + 2 > XD_DEC_MAX_SCALE)
        return overflow(g, rule);
    x.scale += 2; /* ÷ 100, exactly */
    if (xd_dec_round(x, g->card->minor, &price) < 0)
        return overflow(g, rule);
    return emit(g, rule, 0, xd_dec_int(1), price, price);
}

/* min_amount: the rule's charges in out[from..] together come to at least it. */
static int apply_min(struct rating *g, const struct xd_rule *rule, size_t from)
{
    struct xd_charges *out = g->out;
    if (!rule->has_min || out->n == from)
        return 0;
    struct xd_dec total = xd_dec_int(0), diff;
    for (size_t i = from; i < out->n; i++)
        if (xd_dec_add(total, out->v[i].amount, &total) < 0)
            return overflow(g, rule);
    if (xd_dec_cmp(total, rule->min_amount) >= 0)
        return 0;
    /* The shortfall goes on the first band's charge (a flat rule has only that one). */
    if (xd_dec_sub(rule->min_amount, total, &diff) < 0 ||
        xd_dec_add(out->v[from].amount, diff, &out->v[from].amount) < 0 ||
        xd_dec_round(out->v[from].amount, g->card->minor, &out->v[from].amount) < 0)
        return overflow(g, rule);
    return 0;
}

static int reversal(struct xd_charges *out, const struct xd_charge *orig,
                    const struct xd_void_info *v)
{
    struct xd_charge c = *orig;
    memcpy(c.reverses, orig->charge_id, sizeof c.reverses);
    xd_reversal_id(orig->charge_id, c.charge_id);
    c.amount = xd_dec_neg(orig->amount);
    c.event_id = v->event_id;
    memcpy(c.service_date, v->service_date, sizeof c.service_date);
    c.source = XD_EV_SHIPMENT_VOIDED;
    c.occurred_us = v->occurred_us;
    return xd_charges_push(out, &c);
}

/* The reversal of orig unless the ledger has it: 0 or an error. */
static int reverse_once(const struct xd_ledger *ledger, struct xd_charges *out,
                        const struct xd_charge *orig, const struct xd_void_info *v)
{
    char id[XD_CHARGE_ID_LEN + 1];
    xd_reversal_id(orig->charge_id, id);
    int rc = ledger->ops->has(ledger->ctx, id);
    if (rc != 0)
        return rc < 0 ? rc : 0;
    return reversal(out, orig, v);
}

struct void_walk {
    const struct xd_ledger *ledger;
    struct xd_charges *out;
    const struct xd_void_info *v;
};

static int void_visit(void *arg, const struct xd_charge *c)
{
    struct void_walk *w = arg;
    /* Charges of the shipment itself that happened before the void; not earlier reversals. */
    if (c->reverses[0] || c->source != XD_EV_SHIPMENT_CONFIRMED ||
        c->occurred_us > w->v->occurred_us)
        return 0;
    return reverse_once(w->ledger, w->out, c, w->v);
}

static int rate_void(const cJSON *ev, const struct xd_ledger *ledger, int64_t us, long day,
                     struct xd_charges *out, struct xd_buf *why)
{
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(ev, "data");
    const char *wh = str_at(data, "warehouse"), *sid = str_at(data, "shipment_id");
    const char *id = str_at(ev, "event_id");
    if (!wh || !sid || !id || strlen(id) > XD_EVENT_ID_MAX) {
        why_printf(why, "shipment.voided needs event_id, data.warehouse and data.shipment_id");
        return XD_EINVAL;
    }
    if (!ledger)
        return 0;
    struct xd_void_info v = {.occurred_us = us};
    memcpy(v.event_id, id, strlen(id) + 1);
    xd_day_format(day, v.service_date);
    struct void_walk w = {.ledger = ledger, .out = out, .v = &v};
    return ledger->ops->each_for_shipment(ledger->ctx, wh, sid, void_visit, &w);
}

/* Event types some basis applies to: the others are rated to nothing without a card. */
static unsigned rated_types(void)
{
    unsigned m = 0;
    for (int i = 0; i < XD_PER__COUNT; i++)
        m |= xd_bases[i].events;
    return m;
}

int xd_rate_event(const struct xd_rating *r, const cJSON *ev, enum xd_event_type type,
                  const struct xd_ledger *ledger, struct xd_charges *out, struct xd_buf *why)
{
    size_t before = out->n;
    int64_t us;
    long day;
    int rc = xd_rate_when(ev, type, &us, &day);
    if (rc < 0) {
        why_printf(why, "occurred_at (or as_of) is missing or malformed");
        goto fail;
    }
    if (type == XD_EV_SHIPMENT_VOIDED) {
        rc = rate_void(ev, ledger, us, day, out, why);
        if (rc < 0)
            goto fail;
        return 0;
    }
    if ((unsigned)type >= XD_EV__COUNT || !(rated_types() & (1u << type)))
        return 0;

    const cJSON *data = cJSON_GetObjectItemCaseSensitive(ev, "data");
    const char *event_id = str_at(ev, "event_id"), *customer = str_at(data, "customer");
    if (!event_id || !customer) {
        why_printf(why, "%s needs event_id and data.customer", xd_event_type_name(type));
        rc = XD_EINVAL;
        goto fail;
    }
    int any = 0;
    const struct xd_card *card = xd_rating_card(r, customer, day, &any);
    if (!card) {
        char d[11];
        xd_day_format(day, d);
        if (any)
            why_printf(why, "no rate card for customer '%s' on %s (its first card starts later)",
                       customer, d);
        else
            why_printf(why, "no rate card for customer '%s'", customer);
        rc = XD_ENOTFOUND;
        goto fail;
    }

    struct rating g = {.card = card, .data = data, .out = out, .why = why};
    struct xd_charge *t = &g.tmpl;
    memset(t, 0, sizeof *t);
    t->event_id = event_id;
    t->customer = customer;
    t->warehouse = str_at(data, "warehouse");
    t->reference = str_at(data, reference_field[type]);
    memcpy(t->currency, card->currency, sizeof t->currency);
    xd_day_format(day, t->service_date);
    t->source = type;
    t->occurred_us = us;

    for (size_t i = 0; i < card->nrules; i++) {
        const struct xd_rule *rule = &card->rules[i];
        if (rule->on != type)
            continue;
        if (rule->when) {
            int truthy = 0;
            if (!ledger || !ledger->conds) {
                why_printf(why, "rule %s has a when condition, which cannot be evaluated here",
                           rule->code);
                rc = XD_EINVAL;
                goto fail;
            }
            rc = ledger->conds->test(ledger->conds->ctx, rule->when, ev, &truthy, why);
            if (rc < 0) {
                rc = XD_EINVAL;
                goto fail;
            }
            if (!truthy)
                continue;
        }
        size_t from = out->n;
        if (rule->per == XD_PER_FREIGHT) {
            rc = rate_freight(&g, rule);
        } else {
            struct xd_dec q;
            rc = xd_bases[rule->per].quantity(data, &q, why);
            if (rc == 0 && xd_dec_sign(q) > 0)
                rc = rate_bands(&g, rule, q);
        }
        if (rc == 0)
            rc = apply_min(&g, rule, from);
        if (rc < 0)
            goto fail;
    }

    /* Confirmed after its void (events out of order): reversed at once. */
    if (type == XD_EV_SHIPMENT_CONFIRMED && ledger && out->n > before && t->warehouse &&
        t->reference) {
        struct xd_void_info v;
        rc = ledger->ops->find_void(ledger->ctx, t->warehouse, t->reference, us, &v);
        if (rc < 0)
            goto fail;
        size_t end = out->n;
        for (size_t i = before; rc == 1 && i < end; i++) {
            struct xd_charge orig = out->v[i]; /* a copy: pushing may move the array */
            int rc2 = reverse_once(ledger, out, &orig, &v);
            if (rc2 < 0) {
                rc = rc2;
                goto fail;
            }
        }
    }
    return 0;

fail:
    out->n = before;
    return rc;
}
