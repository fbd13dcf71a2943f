/*
 * The counters /metrics reads that other areas count into: intake
 * (ingest/intake_metrics.h: accepted by type, duplicates, refusals by
 * reason, the reason of a failed intake) and NATS (deliver/nats_metrics.h:
 * a source's messages, a target's publishes by outcome, one entry per name).
 * The counters are process-wide, so each test checks what it adds.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "deliver/nats_metrics.h"
#include "ingest/intake.h"
#include "ingest/intake_metrics.h"
#include "store/store.h"

#include <stdio.h>
#include <string.h>

static void test_reason_of_problem_type(void **state)
{
    (void)state;
    static const struct {
        const char *type;
        enum xd_reject_reason want;
    } cases[] = {
        {"malformed-json", XD_REJ_MALFORMED_JSON},
        {"invalid-event", XD_REJ_INVALID_EVENT},
        {"too-large", XD_REJ_TOO_LARGE},
        {"conflict", XD_REJ_CONFLICT},
        {"rate-limited", XD_REJ_RATE_LIMITED},
        {"store-unavailable", XD_REJ_STORE_UNAVAILABLE},
        {"not-found", XD_REJ_OTHER},
        {"", XD_REJ_OTHER},
        {NULL, XD_REJ_OTHER},
        {"other", XD_REJ_OTHER},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        assert_int_equal(xd_reject_reason_of(cases[i].type), cases[i].want);
    for (int r = 0; r < XD_REJ__COUNT; r++)
        assert_int_equal(xd_reject_reason_of(xd_reject_reasons[r]), r);
}

static void test_reason_of_failed_intake(void **state)
{
    (void)state;
    struct xd_intake_limits lim = {.max_batch = 2, .max_depth = 32, .max_string = 1 << 16};
    static const struct {
        const char *body;
        enum xd_reject_reason want;
    } cases[] = {
        {"{\"event_id\": ", XD_REJ_MALFORMED_JSON},
        {"{\"event_id\": \"x\", \"type\": \"nope\"}", XD_REJ_INVALID_EVENT},
        {"{\"events\": [{}, {}, {}]}", XD_REJ_TOO_LARGE}, /* over max_batch: 413 */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct xd_intake in;
        xd_intake_init(&in, &lim, "test");
        int rc = xd_intake_add_body(&in, cases[i].body, strlen(cases[i].body));
        assert_true(rc < 0);
        assert_int_equal(xd_intake_reject_reason(&in), cases[i].want);
        xd_intake_dispose(&in);
    }
}

static void test_count_stored_and_rejected(void **state)
{
    (void)state;
    struct xd_intake_totals before, after;
    xd_intake_totals(&before);
    struct xd_event ev[4];
    memset(ev, 0, sizeof ev);
    ev[0].type = XD_EV_SHIPMENT_CONFIRMED;
    ev[1].type = XD_EV_SHIPMENT_CONFIRMED;
    ev[2].type = XD_EV_GOODS_RECEIVED;
    ev[3].type = XD_EV_GOODS_RECEIVED;
    const unsigned char res[4] = {XD_APPEND_ACCEPTED, XD_APPEND_DUPLICATE, XD_APPEND_ACCEPTED,
                                  XD_APPEND_CONFLICT};
    size_t fresh = 99, dups = 99;
    xd_intake_count_stored(ev, res, 4, &fresh, &dups);
    assert_int_equal(fresh, 2);
    assert_int_equal(dups, 1);
    xd_intake_count_stored(ev, res, 1, NULL, NULL);
    xd_intake_count_rejected(XD_REJ_TOO_LARGE);
    xd_intake_count_rejected(XD_REJ__COUNT + 3); /* out of range: "other" */
    xd_intake_totals(&after);
    assert_int_equal(
        after.by_type[XD_EV_SHIPMENT_CONFIRMED] - before.by_type[XD_EV_SHIPMENT_CONFIRMED], 2);
    assert_int_equal(after.by_type[XD_EV_GOODS_RECEIVED] - before.by_type[XD_EV_GOODS_RECEIVED], 1);
    assert_int_equal(after.received - before.received, 3);
    assert_int_equal(after.duplicates - before.duplicates, 1);
    assert_int_equal(after.by_reason[XD_REJ_TOO_LARGE] - before.by_reason[XD_REJ_TOO_LARGE], 1);
    assert_int_equal(after.by_reason[XD_REJ_OTHER] - before.by_reason[XD_REJ_OTHER], 1);
    assert_int_equal(after.rejected - before.rejected, 2);
}

struct seen {
    const char *name;
    uint64_t fetched, ends[XD_NATS_END__COUNT];
    uint64_t pub[32];
    int found;
};

static void on_source(void *ctx, const char *source, uint64_t fetched,
                      const uint64_t ends[XD_NATS_END__COUNT])
{
    struct seen *s = ctx;
    if (strcmp(source, s->name) != 0)
        return;
    s->found++;
    s->fetched = fetched;
    memcpy(s->ends, ends, sizeof s->ends);
}

static void on_target(void *ctx, const char *target, const uint64_t *by_outcome)
{
    struct seen *s = ctx;
    if (strcmp(target, s->name) != 0)
        return;
    s->found++;
    memcpy(s->pub, by_outcome, xd_nats_npublish_outcomes * sizeof *by_outcome);
}

static size_t outcome_index(const char *name)
{
    for (size_t i = 0; i < xd_nats_npublish_outcomes; i++)
        if (strcmp(xd_nats_publish_outcomes[i], name) == 0)
            return i;
    fail_msg("no outcome %s", name);
    return 0;
}

static void test_nats_counters(void **state)
{
    (void)state;
    assert_true(xd_nats_npublish_outcomes <= 32);
    struct xd_nats_counters *src = xd_nats_metrics_source("wms");
    assert_non_null(src);
    assert_ptr_equal(xd_nats_metrics_source("wms"), src);     /* one entry per name */
    assert_ptr_not_equal(xd_nats_metrics_target("wms"), src); /* a target of that name is another */
    xd_nats_count_fetched(src, 5);
    xd_nats_count_end(src, XD_NATS_ACKED);
    xd_nats_count_end(src, XD_NATS_ACKED);
    xd_nats_count_end(src, XD_NATS_NAKED);
    xd_nats_count_end(src, XD_NATS_TERMINATED);
    xd_nats_count_end(src, XD_NATS_END__COUNT); /* ignored */
    xd_nats_count_fetched(NULL, 1);             /* NULL: nothing */
    struct seen s = {.name = "wms"};
    xd_nats_metrics_sources(on_source, &s);
    assert_int_equal(s.found, 1);
    assert_int_equal(s.fetched, 5);
    assert_int_equal(s.ends[XD_NATS_ACKED], 2);
    assert_int_equal(s.ends[XD_NATS_NAKED], 1);
    assert_int_equal(s.ends[XD_NATS_TERMINATED], 1);

    struct xd_nats_counters *t = xd_nats_metrics_target("bus");
    xd_nats_count_publish(t, "ok");
    xd_nats_count_publish(t, "ok");
    xd_nats_count_publish(t, "duplicate");
    xd_nats_count_publish(t, "timeout");
    xd_nats_count_publish(t, "something new"); /* counts as "nats" */
    xd_nats_count_publish(t, NULL);
    xd_nats_count_publish(NULL, "ok");
    struct seen p = {.name = "bus"};
    xd_nats_metrics_targets(on_target, &p);
    assert_int_equal(p.found, 1);
    assert_int_equal(p.pub[outcome_index("ok")], 2);
    assert_int_equal(p.pub[outcome_index("duplicate")], 1);
    assert_int_equal(p.pub[outcome_index("timeout")], 1);
    assert_int_equal(p.pub[outcome_index("nats")], 2);
    assert_int_equal(p.pub[outcome_index("too_large")], 0);
}

static void test_nats_table_full(void **state)
{
    (void)state;
    char name[32];
    int got = 0;
    for (int i = 0; i < XD_NATS_METRICS_MAX + 5; i++) {
        snprintf(name, sizeof name, "full-%d", i);
        got += xd_nats_metrics_target(name) != NULL;
    }
    assert_true(got < XD_NATS_METRICS_MAX + 5); /* the table is bounded */
    assert_null(xd_nats_metrics_target("one more"));
    assert_non_null(xd_nats_metrics_source("wms")); /* what is in it stays found */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reason_of_problem_type),
        cmocka_unit_test(test_reason_of_failed_intake),
        cmocka_unit_test(test_count_stored_and_rejected),
        cmocka_unit_test(test_nats_counters),
        cmocka_unit_test(test_nats_table_full),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
