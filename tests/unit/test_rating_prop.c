/*
 * Rating as a property: random rate cards and random event sequences
 * (shipments, receipts, adjustments, snapshots, voids, deliveries; card
 * changes, ids reused for re-shipments, events before any card, freight in
 * the wrong currency) are rated
 *   - in order against a fresh in-memory ledger,
 *   - again, all of them, into the same ledger (nothing new may appear),
 *   - in a shuffled order against another fresh ledger,
 * and all three must give the same set of charge ids with the same amounts
 * and the same events refused. Every amount, and the sums per currency, must
 * match an independent computation in this file with GMP rationals (mpq),
 * which works from the decimal strings the generator wrote — not from the
 * doubles cJSON holds — and rounds half-even on its own.
 *
 * XD_PROP_SEED and XD_PROP_ROUNDS override the seed and the number of rounds.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <gmp.h>

#include "core/buf.h"
#include "core/config.h"
#include "core/err.h"
#include "ingest/intake.h"
#include "rating/card.h"
#include "rating/ledger.h"
#include "rating/rate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- random ------------------------------------------------------------------------ */

static uint64_t rng = 88172645463325252ULL;

static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static int pick(int n) /* 0..n-1 */
{
    return (int)(rnd() % (uint64_t)n);
}

/* A decimal string: an integer part below `whole` and up to `scale` decimals. */
static void rand_dec(char *out, size_t cap, int whole, int scale)
{
    int s = pick(scale + 1);
    int ip = pick(whole);
    if (s == 0) {
        snprintf(out, cap, "%d", ip);
        return;
    }
    static const int p10[] = {1, 10, 100, 1000, 10000};
    snprintf(out, cap, "%d.%0*d", ip, s, pick(p10[s]));
}

/* ---- the model: cards and events as the generator wrote them --------------------------- */

enum { MAX_RULES = 6, MAX_BANDS = 4, MAX_CARDS = 8, MAX_LINES = 5, MAX_EVENTS = 120 };

struct m_rule {
    char code[16];
    int on;  /* enum xd_event_type */
    int per; /* enum xd_basis */
    int nbands;
    char up_to[MAX_BANDS][16];
    char price[MAX_BANDS][16];
    char min[16];    /* "" when none */
    char markup[16]; /* freight, "" when none */
};

struct m_card {
    char customer[16];
    char currency[8];
    int minor;
    char from[32];
    int nrules;
    struct m_rule rules[MAX_RULES];
};

struct m_event {
    char id[32];
    int type;
    char time[64]; /* occurred_at as written */
    long long utc; /* seconds, for ordering voids */
    char day[32];  /* service date */
    char customer[16];
    char wh[16];
    char ref[32]; /* shipment_id, receipt_id, adjustment_id, as_of */
    int nlines;
    char qty[MAX_LINES][16];
    char pallets[MAX_LINES + 1][16]; /* data.pallets, or items[].pallets; "" absent */
    char cartons[16], weight[16];
    char freight[16], freight_cur[8];
};

struct model {
    struct m_card cards[MAX_CARDS];
    int ncards;
    struct m_event ev[MAX_EVENTS];
    int nev;
};

static const char *const currencies[] = {"USD", "EUR", "JPY", "KWD", "BHD", "CHF", "SEK", "GBP"};
static const int minors[] = {2, 2, 0, 3, 3, 2, 2, 2};
static const char *const customers[] = {"ACME", "GLOBEX", "INITECH"};

/* Which (event type, basis) pairs a rule may have: contract 6.1. */
static const struct {
    int on, per;
} combos[] = {
    {XD_EV_SHIPMENT_CONFIRMED, XD_PER_SHIPMENT},   {XD_EV_SHIPMENT_CONFIRMED, XD_PER_LINE},
    {XD_EV_SHIPMENT_CONFIRMED, XD_PER_UNIT},       {XD_EV_SHIPMENT_CONFIRMED, XD_PER_PALLET},
    {XD_EV_SHIPMENT_CONFIRMED, XD_PER_KG},         {XD_EV_SHIPMENT_CONFIRMED, XD_PER_FREIGHT},
    {XD_EV_GOODS_RECEIVED, XD_PER_LINE},           {XD_EV_GOODS_RECEIVED, XD_PER_UNIT},
    {XD_EV_GOODS_RECEIVED, XD_PER_PALLET},         {XD_EV_GOODS_RECEIVED, XD_PER_CARTON},
    {XD_EV_GOODS_RECEIVED, XD_PER_RECEIPT},        {XD_EV_INVENTORY_ADJUSTED, XD_PER_ADJUSTMENT},
    {XD_EV_INVENTORY_SNAPSHOT, XD_PER_PALLET_DAY}, {XD_EV_INVENTORY_SNAPSHOT, XD_PER_UNIT_DAY},
};

static void gen_cards(struct model *m)
{
    m->ncards = 0;
    for (int c = 0; c < 3; c++) {
        int cur = pick(8);
        int n = 1 + pick(3);
        int month = 1;
        for (int k = 0; k < n && m->ncards < MAX_CARDS; k++) {
            struct m_card *cd = &m->cards[m->ncards++];
            memset(cd, 0, sizeof *cd);
            snprintf(cd->customer, sizeof cd->customer, "%s", customers[c]);
            snprintf(cd->currency, sizeof cd->currency, "%s", currencies[cur]);
            cd->minor = minors[cur];
            month += k == 0 ? pick(2) : 1 + pick(2);
            snprintf(cd->from, sizeof cd->from, "2026-%02d-%02d", month, 1 + pick(28));
            cd->nrules = 1 + pick(MAX_RULES);
            for (int j = 0; j < cd->nrules; j++) {
                struct m_rule *r = &cd->rules[j];
                int cb = pick((int)(sizeof combos / sizeof combos[0]));
                r->on = combos[cb].on;
                r->per = combos[cb].per;
                snprintf(r->code, sizeof r->code, "R%d", j);
                if (r->per == XD_PER_FREIGHT) {
                    if (pick(4))
                        rand_dec(r->markup, sizeof r->markup, 30, 2);
                } else if (pick(3) == 0) {
                    r->nbands = 2 + pick(MAX_BANDS - 1);
                    int top = 0;
                    for (int b = 0; b < r->nbands; b++) {
                        rand_dec(r->price[b], sizeof r->price[b], 5, 4);
                        if (b + 1 < r->nbands) {
                            top += 1 + pick(40);
                            if (pick(4) == 0)
                                snprintf(r->up_to[b], sizeof r->up_to[b], "%d.5", top++);
                            else
                                snprintf(r->up_to[b], sizeof r->up_to[b], "%d", top);
                        }
                    }
                } else {
                    r->nbands = 1;
                    rand_dec(r->price[0], sizeof r->price[0], 20, 4);
                }
                if (pick(4) == 0)
                    rand_dec(r->min, sizeof r->min, 30, cd->minor);
            }
        }
    }
}

static void card_yaml(const struct model *m, struct xd_buf *y)
{
    xd_buf_puts(y, "rate_cards:\n");
    for (int i = 0; i < m->ncards; i++) {
        const struct m_card *c = &m->cards[i];
        xd_buf_printf(y,
                      "  - customer: %s\n    currency: %s\n    effective_from: %s\n    charges:\n",
                      c->customer, c->currency, c->from);
        for (int j = 0; j < c->nrules; j++) {
            const struct m_rule *r = &c->rules[j];
            xd_buf_printf(y, "      - {code: %s, on: %s, per: %s", r->code,
                          xd_event_type_name(r->on), xd_bases[r->per].name);
            if (r->markup[0])
                xd_buf_printf(y, ", markup_percent: \"%s\"", r->markup);
            if (r->nbands == 1)
                xd_buf_printf(y, ", price: \"%s\"", r->price[0]);
            if (r->nbands > 1) {
                xd_buf_puts(y, ", tiers: [");
                for (int b = 0; b < r->nbands; b++) {
                    xd_buf_printf(y, "%s{", b ? ", " : "");
                    if (r->up_to[b][0])
                        xd_buf_printf(y, "up_to: %s, ", r->up_to[b]);
                    xd_buf_printf(y, "price: \"%s\"}", r->price[b]);
                }
                xd_buf_puts(y, "]");
            }
            if (r->min[0])
                xd_buf_printf(y, ", min_amount: \"%s\"", r->min);
            xd_buf_puts(y, "}\n");
        }
    }
}

/* Days in 2026 (not a leap year) before each month. */
static const int cum[] = {0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334};

static void gen_time(struct m_event *e, int n)
{
    /* Unique instants: the index is part of the seconds. Some with offsets. */
    int doy = pick(212); /* Jan..Jul */
    int month = 0;
    while (month < 11 && cum[month + 1] <= doy)
        month++;
    int day = doy - cum[month] + 1;
    int hh = pick(24), mm = pick(60), ss = n % 60;
    int off = pick(4) == 0 ? (pick(2) ? 1 : -1) * (pick(14) * 60 + (pick(2) ? 30 : 0)) : 0;
    if (off == 0)
        snprintf(e->time, sizeof e->time, "2026-%02d-%02dT%02d:%02d:%02d.%03dZ", month + 1, day, hh,
                 mm, ss, n);
    else
        snprintf(e->time, sizeof e->time, "2026-%02d-%02dT%02d:%02d:%02d.%03d%c%02d:%02d",
                 month + 1, day, hh, mm, ss, n, off > 0 ? '+' : '-', abs(off) / 60, abs(off) % 60);
    long long local = ((long long)doy * 86400 + hh * 3600 + mm * 60 + ss);
    e->utc = (local - off * 60) * 1000 + n; /* milliseconds: unique */
    long long utc_s = local - off * 60;
    long d = (long)(utc_s >= 0 ? utc_s / 86400 : -((-utc_s + 86399) / 86400));
    /* back to a date; 2025-12-31 when before Jan 1 */
    if (d < 0) {
        snprintf(e->day, sizeof e->day, "2025-12-31");
    } else {
        int mo = 0;
        while (mo < 11 && cum[mo + 1] <= d)
            mo++;
        snprintf(e->day, sizeof e->day, "2026-%02d-%02d", mo + 1, (int)(d - cum[mo] + 1));
    }
}

static void gen_qty(char *out, size_t cap)
{
    if (pick(3))
        snprintf(out, cap, "%d", 1 + pick(300));
    else
        snprintf(out, cap, "%d.%d", pick(50), 1 + pick(9)); /* > 0 */
}

static void gen_events(struct model *m, int n)
{
    m->nev = n;
    for (int i = 0; i < n; i++) {
        struct m_event *e = &m->ev[i];
        memset(e, 0, sizeof *e);
        snprintf(e->id, sizeof e->id, "ev-%d", i);
        gen_time(e, i);
        snprintf(e->customer, sizeof e->customer, "%s", customers[pick(3)]);
        snprintf(e->wh, sizeof e->wh, "DC%d", 1 + pick(2));
        int r = pick(20);
        e->type = r < 8    ? XD_EV_SHIPMENT_CONFIRMED
                  : r < 11 ? XD_EV_SHIPMENT_VOIDED
                  : r < 14 ? XD_EV_GOODS_RECEIVED
                  : r < 16 ? XD_EV_INVENTORY_ADJUSTED
                  : r < 19 ? XD_EV_INVENTORY_SNAPSHOT
                           : XD_EV_DELIVERY_CONFIRMED;
        switch (e->type) {
        case XD_EV_SHIPMENT_CONFIRMED:
        case XD_EV_SHIPMENT_VOIDED:
        case XD_EV_DELIVERY_CONFIRMED:
            snprintf(e->ref, sizeof e->ref, "S%d", pick(6)); /* reused: re-shipments, voids */
            break;
        case XD_EV_GOODS_RECEIVED:
            snprintf(e->ref, sizeof e->ref, "S%d", pick(6)); /* may equal a shipment id */
            break;
        case XD_EV_INVENTORY_ADJUSTED:
            snprintf(e->ref, sizeof e->ref, "A%d", i);
            break;
        default:
            snprintf(e->ref, sizeof e->ref, "2026-%02d-%02d", 1 + pick(7), 1 + pick(28));
            strcpy(e->day, e->ref);
            break;
        }
        if (e->type == XD_EV_SHIPMENT_CONFIRMED || e->type == XD_EV_GOODS_RECEIVED ||
            e->type == XD_EV_INVENTORY_SNAPSHOT) {
            e->nlines = 1 + pick(MAX_LINES);
            for (int k = 0; k < e->nlines; k++) {
                gen_qty(e->qty[k], sizeof e->qty[k]);
                if (e->type == XD_EV_INVENTORY_SNAPSHOT && pick(2))
                    rand_dec(e->pallets[k], sizeof e->pallets[k], 6, 1);
            }
        }
        if ((e->type == XD_EV_SHIPMENT_CONFIRMED || e->type == XD_EV_GOODS_RECEIVED) && pick(2))
            rand_dec(e->pallets[MAX_LINES], sizeof e->pallets[0], 6, 1);
        if (e->type == XD_EV_GOODS_RECEIVED && pick(2))
            snprintf(e->cartons, sizeof e->cartons, "%d", pick(80));
        if (e->type == XD_EV_SHIPMENT_CONFIRMED && pick(2))
            rand_dec(e->weight, sizeof e->weight, 500, 3);
        if (e->type == XD_EV_SHIPMENT_CONFIRMED && pick(2)) {
            /* in the customer's currency mostly; sometimes not (that event is refused) */
            const char *cur = NULL;
            int minor = 2;
            for (int c = 0; c < m->ncards && !cur; c++)
                if (strcmp(m->cards[c].customer, e->customer) == 0)
                    cur = m->cards[c].currency, minor = m->cards[c].minor;
            if (!cur || pick(20) == 0)
                cur = currencies[pick(8)], minor = 2;
            snprintf(e->freight_cur, sizeof e->freight_cur, "%s", cur);
            rand_dec(e->freight, sizeof e->freight, 2000, minor);
        }
    }
}

static void event_json(const struct m_event *e, struct xd_buf *b)
{
    xd_buf_printf(b, "{\"event_id\":\"%s\",\"type\":\"%s\",\"occurred_at\":\"%s\",\"data\":{",
                  e->id, xd_event_type_name(e->type), e->time);
    switch (e->type) {
    case XD_EV_SHIPMENT_CONFIRMED:
        xd_buf_printf(b,
                      "\"warehouse\":\"%s\",\"shipment_id\":\"%s\",\"order_id\":\"O\","
                      "\"customer\":\"%s\"",
                      e->wh, e->ref, e->customer);
        break;
    case XD_EV_SHIPMENT_VOIDED:
        xd_buf_printf(b, "\"warehouse\":\"%s\",\"shipment_id\":\"%s\",\"reason\":\"r\"", e->wh,
                      e->ref);
        break;
    case XD_EV_GOODS_RECEIVED:
        xd_buf_printf(b, "\"warehouse\":\"%s\",\"receipt_id\":\"%s\",\"customer\":\"%s\"", e->wh,
                      e->ref, e->customer);
        break;
    case XD_EV_INVENTORY_ADJUSTED:
        xd_buf_printf(b,
                      "\"warehouse\":\"%s\",\"adjustment_id\":\"%s\",\"customer\":\"%s\","
                      "\"sku\":\"K\",\"qty_delta\":-3,\"reason_code\":\"DM\"",
                      e->wh, e->ref, e->customer);
        break;
    case XD_EV_INVENTORY_SNAPSHOT:
        xd_buf_printf(b, "\"warehouse\":\"%s\",\"customer\":\"%s\",\"as_of\":\"%s\"", e->wh,
                      e->customer, e->ref);
        break;
    default:
        xd_buf_printf(b, "\"shipment_id\":\"%s\",\"delivered_at\":\"%s\"", e->ref, e->time);
        break;
    }
    if (e->nlines) {
        xd_buf_printf(b, ",\"%s\":[", e->type == XD_EV_INVENTORY_SNAPSHOT ? "items" : "lines");
        for (int k = 0; k < e->nlines; k++) {
            xd_buf_printf(b, "%s{\"sku\":\"K%d\",\"qty\":%s", k ? "," : "", k, e->qty[k]);
            if (e->pallets[k][0])
                xd_buf_printf(b, ",\"pallets\":%s", e->pallets[k]);
            xd_buf_putc(b, '}');
        }
        xd_buf_putc(b, ']');
    }
    if (e->pallets[MAX_LINES][0])
        xd_buf_printf(b, ",\"pallets\":%s", e->pallets[MAX_LINES]);
    if (e->cartons[0])
        xd_buf_printf(b, ",\"cartons\":%s", e->cartons);
    if (e->weight[0])
        xd_buf_printf(b, ",\"weight_kg\":%s", e->weight);
    if (e->freight[0])
        xd_buf_printf(b, ",\"freight\":{\"amount\":\"%s\",\"currency\":\"%s\"}", e->freight,
                      e->freight_cur);
    xd_buf_puts(b, "}}");
}

/* ---- the independent computation (GMP) ---------------------------------------------- */

static void q_dec(mpq_t q, const char *s)
{
    char digits[64];
    size_t n = 0;
    int scale = -1;
    if (*s == '-')
        digits[n++] = *s++;
    for (const char *p = s; *p; p++) {
        if (*p == '.')
            scale = 0;
        else {
            digits[n++] = *p;
            if (scale >= 0)
                scale++;
        }
    }
    digits[n] = 0;
    mpz_t den;
    mpz_init(den);
    mpz_ui_pow_ui(den, 10, (unsigned long)(scale < 0 ? 0 : scale));
    mpz_set_str(mpq_numref(q), digits, 10);
    mpz_set(mpq_denref(q), den);
    mpq_canonicalize(q);
    mpz_clear(den);
}

/* x rounded half-even to `minor` decimals, as a decimal string. */
static void q_round_str(const mpq_t x, int minor, char *out, size_t cap)
{
    mpq_t y, frac, half;
    mpz_t n, p;
    mpq_inits(y, frac, half, NULL);
    mpz_inits(n, p, NULL);
    mpz_ui_pow_ui(p, 10, (unsigned long)minor);
    mpq_set_z(y, p);
    mpq_mul(y, y, x);
    mpz_fdiv_q(n, mpq_numref(y), mpq_denref(y)); /* floor */
    mpq_set_z(frac, n);
    mpq_sub(frac, y, frac); /* in [0, 1) */
    mpq_set_ui(half, 1, 2);
    int c = mpq_cmp(frac, half);
    if (c > 0 || (c == 0 && mpz_odd_p(n)))
        mpz_add_ui(n, n, 1);
    /* n × 10^-minor as text, at least one digit before the point */
    int neg = mpz_sgn(n) < 0;
    mpz_abs(n, n);
    char *ds = mpz_get_str(NULL, 10, n);
    size_t len = strlen(ds), need = (size_t)minor + 1;
    char padded[128];
    if (len < need) {
        memset(padded, '0', need - len);
        strcpy(padded + need - len, ds);
    } else {
        strcpy(padded, ds);
    }
    size_t pl = strlen(padded), o = 0, ip = pl - (size_t)minor;
    assert_true(pl + 3 <= cap);
    if (neg)
        out[o++] = '-';
    memcpy(out + o, padded, ip);
    o += ip;
    if (minor > 0) {
        out[o++] = '.';
        memcpy(out + o, padded + ip, (size_t)minor);
        o += (size_t)minor;
    }
    out[o] = 0;
    void (*freefunc)(void *, size_t);
    mp_get_memory_functions(NULL, NULL, &freefunc);
    freefunc(ds, len + 1);
    mpq_clears(y, frac, half, NULL);
    mpz_clears(n, p, NULL);
}

/* One expected charge. */
struct x_charge {
    char key[200]; /* event_id/code/band, "rev:" + that for reversals */
    char amount[80];
    char currency[8];
    int event; /* index of the event that produced the original */
};

struct expected {
    struct x_charge *v;
    int n, cap;
    char refused[MAX_EVENTS]; /* events that cannot be rated */
};

static void x_push(struct expected *x, const char *key, const char *amount, const char *cur,
                   int event)
{
    if (x->n == x->cap) {
        x->cap = x->cap ? 2 * x->cap : 64;
        x->v = realloc(x->v, (size_t)x->cap * sizeof *x->v);
    }
    struct x_charge *c = &x->v[x->n++];
    snprintf(c->key, sizeof c->key, "%s", key);
    snprintf(c->amount, sizeof c->amount, "%s", amount);
    snprintf(c->currency, sizeof c->currency, "%s", cur);
    c->event = event;
}

static const struct m_card *x_card(const struct model *m, const struct m_event *e)
{
    const struct m_card *best = NULL;
    for (int i = 0; i < m->ncards; i++) {
        const struct m_card *c = &m->cards[i];
        if (strcmp(c->customer, e->customer) == 0 && strcmp(c->from, e->day) <= 0 &&
            (!best || strcmp(c->from, best->from) > 0))
            best = c;
    }
    return best;
}

static void x_quantity(const struct m_event *e, int per, mpq_t q)
{
    mpq_t t;
    mpq_init(t);
    mpq_set_ui(q, 0, 1);
    switch (per) {
    case XD_PER_SHIPMENT:
    case XD_PER_RECEIPT:
    case XD_PER_ADJUSTMENT:
        mpq_set_ui(q, 1, 1);
        break;
    case XD_PER_LINE:
        mpq_set_ui(q, (unsigned long)e->nlines, 1);
        break;
    case XD_PER_UNIT:
    case XD_PER_UNIT_DAY:
        for (int k = 0; k < e->nlines; k++) {
            q_dec(t, e->qty[k]);
            mpq_add(q, q, t);
        }
        break;
    case XD_PER_PALLET:
        if (e->pallets[MAX_LINES][0])
            q_dec(q, e->pallets[MAX_LINES]);
        break;
    case XD_PER_PALLET_DAY:
        for (int k = 0; k < e->nlines; k++)
            if (e->pallets[k][0]) {
                q_dec(t, e->pallets[k]);
                mpq_add(q, q, t);
            }
        break;
    case XD_PER_CARTON:
        if (e->cartons[0])
            q_dec(q, e->cartons);
        break;
    case XD_PER_KG:
        if (e->weight[0])
            q_dec(q, e->weight);
        break;
    }
    mpq_clear(t);
}

static void expect_model(const struct model *m, struct expected *x)
{
    mpq_t q, lo, hi, bq, price, amt, total, mn, t;
    mpq_inits(q, lo, hi, bq, price, amt, total, mn, t, NULL);
    memset(x->refused, 0, sizeof x->refused);
    for (int i = 0; i < m->nev; i++) {
        const struct m_event *e = &m->ev[i];
        if (e->type == XD_EV_SHIPMENT_VOIDED || e->type == XD_EV_DELIVERY_CONFIRMED)
            continue;
        const struct m_card *c = x_card(m, e);
        if (!c) {
            x->refused[i] = 1;
            continue;
        }
        int first_of_event = x->n;
        for (int j = 0; j < c->nrules && !x->refused[i]; j++) {
            const struct m_rule *r = &c->rules[j];
            if (r->on != e->type)
                continue;
            char amounts[MAX_BANDS][64];
            int nb = 0;
            if (r->per == XD_PER_FREIGHT) {
                if (!e->freight[0])
                    continue;
                if (strcmp(e->freight_cur, c->currency) != 0) {
                    x->refused[i] = 1;
                    break;
                }
                q_dec(amt, e->freight);
                if (mpq_sgn(amt) == 0)
                    continue;
                q_dec(t, r->markup[0] ? r->markup : "0");
                mpq_set_ui(price, 100, 1);
                mpq_add(t, t, price);
                mpq_mul(amt, amt, t);
                mpq_set_ui(t, 1, 100);
                mpq_mul(amt, amt, t);
                q_round_str(amt, c->minor, amounts[nb++], 64);
            } else {
                x_quantity(e, r->per, q);
                if (mpq_sgn(q) <= 0)
                    continue;
                mpq_set_ui(lo, 0, 1);
                for (int b = 0; b < r->nbands; b++) {
                    if (r->up_to[b][0]) {
                        q_dec(hi, r->up_to[b]);
                        if (mpq_cmp(q, hi) < 0)
                            mpq_set(hi, q);
                    } else {
                        mpq_set(hi, q);
                    }
                    mpq_sub(bq, hi, lo);
                    if (mpq_sgn(bq) <= 0)
                        break;
                    q_dec(price, r->price[b]);
                    mpq_mul(amt, bq, price);
                    q_round_str(amt, c->minor, amounts[nb++], 64);
                    mpq_set(lo, hi);
                }
            }
            if (r->min[0] && nb > 0) {
                mpq_set_ui(total, 0, 1);
                for (int b = 0; b < nb; b++) {
                    q_dec(t, amounts[b]);
                    mpq_add(total, total, t);
                }
                q_dec(mn, r->min);
                if (mpq_cmp(total, mn) < 0) {
                    mpq_sub(t, mn, total);
                    q_dec(amt, amounts[0]);
                    mpq_add(amt, amt, t);
                    q_round_str(amt, c->minor, amounts[0], 64);
                }
            }
            for (int b = 0; b < nb; b++) {
                char key[128];
                snprintf(key, sizeof key, "%s/%s/%d", e->id, r->code, b);
                x_push(x, key, amounts[b], c->currency, i);
            }
        }
        if (x->refused[i])
            x->n = first_of_event; /* a refused event charges nothing */
    }
    /* Reversals: a shipment's charges, when a void of it occurred at or after it. */
    int n = x->n;
    for (int k = 0; k < n; k++) {
        const struct m_event *e = &m->ev[x->v[k].event];
        if (e->type != XD_EV_SHIPMENT_CONFIRMED)
            continue;
        int voided = 0;
        for (int i = 0; i < m->nev; i++) {
            const struct m_event *v = &m->ev[i];
            voided |= v->type == XD_EV_SHIPMENT_VOIDED && strcmp(v->wh, e->wh) == 0 &&
                      strcmp(v->ref, e->ref) == 0 && v->utc >= e->utc;
        }
        if (!voided)
            continue;
        char key[200], amount[96];
        size_t kl = strlen(x->v[k].key);
        if (kl > sizeof key - 5)
            kl = sizeof key - 5;
        memcpy(key, "rev:", 4);
        memcpy(key + 4, x->v[k].key, kl);
        key[4 + kl] = 0;
        const char *a = x->v[k].amount;
        if (a[0] == '-')
            snprintf(amount, sizeof amount, "%s", a + 1);
        else if (strspn(a, "0.") == strlen(a))
            snprintf(amount, sizeof amount, "%s", a); /* -0 is 0 */
        else
            snprintf(amount, sizeof amount, "-%s", a);
        char cur[8];
        strcpy(cur, x->v[k].currency); /* x->v may move in x_push */
        x_push(x, key, amount, cur, x->v[k].event);
    }
    mpq_clears(q, lo, hi, bq, price, amt, total, mn, t, NULL);
}

/* ---- running the implementation ------------------------------------------------------- */

struct got {
    struct xd_charges all;
    char refused[MAX_EVENTS];
};

/* Rates events in `order` (indexes into in) against ledger m, appending new charges to g. */
static void run(struct xd_memledger *m, const struct xd_rating *r, const struct xd_intake *in,
                const int *order, int n, struct got *g)
{
    struct xd_buf why;
    xd_buf_init(&why);
    for (int k = 0; k < n; k++) {
        const struct xd_event *ev = &in->events[order[k]];
        xd_buf_reset(&why);
        int rc = xd_memledger_rate(m, r, ev->json, ev->type, &g->all, &why);
        if (rc < 0) {
            assert_true(rc == XD_ENOTFOUND || rc == XD_EINVAL);
            g->refused[order[k]] = 1;
        }
    }
    xd_buf_dispose(&why);
}

/* The key of a produced charge, as the model names it. */
static void got_key(const struct xd_charges *all, size_t i, char *out, size_t cap)
{
    const struct xd_charge *c = &all->v[i];
    if (!c->reverses[0]) {
        snprintf(out, cap, "%s/%s/%u", c->event_id, c->code, c->band);
        return;
    }
    for (size_t j = 0; j < all->n; j++)
        if (strcmp(all->v[j].charge_id, c->reverses) == 0) {
            snprintf(out, cap, "rev:%s/%s/%u", all->v[j].event_id, all->v[j].code, all->v[j].band);
            return;
        }
    snprintf(out, cap, "rev:?");
}

static int cmp_charge_id(const void *a, const void *b)
{
    return strcmp(((const struct xd_charge *)a)->charge_id,
                  ((const struct xd_charge *)b)->charge_id);
}

/* Two runs gave the same ids with the same amounts. */
static void same_set(struct xd_charges *a, struct xd_charges *b, const char *what)
{
    if (a->n != b->n) {
        print_error("%s: %zu charges vs %zu\n", what, a->n, b->n);
        fail();
    }
    struct xd_charge *x = malloc(a->n * sizeof *x + 1), *y = malloc(b->n * sizeof *y + 1);
    memcpy(x, a->v, a->n * sizeof *x);
    memcpy(y, b->v, b->n * sizeof *y);
    qsort(x, a->n, sizeof *x, cmp_charge_id);
    qsort(y, b->n, sizeof *y, cmp_charge_id);
    for (size_t i = 0; i < a->n; i++) {
        assert_string_equal(x[i].charge_id, y[i].charge_id);
        assert_int_equal(xd_dec_cmp(x[i].amount, y[i].amount), 0);
        if (i)
            assert_true(strcmp(x[i - 1].charge_id, x[i].charge_id) < 0); /* no duplicates */
    }
    free(x);
    free(y);
}

/* What the rounds covered, printed at the end: a property test that tests nothing is no test. */
static struct {
    size_t charges, reversals, banded, refused, events;
} seen;

static void one_round(int round)
{
    struct model *m = calloc(1, sizeof *m);
    gen_cards(m);
    gen_events(m, 20 + pick(MAX_EVENTS - 20));

    struct xd_buf yaml, errs, body;
    xd_buf_init(&yaml);
    xd_buf_init(&errs);
    xd_buf_init(&body);
    card_yaml(m, &yaml);
    struct xd_config *cfg = xd_config_parse("prop.yaml", yaml.data, yaml.len, &errs);
    if (!cfg)
        print_error("round %d: cards rejected:\n%s\n%s", round, xd_buf_str(&errs), yaml.data);
    assert_non_null(cfg);
    struct xd_rating *r = NULL;
    int rc = xd_rating_compile(cfg, &r, &errs);
    if (rc < 0)
        print_error("round %d: cards not compiled:\n%s\n%s", round, xd_buf_str(&errs), yaml.data);
    assert_int_equal(rc, 0);

    xd_buf_puts(&body, "{\"events\":[");
    for (int i = 0; i < m->nev; i++) {
        if (i)
            xd_buf_putc(&body, ',');
        event_json(&m->ev[i], &body);
    }
    xd_buf_puts(&body, "]}");
    struct xd_intake_limits lim = {.max_batch = 10000, .max_depth = 64, .max_string = 65536};
    struct xd_intake in;
    xd_intake_init(&in, &lim, "prop");
    rc = xd_intake_add_body(&in, body.data, body.len);
    if (rc < 0)
        print_error("round %d: %s: %s\n", round, in.errs.n ? in.errs.v[0].path : "",
                    in.errs.n ? in.errs.v[0].message : "");
    assert_int_equal(rc, 0);
    assert_int_equal((int)in.n, m->nev);

    int order[MAX_EVENTS];
    for (int i = 0; i < m->nev; i++)
        order[i] = i;

    /* 1: in order; 2: everything again into the same ledger; 3: shuffled, fresh ledger. */
    struct got g1 = {0}, g3 = {0};
    xd_charges_init(&g1.all);
    xd_charges_init(&g3.all);
    struct xd_memledger *l1 = xd_memledger_create(), *l3 = xd_memledger_create();
    run(l1, r, &in, order, m->nev, &g1);
    struct got again = {0};
    xd_charges_init(&again.all);
    run(l1, r, &in, order, m->nev, &again);
    assert_int_equal(again.all.n, 0); /* re-rating produces no new id */
    assert_memory_equal(again.refused, g1.refused, sizeof g1.refused);
    for (int i = m->nev - 1; i > 0; i--) {
        int j = pick(i + 1), t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    run(l3, r, &in, order, m->nev, &g3);
    same_set(&g1.all, &g3.all, "shuffled");
    assert_memory_equal(g1.refused, g3.refused, sizeof g1.refused);

    /* The independent computation. */
    struct expected x = {0};
    expect_model(m, &x);
    for (int i = 0; i < m->nev; i++)
        if (x.refused[i] != g1.refused[i]) {
            print_error("round %d: event %s refused: expected %d, got %d\n", round, m->ev[i].id,
                        x.refused[i], g1.refused[i]);
            fail();
        }
    if ((size_t)x.n != g1.all.n) {
        print_error("round %d: expected %d charges, got %zu\n%s", round, x.n, g1.all.n, yaml.data);
        for (size_t i = 0; i < g1.all.n; i++) {
            char k[128];
            got_key(&g1.all, i, k, sizeof k);
            print_error("  got %s\n", k);
        }
        for (int i = 0; i < x.n; i++)
            print_error("  want %s %s\n", x.v[i].key, x.v[i].amount);
        fail();
    }
    mpq_t sum_x[8], sum_g[8], t;
    mpq_init(t);
    for (int c = 0; c < 8; c++) {
        mpq_init(sum_x[c]);
        mpq_init(sum_g[c]);
    }
    for (size_t i = 0; i < g1.all.n; i++) {
        char k[128], a[XD_DEC_BUFSZ];
        got_key(&g1.all, i, k, sizeof k);
        xd_dec_format(g1.all.v[i].amount, a, sizeof a);
        int found = 0;
        for (int j = 0; j < x.n && !found; j++) {
            if (strcmp(x.v[j].key, k) != 0)
                continue;
            found = 1;
            if (strcmp(x.v[j].amount, a) != 0 || strcmp(x.v[j].currency, g1.all.v[i].currency)) {
                print_error("round %d: %s: amount %s %s, expected %s %s\n", round, k, a,
                            g1.all.v[i].currency, x.v[j].amount, x.v[j].currency);
                fail();
            }
        }
        if (!found) {
            print_error("round %d: unexpected charge %s (%s)\n", round, k, a);
            fail();
        }
        /* sums per currency, from the printed amounts */
        for (int c = 0; c < 8; c++)
            if (strcmp(currencies[c], g1.all.v[i].currency) == 0) {
                q_dec(t, a);
                mpq_add(sum_g[c], sum_g[c], t);
            }
    }
    for (int j = 0; j < x.n; j++)
        for (int c = 0; c < 8; c++)
            if (strcmp(currencies[c], x.v[j].currency) == 0) {
                q_dec(t, x.v[j].amount);
                mpq_add(sum_x[c], sum_x[c], t);
            }
    for (int c = 0; c < 8; c++) {
        if (!mpq_equal(sum_x[c], sum_g[c])) {
            print_error("round %d: %s sums differ\n", round, currencies[c]);
            fail();
        }
        mpq_clear(sum_x[c]);
        mpq_clear(sum_g[c]);
    }
    mpq_clear(t);
    seen.events += (size_t)m->nev;
    for (size_t i = 0; i < g1.all.n; i++) {
        seen.charges++;
        seen.reversals += g1.all.v[i].reverses[0] != 0;
        seen.banded += g1.all.v[i].band > 0;
    }
    for (int i = 0; i < m->nev; i++)
        seen.refused += g1.refused[i];

    free(x.v);
    xd_charges_dispose(&g1.all);
    xd_charges_dispose(&g3.all);
    xd_charges_dispose(&again.all);
    xd_memledger_destroy(l1);
    xd_memledger_destroy(l3);
    xd_intake_dispose(&in);
    xd_rating_destroy(r);
    xd_config_destroy(cfg);
    xd_buf_dispose(&yaml);
    xd_buf_dispose(&errs);
    xd_buf_dispose(&body);
    free(m);
}

static long env_long(const char *name, long dflt)
{
    const char *v = getenv(name);
    return v && *v ? strtol(v, NULL, 0) : dflt;
}

static void test_property(void **state)
{
    (void)state;
    long seed = env_long("XD_PROP_SEED", 20261128);
    long rounds = env_long("XD_PROP_ROUNDS", 300);
    rng ^= (uint64_t)seed * 0x9e3779b97f4a7c15ULL;
    if (!rng)
        rng = 1;
    for (long i = 0; i < rounds; i++)
        one_round((int)i);
    fprintf(stderr,
            "rating property: %ld rounds, %zu events, %zu charges (%zu reversals, %zu in upper "
            "tiers), %zu events refused\n",
            rounds, seen.events, seen.charges, seen.reversals, seen.banded, seen.refused);
    assert_true(seen.reversals > 0 && seen.banded > 0 && seen.refused > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_property),
    };
    return cmocka_run_group_tests_name("rating property", tests, NULL, NULL);
}
