/* Intake counters (intake_metrics.h): one set for the process, atomics. */
#include "ingest/intake_metrics.h"
#include "ingest/intake.h"
#include "store/store.h"

#include <stdatomic.h>
#include <string.h>

const char *const xd_reject_reasons[XD_REJ__COUNT] = {
    [XD_REJ_MALFORMED_JSON] = "malformed-json",
    [XD_REJ_INVALID_EVENT] = "invalid-event",
    [XD_REJ_TOO_LARGE] = "too-large",
    [XD_REJ_UNSUPPORTED_MEDIA_TYPE] = "unsupported-media-type",
    [XD_REJ_UNAUTHORIZED] = "unauthorized",
    [XD_REJ_FORBIDDEN] = "forbidden",
    [XD_REJ_CONFLICT] = "conflict",
    [XD_REJ_STORE_UNAVAILABLE] = "store-unavailable",
    [XD_REJ_OVERLOADED] = "overloaded",
    [XD_REJ_STOPPING] = "stopping",
    [XD_REJ_RATE_LIMITED] = "rate-limited",
    [XD_REJ_OTHER] = "other",
};

static struct {
    atomic_long by_type[XD_EV__COUNT];
    atomic_long duplicates;
    atomic_long by_reason[XD_REJ__COUNT];
} counters;

enum xd_reject_reason xd_reject_reason_of(const char *problem_type)
{
    for (int i = 0; problem_type && i < XD_REJ_OTHER; i++)
        if (strcmp(problem_type, xd_reject_reasons[i]) == 0)
            return (enum xd_reject_reason)i;
    return XD_REJ_OTHER;
}

enum xd_reject_reason xd_intake_reject_reason(const struct xd_intake *in)
{
    if (in->has_offset)
        return XD_REJ_MALFORMED_JSON;
    if (in->status == 413)
        return XD_REJ_TOO_LARGE;
    return XD_REJ_INVALID_EVENT;
}

void xd_intake_count_stored(const struct xd_event *events, const unsigned char *results, size_t n,
                            size_t *fresh, size_t *dups)
{
    size_t f = 0, d = 0;
    for (size_t i = 0; i < n; i++) {
        if (results[i] == XD_APPEND_ACCEPTED) {
            if ((unsigned)events[i].type < XD_EV__COUNT)
                atomic_fetch_add(&counters.by_type[events[i].type], 1);
            f++;
        } else if (results[i] == XD_APPEND_DUPLICATE) {
            d++;
        }
    }
    if (d)
        atomic_fetch_add(&counters.duplicates, (long)d);
    if (fresh)
        *fresh = f;
    if (dups)
        *dups = d;
}

void xd_intake_count_rejected(enum xd_reject_reason reason)
{
    if ((unsigned)reason >= XD_REJ__COUNT)
        reason = XD_REJ_OTHER;
    atomic_fetch_add(&counters.by_reason[reason], 1);
}

void xd_intake_totals(struct xd_intake_totals *out)
{
    memset(out, 0, sizeof *out);
    for (int t = 0; t < XD_EV__COUNT; t++) {
        out->by_type[t] = atomic_load(&counters.by_type[t]);
        out->received += out->by_type[t];
    }
    out->duplicates = atomic_load(&counters.duplicates);
    for (int i = 0; i < XD_REJ__COUNT; i++) {
        out->by_reason[i] = atomic_load(&counters.by_reason[i]);
        out->rejected += out->by_reason[i];
    }
}
