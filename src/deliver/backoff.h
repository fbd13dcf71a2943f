/*
 * When to try a delivery again: capped exponential backoff with full jitter
 * (as Fluent Bit's backoff_full_jitter and the AWS "Exponential Backoff And
 * Jitter" note), and the target's own Retry-After as a floor. Pure
 * functions: the random source and the clock are passed in, so tests pin
 * them.
 *
 * For the attempt numbered `attempt` (1 = the first attempt, which just
 * failed), the wait is uniform in [0, cap] with
 *
 *     cap = min(max_backoff_ms, initial_backoff_ms * 2^(attempt-1))
 *
 * computed without overflow for any attempt. With a Retry-After the wait is
 * max(jittered, min(retry_after, max_backoff_ms)).
 */
#ifndef XD_DELIVER_BACKOFF_H
#define XD_DELIVER_BACKOFF_H

#include <stdint.h>

#include "core/config.h" /* struct xd_retry */

/* The ceiling for attempt (attempt 0 counts as 1). */
uint64_t xd_backoff_cap_ms(const struct xd_retry *r, unsigned attempt);

/*
 * A wait in [0, xd_backoff_cap_ms(r, attempt)] drawn with rnd(rnd_ctx)
 * (xd_rand64 from rand.h in production). The draw is rnd() modulo cap+1:
 * cap < 2^33, so the bias is below 2^-31. rnd may be NULL: then the cap
 * itself (no jitter).
 */
uint64_t xd_backoff_ms(const struct xd_retry *r, unsigned attempt, uint64_t (*rnd)(void *),
                       void *rnd_ctx);

/*
 * Parses a Retry-After value (RFC 9110 10.2.3): delta-seconds ("120") or
 * an HTTP-date in any of the three forms ("Sun, 06 Nov 1994 08:49:37 GMT",
 * "Sunday, 06-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994"), with
 * surrounding blanks allowed. now_s is the current time (Unix seconds). On
 * success *delay_ms is the wait from now (0 for a date in the past,
 * saturating at UINT64_MAX) and 0 is returned; XD_EPARSE otherwise.
 */
int xd_retry_after_parse(const char *value, int64_t now_s, uint64_t *delay_ms);

/* max(backoff_ms, min(retry_after_ms, r->max_backoff_ms)). */
uint64_t xd_backoff_floor(const struct xd_retry *r, uint64_t backoff_ms, uint64_t retry_after_ms);

#endif
