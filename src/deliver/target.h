/*
 * An HTTP target ready to deliver to: the configuration's struct xd_target
 * turned, once, into what every request needs: the URL, the timeout and the
 * constant header lines (Content-Type: application/json, Authorization:
 * Bearer <token from bearer_env>, the configured headers), plus the target's
 * circuit breaker. xd_http_target_submit() adds the per-delivery lines
 * (Idempotency-Key, traceparent) on the stack and hands the request to the
 * client, which copies it: no allocation per delivery.
 *
 * The Idempotency-Key is derived, never random: xd_idempotency_key() hashes
 * the delivery's durable identity (event id, route, step, target), so every
 * retry, every replay and every attempt after a crash carries the same key.
 *
 * Ownership: xd_http_target_init() on caller storage, xd_http_target_dispose()
 * frees (and wipes) the header lines. cfg is borrowed and must outlive the
 * target. The bearer token is read from the environment at init and never
 * logged.
 */
#ifndef XD_DELIVER_TARGET_H
#define XD_DELIVER_TARGET_H

#include <stddef.h>

#include "deliver/circuit.h"
#include "deliver/http.h"
#include "deliver/trace.h"

struct xd_buf;
struct xd_oauth;
struct xd_target;

#define XD_IDEM_KEY_LEN 36 /* UUID-shaped: 8-4-4-4-12 hex */

struct xd_http_target {
    const struct xd_target *cfg; /* borrowed */
    char **lines;                /* constant "Name: value" header lines, owned */
    size_t nlines;
    struct xd_circuit circuit; /* default options (5 failures, 5 s .. 60 s) */
    struct xd_oauth *oauth;    /* auth: oauth2: the token source (deliver/oauth.h), else NULL */
};

/*
 * Prepares t from cfg (type http). Returns 0, XD_ENOMEM, or XD_ECONFIG with
 * one line in err (may be NULL) when cfg has no URL or bearer_env names an
 * unset or empty variable: "targets.erp.bearer_env: ERP_TOKEN is not set".
 */
int xd_http_target_init(struct xd_http_target *t, const struct xd_target *cfg, struct xd_buf *err);
void xd_http_target_dispose(struct xd_http_target *t);

/*
 * Sends body to the target with the constant headers, `Idempotency-Key:
 * idem_key`, `traceparent` from trace and, with OAuth2, the current token;
 * the certificate is checked as tls.ca_file and tls.verify say. Returns
 * what xd_http_submit() returns (XD_EINVAL also for an idem_key with
 * control characters), or XD_EAUTH while the first OAuth2 token (or the
 * one after a 401) is being fetched: nothing was sent, try again shortly. The
 * circuit breaker is not consulted here: the caller asks
 * xd_circuit_allow(&t->circuit, now) first and records the outcome.
 */
int xd_http_target_submit(struct xd_http_client *cl, const struct xd_http_target *t,
                          const void *body, size_t len, const char *idem_key,
                          const struct xd_trace *trace, xd_http_done_fn *done, void *user);

/*
 * 0 while a target with OAuth2 has no usable token (the first, or the next
 * after a 401, is being fetched): fetching deliveries for it now would only
 * put them back. 1 otherwise.
 */
int xd_http_target_ready(const struct xd_http_target *t);

/*
 * The answer as the dispatcher should judge it. A 401 from a target with
 * OAuth2 means its token expired early or was revoked: the token is
 * dropped (a new one is fetched) and the attempt counts as RETRY, so the
 * next attempt goes with a fresh token; *tmp holds the changed copy.
 * Otherwise res itself.
 */
const struct xd_http_result *xd_http_target_result(const struct xd_http_target *t,
                                                   const struct xd_http_result *res,
                                                   struct xd_http_result *tmp);

/*
 * The Idempotency-Key of one delivery: SHA-256 over the length-prefixed
 * fields, its first 16 bytes shaped as a UUID (version 8, RFC 9562), lower
 * case. Same inputs, same key, in every process. Returns 0 or XD_EINVAL
 * (a NULL string).
 */
int xd_idempotency_key(char out[XD_IDEM_KEY_LEN + 1], const char *event_id, const char *route,
                       unsigned step, const char *target);

#endif
