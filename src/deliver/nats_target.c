/*
 * NATS targets (see nats_target.h). A target holds one connection, one
 * JetStream context and WORKERS threads. Requests wait in a FIFO queue; a
 * worker takes one, publishes it with MaxWait = timeout_ms, records what
 * happened, moves it to the done list and wakes the dispatcher, whose thread
 * reports it through the request's done callback (xd_nats_target_poll).
 *
 * A publish is OK when the stream acknowledged it, also as a duplicate (the
 * stream had it already: an earlier attempt whose acknowledgment was lost).
 * During a leader election publishes time out or find no responders for
 * several seconds; they are RETRY, and the dispatcher's backoff spaces the
 * attempts out.
 */
#include "deliver/nats_target.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/err.h"
#include "core/log.h"
#include "deliver/nats_conn.h"
#include "deliver/nats_metrics.h"
#include "deliver/trace.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define WORKERS    4   /* publishes in flight per target */
#define MSG_ID_MAX 128 /* longest Nats-Msg-Id accepted */
#define ERROR_MAX  300

/* ---- outcomes ---- */

struct nats_verdict {
    int status; /* natsStatus */
    enum xd_outcome outcome;
    const char *cls;
};

/* What each cnats status means for a publish; anything else is RETRY "nats". */
static const struct nats_verdict by_status[] = {
    {NATS_OK, XD_OUT_OK, "ok"},
    {NATS_TIMEOUT, XD_OUT_RETRY, "timeout"},
    {NATS_NO_RESPONDERS, XD_OUT_RETRY, "no_responders"},
    {NATS_CONNECTION_CLOSED, XD_OUT_RETRY, "connect"},
    {NATS_CONNECTION_DISCONNECTED, XD_OUT_RETRY, "connect"},
    {NATS_NO_SERVER, XD_OUT_RETRY, "connect"},
    {NATS_IO_ERROR, XD_OUT_RETRY, "connect"},
    {NATS_NOT_YET_CONNECTED, XD_OUT_RETRY, "connect"},
    {NATS_STALE_CONNECTION, XD_OUT_RETRY, "connect"},
    {NATS_DRAINING, XD_OUT_RETRY, "connect"},
    /* headers "not supported" before the first connection said they are (nats-server >= 2.2) */
    {NATS_NO_SERVER_SUPPORT, XD_OUT_RETRY, "connect"},
    {NATS_SSL_ERROR, XD_OUT_RETRY, "tls"},
    {NATS_NO_MEMORY, XD_OUT_RETRY, "nomem"},
    {NATS_MAX_PAYLOAD, XD_OUT_FAIL, "too_large"},
    {NATS_INVALID_SUBJECT, XD_OUT_FAIL, "request"},
    {NATS_INVALID_ARG, XD_OUT_FAIL, "request"},
    {NATS_NOT_PERMITTED, XD_OUT_FAIL, "forbidden"},
};

/* JetStream errors that no retry can fix; every other JetStream error passes (RETRY). */
static const struct nats_verdict by_js_error[] = {
    {JSStreamMessageExceedsMaximumErr, XD_OUT_FAIL, "too_large"},
    {JSBadRequestErr, XD_OUT_FAIL, "request"},
};

enum xd_outcome xd_nats_classify(int nats_status, int js_err, const char **cls)
{
    if (js_err) {
        for (size_t i = 0; i < sizeof by_js_error / sizeof by_js_error[0]; i++)
            if (by_js_error[i].status == js_err) {
                *cls = by_js_error[i].cls;
                return by_js_error[i].outcome;
            }
        *cls = "js_error";
        return XD_OUT_RETRY;
    }
    for (size_t i = 0; i < sizeof by_status / sizeof by_status[0]; i++)
        if (by_status[i].status == nats_status) {
            *cls = by_status[i].cls;
            return by_status[i].outcome;
        }
    *cls = "nats";
    return XD_OUT_RETRY;
}

/* ---- the target ---- */

struct pub {
    struct pub *next;
    char *body;
    size_t len;
    char msg_id[MSG_ID_MAX + 1];
    char traceparent[XD_TRACEPARENT_LEN + 1];
    xd_http_done_fn *done;
    void *user;
    int status;    /* natsStatus of the publish */
    int js_err;    /* jsErrCode, 0 when none */
    int cancelled; /* never published: the target was destroyed */
    int duplicate; /* the stream had it already */
    uint64_t latency_us;
    char error[ERROR_MAX];
};

struct xd_nats_target {
    const struct xd_target *cfg;
    natsConnection *nc;
    jsCtx *js;
    xd_nats_wake_fn *wake;
    void *wake_arg;
    struct xd_nats_counters *metrics; /* publishes by outcome, for /metrics */
    pthread_t workers[WORKERS];
    size_t nworkers;
    pthread_mutex_t mu;
    pthread_cond_t cv;                 /* a request queued, or stopping */
    struct pub *head, *tail;           /* queued, oldest first */
    struct pub *done_head, *done_tail; /* ended, waiting for poll */
    int stopping;
};

static void push(struct pub **head, struct pub **tail, struct pub *p)
{
    p->next = NULL;
    if (*tail)
        (*tail)->next = p;
    else
        *head = p;
    *tail = p;
}

static void describe(struct xd_nats_target *t, struct pub *p, const char *cls)
{
    const char *subject = t->cfg->subject;
    if (p->status == NATS_NO_RESPONDERS)
        snprintf(p->error, sizeof p->error,
                 "no responders on %s: no stream captures the subject, or its leader is being "
                 "elected",
                 subject);
    else if (p->status == NATS_TIMEOUT)
        snprintf(p->error, sizeof p->error, "no acknowledgment from JetStream within %u ms",
                 t->cfg->timeout_ms);
    else if (p->status == NATS_NO_SERVER_SUPPORT)
        snprintf(p->error, sizeof p->error,
                 "not connected to a NATS server yet (or it is older than 2.2: no headers)");
    else if (p->js_err)
        snprintf(p->error, sizeof p->error, "JetStream error %d on %s: %s", p->js_err, subject,
                 nats_GetLastError(NULL));
    else
        snprintf(p->error, sizeof p->error, "publish to %s failed (%s): %s", subject, cls,
                 natsStatus_GetText((natsStatus)p->status));
}

static void publish(struct xd_nats_target *t, struct pub *p)
{
    natsMsg *m = NULL;
    jsPubAck *ack = NULL;
    jsErrCode je = 0;
    int64_t t0 = xd_mono_ms();
    natsStatus s = natsMsg_Create(&m, t->cfg->subject, NULL, p->body, (int)p->len);
    if (s == NATS_OK)
        s = natsMsgHeader_Set(m, "Nats-Msg-Id", p->msg_id);
    if (s == NATS_OK && p->traceparent[0])
        s = natsMsgHeader_Set(m, "traceparent", p->traceparent);
    if (s == NATS_OK) /* the payload's type, as HTTP targets say it */
        s = natsMsgHeader_Set(m, "Content-Type", "application/json");
    if (s == NATS_OK) {
        jsPubOptions po;
        jsPubOptions_Init(&po);
        po.MaxWait = t->cfg->timeout_ms;
        s = js_PublishMsg(&ack, t->js, m, &po, &je);
    }
    p->status = (int)s;
    p->js_err = (int)je;
    p->duplicate = ack && ack->Duplicate;
    p->latency_us = (uint64_t)(xd_mono_ms() - t0) * 1000;
    if (s != NATS_OK) {
        const char *cls;
        xd_nats_classify(p->status, p->js_err, &cls);
        describe(t, p, cls);
    }
    jsPubAck_Destroy(ack);
    natsMsg_Destroy(m);
}

static void *worker_main(void *arg)
{
    struct xd_nats_target *t = arg;
    pthread_setname_np(pthread_self(), "xd-nats-pub");
    pthread_mutex_lock(&t->mu);
    for (;;) {
        while (!t->stopping && !t->head)
            pthread_cond_wait(&t->cv, &t->mu);
        if (t->stopping)
            break;
        struct pub *p = t->head;
        t->head = p->next;
        if (!t->head)
            t->tail = NULL;
        pthread_mutex_unlock(&t->mu);
        publish(t, p);
        pthread_mutex_lock(&t->mu);
        push(&t->done_head, &t->done_tail, p);
        pthread_mutex_unlock(&t->mu);
        t->wake(t->wake_arg);
        pthread_mutex_lock(&t->mu);
    }
    pthread_mutex_unlock(&t->mu);
    return NULL;
}

int xd_nats_target_create(const struct xd_target *cfg, xd_nats_wake_fn *wake, void *wake_arg,
                          struct xd_nats_target **out, struct xd_buf *err)
{
    *out = NULL;
    struct xd_nats_target *t = calloc(1, sizeof *t);
    if (!t)
        return XD_ENOMEM;
    t->cfg = cfg;
    t->wake = wake;
    t->wake_arg = wake_arg;
    t->metrics = xd_nats_metrics_target(cfg->name);
    pthread_mutex_init(&t->mu, NULL);
    pthread_cond_init(&t->cv, NULL);
    int rc = xd_nats_connect(cfg->servers, cfg->nservers, cfg->url, cfg->name, &t->nc, err);
    if (rc < 0)
        goto fail;
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = cfg->timeout_ms;
    if (natsConnection_JetStream(&t->js, t->nc, &jo) != NATS_OK) {
        xd_buf_printf(err, "targets.%s: cannot use JetStream", cfg->name);
        rc = XD_ENOMEM;
        goto fail;
    }
    for (size_t i = 0; i < WORKERS; i++) {
        int e = pthread_create(&t->workers[i], NULL, worker_main, t);
        if (e != 0) {
            xd_buf_printf(err, "targets.%s: cannot start a publisher thread: %s", cfg->name,
                          strerror(e));
            rc = XD_ENOMEM;
            goto fail;
        }
        t->nworkers++;
    }
    *out = t;
    return 0;
fail:
    xd_nats_target_destroy(t);
    return rc;
}

int xd_nats_target_submit(struct xd_nats_target *t, const void *body, size_t len,
                          const char *msg_id, const struct xd_trace *trace, xd_http_done_fn *done,
                          void *user)
{
    size_t idlen = msg_id ? strlen(msg_id) : 0;
    if (idlen == 0 || idlen > MSG_ID_MAX)
        return XD_EINVAL;
    for (const unsigned char *c = (const unsigned char *)msg_id; *c; c++)
        if (*c <= ' ' || *c == 0x7f)
            return XD_EINVAL;
    struct pub *p = calloc(1, sizeof *p);
    if (!p)
        return XD_ENOMEM;
    p->body = malloc(len ? len : 1);
    if (!p->body) {
        free(p);
        return XD_ENOMEM;
    }
    memcpy(p->body, body, len);
    p->len = len;
    memcpy(p->msg_id, msg_id, idlen + 1);
    if (trace)
        xd_trace_format(trace, p->traceparent);
    p->done = done;
    p->user = user;
    pthread_mutex_lock(&t->mu);
    push(&t->head, &t->tail, p);
    pthread_cond_signal(&t->cv);
    pthread_mutex_unlock(&t->mu);
    return 0;
}

/* Reports one ended publish through its done callback (and to /metrics), then frees it. */
static void report(struct xd_nats_target *t, struct pub *p)
{
    const char *cls = "cancelled";
    struct xd_http_result r = {0};
    if (p->cancelled) {
        r.outcome = XD_OUT_RETRY;
        r.xport = XD_XPORT_CANCELLED;
        r.error_class = "cancelled";
        r.error = "cancelled: target shut down";
    } else {
        r.outcome = xd_nats_classify(p->status, p->js_err, &cls);
        r.error_class = cls;
        r.xport = r.outcome == XD_OUT_OK     ? XD_XPORT_NONE
                  : r.outcome == XD_OUT_FAIL ? XD_XPORT_REQUEST
                                             : XD_XPORT_OTHER;
        r.error = r.outcome == XD_OUT_OK ? "" : p->error;
    }
    xd_nats_count_publish(t->metrics, r.outcome == XD_OUT_OK && p->duplicate ? "duplicate" : cls);
    r.latency_us = p->latency_us;
    r.body = "";
    p->done(p->user, &r);
    free(p->body);
    free(p);
}

size_t xd_nats_target_poll(struct xd_nats_target *t)
{
    if (!t)
        return 0;
    pthread_mutex_lock(&t->mu);
    struct pub *p = t->done_head;
    t->done_head = t->done_tail = NULL;
    pthread_mutex_unlock(&t->mu);
    size_t n = 0;
    while (p) {
        struct pub *next = p->next;
        report(t, p);
        p = next;
        n++;
    }
    return n;
}

void xd_nats_target_destroy(struct xd_nats_target *t)
{
    if (!t)
        return;
    pthread_mutex_lock(&t->mu);
    t->stopping = 1;
    pthread_cond_broadcast(&t->cv);
    pthread_mutex_unlock(&t->mu);
    for (size_t i = 0; i < t->nworkers; i++)
        pthread_join(t->workers[i], NULL);
    /* what no worker took: never published */
    for (struct pub *p = t->head, *next; p; p = next) {
        next = p->next;
        p->cancelled = 1;
        push(&t->done_head, &t->done_tail, p);
    }
    t->head = t->tail = NULL;
    xd_nats_target_poll(t);
    jsCtx_Destroy(t->js);
    xd_nats_disconnect(t->nc);
    pthread_cond_destroy(&t->cv);
    pthread_mutex_destroy(&t->mu);
    free(t);
}
