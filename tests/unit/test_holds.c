/*
 * Master-data holds and SLA clocks, the parts that need no running hub:
 * durations (core/duration.h), the process's xref tables (transform/xref.h)
 * and how a change reaches a compiled program without recompiling it, the
 * router's recognition of a missing entry (route/hold.h), and the config
 * checks of `sla` and `exceptions` (cases as data). Leak-checked under ASan
 * in the sanitizer build.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "core/buf.h"
#include "core/config.h"
#include "core/duration.h"
#include "core/err.h"
#include "route/hold.h"
#include "transform/transform.h"
#include "transform/xref.h"

#include <stdio.h>
#include <string.h>

static void test_durations(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        int rc;
        int64_t ms;
    } cases[] = {
        {"500ms", 0, 500},      {"1s", 0, 1000},
        {"90s", 0, 90000},      {"15m", 0, 900000},
        {"1h", 0, 3600000},     {"2d", 0, 172800000},
        {"0s", 0, 0},           {"", XD_EINVAL, 0},
        {"15", XD_EINVAL, 0},   {"m", XD_EINVAL, 0},
        {"1.5h", XD_EINVAL, 0}, {"-1s", XD_EINVAL, 0},
        {"1 s", XD_EINVAL, 0},  {"1w", XD_EINVAL, 0},
        {"400d", XD_EINVAL, 0}, {"99999999999999999999s", XD_EINVAL, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t ms = -1;
        int rc = xd_duration_parse(cases[i].text, &ms);
        if (rc != cases[i].rc || (rc == 0 && ms != cases[i].ms))
            fail_msg("'%s': rc %d ms %lld", cases[i].text, rc, (long long)ms);
    }
}

static struct xd_config *parse(const char *yaml, struct xd_buf *errs)
{
    return xd_config_parse("t.yaml", yaml, strlen(yaml), errs);
}

static const char tables[] = "xref:\n  material: {SKU-1: \"M-1\"}\n  plant: {DC1: \"1000\"}\n";

static int map(struct xd_jq *p, const char *in, char *out, size_t cap)
{
    struct xd_buf o, e;
    xd_buf_init(&o);
    xd_buf_init(&e);
    int rc = xd_jq_map_text(p, in, strlen(in), &o, &e);
    snprintf(out, cap, "%s", rc == 0 ? xd_buf_str(&o) : xd_buf_str(&e));
    xd_buf_dispose(&o);
    xd_buf_dispose(&e);
    return rc;
}

/* A compiled program sees the process's tables once they are active, and every change after. */
static void test_xref_reaches_compiled_programs(void **state)
{
    (void)state;
    struct xd_buf errs;
    xd_buf_init(&errs);
    struct xd_config *cfg = parse(tables, &errs);
    assert_non_null(cfg);
    struct xd_jq *p = NULL, *q = NULL;
    assert_int_equal(xd_jq_compile("xref(\"material\"; .sku)", cfg, &p, &errs), 0);
    assert_int_equal(xd_jq_compile("$xref.material[.sku] // \"none\"", cfg, &q, &errs), 0);
    char out[256];

    /* Inactive: the config the program was compiled with. */
    assert_int_equal(xd_xref_version(), 0);
    assert_int_equal(map(p, "{\"sku\":\"SKU-1\"}", out, sizeof out), 0);
    assert_string_equal(out, "\"M-1\"");
    assert_int_equal(map(p, "{\"sku\":\"SKU-NEW\"}", out, sizeof out), XD_EINVAL);
    assert_string_equal(out, "xref material: no entry for SKU-NEW");

    /* The hub's tables: config plus overlay; a set reaches both programs, no recompile. */
    assert_int_equal(xd_xref_use_config(cfg), 0);
    uint64_t v = xd_xref_version();
    assert_true(v > 0);
    assert_false(xd_xref_has("material", "SKU-NEW"));
    assert_int_equal(xd_xref_set("material", "SKU-NEW", "M-NEW"), 0);
    assert_true(xd_xref_version() > v);
    assert_true(xd_xref_has("material", "SKU-NEW"));
    assert_int_equal(map(p, "{\"sku\":\"SKU-NEW\"}", out, sizeof out), 0);
    assert_string_equal(out, "\"M-NEW\"");
    assert_int_equal(map(q, "{\"sku\":\"SKU-NEW\"}", out, sizeof out), 0);
    assert_string_equal(out, "\"M-NEW\"");
    assert_int_equal(map(p, "{\"sku\":\"SKU-1\"}", out, sizeof out), 0);
    assert_string_equal(out, "\"M-1\"");

    /* The overlay wins over the config; unset shows the config's again. */
    assert_int_equal(xd_xref_set("material", "SKU-1", "M-1-NEW"), 0);
    assert_int_equal(map(p, "{\"sku\":\"SKU-1\"}", out, sizeof out), 0);
    assert_string_equal(out, "\"M-1-NEW\"");
    assert_int_equal(xd_xref_unset("material", "SKU-1"), 1);
    assert_int_equal(xd_xref_unset("material", "SKU-1"), 0);
    assert_int_equal(map(p, "{\"sku\":\"SKU-1\"}", out, sizeof out), 0);
    assert_string_equal(out, "\"M-1\"");

    /* A new table, and a key that is a number. */
    assert_int_equal(xd_xref_set("carrier", "42", "UPS"), 0);
    struct xd_jq *r = NULL;
    assert_int_equal(xd_jq_compile("xref(\"carrier\"; .c)", cfg, &r, &errs), 0);
    assert_int_equal(map(r, "{\"c\":42}", out, sizeof out), 0);
    assert_string_equal(out, "\"UPS\"");

    assert_int_equal(map(r, "{}", out, sizeof out), XD_EINVAL);
    assert_string_equal(out, "xref carrier: no entry for null");

    /* get_prog_origin, which carries $xref, is not reachable from a mapping. */
    struct xd_jq *g = NULL;
    assert_int_equal(xd_jq_compile("get_prog_origin", cfg, &g, &errs), 0);
    assert_int_equal(map(g, "{}", out, sizeof out), 0);
    assert_string_equal(out, "null");

    xd_jq_destroy(g);
    xd_jq_destroy(r);
    xd_jq_destroy(p);
    xd_jq_destroy(q);
    xd_xref_reset();
    assert_int_equal(xd_xref_version(), 0);
    xd_config_destroy(cfg);
    xd_buf_dispose(&errs);
}

static void test_hold_wanted(void **state)
{
    (void)state;
    static const struct {
        const char *msg;
        int hold;
    } cases[] = {
        {"xref plant: no entry for DC9", 1},
        {"xref material: no entry for SKU 1/2", 1},
        {"xref plant: no entry for ", 1}, /* an empty key is still a missing entry */
        {"Cannot index number with \"x\"", 0},
        {"xref : no entry for DC9", 0},
        {"jq: xref plant: no entry for DC9 (route r, step 0 map)", 0},
        {"", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct xd_buf b;
        xd_buf_init(&b);
        xd_buf_puts(&b, cases[i].msg);
        if (xd_hold_wanted(NULL, &b) != cases[i].hold)
            fail_msg("'%s': expected %d", cases[i].msg, cases[i].hold);
        xd_buf_dispose(&b);
    }
    assert_int_equal(xd_hold_wanted(NULL, NULL), 0);
}

static void test_config_checks(void **state)
{
    (void)state;
    static const char head[] =
        "targets:\n"
        "  erp: {type: http, url: \"http://127.0.0.1:1/erp\"}\n"
        "  chat: {type: http, url: \"http://127.0.0.1:1/chat\"}\n"
        "  files: {type: file, path: /tmp, format: jsonl}\n"
        "routes:\n"
        "  - name: r\n    on: [goods.received]\n    steps: [{deliver: erp}]\n";
    static const struct {
        const char *tail;
        const char *error; /* NULL: valid */
    } cases[] = {
        {"    sla: [{target: erp, within: 15m}]\n", NULL},
        {"    sla: [{target: billing, within: 15m}]\n",
         "t.yaml:9:20: routes[0].sla[0].target: the route delivers to no target named 'billing'"},
        {"    sla: [{target: erp, within: soon}]\n", "routes[0].sla[0].within: must be a duration"},
        {"    sla: [{target: erp, within: 0s}]\n", "must be a duration"},
        {"    sla: [{target: erp}]\n", "missing required key 'within'"},
        {"exceptions:\n  owners: [{category: sla, warehouse: DC1, owner: ops-dc1}, {owner: ops}]\n"
         "  alert: {target: chat, throttle: 30s}\n",
         NULL},
        {"exceptions:\n  owners: [{category: sla}]\n",
         "exceptions.owners[0]: missing required key"},
        {"exceptions:\n  alert: {target: files}\n",
         "exceptions.alert.target: 'files' is not an http target"},
        {"exceptions:\n  alert: {target: nowhere}\n", "'nowhere' is not an http target"},
        {"exceptions:\n  alert: {target: chat, throttle: 5}\n",
         "exceptions.alert.throttle: must be a duration"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char yaml[2048];
        snprintf(yaml, sizeof yaml, "%s%s", head, cases[i].tail);
        struct xd_buf errs;
        xd_buf_init(&errs);
        struct xd_config *cfg = parse(yaml, &errs);
        if (!cases[i].error && !cfg)
            fail_msg("case %zu: %s", i, xd_buf_str(&errs));
        if (cases[i].error && (cfg || !strstr(xd_buf_str(&errs), cases[i].error)))
            fail_msg("case %zu: expected '%s', got '%s'", i, cases[i].error, xd_buf_str(&errs));
        if (cfg && i == 5) {
            assert_int_equal(cfg->exceptions.nowners, 2);
            assert_string_equal(cfg->exceptions.owners[0].owner, "ops-dc1");
            assert_null(cfg->exceptions.owners[1].category);
            assert_string_equal(cfg->exceptions.alert.throttle, "30s");
        }
        if (cfg && i == 0)
            assert_string_equal(cfg->routes[0].sla[0].within, "15m");
        xd_config_destroy(cfg);
        xd_buf_dispose(&errs);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_durations),
        cmocka_unit_test(test_xref_reaches_compiled_programs),
        cmocka_unit_test(test_hold_wanted),
        cmocka_unit_test(test_config_checks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
