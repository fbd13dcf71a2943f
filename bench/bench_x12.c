/*
 * X12 reader throughput, one core: xd_x12_read() over a buffer of 945
 * shipment confirmations (each ~400 bytes, 3 LX/W12 lines, N1 parties,
 * carrier, weight in LB), all sets in one group of one interchange, then
 * the same documents one interchange each with a 997 written for each.
 * Prints MB/s and events/s, the best of 5 rounds; every event is a
 * validated canonical event (the reader checks each before returning it).
 * Not part of the CMake build; build and run it by hand:
 *
 *   gcc -std=c17 -O2 -D_GNU_SOURCE -Isrc src/core/err.c src/core/buf.c \
 *       src/formats/json.c src/formats/x12*.c src/ingest/event*.c bench/bench_x12.c \
 *       -lcjson -lcrypto -lm -o /tmp/bench_x12 && /tmp/bench_x12 [DOCUMENTS]
 */
#include "core/buf.h"
#include "core/err.h"
#include "formats/convert.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ISA_FMT                                                                                    \
    "ISA*00*          *00*          *ZZ*WMS1           *ZZ*CROSSDOCK      *261128*1409*U*00401*"   \
    "%09d*0*P*>~\n"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* One 945 set, ST to SE, control number n. */
static void put_set(struct xd_buf *b, int n)
{
    xd_buf_printf(b,
                  "ST*945*%04d~\n"
                  "W06*F*SO-%06d*20261128*SHP-%06d**PO-4471*1Z999AA1%010d~\n"
                  "N1*DE*ACME CORPORATION*9*ACME~\n"
                  "N1*SF*DALLAS DC*9*DC1~\n"
                  "N1*ST*GLOBEX RETAIL #12~\n"
                  "N3*123 CUSTOMER WAY~\n"
                  "N4*ANYTOWN*KS*66216~\n"
                  "W27*M*UPSN*UPS GROUND*PP~\n"
                  "LX*1~\n"
                  "W12*CC*12*12*0*EA**VN*WID-100*LOT-A1~\n"
                  "N9*LV*00012345678901234567~\n"
                  "LX*2~\n"
                  "W12*CC*3*3*0*CS**VN*WID-200~\n"
                  "LX*3~\n"
                  "W12*CC*40*40*0*EA**VN*GAD-310*LOT-9~\n"
                  "W03*55*40.5*LB~\n"
                  "SE*17*%04d~\n",
                  n % 10000, n, n, n, n % 10000);
}

/* All documents as sets of one group (per_ic 0), or one interchange each (per_ic 1). */
static void build(struct xd_buf *b, int docs, int per_ic)
{
    if (!per_ic) {
        xd_buf_printf(b, ISA_FMT, 1);
        xd_buf_puts(b, "GS*SW*WMS1*CROSSDOCK*20261128*1409*1*X*004010~\n");
        for (int i = 0; i < docs; i++)
            put_set(b, i + 1);
        xd_buf_printf(b, "GE*%d*1~\nIEA*1*000000001~\n", docs);
        return;
    }
    for (int i = 0; i < docs; i++) {
        xd_buf_printf(b, ISA_FMT, i + 1);
        xd_buf_printf(b, "GS*SW*WMS1*CROSSDOCK*20261128*1409*%d*X*004010~\n", i + 1);
        put_set(b, i + 1);
        xd_buf_printf(b, "GE*1*%d~\nIEA*1*%09d~\n", i + 1, i + 1);
    }
}

static void run(const char *what, const struct xd_buf *in, int docs, int with_ack)
{
    double best = 1e9;
    for (int round = 0; round < 5; round++) {
        cJSON *evs = NULL;
        struct xd_verrs errs = {0};
        struct xd_buf ack;
        xd_buf_init(&ack);
        double t0 = now();
        int rc = xd_x12_read(in->data, in->len, NULL, &evs, &errs, with_ack ? &ack : NULL);
        double t = now() - t0;
        if (rc != 0 || cJSON_GetArraySize(evs) != docs) {
            fprintf(stderr, "%s: rc %s, %d events, %s\n", what, xd_errname(rc),
                    cJSON_GetArraySize(evs), errs.n ? errs.v[0].message : "");
            exit(1);
        }
        cJSON_Delete(evs);
        xd_verrs_dispose(&errs);
        xd_buf_dispose(&ack);
        if (t < best)
            best = t;
    }
    printf("%-34s %8.1f MB/s %10.0f events/s  (%d documents, %.1f MB, %.1f ms)\n", what,
           in->len / best / 1e6, docs / best, docs, in->len / 1e6, best * 1e3);
}

int main(int argc, char **argv)
{
    int docs = argc > 1 ? atoi(argv[1]) : 20000;
    struct xd_buf one, many;
    xd_buf_init(&one);
    xd_buf_init(&many);
    build(&one, docs, 0);
    build(&many, docs, 1);
    run("945, one interchange", &one, docs, 0);
    run("945, one interchange, 997", &one, docs, 1);
    run("945, interchange each, 997 each", &many, docs, 1);
    xd_buf_dispose(&one);
    xd_buf_dispose(&many);
    return 0;
}
