/*
 * Intake hot path, one event at a time: parse (formats/json.h), validate and
 * prepare (ingest/event.h) a ~550-byte shipment.confirmed, as POST /v1/events
 * does before the store. Prints microseconds per event for each stage added
 * (the best of 5 rounds).
 * Not part of the CMake build; build and run it by hand:
 *
 *   gcc -std=c17 -O2 -D_GNU_SOURCE -Isrc src/core/err.c src/core/buf.c \
 *       src/formats/json.c src/ingest/event*.c bench/bench_validate.c \
 *       -lcjson -lcrypto -lm -o /tmp/bench_validate && /tmp/bench_validate [N]
 */
#include "core/err.h"
#include "formats/json.h"
#include "ingest/event.h"

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

enum stage { PARSE, VALIDATE, PREPARE };
static const char *const stage_names[] = {"parse", "parse+validate", "parse+validate+prepare"};

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* One event through the stages up to s; returns 0 or exits on an error. */
static void one(enum stage s)
{
    cJSON *ev = NULL;
    struct xd_verrs errs = {0};
    struct xd_event out;
    if (xd_json_parse(event, sizeof event - 1, NULL, &ev, NULL) < 0)
        goto fail;
    if (s >= VALIDATE && xd_event_validate(ev, "", &errs) < 0)
        goto fail;
    if (s >= PREPARE) {
        if (xd_event_prepare(ev, "key-1", &out) < 0)
            goto fail;
        xd_event_dispose(&out);
    }
    cJSON_Delete(ev);
    return;
fail:
    fprintf(stderr, "bench_validate: the sample event was refused\n");
    exit(1);
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 200000;
    printf("event: %zu bytes, %ld iterations\n", sizeof event - 1, n);
    for (enum stage s = PARSE; s <= PREPARE; s++) {
        double us = 1e9;
        for (long i = 0; i < n / 10; i++) /* warm up */
            one(s);
        /* best of 5 rounds: the machine is shared, the minimum is the cost */
        for (int round = 0; round < 5; round++) {
            double t0 = now();
            for (long i = 0; i < n / 5; i++)
                one(s);
            double r = (now() - t0) * 1e6 / (double)(n / 5);
            if (r < us)
                us = r;
        }
        printf("%-24s %6.2f us/event  %8.0f events/s per core\n", stage_names[s], us, 1e6 / us);
    }
    return 0;
}
