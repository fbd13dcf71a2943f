/*
 * The dispatcher: one thread that moves deliveries from the store to their
 * targets. For each target it asks the store for deliveries that may go now
 * (due, first in line for their business key), maps them (jq, per-thread
 * compiled programs), sends them over one curl multi handle, classifies the
 * outcome (OK / RETRY / FAIL), and records it back through the store's group
 * commit. Order per key and target is kept by the store's query; the
 * dispatcher only remembers what it has in flight, so its memory is bounded
 * by the in-flight limits whatever the backlog.
 *
 * A delivery stays in flight (and is not fetched again) until its outcome is
 * committed. A crash between a target's 2xx and that commit sends it again
 * after restart, with the same Idempotency-Key: delivery is at least once,
 * and the key lets the target make it exactly once.
 */
#ifndef XD_DISPATCH_H
#define XD_DISPATCH_H

#include <stdint.h>

struct xd_config;
struct xd_routes;
struct xd_store;
struct xd_buf;
struct xd_dispatcher;

int xd_dispatch_start(const struct xd_config *cfg, const struct xd_routes *routes,
                      struct xd_store *store, struct xd_dispatcher **out, struct xd_buf *err);
/*
 * Stops: no new attempts; waits up to drain_ms for attempts in flight, records
 * their outcomes, and joins the thread. NULL is a no-op.
 */
void xd_dispatch_stop(struct xd_dispatcher *d, unsigned drain_ms);
/* New work may be waiting (intake committed, a replay): look soon. Any thread. */
void xd_dispatch_nudge(struct xd_dispatcher *d);

/* Per-target counters since start, for /metrics and the demo. */
/* Upper bounds (seconds) of the delivery latency histogram's buckets. */
#define XD_LATENCY_BUCKETS {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}
#define XD_NLATENCY 13
/* ... and of ship-to-charge (event occurred_at to billing accepted). */
#define XD_S2C_BUCKETS {1, 5, 15, 60, 300, 900, 3600, 14400, 86400, 604800}
#define XD_NS2C 10

struct xd_target_stats {
    const char *target;
    uint64_t ok, retry, fail, filtered; /* attempts by outcome */
    uint64_t dead;                      /* deliveries dead-lettered */
    unsigned inflight;
    int circuit;                        /* enum xd_circuit_state */
    uint64_t latency_us_sum;            /* of attempts that got an answer */
    uint64_t latency_count;             /* attempts that got an answer */
    uint64_t latency_buckets[XD_NLATENCY]; /* per bucket, not cumulative */
};
/* Ship-to-charge: charges the billing target accepted, by how long after the event. */
struct xd_s2c_stats {
    uint64_t count;
    double sum_s;
    uint64_t buckets[XD_NS2C]; /* per bucket, not cumulative */
};
void xd_dispatch_s2c(struct xd_dispatcher *d, struct xd_s2c_stats *out);

/* Calls cb once per target. */
void xd_dispatch_stats(struct xd_dispatcher *d,
                       void (*cb)(void *ctx, const struct xd_target_stats *st), void *ctx);

#endif
