/*
 * The exact decimal of money.h: 128-bit integer units with a decimal scale.
 * Arithmetic checks the 36-digit limit before it could overflow (division
 * based checks, so no compiler runtime helper is needed for 128-bit overflow
 * builtins); xd_dec_round() is the only place a value loses digits. The ISO
 * 4217 table at the end is sorted by code for bsearch (the unit test checks).
 */
#include "rating/money.h"

#include "core/err.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

__extension__ typedef unsigned __int128 xd_u128;

static const int64_t p10_64[19] = {
    1LL,
    10LL,
    100LL,
    1000LL,
    10000LL,
    100000LL,
    1000000LL,
    10000000LL,
    100000000LL,
    1000000000LL,
    10000000000LL,
    100000000000LL,
    1000000000000LL,
    10000000000000LL,
    100000000000000LL,
    1000000000000000LL,
    10000000000000000LL,
    100000000000000000LL,
    1000000000000000000LL,
};

/* 10^n for 0 <= n <= 36. */
static xd_i128 p10(int n)
{
    if (n <= 18)
        return p10_64[n];
    return (xd_i128)p10_64[18] * p10_64[n - 18];
}

static xd_u128 mag(xd_i128 v)
{
    return v < 0 ? (xd_u128)0 - (xd_u128)v : (xd_u128)v;
}

/* |v| < 10^36 */
static int fits(xd_i128 v)
{
    return mag(v) < (xd_u128)p10(XD_DEC_MAX_DIGITS);
}

/* v × 10^k when the result stays under 10^36 (k <= 36). */
static int scale_up(xd_i128 v, int k, xd_i128 *out)
{
    if (k == 0) {
        *out = v;
        return 0;
    }
    if (k > XD_DEC_MAX_DIGITS || mag(v) >= (xd_u128)p10(XD_DEC_MAX_DIGITS - k))
        return XD_ELIMIT;
    *out = v * p10(k);
    return 0;
}

struct xd_dec xd_dec_int(int64_t v)
{
    struct xd_dec d = {.units = v, .scale = 0};
    return d;
}

int xd_dec_parsen(const char *s, size_t len, struct xd_dec *out)
{
    size_t i = 0;
    int neg = 0, sig = 0, scale = 0, any = 0;
    xd_i128 u = 0;
    if (i < len && s[i] == '-')
        neg = 1, i++;
    for (; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
        any = 1;
        if (u == 0 && s[i] == '0')
            continue;
        if (++sig > XD_DEC_MAX_DIGITS)
            return XD_ELIMIT;
        u = u * 10 + (s[i] - '0');
    }
    if (!any)
        return XD_EINVAL;
    if (i < len && s[i] == '.') {
        i++;
        size_t start = i;
        for (; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
            if (++scale > XD_DEC_MAX_SCALE)
                return XD_ELIMIT;
            if (u != 0 || s[i] != '0')
                if (++sig > XD_DEC_MAX_DIGITS)
                    return XD_ELIMIT;
            u = u * 10 + (s[i] - '0');
        }
        if (i == start)
            return XD_EINVAL;
    }
    if (i != len)
        return XD_EINVAL;
    out->units = neg ? -u : u;
    out->scale = scale;
    return 0;
}

int xd_dec_parse(const char *s, struct xd_dec *out)
{
    return xd_dec_parsen(s, strlen(s), out);
}

/* Digits (no sign, no point) and decimal exponent of printf's "%.*e" output. */
static int from_exp_form(const char *buf, struct xd_dec *out)
{
    const char *p = buf;
    int neg = 0, n = 0;
    int64_t digits = 0;
    if (*p == '-')
        neg = 1, p++;
    for (; *p && *p != 'e'; p++) {
        if (*p == '.')
            continue;
        digits = digits * 10 + (*p - '0');
        n++;
    }
    if (*p != 'e')
        return XD_EINVAL;
    int exp = atoi(p + 1);
    while (n > 1 && digits % 10 == 0)
        digits /= 10, n--, exp++; /* "1.50e+00" -> 15e-1 */
    /* value = digits × 10^(exp - (n - 1)) */
    int scale = (n - 1) - exp;
    xd_i128 u = digits;
    if (scale < 0) {
        if (scale_up(u, -scale, &u) < 0)
            return XD_ELIMIT;
        scale = 0;
    } else if (scale > XD_DEC_MAX_SCALE) {
        return XD_ELIMIT;
    }
    out->units = neg ? -u : u;
    out->scale = scale;
    return 0;
}

int xd_dec_from_double(double d, struct xd_dec *out)
{
    if (!isfinite(d))
        return XD_EINVAL;
    /* Fast path for what most quantities are: whole numbers and a few decimals.
     * m / 10^k is correctly rounded (m < 2^53, 10^k exact), so when it gives d back
     * the decimal m × 10^-k is a round-trip form, and the smallest such k the shortest. */
    for (int k = 0; k <= 9; k++) {
        double x = d * (double)p10_64[k];
        if (!(fabs(x) < 9007199254740992.0))
            break;
        double m = nearbyint(x);
        if (m / (double)p10_64[k] == d) {
            out->units = (int64_t)m;
            out->scale = k;
            *out = xd_dec_normal(*out);
            return 0;
        }
    }
    /* The general rule: fewest significant digits that read back exactly. */
    char buf[40];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*e", prec - 1, d);
        if (strtod(buf, NULL) == d)
            return from_exp_form(buf, out);
    }
    return XD_EINVAL; /* not reached: 17 digits always round-trip */
}

int xd_dec_format(struct xd_dec d, char *out, size_t cap)
{
    char tmp[XD_DEC_BUFSZ];
    size_t n = 0;
    xd_u128 m = mag(d.units);
    do {
        tmp[n++] = (char)('0' + (int)(m % 10));
        m /= 10;
    } while (m);
    while (n < (size_t)d.scale + 1)
        tmp[n++] = '0';
    size_t need = (d.units < 0) + n + (d.scale > 0) + 1;
    if (need > cap)
        return XD_ETOOBIG;
    size_t o = 0;
    if (d.units < 0)
        out[o++] = '-';
    for (size_t i = n; i-- > 0;) {
        out[o++] = tmp[i];
        if (i == (size_t)d.scale && d.scale > 0)
            out[o++] = '.';
    }
    out[o] = 0;
    return (int)o;
}

/* Both at the larger scale; XD_ELIMIT when that overflows. */
static int align(struct xd_dec *a, struct xd_dec *b)
{
    if (a->scale < b->scale) {
        if (scale_up(a->units, b->scale - a->scale, &a->units) < 0)
            return XD_ELIMIT;
        a->scale = b->scale;
    } else if (b->scale < a->scale) {
        if (scale_up(b->units, a->scale - b->scale, &b->units) < 0)
            return XD_ELIMIT;
        b->scale = a->scale;
    }
    return 0;
}

int xd_dec_add(struct xd_dec a, struct xd_dec b, struct xd_dec *out)
{
    if (align(&a, &b) < 0)
        return XD_ELIMIT;
    xd_i128 s = a.units + b.units; /* each < 10^36: no overflow of 128 bits */
    if (!fits(s))
        return XD_ELIMIT;
    out->units = s;
    out->scale = a.scale;
    return 0;
}

int xd_dec_sub(struct xd_dec a, struct xd_dec b, struct xd_dec *out)
{
    return xd_dec_add(a, xd_dec_neg(b), out);
}

struct xd_dec xd_dec_neg(struct xd_dec a)
{
    a.units = -a.units;
    return a;
}

/* a × b without normalising; XD_ELIMIT beyond the limits. */
static int mul_raw(struct xd_dec a, struct xd_dec b, struct xd_dec *out)
{
    int scale = a.scale + b.scale;
    if (scale > XD_DEC_MAX_SCALE)
        return XD_ELIMIT;
    int64_t x, y, p;
    if (a.units >= INT64_MIN && a.units <= INT64_MAX && b.units >= INT64_MIN &&
        b.units <= INT64_MAX) {
        x = (int64_t)a.units, y = (int64_t)b.units;
        if (!__builtin_mul_overflow(x, y, &p)) {
            out->units = p;
            out->scale = scale;
            return 0;
        }
    }
    xd_u128 ma = mag(a.units), mb = mag(b.units);
    xd_u128 lim = (xd_u128)p10(XD_DEC_MAX_DIGITS) - 1;
    if (ma && mb && ma > lim / mb)
        return XD_ELIMIT;
    out->units = a.units * b.units;
    out->scale = scale;
    return 0;
}

int xd_dec_mul(struct xd_dec a, struct xd_dec b, struct xd_dec *out)
{
    if (mul_raw(a, b, out) == 0)
        return 0;
    /* Trailing zeros may be all that is in the way (1.000000 × 1.0000...). */
    if (mul_raw(xd_dec_normal(a), xd_dec_normal(b), out) < 0)
        return XD_ELIMIT;
    *out = xd_dec_normal(*out);
    return 0;
}

int xd_dec_round(struct xd_dec d, int scale, struct xd_dec *out)
{
    if (scale < 0 || scale > XD_DEC_MAX_SCALE)
        return XD_EINVAL;
    if (scale >= d.scale) {
        xd_i128 u;
        if (scale_up(d.units, scale - d.scale, &u) < 0)
            return XD_ELIMIT;
        out->units = u;
        out->scale = scale;
        return 0;
    }
    xd_i128 p = p10(d.scale - scale);
    xd_i128 q = d.units / p, r = d.units % p; /* truncated toward zero */
    xd_u128 twice = mag(r) * 2, pp = (xd_u128)p;
    if (twice > pp || (twice == pp && (q & 1)))
        q += d.units < 0 ? -1 : 1;
    out->units = q;
    out->scale = scale;
    return 0;
}

struct xd_dec xd_dec_normal(struct xd_dec d)
{
    if (d.units == 0) {
        d.scale = 0;
        return d;
    }
    while (d.scale > 0 && d.units % 10 == 0) {
        d.units /= 10;
        d.scale--;
    }
    return d;
}

int xd_dec_sign(struct xd_dec a)
{
    return (a.units > 0) - (a.units < 0);
}

int xd_dec_cmp(struct xd_dec a, struct xd_dec b)
{
    struct xd_dec x = a, y = b;
    if (align(&x, &y) == 0)
        return (x.units > y.units) - (x.units < y.units);
    int sa = xd_dec_sign(a), sb = xd_dec_sign(b);
    if (sa != sb)
        return sa < sb ? -1 : 1;
    /* Same sign: integer parts, then fractions at the larger scale (|f| < 10^scale). */
    xd_i128 pa = p10(a.scale), pb = p10(b.scale);
    xd_i128 ia = a.units / pa, ib = b.units / pb;
    if (ia != ib)
        return ia < ib ? -1 : 1;
    int s = a.scale > b.scale ? a.scale : b.scale;
    xd_i128 fa = (a.units % pa) * p10(s - a.scale), fb = (b.units % pb) * p10(s - b.scale);
    return (fa > fb) - (fa < fb);
}

/* ---- ISO 4217 ------------------------------------------------------------ */

/* Active currencies and the decimals of their minor unit, sorted by code. */
static const struct currency {
    char code[4];
    unsigned char minor;
} currencies[] = {
    {"AED", 2}, {"AFN", 2}, {"ALL", 2}, {"AMD", 2}, {"ANG", 2}, {"AOA", 2}, {"ARS", 2}, {"AUD", 2},
    {"AWG", 2}, {"AZN", 2}, {"BAM", 2}, {"BBD", 2}, {"BDT", 2}, {"BGN", 2}, {"BHD", 3}, {"BIF", 0},
    {"BMD", 2}, {"BND", 2}, {"BOB", 2}, {"BRL", 2}, {"BSD", 2}, {"BTN", 2}, {"BWP", 2}, {"BYN", 2},
    {"BZD", 2}, {"CAD", 2}, {"CDF", 2}, {"CHF", 2}, {"CLF", 4}, {"CLP", 0}, {"CNY", 2}, {"COP", 2},
    {"CRC", 2}, {"CUP", 2}, {"CVE", 2}, {"CZK", 2}, {"DJF", 0}, {"DKK", 2}, {"DOP", 2}, {"DZD", 2},
    {"EGP", 2}, {"ERN", 2}, {"ETB", 2}, {"EUR", 2}, {"FJD", 2}, {"FKP", 2}, {"GBP", 2}, {"GEL", 2},
    {"GHS", 2}, {"GIP", 2}, {"GMD", 2}, {"GNF", 0}, {"GTQ", 2}, {"GYD", 2}, {"HKD", 2}, {"HNL", 2},
    {"HTG", 2}, {"HUF", 2}, {"IDR", 2}, {"ILS", 2}, {"INR", 2}, {"IQD", 3}, {"IRR", 2}, {"ISK", 0},
    {"JMD", 2}, {"JOD", 3}, {"JPY", 0}, {"KES", 2}, {"KGS", 2}, {"KHR", 2}, {"KMF", 0}, {"KPW", 2},
    {"KRW", 0}, {"KWD", 3}, {"KYD", 2}, {"KZT", 2}, {"LAK", 2}, {"LBP", 2}, {"LKR", 2}, {"LRD", 2},
    {"LSL", 2}, {"LYD", 3}, {"MAD", 2}, {"MDL", 2}, {"MGA", 2}, {"MKD", 2}, {"MMK", 2}, {"MNT", 2},
    {"MOP", 2}, {"MRU", 2}, {"MUR", 2}, {"MVR", 2}, {"MWK", 2}, {"MXN", 2}, {"MYR", 2}, {"MZN", 2},
    {"NAD", 2}, {"NGN", 2}, {"NIO", 2}, {"NOK", 2}, {"NPR", 2}, {"NZD", 2}, {"OMR", 3}, {"PAB", 2},
    {"PEN", 2}, {"PGK", 2}, {"PHP", 2}, {"PKR", 2}, {"PLN", 2}, {"PYG", 0}, {"QAR", 2}, {"RON", 2},
    {"RSD", 2}, {"RUB", 2}, {"RWF", 0}, {"SAR", 2}, {"SBD", 2}, {"SCR", 2}, {"SDG", 2}, {"SEK", 2},
    {"SGD", 2}, {"SHP", 2}, {"SLE", 2}, {"SOS", 2}, {"SRD", 2}, {"SSP", 2}, {"STN", 2}, {"SVC", 2},
    {"SYP", 2}, {"SZL", 2}, {"THB", 2}, {"TJS", 2}, {"TMT", 2}, {"TND", 3}, {"TOP", 2}, {"TRY", 2},
    {"TTD", 2}, {"TWD", 2}, {"TZS", 2}, {"UAH", 2}, {"UGX", 0}, {"USD", 2}, {"UYI", 0}, {"UYU", 2},
    {"UYW", 4}, {"UZS", 2}, {"VED", 2}, {"VES", 2}, {"VND", 0}, {"VUV", 0}, {"WST", 2}, {"XAF", 0},
    {"XCD", 2}, {"XCG", 2}, {"XOF", 0}, {"XPF", 0}, {"YER", 2}, {"ZAR", 2}, {"ZMW", 2}, {"ZWG", 2},
};

static int cmp_currency(const void *key, const void *elem)
{
    return strcmp(key, ((const struct currency *)elem)->code);
}

int xd_currency_minor(const char *code)
{
    const struct currency *c = bsearch(code, currencies, sizeof currencies / sizeof currencies[0],
                                       sizeof currencies[0], cmp_currency);
    return c ? c->minor : XD_ENOTFOUND;
}

size_t xd_currency_count(void)
{
    return sizeof currencies / sizeof currencies[0];
}

const char *xd_currency_code(size_t i)
{
    return i < xd_currency_count() ? currencies[i].code : NULL;
}
