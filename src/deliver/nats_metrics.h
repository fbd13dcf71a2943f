/*
 * NATS counters since the process started, for /metrics (docs/api.md):
 *
 *   per JetStream source: messages fetched, and what became of each
 *   (acked: stored or a duplicate; nak'ed: to come again, the store could
 *   not take it; terminated: refused for good, an exception opened);
 *   per NATS target: publishes by outcome (ok, duplicate — the stream had
 *   it already —, or the error class of xd_nats_classify(), or cancelled).
 *
 * Sources and targets register by name when they are created and count
 * through the handle they get; a source or target created again (a config
 * reload) under the same name keeps counting on the same counters. The
 * counters are process-wide atomics, never freed; the table holds
 * XD_NATS_METRICS_MAX names, and a handle past that is NULL (counting on
 * NULL does nothing).
 */
#ifndef XD_DELIVER_NATS_METRICS_H
#define XD_DELIVER_NATS_METRICS_H

#include <stddef.h>
#include <stdint.h>

#define XD_NATS_METRICS_MAX 64

struct xd_nats_counters;

/* What became of a fetched message. */
enum xd_nats_msg_end { XD_NATS_ACKED, XD_NATS_NAKED, XD_NATS_TERMINATED, XD_NATS_END__COUNT };
extern const char *const xd_nats_msg_end_names[XD_NATS_END__COUNT]; /* "acked", "naked", ... */

/* The publish outcomes counted: "ok", "duplicate", the error classes, "cancelled". */
extern const char *const xd_nats_publish_outcomes[];
extern const size_t xd_nats_npublish_outcomes;

struct xd_nats_counters *xd_nats_metrics_source(const char *name);
struct xd_nats_counters *xd_nats_metrics_target(const char *name);

void xd_nats_count_fetched(struct xd_nats_counters *c, size_t n);
void xd_nats_count_end(struct xd_nats_counters *c, enum xd_nats_msg_end end);
/* outcome: one of xd_nats_publish_outcomes (anything else counts as "nats"). */
void xd_nats_count_publish(struct xd_nats_counters *c, const char *outcome);

/* Every source registered, then every target, in registration order. */
void xd_nats_metrics_sources(void (*cb)(void *ctx, const char *source, uint64_t fetched,
                                        const uint64_t ends[XD_NATS_END__COUNT]),
                             void *ctx);
/* cb gets a target's counts in xd_nats_publish_outcomes order. */
void xd_nats_metrics_targets(void (*cb)(void *ctx, const char *target, const uint64_t *by_outcome),
                             void *ctx);

#endif
