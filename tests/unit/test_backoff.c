/*
 * Backoff: capped exponential with full jitter, with fake random sources
 * (always the highest value, always zero, a counter) so every bound is
 * exact; the cap checked against a plain doubling loop for attempts 1..100
 * and beyond; Retry-After parsing as a table at a pinned "now".
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/err.h"
#include "deliver/backoff.h"
#include "deliver/rand.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

static uint64_t rnd_max(void *ctx)
{
    (void)ctx;
    return UINT64_MAX;
}

static uint64_t rnd_zero(void *ctx)
{
    (void)ctx;
    return 0;
}

static uint64_t rnd_count(void *ctx)
{
    uint64_t *c = ctx;
    return (*c)++;
}

/* The cap by the definition: double from initial, stop at max. */
static uint64_t ref_cap(uint64_t init, uint64_t max, unsigned attempt)
{
    uint64_t c = init;
    if (init == 0)
        return 0;
    for (unsigned k = 1; k < attempt && c < max; k++)
        c *= 2;
    return c < max ? c : max;
}

static const struct xd_retry configs[] = {
    {8, 200, 60000},            /* the defaults */
    {8, 1, 1},                  /* tiny */
    {8, 1000, 1000},            /* no growth */
    {8, 0, 60000},              /* no wait at all */
    {8, 300, 1000},             /* max not a power-of-two multiple */
    {8, 5000, 100},             /* max below initial: max wins */
    {8, UINT_MAX, UINT_MAX},    /* the largest configurable values */
    {8, 1, UINT_MAX},           /* 32 doublings to reach the cap */
    {8, 2147483648u, UINT_MAX}, /* 2^31: one doubling overflows 32 bits */
};

static void test_cap_every_attempt(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof configs / sizeof configs[0]; i++) {
        const struct xd_retry *r = &configs[i];
        for (unsigned a = 1; a <= 100; a++) {
            uint64_t want = ref_cap(r->initial_backoff_ms, r->max_backoff_ms, a);
            uint64_t cap = xd_backoff_cap_ms(r, a);
            if (cap != want)
                fail_msg("config %zu attempt %u: cap %llu, want %llu", i, a,
                         (unsigned long long)cap, (unsigned long long)want);
            /* Full jitter: the highest draw reaches at most the cap, the lowest 0. */
            assert_true(xd_backoff_ms(r, a, rnd_max, NULL) <= cap);
            assert_int_equal(xd_backoff_ms(r, a, rnd_zero, NULL), 0);
            assert_int_equal(xd_backoff_ms(r, a, NULL, NULL), cap); /* no source: no jitter */
        }
    }
}

/* Worked values for the defaults (200 ms doubling, capped at 60 s). */
static void test_defaults_worked(void **state)
{
    (void)state;
    static const uint64_t caps[] = {200,   400,   800,   1600,  3200, 6400,
                                    12800, 25600, 51200, 60000, 60000};
    const struct xd_retry r = {8, 200, 60000};
    for (unsigned a = 1; a <= sizeof caps / sizeof caps[0]; a++)
        assert_int_equal(xd_backoff_cap_ms(&r, a), caps[a - 1]);
    assert_int_equal(xd_backoff_cap_ms(&r, 0), 200); /* attempt 0 counts as 1 */
}

/* Attempts far past 64 (where a naive shift is undefined) stay at the cap. */
static void test_no_overflow(void **state)
{
    (void)state;
    static const unsigned attempts[] = {31,  32,  33,   63,    64,           65,
                                        127, 128, 1000, 65536, UINT_MAX - 1, UINT_MAX};
    for (size_t i = 0; i < sizeof configs / sizeof configs[0]; i++) {
        const struct xd_retry *r = &configs[i];
        for (size_t j = 0; j < sizeof attempts / sizeof attempts[0]; j++) {
            uint64_t top = ref_cap(r->initial_backoff_ms, r->max_backoff_ms, attempts[j]);
            if (attempts[j] >= 64)
                assert_int_equal(top, r->initial_backoff_ms ? r->max_backoff_ms : 0);
            assert_int_equal(xd_backoff_cap_ms(r, attempts[j]), top);
            assert_true(xd_backoff_ms(r, attempts[j], rnd_max, NULL) <= top);
        }
    }
}

/* The draw covers [0, cap]: a counter source hits every value, both ends included. */
static void test_jitter_covers_range(void **state)
{
    (void)state;
    const struct xd_retry r = {8, 10, 1000};
    uint64_t c = 0;
    unsigned char seen[11] = {0};
    for (int i = 0; i < 11; i++) {
        uint64_t w = xd_backoff_ms(&r, 1, rnd_count, &c);
        assert_true(w <= 10);
        seen[w] = 1;
    }
    for (int i = 0; i <= 10; i++)
        assert_true(seen[i]);

    /* With the real source, the waits are spread over the range (not all equal). */
    const struct xd_retry d = {8, 200, 60000};
    uint64_t lo = UINT64_MAX, hi = 0;
    for (int i = 0; i < 1000; i++) {
        uint64_t w = xd_backoff_ms(&d, 5, xd_rand64, NULL);
        assert_true(w <= 3200);
        lo = w < lo ? w : lo;
        hi = w > hi ? w : hi;
    }
    assert_true(lo < 800 && hi > 2400);
}

/* Retry-After is a floor, itself capped at max_backoff_ms. */
static void test_floor(void **state)
{
    (void)state;
    const struct xd_retry r = {8, 200, 60000};
    assert_int_equal(xd_backoff_floor(&r, 100, 7000), 7000);     /* server asks for longer */
    assert_int_equal(xd_backoff_floor(&r, 9000, 7000), 9000);    /* we already wait longer */
    assert_int_equal(xd_backoff_floor(&r, 100, 3600000), 60000); /* capped */
    assert_int_equal(xd_backoff_floor(&r, 100, UINT64_MAX), 60000);
    assert_int_equal(xd_backoff_floor(&r, 100, 0), 100);
}

#define SUN_1994 784111777  /* Sun, 06 Nov 1994 08:49:37 GMT */
#define Y2026    1767225600 /* Thu, 01 Jan 2026 00:00:00 GMT */

static void test_retry_after_parse(void **state)
{
    (void)state;
    static const struct {
        const char *v;
        int64_t now;
        int rc;
        uint64_t ms;
    } cases[] = {
        {"120", Y2026, 0, 120000},
        {"0", Y2026, 0, 0},
        {"  7\t", Y2026, 0, 7000},
        {"007", Y2026, 0, 7000},
        {"99999999999999999999999", Y2026, 0, UINT64_MAX},
        {"18446744073709551", Y2026, 0, UINT64_MAX},
        {"18446744073709", Y2026, 0, 18446744073709000u},
        /* the three HTTP-date forms, 10 s from now */
        {"Sun, 06 Nov 1994 08:49:37 GMT", SUN_1994 - 10, 0, 10000},
        {"Sunday, 06-Nov-94 08:49:37 GMT", SUN_1994 - 10, 0, 10000},
        {"Sun Nov  6 08:49:37 1994", SUN_1994 - 10, 0, 10000},
        {"Sun Nov 16 08:49:37 1994", SUN_1994 - 10, 0, (10 + 10 * 86400) * 1000u},
        /* in the past, or now: no wait */
        {"Sun, 06 Nov 1994 08:49:37 GMT", SUN_1994 + 3600, 0, 0},
        {"Sun, 06 Nov 1994 08:49:37 GMT", SUN_1994, 0, 0},
        /* two-digit years: more than 50 years ahead means the past century */
        {"Sunday, 06-Nov-94 08:49:37 GMT", Y2026, 0, 0},
        {"Friday, 01-Jan-27 00:00:00 GMT", Y2026, 0, 31536000000u},
        /* leap days */
        {"Thu, 29 Feb 2024 00:00:00 GMT", 1709164800 - 1, 0, 1000},
        {"Tue, 29 Feb 2000 12:00:00 GMT", 951825600 - 2, 0, 2000},
        {"Wed, 29 Feb 2023 00:00:00 GMT", Y2026, XD_EPARSE, 0},
        {"Mon, 29 Feb 1900 00:00:00 GMT", Y2026, XD_EPARSE, 0},
        /* not a Retry-After */
        {"", Y2026, XD_EPARSE, 0},
        {"   ", Y2026, XD_EPARSE, 0},
        {"-5", Y2026, XD_EPARSE, 0},
        {"1.5", Y2026, XD_EPARSE, 0},
        {"5s", Y2026, XD_EPARSE, 0},
        {"soon", Y2026, XD_EPARSE, 0},
        {"Sun, 06 Nov 1994 08:49:37 UTC", Y2026, XD_EPARSE, 0},
        {"Sun, 06 Nov 1994 08:49:37", Y2026, XD_EPARSE, 0},
        {"Sun, 6 Nov 1994 08:49:37 GMT", Y2026, XD_EPARSE, 0},
        {"Sun, 06 Nov 94 08:49:37 GMT", Y2026, XD_EPARSE, 0},
        {"Sun, 06 Foo 1994 08:49:37 GMT", Y2026, XD_EPARSE, 0},
        {"Sun, 31 Nov 1994 08:49:37 GMT", Y2026, XD_EPARSE, 0},
        {"Sun, 00 Nov 1994 08:49:37 GMT", Y2026, XD_EPARSE, 0},
        {"Sun, 06 Nov 1994 24:00:00 GMT", Y2026, XD_EPARSE, 0},
        {"Sun, 06 Nov 1994 08:60:00 GMT", Y2026, XD_EPARSE, 0},
        {"Sun, 06 Nov 1994 08:49:37 GMT junk", Y2026, XD_EPARSE, 0},
        {"Xyz, 06 Nov 1994 08:49:37 GMT", Y2026, XD_EPARSE, 0},
        {"Sunday, 06 Nov 1994 08:49:37 GMT", Y2026, XD_EPARSE, 0},
        {"Sun Nov  6 08:49:37 1994 GMT", Y2026, XD_EPARSE, 0},
        {"Sun Nov 6 08:49:37", Y2026, XD_EPARSE, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint64_t ms = 12345;
        int rc = xd_retry_after_parse(cases[i].v, cases[i].now, &ms);
        if (rc != cases[i].rc || (rc == 0 && ms != cases[i].ms))
            fail_msg("case %zu \"%s\": rc %d ms %llu, want rc %d ms %llu", i, cases[i].v, rc,
                     (unsigned long long)ms, cases[i].rc, (unsigned long long)cases[i].ms);
    }
    uint64_t ms;
    assert_int_equal(xd_retry_after_parse(NULL, Y2026, &ms), XD_EPARSE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cap_every_attempt),
        cmocka_unit_test(test_defaults_worked),
        cmocka_unit_test(test_no_overflow),
        cmocka_unit_test(test_jitter_covers_range),
        cmocka_unit_test(test_floor),
        cmocka_unit_test(test_retry_after_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
