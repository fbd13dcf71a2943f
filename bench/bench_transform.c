/*
 * Transform hot path, one event at a time: a ~550-byte shipment.confirmed
 * (already parsed, as the router holds it) through a compiled jq program,
 * cJSON -> jv conversion, the run up to the first output and the printing
 * of that output included. Prints microseconds per run for each case (the
 * best of 5 rounds) and, for comparison, what parsing the event costs.
 * Not part of the CMake build; build and run it by hand:
 *
 *   gcc -std=c17 -O2 -D_GNU_SOURCE -Isrc src/core/err.c src/core/buf.c \
 *       src/formats/json.c src/transform/transform.c bench/bench_transform.c \
 *       -ljq -lcjson -lm -o /tmp/bench_transform && /tmp/bench_transform [N [CASE]]
 *
 * N runs per case (100000); CASE, a number from 0, runs that case alone (for
 * perf or valgrind --tool=callgrind, whose instruction counts are the steady
 * measure on a shared machine).
 */
#include "core/buf.h"
#include "core/config.h"
#include "core/err.h"
#include "formats/json.h"
#include "transform/transform.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char event[] =
    "{\"event_id\":\"wms1-000123\",\"type\":\"shipment.confirmed\",\"occurred_at\":"
    "\"2026-11-28T14:03:11Z\",\"source\":\"wms-dc1\",\"data\":{\"warehouse\":\"DC1\","
    "\"shipment_id\":\"SHP-1001\",\"order_id\":\"SO-88121\",\"customer\":\"ACME\","
    "\"ship_date\":\"2026-11-28\",\"carrier\":{\"code\":\"UPSN\",\"tracking\":"
    "\"1Z999AA10123456784\"},\"lines\":[{\"line_no\":1,\"sku\":\"WID-100\",\"qty\":12},"
    "{\"line_no\":2,\"sku\":\"WID-200\",\"qty\":3,\"uom\":\"CS\"},{\"line_no\":3,\"sku\":"
    "\"GAD-310\",\"qty\":40}],\"pallets\":1,\"weight_kg\":18.4,\"freight\":{\"amount\":"
    "\"24.50\",\"currency\":\"USD\"},\"ship_to\":{\"name\":\"Globex Retail #12\","
    "\"country\":\"US\"}}}";

/* The contract's example (section 6). */
static const char contract_map[] =
    "{delivery: .data.shipment_id, plant: $xref.plant[.data.warehouse], items: "
    "[.data.lines[] | {material: .sku, quantity: .qty}]}";

enum kind { MAP, TEST, MAP_JSON, FILTER_MAP, FILTER_MAP_INPUT, PARSE };

static const char filter[] = ".data.customer == \"ACME\" and (.data.lines | length) > 0";

static const struct bench_case {
    const char *name;
    enum kind kind;
    const char *program; /* FILTER_MAP*: the map, run after `filter` above */
} cases[] = {
    {"map: contract example", MAP, contract_map},
    {"map: . (whole event)", MAP, "."},
    {"map: xref() + 20 fields", MAP,
     "{id: .event_id, at: .occurred_at, plant: xref(\"plant\"; .data.warehouse), "
     "account: xref(\"account\"; .data.customer), order: .data.order_id, "
     "carrier: .data.carrier.code, tracking: .data.carrier.tracking, "
     "weight: .data.weight_kg, pallets: .data.pallets, freight: (.data.freight.amount | "
     "tonumber), currency: .data.freight.currency, name: .data.ship_to.name, "
     "country: .data.ship_to.country, units: ([.data.lines[].qty] | add), "
     "nlines: (.data.lines | length), skus: [.data.lines[].sku], "
     "date: .data.ship_date, type: .type, source: .source, "
     "lines: [.data.lines[] | {n: .line_no, sku, qty, uom: (.uom // \"EA\")}]}"},
    {"map_json: contract example", MAP_JSON, contract_map},
    {"test: filter", TEST, filter},
    {"filter + map, each converts", FILTER_MAP, contract_map},
    {"filter + map, converted once", FILTER_MAP_INPUT, contract_map},
    {"(xd_json_parse, reference)", PARSE, NULL},
};

static struct xd_xref_entry plant[] = {{"DC1", "1000"}, {"DC2", "2000"}};
static struct xd_xref_entry account[] = {{"ACME", "ACC-0042"}};
static struct xd_xref_table tables[] = {{.name = "plant", .entries = plant, .n = 2},
                                        {.name = "account", .entries = account, .n = 1}};
static const struct xd_config cfg = {.path = "bench", .xref = tables, .nxref = 2};

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what, const struct xd_buf *err)
{
    fprintf(stderr, "bench_transform: %s: %s\n", what, xd_buf_str(err));
    exit(1);
}

/* One run of case c; out is reset, not freed, as a router's buffer would be. */
static void one(const struct bench_case *c, struct xd_jq *p, struct xd_jq *f, const cJSON *ev,
                struct xd_buf *out, struct xd_buf *err)
{
    int truthy;
    cJSON *j = NULL;
    struct xd_jq_input *in = NULL;
    xd_buf_reset(out);
    switch (c->kind) {
    case MAP:
        if (xd_jq_map(p, ev, out, err) < 0)
            die(c->name, err);
        break;
    case MAP_JSON:
        if (xd_jq_map_json(p, ev, &j, err) < 0)
            die(c->name, err);
        cJSON_Delete(j);
        break;
    case TEST:
        if (xd_jq_test(p, ev, &truthy, err) < 0 || !truthy)
            die(c->name, err);
        break;
    case FILTER_MAP:
        if (xd_jq_test(f, ev, &truthy, err) < 0 || !truthy || xd_jq_map(p, ev, out, err) < 0)
            die(c->name, err);
        break;
    case FILTER_MAP_INPUT:
        if (xd_jq_input_create(f, ev, &in) < 0 || xd_jq_test_input(f, in, &truthy, err) < 0 ||
            !truthy || xd_jq_map_input(p, in, out, err) < 0)
            die(c->name, err);
        xd_jq_input_destroy(in);
        break;
    case PARSE:
        if (xd_json_parse(event, sizeof event - 1, NULL, &j, NULL) < 0)
            die(c->name, err);
        cJSON_Delete(j);
        break;
    }
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 100000;
    long only = argc > 2 ? atol(argv[2]) : -1;
    struct xd_buf out, err;
    cJSON *ev = NULL;
    xd_buf_init(&out);
    xd_buf_init(&err);
    if (n < 5 || xd_json_parse(event, sizeof event - 1, NULL, &ev, NULL) < 0)
        die("setup", &err);
    printf("event: %zu bytes, %ld runs per case\n", sizeof event - 1, n);
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const struct bench_case *c = &cases[k];
        struct xd_jq *p = NULL, *f = NULL;
        if (only >= 0 && (size_t)only != k)
            continue;
        double t0 = now();
        if (c->program && xd_jq_compile(c->program, &cfg, &p, &err) < 0)
            die(c->name, &err);
        if (c->kind >= FILTER_MAP && c->kind != PARSE && xd_jq_compile(filter, &cfg, &f, &err) < 0)
            die(c->name, &err);
        double compile_ms = (now() - t0) * 1e3;
        for (long i = 0; i < n / 10; i++) /* warm up */
            one(c, p, f, ev, &out, &err);
        /* best of 5 rounds: the machine is shared, the minimum is the cost */
        double us = 1e9;
        for (int round = 0; round < 5; round++) {
            t0 = now();
            for (long i = 0; i < n / 5; i++)
                one(c, p, f, ev, &out, &err);
            double r = (now() - t0) * 1e6 / (double)(n / 5);
            if (r < us)
                us = r;
        }
        if (c->program)
            printf("%-30s %6.2f us/run  %8.0f runs/s per core  (compile %.1f ms, output %zu "
                   "bytes)\n",
                   c->name, us, 1e6 / us, compile_ms, out.len);
        else
            printf("%-30s %6.2f us/run\n", c->name, us);
        xd_jq_destroy(p);
        xd_jq_destroy(f);
    }
    cJSON_Delete(ev);
    xd_buf_dispose(&out);
    xd_buf_dispose(&err);
    return 0;
}
