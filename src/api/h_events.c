/*
 * POST /v1/events, POST /v1/files, /healthz and /readyz (GET /v1/events/{id}: h_timeline.c).
 *
 * Intake answers 202 only after the store's group commit made the events
 * durable: the handler validates and prepares the events on the HTTP worker
 * thread, suspends the connection, and hands the request to the store's
 * committer; the committer's callback resumes the connection and the answer
 * is built back on a worker thread.
 */
#include "api/http.h"
#include "core/err.h"
#include "core/clock.h"
#include "core/log.h"
#include "deliver/trace.h"
#include "route/dispatch.h"
#include "route/dlq.h"
#include "ingest/files.h"
#include "ingest/intake_metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void on_store_done(struct xd_append *a, void *arg)
{
    struct xd_req *r = arg;
    if (a->rc == 0 && r->srv->cfg->nroutes > 0)
        xd_dispatch_nudge(r->srv->dispatcher); /* new deliveries may be waiting */
    atomic_store(&r->store_done, 1);
    MHD_resume_connection(r->conn);
}

static void intake_init(struct xd_req *r, const char *default_source)
{
    const struct xd_config *cfg = r->srv->cfg;
    struct xd_intake_limits lim = {
        .max_batch = cfg->server.max_batch,
        .max_depth = cfg->server.max_depth,
        .max_string = cfg->server.max_string,
    };
    xd_intake_init(&r->intake, &lim, default_source);
    r->intake_used = 1;
}

static void intake_submit(struct xd_req *r, int rc);
static void add_ack(struct xd_req *r);

void xd_h_events_post(struct xd_req *r)
{
    intake_init(r, r->key ? r->key->id : "anonymous");
    int rc = xd_intake_add_body(&r->intake, r->body.data ? r->body.data : "", r->body.len);
    intake_submit(r, rc);
}

/*
 * POST /v1/files: a CSV or X12 document (or JSON) by Content-Type. Events
 * from files get the source "csv" / "x12", so a re-sent file is recognised
 * as duplicates whoever sends it. An X12 document's 997 is in the answer.
 */
void xd_h_files_post(struct xd_req *r)
{
    const char *ct = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
                                                 MHD_HTTP_HEADER_CONTENT_TYPE);
    int fmt = xd_format_from_content_type(ct);
    intake_init(r, fmt == XD_FMT_JSON || fmt == XD_FMT_JSONL ? (r->key ? r->key->id : "anonymous")
                                                             : xd_format_name(fmt));
    struct xd_convert_opts opts = {.partners = r->srv->cfg->partners,
                                   .npartners = r->srv->cfg->npartners};
    int rc = xd_intake_add_file(&r->intake, fmt, r->body.data ? r->body.data : "", r->body.len,
                                &opts, fmt == XD_FMT_X12 ? &r->ack : NULL);
    intake_submit(r, rc);
}

/*
 * A W3C traceparent on the request applies to every event in it: it is
 * stored with them and their deliveries continue its trace. An invalid one
 * is ignored, as the Trace Context spec asks (the trace is then derived from
 * each event id).
 */
static void adopt_traceparent(struct xd_req *r)
{
    const char *h = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "traceparent");
    struct xd_trace t;
    if (!h || xd_trace_parse(h, strlen(h), &t) < 0)
        return;
    xd_trace_format(&t, r->traceparent);
    for (size_t i = 0; i < r->intake.n; i++)
        r->intake.events[i].traceparent = r->traceparent;
}

/* Answers an intake that failed, or hands it to the store's group commit. */
static void intake_submit(struct xd_req *r, int rc)
{
    if (rc == XD_ENOMEM) {
        snprintf(r->retry_after, sizeof r->retry_after, "1");
        xd_http_problem(r, 503, "overloaded", "Service Unavailable", "out of memory", NULL);
        return;
    }
    if (rc < 0) {
        struct xd_intake *in = &r->intake;
        char detail[160];
        if (in->has_offset) {
            snprintf(detail, sizeof detail, "malformed JSON at byte %zu", in->offset);
            xd_http_problem(r, 400, "malformed-json", "Malformed JSON", detail, &in->errs);
        } else if (in->status == 413) {
            xd_http_problem(r, 413, "too-large", "Payload Too Large",
                            in->errs.n ? in->errs.v[0].message : NULL, &in->errs);
        } else {
            snprintf(detail, sizeof detail, "%zu error%s; nothing was stored", in->errs.n,
                     in->errs.n == 1 ? "" : "s");
            xd_http_problem(r, 400, "invalid-event", "Invalid event", detail, &in->errs);
            add_ack(r);
        }
        return;
    }

    adopt_traceparent(r);
    r->results = calloc(r->intake.n, 1);
    if (!r->results) {
        snprintf(r->retry_after, sizeof r->retry_after, "1");
        xd_http_problem(r, 503, "overloaded", "Service Unavailable", "out of memory", NULL);
        return;
    }
    r->append.events = r->intake.events;
    r->append.n = r->intake.n;
    r->append.results = r->results;
    r->append.done = on_store_done;
    r->append.arg = r;
    r->suspended = 1;
    MHD_suspend_connection(r->conn);
    rc = xd_store_submit(r->srv->store, &r->append);
    if (rc < 0) {
        r->append.rc = rc;
        on_store_done(&r->append, r);
    }
}

/* An X12 document's 997, added to a problem answer too (the partner needs it either way). */
static void add_ack(struct xd_req *r)
{
    if (!r->ack.len || r->out.len < 2)
        return;
    r->out.len--; /* reopen the object */
    xd_buf_puts(&r->out, ",\"ack\":");
    xd_buf_json_strn(&r->out, r->ack.data, r->ack.len);
    xd_buf_putc(&r->out, '}');
}

/* Builds {"accepted":[...],"duplicates":[...]}. */
static void accepted_body(struct xd_req *r)
{
    struct xd_buf *o = &r->out;
    long fresh = 0, dup = 0;
    xd_buf_reset(o);
    xd_buf_puts(o, "{\"accepted\":[");
    for (size_t i = 0; i < r->append.n; i++) {
        if (r->results[i] != XD_APPEND_ACCEPTED)
            continue;
        if (fresh++)
            xd_buf_putc(o, ',');
        xd_buf_json_str(o, r->intake.events[i].event_id);
        if (xd_log_enabled(XD_LOG_DEBUG)) {
            const struct xd_event *ev = &r->intake.events[i];
            char tid[33];
            xd_trace_id_for_event(ev->event_id, ev->traceparent, tid);
            xd_log_ev(XD_LOG_DEBUG, ev->event_id, tid, "intake: %s accepted from %s",
                      xd_event_type_name(ev->type), ev->source ? ev->source : "?");
        }
    }
    xd_buf_puts(o, "],\"duplicates\":[");
    for (size_t i = 0; i < r->append.n; i++) {
        if (r->results[i] != XD_APPEND_DUPLICATE)
            continue;
        if (dup++)
            xd_buf_putc(o, ',');
        xd_buf_json_str(o, r->intake.events[i].event_id);
    }
    xd_buf_putc(o, ']');
    if (r->ack.len) {
        xd_buf_puts(o, ",\"ack\":");
        xd_buf_json_strn(o, r->ack.data, r->ack.len);
    }
    xd_buf_putc(o, '}');
    xd_intake_count_stored(r->intake.events, r->results, r->append.n, NULL, NULL);
}

void xd_h_events_post_resume(struct xd_req *r)
{
    int rc = r->append.rc;
    if (rc == 0) {
        accepted_body(r);
        if (r->out.oom) {
            /* Stored, but we cannot say so: a retry will be answered as duplicates. */
            snprintf(r->retry_after, sizeof r->retry_after, "1");
            xd_http_problem(r, 503, "overloaded", "Service Unavailable", "out of memory", NULL);
            return;
        }
        xd_http_reply_json(r, 202);
        return;
    }
    if (rc == XD_ECONFLICT) {
        struct xd_verrs errs = {0};
        /* Name the event as intake's schema errors do: "events[i]", "[i]" or none. */
        const cJSON *root = r->intake.roots[0];
        const char *prefix = cJSON_IsArray(root) ? ""
                             : (cJSON_IsObject(root) &&
                                !cJSON_GetObjectItemCaseSensitive(root, "event_id") &&
                                !cJSON_GetObjectItemCaseSensitive(root, "type") &&
                                cJSON_GetObjectItemCaseSensitive(root, "events"))
                                 ? "events"
                                 : NULL;
        char path[64];
        for (size_t i = 0; i < r->append.n; i++) {
            if (r->results[i] != XD_APPEND_CONFLICT)
                continue;
            if (prefix)
                snprintf(path, sizeof path, "%s[%zu].event_id", prefix, i);
            else
                snprintf(path, sizeof path, "event_id");
            xd_verrs_add(&errs, path, "'%s' was accepted before with a different body",
                         r->intake.events[i].event_id);
        }
        xd_http_problem(r, 409, "conflict", "Conflict",
                        "an event_id was seen before with a different body; nothing was stored",
                        &errs);
        xd_verrs_dispose(&errs);
        return;
    }
    const char *detail;
    switch (rc) {
    case XD_EFULL:
        detail = "the store is full; nothing was stored";
        break;
    case XD_EREADONLY:
        detail = "the store is not writable; nothing was stored";
        break;
    case XD_ESTOPPING:
        detail = "the hub is shutting down; nothing was stored";
        break;
    default:
        detail = "the store is unavailable; nothing was stored";
        break;
    }
    xd_warn("intake: %zu event(s) refused: %s", r->append.n, xd_strerror(rc));
    snprintf(r->retry_after, sizeof r->retry_after, "5");
    xd_http_problem(r, 503, "store-unavailable", "Service Unavailable", detail, NULL);
}

/* GET /v1/events/{id}: h_timeline.c. */

void xd_h_healthz(struct xd_req *r)
{
    xd_buf_reset(&r->out);
    xd_buf_puts(&r->out, "{\"status\":\"ok\",\"version\":\"" XD_VERSION "\"}");
    xd_http_reply_json(r, 200);
}

struct warn_list {
    struct xd_buf *o;
    size_t n;
};

static void readyz_warning(void *ctx, const struct xd_config_pos *pos, const char *msg)
{
    struct warn_list *w = ctx;
    (void)pos;
    xd_buf_puts(w->o, w->n++ ? "," : ",\"warnings\":[");
    xd_buf_json_str(w->o, msg);
}

void xd_h_readyz(struct xd_req *r)
{
    int rc = xd_store_ready(r->srv->store);
    if (rc < 0 || atomic_load(&r->srv->stopping)) {
        snprintf(r->retry_after, sizeof r->retry_after, "5");
        xd_http_problem(r, 503, "not-ready", "Service Unavailable",
                        rc < 0 ? xd_strerror(rc) : "shutting down", NULL);
        return;
    }
    xd_buf_reset(&r->out);
    xd_buf_puts(&r->out, "{\"status\":\"ready\"");
    struct warn_list w = {&r->out, 0};
    xd_config_warnings(r->srv->cfg, readyz_warning, &w); /* e.g. tls.verify: false */
    if (w.n)
        xd_buf_putc(&r->out, ']');
    xd_buf_putc(&r->out, '}');
    xd_http_reply_json(r, 200);
}
