/*
 * A NATS target (`type: nats`, docs/nats.md): deliveries published to a
 * JetStream subject and acknowledged by the stream that captures it.
 *
 * Each publish carries `Nats-Msg-Id: <the delivery's idempotency key>` (the
 * same key an HTTP target sends as Idempotency-Key: stable across retries,
 * replays and restarts), so a retry after a lost acknowledgment is dropped by
 * the stream's duplicate window instead of stored twice, and a
 * `traceparent` header. A few worker threads per target publish
 * synchronously (js_PublishMsg with MaxWait = the target's timeout_ms); the
 * dispatcher's per-key ordering holds because it never has two deliveries of
 * one key in flight.
 *
 * Completions are handed back to the thread that owns the dispatcher: the
 * workers queue them and call wake(); that thread calls
 * xd_nats_target_poll(), which runs each done callback with a struct
 * xd_http_result made from the NATS outcome (status 0; outcome, error_class
 * and error from xd_nats_classify()), exactly like an HTTP completion.
 *
 * Ownership: xd_nats_target_create() returns a heap object that borrows cfg;
 * xd_nats_target_destroy() stops the workers (a publish in progress
 * finishes), calls the done callback of everything not yet reported (queued
 * ones as cancelled, RETRY), closes the connection and frees it. NULL is a
 * no-op.
 */
#ifndef XD_DELIVER_NATS_TARGET_H
#define XD_DELIVER_NATS_TARGET_H

#include <stddef.h>

#include "deliver/http.h"
#include "deliver/outcome.h"

struct xd_buf;
struct xd_target;
struct xd_trace;
struct xd_nats_target;

/*
 * The verdict on one publish, from the cnats status and the JetStream error
 * code (0 when none), as xd_outcome_classify() is for HTTP: OK; RETRY for
 * timeouts, no responders (no stream captures the subject, or its leader is
 * being elected), a lost connection and JetStream errors that pass; FAIL
 * for what no retry can fix (a message over the server's or the stream's
 * size limit, an invalid subject). *cls gets a short class name for metrics
 * and filters ("ok", "timeout", "no_responders", "connect", "too_large",
 * "request", "forbidden", "js_error", "nats").
 */
enum xd_outcome xd_nats_classify(int nats_status, int js_err, const char **cls);

typedef void xd_nats_wake_fn(void *arg);

/* Connects (in the background) and starts the workers. Returns 0, XD_ENOMEM or XD_ECONFIG. */
int xd_nats_target_create(const struct xd_target *cfg, xd_nats_wake_fn *wake, void *wake_arg,
                          struct xd_nats_target **out, struct xd_buf *err);
void xd_nats_target_destroy(struct xd_nats_target *t);

/*
 * Queues body for publishing with Nats-Msg-Id msg_id (copied). done(user,
 * result) is called exactly once, from xd_nats_target_poll() or _destroy().
 * Returns 0, XD_EINVAL (msg_id empty, too long or with control characters),
 * XD_ENOMEM.
 */
int xd_nats_target_submit(struct xd_nats_target *t, const void *body, size_t len,
                          const char *msg_id, const struct xd_trace *trace, xd_http_done_fn *done,
                          void *user);

/* Runs the done callbacks of the publishes that ended. Returns how many. */
size_t xd_nats_target_poll(struct xd_nats_target *t);

#endif
