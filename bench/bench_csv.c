/*
 * CSV reader throughput: xd_csv_read() (formats/csv.h) on a generated file
 * of realistic rows. Each event is validated as part of the read. Prints MB/s,
 * rows/s and events/s for the reader, and for libcsv alone (splitting cells,
 * nothing else) as the floor it is built on (best of 5 rounds each).
 *
 * The file: shipments of 1-5 lines (carrier, tracking, pallets, weight),
 * receipts of 1-3 lines, single-row adjustments and a snapshot of 50 items
 * about every 1,000 rows, in random order. Each document's rows are
 * consecutive; the adjustments, one event a row, make the hash table large.
 * About 115 bytes a row.
 *
 * Not part of the CMake build; build and run it by hand:
 *
 *   gcc -std=c17 -O2 -D_GNU_SOURCE -Isrc src/core/err.c src/core/buf.c \
 *       src/formats/json.c src/formats/csv.c src/ingest/event*.c bench/bench_csv.c \
 *       -lcsv -lcjson -lcrypto -lm -o /tmp/bench_csv && /tmp/bench_csv [ROWS]
 *
 * ROWS defaults to 200000 (about 30 MB).
 */
#include "core/buf.h"
#include "core/err.h"
#include "formats/csv.h"

#include <csv.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static const char header[] =
    "type,warehouse,customer,occurred_at,shipment_id,order_id,receipt_id,adjustment_id,as_of,"
    "line_no,sku,qty,qty_delta,uom,lot,reason_code,carrier_code,tracking,pallets,weight_kg\n";

static const char *const customers[] = {"ACME", "GLOBEX", "INITECH", "UMBRELLA"};
static const char *const carriers[] = {"UPSN", "FDXE", "DHLE", "USPS"};

/* A file of about rows rows; *events is how many events it holds. */
static void generate(struct xd_buf *b, size_t rows, size_t *events)
{
    size_t r = 0, ship = 0, rcv = 0, adj = 0, snap = 0;
    unsigned seed = 12345;
    xd_buf_puts(b, header);
    *events = 0;
    while (r < rows) {
        seed = seed * 1103515245u + 12345u;
        unsigned k = (seed >> 16) % 10;
        const char *cust = customers[(seed >> 8) % 4];
        if (r % 1000 == 999) {
            /* a snapshot: one item per row */
            for (int i = 0; i < 50; i++, r++)
                xd_buf_printf(b,
                              "inventory.snapshot,SNAP%zu,%s,2026-11-28T23:59:00Z,,,,,2026-11-28,,"
                              "SKU-%05d,%d,,EA,,,,,%d,\n",
                              snap, cust, i, 100 + i, i % 5);
            snap++;
            (*events)++;
        } else if (k < 5) {
            /* a shipment of 1-5 lines, written as two halves far apart */
            int lines = 1 + (int)(seed % 5);
            for (int i = 1; i <= lines; i++, r++)
                xd_buf_printf(
                    b,
                    "shipment.confirmed,DC%d,%s,2026-11-28T14:%02d:11Z,SHP-%zu,SO-%zu,,,,%d,"
                    "WID-%03u,%d,,EA,L2026-%02d,,%s,1Z999AA1%08zu,%d,%.1f\n",
                    (int)(ship % 3) + 1, cust, (int)(ship % 60), ship, ship, i,
                    (seed >> 4) % 500 + (unsigned)i, i * 3, i, carriers[ship % 4], ship,
                    lines / 2 + 1, 2.5 * lines);
            ship++;
            (*events)++;
        } else if (k < 7) {
            int lines = 1 + (int)(seed % 3);
            for (int i = 1; i <= lines; i++, r++)
                xd_buf_printf(
                    b,
                    "goods.received,DC1,%s,2026-11-28T08:00:00Z,,,RCV-%zu,,,,WID-%03d,%d,,"
                    "CS,,,,,%d,\n",
                    cust, rcv, i, 24 * i, lines);
            rcv++;
            (*events)++;
        } else {
            int delta = (int)(seed % 7) - 3;
            xd_buf_printf(b,
                          "inventory.adjusted,DC1,%s,2026-11-28T10:00:00Z,,,,ADJ-%zu,,,WID-%03zu,,"
                          "%d,EA,,DMG,,,,\n",
                          cust, adj, adj % 500, delta ? delta : 1);
            adj++;
            r++;
            (*events)++;
        }
    }
}

static void cell_cb(void *s, size_t n, void *data)
{
    (void)s;
    (*(size_t *)data) += n;
}

static void row_cb(int c, void *data)
{
    (void)c;
    (*(size_t *)data)++;
}

int main(int argc, char **argv)
{
    size_t rows = argc > 1 ? strtoul(argv[1], NULL, 10) : 200000, nevents, nrows = 0;
    struct xd_buf b;
    xd_buf_init(&b);
    generate(&b, rows, &nevents);
    if (b.oom)
        return 1;
    for (size_t i = 0; i < b.len; i++)
        nrows += b.data[i] == '\n';
    nrows--; /* the header */
    double mb = b.len / 1e6;
    printf("file: %zu rows, %zu events, %.1f MB (%.0f bytes a row)\n", nrows, nevents, mb,
           (double)b.len / nrows);

    /* libcsv alone: the floor */
    double best = 1e9;
    for (int round = 0; round < 5; round++) {
        struct csv_parser p;
        size_t sink = 0;
        csv_init(&p, CSV_STRICT | CSV_STRICT_FINI);
        double t0 = now();
        csv_parse(&p, b.data, b.len, cell_cb, row_cb, &sink);
        csv_fini(&p, cell_cb, row_cb, &sink);
        double t = now() - t0;
        csv_free(&p);
        if (t < best)
            best = t;
    }
    printf("%-28s %8.1f MB/s %12.0f rows/s\n", "libcsv alone", mb / best, nrows / best);

    best = 1e9;
    for (int round = 0; round < 5; round++) {
        cJSON *events = NULL;
        struct xd_verrs errs = {0};
        double t0 = now();
        int rc = xd_csv_read(b.data, b.len, NULL, &events, &errs);
        double t = now() - t0;
        if (rc != 0) {
            fprintf(stderr, "bench_csv: %s (%s: %s)\n", xd_strerror(rc),
                    errs.n ? errs.v[0].path : "", errs.n ? errs.v[0].message : "");
            return 1;
        }
        if ((size_t)cJSON_GetArraySize(events) != nevents) {
            fprintf(stderr, "bench_csv: %d events, expected %zu\n", cJSON_GetArraySize(events),
                    nevents);
            return 1;
        }
        cJSON_Delete(events);
        xd_verrs_dispose(&errs);
        if (t < best)
            best = t;
    }
    printf("%-28s %8.1f MB/s %12.0f rows/s %12.0f events/s\n", "xd_csv_read (with validation)",
           mb / best, nrows / best, nevents / best);
    xd_buf_dispose(&b);
    return 0;
}
