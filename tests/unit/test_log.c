/*
 * Logging and an event's trace (core/log.c, deliver/trace_event.c): lines
 * captured from stderr (redirected to a temporary file) as JSON and as text,
 * with and without an event's ids; levels filtered; "Bearer <token>"
 * redacted wherever it appears; log.format auto/json/text. The trace of an
 * event: the one it arrived with (a new span per attempt), else one derived
 * from its event id, the same across calls.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/log.h"
#include "deliver/trace.h"

#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Runs fn with stderr going to a file; returns what it wrote (heap). */
static char *capture(void (*fn)(void))
{
    char path[] = "/tmp/xd-test-log-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    int saved = dup(STDERR_FILENO);
    dup2(fd, STDERR_FILENO);
    fn();
    dup2(saved, STDERR_FILENO);
    close(saved);
    off_t n = lseek(fd, 0, SEEK_END);
    char *out = calloc(1, (size_t)n + 1);
    assert_non_null(out);
    assert_int_equal(pread(fd, out, (size_t)n, 0), n);
    close(fd);
    unlink(path);
    return out;
}

static void lines_json(void)
{
    xd_log_setup(XD_LOG_INFO, 1);
    xd_debug("not written");
    xd_info("plain \"quoted\"");
    xd_log_ev(XD_LOG_WARN, "ev-1", "0af7651916cd43dd8448eb211c80319c", "dead-lettered: %d", 400);
    xd_error("auth header was Bearer s3cr3t-t0ken-value, refused");
}

static void test_json_lines(void **state)
{
    (void)state;
    char *out = capture(lines_json);
    assert_null(strstr(out, "not written"));
    assert_non_null(strstr(out, "\"level\":\"info\",\"msg\":\"plain \\\"quoted\\\"\"}\n"));
    assert_non_null(strstr(out, "\"level\":\"warn\",\"msg\":\"dead-lettered: 400\","
                                "\"event_id\":\"ev-1\","
                                "\"trace_id\":\"0af7651916cd43dd8448eb211c80319c\"}\n"));
    assert_null(strstr(out, "s3cr3t"));
    assert_non_null(strstr(out, "Bearer [redacted], refused"));
    /* every line is one object */
    int lines = 0;
    for (char *p = out; (p = strchr(p, '\n')) != NULL; p++)
        lines++;
    assert_int_equal(lines, 3);
    assert_int_equal(out[0], '{');
    free(out);
}

static void lines_text(void)
{
    xd_log_setup(XD_LOG_DEBUG, 0);
    xd_debug("debug shown");
    xd_log_ev(XD_LOG_INFO, "ev-2", NULL, "accepted");
    xd_warn("token bearer abc");
}

static void test_text_lines(void **state)
{
    (void)state;
    char *out = capture(lines_text);
    assert_non_null(strstr(out, " debug debug shown\n"));
    assert_non_null(strstr(out, " info  accepted event_id=ev-2\n"));
    assert_non_null(strstr(out, "token bearer ***\n")); /* shorter than the mark: starred */
    assert_true(out[4] == '-' && strstr(out, "Z debug") != NULL);
    free(out);
    xd_log_setup(XD_LOG_INFO, 0);
}

static void test_format_choice(void **state)
{
    (void)state;
    assert_int_equal(xd_log_format_is_json("json"), 1);
    assert_int_equal(xd_log_format_is_json("text"), 0);
    int tty = isatty(STDERR_FILENO);
    assert_int_equal(xd_log_format_is_json("auto"), !tty);
    assert_int_equal(xd_log_format_is_json(NULL), !tty);
    assert_int_equal(xd_log_level_parse("WARN"), XD_LOG_WARN);
    assert_int_equal(xd_log_level_parse("loud"), -1);
}

static void hex(const unsigned char *p, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", p[i]);
}

static void test_event_trace(void **state)
{
    (void)state;
    const char *given = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    struct xd_trace a, b;
    char tp[XD_TRACEPARENT_LEN + 1], tid[33];
    xd_trace_for_event("ev-9", given, &a);
    xd_trace_for_event("ev-9", given, &b);
    xd_trace_format(&a, tp);
    assert_memory_equal(tp, "00-4bf92f3577b34da6a3ce929d0e0e4736-", 36);
    assert_memory_equal(tp + 52, "-01", 3);
    assert_memory_not_equal(a.span_id, b.span_id, 8); /* a new span per attempt */
    assert_memory_not_equal(tp + 36, "00f067aa0ba902b7", 16);
    xd_trace_id_for_event("ev-9", given, tid);
    assert_string_equal(tid, "4bf92f3577b34da6a3ce929d0e0e4736");

    /* none given, or an invalid one: derived from the event id, the same every time */
    unsigned char h[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)"ev-9", 4, h);
    char want[33];
    hex(h, 16, want);
    const char *none[] = {NULL, "", "00-zz",
                          "00-00000000000000000000000000000000-00f067aa0ba902b7-01"};
    for (size_t i = 0; i < sizeof none / sizeof none[0]; i++) {
        xd_trace_id_for_event("ev-9", none[i], tid);
        assert_string_equal(tid, want);
        xd_trace_for_event("ev-9", none[i], &a);
        xd_trace_format(&a, tp);
        assert_memory_equal(tp + 3, want, 32);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_lines),
        cmocka_unit_test(test_text_lines),
        cmocka_unit_test(test_format_choice),
        cmocka_unit_test(test_event_trace),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
