/*
 * Compiling the config's rate cards (card.h): every string of a card is
 * parsed and checked here once, so rating an event never parses a price or
 * meets a rule it cannot apply. All problems of all cards are reported, each
 * as `FILE:LINE:COL: rate_cards[i].charges[j].FIELD: message`, using the
 * positions the loader recorded (the rule's or tier's own position when the
 * field has none of its own).
 */
#include "rating/card.h"

#include "core/buf.h"
#include "core/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define XD_PRICE_MAX_SCALE 18  /* decimals of a price, an up_to or a markup */
#define XD_CODE_MAX        128 /* bytes of a charge code */

/* ---- days ----------------------------------------------------------------- */

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
static long days_from_civil(long y, unsigned m, unsigned d)
{
    y -= m <= 2;
    long era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (long)doe - 719468;
}

int xd_day_parse(const char *s, long *day)
{
    if (!s || !xd_date_valid(s))
        return XD_EINVAL;
    long y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0');
    unsigned m = (unsigned)((s[5] - '0') * 10 + (s[6] - '0'));
    unsigned d = (unsigned)((s[8] - '0') * 10 + (s[9] - '0'));
    *day = days_from_civil(y, m, d);
    return 0;
}

void xd_day_format(long z, char out[11])
{
    z += 719468;
    long era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    long y = (long)yoe + era * 400;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    unsigned d = doy - (153 * mp + 2) / 5 + 1;
    unsigned m = mp < 10 ? mp + 3 : mp - 9;
    y += m <= 2;
    if (y < 0 || y > 9999)
        y = y < 0 ? 0 : 9999; /* outside RFC 3339; never from a valid event */
    snprintf(out, 11, "%04ld-%02u-%02u", y, m % 100, d % 100);
}

/* ---- reporting -------------------------------------------------------------- */

struct ctx {
    const char *file;
    struct xd_buf *errs;
    size_t nerr;
    int oom;
};

static void fail(struct ctx *c, struct xd_config_pos pos, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fail(struct ctx *c, struct xd_config_pos pos, const char *fmt, ...)
{
    c->nerr++;
    if (!c->errs)
        return;
    va_list ap;
    va_start(ap, fmt);
    xd_buf_printf(c->errs, "%s:%u:%u: ", c->file, pos.line, pos.col);
    xd_buf_vprintf(c->errs, fmt, ap);
    xd_buf_putc(c->errs, '\n');
    va_end(ap);
}

/*
 * A non-negative decimal with at most max_scale decimals. On a problem,
 * reports "PATH.FIELD: ..." and returns -1.
 */
static int decimal(struct ctx *c, struct xd_config_pos pos, const char *path, const char *field,
                   const char *s, int max_scale, const char *scale_why, struct xd_dec *out)
{
    int rc = xd_dec_parse(s, out);
    if (rc == XD_ELIMIT) {
        fail(c, pos, "%s.%s: '%s' has more than %d digits or decimals", path, field, s,
             XD_DEC_MAX_DIGITS);
        return -1;
    }
    if (rc < 0) {
        fail(c, pos, "%s.%s: '%s' is not a decimal number like \"2.50\"", path, field, s);
        return -1;
    }
    if (xd_dec_sign(*out) < 0) {
        fail(c, pos, "%s.%s: must not be negative (%s)", path, field, s);
        return -1;
    }
    if (xd_dec_normal(*out).scale > max_scale) {
        fail(c, pos, "%s.%s: '%s' has more than %d decimals%s", path, field, s, max_scale,
             scale_why);
        return -1;
    }
    return 0;
}

/* An amount in the card's currency: at most its minor unit's decimals, kept at that scale. */
static int amount(struct ctx *c, struct xd_config_pos pos, const char *path, const char *field,
                  const char *s, const struct xd_card *card, struct xd_dec *out)
{
    char why[48];
    snprintf(why, sizeof why, " (%s has %d)", card->currency, card->minor);
    if (!card->currency[0]) /* unknown currency, reported already: check the rest */
        return decimal(c, pos, path, field, s, XD_DEC_MAX_SCALE, "", out);
    if (decimal(c, pos, path, field, s, card->minor, why, out) < 0)
        return -1;
    if (xd_dec_round(*out, card->minor, out) < 0) { /* exact: only zeros are appended */
        fail(c, pos, "%s.%s: '%s' is too large", path, field, s);
        return -1;
    }
    return 0;
}

/* "shipment.confirmed and goods.received" */
static void event_list(unsigned events, char *out, size_t cap)
{
    size_t o = 0;
    out[0] = 0;
    int n = 0, total = __builtin_popcount(events);
    for (int t = 0; t < XD_EV__COUNT; t++) {
        if (!(events & (1u << t)))
            continue;
        const char *sep = n == 0 ? "" : n + 1 == total ? " and " : ", ";
        int w = snprintf(out + o, cap - o, "%s%s", sep, xd_event_type_name(t));
        if (w < 0 || (size_t)w >= cap - o)
            return;
        o += (size_t)w;
        n++;
    }
}

/* ---- one rule ------------------------------------------------------------- */

static int code_ok(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > XD_CODE_MAX)
        return 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < ' ' || *p == 0x7f)
            return 0;
    return 1;
}

static int compile_tiers(struct ctx *c, const struct xd_charge_rule *cr, const char *path,
                         struct xd_rule *r)
{
    r->bands = calloc(cr->ntiers, sizeof *r->bands);
    if (!r->bands)
        return XD_ENOMEM;
    r->nbands = cr->ntiers;
    const struct xd_band *prev = NULL;
    for (size_t i = 0; i < cr->ntiers; i++) {
        const struct xd_tier *t = &cr->tiers[i];
        struct xd_band *b = &r->bands[i];
        char tp[160];
        snprintf(tp, sizeof tp, "%s.tiers[%zu]", path, i);
        int last = i + 1 == cr->ntiers;
        if (!t->price)
            fail(c, t->pos, "%s: needs price", tp);
        else
            decimal(c, t->pos, tp, "price", t->price, XD_PRICE_MAX_SCALE, "", &b->price);
        if (last) {
            b->open = 1;
            if (t->up_to)
                fail(c, t->pos,
                     "%s.up_to: the last tier has no up_to (it prices all remaining "
                     "units)",
                     tp);
            continue;
        }
        if (!t->up_to) {
            fail(c, t->pos, "%s: needs up_to (only the last tier has none)", tp);
            continue;
        }
        if (decimal(c, t->pos, tp, "up_to", t->up_to, XD_PRICE_MAX_SCALE, "", &b->up_to) < 0)
            continue;
        if (xd_dec_sign(b->up_to) == 0)
            fail(c, t->pos, "%s.up_to: must be greater than 0", tp);
        else if (prev && xd_dec_cmp(b->up_to, prev->up_to) <= 0)
            fail(c, t->pos, "%s.up_to: overlaps the tier before (up_to %s must be greater than %s)",
                 tp, t->up_to, cr->tiers[i - 1].up_to);
        prev = b;
    }
    return 0;
}

static int compile_rule(struct ctx *c, const struct xd_charge_rule *cr, const char *path,
                        const struct xd_card *card, struct xd_rule *r)
{
    r->pos = cr->pos;
    r->markup = xd_dec_int(0);
    if (!cr->code || !code_ok(cr->code))
        fail(c, cr->pos, "%s.code: %s", path,
             cr->code ? "must be 1-128 bytes without control characters" : "is required");
    r->code = strdup(cr->code ? cr->code : "");
    if (!r->code)
        return XD_ENOMEM;

    int on = cr->on ? xd_event_type_parse(cr->on) : -1;
    if (on < 0)
        fail(c, cr->pos, "%s.on: %s%s%s", path, cr->on ? "unknown event type '" : "is required",
             cr->on ? cr->on : "", cr->on ? "'" : "");
    int per = cr->per ? xd_basis_parse(cr->per) : -1;
    if (per < 0) {
        char names[200] = "";
        for (int i = 0; i < XD_PER__COUNT; i++) {
            strcat(names, i ? ", " : "");
            strcat(names, xd_bases[i].name);
        }
        fail(c, cr->pos, "%s.per: %s%s%s (one of %s)", path,
             cr->per ? "unknown basis '" : "is required", cr->per ? cr->per : "",
             cr->per ? "'" : "", names);
    } else if (on >= 0 && !(xd_bases[per].events & (1u << on))) {
        char evs[200];
        event_list(xd_bases[per].events, evs, sizeof evs);
        fail(c, cr->pos, "%s.per: '%s' does not apply to %s (it applies to %s)", path, cr->per,
             cr->on, evs);
    }
    r->on = on < 0 ? XD_EV_SHIPMENT_CONFIRMED : (enum xd_event_type)on;
    r->per = per < 0 ? XD_PER_SHIPMENT : (enum xd_basis)per;

    if (cr->when) {
        r->when = strdup(cr->when);
        if (!r->when)
            return XD_ENOMEM;
    }

    if (per == XD_PER_FREIGHT) {
        if (cr->price)
            fail(c, cr->pos,
                 "%s.price: does not apply to per: freight (the price is the freight "
                 "amount plus markup_percent)",
                 path);
        if (cr->ntiers)
            fail(c, cr->pos, "%s.tiers: does not apply to per: freight", path);
        if (cr->markup_percent)
            decimal(c, cr->pos, path, "markup_percent", cr->markup_percent, XD_PRICE_MAX_SCALE, "",
                    &r->markup);
    } else if (per >= 0) {
        if (cr->markup_percent)
            fail(c, cr->pos, "%s.markup_percent: applies only to per: freight", path);
        if (cr->price && cr->ntiers) {
            fail(c, cr->pos, "%s.tiers: give price or tiers, not both", path);
        } else if (cr->price) {
            r->bands = calloc(1, sizeof *r->bands);
            if (!r->bands)
                return XD_ENOMEM;
            r->nbands = 1;
            r->bands[0].open = 1;
            decimal(c, cr->pos, path, "price", cr->price, XD_PRICE_MAX_SCALE, "",
                    &r->bands[0].price);
        } else if (cr->ntiers) {
            if (compile_tiers(c, cr, path, r) < 0)
                return XD_ENOMEM;
        } else {
            fail(c, cr->pos, "%s: needs price or tiers", path);
        }
    }
    if (cr->min_amount) {
        r->has_min = 1;
        amount(c, cr->pos, path, "min_amount", cr->min_amount, card, &r->min_amount);
    }
    return 0;
}

/* ---- cards ---------------------------------------------------------------- */

static void card_dispose(struct xd_card *k)
{
    for (size_t j = 0; j < k->nrules; j++) {
        free(k->rules[j].code);
        free(k->rules[j].when);
        free(k->rules[j].bands);
    }
    free(k->rules);
    free(k->customer);
}

static int compile_card(struct ctx *c, const struct xd_rate_card *rc, size_t i, struct xd_card *k)
{
    char path[64];
    snprintf(path, sizeof path, "rate_cards[%zu]", i);
    k->pos = rc->pos;
    if (!rc->customer || !*rc->customer)
        fail(c, rc->pos, "%s.customer: is required", path);
    k->customer = strdup(rc->customer ? rc->customer : "");
    if (!k->customer)
        return XD_ENOMEM;

    k->minor = 2;
    int minor = rc->currency ? xd_currency_minor(rc->currency) : XD_ENOTFOUND;
    if (minor < 0) {
        fail(c, rc->pos, "%s.currency: %s%s%s", path,
             rc->currency ? "unknown currency '" : "is required", rc->currency ? rc->currency : "",
             rc->currency ? "' (not an ISO 4217 code with a minor unit)" : "");
    } else {
        k->minor = minor;
        memcpy(k->currency, rc->currency, 4);
    }
    if (!rc->effective_from || xd_day_parse(rc->effective_from, &k->from_day) < 0)
        fail(c, rc->pos, "%s.effective_from: %s", path,
             rc->effective_from ? "must be a date YYYY-MM-DD" : "is required");
    else
        memcpy(k->from, rc->effective_from, 11);
    if (rc->minimum_monthly) {
        k->has_minimum_monthly = 1;
        amount(c, rc->pos, path, "minimum_monthly", rc->minimum_monthly, k, &k->minimum_monthly);
    }
    if (rc->ncharges == 0)
        fail(c, rc->pos, "%s.charges: must have at least one rule", path);

    k->rules = calloc(rc->ncharges ? rc->ncharges : 1, sizeof *k->rules);
    if (!k->rules)
        return XD_ENOMEM;
    for (size_t j = 0; j < rc->ncharges; j++) {
        char rp[96];
        snprintf(rp, sizeof rp, "%s.charges[%zu]", path, j);
        int rc2 = compile_rule(c, &rc->charges[j], rp, k, &k->rules[j]);
        k->nrules = j + 1;
        if (rc2 < 0)
            return rc2;
        /* Charge ids come from the event, the code and the band: one code per event type. */
        for (size_t p = 0; p < j; p++)
            if (rc->charges[p].on && rc->charges[j].on &&
                strcmp(rc->charges[p].on, rc->charges[j].on) == 0 &&
                strcmp(k->rules[p].code, k->rules[j].code) == 0)
                fail(c, rc->charges[j].pos,
                     "%s.code: '%s' is already charged on %s by charges[%zu] (codes must "
                     "differ per event type: the charge id is made from event and code)",
                     rp, k->rules[j].code, xd_event_type_name(k->rules[j].on), p);
    }
    return 0;
}

static int cmp_card(const void *a, const void *b)
{
    const struct xd_card *x = a, *y = b;
    int c = strcmp(x->customer, y->customer);
    if (c)
        return c;
    return (x->from_day > y->from_day) - (x->from_day < y->from_day);
}

void xd_rating_destroy(struct xd_rating *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->ncards; i++)
        card_dispose(&r->cards[i]);
    free(r->cards);
    free(r);
}

int xd_rating_compile(const struct xd_config *cfg, struct xd_rating **out, struct xd_buf *errs)
{
    struct ctx c = {.file = cfg->path ? cfg->path : "config", .errs = errs};
    int rc = 0;
    struct xd_rating *r = calloc(1, sizeof *r);
    if (!r)
        return XD_ENOMEM;
    r->cards = calloc(cfg->nrate_cards ? cfg->nrate_cards : 1, sizeof *r->cards);
    if (!r->cards) {
        rc = XD_ENOMEM;
        goto fail;
    }
    for (size_t i = 0; i < cfg->nrate_cards; i++) {
        rc = compile_card(&c, &cfg->rate_cards[i], i, &r->cards[i]);
        r->ncards = i + 1;
        if (rc < 0)
            goto fail;
    }
    /* One card per customer and date: which one applies would be a guess. */
    for (size_t i = 0; i < r->ncards; i++)
        for (size_t j = 0; j < i; j++)
            if (r->cards[i].from[0] && strcmp(r->cards[i].from, r->cards[j].from) == 0 &&
                strcmp(r->cards[i].customer, r->cards[j].customer) == 0) {
                fail(&c, r->cards[i].pos,
                     "rate_cards[%zu]: a second card for customer '%s' from %s (the first is "
                     "rate_cards[%zu])",
                     i, r->cards[i].customer, r->cards[i].from, j);
                break;
            }
    if (errs && errs->oom) {
        rc = XD_ENOMEM;
        goto fail;
    }
    if (c.nerr) {
        rc = XD_ECONFIG;
        goto fail;
    }
    qsort(r->cards, r->ncards, sizeof *r->cards, cmp_card);
    *out = r;
    return 0;

fail:
    xd_rating_destroy(r);
    return rc;
}

int xd_rating_check(const struct xd_config *cfg, struct xd_buf *errs)
{
    struct xd_rating *r = NULL;
    int rc = xd_rating_compile(cfg, &r, errs);
    xd_rating_destroy(r);
    return rc;
}

const struct xd_card *xd_rating_card(const struct xd_rating *r, const char *customer, long day,
                                     int *any)
{
    /* First card of the customer (binary search), then the last one in effect on day. */
    size_t lo = 0, hi = r->ncards;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(r->cards[mid].customer, customer) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    const struct xd_card *best = NULL;
    int found = 0;
    for (size_t i = lo; i < r->ncards && strcmp(r->cards[i].customer, customer) == 0; i++) {
        found = 1;
        if (r->cards[i].from_day <= day)
            best = &r->cards[i];
    }
    if (any)
        *any = found;
    return best;
}
