/*
 * Master-data holds and SLA clocks, the parts that need no running hub:
 * durations (core/duration.h), the process's xref tables (transform/xref.h)
 * and how a change reaches a compiled program without recompiling it, the
 * router's recognition of a missing entry (route/hold.h), the config
 * checks of `sla` and `exceptions` (cases as data), and the store's side
 * (store/holds.h) on a real SQLite file and, given XD_TEST_PG_URL, on
 * PostgreSQL: a held delivery holds its key, one
 * exception per missing entry routed to its owner, release on put, dedup,
 * alert marks, the binary search by time. Leak-checked under ASan
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
#include "ingest/event.h"
#include "route/hold.h"
#include "store/holds.h"
#include "store/store.h"
#include "transform/transform.h"
#include "transform/xref.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

/* ---- the store's side ---- */

static size_t plan_erp(void *ctx, const struct xd_event *ev, struct xd_dlv_init *out, size_t max)
{
    (void)ctx;
    (void)ev;
    if (max < 1)
        return 0;
    out[0] = (struct xd_dlv_init){.route = "r", .step = 0, .target = "erp"};
    return 1;
}

struct sev {
    struct xd_event ev;
    char id[32], bkey[32], body[200];
};

static int64_t append(struct xd_store *s, const char *id, const char *bkey)
{
    struct sev e;
    memset(&e, 0, sizeof e);
    snprintf(e.id, sizeof e.id, "%s", id);
    snprintf(e.bkey, sizeof e.bkey, "%s", bkey);
    snprintf(e.body, sizeof e.body,
             "{\"event_id\":\"%s\",\"type\":\"shipment.confirmed\",\"data\":"
             "{\"warehouse\":\"DC1\",\"customer\":\"ACME\"}}",
             id);
    e.ev.type = XD_EV_SHIPMENT_CONFIRMED;
    e.ev.event_id = e.id;
    e.ev.occurred_at = "2026-11-28T14:03:11Z";
    e.ev.bkey = e.bkey;
    e.ev.body = e.body;
    e.ev.body_len = strlen(e.body);
    for (size_t i = 0; i < sizeof e.ev.hash; i++)
        e.ev.hash[i] = (unsigned char)(id[i % strlen(id)] + i);
    struct xd_append a = {.events = &e.ev, .n = 1};
    assert_int_equal(xd_store_append(s, &a), 0);
    struct xd_stored_event got;
    assert_int_equal(xd_store_get_event(s, id, &got), 0);
    int64_t seq = got.seq;
    xd_stored_event_dispose(&got);
    return seq;
}

struct ready {
    char ids[8][32];
    int64_t dlv[8];
    size_t n;
};

static void ready_row(void *ctx, struct xd_stored_dlv *d)
{
    struct ready *r = ctx;
    if (r->n < 8) {
        snprintf(r->ids[r->n], sizeof r->ids[0], "%s", d->event_id);
        r->dlv[r->n++] = d->id;
    }
    xd_stored_dlv_dispose(d);
}

static struct ready fetch(struct xd_store *s)
{
    struct ready r = {.n = 0};
    assert_true(xd_store_fetch_ready(s, "erp", INT64_MAX / 2, 16, NULL, ready_row, &r) >= 0);
    return r;
}

static void hold(struct xd_store *s, int64_t dlv, const char *why)
{
    struct xd_outcome_rec o = {.delivery_id = dlv,
                               .state = XD_DLV_HELD,
                               .outcome = "held",
                               .error = why,
                               .error_class = "master_data"};
    struct xd_append a = {.outcomes = &o, .noutcomes = 1};
    assert_int_equal(xd_store_append(s, &a), 0);
}

struct held_ctx {
    char what[4][64];
    int64_t n[4];
    size_t count;
};

static void held_row(void *ctx, const char *table, const char *key, int64_t n, int64_t since)
{
    (void)since;
    struct held_ctx *h = ctx;
    if (h->count < 4) {
        snprintf(h->what[h->count], sizeof h->what[0], "%s/%s", table, key);
        h->n[h->count++] = n;
    }
}

struct exc_ctx {
    struct xd_exception x[8];
    size_t n;
};

static void exc_row(void *ctx, struct xd_exception *x)
{
    struct exc_ctx *c = ctx;
    if (c->n < 8)
        c->x[c->n++] = *x;
    else
        xd_exception_dispose(x);
}

static void exc_free(struct exc_ctx *c)
{
    for (size_t i = 0; i < c->n; i++)
        xd_exception_dispose(&c->x[i]);
    c->n = 0;
}

static void cat_row(void *ctx, const char *category, int64_t n, int64_t max_id)
{
    (void)category;
    (void)max_id;
    *(int64_t *)ctx += n;
}

/* The store's side, the same on either driver (cfg says which, on an empty store). */
static void store_holds(const struct xd_config *cfg)
{
    struct xd_store *s = NULL;
    assert_int_equal(xd_store_open(cfg, &s, NULL), 0);
    xd_store_set_planner(s, plan_erp, NULL);
    struct xd_owner_rule rules[] = {{"master_data", "DC2", NULL, "nobody"},
                                    {"master_data", "DC1", NULL, "mdm-dc1"},
                                    {NULL, NULL, NULL, "ops"}};
    assert_int_equal(xd_store_set_owner_rules(s, rules, 3), 0);

    int64_t seq1 = append(s, "E1", "shipment:A");
    usleep(20000);
    int64_t seq2 = append(s, "E2", "shipment:A");
    usleep(20000);
    append(s, "E3", "shipment:B");
    struct ready r = fetch(s);
    assert_int_equal(r.n, 2); /* E2 waits behind E1 */
    assert_string_equal(r.ids[0], "E1");
    assert_string_equal(r.ids[1], "E3");
    int64_t d1 = r.dlv[0], d3 = r.dlv[1];

    /* E1 held: its key stays blocked, E3 goes on; then E3 held for the same entry. */
    hold(s, d1, "xref sku: no entry for S9");
    r = fetch(s);
    assert_int_equal(r.n, 1);
    assert_string_equal(r.ids[0], "E3");
    hold(s, d3, "xref sku: no entry for S9");
    assert_int_equal(fetch(s).n, 0);
    struct held_ctx h = {.count = 0};
    assert_true(xd_store_held(s, held_row, &h) >= 0);
    assert_int_equal(h.count, 1);
    assert_string_equal(h.what[0], "sku/S9");
    assert_int_equal(h.n[0], 2);

    /* One exception for the entry, routed by the first matching rule. */
    struct exc_ctx ec = {.n = 0};
    struct xd_exception_filter f = {.category = "master_data"};
    assert_true(xd_store_list_exceptions(s, &f, exc_row, &ec) >= 0);
    assert_int_equal(ec.n, 1);
    assert_string_equal(ec.x[0].owner, "mdm-dc1");
    assert_string_equal(ec.x[0].warehouse, "DC1");
    assert_string_equal(ec.x[0].customer, "ACME");
    assert_string_equal(ec.x[0].state, "open");
    int64_t exc_id = ec.x[0].id;
    exc_free(&ec);

    /* The entry arrives: both released, in order, and the exception resolved. */
    int64_t released = 0;
    assert_int_equal(xd_store_xref_put(s, "sku", "S9", "M9", &released), 0);
    assert_int_equal(released, 2);
    r = fetch(s);
    assert_int_equal(r.n, 2);
    assert_string_equal(r.ids[0], "E1");
    assert_string_equal(r.ids[1], "E3");
    struct xd_exception x;
    assert_int_equal(xd_store_get_exception(s, exc_id, &x), 0);
    assert_string_equal(x.state, "resolved");
    xd_exception_dispose(&x);
    assert_int_equal(xd_store_xref_put(s, "sku", "S9", "M9b", &released), 0);
    assert_int_equal(released, 0);
    assert_int_equal(xd_store_xref_delete(s, "sku", "S9"), 0);
    assert_int_equal(xd_store_xref_delete(s, "sku", "S9"), XD_ENOTFOUND);

    /* Once per dedup key: ever (an SLA breach), or while open. */
    int opened = -1;
    struct xd_exc_new sla = {
        .category = "sla", .dedup = "E2|r|erp", .event_id = "E2", .reason = "late", .ever = 1};
    assert_int_equal(xd_store_open_exception_once(s, &sla, &opened), 0);
    assert_int_equal(opened, 1);
    assert_int_equal(xd_store_open_exception_once(s, &sla, &opened), 0);
    assert_int_equal(opened, 0);
    struct xd_exc_new md = {.category = "master_data", .dedup = "sku/S9", .reason = "again"};
    assert_int_equal(xd_store_open_exception_once(s, &md, &opened), 0);
    assert_int_equal(opened, 1); /* the earlier one was resolved */
    assert_int_equal(xd_store_open_exception_once(s, &md, &opened), 0);
    assert_int_equal(opened, 0);
    f.category = "sla";
    assert_true(xd_store_list_exceptions(s, &f, exc_row, &ec) >= 0);
    assert_int_equal(ec.n, 1);
    assert_string_equal(ec.x[0].owner, "ops"); /* the catch-all rule */
    exc_free(&ec);

    /* Alerts: untold ones counted per category, then marked. */
    int64_t untold = 0;
    assert_true(xd_store_unalerted_categories(s, cat_row, &untold) >= 0);
    assert_int_equal(untold, 3);
    assert_int_equal(xd_store_mark_alerted(s, "master_data", INT64_MAX), 0);
    assert_int_equal(xd_store_mark_alerted(s, "sla", INT64_MAX), 0);
    untold = 0;
    assert_true(xd_store_unalerted_categories(s, cat_row, &untold) >= 0);
    assert_int_equal(untold, 0);

    /* The last event received at or before a time. */
    struct xd_stored_event e2;
    assert_int_equal(xd_store_get_event(s, "E2", &e2), 0);
    int64_t seq = -1;
    assert_int_equal(xd_store_last_seq_before(s, e2.received_ms, &seq), 0);
    assert_int_equal(seq, seq2);
    assert_int_equal(xd_store_last_seq_before(s, e2.received_ms - 1, &seq), 0);
    assert_int_equal(seq, seq1);
    assert_int_equal(xd_store_last_seq_before(s, 0, &seq), 0);
    assert_int_equal(seq, 0);
    xd_stored_event_dispose(&e2);
    assert_int_equal(xd_store_meta_set(s, "sla:r:erp", 42), 0);
    assert_int_equal(xd_store_meta_get(s, "sla:r:erp", &seq), 0);
    assert_int_equal(seq, 42);

    xd_store_close(s);
}

static void test_store_holds(void **state)
{
    (void)state;
    char dir[] = "/tmp/xd-holds-XXXXXX", path[96];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/store.db", dir);
    struct xd_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.store.driver = "sqlite";
    cfg.store.path = path;
    cfg.store.synchronous = "normal";
    cfg.store.busy_timeout_ms = 5000;
    store_holds(&cfg);
    const char *files[] = {"store.db", "store.db-wal", "store.db-shm"};
    for (size_t i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        unlink(path);
    }
    rmdir(dir);
}

/*
 * The same on PostgreSQL, on the empty database XD_TEST_PG_URL names (ctest's
 * pg/test_holds_store runs this program with a private cluster; skipped
 * without it).
 */
static void test_store_holds_pg(void **state)
{
    (void)state;
    const char *url = getenv("XD_TEST_PG_URL");
    if (!url || !*url)
        skip();
    struct xd_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.store.driver = "postgres";
    cfg.store.url = (char *)url;
    cfg.store.lease_ms = 60000;
    store_holds(&cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_durations),   cmocka_unit_test(test_xref_reaches_compiled_programs),
        cmocka_unit_test(test_hold_wanted), cmocka_unit_test(test_config_checks),
        cmocka_unit_test(test_store_holds), cmocka_unit_test(test_store_holds_pg),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
