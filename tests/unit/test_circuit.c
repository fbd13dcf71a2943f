/*
 * The circuit breaker as a state machine under a fake clock (plain
 * integers for now_ms): opening after consecutive RETRY outcomes, the
 * cool-down and its doubling, the single half-open probe, answers to
 * attempts sent before it opened, and a simulated outage in which no
 * delivery burns its attempts and none is lost.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "deliver/circuit.h"

#include <string.h>

#define ST(c) xd_circuit_state(c)

/* n RETRY outcomes on NORMAL permits at time t. */
static void fail_n(struct xd_circuit *c, int n, uint64_t t)
{
    for (int i = 0; i < n; i++) {
        assert_int_equal(xd_circuit_allow(c, t), XD_PERMIT_NORMAL);
        xd_circuit_record(c, XD_PERMIT_NORMAL, XD_OUT_RETRY, t);
    }
}

static void test_defaults(void **state)
{
    (void)state;
    struct xd_circuit c;
    xd_circuit_init(&c, NULL);
    assert_int_equal(c.o.failure_threshold, 5);
    assert_int_equal(c.o.open_ms, 5000);
    assert_int_equal(c.o.max_open_ms, 60000);
    assert_int_equal(ST(&c), XD_CIRCUIT_CLOSED);
    assert_int_equal(xd_circuit_next_probe_ms(&c), 0);
    assert_string_equal(xd_circuit_state_name(XD_CIRCUIT_CLOSED), "closed");
    assert_string_equal(xd_circuit_state_name(XD_CIRCUIT_OPEN), "open");
    assert_string_equal(xd_circuit_state_name(XD_CIRCUIT_HALF_OPEN), "half_open");
}

/* Five consecutive RETRY outcomes open it; four do not. */
static void test_opens_after_threshold(void **state)
{
    (void)state;
    struct xd_circuit c;
    xd_circuit_init(&c, NULL);
    fail_n(&c, 4, 1000);
    assert_int_equal(ST(&c), XD_CIRCUIT_CLOSED);
    fail_n(&c, 1, 1000);
    assert_int_equal(ST(&c), XD_CIRCUIT_OPEN);
    assert_int_equal(c.opened, 1);
    assert_int_equal(xd_circuit_next_probe_ms(&c), 6000);
    assert_int_equal(xd_circuit_allow(&c, 1000), XD_PERMIT_DENY);
    assert_int_equal(xd_circuit_allow(&c, 5999), XD_PERMIT_DENY);
    assert_int_equal(ST(&c), XD_CIRCUIT_OPEN);
}

/* OK and FAIL (a 4xx: the target is up) reset the count of consecutive failures. */
static void test_ok_and_fail_reset_count(void **state)
{
    (void)state;
    static const enum xd_outcome resets[] = {XD_OUT_OK, XD_OUT_FAIL};
    for (size_t i = 0; i < 2; i++) {
        struct xd_circuit c;
        xd_circuit_init(&c, NULL);
        fail_n(&c, 4, 0);
        xd_circuit_record(&c, XD_PERMIT_NORMAL, resets[i], 0);
        fail_n(&c, 4, 0);
        assert_int_equal(ST(&c), XD_CIRCUIT_CLOSED);
        fail_n(&c, 1, 0);
        assert_int_equal(ST(&c), XD_CIRCUIT_OPEN);
    }
    /* Only FAILs: the target is answering, the breaker never opens. */
    struct xd_circuit c;
    xd_circuit_init(&c, NULL);
    for (int i = 0; i < 100; i++)
        xd_circuit_record(&c, xd_circuit_allow(&c, 0), XD_OUT_FAIL, 0);
    assert_int_equal(ST(&c), XD_CIRCUIT_CLOSED);
}

/* After the cool-down exactly one probe goes; its success closes the breaker. */
static void test_half_open_single_probe(void **state)
{
    (void)state;
    struct xd_circuit c;
    xd_circuit_init(&c, NULL);
    fail_n(&c, 5, 0);
    assert_int_equal(xd_circuit_allow(&c, 5000), XD_PERMIT_PROBE);
    assert_int_equal(ST(&c), XD_CIRCUIT_HALF_OPEN);
    assert_int_equal(xd_circuit_next_probe_ms(&c), UINT64_MAX); /* wait for the verdict */
    for (int i = 0; i < 10; i++)
        assert_int_equal(xd_circuit_allow(&c, 5000 + (uint64_t)i * 1000), XD_PERMIT_DENY);
    xd_circuit_record(&c, XD_PERMIT_PROBE, XD_OUT_OK, 5100);
    assert_int_equal(ST(&c), XD_CIRCUIT_CLOSED);
    assert_int_equal(xd_circuit_allow(&c, 5100), XD_PERMIT_NORMAL);
    assert_int_equal(xd_circuit_next_probe_ms(&c), 0);
    /* Closed again from scratch: it takes five new failures to open. */
    fail_n(&c, 4, 6000);
    assert_int_equal(ST(&c), XD_CIRCUIT_CLOSED);
}

/* A probe answered with a 4xx also closes it: the target is up. */
static void test_probe_fail_closes(void **state)
{
    (void)state;
    struct xd_circuit c;
    xd_circuit_init(&c, NULL);
    fail_n(&c, 5, 0);
    assert_int_equal(xd_circuit_allow(&c, 5000), XD_PERMIT_PROBE);
    xd_circuit_record(&c, XD_PERMIT_PROBE, XD_OUT_FAIL, 5001);
    assert_int_equal(ST(&c), XD_CIRCUIT_CLOSED);
}

/* Failed probes double the cool-down up to 60 s; success resets it to 5 s. */
static void test_cooldown_doubles(void **state)
{
    (void)state;
    static const uint64_t cooldowns[] = {10000, 20000, 40000, 60000, 60000, 60000};
    struct xd_circuit c;
    xd_circuit_init(&c, NULL);
    uint64_t t = 0;
    fail_n(&c, 5, t);
    assert_int_equal(xd_circuit_next_probe_ms(&c), 5000);
    t = 5000;
    for (size_t i = 0; i < sizeof cooldowns / sizeof cooldowns[0]; i++) {
        assert_int_equal(xd_circuit_allow(&c, t), XD_PERMIT_PROBE);
        xd_circuit_record(&c, XD_PERMIT_PROBE, XD_OUT_RETRY, t + 50);
        assert_int_equal(ST(&c), XD_CIRCUIT_OPEN);
        assert_int_equal(xd_circuit_next_probe_ms(&c), t + 50 + cooldowns[i]);
        assert_int_equal(xd_circuit_allow(&c, t + 50 + cooldowns[i] - 1), XD_PERMIT_DENY);
        t += 50 + cooldowns[i];
    }
    assert_int_equal(xd_circuit_allow(&c, t), XD_PERMIT_PROBE);
    xd_circuit_record(&c, XD_PERMIT_PROBE, XD_OUT_OK, t);
    assert_int_equal(ST(&c), XD_CIRCUIT_CLOSED);
    fail_n(&c, 5, t);
    assert_int_equal(xd_circuit_next_probe_ms(&c), t + 5000);
    assert_int_equal(c.opened, 2);
}

/* Answers to attempts sent while closed, landing later, do not move the breaker. */
static void test_stale_answers_ignored(void **state)
{
    (void)state;
    struct xd_circuit c;
    xd_circuit_init(&c, NULL);
    /* Eight attempts in flight; the first five time out and open the breaker. */
    enum xd_permit p[8];
    for (int i = 0; i < 8; i++)
        p[i] = xd_circuit_allow(&c, 0);
    for (int i = 0; i < 5; i++)
        xd_circuit_record(&c, p[i], XD_OUT_RETRY, 5000);
    assert_int_equal(ST(&c), XD_CIRCUIT_OPEN);
    uint64_t until = xd_circuit_next_probe_ms(&c);
    /* A late success does not close it; a late failure does not extend it. */
    xd_circuit_record(&c, p[5], XD_OUT_OK, 6000);
    xd_circuit_record(&c, p[6], XD_OUT_RETRY, 6000);
    assert_int_equal(ST(&c), XD_CIRCUIT_OPEN);
    assert_int_equal(xd_circuit_next_probe_ms(&c), until);
    /* Half-open: a late timeout is not the probe's verdict. */
    assert_int_equal(xd_circuit_allow(&c, until), XD_PERMIT_PROBE);
    xd_circuit_record(&c, p[7], XD_OUT_RETRY, until + 1);
    assert_int_equal(ST(&c), XD_CIRCUIT_HALF_OPEN);
    assert_int_equal(xd_circuit_allow(&c, until + 1), XD_PERMIT_DENY);
    /* A PROBE verdict while no probe is out (duplicate record) changes nothing. */
    xd_circuit_record(&c, XD_PERMIT_PROBE, XD_OUT_OK, until + 2);
    assert_int_equal(ST(&c), XD_CIRCUIT_CLOSED);
    xd_circuit_record(&c, XD_PERMIT_PROBE, XD_OUT_RETRY, until + 3);
    assert_int_equal(ST(&c), XD_CIRCUIT_CLOSED);
}

/* A probe that ends without a verdict (cancelled) gives the slot back. */
static void test_release_probe(void **state)
{
    (void)state;
    struct xd_circuit c;
    xd_circuit_init(&c, NULL);
    fail_n(&c, 5, 0);
    assert_int_equal(xd_circuit_allow(&c, 5000), XD_PERMIT_PROBE);
    xd_circuit_release(&c, XD_PERMIT_PROBE);
    assert_int_equal(ST(&c), XD_CIRCUIT_HALF_OPEN);
    assert_int_equal(xd_circuit_next_probe_ms(&c), 0);
    assert_int_equal(xd_circuit_allow(&c, 5001), XD_PERMIT_PROBE);
    xd_circuit_release(&c, XD_PERMIT_NORMAL); /* no effect */
    assert_int_equal(xd_circuit_allow(&c, 5001), XD_PERMIT_DENY);
}

/* Options: threshold 1, 100 ms doubling to at most 250 ms; max below open is raised. */
static void test_options(void **state)
{
    (void)state;
    struct xd_circuit_opts o = {.failure_threshold = 1, .open_ms = 100, .max_open_ms = 250};
    struct xd_circuit c;
    xd_circuit_init(&c, &o);
    fail_n(&c, 1, 0);
    assert_int_equal(xd_circuit_next_probe_ms(&c), 100);
    assert_int_equal(xd_circuit_allow(&c, 100), XD_PERMIT_PROBE);
    xd_circuit_record(&c, XD_PERMIT_PROBE, XD_OUT_RETRY, 100);
    assert_int_equal(xd_circuit_next_probe_ms(&c), 300);
    assert_int_equal(xd_circuit_allow(&c, 300), XD_PERMIT_PROBE);
    xd_circuit_record(&c, XD_PERMIT_PROBE, XD_OUT_RETRY, 300);
    assert_int_equal(xd_circuit_next_probe_ms(&c), 550);

    struct xd_circuit_opts low = {.open_ms = 8000, .max_open_ms = 1000};
    xd_circuit_init(&c, &low);
    assert_int_equal(c.o.max_open_ms, 8000);
    /* Near the end of the clock the cool-down saturates instead of wrapping; a huge
     * max_open_ms does not overflow the doubling. */
    struct xd_circuit_opts huge = {
        .failure_threshold = 1, .open_ms = UINT64_MAX / 2 + 1, .max_open_ms = UINT64_MAX};
    xd_circuit_init(&c, &huge);
    fail_n(&c, 1, UINT64_MAX - 5);
    assert_int_equal(xd_circuit_next_probe_ms(&c), UINT64_MAX);
    xd_circuit_init(&c, &huge);
    fail_n(&c, 1, 0);
    assert_int_equal(xd_circuit_allow(&c, UINT64_MAX / 2 + 1), XD_PERMIT_PROBE);
    xd_circuit_record(&c, XD_PERMIT_PROBE, XD_OUT_RETRY, 0);
    assert_int_equal(c.cooldown_ms, UINT64_MAX);
}

/*
 * An outage simulated with the caller's loop: 10 deliveries queued, the
 * target answers RETRY until t = 30 s. A delivery is attempted only when
 * the breaker allows it, and only then counts an attempt. With
 * max_attempts = 8, none is dead-lettered by the outage, and all are
 * delivered once the target is back.
 */
static void test_outage_burns_no_attempts(void **state)
{
    (void)state;
    enum { N = 10, MAX_ATTEMPTS = 8 };
    unsigned attempts[N] = {0};
    int delivered[N] = {0};
    unsigned total = 0;
    struct xd_circuit c;
    xd_circuit_init(&c, NULL);
    for (uint64_t t = 0; t <= 120000; t += 100) {
        for (int i = 0; i < N; i++) {
            if (delivered[i])
                continue;
            enum xd_permit p = xd_circuit_allow(&c, t);
            if (p == XD_PERMIT_DENY)
                break; /* keep it queued, attempt not counted */
            attempts[i]++;
            total++;
            enum xd_outcome out = t >= 30000 ? XD_OUT_OK : XD_OUT_RETRY;
            xd_circuit_record(&c, p, out, t);
            delivered[i] = out == XD_OUT_OK;
        }
    }
    for (int i = 0; i < N; i++) {
        assert_true(delivered[i]);
        assert_true(attempts[i] <= MAX_ATTEMPTS);
    }
    /* 5 to open, probes at 5 s, 15 s (fail) and 35 s (ok), then one each for the other 9. */
    assert_int_equal(total, 5 + 3 + 9);
    assert_int_equal(ST(&c), XD_CIRCUIT_CLOSED);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_opens_after_threshold),
        cmocka_unit_test(test_ok_and_fail_reset_count),
        cmocka_unit_test(test_half_open_single_probe),
        cmocka_unit_test(test_probe_fail_closes),
        cmocka_unit_test(test_cooldown_doubles),
        cmocka_unit_test(test_stale_answers_ignored),
        cmocka_unit_test(test_release_probe),
        cmocka_unit_test(test_options),
        cmocka_unit_test(test_outage_burns_no_attempts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
