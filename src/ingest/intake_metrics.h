/*
 * Intake counters, since the process started: events accepted (by type),
 * duplicates acknowledged, and refusals (by reason). Every way events
 * arrive counts through the functions here — the HTTP API (POST /v1/events,
 * POST /v1/files), the watched inbox folders and the NATS JetStream sources
 * — so /metrics and the dashboard see them all alike.
 *
 * A refusal is one unit of intake turned away whole: an HTTP request, an
 * inbox file, a NATS message. Its reason is the problem type an HTTP client
 * would get for the same fault (xd_reject_reasons[]).
 *
 * The counters are process-wide atomics: safe from any thread, never reset.
 */
#ifndef XD_INTAKE_METRICS_H
#define XD_INTAKE_METRICS_H

#include "ingest/event.h"

#include <stddef.h>

struct xd_intake;

enum xd_reject_reason {
    XD_REJ_MALFORMED_JSON,
    XD_REJ_INVALID_EVENT,
    XD_REJ_TOO_LARGE,
    XD_REJ_UNSUPPORTED_MEDIA_TYPE,
    XD_REJ_UNAUTHORIZED,
    XD_REJ_FORBIDDEN,
    XD_REJ_CONFLICT,
    XD_REJ_STORE_UNAVAILABLE,
    XD_REJ_OVERLOADED,
    XD_REJ_STOPPING,
    XD_REJ_RATE_LIMITED,
    XD_REJ_OTHER,
    XD_REJ__COUNT
};
/* The reason labels: "malformed-json", "invalid-event", ... "other" (the problem types). */
extern const char *const xd_reject_reasons[XD_REJ__COUNT];
/* The reason of a problem type; XD_REJ_OTHER when it is none of them (or NULL). */
enum xd_reject_reason xd_reject_reason_of(const char *problem_type);
/* Why an intake whose xd_intake_add_*() failed is refused: malformed JSON, too large, invalid. */
enum xd_reject_reason xd_intake_reject_reason(const struct xd_intake *in);

/*
 * Counts what the store answered for n events committed together (results:
 * enum xd_append_result per event): the accepted by type, the duplicates.
 * *fresh and *dups (may be NULL) get this call's counts.
 */
void xd_intake_count_stored(const struct xd_event *events, const unsigned char *results, size_t n,
                            size_t *fresh, size_t *dups);
/* Counts one refused request, file or message. */
void xd_intake_count_rejected(enum xd_reject_reason reason);

/* What the counters hold now. */
struct xd_intake_totals {
    long received; /* accepted, every type */
    long by_type[XD_EV__COUNT];
    long duplicates;
    long rejected; /* every reason */
    long by_reason[XD_REJ__COUNT];
};
void xd_intake_totals(struct xd_intake_totals *out);

#endif
