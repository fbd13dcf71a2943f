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
struct xd_target_stats {
    const char *target;
    uint64_t ok, retry, fail, filtered; /* attempts by outcome */
    uint64_t dead;                      /* deliveries dead-lettered */
    unsigned inflight;
    int circuit;                        /* enum xd_circuit_state */
    uint64_t latency_us_sum;            /* of attempts that got an answer */
};
/* Calls cb once per target. */
void xd_dispatch_stats(struct xd_dispatcher *d,
                       void (*cb)(void *ctx, const struct xd_target_stats *st), void *ctx);

#endif
