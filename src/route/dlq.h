/*
 * The dead-letter queue's operations, shared by the HTTP API and
 * `crossdock dlq`: rendering deliveries and their attempts as JSON, and
 * replaying dead deliveries (one by one or by filter). A replay keeps the
 * delivery's Idempotency-Key, starts its attempt count again, and leaves a
 * "replayed" entry in its timeline; it goes through the store's group commit.
 */
#ifndef XD_DLQ_H
#define XD_DLQ_H

#include "store/store.h"

#include <stddef.h>
#include <stdint.h>

struct xd_buf;

/* A delivery as a JSON object (full: with the mapped payload kept for a dead letter). */
void xd_dlq_json(struct xd_buf *o, const struct xd_stored_dlv *d, int full);
/* One attempt as a JSON object ("kind": "attempt", delivery_id, at, outcome, target, ...). */
void xd_dlq_json_attempt(struct xd_buf *o, const struct xd_stored_attempt *a);
/* The attempts of an event (or of one of its deliveries: dlv_id != 0), comma-separated objects. */
int xd_dlq_json_attempts(struct xd_store *s, struct xd_buf *o, int64_t event_seq, int64_t dlv_id);

/* Replays the dead ones among ids; *applied = how many were dead (and now pending). */
int xd_dlq_replay_ids(struct xd_store *s, const int64_t *ids, size_t n, const char *who,
                      size_t *applied);
/* Replays every dead delivery matching f (f->state is forced to dead). */
int xd_dlq_replay_filter(struct xd_store *s, struct xd_dlv_filter f, const char *who,
                         size_t *applied);

#endif
