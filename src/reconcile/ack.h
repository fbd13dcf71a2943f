/*
 * Acknowledgments: what a target says it booked. A target may have an `ack`
 * jq program (targets.NAME.ack); the dispatcher hands it each 2xx answer
 * and the program's output (JSON, normally {"reference": ..., "quantity":
 * ...}) is kept with the delivery's outcome, for the ledger and the
 * quantity check of the reconciliation report (docs/reconciliation.md).
 *
 * Threads: the programs are compiled once and then run by one thread (the
 * dispatcher's), as every jq program (transform/transform.h).
 *
 * Ownership: xd_acks_create() returns a heap object (NULL when no target has
 * an ack program: xd_acks_run() then does nothing); xd_acks_destroy() frees
 * it and accepts NULL. cfg must outlive it.
 */
#ifndef XD_RECONCILE_ACK_H
#define XD_RECONCILE_ACK_H

#include <stddef.h>

struct xd_buf;
struct xd_config;
struct xd_acks;

/* 0 (and *out, maybe NULL), XD_ENOMEM, or XD_EPARSE with "targets.NAME.ack: ..." in err. */
int xd_acks_create(const struct xd_config *cfg, struct xd_acks **out, struct xd_buf *err);
void xd_acks_destroy(struct xd_acks *a);

/*
 * Runs target's ack program on the answer body (JSON text, len bytes) and
 * puts its output, compact JSON, in out (reset first). A body that is not
 * JSON, or a program that fails, gives {"error": "MESSAGE"}: the delivery
 * stays done, and the ledger shows why its acknowledgment is missing. A
 * target without a program leaves out empty.
 */
void xd_acks_run(struct xd_acks *a, const char *target, const char *body, size_t len,
                 struct xd_buf *out);

#endif
