/*
 * NATS JetStream sources (see nats_source.h, docs/nats.md). Per source, one
 * thread runs:
 *
 *   set up (once, and again after a failure): connect, find or create the
 *   durable pull consumer, bind a pull subscription to it;
 *   loop: fetch up to `batch` messages (waiting up to fetch_wait_ms) ->
 *         turn each into an event or a rejection -> submit every event to
 *         the store at once -> wait until the store has answered them all ->
 *         ack the committed and the duplicates, reject (exception + term)
 *         the refused, nak with a delay what the store could not take.
 *
 * Nothing is acknowledged before the store's done callback reported it
 * durable, so an ack never outruns the commit. Acks are plain (not
 * AckSync): a lost ack only means the message comes back, as a duplicate.
 *
 * Failures of NATS itself (no server, leader election, consumer gone) are
 * logged once each and waited out with a capped backoff; JetStream keeps the
 * messages meanwhile.
 */
#include "ingest/nats_source.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/err.h"
#include "core/log.h"
#include "deliver/nats_conn.h"
#include "deliver/nats_metrics.h"
#include "formats/json.h"
#include "ingest/intake.h"
#include "ingest/intake_metrics.h"
#include "route/dispatch.h"
#include "store/store.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define STORE_PAUSE_MS   1000 /* nak delay and pause when the store cannot take events */
#define BACKOFF_FIRST_MS 100  /* after a NATS failure; doubles up to BACKOFF_MAX_MS */
#define BACKOFF_MAX_MS   5000
#define API_WAIT_MS      5000 /* JetStream API requests (consumer info, create) */
#define REASON_MAX       900  /* of a rejection's reason kept in the exception */

/* One message of a fetch, on its way to the store. */
struct item {
    struct source *s;
    natsMsg *msg;
    struct xd_intake in;
    int have_intake;
    int submitted;        /* handed to the store: a.rc is its answer once done */
    unsigned char result; /* enum xd_append_result */
    struct xd_append a;
    struct xd_buf why;    /* when not submitted: why it is rejected */
    enum xd_reject_reason reason; /* and that, for /metrics */
    const char *event_id; /* for the exception, or NULL */
};

struct source {
    struct xd_nats_sources *all;
    const struct xd_source *cfg;
    natsConnection *nc;
    jsCtx *js;
    natsSubscription *sub;
    struct item *items; /* cfg->batch of them */
    pthread_t thread;
    int started;
    pthread_mutex_t mu;
    pthread_cond_t cv;  /* outstanding reached 0, or stopping */
    size_t outstanding; /* submitted, done not yet called */
    struct xd_log_once problem; /* the passing problem logged last */
    int64_t backoff_ms;
    struct xd_nats_counters *metrics; /* fetched, acked, nak'ed, terminated */
};

struct xd_nats_sources {
    const struct xd_config *cfg;
    struct xd_store *store;
    struct xd_dispatcher *disp;
    struct source *src;
    size_t n;
    atomic_int stopping;
};

/* Logs a passing problem once, until another one (or success) replaces it. */
#define problem(s, ...) xd_warn_once(&(s)->problem, "source", (s)->cfg->name, __VA_ARGS__)

static void solved(struct source *s)
{
    if (xd_warn_once_clear(&s->problem))
        xd_info("source %s: reading stream %s (consumer %s)", s->cfg->name, s->cfg->stream,
                s->cfg->durable);
    s->backoff_ms = 0;
}

/* Sleeps ms in small steps, returning early when the hub stops. */
static void pause_ms(struct source *s, int64_t ms)
{
    int64_t until = xd_mono_ms() + ms;
    while (!atomic_load(&s->all->stopping)) {
        int64_t left = until - xd_mono_ms();
        if (left <= 0)
            break;
        if (left > 50)
            left = 50;
        nanosleep(&(struct timespec){0, left * 1000000L}, NULL);
    }
}

/* Waits out a NATS failure: 100 ms, 200 ms, ... up to 5 s. */
static void back_off(struct source *s)
{
    s->backoff_ms = s->backoff_ms ? s->backoff_ms * 2 : BACKOFF_FIRST_MS;
    if (s->backoff_ms > BACKOFF_MAX_MS)
        s->backoff_ms = BACKOFF_MAX_MS;
    pause_ms(s, s->backoff_ms);
}

static const char *status_text(natsStatus st, jsErrCode je)
{
    static _Thread_local char buf[160];
    const char *last = nats_GetLastError(NULL);
    if (je)
        snprintf(buf, sizeof buf, "%s (JetStream error %d)%s%s", natsStatus_GetText(st), (int)je,
                 last && *last ? ": " : "", last && *last ? last : "");
    else
        snprintf(buf, sizeof buf, "%s", natsStatus_GetText(st));
    return buf;
}

/* ---- setting up ---- */

static void teardown(struct source *s)
{
    natsSubscription_Destroy(s->sub); /* not Unsubscribe: that would delete the durable */
    s->sub = NULL;
}

/* Finds the durable consumer, or creates it; then binds a pull subscription to it. */
static int setup(struct source *s)
{
    const struct xd_source *c = s->cfg;
    natsStatus st;
    jsErrCode je = 0;
    if (!s->js) {
        jsOptions jo;
        jsOptions_Init(&jo);
        jo.Wait = API_WAIT_MS;
        st = natsConnection_JetStream(&s->js, s->nc, &jo);
        if (st != NATS_OK) {
            problem(s, "cannot use JetStream: %s", natsStatus_GetText(st));
            return -1;
        }
    }
    jsConsumerInfo *ci = NULL;
    st = js_GetConsumerInfo(&ci, s->js, c->stream, c->durable, NULL, &je);
    if (st == NATS_NOT_FOUND && je != JSStreamNotFoundErr) {
        jsConsumerConfig cc;
        jsConsumerConfig_Init(&cc);
        cc.Durable = c->durable;
        cc.Description = "crossdock source";
        cc.AckPolicy = js_AckExplicit;
        cc.DeliverPolicy = js_DeliverAll;
        cc.AckWait = (int64_t)c->ack_wait_ms * 1000000;
        cc.FilterSubject = c->subject;
        cc.MaxAckPending = (int64_t)c->batch * 4;
        je = 0;
        st = js_AddConsumer(&ci, s->js, c->stream, &cc, NULL, &je);
        if (st == NATS_OK)
            xd_info("source %s: created the durable consumer %s on stream %s", c->name, c->durable,
                    c->stream);
    }
    if (st != NATS_OK) {
        if (je == JSStreamNotFoundErr)
            problem(s, "stream %s not found (create it: docs/nats.md)", c->stream);
        else
            problem(s, "consumer %s on stream %s: %s", c->durable, c->stream, status_text(st, je));
        return -1;
    }
    const char *filter = ci->Config && ci->Config->FilterSubject && *ci->Config->FilterSubject
                             ? ci->Config->FilterSubject
                             : NULL;
    if (c->subject && (!filter || strcmp(filter, c->subject) != 0))
        xd_warn("source %s: consumer %s exists with filter subject '%s', not '%s': it is used "
                "as it is",
                c->name, c->durable, filter ? filter : "", c->subject);
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = c->stream;
    so.Consumer = c->durable;
    je = 0;
    st = js_PullSubscribe(&s->sub, s->js, filter ? filter : "", c->durable, NULL, &so, &je);
    jsConsumerInfo_Destroy(ci);
    if (st != NATS_OK) {
        s->sub = NULL;
        problem(s, "cannot bind to consumer %s: %s", c->durable, status_text(st, je));
        return -1;
    }
    return 0;
}

/* ---- one fetch ---- */

static void on_committed(struct xd_append *a, void *arg)
{
    struct item *it = arg;
    struct source *s = it->s;
    (void)a;
    pthread_mutex_lock(&s->mu);
    if (--s->outstanding == 0)
        pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

static const char *header(natsMsg *m, const char *name)
{
    const char *v = NULL;
    return natsMsgHeader_Get(m, name, &v) == NATS_OK ? v : NULL;
}

/*
 * Turns a message into a prepared event in it->in, or says in it->why why it
 * cannot be one. Returns 0, or XD_ENOMEM (try the message again later).
 */
static int prepare(struct source *s, struct item *it)
{
    const struct xd_config *cfg = s->all->cfg;
    const char *data = natsMsg_GetData(it->msg);
    size_t len = (size_t)natsMsg_GetDataLength(it->msg);
    const char *msg_id = header(it->msg, "Nats-Msg-Id");
    struct xd_intake_limits lim = {
        .max_batch = 1, .max_depth = cfg->server.max_depth, .max_string = cfg->server.max_string};
    xd_intake_init(&it->in, &lim, s->cfg->name);
    it->have_intake = 1;
    it->reason = XD_REJ_OTHER;

    if (len > cfg->server.max_body) {
        xd_buf_printf(&it->why, "the message is %zu bytes, over server.max_body (%zu bytes)", len,
                      cfg->server.max_body);
        it->reason = XD_REJ_TOO_LARGE;
        return 0;
    }
    struct xd_json_limits jl = {.max_depth = lim.max_depth, .max_string = lim.max_string};
    struct xd_json_error jerr;
    cJSON *root = NULL;
    int rc = xd_json_parse(data ? data : "", len, &jl, &root, &jerr);
    if (rc == XD_ENOMEM)
        return rc;
    if (rc < 0) {
        xd_buf_printf(&it->why, "malformed JSON at byte %zu: %s", jerr.offset, jerr.message);
        it->reason = XD_REJ_MALFORMED_JSON;
        return 0;
    }
    if (!cJSON_IsObject(root) || cJSON_GetObjectItemCaseSensitive(root, "events")) {
        cJSON_Delete(root);
        xd_buf_puts(&it->why, "a message holds one event object (not a batch or an array)");
        it->reason = XD_REJ_INVALID_EVENT;
        return 0;
    }
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(root, "event_id");
    if (msg_id && (!id || cJSON_IsNull(id))) {
        cJSON_DeleteItemFromObjectCaseSensitive(root, "event_id");
        if (!cJSON_AddStringToObject(root, "event_id", msg_id)) {
            cJSON_Delete(root);
            return XD_ENOMEM;
        }
    } else if (msg_id && cJSON_IsString(id) && strcmp(id->valuestring, msg_id) != 0) {
        xd_buf_printf(&it->why, "event_id '%.128s' differs from the Nats-Msg-Id header '%.128s'",
                      id->valuestring, msg_id);
        it->reason = XD_REJ_INVALID_EVENT;
        it->event_id = msg_id; /* the exception names the message's id (both are in its reason) */
        cJSON_Delete(root);
        return 0;
    }
    id = cJSON_GetObjectItemCaseSensitive(root, "event_id");
    rc = xd_intake_add_tree(&it->in, root); /* owns root now */
    if (rc == XD_ENOMEM)
        return rc;
    if (cJSON_IsString(id))
        it->event_id = id->valuestring;
    if (rc < 0) {
        it->reason = xd_intake_reject_reason(&it->in);
        for (size_t k = 0; k < it->in.errs.n; k++)
            xd_buf_printf(&it->why, "%s%s%s%s", k ? "; " : "", it->in.errs.v[k].path,
                          *it->in.errs.v[k].path ? ": " : "", it->in.errs.v[k].message);
        if (!it->why.len)
            xd_buf_puts(&it->why, xd_strerror(rc));
    }
    return 0;
}

/* Hands a message back to come again after STORE_PAUSE_MS. */
static void nak(struct source *s, struct item *it)
{
    natsMsg_NakWithDelay(it->msg, STORE_PAUSE_MS, NULL);
    xd_nats_count_end(s->metrics, XD_NATS_NAKED);
}

/*
 * Rejects a message for good: opens the exception, then terminates it. When
 * the exception cannot be recorded the message is nak'ed and comes back.
 * Returns 0, or -1 when the store failed (the caller pauses).
 */
static int reject(struct source *s, struct item *it)
{
    char reason[REASON_MAX + 200];
    uint64_t seq = 0, delivered = 0;
    jsMsgMetaData *meta = NULL;
    if (natsMsg_GetMetaData(&meta, it->msg) == NATS_OK) {
        seq = meta->Sequence.Stream;
        delivered = meta->NumDelivered;
        jsMsgMetaData_Destroy(meta);
    }
    const char *why = xd_buf_str(&it->why);
    snprintf(reason, sizeof reason, "source %s: stream %s message %llu (subject %.100s): %.*s%s",
             s->cfg->name, s->cfg->stream, (unsigned long long)seq, natsMsg_GetSubject(it->msg),
             REASON_MAX, why, strlen(why) > REASON_MAX ? "..." : "");
    int rc = xd_store_open_exception(s->all->store, "rejected_message", it->event_id, reason);
    if (rc < 0) {
        problem(s,
                "message %llu rejected, but the exception cannot be opened (%s): it will "
                "come again",
                (unsigned long long)seq, xd_strerror(rc));
        nak(s, it);
        return -1;
    }
    xd_intake_count_rejected(it->reason);
    natsMsg_Term(it->msg, NULL);
    xd_nats_count_end(s->metrics, XD_NATS_TERMINATED);
    xd_warn("%s (delivery %llu; terminated, exception opened)", reason,
            (unsigned long long)delivered);
    return 0;
}

static void item_reset(struct item *it)
{
    if (it->have_intake)
        xd_intake_dispose(&it->in);
    it->have_intake = 0;
    it->submitted = 0;
    it->event_id = NULL;
    it->reason = XD_REJ_OTHER;
    it->msg = NULL;
    xd_buf_reset(&it->why);
    memset(&it->a, 0, sizeof it->a);
}

/* Handles the messages of one fetch: commit, then ack / reject / nak each. */
static void take(struct source *s, natsMsgList *list)
{
    size_t n = (size_t)list->Count;
    int store_trouble = 0, nomem = 0;
    size_t fresh = 0, dups = 0, rejected = 0;

    xd_nats_count_fetched(s->metrics, n);
    pthread_mutex_lock(&s->mu);
    s->outstanding = 0;
    pthread_mutex_unlock(&s->mu);
    for (size_t i = 0; i < n; i++) {
        struct item *it = &s->items[i];
        it->s = s;
        it->msg = list->Msgs[i];
        if (prepare(s, it) == XD_ENOMEM) {
            nomem = 1;
            continue;
        }
        if (it->why.len)
            continue;
        it->a.events = it->in.events;
        it->a.n = it->in.n;
        it->a.results = &it->result;
        it->a.done = on_committed;
        it->a.arg = it;
        pthread_mutex_lock(&s->mu);
        s->outstanding++;
        pthread_mutex_unlock(&s->mu);
        int rc = xd_store_submit(s->all->store, &it->a);
        if (rc < 0) {
            it->a.rc = rc;
            on_committed(&it->a, it);
        }
        it->submitted = 1;
    }
    pthread_mutex_lock(&s->mu);
    while (s->outstanding > 0)
        pthread_cond_wait(&s->cv, &s->mu);
    pthread_mutex_unlock(&s->mu);

    for (size_t i = 0; i < n; i++) {
        struct item *it = &s->items[i];
        if (!it->submitted && !it->why.len) { /* out of memory preparing it */
            nak(s, it);
            continue;
        }
        if (it->submitted) {
            int rc = it->a.rc;
            if (rc == 0) {
                natsMsg_Ack(it->msg, NULL);
                xd_nats_count_end(s->metrics, XD_NATS_ACKED);
                size_t f = 0, d = 0;
                xd_intake_count_stored(it->in.events, &it->result, it->in.n, &f, &d);
                fresh += f;
                dups += d;
                continue;
            }
            if (rc == XD_ECONFLICT) {
                xd_buf_printf(&it->why, "event '%s' was accepted before with a different body",
                              it->in.events[0].event_id);
                it->reason = XD_REJ_CONFLICT;
            } else if (rc == XD_EINVAL || rc == XD_ETOOBIG) {
                xd_buf_printf(&it->why, "the store refused the event: %s", xd_strerror(rc));
                it->reason = XD_REJ_OTHER;
            } else {
                problem(s, "events not stored (%s): they will come again", xd_strerror(rc));
                nak(s, it);
                store_trouble = 1;
                continue;
            }
        }
        if (store_trouble) {
            nak(s, it);
            continue;
        }
        if (reject(s, it) < 0)
            store_trouble = 1;
        else
            rejected++;
    }
    for (size_t i = 0; i < n; i++)
        item_reset(&s->items[i]);
    if (fresh && s->all->disp)
        xd_dispatch_nudge(s->all->disp);
    if (fresh || dups || rejected)
        xd_debug("source %s: %zu messages: %zu accepted, %zu duplicates, %zu rejected",
                 s->cfg->name, n, fresh, dups, rejected);
    if (store_trouble || nomem)
        pause_ms(s, STORE_PAUSE_MS);
    else if (fresh || dups)
        solved(s);
}

/* ---- the thread ---- */

static int transient(natsStatus st)
{
    return st == NATS_TIMEOUT || st == NATS_CONNECTION_CLOSED ||
           st == NATS_CONNECTION_DISCONNECTED || st == NATS_NO_SERVER || st == NATS_IO_ERROR ||
           st == NATS_NOT_YET_CONNECTED || st == NATS_STALE_CONNECTION ||
           st == NATS_NO_RESPONDERS || st == NATS_SLOW_CONSUMER;
}

static void *source_main(void *arg)
{
    struct source *s = arg;
    pthread_setname_np(pthread_self(), "xd-nats-src");
    unsigned failures = 0;
    while (!atomic_load(&s->all->stopping)) {
        if (!s->sub) {
            if (setup(s) < 0) {
                back_off(s);
                continue;
            }
            solved(s);
            failures = 0;
        }
        natsMsgList list = {0};
        jsErrCode je = 0;
        natsStatus st = natsSubscription_Fetch(&list, s->sub, (int)s->cfg->batch,
                                               (int64_t)s->cfg->fetch_wait_ms, &je);
        if (st == NATS_OK && list.Count > 0) {
            failures = 0;
            take(s, &list);
            natsMsgList_Destroy(&list);
            continue;
        }
        natsMsgList_Destroy(&list);
        if (st == NATS_OK || (st == NATS_TIMEOUT && !je)) {
            failures = 0;
            continue; /* nothing new */
        }
        problem(s, "fetch from consumer %s failed: %s", s->cfg->durable, status_text(st, je));
        /* After repeated failures, or one that is not about the connection, bind anew. */
        if (!transient(st) || ++failures >= 5) {
            teardown(s);
            failures = 0;
        }
        back_off(s);
    }
    return NULL;
}

/* ---- start and stop ---- */

static void destroy(struct xd_nats_sources *all)
{
    for (size_t i = 0; i < all->n; i++) {
        struct source *s = &all->src[i];
        teardown(s);
        jsCtx_Destroy(s->js);
        xd_nats_disconnect(s->nc);
        for (size_t k = 0; s->items && k < s->cfg->batch; k++) {
            item_reset(&s->items[k]);
            xd_buf_dispose(&s->items[k].why);
        }
        free(s->items);
        pthread_cond_destroy(&s->cv);
        pthread_mutex_destroy(&s->mu);
    }
    free(all->src);
    free(all);
}

int xd_nats_sources_start(const struct xd_config *cfg, struct xd_store *store,
                          struct xd_dispatcher *disp, struct xd_nats_sources **out,
                          struct xd_buf *err)
{
    *out = NULL;
    if (cfg->nsources == 0)
        return 0;
    struct xd_nats_sources *all = calloc(1, sizeof *all);
    if (!all)
        return XD_ENOMEM;
    all->cfg = cfg;
    all->store = store;
    all->disp = disp;
    int rc = XD_ENOMEM;
    all->src = calloc(cfg->nsources, sizeof *all->src);
    if (!all->src)
        goto fail;
    for (size_t i = 0; i < cfg->nsources; i++) {
        struct source *s = &all->src[i];
        s->all = all;
        s->cfg = &cfg->sources[i];
        s->metrics = xd_nats_metrics_source(s->cfg->name);
        pthread_mutex_init(&s->mu, NULL);
        pthread_cond_init(&s->cv, NULL);
        all->n = i + 1;
        s->items = calloc(s->cfg->batch, sizeof *s->items);
        if (!s->items) {
            rc = XD_ENOMEM;
            goto fail;
        }
        for (size_t k = 0; k < s->cfg->batch; k++)
            xd_buf_init(&s->items[k].why);
        rc = xd_nats_connect(s->cfg->servers, s->cfg->nservers, NULL, s->cfg->name, &s->nc, err);
        if (rc < 0)
            goto fail;
    }
    for (size_t i = 0; i < all->n; i++) {
        struct source *s = &all->src[i];
        rc = pthread_create(&s->thread, NULL, source_main, s);
        if (rc != 0) {
            xd_buf_printf(err, "source %s: cannot start its thread: %s", s->cfg->name,
                          strerror(rc));
            rc = XD_ENOMEM;
            goto fail;
        }
        s->started = 1;
        xd_info("source %s: nats stream %s, consumer %s%s%s", s->cfg->name, s->cfg->stream,
                s->cfg->durable, s->cfg->subject ? ", subject " : "",
                s->cfg->subject ? s->cfg->subject : "");
    }
    *out = all;
    return 0;
fail:
    xd_nats_sources_stop(all);
    return rc;
}

void xd_nats_sources_stop(struct xd_nats_sources *all)
{
    if (!all)
        return;
    atomic_store(&all->stopping, 1);
    for (size_t i = 0; i < all->n; i++)
        if (all->src[i].started)
            pthread_join(all->src[i].thread, NULL);
    destroy(all);
}
