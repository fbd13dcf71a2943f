/*
 * Rating throughput, one thread: charges rated per second for a realistic
 * event mix against realistic cards. The events are parsed, validated and
 * prepared first (as intake does before the store); only rating is timed.
 *
 * Mix (by event): 60% shipment.confirmed (2-6 lines, some fractional
 * quantities, pallets, weight, freight on half), 15% goods.received, 10%
 * inventory.snapshot (20 items), 5% inventory.adjusted, 5% shipment.voided
 * (of an earlier shipment), 5% delivery.confirmed. 40 customers, each with
 * two cards (a price change mid-year) of 10 rules: flat prices, a 3-band
 * tier on units, min_amount, freight with markup. About 3.4 charges an event.
 *
 * Three figures, each the best of 5 rounds:
 *   rate           xd_rate_event() alone, no ledger (voids reverse nothing);
 *   rate+ledger    as `crossdock rate` does it: a fresh in-memory ledger per
 *                  round, every charge recorded, voids reverse;
 *   rate+ledger+json  the same, each new charge also written as JSON.
 * The target is 500,000 charges per second per core for `rate+ledger`.
 *
 * Not part of the CMake build; build and run it by hand:
 *
 *   gcc -std=c17 -O2 -D_GNU_SOURCE -Isrc src/core/[a-z]*.c src/formats/json.c \
 *       src/ingest/[a-z]*.c src/rating/[a-z]*.c bench/bench_rating.c \
 *       -lcjson -lcrypto -lyaml -lpthread -lm -o /tmp/bench_rating && /tmp/bench_rating [EVENTS]
 *
 * EVENTS is the number of distinct events (default 20000). Exit status 1 when
 * rate+ledger is under the target.
 */
#include "core/buf.h"
#include "core/config.h"
#include "core/err.h"
#include "ingest/intake.h"
#include "rating/card.h"
#include "rating/ledger.h"
#include "rating/rate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define TARGET    500000.0
#define CUSTOMERS 40

static uint64_t rng = 0x243f6a8885a308d3ULL;

static unsigned rnd(unsigned n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (unsigned)(rng % n);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void cards_yaml(struct xd_buf *y)
{
    static const char *const cur[] = {"USD", "EUR", "GBP", "JPY", "KWD", "CAD"};
    xd_buf_puts(y, "rate_cards:\n");
    for (int c = 0; c < CUSTOMERS; c++) {
        for (int k = 0; k < 2; k++) {
            xd_buf_printf(y,
                          "  - customer: CUST%02d\n    currency: %s\n"
                          "    effective_from: %s\n    minimum_monthly: \"500\"\n    charges:\n",
                          c, cur[c % 6], k ? "2026-07-01" : "2026-01-01");
            xd_buf_printf(
                y,
                "      - {code: HANDLING_SHIPMENT, on: shipment.confirmed, per: shipment, price: "
                "\"2.5%d\"}\n"
                "      - {code: PICK_UNIT, on: shipment.confirmed, per: unit, tiers: [{up_to: 100, "
                "price: \"0.35\"}, {up_to: 1000, price: \"0.30\"}, {price: \"0.25\"}]}\n"
                "      - {code: PICK_LINE, on: shipment.confirmed, per: line, price: \"0.20\", "
                "min_amount: \"1\"}\n"
                "      - {code: PALLET_OUT, on: shipment.confirmed, per: pallet, price: "
                "\"4.125\"}\n"
                "      - {code: FREIGHT, on: shipment.confirmed, per: freight, markup_percent: "
                "\"12.5\"}\n"
                "      - {code: RECEIVE_PALLET, on: goods.received, per: pallet, price: \"6.00\"}\n"
                "      - {code: RECEIVE_UNIT, on: goods.received, per: unit, price: \"0.045\"}\n"
                "      - {code: STORAGE_PALLET_DAY, on: inventory.snapshot, per: pallet_day, "
                "price: \"0.55\"}\n"
                "      - {code: STORAGE_UNIT_DAY, on: inventory.snapshot, per: unit_day, price: "
                "\"0.0012\"}\n"
                "      - {code: ADJUSTMENT, on: inventory.adjusted, per: adjustment, price: "
                "\"1.75\"}\n",
                k);
        }
    }
}

static void lines(struct xd_buf *b, int n, int items)
{
    xd_buf_printf(b, ",\"%s\":[", items ? "items" : "lines");
    for (int i = 0; i < n; i++) {
        unsigned q = 1 + rnd(60);
        if (rnd(5) == 0)
            xd_buf_printf(b, "%s{\"sku\":\"SKU-%05u\",\"qty\":%u.%u", i ? "," : "", rnd(99999), q,
                          1 + rnd(9));
        else
            xd_buf_printf(b, "%s{\"sku\":\"SKU-%05u\",\"qty\":%u", i ? "," : "", rnd(99999), q);
        if (items && rnd(2))
            xd_buf_printf(b, ",\"pallets\":%u", 1 + rnd(4));
        xd_buf_puts(b, items ? "}" : ",\"uom\":\"EA\"}");
    }
    xd_buf_putc(b, ']');
}

static void gen_events(struct xd_buf *b, int n)
{
    xd_buf_puts(b, "{\"events\":[");
    for (int i = 0; i < n; i++) {
        unsigned r = rnd(100), cust = rnd(CUSTOMERS);
        char when[40];
        snprintf(when, sizeof when, "2026-%02u-%02uT%02u:%02u:%02uZ", 1 + rnd(12), 1 + rnd(28),
                 rnd(24), rnd(60), rnd(60));
        if (i)
            xd_buf_putc(b, ',');
        xd_buf_printf(b, "{\"event_id\":\"bench-%d\",\"occurred_at\":\"%s\",\"source\":\"wms\",", i,
                      when);
        if (r < 60) {
            xd_buf_printf(b,
                          "\"type\":\"shipment.confirmed\",\"data\":{\"warehouse\":\"DC%u\","
                          "\"shipment_id\":\"SHP-%d\",\"order_id\":\"SO-%d\",\"customer\":"
                          "\"CUST%02u\",\"carrier\":{\"code\":\"UPSN\",\"tracking\":\"1Z%08u\"}",
                          i % 3, i, i, cust, rnd(100000000));
            lines(b, 2 + (int)rnd(5), 0);
            if (rnd(2))
                xd_buf_printf(b, ",\"pallets\":%u", 1 + rnd(3));
            xd_buf_printf(b, ",\"weight_kg\":%u.%u", 1 + rnd(400), rnd(10));
            if (rnd(2)) {
                static const char *const cur[] = {"USD", "EUR", "GBP", "JPY", "KWD", "CAD"};
                const char *c = cur[cust % 6];
                if (strcmp(c, "JPY") == 0)
                    xd_buf_printf(b, ",\"freight\":{\"amount\":\"%u\",\"currency\":\"JPY\"}",
                                  500 + rnd(5000));
                else
                    xd_buf_printf(b, ",\"freight\":{\"amount\":\"%u.%02u\",\"currency\":\"%s\"}",
                                  5 + rnd(80), rnd(100), c);
            }
            xd_buf_puts(b, "}}");
        } else if (r < 75) {
            xd_buf_printf(b,
                          "\"type\":\"goods.received\",\"data\":{\"warehouse\":\"DC1\","
                          "\"receipt_id\":\"RCV-%d\",\"customer\":\"CUST%02u\",\"pallets\":%u",
                          i, cust, 1 + rnd(12));
            lines(b, 1 + (int)rnd(8), 0);
            xd_buf_puts(b, "}}");
        } else if (r < 85) {
            xd_buf_printf(b,
                          "\"type\":\"inventory.snapshot\",\"data\":{\"warehouse\":\"DC1\","
                          "\"customer\":\"CUST%02u\",\"as_of\":\"2026-%02u-%02u\"",
                          cust, 1 + rnd(12), 1 + rnd(28));
            lines(b, 20, 1);
            xd_buf_puts(b, "}}");
        } else if (r < 90) {
            xd_buf_printf(b,
                          "\"type\":\"inventory.adjusted\",\"data\":{\"warehouse\":\"DC1\","
                          "\"adjustment_id\":\"ADJ-%d\",\"customer\":\"CUST%02u\",\"sku\":\"S\","
                          "\"qty_delta\":-%u,\"reason_code\":\"DM\"}}",
                          i, cust, 1 + rnd(9));
        } else if (r < 95 && i > 0) {
            int s = (int)rnd((unsigned)i); /* an earlier event: a shipment or not */
            xd_buf_printf(b,
                          "\"type\":\"shipment.voided\",\"data\":{\"warehouse\":\"DC%d\","
                          "\"shipment_id\":\"SHP-%d\",\"reason\":\"cancelled\"}}",
                          s % 3, s);
        } else {
            xd_buf_printf(b,
                          "\"type\":\"delivery.confirmed\",\"data\":{\"shipment_id\":\"SHP-%d\","
                          "\"delivered_at\":\"%s\"}}",
                          i, when);
        }
    }
    xd_buf_puts(b, "]}");
}

enum mode { RATE, LEDGER, JSON, NMODES };
static const char *const mode_names[NMODES] = {"rate", "rate+ledger", "rate+ledger+json"};

/* One pass over the events; returns the charges produced (or -1 on a rating error). */
static long pass(enum mode mode, const struct xd_rating *r, const struct xd_intake *in,
                 struct xd_charges *cs, struct xd_buf *out, size_t *bytes)
{
    long charges = 0;
    struct xd_memledger *m = mode == RATE ? NULL : xd_memledger_create();
    for (size_t i = 0; i < in->n; i++) {
        const struct xd_event *ev = &in->events[i];
        xd_charges_clear(cs);
        int rc = mode == RATE ? xd_rate_event(r, ev->json, ev->type, NULL, cs, NULL)
                              : xd_memledger_rate(m, r, ev->json, ev->type, cs, NULL);
        if (rc < 0) {
            fprintf(stderr, "bench_rating: %s: %s\n", ev->event_id, xd_strerror(rc));
            charges = -1;
            break;
        }
        charges += (long)cs->n;
        if (mode == JSON) {
            xd_buf_reset(out);
            for (size_t j = 0; j < cs->n; j++) {
                xd_charge_json(out, &cs->v[j]);
                xd_buf_putc(out, '\n');
            }
            *bytes += out->len;
        }
    }
    xd_memledger_destroy(m);
    return charges;
}

int main(int argc, char **argv)
{
    int nevents = argc > 1 ? atoi(argv[1]) : 20000;
    if (nevents < 1)
        nevents = 20000;
    struct xd_buf yaml, errs, body, out;
    xd_buf_init(&yaml);
    xd_buf_init(&errs);
    xd_buf_init(&body);
    xd_buf_init(&out);
    cards_yaml(&yaml);
    struct xd_config *cfg = xd_config_parse("bench.yaml", yaml.data, yaml.len, &errs);
    struct xd_rating *rating = NULL;
    if (!cfg || xd_rating_compile(cfg, &rating, &errs) < 0) {
        fprintf(stderr, "bench_rating: cards:\n%s", xd_buf_str(&errs));
        return 2;
    }
    gen_events(&body, nevents);
    struct xd_intake_limits lim = {
        .max_batch = (size_t)nevents, .max_depth = 64, .max_string = 65536};
    struct xd_intake in;
    xd_intake_init(&in, &lim, "bench");
    if (xd_intake_add_body(&in, body.data, body.len) < 0) {
        fprintf(stderr, "bench_rating: events: %s: %s\n", in.errs.n ? in.errs.v[0].path : "",
                in.errs.n ? in.errs.v[0].message : "");
        return 2;
    }

    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    printf("bench_rating: %zu events (%.1f KiB of JSON), %zu cards, 1 thread of %ld cores\n", in.n,
           body.len / 1024.0, rating->ncards, cores);
    struct xd_charges cs;
    xd_charges_init(&cs);
    double result[NMODES] = {0};
    for (int mode = 0; mode < NMODES; mode++) {
        double best = 0;
        long charges = 0;
        size_t bytes = 0;
        for (int round = 0; round < 5; round++) {
            bytes = 0;
            double t0 = now();
            charges = pass((enum mode)mode, rating, &in, &cs, &out, &bytes);
            double dt = now() - t0;
            if (charges < 0)
                return 1;
            if (charges / dt > best)
                best = charges / dt;
        }
        result[mode] = best;
        printf("  %-17s %9.0f charges/s  (%ld charges, %.2f per event, %.2f us per event%s)\n",
               mode_names[mode], best, charges, (double)charges / (double)in.n,
               1e6 * (double)charges / best / (double)in.n, mode == JSON ? ", JSON written" : "");
    }
    int ok = result[LEDGER] >= TARGET;
    printf("  target: %.0f charges/s per core for rate+ledger: %s\n", TARGET,
           ok ? "met" : "MISSED");

    xd_charges_dispose(&cs);
    xd_intake_dispose(&in);
    xd_rating_destroy(rating);
    xd_config_destroy(cfg);
    xd_buf_dispose(&yaml);
    xd_buf_dispose(&errs);
    xd_buf_dispose(&body);
    xd_buf_dispose(&out);
    return ok ? 0 : 1;
}
