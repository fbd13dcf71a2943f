/*
 * Backoff with full jitter and the Retry-After parser (see backoff.h).
 * The HTTP-date parser is hand-written (no strptime, no locale, no TZ):
 * a date is converted with days_from_civil (H. Hinnant's algorithm).
 */
#include "deliver/backoff.h"
#include "core/err.h"

#include <string.h>

uint64_t xd_backoff_cap_ms(const struct xd_retry *r, unsigned attempt)
{
    uint64_t init = r->initial_backoff_ms, max = r->max_backoff_ms;
    unsigned shift = attempt > 1 ? attempt - 1 : 0;
    if (init == 0)
        return 0;
    /* init < 2^32, so init << shift cannot overflow while shift < 32. */
    uint64_t cap = shift < 32 ? init << shift : UINT64_MAX;
    return cap < max ? cap : max;
}

uint64_t xd_backoff_ms(const struct xd_retry *r, unsigned attempt, uint64_t (*rnd)(void *),
                       void *rnd_ctx)
{
    uint64_t cap = xd_backoff_cap_ms(r, attempt);
    if (!rnd || cap == 0)
        return cap;
    return rnd(rnd_ctx) % (cap + 1);
}

uint64_t xd_backoff_floor(const struct xd_retry *r, uint64_t backoff_ms, uint64_t retry_after_ms)
{
    uint64_t floor = retry_after_ms < r->max_backoff_ms ? retry_after_ms : r->max_backoff_ms;
    return backoff_ms > floor ? backoff_ms : floor;
}

/* ---- Retry-After -------------------------------------------------------- */

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* Days since 1970-01-01 of a proleptic Gregorian date (m 1..12). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static int is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* A cursor over the value; every reader returns 0 or -1 and advances. */
struct cur {
    const char *p;
};

static int lit(struct cur *c, char ch)
{
    if (*c->p != ch)
        return -1;
    c->p++;
    return 0;
}

/* Exactly n digits (n > 0), or 1..n when exact is 0. */
static int digits(struct cur *c, int n, int exact, int64_t *out)
{
    int64_t v = 0;
    int k = 0;
    while (k < n && is_digit(c->p[k])) {
        v = v * 10 + (c->p[k] - '0');
        k++;
    }
    if (k == 0 || (exact && k != n) || is_digit(c->p[k]))
        return -1;
    c->p += k;
    *out = v;
    return 0;
}

static int word(struct cur *c, char *out, size_t cap)
{
    size_t n = 0;
    while (is_alpha(c->p[n])) {
        if (n + 1 >= cap)
            return -1;
        out[n] = c->p[n];
        n++;
    }
    if (n == 0)
        return -1;
    out[n] = '\0';
    c->p += n;
    return 0;
}

static int month(struct cur *c, unsigned *m)
{
    static const char names[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    for (unsigned i = 0; i < 12; i++)
        if (strncmp(c->p, names + 3 * i, 3) == 0) {
            c->p += 3;
            *m = i + 1;
            return 0;
        }
    return -1;
}

static int day_name(const char *w, int long_form)
{
    static const char *const days[] = {"Monday", "Tuesday",  "Wednesday", "Thursday",
                                       "Friday", "Saturday", "Sunday"};
    for (size_t i = 0; i < 7; i++) {
        if (long_form ? strcmp(w, days[i]) == 0 : (strlen(w) == 3 && !strncmp(w, days[i], 3)))
            return 0;
    }
    return -1;
}

static int hms(struct cur *c, int64_t *h, int64_t *mi, int64_t *s)
{
    if (digits(c, 2, 1, h) < 0 || lit(c, ':') < 0 || digits(c, 2, 1, mi) < 0 || lit(c, ':') < 0 ||
        digits(c, 2, 1, s) < 0)
        return -1;
    return *h <= 23 && *mi <= 59 && *s <= 60 ? 0 : -1;
}

/* Parses an HTTP-date into Unix seconds; -1 when it is not one. */
static int http_date(const char *s, int64_t now_s, int64_t *out)
{
    struct cur c = {s};
    char wd[16];
    int64_t y, d, h, mi, sec;
    unsigned m;
    if (word(&c, wd, sizeof wd) < 0)
        return -1;
    if (*c.p == ',' && strlen(wd) == 3) { /* IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT */
        if (day_name(wd, 0) < 0 || lit(&c, ',') < 0 || lit(&c, ' ') < 0 ||
            digits(&c, 2, 1, &d) < 0 || lit(&c, ' ') < 0 || month(&c, &m) < 0 || lit(&c, ' ') < 0 ||
            digits(&c, 4, 1, &y) < 0 || lit(&c, ' ') < 0 || hms(&c, &h, &mi, &sec) < 0 ||
            strcmp(c.p, " GMT") != 0)
            return -1;
    } else if (*c.p == ',') { /* RFC 850: Sunday, 06-Nov-94 08:49:37 GMT */
        if (day_name(wd, 1) < 0 || lit(&c, ',') < 0 || lit(&c, ' ') < 0 ||
            digits(&c, 2, 1, &d) < 0 || lit(&c, '-') < 0 || month(&c, &m) < 0 || lit(&c, '-') < 0 ||
            digits(&c, 2, 1, &y) < 0 || lit(&c, ' ') < 0 || hms(&c, &h, &mi, &sec) < 0 ||
            strcmp(c.p, " GMT") != 0)
            return -1;
        /*
         * RFC 9110 5.6.7: a two-digit year that looks more than 50 years in
         * the future is in the past century.
         */
        int64_t now_year = 1970 + now_s / 31556952; /* close enough for this rule */
        y += now_year - now_year % 100;
        if (y > now_year + 50)
            y -= 100;
    } else { /* asctime: Sun Nov  6 08:49:37 1994 */
        if (day_name(wd, 0) < 0 || lit(&c, ' ') < 0 || month(&c, &m) < 0 || lit(&c, ' ') < 0)
            return -1;
        if (*c.p == ' ')
            c.p++;
        if (digits(&c, 2, 0, &d) < 0 || lit(&c, ' ') < 0 || hms(&c, &h, &mi, &sec) < 0 ||
            lit(&c, ' ') < 0 || digits(&c, 4, 1, &y) < 0 || *c.p != '\0')
            return -1;
    }
    static const unsigned mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    unsigned dim = mdays[m - 1] + (m == 2 && is_leap(y));
    if (d < 1 || d > dim)
        return -1;
    *out = days_from_civil(y, m, (unsigned)d) * 86400 + h * 3600 + mi * 60 + sec;
    return 0;
}

int xd_retry_after_parse(const char *value, int64_t now_s, uint64_t *delay_ms)
{
    char v[64];
    if (!value)
        return XD_EPARSE;
    while (*value == ' ' || *value == '\t')
        value++;
    size_t n = strlen(value);
    while (n > 0 && (value[n - 1] == ' ' || value[n - 1] == '\t'))
        n--;
    if (n == 0 || n >= sizeof v)
        return XD_EPARSE;
    memcpy(v, value, n);
    v[n] = '\0';

    if (is_digit(v[0])) { /* delta-seconds */
        uint64_t s = 0;
        int huge = 0;
        for (size_t i = 0; i < n; i++) {
            if (!is_digit(v[i]))
                return XD_EPARSE;
            /* Keeps s * 1000 within 64 bits; past that the wait saturates. */
            if (s > (UINT64_MAX / 1000 - 9) / 10)
                huge = 1;
            else
                s = s * 10 + (uint64_t)(v[i] - '0');
        }
        *delay_ms = huge ? UINT64_MAX : s * 1000;
        return 0;
    }
    int64_t at;
    if (http_date(v, now_s, &at) < 0)
        return XD_EPARSE;
    *delay_ms = at > now_s ? (uint64_t)(at - now_s) * 1000 : 0;
    return 0;
}
