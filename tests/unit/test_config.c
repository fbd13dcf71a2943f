/*
 * Unit tests of the configuration loader (core/config.c): the contract's
 * example and the fixtures in tests/data/config load with the right values;
 * every kind of problem is reported at its exact FILE:LINE:COL, all of them
 * at once; odd YAML never crashes; docs/config.md lists every key.
 *
 * Most cases are rows of a table: YAML text and the exact error lines it
 * must produce (no more, no fewer).
 */
#include "core/buf.h"
#include "core/config.h"
#include "ingest/event.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static const char *data_dir(void)
{
    const char *d = getenv("XD_TEST_DATA");
    return d && *d ? d : "tests/data";
}

/* data_dir()/rel into out. */
static const char *data_path(char *out, size_t cap, const char *rel)
{
    snprintf(out, cap, "%s/%s", data_dir(), rel);
    return out;
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    struct xd_buf b;
    xd_buf_init(&b);
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        xd_buf_append(&b, chunk, n);
    fclose(f);
    return xd_buf_steal(&b);
}

static struct xd_config *parse(const char *yaml, struct xd_buf *errs)
{
    return xd_config_parse("t.yaml", yaml, strlen(yaml), errs);
}

static size_t count_lines(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

/* ---- rows: YAML that must fail with exactly these lines ------------------ */

struct err_case {
    const char *name;
    const char *yaml;
    const char *expect[8]; /* whole lines without the newline, in order */
};

static const struct err_case err_cases[] = {
    {"unknown key",
     "server:\n"
     "  listn: 127.0.0.1:8080\n",
     {"t.yaml:2:3: unknown key 'listn' in server (did you mean 'listen'?)"}},
    {"unknown top-level key",
     "server: {}\n"
     "routs: []\n",
     {"t.yaml:2:1: unknown top-level key 'routs' (did you mean 'routes'?)"}},
    {"integer expected",
     "server:\n"
     "  max_body: abc\n",
     {"t.yaml:2:13: server.max_body: expected an integer (or with KiB, MiB, GiB), not 'abc'"}},
    {"negative and zero numbers",
     "server: {max_depth: -1, max_batch: 0}\n"
     "targets:\n"
     "  t: {type: file, path: /tmp, format: csv, timeout_ms: 4294967296}\n",
     {"t.yaml:1:21: server.max_depth: must not be negative",
      "t.yaml:1:36: server.max_batch: must be greater than 0",
      "t.yaml:3:56: targets.t.timeout_ms: is too large (at most 4294967295)"}},
    {"mapping where a number goes",
     "server:\n"
     "  threads: {a: 1}\n"
     "log: [debug]\n",
     {"t.yaml:2:12: server.threads: expected an integer, not a mapping",
      "t.yaml:3:6: log: expected a mapping, not a list"}},
    {"boolean expected",
     "targets: {b: {type: http, url: 'http://x/'}}\n"
     "routes:\n"
     "  - name: r\n"
     "    on: [shipment.confirmed]\n"
     "    steps:\n"
     "      - {rate: yes}\n",
     {"t.yaml:6:16: routes[0].steps[0].rate: expected true or false, not 'yes'"}},
    {"duplicate keys",
     "server:\n"
     "  listen: 127.0.0.1:1\n"
     "  listen: 127.0.0.1:2\n"
     "xref:\n"
     "  plant: {DC1: 1, DC1: 2}\n",
     {"t.yaml:3:3: duplicate key 'listen' in server (first at line 2)",
      "t.yaml:5:19: duplicate key 'DC1' in xref.plant (first at line 5)"}},
    {"missing required keys",
     "routes:\n"
     "  - name: r\n"
     "  - on: [goods.received]\n"
     "    steps: [{rate: true}]\n",
     {"t.yaml:2:5: routes[0]: missing required key 'on'",
      "t.yaml:2:5: routes[0]: missing required key 'steps'",
      "t.yaml:3:5: routes[1]: missing required key 'name'"}},
    {"required key without value, empty list",
     "routes:\n"
     "  - name:\n"
     "    on: []\n"
     "    steps: [{rate: true}]\n",
     {"t.yaml:2:10: routes[0].name: needs a value", "t.yaml:3:9: routes[0].on: must not be empty"}},
    {"listen address, and an empty document after",
     "server: {listen: \"127.0.0.1:70000\"}\n"
     "---\n",
     {"t.yaml:1:18: server.listen: must be host:port with a port from 1 to 65535, not "
      "'127.0.0.1:70000'"}},
    {"listen without port",
     "server:\n"
     "  listen: localhost\n",
     {"t.yaml:2:11: server.listen: must be host:port with a port from 1 to 65535, not "
      "'localhost'"}},
    {"store driver",
     "store:\n"
     "  driver: mysql\n"
     "  synchronous: off\n",
     {"t.yaml:2:11: store.driver: must be sqlite or postgres, not 'mysql'",
      "t.yaml:3:16: store.synchronous: must be full or normal, not 'off'"}},
    {"postgres needs url",
     "store: {driver: postgres}\n",
     {"t.yaml:1:17: store: driver postgres requires url"}},
    {"scopes",
     "auth:\n"
     "  keys:\n"
     "    - {id: a, secret_env: A, scopes: [events:write, write]}\n"
     "    - {id: b, secret_env: 1B, scopes: []}\n"
     "    - {id: a, secret_env: C, scopes: admin}\n",
     {"t.yaml:3:53: auth.keys[0].scopes[1]: must be events:write, read, ops or admin, not 'write'",
      "t.yaml:4:27: auth.keys[1].secret_env: must be an environment variable name (letters, "
      "digits, '_'), not '1B'",
      "t.yaml:4:39: auth.keys[1].scopes: must name at least one scope",
      "t.yaml:5:12: auth.keys[2].id: duplicate key id 'a' (first at line 3)"}},
    {"target type",
     "targets:\n"
     "  erp:\n"
     "    type: ftp\n"
     "    url: ftp://x\n",
     {"t.yaml:3:11: targets.erp.type: must be http, file or nats, not 'ftp'"}},
    {"target needs by type",
     "targets:\n"
     "  erp: {type: http}\n"
     "  out: {type: file, format: pdf}\n"
     "  bus: {type: nats, format: csv}\n",
     {"t.yaml:2:8: targets.erp: type http needs url",
      "t.yaml:3:8: targets.out: type file needs path",
      "t.yaml:3:29: targets.out.format: must be csv, x12 or jsonl, not 'pdf'",
      "t.yaml:4:8: targets.bus: type nats needs subject",
      "t.yaml:4:29: targets.bus.format: does not apply to nats targets"}},
    {"target url, headers, name, retry",
     "targets:\n"
     "  erp:\n"
     "    type: http\n"
     "    url: ftp://erp\n"
     "    headers: {\"X-A\": \"1\\r\\nX-Injected: 2\", \"Bad Name\": x}\n"
     "    retry: {initial_backoff_ms: 500, max_backoff_ms: 100}\n"
     "  \"a/b\": {type: nats, subject: s}\n",
     {"t.yaml:4:10: targets.erp.url: must start with http:// or https://",
      "t.yaml:5:22: targets.erp.headers.X-A: must not contain control characters (line breaks)",
      "t.yaml:5:44: targets.erp.headers.Bad Name: must be an HTTP header name (letters, digits, "
      "'-'), not 'Bad Name'",
      "t.yaml:6:54: targets.erp.retry.max_backoff_ms: must be at least initial_backoff_ms (500)",
      "t.yaml:7:3: targets.a/b: must use only letters, digits, '_', '-' and '.', not 'a/b'"}},
    {"route event types and targets",
     "targets: {erp: {type: http, url: 'http://erp/'}}\n"
     "routes:\n"
     "  - name: r\n"
     "    on: [shipment.confirmed, shipment.shipped]\n"
     "    steps:\n"
     "      - deliver: erp\n"
     "      - deliver: billng\n",
     {"t.yaml:4:30: routes[0].on[1]: must be an event type: shipment.confirmed, shipment.voided, "
      "goods.received, inventory.adjusted, inventory.snapshot or delivery.confirmed, not "
      "'shipment.shipped'",
      "t.yaml:7:18: routes[0].steps[1].deliver: no target named 'billng'"}},
    {"steps need deliver or rate",
     "targets: {erp: {type: http, url: 'http://erp/'}}\n"
     "routes:\n"
     "  - name: r\n"
     "    on: goods.received\n"
     "    steps:\n"
     "      - {rate: false}\n"
     "      - {map: '.'}\n"
     "      - {deliver: erp, rate: true}\n",
     {"t.yaml:6:9: routes[0].steps[0]: a step needs deliver or rate: true",
      "t.yaml:7:9: routes[0].steps[1]: a step needs deliver or rate: true",
      "t.yaml:7:15: routes[0].steps[1].map: needs deliver (map shapes what is delivered)",
      "t.yaml:8:30: routes[0].steps[2]: a step either delivers or rates, not both (use two "
      "steps)"}},
    {"route names unique",
     "routes:\n"
     "  - {name: a, on: [goods.received], steps: [{rate: true}]}\n"
     "  - {name: b, on: [goods.received], steps: [{rate: true}]}\n"
     "  - {name: a, on: [goods.received], steps: [{rate: true}]}\n",
     {"t.yaml:4:12: routes[2].name: duplicate route name 'a' (first at line 2)"}},
    {"rate card currency and date",
     "rate_cards:\n"
     "  - customer: ACME\n"
     "    currency: usd\n"
     "    effective_from: 2026-02-29\n"
     "    charges: [{code: A, on: goods.received, per: receipt, price: 1}]\n"
     "  - {customer: B, currency: EURO, effective_from: 26-01-01, charges: []}\n",
     {"t.yaml:3:15: rate_cards[0].currency: must be a currency code of 3 capital letters, like "
      "USD, not 'usd'",
      "t.yaml:4:21: rate_cards[0].effective_from: must be a date YYYY-MM-DD, not '2026-02-29'",
      "t.yaml:6:29: rate_cards[1].currency: must be a currency code of 3 capital letters, like "
      "USD, not 'EURO'",
      "t.yaml:6:51: rate_cards[1].effective_from: must be a date YYYY-MM-DD, not '26-01-01'",
      "t.yaml:6:70: rate_cards[1].charges: must not be empty"}},
    {"decimals",
     "rate_cards:\n"
     "  - customer: ACME\n"
     "    currency: USD\n"
     "    effective_from: 2026-01-01\n"
     "    minimum_monthly: -5\n"
     "    charges:\n"
     "      - {code: A, on: shipment.confirmed, per: unit, price: abc}\n"
     "      - {code: B, on: shipment.confirmed, per: line, price: 1e5}\n"
     "      - {code: C, on: shipment.confirmed, per: kg, price: \"2.\", min_amount: .5}\n",
     {"t.yaml:5:22: rate_cards[0].minimum_monthly: must be a decimal number like \"2.50\", not "
      "'-5'",
      "t.yaml:7:61: rate_cards[0].charges[0].price: must be a decimal number like \"2.50\", not "
      "'abc'",
      "t.yaml:8:61: rate_cards[0].charges[1].price: must be a decimal number like \"2.50\", not "
      "'1e5'",
      "t.yaml:9:59: rate_cards[0].charges[2].price: must be a decimal number like \"2.50\", not "
      "'2.'",
      "t.yaml:9:77: rate_cards[0].charges[2].min_amount: must be a decimal number like \"2.50\", "
      "not '.5'"}},
    {"charge rules",
     "rate_cards:\n"
     "  - customer: ACME\n"
     "    currency: USD\n"
     "    effective_from: 2026-01-01\n"
     "    charges:\n"
     "      - {code: A, on: shipment.confirmed, per: carton, price: \"1\"}\n"
     "      - {code: B, on: shipment.confirmed, per: unit}\n"
     "      - {code: C, on: shipment.confirmed, per: unit, price: \"1\", markup_percent: \"5\"}\n"
     "      - {code: D, on: shipment.confirmed, per: freight, price: \"1\"}\n"
     "      - {code: E, on: shipment.confirmed, per: parcel, price: \"1\"}\n",
     {"t.yaml:6:48: rate_cards[0].charges[0].per: 'carton' does not apply to shipment.confirmed "
      "(it applies to goods.received)",
      "t.yaml:7:9: rate_cards[0].charges[1]: needs price or tiers",
      "t.yaml:8:82: rate_cards[0].charges[2].markup_percent: applies only to per: freight",
      "t.yaml:9:64: rate_cards[0].charges[3].price: does not apply to per: freight (the price is "
      "the freight amount plus markup_percent)",
      "t.yaml:10:48: rate_cards[0].charges[4].per: must be shipment, line, unit, pallet, carton, "
      "kg, receipt, adjustment, pallet_day, unit_day or freight, not 'parcel'"}},
    {"tiers",
     "rate_cards:\n"
     "  - customer: ACME\n"
     "    currency: USD\n"
     "    effective_from: 2026-01-01\n"
     "    charges:\n"
     "      - code: PICK\n"
     "        on: goods.received\n"
     "        per: unit\n"
     "        tiers:\n"
     "          - {up_to: 100, price: \"0.35\"}\n"
     "          - {up_to: 100.0, price: \"0.30\"}\n"
     "          - {price: \"0.28\"}\n"
     "          - {up_to: 0, price: \"0.25\"}\n",
     {"t.yaml:11:21: rate_cards[0].charges[0].tiers[1].up_to: must be greater than the tier "
      "before (100)",
      "t.yaml:12:13: rate_cards[0].charges[0].tiers[2]: needs up_to (only the last tier has "
      "none)",
      "t.yaml:13:21: rate_cards[0].charges[0].tiers[3].up_to: the last tier has no up_to (it "
      "prices all remaining units)",
      "t.yaml:13:21: rate_cards[0].charges[0].tiers[3].up_to: must be greater than 0"}},
    {"duplicate rate card",
     "rate_cards:\n"
     "  - {customer: A, currency: USD, effective_from: 2026-01-01, charges: [{code: X, on: "
     "goods.received, per: receipt, price: 1}]}\n"
     "  - {customer: A, currency: USD, effective_from: 2026-01-01, charges: [{code: X, on: "
     "goods.received, per: receipt, price: 2}]}\n",
     {"t.yaml:3:5: rate_cards[1]: duplicate rate card 'A from 2026-01-01' (first at line 2)"}},
    {"syntax error",
     "server:\n"
     "  listen: 127.0.0.1:8080\n"
     " max_body: 10\n",
     {"t.yaml:3:2: not valid YAML: did not find expected key (while parsing a block mapping at "
      "line 1)"}},
    {"unclosed flow",
     "store: {driver: sqlite\n",
     {"t.yaml:2:1: not valid YAML: did not find expected ',' or '}' (while parsing a flow mapping "
      "at line 1)"}},
    {"undefined alias",
     "targets:\n"
     "  erp: {type: http, url: 'http://x/', retry: *nope}\n",
     {"t.yaml:2:46: not valid YAML: found undefined alias"}},
    {"two documents",
     "server: {}\n"
     "---\n"
     "store: {}\n",
     {"t.yaml:3:1: a second YAML document: the configuration is one document (remove the '---')"}},
    {"root is a list",
     "- server\n"
     "- store\n",
     {"t.yaml:1:1: the configuration must be a mapping of sections (server:, store:, targets:, "
      "...)"}},
    {"root is a scalar",
     "hello\n",
     {"t.yaml:1:1: the configuration must be a mapping of sections (server:, store:, targets:, "
      "...)"}},
    {"sequences and scalars where mappings go",
     "server: [1, 2]\n"
     "targets: [erp]\n"
     "routes: {name: r}\n"
     "xref:\n"
     "  plant: [DC1]\n"
     "  account: {ACME: [1]}\n"
     "auth: {keys: nope}\n",
     {"t.yaml:1:9: server: expected a mapping, not a list",
      "t.yaml:2:10: targets: expected a mapping of names, not a list",
      "t.yaml:3:9: routes: expected a list, not a mapping",
      "t.yaml:5:10: xref.plant: expected a mapping of names to values, not a list",
      "t.yaml:6:19: xref.account.ACME: expected a value, not a list",
      "t.yaml:7:14: auth.keys: expected a list, not 'nope'"}},
    {"keys that are not names",
     "? [a, b]\n"
     ": 1\n"
     "server: {? {x: 1} : 2}\n",
     {"t.yaml:1:3: keys must be names, not a list",
      "t.yaml:3:12: server: keys must be names, not a mapping"}},
    {"NUL in a string and merge keys",
     "store: {path: \"a\\0b\"}\n"
     "log:\n"
     "  <<: {level: info}\n",
     {"t.yaml:1:15: store.path: must not contain a NUL character",
      "t.yaml:3:3: merge keys (<<) are not supported; use an alias for the whole value"}},
    {"empty names",
     "targets: {\"\": {type: http, url: 'http://x/'}}\n"
     "xref: {t: {\"\": x}}\n",
     {"t.yaml:1:11: targets: a name must not be empty",
      "t.yaml:2:12: xref.t: a name must not be empty"}},
    {"partners",
     "partners:\n"
     "  ACME: {}\n"
     "  B: {customer: B, dock: 1}\n",
     {"t.yaml:2:9: partners.ACME: needs customer or warehouse",
      "t.yaml:3:20: unknown key 'dock' in partners.B"}},
    {"aliases under unknown keys are not read",
     "a: &a [x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x]\n"
     "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
     "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
     "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
     "routes:\n"
     "  - {name: r, on: [goods.received], steps: [{rate: true}]}\n",
     {"t.yaml:1:1: unknown top-level key 'a'", "t.yaml:2:1: unknown top-level key 'b'",
      "t.yaml:3:1: unknown top-level key 'c'", "t.yaml:4:1: unknown top-level key 'd'"}},
};

static void test_err_case(void **state)
{
    const struct err_case *c = *state;
    struct xd_buf errs;
    xd_buf_init(&errs);
    struct xd_config *cfg = parse(c->yaml, &errs);
    int loaded = cfg != NULL;
    xd_config_destroy(cfg);
    if (loaded) {
        xd_buf_dispose(&errs);
        fail_msg("%s: loaded, expected errors", c->name);
    }
    struct xd_buf want;
    xd_buf_init(&want);
    for (size_t i = 0; i < 8 && c->expect[i]; i++)
        xd_buf_printf(&want, "%s\n", c->expect[i]);
    int same = strcmp(xd_buf_str(&errs), xd_buf_str(&want)) == 0;
    if (!same)
        print_error("got:\n%swant:\n%s", xd_buf_str(&errs), xd_buf_str(&want));
    xd_buf_dispose(&want);
    xd_buf_dispose(&errs);
    assert_true(same);
}

/* ---- files ------------------------------------------------------------- */

static struct xd_config *load_fixture(const char *rel, struct xd_buf *errs)
{
    char path[1024];
    return xd_config_load(data_path(path, sizeof path, rel), errs);
}

static void test_contract_example(void **state)
{
    (void)state;
    struct xd_buf errs;
    xd_buf_init(&errs);
    struct xd_config *cfg = load_fixture("config/contract.yaml", &errs);
    assert_string_equal(xd_buf_str(&errs), "");
    assert_non_null(cfg);

    assert_string_equal(cfg->server.listen, "127.0.0.1:8080");
    assert_int_equal(cfg->server.max_body, 1048576);
    assert_int_equal(cfg->server.max_batch, 1000);
    assert_string_equal(cfg->store.driver, "sqlite");
    assert_string_equal(cfg->store.path, "./crossdock.db");

    assert_int_equal(cfg->auth.nkeys, 1);
    assert_string_equal(cfg->auth.keys[0].id, "wms-dc1");
    assert_string_equal(cfg->auth.keys[0].secret_env, "CROSSDOCK_KEY_WMS");
    assert_int_equal(cfg->auth.keys[0].scopes, XD_SCOPE_EVENTS_WRITE);
    assert_int_equal(cfg->auth.keys[0].pos.line, 5);
    assert_int_equal(cfg->auth.keys[0].pos.col, 7);

    assert_int_equal(cfg->nxref, 2);
    assert_string_equal(xd_config_xref(cfg, "plant", "DC2"), "2000");
    assert_string_equal(xd_config_xref(cfg, "account", "ACME"), "ACC-0042");
    assert_null(xd_config_xref(cfg, "plant", "DC9"));
    assert_null(xd_config_xref(cfg, "nope", "DC1"));

    assert_int_equal(cfg->ntargets, 2);
    const struct xd_target *erp = xd_config_target(cfg, "erp");
    assert_non_null(erp);
    assert_string_equal(erp->type, "http");
    assert_string_equal(erp->url, "http://127.0.0.1:18080/erp/shipments");
    assert_int_equal(erp->timeout_ms, 5000);
    assert_int_equal(erp->retry.max_attempts, 8);
    assert_int_equal(erp->retry.initial_backoff_ms, 200);
    assert_int_equal(erp->retry.max_backoff_ms, 60000);
    assert_int_equal(erp->pos.line, 10);
    assert_int_equal(erp->pos.col, 3);
    const struct xd_target *billing = xd_config_target(cfg, "billing");
    assert_non_null(billing);
    assert_int_equal(billing->retry.max_attempts, 8); /* defaults without retry: */
    assert_null(xd_config_target(cfg, "nope"));

    assert_int_equal(cfg->nroutes, 1);
    const struct xd_route *r = &cfg->routes[0];
    assert_string_equal(r->name, "shipments");
    assert_int_equal(r->non, 1);
    assert_string_equal(r->on[0], "shipment.confirmed");
    assert_null(r->filter);
    assert_int_equal(r->nsteps, 3);
    assert_string_equal(r->steps[0].deliver, "erp");
    assert_string_equal(r->steps[0].map,
                        "{delivery: .data.shipment_id, plant: $xref.plant[.data.warehouse], "
                        "items: [.data.lines[] | {material: .sku, quantity: .qty}]}");
    assert_int_equal(r->steps[0].map_pos.line, 23);
    assert_int_equal(r->steps[0].map_pos.col, 14);
    assert_int_equal(r->steps[0].rate, 0);
    assert_null(r->steps[1].deliver);
    assert_int_equal(r->steps[1].rate, 1);
    assert_string_equal(r->steps[2].deliver, "billing");
    assert_int_equal(r->steps[2].deliver_pos.line, 25);

    assert_int_equal(cfg->nrate_cards, 1);
    const struct xd_rate_card *card = &cfg->rate_cards[0];
    assert_string_equal(card->customer, "ACME");
    assert_string_equal(card->currency, "USD");
    assert_string_equal(card->effective_from, "2026-01-01");
    assert_null(card->minimum_monthly);
    assert_int_equal(card->ncharges, 6);
    assert_string_equal(card->charges[0].code, "HANDLING_SHIPMENT");
    assert_string_equal(card->charges[0].per, "shipment");
    assert_string_equal(card->charges[0].price, "2.50");
    assert_string_equal(card->charges[4].on, "inventory.snapshot");
    assert_string_equal(card->charges[4].per, "pallet_day");
    assert_string_equal(card->charges[5].per, "freight");
    assert_null(card->charges[5].price);
    assert_string_equal(card->charges[5].markup_percent, "12");
    assert_int_equal(card->charges[5].pos.line, 36);

    xd_config_destroy(cfg);
    xd_buf_dispose(&errs);
}

static void test_full_fixture(void **state)
{
    (void)state;
    struct xd_buf errs;
    xd_buf_init(&errs);
    setenv("XD_TEST_KEY_WMS", "wms-secret", 1);
    setenv("XD_TEST_KEY_OPS", "", 1); /* empty: as if unset */
    unsetenv("XD_TEST_KEY_NEVER_SET");
    struct xd_config *cfg = load_fixture("config/full.yaml", &errs);
    assert_string_equal(xd_buf_str(&errs), "");
    assert_non_null(cfg);

    assert_string_equal(cfg->server.listen, "[::1]:9090");
    assert_int_equal(cfg->server.max_body, 4 * 1024 * 1024);
    assert_int_equal(cfg->server.max_string, 64 * 1024);
    assert_int_equal(cfg->server.threads, 4);
    assert_int_equal(cfg->server.timeout_s, 10);
    assert_string_equal(cfg->store.driver, "postgres");
    assert_string_equal(cfg->store.url, "postgresql://crossdock@db.internal:5432/crossdock");
    assert_string_equal(cfg->store.synchronous, "full");
    assert_int_equal(cfg->store.busy_timeout_ms, 100);
    assert_string_equal(cfg->log.level, "debug");
    assert_string_equal(cfg->log.format, "json");

    assert_int_equal(cfg->auth.nkeys, 3);
    assert_string_equal(cfg->auth.keys[0].secret, "wms-secret");
    assert_int_equal(cfg->auth.keys[0].scopes, XD_SCOPE_EVENTS_WRITE | XD_SCOPE_READ);
    assert_int_equal(cfg->auth.keys[0].rate_limit, 50);
    assert_null(cfg->auth.keys[1].secret);
    assert_int_equal(cfg->auth.keys[1].scopes, XD_SCOPE_OPS | XD_SCOPE_READ | XD_SCOPE_ADMIN);
    assert_null(cfg->auth.keys[2].secret);
    assert_int_equal(cfg->auth.keys[2].scopes, XD_SCOPE_READ); /* a lone scalar */

    assert_string_equal(xd_config_xref(cfg, "plant", "DC1"), "1000"); /* a number's text */
    assert_string_equal(xd_config_xref(cfg, "flags", "cold"), "true");
    assert_string_equal(xd_config_xref(cfg, "flags", "empty"), "");

    const struct xd_target *erp = xd_config_target(cfg, "erp");
    assert_string_equal(erp->bearer_env, "ERP_TOKEN");
    assert_int_equal(erp->nheaders, 2);
    assert_string_equal(erp->headers[0].name, "X-Tenant");
    assert_string_equal(erp->headers[0].value, "acme");
    assert_int_equal(erp->retry.max_attempts, 3);
    const struct xd_target *legacy = xd_config_target(cfg, "legacy");
    assert_string_equal(legacy->format, "x12");
    assert_int_equal(legacy->retry.max_backoff_ms, 1000); /* through the alias */
    const struct xd_target *stream = xd_config_target(cfg, "stream");
    assert_string_equal(stream->subject, "crossdock.events");
    assert_int_equal(stream->timeout_ms, 2000);

    assert_int_equal(cfg->routes[0].non, 1);
    assert_string_equal(cfg->routes[0].on[0], "goods.received");
    assert_string_equal(cfg->routes[0].filter, ".data.warehouse == \"DC1\"");
    assert_int_equal(cfg->routes[0].filter_pos.line, 57);
    assert_int_equal(cfg->routes[1].non, 3);

    const struct xd_charge_rule *pick = &cfg->rate_cards[0].charges[0];
    assert_string_equal(cfg->rate_cards[0].minimum_monthly, "500.00");
    assert_string_equal(pick->min_amount, "1.00");
    assert_string_equal(pick->when, ".data.priority == \"high\"");
    assert_int_equal(pick->when_pos.line, 77);
    assert_int_equal(pick->ntiers, 3);
    assert_string_equal(pick->tiers[0].up_to, "100");
    assert_string_equal(pick->tiers[1].up_to, "1000.5");
    assert_string_equal(pick->tiers[1].price, "0.30");
    assert_null(pick->tiers[2].up_to);

    assert_int_equal(cfg->npartners, 2);
    const struct xd_partner *p = xd_config_partner(cfg, "ACMEWMS");
    assert_non_null(p);
    assert_string_equal(p->customer, "ACME");
    assert_string_equal(p->warehouse, "DC1");
    p = xd_config_partner(cfg, "7085551234");
    assert_non_null(p);
    assert_null(p->customer);
    assert_null(xd_config_partner(cfg, "NOBODY"));

    xd_config_destroy(cfg);
    xd_buf_dispose(&errs);
}

static void test_multi_error_fixture(void **state)
{
    (void)state;
    char path[1024];
    struct xd_buf errs;
    xd_buf_init(&errs);
    data_path(path, sizeof path, "config/multi_error.yaml");
    assert_null(xd_config_load(path, &errs));
    static const char *const want[] = {
        "2:3: unknown key 'listn' in server (did you mean 'listen'?)",
        "3:13: server.max_body: expected an integer",
        "5:11: store: driver postgres requires url",
        "8:71: auth.keys[0].scopes[1]: must be events:write, read, ops or admin, not 'write'",
        "11:5: targets.erp: type http needs url",
        "14:10: routes[0].on[0]: must be an event type",
        "16:18: routes[0].steps[0].deliver: no target named 'billing'",
        "17:9: routes[0].steps[1]: a step needs deliver or rate: true",
        "20:15: rate_cards[0].currency: must be a currency code",
        "21:21: rate_cards[0].effective_from: must be a date YYYY-MM-DD, not '2026-13-01'",
        "23:64: rate_cards[0].charges[0].price: must be a decimal number",
    };
    size_t n = sizeof want / sizeof want[0];
    assert_int_equal(count_lines(xd_buf_str(&errs)), n);
    const char *line = xd_buf_str(&errs);
    for (size_t i = 0; i < n; i++) {
        char head[1200];
        snprintf(head, sizeof head, "%s:%s", path, want[i]);
        if (strncmp(line, head, strlen(head)) != 0)
            fail_msg("line %zu: got %.*s, want %s", i, (int)strcspn(line, "\n"), line, head);
        line += strcspn(line, "\n") + 1;
    }
    xd_buf_dispose(&errs);
}

static void test_missing_file(void **state)
{
    (void)state;
    struct xd_buf errs;
    xd_buf_init(&errs);
    assert_null(xd_config_load("/nonexistent/crossdock.yaml", &errs));
    assert_string_equal(xd_buf_str(&errs),
                        "/nonexistent/crossdock.yaml: cannot open: No such file or directory\n");
    xd_buf_reset(&errs);
    assert_null(xd_config_load(data_dir(), &errs)); /* a directory */
    assert_non_null(strstr(xd_buf_str(&errs), ": cannot read: Is a directory\n"));
    assert_null(xd_config_load("/nonexistent", NULL)); /* errs may be NULL */
    xd_buf_dispose(&errs);
}

static void test_defaults(void **state)
{
    (void)state;
    static const char *const empties[] = {"", "# nothing but a comment\n", "---\n", "~\n",
                                          "server:\nstore: ~\nroutes:\n"};
    for (size_t i = 0; i < sizeof empties / sizeof empties[0]; i++) {
        struct xd_buf errs;
        xd_buf_init(&errs);
        struct xd_config *cfg = i == 0 ? xd_config_default() : parse(empties[i], &errs);
        assert_string_equal(xd_buf_str(&errs), "");
        assert_non_null(cfg);
        assert_string_equal(cfg->server.listen, "127.0.0.1:8080");
        assert_int_equal(cfg->server.max_body, 1048576);
        assert_int_equal(cfg->server.max_batch, 1000);
        assert_int_equal(cfg->server.max_depth, 64);
        assert_int_equal(cfg->server.max_string, 65536);
        assert_int_equal(cfg->server.threads, 0);
        assert_int_equal(cfg->server.max_connections, 1024);
        assert_int_equal(cfg->server.timeout_s, 30);
        assert_string_equal(cfg->store.driver, "sqlite");
        assert_string_equal(cfg->store.path, "./crossdock.db");
        assert_null(cfg->store.url);
        assert_string_equal(cfg->store.synchronous, "full");
        assert_int_equal(cfg->store.busy_timeout_ms, 5000);
        assert_string_equal(cfg->log.level, "info");
        assert_string_equal(cfg->log.format, "auto");
        assert_int_equal(cfg->auth.nkeys, 0);
        assert_int_equal(cfg->nxref + cfg->ntargets + cfg->nroutes + cfg->nrate_cards, 0);
        assert_null(xd_config_key_by_secret(cfg, "x", 1));
        xd_config_destroy(cfg);
        xd_buf_dispose(&errs);
    }
}

static void test_target_defaults(void **state)
{
    (void)state;
    struct xd_buf errs;
    xd_buf_init(&errs);
    struct xd_config *cfg = parse("targets:\n"
                                  "  out: {type: file, path: ./out, format: jsonl,\n"
                                  "        retry: {max_attempts: 2}}\n",
                                  &errs);
    assert_string_equal(xd_buf_str(&errs), "");
    const struct xd_target *t = xd_config_target(cfg, "out");
    assert_int_equal(t->timeout_ms, 5000);
    assert_int_equal(t->retry.max_attempts, 2);
    assert_int_equal(t->retry.initial_backoff_ms, 200);
    assert_int_equal(t->retry.max_backoff_ms, 60000);
    assert_null(t->url);
    assert_int_equal(t->nheaders, 0);
    xd_config_destroy(cfg);
    xd_buf_dispose(&errs);
}

static void test_key_by_secret(void **state)
{
    (void)state;
    struct xd_buf errs;
    xd_buf_init(&errs);
    setenv("XD_TEST_SECRET_A", "alpha-secret", 1);
    setenv("XD_TEST_SECRET_B", "bravo-secret", 1);
    unsetenv("XD_TEST_SECRET_C");
    struct xd_config *cfg = parse("auth:\n"
                                  "  keys:\n"
                                  "    - {id: a, secret_env: XD_TEST_SECRET_A, scopes: [read]}\n"
                                  "    - {id: b, secret_env: XD_TEST_SECRET_B, scopes: [ops]}\n"
                                  "    - {id: c, secret_env: XD_TEST_SECRET_C, scopes: [admin]}\n",
                                  &errs);
    assert_string_equal(xd_buf_str(&errs), "");
    assert_non_null(cfg);
    assert_string_equal(cfg->auth.keys[0].secret, "alpha-secret");
    assert_null(cfg->auth.keys[2].secret);

    const struct xd_key *k = xd_config_key_by_secret(cfg, "bravo-secret", 12);
    assert_non_null(k);
    assert_string_equal(k->id, "b");
    k = xd_config_key_by_secret(cfg, "alpha-secret", 12);
    assert_string_equal(k->id, "a");
    assert_null(xd_config_key_by_secret(cfg, "alpha-secre", 11));
    assert_null(xd_config_key_by_secret(cfg, "alpha-secretX", 13));
    assert_null(xd_config_key_by_secret(cfg, "", 0));
    assert_null(xd_config_key_by_secret(cfg, NULL, 0));
    /* the length is what counts, not a NUL */
    assert_null(xd_config_key_by_secret(cfg, "alpha-secret\0", 13));
    xd_config_destroy(cfg);
    xd_buf_dispose(&errs);
}

static void test_scope_names(void **state)
{
    (void)state;
    static const unsigned bits[] = {XD_SCOPE_EVENTS_WRITE, XD_SCOPE_READ, XD_SCOPE_OPS,
                                    XD_SCOPE_ADMIN};
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(xd_scope_parse(xd_scope_name(bits[i])), bits[i]);
    assert_string_equal(xd_scope_name(XD_SCOPE_EVENTS_WRITE), "events:write");
    assert_null(xd_scope_name(XD_SCOPE_READ | XD_SCOPE_OPS));
    assert_int_equal(xd_scope_parse("write"), 0);
}

/* The message for a wrong event type names every type there is. */
static void test_event_type_message(void **state)
{
    (void)state;
    struct xd_buf errs;
    xd_buf_init(&errs);
    assert_null(parse("rate_cards: [{customer: A, currency: USD, effective_from: 2026-01-01,\n"
                      "  charges: [{code: X, on: nope, per: unit, price: 1}]}]\n",
                      &errs));
    for (int t = 0; t < XD_EV__COUNT; t++)
        assert_non_null(strstr(xd_buf_str(&errs), xd_event_type_name((enum xd_event_type)t)));
    xd_buf_dispose(&errs);
}

/* Inputs that must neither crash nor leak, whatever they give. */
static void test_weird_inputs(void **state)
{
    (void)state;
    static const char *const inputs[] = {
        "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
        "routes: &r [*r]\n",
        "targets: &t {erp: *t}\n",
        "rate_cards: [{charges: &c [{tiers: *c}]}]\n",
        "\xff\xfe\x00garbage",
        "server: {listen: \"\\xff\"}\n",
        "{a: 1, b: {c: 2}}\n...\n",
        "server: !!binary aGVsbG8=\n",
        "\t- tab\n",
        "key: 'unterminated\n",
        "%YAML 1.1\n---\nserver: {}\n",
        "%YAML 2.0\n---\nserver: {}\n",
        "? \n",
        ": x\n",
        "targets: {\"\": {type: http, url: 'http://x/'}}\n",
        "xref: {\"\": {\"\": \"\"}}\n",
        "routes: [~, [], 1, {}]\n",
        "auth: {keys: [~, {scopes: {}}]}\n",
    };
    for (size_t i = 0; i < sizeof inputs / sizeof inputs[0]; i++) {
        struct xd_buf errs;
        xd_buf_init(&errs);
        struct xd_config *cfg = parse(inputs[i], &errs);
        xd_config_destroy(cfg);
        /* every line is FILE:...: message */
        for (const char *l = xd_buf_str(&errs); *l; l += strcspn(l, "\n") + 1)
            assert_int_equal(strncmp(l, "t.yaml:", 7), 0);
        xd_buf_dispose(&errs);
    }

    /* Aliases that expand past the budget: 2000 routes of 1000 event types each. */
    struct xd_buf bomb, berrs;
    xd_buf_init(&bomb);
    xd_buf_init(&berrs);
    xd_buf_puts(&bomb, "routes:\n  - &r {name: r, steps: [{rate: true}], on: [");
    for (int i = 0; i < 1000; i++)
        xd_buf_puts(&bomb, i ? ", goods.received" : "goods.received");
    xd_buf_puts(&bomb, "]}\n");
    for (int i = 0; i < 2000; i++)
        xd_buf_puts(&bomb, "  - *r\n");
    assert_null(xd_config_parse("bomb.yaml", bomb.data, bomb.len, &berrs));
    assert_int_equal(count_lines(xd_buf_str(&berrs)), 1);
    assert_non_null(strstr(xd_buf_str(&berrs), ": aliases expand to too many values"));
    xd_buf_dispose(&bomb);
    xd_buf_dispose(&berrs);

    /* Deep nesting and a big file. */
    struct xd_buf big, errs;
    xd_buf_init(&big);
    xd_buf_init(&errs);
    xd_buf_puts(&big, "xref:\n  huge:\n");
    for (int i = 0; i < 200000; i++)
        xd_buf_printf(&big, "    K%d: %d\n", i, i);
    xd_buf_puts(&big, "    K7: dup\n");
    struct xd_config *cfg = xd_config_parse("big.yaml", big.data, big.len, &errs);
    assert_null(cfg);
    assert_string_equal(xd_buf_str(&errs),
                        "big.yaml:200003:5: duplicate key 'K7' in xref.huge (first at line 10)\n");
    xd_buf_reset(&big);
    xd_buf_reset(&errs);
    for (int i = 0; i < 100000; i++)
        xd_buf_putc(&big, '[');
    cfg = xd_config_parse("deep.yaml", big.data, big.len, &errs);
    assert_null(cfg);
    assert_string_equal(xd_buf_str(&errs), "deep.yaml:1:65: nested more than 64 levels deep\n");
    xd_buf_dispose(&big);
    xd_buf_dispose(&errs);
}

/* Too many problems: the first ones are listed, the rest counted. */
static void test_error_cap(void **state)
{
    (void)state;
    struct xd_buf yaml, errs;
    xd_buf_init(&yaml);
    xd_buf_init(&errs);
    for (int i = 0; i < 1500; i++)
        xd_buf_printf(&yaml, "k%d: 1\n", i);
    assert_null(xd_config_parse("many.yaml", yaml.data, yaml.len, &errs));
    assert_int_equal(count_lines(xd_buf_str(&errs)), 1001);
    assert_non_null(strstr(xd_buf_str(&errs), "many.yaml: 500 more problems not listed\n"));
    xd_buf_dispose(&yaml);
    xd_buf_dispose(&errs);
}

static void test_example_file(void **state)
{
    (void)state;
    char path[1024];
    struct xd_buf errs;
    xd_buf_init(&errs);
    setenv("CROSSDOCK_KEY_WMS", "example-wms", 1);
    unsetenv("CROSSDOCK_KEY_OPS");
    struct xd_config *cfg =
        xd_config_load(data_path(path, sizeof path, "../../examples/crossdock.yaml"), &errs);
    assert_string_equal(xd_buf_str(&errs), "");
    assert_non_null(cfg);
    assert_string_equal(cfg->store.path, "./crossdock.db");
    const struct xd_key *k = xd_config_key_by_secret(cfg, "example-wms", 11);
    assert_non_null(k);
    assert_true(k->scopes & XD_SCOPE_EVENTS_WRITE);
    int ops = 0;
    for (size_t i = 0; i < cfg->auth.nkeys; i++)
        if (strcmp(cfg->auth.keys[i].secret_env, "CROSSDOCK_KEY_OPS") == 0)
            ops = 1, assert_null(cfg->auth.keys[i].secret);
    assert_true(ops);
    xd_config_destroy(cfg);
    xd_buf_dispose(&errs);
}

/* docs/config.md carries every row xd_config_describe() writes, as written. */
static void test_docs_match_table(void **state)
{
    (void)state;
    char path[1024];
    struct xd_buf rows;
    xd_buf_init(&rows);
    assert_int_equal(xd_config_describe(&rows), 0);
    assert_true(count_lines(xd_buf_str(&rows)) > 50);
    char *doc = slurp(data_path(path, sizeof path, "../../docs/config.md"));
    assert_non_null(doc);
    for (const char *l = xd_buf_str(&rows); *l;) {
        size_t n = strcspn(l, "\n");
        char row[2048];
        snprintf(row, sizeof row, "%.*s", (int)n, l);
        if (!strstr(doc, row))
            fail_msg("docs/config.md lacks the row: %s", row);
        l += n + 1;
    }
    free(doc);
    xd_buf_dispose(&rows);
}

int main(void)
{
    static const struct CMUnitTest fixed[] = {
        cmocka_unit_test(test_contract_example),
        cmocka_unit_test(test_full_fixture),
        cmocka_unit_test(test_multi_error_fixture),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_target_defaults),
        cmocka_unit_test(test_key_by_secret),
        cmocka_unit_test(test_scope_names),
        cmocka_unit_test(test_event_type_message),
        cmocka_unit_test(test_weird_inputs),
        cmocka_unit_test(test_error_cap),
        cmocka_unit_test(test_example_file),
        cmocka_unit_test(test_docs_match_table),
    };
    enum { NFIXED = sizeof fixed / sizeof fixed[0], NERR = sizeof err_cases / sizeof err_cases[0] };
    static struct CMUnitTest tests[NFIXED + NERR];
    memcpy(tests, fixed, sizeof fixed);
    for (size_t i = 0; i < NERR; i++)
        tests[NFIXED + i] = (struct CMUnitTest){.name = err_cases[i].name,
                                                .test_func = test_err_case,
                                                .initial_state = (void *)&err_cases[i]};
    return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
