/*
 * W3C Trace Context (https://www.w3.org/TR/trace-context/): the
 * `traceparent` header every delivery carries,
 *
 *     00-<32 hex trace id>-<16 hex span id>-<2 hex flags>
 *
 * An event that arrived with a traceparent keeps its trace id, and each
 * delivery attempt is a new span in it (xd_trace_child); otherwise a new
 * trace starts (xd_trace_new). Pure: randomness is passed in.
 */
#ifndef XD_DELIVER_TRACE_H
#define XD_DELIVER_TRACE_H

#include <stddef.h>
#include <stdint.h>

#define XD_TRACEPARENT_LEN 55 /* "00-" 32 "-" 16 "-" 2 */

struct xd_trace {
    uint8_t trace_id[16]; /* never all zero when valid */
    uint8_t span_id[8];   /* never all zero when valid */
    uint8_t flags;        /* bit 0: sampled */
};

/*
 * Fills t from the given ids (either may be NULL: random from rnd, xd_rand64
 * in production, redrawn until non-zero) with flags 01 (sampled).
 * Returns XD_EINVAL when a given id is all zero.
 */
int xd_trace_make(struct xd_trace *t, const uint8_t trace_id[16], const uint8_t span_id[8],
                  uint64_t (*rnd)(void *), void *rnd_ctx);

/* A new trace: random trace and span ids, sampled. */
void xd_trace_new(struct xd_trace *t, uint64_t (*rnd)(void *), void *rnd_ctx);

/* child = parent's trace id and flags, a new random span id. */
void xd_trace_child(const struct xd_trace *parent, struct xd_trace *child, uint64_t (*rnd)(void *),
                    void *rnd_ctx);

/* Writes the header value, lower-case hex, NUL-terminated; returns XD_TRACEPARENT_LEN. */
int xd_trace_format(const struct xd_trace *t, char out[XD_TRACEPARENT_LEN + 1]);

/*
 * Parses an incoming traceparent value (s, len bytes; surrounding blanks
 * allowed). Version 00 must be exactly 55 characters; a higher version may
 * carry more after a '-' (ignored, as the spec asks); version ff, upper-case
 * hex, an all-zero trace or span id are invalid. Returns 0 or XD_EPARSE.
 */
int xd_trace_parse(const char *s, size_t len, struct xd_trace *t);

/*
 * The trace of one delivery attempt of an event (trace_event.c): a new span
 * in the trace the event arrived with (traceparent as stored, NULL or
 * invalid: none), else in a trace whose id is derived from the event id, so
 * that every delivery of an event shares one trace id either way.
 */
void xd_trace_for_event(const char *event_id, const char *traceparent, struct xd_trace *t);
/* That trace id as 32 lower-case hex digits, for log lines about the event. */
void xd_trace_id_for_event(const char *event_id, const char *traceparent, char out[33]);

#endif
