/*
 * Outcome classification as a table: every row is (status, transport
 * error) -> outcome and class name. Contract section 6: 2xx OK; 408, 425,
 * 429, 5xx and network errors RETRY; other 4xx (and 3xx: redirects are not
 * followed) FAIL.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "deliver/outcome.h"

#include <stdio.h>
#include <string.h>

static const struct row {
    long status;
    int xport;
    enum xd_outcome out;
    const char *cls;
} rows[] = {
    /* success */
    {200, XD_XPORT_NONE, XD_OUT_OK, "ok"},
    {201, XD_XPORT_NONE, XD_OUT_OK, "ok"},
    {202, XD_XPORT_NONE, XD_OUT_OK, "ok"},
    {204, XD_XPORT_NONE, XD_OUT_OK, "ok"},
    {299, XD_XPORT_NONE, XD_OUT_OK, "ok"},
    /* retried statuses */
    {408, XD_XPORT_NONE, XD_OUT_RETRY, "http_4xx"},
    {425, XD_XPORT_NONE, XD_OUT_RETRY, "http_4xx"},
    {429, XD_XPORT_NONE, XD_OUT_RETRY, "http_429"},
    {500, XD_XPORT_NONE, XD_OUT_RETRY, "http_5xx"},
    {502, XD_XPORT_NONE, XD_OUT_RETRY, "http_5xx"},
    {503, XD_XPORT_NONE, XD_OUT_RETRY, "http_5xx"},
    {504, XD_XPORT_NONE, XD_OUT_RETRY, "http_5xx"},
    {599, XD_XPORT_NONE, XD_OUT_RETRY, "http_5xx"},
    /* dead-lettered statuses */
    {400, XD_XPORT_NONE, XD_OUT_FAIL, "http_4xx"},
    {401, XD_XPORT_NONE, XD_OUT_FAIL, "http_4xx"},
    {403, XD_XPORT_NONE, XD_OUT_FAIL, "http_4xx"},
    {404, XD_XPORT_NONE, XD_OUT_FAIL, "http_4xx"},
    {409, XD_XPORT_NONE, XD_OUT_FAIL, "http_4xx"},
    {413, XD_XPORT_NONE, XD_OUT_FAIL, "http_4xx"},
    {422, XD_XPORT_NONE, XD_OUT_FAIL, "http_4xx"},
    {424, XD_XPORT_NONE, XD_OUT_FAIL, "http_4xx"},
    {426, XD_XPORT_NONE, XD_OUT_FAIL, "http_4xx"},
    {428, XD_XPORT_NONE, XD_OUT_FAIL, "http_4xx"},
    {499, XD_XPORT_NONE, XD_OUT_FAIL, "http_4xx"},
    {300, XD_XPORT_NONE, XD_OUT_FAIL, "http_3xx"},
    {301, XD_XPORT_NONE, XD_OUT_FAIL, "http_3xx"},
    {304, XD_XPORT_NONE, XD_OUT_FAIL, "http_3xx"},
    {307, XD_XPORT_NONE, XD_OUT_FAIL, "http_3xx"},
    {308, XD_XPORT_NONE, XD_OUT_FAIL, "http_3xx"},
    {100, XD_XPORT_NONE, XD_OUT_FAIL, "http_1xx"},
    {101, XD_XPORT_NONE, XD_OUT_FAIL, "http_1xx"},
    {600, XD_XPORT_NONE, XD_OUT_FAIL, "http_other"},
    {999, XD_XPORT_NONE, XD_OUT_FAIL, "http_other"},
    /* no valid status and no transport error: nothing usable was read */
    {0, XD_XPORT_NONE, XD_OUT_RETRY, "http_other"},
    {-1, XD_XPORT_NONE, XD_OUT_RETRY, "http_other"},
    {99, XD_XPORT_NONE, XD_OUT_RETRY, "http_other"},
    {1000, XD_XPORT_NONE, XD_OUT_RETRY, "http_other"},
    /* transport errors */
    {0, XD_XPORT_TIMEOUT, XD_OUT_RETRY, "timeout"},
    {0, XD_XPORT_DNS, XD_OUT_RETRY, "dns"},
    {0, XD_XPORT_CONNECT, XD_OUT_RETRY, "connect"},
    {0, XD_XPORT_TLS, XD_OUT_RETRY, "tls"},
    {0, XD_XPORT_TLS_CERT, XD_OUT_FAIL, "tls_cert"},
    {0, XD_XPORT_SEND, XD_OUT_RETRY, "send"},
    {0, XD_XPORT_RECV, XD_OUT_RETRY, "recv"},
    {0, XD_XPORT_PROTOCOL, XD_OUT_RETRY, "protocol"},
    {0, XD_XPORT_CANCELLED, XD_OUT_RETRY, "cancelled"},
    {0, XD_XPORT_NOMEM, XD_OUT_RETRY, "nomem"},
    {0, XD_XPORT_OTHER, XD_OUT_RETRY, "transport"},
    {0, XD_XPORT_REQUEST, XD_OUT_FAIL, "request"},
    /* a transport error wins over a status read before it (answer cut short) */
    {200, XD_XPORT_RECV, XD_OUT_RETRY, "recv"},
    {200, XD_XPORT_TIMEOUT, XD_OUT_RETRY, "timeout"},
    {404, XD_XPORT_RECV, XD_OUT_RETRY, "recv"},
    {503, XD_XPORT_REQUEST, XD_OUT_FAIL, "request"},
    /* unknown transport error values count as "transport" */
    {0, XD_XPORT__COUNT, XD_OUT_RETRY, "transport"},
    {200, 9999, XD_OUT_RETRY, "transport"},
    {200, -5, XD_OUT_RETRY, "transport"},
};

static void test_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        const struct row *r = &rows[i];
        enum xd_outcome out = xd_outcome_classify(r->status, r->xport);
        const char *cls = xd_outcome_class(r->status, r->xport);
        if (out != r->out || strcmp(cls, r->cls) != 0)
            fail_msg("row %zu (status %ld, xport %d): got %s/%s, want %s/%s", i, r->status,
                     r->xport, xd_outcome_name(out), cls, xd_outcome_name(r->out), r->cls);
    }
}

/* Every status from 0 to 1000 lands in exactly the contract's bucket. */
static void test_every_status(void **state)
{
    (void)state;
    for (long s = 0; s <= 1000; s++) {
        enum xd_outcome want;
        if (s >= 200 && s <= 299)
            want = XD_OUT_OK;
        else if (s == 408 || s == 425 || s == 429 || (s >= 500 && s <= 599))
            want = XD_OUT_RETRY;
        else if (s >= 100 && s <= 999)
            want = XD_OUT_FAIL;
        else
            want = XD_OUT_RETRY;
        if (xd_outcome_classify(s, XD_XPORT_NONE) != want)
            fail_msg("status %ld: got %s", s, xd_outcome_name(xd_outcome_classify(s, 0)));
    }
}

/* Every transport error is RETRY but REQUEST and TLS_CERT; every class name is distinct and set. */
static void test_every_xport(void **state)
{
    (void)state;
    for (int x = 1; x < XD_XPORT__COUNT; x++) {
        enum xd_outcome want =
            x == XD_XPORT_REQUEST || x == XD_XPORT_TLS_CERT ? XD_OUT_FAIL : XD_OUT_RETRY;
        assert_int_equal(xd_outcome_classify(0, x), want);
        const char *cls = xd_outcome_class(0, x);
        assert_non_null(cls);
        assert_true(strlen(cls) > 0);
        for (int y = 1; y < x; y++)
            assert_string_not_equal(cls, xd_outcome_class(0, y));
    }
}

static void test_names(void **state)
{
    (void)state;
    assert_string_equal(xd_outcome_name(XD_OUT_OK), "ok");
    assert_string_equal(xd_outcome_name(XD_OUT_RETRY), "retry");
    assert_string_equal(xd_outcome_name(XD_OUT_FAIL), "fail");
    assert_string_equal(xd_outcome_name((enum xd_outcome)7), "?");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_every_status),
        cmocka_unit_test(test_every_xport),
        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
