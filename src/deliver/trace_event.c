/*
 * The trace an event's deliveries belong to (see trace.h): the one its
 * producer gave in a traceparent on intake (stored with the event), else one
 * derived from the event id (SHA-256, first 16 bytes), so that retries,
 * replays and every step of every route of one event share one trace id
 * even across restarts. Each attempt is a new span in it.
 */
#include "deliver/trace.h"
#include "core/sha256.h"
#include "deliver/rand.h"

#include <string.h>

static void event_root(const char *event_id, const char *traceparent, struct xd_trace *root)
{
    if (traceparent && xd_trace_parse(traceparent, strlen(traceparent), root) == 0)
        return;
    unsigned char h[XD_SHA256_LEN];
    if (xd_sha256(event_id, strlen(event_id), h) < 0 ||
        xd_trace_make(root, h, NULL, xd_rand64, NULL) < 0)
        xd_trace_new(root, xd_rand64, NULL);
}

void xd_trace_for_event(const char *event_id, const char *traceparent, struct xd_trace *t)
{
    struct xd_trace root;
    event_root(event_id, traceparent, &root);
    xd_trace_child(&root, t, xd_rand64, NULL);
}

void xd_trace_id_for_event(const char *event_id, const char *traceparent, char out[33])
{
    struct xd_trace root;
    char tp[XD_TRACEPARENT_LEN + 1];
    event_root(event_id, traceparent, &root);
    xd_trace_format(&root, tp);
    memcpy(out, tp + 3, 32);
    out[32] = '\0';
}
