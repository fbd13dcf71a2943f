/*
 * Store intake benchmark: events/s through xd_store_append() into a fresh
 * SQLite file, for batches (many events per request) and for single-event
 * requests from many concurrent submitters, which is where group commit
 * earns its keep (one fsync per group, not per request).
 *
 *   bench_store DIR THREADS EVENTS_PER_REQUEST REQUESTS_PER_THREAD [full|normal]
 *
 * Prints one JSON line: events/s, requests/s, transactions and mean group
 * size. Bodies are ~400 bytes, like a normalised shipment.confirmed. The
 * hash is a stand-in (the store only compares it). Build with the rest of
 * the tree, e.g. from the top folder:
 *   cc -O2 -std=c17 -D_GNU_SOURCE -Isrc src/core/err.c src/core/buf.c src/core/log.c
 *      src/ingest/event_types.c src/store/store.c src/store/sqlite.c
 *      bench/bench_store.c -lsqlite3 -lpthread -o bench_store
 */
#include "core/config.h"
#include "core/err.h"
#include "ingest/event.h"
#include "store/store.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct ev_store {
    char id[48];
    char bkey[48];
    char body[512];
};

struct job {
    struct xd_store *s;
    int thread, per_req, nreq;
    int errors;
};

static void fill(struct ev_store *m, struct xd_event *e, int thread, long i)
{
    snprintf(m->id, sizeof m->id, "bench-%d-%ld", thread, i);
    snprintf(m->bkey, sizeof m->bkey, "shipment:SHP-%d-%ld", thread, i / 3);
    int n = snprintf(m->body, sizeof m->body,
                     "{\"event_id\":\"%s\",\"type\":\"shipment.confirmed\","
                     "\"occurred_at\":\"2026-11-28T14:03:11Z\",\"source\":\"wms-dc1\","
                     "\"schema_version\":1,\"data\":{\"warehouse\":\"DC1\",\"shipment_id\":"
                     "\"SHP-%d-%ld\",\"order_id\":\"SO-%ld\",\"customer\":\"ACME\",\"carrier\":"
                     "{\"code\":\"UPSN\",\"service\":\"GND\",\"tracking\":\"1Z999AA10123456784\"},"
                     "\"lines\":[{\"line_no\":1,\"sku\":\"SKU-RED-S\",\"qty\":12,\"uom\":\"EA\"},"
                     "{\"line_no\":2,\"sku\":\"SKU-BLU-M\",\"qty\":3,\"uom\":\"EA\"}]}}",
                     m->id, thread, i / 3, i);
    memset(e, 0, sizeof *e);
    e->type = XD_EV_SHIPMENT_CONFIRMED;
    e->event_id = m->id;
    e->bkey = m->bkey;
    e->occurred_at = "2026-11-28T14:03:11Z";
    e->source = "wms-dc1";
    e->body = m->body;
    e->body_len = (size_t)n;
    for (int k = 0; k < 32; k++)
        e->hash[k] = (unsigned char)(m->id[k % 8] + k + i);
}

static void *run(void *arg)
{
    struct job *j = arg;
    struct ev_store *m = calloc((size_t)j->per_req, sizeof *m);
    struct xd_event *ev = calloc((size_t)j->per_req, sizeof *ev);
    unsigned char *res = calloc((size_t)j->per_req, 1);
    if (!m || !ev || !res) {
        j->errors = -1;
        goto out;
    }
    long seq = 0;
    for (int r = 0; r < j->nreq; r++) {
        for (int k = 0; k < j->per_req; k++)
            fill(&m[k], &ev[k], j->thread, seq++);
        struct xd_append a = {.events = ev, .n = (size_t)j->per_req, .results = res};
        if (xd_store_append(j->s, &a) != 0)
            j->errors++;
    }
out:
    free(res);
    free(ev);
    free(m);
    return NULL;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr,
                "usage: %s DIR THREADS EVENTS_PER_REQUEST REQUESTS_PER_THREAD [full|normal]\n",
                argv[0]);
        return 2;
    }
    int threads = atoi(argv[2]), per_req = atoi(argv[3]), nreq = atoi(argv[4]);
    if (threads < 1 || threads > 1024 || per_req < 1 || nreq < 1)
        return 2;
    char path[4096];
    snprintf(path, sizeof path, "%s/bench-%d.db", argv[1], (int)getpid());
    struct xd_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.store.driver = "sqlite";
    cfg.store.path = path;
    cfg.store.synchronous = argc > 5 ? argv[5] : "full";
    cfg.store.busy_timeout_ms = 5000;

    struct xd_store *s;
    int rc = xd_store_open(&cfg, &s, NULL);
    if (rc < 0) {
        fprintf(stderr, "open %s: %s\n", path, xd_strerror(rc));
        return 1;
    }
    pthread_t *th = calloc((size_t)threads, sizeof *th);
    struct job *jobs = calloc((size_t)threads, sizeof *jobs);
    if (!th || !jobs)
        return 1;
    double t0 = now_s();
    for (int i = 0; i < threads; i++) {
        jobs[i] = (struct job){.s = s, .thread = i, .per_req = per_req, .nreq = nreq};
        pthread_create(&th[i], NULL, run, &jobs[i]);
    }
    int errors = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(th[i], NULL);
        errors += jobs[i].errors;
    }
    double dt = now_s() - t0;
    struct xd_store_stats st;
    xd_store_stats(s, &st);
    xd_store_close(s);
    char side[4200];
    unlink(path);
    snprintf(side, sizeof side, "%s-wal", path);
    unlink(side);
    snprintf(side, sizeof side, "%s-shm", path);
    unlink(side);

    double events = (double)threads * nreq * per_req;
    printf("{\"threads\":%d,\"events_per_request\":%d,\"synchronous\":\"%s\",\"events\":%.0f,"
           "\"seconds\":%.3f,\"events_per_s\":%.0f,\"requests_per_s\":%.0f,\"transactions\":%llu,"
           "\"events_per_transaction\":%.1f,\"errors\":%d}\n",
           threads, per_req, cfg.store.synchronous, events, dt, events / dt,
           (double)threads * nreq / dt, (unsigned long long)st.groups,
           st.groups ? (double)st.events / (double)st.groups : 0.0, errors);
    free(jobs);
    free(th);
    return errors ? 1 : 0;
}
