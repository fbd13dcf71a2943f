/*
 * The dispatcher (see dispatch.h). Targets are shared out among a few lanes
 * (threads), so that one slow or busy target never waits behind another and
 * the work uses more than one core. Each lane owns its targets, its curl multi
 * client and its compiled jq programs, and runs this loop:
 *
 *   1. take back the outcome batches the store has committed: their
 *      deliveries leave the in-flight lists;
 *   2. for every target with room (in-flight below its limit) whose circuit
 *      allows an attempt, fetch the deliveries that may go now and start
 *      each one not already in flight: parse the stored event once, apply
 *      the route's filter (first step only) and the step's map, and hand the
 *      request to the curl multi client (or to a NATS target's publishers);
 *   3. submit the outcomes gathered so far to the store as one batch;
 *   4. let curl move transfers for up to a few milliseconds; completions
 *      are classified (OK / RETRY / FAIL, deliver/outcome.c), fed to the
 *      target's circuit breaker, and turned into outcome records.
 *
 * A job (one attempt of one delivery) is owned by its target's in-flight
 * list from fetch until its outcome is committed; nothing else frees it.
 * A target belongs to exactly one lane, so per-key order (kept by the
 * store's fetch query and the in-flight check) needs no cross-lane locking.
 */
#include "route/dispatch.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/err.h"
#include "core/log.h"
#include "deliver/backoff.h"
#include "deliver/circuit.h"
#include "deliver/http.h"
#include "deliver/nats_target.h"
#include "deliver/outcome.h"
#include "deliver/rand.h"
#include "deliver/target.h"
#include "deliver/trace.h"
#include "formats/json.h"
#include "reconcile/ack.h"
#include "route/hold.h"
#include "route/rate_step.h"
#include "route/route.h"
#include "store/store.h"
#include "transform/transform.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define INFLIGHT_MAX     64   /* attempts in flight per target */
#define FETCH_EXTRA      16   /* rows fetched beyond the free slots (some are in flight) */
#define IDLE_POLL_MS     50   /* look for due work at least this often */
#define STORE_PAUSE_MS   1000 /* after the store failed to record outcomes */
#define ERROR_TEXT_MAX   1024 /* of a target's answer kept as the error */
#define LANES_MAX        4    /* dispatcher threads at most */

struct job;
struct lane;

struct target {
    struct lane *l;             /* the lane that sends for this target */
    const struct xd_target *cfg;
    int http;                   /* type http (curl multi); nats targets have nats set */
    int local;                  /* the hub itself: rate steps */
    struct xd_http_target ht;   /* headers, bearer token, circuit breaker (type http) */
    struct xd_nats_target *nats; /* type nats: its publishers (deliver/nats_target.h) */
    struct job *inflight[INFLIGHT_MAX];
    size_t ninflight;
    int64_t quiet_until;        /* no fetch before (ms, monotonic): circuit open, store down */
    int had_more;               /* the last fetch filled its page: fetch again soon */
    struct xd_target_stats st;
};

struct job {
    struct target *t;
    struct xd_stored_dlv d;
    uint64_t key_hash;
    enum xd_permit permit;
    int64_t started_ms; /* wall clock, for the attempt row */
    int64_t occurred_ms; /* the event's occurred_at (charge deliveries: ship-to-charge) */
    struct xd_buf payload;
    struct xd_buf error;
    struct xd_rate_result rated; /* a rate step's charges, recorded with its outcome */
    struct xd_buf ack;           /* the target's ack program on its 2xx answer (reconcile/) */
    struct xd_outcome_rec rec;
    int done;           /* rec is filled */
    struct job *next;   /* in the outcome list */
};

/* Outcomes handed to the store together. */
struct batch {
    struct xd_append a;
    struct xd_outcome_rec *recs;
    struct job **jobs;
    size_t n;
    struct batch *next;
};

/* One dispatcher thread and what it owns. */
struct lane {
    struct xd_dispatcher *d;
    unsigned index;
    struct xd_http_client *http;
    struct target **targets; /* this lane's share of d->targets */
    size_t ntargets;
    struct xd_jq **maps;    /* per route and step: cfg->routes[i].steps[k] at maps[d->off[i] + k] */
    struct xd_jq **filters; /* per route */
    struct xd_acks *acks;   /* its targets' ack programs (NULL: none) */

    struct job *outcomes;   /* finished attempts waiting to be submitted */
    size_t noutcomes;

    pthread_mutex_t mu;     /* guards committed, and http for the committer's wakeups */
    struct batch *committed;
    atomic_int batches_out; /* submitted to the store, callback not yet run */
    atomic_int nudged;
    pthread_t thread;
    int started;
};

struct xd_dispatcher {
    const struct xd_config *cfg;
    const struct xd_routes *routes;
    struct xd_store *store;
    struct target *targets;         /* every target, the local one last */
    size_t ntargets;
    struct xd_target local_cfg;     /* the local target ("") that runs rate steps */
    struct xd_rate_step *rate_step; /* NULL when no route rates; used by one lane only */
    size_t *off;                    /* per route: index of its first step in a lane's maps */
    struct lane lanes[LANES_MAX];
    size_t nlanes;

    pthread_mutex_t mu;             /* guards s2c */
    struct xd_s2c_stats s2c;
    atomic_int stopping;
    unsigned drain_ms;
};

/* ---- helpers ---- */

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

/* Is this delivery, or another of its key, in flight already? */
static int busy(const struct target *t, int64_t id, uint64_t key_hash)
{
    for (size_t i = 0; i < t->ninflight; i++)
        if (t->inflight[i]->d.id == id || t->inflight[i]->key_hash == key_hash)
            return 1;
    return 0;
}

static void job_free(struct job *j)
{
    xd_rate_result_dispose(&j->rated);
    xd_stored_dlv_dispose(&j->d);
    xd_buf_dispose(&j->payload);
    xd_buf_dispose(&j->error);
    xd_buf_dispose(&j->ack);
    free(j);
}

/* Fills j's outcome record; the job then waits in the outcome list. */
static void finish(struct lane *l, struct job *j, int state, int attempted,
                   const char *outcome, int status, uint64_t latency_us, const char *error_class)
{
    struct xd_outcome_rec *r = &j->rec;
    memset(r, 0, sizeof *r);
    r->delivery_id = j->d.id;
    r->state = state;
    r->count_attempt = attempted;
    r->at_ms = j->started_ms;
    r->status = status;
    r->latency_us = (int64_t)latency_us;
    r->outcome = outcome;
    r->error = j->error.len ? j->error.data : NULL;
    r->error_class = error_class;
    r->next_ms = j->d.next_ms;
    r->ack = j->ack.len ? j->ack.data : NULL;
    r->ack_len = j->ack.len;
    if (state == XD_DLV_DEAD && j->payload.len) {
        r->payload = j->payload.data;
        r->payload_len = j->payload.len;
    }
    if (state == XD_DLV_DONE) {
        const struct xd_route *rt = xd_routes_find(l->d->routes, j->d.route, NULL);
        if (rt)
            xd_routes_next(rt, j->d.step, &r->next);
        /* After a rate step the next step delivers each charge, not the event. */
        r->charges = j->rated.v;
        r->ncharges = j->rated.n;
        r->next_per_charge = j->t->local;
    }
    if (state == XD_DLV_DEAD)
        r->exception = j->t->local ? "rating" : "dead_letter";
    /*
     * Exceptions open only with a dead letter, which keeps its error (a replay
     * does not clear it): a first attempt with no error kept has none to resolve.
     */
    r->no_exception = j->d.attempts == 0 && !j->d.last_error;
    j->done = 1;
    j->next = l->outcomes;
    l->outcomes = j;
    l->noutcomes++;
    struct xd_target_stats *st = &j->t->st;
    if (state == XD_DLV_DEAD) {
        st->dead++;
        char tid[33];
        xd_trace_id_for_event(j->d.event_id, j->d.traceparent, tid);
        xd_log_ev(XD_LOG_WARN, j->d.event_id, tid,
                  "delivery %lld (event %s, route %s, step %u, target %s) dead-lettered: %s",
                  (long long)j->d.id, j->d.event_id, j->d.route, j->d.step, j->t->cfg->name,
                  j->error.len ? j->error.data : outcome);
    }
}

static void observe_s2c(struct xd_dispatcher *d, double sec)
{
    static const double bounds[] = XD_S2C_BUCKETS;
    size_t b = 0;
    while (b < XD_NS2C && sec > bounds[b])
        b++;
    pthread_mutex_lock(&d->mu);
    if (b < XD_NS2C)
        d->s2c.buckets[b]++;
    d->s2c.count++;
    d->s2c.sum_s += sec < 0 ? 0 : sec;
    pthread_mutex_unlock(&d->mu);
}

void xd_dispatch_s2c(struct xd_dispatcher *d, struct xd_s2c_stats *out)
{
    pthread_mutex_lock(&d->mu);
    *out = d->s2c;
    pthread_mutex_unlock(&d->mu);
}

/* ---- a completed attempt ---- */

/*
 * Turns the target's answer into the delivery's next state: DONE on OK; on
 * RETRY another attempt after a backoff (or the target's Retry-After, if
 * longer) unless the attempts are used up; DEAD on FAIL.
 */
static void on_http_done(void *user, const struct xd_http_result *res)
{
    struct job *j = user;
    struct target *t = j->t;
    const struct xd_retry *retry = &t->cfg->retry;
    struct xd_http_result judged;
    res = xd_http_target_result(&t->ht, res, &judged); /* OAuth2: a 401 renews the token */
    xd_circuit_record(&t->ht.circuit, j->permit, res->outcome, (uint64_t)xd_mono_ms());

    xd_buf_reset(&j->error);
    if (res->xport != XD_XPORT_NONE) {
        xd_buf_puts(&j->error, res->error);
    } else if (res->outcome != XD_OUT_OK) {
        xd_buf_printf(&j->error, "HTTP %ld", res->status);
        if (res->body_len) {
            size_t n = res->body_len < ERROR_TEXT_MAX ? res->body_len : ERROR_TEXT_MAX;
            xd_buf_puts(&j->error, ": ");
            xd_buf_append(&j->error, res->body, n);
        }
    }
    if (res->xport == XD_XPORT_NONE) {
        static const double bounds[] = XD_LATENCY_BUCKETS;
        double sec = (double)res->latency_us / 1e6;
        size_t b = 0;
        while (b < XD_NLATENCY && sec > bounds[b])
            b++;
        if (b < XD_NLATENCY)
            t->st.latency_buckets[b]++;
        t->st.latency_us_sum += res->latency_us;
        t->st.latency_count++;
    }

    int attempted = res->xport != XD_XPORT_CANCELLED;
    unsigned attempts = j->d.attempts + (unsigned)attempted;
    int state;
    const char *outcome = xd_outcome_name(res->outcome);
    switch (res->outcome) {
    case XD_OUT_OK:
        state = XD_DLV_DONE;
        t->st.ok++;
        xd_acks_run(t->l->acks, t->cfg->name, res->body, res->body_len, &j->ack);
        if (j->d.part && j->d.part[0] && j->occurred_ms)
            observe_s2c(t->l->d, (double)(xd_now_ms() - j->occurred_ms) / 1000.0);
        break;
    case XD_OUT_RETRY:
        t->st.retry++;
        if (attempts >= retry->max_attempts) {
            state = XD_DLV_DEAD;
            char *last = xd_buf_steal(&j->error);
            xd_buf_printf(&j->error, "gave up after %u attempts: %s", attempts, last ? last : "");
            free(last);
            break;
        }
        state = XD_DLV_PENDING;
        uint64_t wait = xd_backoff_ms(retry, attempts, xd_rand64, NULL);
        uint64_t after = 0;
        if (res->retry_after &&
            xd_retry_after_parse(res->retry_after, xd_now_ms() / 1000, &after) == 0)
            wait = xd_backoff_floor(retry, wait, after);
        j->d.next_ms = xd_now_ms() + (int64_t)wait;
        break;
    default:
        t->st.fail++;
        state = XD_DLV_DEAD;
        break;
    }
    finish(t->l, j, state, attempted, outcome, (int)res->status, res->latency_us,
           res->error_class);
}

/*
 * A job that ends without a request (filtered out, mapping failed, ...) says
 * nothing about the target: it gives back the breaker's probe slot if it
 * held it, or the half-open breaker would wait for that probe forever.
 */
static void no_request(struct job *j)
{
    xd_circuit_release(&j->t->ht.circuit, j->permit);
    j->permit = XD_PERMIT_NORMAL;
}

/* A delivery that cannot be attempted (bad mapping, unsupported target): dead at once. */
static void fail_now(struct lane *l, struct job *j, const char *error_class)
{
    no_request(j);
    j->t->st.fail++;
    finish(l, j, XD_DLV_DEAD, 1, "fail", 0, 0, error_class);
}

/* ---- starting an attempt ---- */

static struct xd_jq *map_of(struct lane *l, size_t route, unsigned step)
{
    return l->maps[l->d->off[route] + step];
}

/*
 * A rate step: the event's charges, recorded with the step's outcome; the
 * next step is then created once per charge. An event no card rates (or
 * that cannot be rated) is dead-lettered with an exception: once the card
 * is fixed, replaying it rates it.
 */
static void rate(struct lane *l, struct target *t, struct job *j, const cJSON *ev)
{
    struct xd_dispatcher *d = l->d;
    int type = -1;
    const cJSON *ty = cJSON_GetObjectItemCaseSensitive(ev, "type");
    if (cJSON_IsString(ty))
        type = xd_event_type_parse(ty->valuestring);
    if (!d->rate_step || type < 0) {
        xd_buf_puts(&j->error, d->rate_step ? "event has no known type" : "no rate cards");
        fail_now(l, j, "rating");
        return;
    }
    int rc = xd_rate_step_run(d->rate_step, d->store, ev, (enum xd_event_type)type,
                              j->d.event_seq, &j->rated, &j->error);
    if (rc == XD_ENOTFOUND || rc == XD_EINVAL || rc == XD_ELIMIT) {
        fail_now(l, j, rc == XD_ENOTFOUND ? "no_rate_card" : "rating");
        return;
    }
    if (rc < 0) {
        /* The store could not answer the ledger's questions: try again shortly. */
        xd_buf_printf(&j->error, "rating: %s", xd_strerror(rc));
        j->d.next_ms = xd_now_ms() + 1000;
        finish(l, j, XD_DLV_PENDING, 0, "retry", 0, 0, "internal");
        return;
    }
    t->st.ok++;
    finish(l, j, XD_DLV_DONE, 1, "ok", 0, 0, NULL);
}

/*
 * Prepares and sends one delivery. The stored event is parsed once here; the
 * filter and the map both run on that tree.
 */
static void start(struct lane *l, struct target *t, struct job *j)
{
    struct xd_dispatcher *d = l->d;
    size_t ri;
    const struct xd_route *rt = xd_routes_find(d->routes, j->d.route, &ri);
    j->started_ms = xd_now_ms();
    if (!rt || j->d.step >= rt->nsteps) {
        xd_buf_printf(&j->error, "route '%s' step %u is not in the config any more", j->d.route,
                      j->d.step);
        fail_now(l, j, "config");
        return;
    }
    struct xd_json_limits lim = {0};
    struct xd_json_error jerr;
    cJSON *ev = NULL;
    if (xd_json_parse(j->d.body, strlen(j->d.body), &lim, &ev, &jerr) < 0) {
        xd_buf_printf(&j->error, "stored event unreadable at byte %zu: %s", jerr.offset,
                      jerr.message);
        fail_now(l, j, "internal");
        return;
    }
    free(j->d.body); /* the tree has it now */
    j->d.body = NULL;

    /* The route's filter decides first, whatever its first step is (a rate step too). */
    if (j->d.step == 0 && l->filters[ri]) {
        int truthy = 0;
        if (xd_jq_test(l->filters[ri], ev, &truthy, &j->error) < 0) {
            cJSON_Delete(ev);
            xd_buf_printf(&j->error, " (route %s filter)", rt->name);
            fail_now(l, j, "jq");
            return;
        }
        if (!truthy) {
            cJSON_Delete(ev);
            no_request(j);
            t->st.filtered++;
            finish(l, j, XD_DLV_SKIPPED, 0, "filtered", 0, 0, NULL);
            return;
        }
    }

    if (t->local) {
        rate(l, t, j, ev);
        cJSON_Delete(ev);
        return;
    }
    if (j->d.part && j->d.part[0]) {
        /* A delivery of one charge: the charge is what is mapped and sent. */
        const cJSON *occ = cJSON_GetObjectItemCaseSensitive(ev, "occurred_at");
        if (cJSON_IsString(occ))
            xd_parse_time_ms(occ->valuestring, &j->occurred_ms);
        cJSON_Delete(ev);
        ev = NULL;
        if (!j->d.charge ||
            xd_json_parse(j->d.charge, strlen(j->d.charge), &lim, &ev, &jerr) < 0) {
            xd_buf_printf(&j->error, "charge %s is not recorded", j->d.part);
            fail_now(l, j, "internal");
            return;
        }
    }

    struct xd_jq *map = map_of(l, ri, j->d.step);
    int rc = map ? xd_jq_map(map, ev, &j->payload, &j->error) : xd_json_write(&j->payload, ev);
    cJSON_Delete(ev);
    if (rc < 0 && map && xd_hold_wanted(d->store, &j->error)) { /* master data: wait for it */
        no_request(j);
        finish(l, j, XD_DLV_HELD, 0, "held", 0, 0, "master_data");
        return;
    }
    if (rc < 0) {
        if (map) {
            char *msg = xd_buf_steal(&j->error);
            xd_buf_printf(&j->error, "jq: %s (route %s, step %u map)", msg ? msg : "", rt->name,
                          j->d.step);
            free(msg);
        }
        fail_now(l, j, map ? "jq" : "internal");
        return;
    }
    if (!t->http && !t->nats) {
        xd_buf_printf(&j->error, "target %s: type %s is not supported yet", t->cfg->name,
                      t->cfg->type);
        fail_now(l, j, "config");
        return;
    }

    char idem[XD_IDEM_KEY_LEN + 1];
    struct xd_trace trace;
    xd_idempotency_key(idem, j->d.event_id, j->d.route, j->d.step, t->cfg->name);
    xd_trace_for_event(j->d.event_id, j->d.traceparent, &trace);
    /* A charge is sent with its charge id as the key: it can never be billed twice. */
    const char *key = j->d.part && j->d.part[0] ? j->d.part : idem;
    rc = t->nats ? xd_nats_target_submit(t->nats, j->payload.data, j->payload.len, key, &trace,
                                         on_http_done, j)
                 : xd_http_target_submit(l->http, &t->ht, j->payload.data, j->payload.len, key,
                                         &trace, on_http_done, j);
    if (rc < 0) {
        /* Not sent: it stays pending and is fetched again shortly. */
        xd_circuit_release(&t->ht.circuit, j->permit);
        xd_buf_printf(&j->error, "not sent: %s", xd_strerror(rc));
        j->d.next_ms = xd_now_ms() + 1000;
        finish(l, j, XD_DLV_PENDING, 0, "retry", 0, 0, "internal");
    }
}

struct fetch_ctx {
    struct lane *l;
    struct target *t;
};

/* A row already in flight (or of a key in flight), or no room: not copied. */
static int fetch_skip(void *ctx, int64_t id, const char *bkey)
{
    struct fetch_ctx *c = ctx;
    return c->t->ninflight >= INFLIGHT_MAX || busy(c->t, id, hash_str(bkey ? bkey : ""));
}

static void fetched(void *ctx, struct xd_stored_dlv *row)
{
    struct fetch_ctx *c = ctx;
    struct target *t = c->t;
    uint64_t kh = hash_str(row->bkey);
    enum xd_permit permit = t->http || t->nats
                                ? xd_circuit_allow(&t->ht.circuit, (uint64_t)xd_mono_ms())
                                : XD_PERMIT_NORMAL;
    if (permit == XD_PERMIT_DENY) {
        xd_stored_dlv_dispose(row);
        return;
    }
    struct job *j = calloc(1, sizeof *j);
    if (!j) {
        xd_circuit_release(&t->ht.circuit, permit);
        xd_stored_dlv_dispose(row);
        return;
    }
    j->t = t;
    j->d = *row; /* takes the row's strings */
    j->key_hash = kh;
    j->permit = permit;
    xd_buf_init(&j->payload);
    xd_buf_init(&j->error);
    t->inflight[t->ninflight++] = j;
    start(c->l, t, j);
}

/*
 * Fetches and starts what target t may send now. Returns 1 when more may be
 * waiting. With attempts in flight it waits until a quarter of the slots are
 * free: every fetch reads the rows in flight again, so fetching for one free
 * slot at a time would cost a page per delivery.
 */
static int pump(struct lane *l, struct target *t, int64_t mono)
{
    if (t->quiet_until > mono || t->ninflight >= INFLIGHT_MAX)
        return 0;
    size_t room = INFLIGHT_MAX - t->ninflight;
    if (t->ninflight && room < INFLIGHT_MAX / 4)
        return 0;
    if (t->http && !xd_http_target_ready(&t->ht)) { /* OAuth2: waiting for a token */
        t->quiet_until = mono + 200;
        return 0;
    }
    if ((t->http || t->nats) && xd_circuit_state(&t->ht.circuit) != XD_CIRCUIT_CLOSED) {
        /*
         * Open: nothing before the cool-down ends. Half-open with the probe out
         * (UINT64_MAX): nothing until it is answered, which wakes this loop;
         * fetching meanwhile would only be denied, page after page.
         */
        uint64_t probe = xd_circuit_next_probe_ms(&t->ht.circuit);
        if (probe > (uint64_t)mono) {
            if (probe != UINT64_MAX)
                t->quiet_until = (int64_t)probe;
            return 0;
        }
    }
    struct fetch_ctx c = {.l = l, .t = t};
    size_t limit = room + t->ninflight + FETCH_EXTRA;
    int rc = xd_store_fetch_ready(l->d->store, t->cfg->name, xd_now_ms(), limit, fetch_skip,
                                  fetched, &c);
    if (rc < 0) {
        xd_warn("dispatch: cannot read deliveries for %s: %s", t->cfg->name, xd_strerror(rc));
        t->quiet_until = mono + STORE_PAUSE_MS;
        return 0;
    }
    return (size_t)rc >= limit;
}

/* ---- recording outcomes ---- */

static void batch_committed(struct xd_append *a, void *arg)
{
    (void)a;
    struct batch *b = arg;
    struct lane *l = b->jobs[0]->t->l;
    pthread_mutex_lock(&l->mu);
    b->next = l->committed;
    l->committed = b;
    if (l->http)
        xd_http_wakeup(l->http);
    atomic_fetch_sub(&l->batches_out, 1);
    pthread_mutex_unlock(&l->mu);
}

/* Hands every finished attempt to the store as one batch. */
static void flush_outcomes(struct lane *l)
{
    if (!l->outcomes)
        return;
    struct batch *b = calloc(1, sizeof *b);
    size_t n = l->noutcomes;
    if (b) {
        b->recs = calloc(n, sizeof *b->recs);
        b->jobs = calloc(n, sizeof *b->jobs);
    }
    if (!b || !b->recs || !b->jobs) {
        if (b) {
            free(b->recs);
            free(b->jobs);
            free(b);
        }
        return; /* try again next round */
    }
    size_t i = n;
    for (struct job *j = l->outcomes; j; j = j->next) {
        i--;
        b->jobs[i] = j; /* oldest first */
        b->recs[i] = j->rec;
    }
    b->n = n;
    l->outcomes = NULL;
    l->noutcomes = 0;
    b->a.outcomes = b->recs;
    b->a.noutcomes = n;
    b->a.done = batch_committed;
    b->a.arg = b;
    b->a.lazy = 1; /* lost in a crash, the attempts are made again with the same keys */
    atomic_fetch_add(&l->batches_out, 1);
    int rc = xd_store_submit(l->d->store, &b->a);
    if (rc < 0) {
        b->a.rc = rc;
        batch_committed(&b->a, b);
    }
}

static void remove_inflight(struct target *t, struct job *j)
{
    for (size_t i = 0; i < t->ninflight; i++) {
        if (t->inflight[i] == j) {
            t->inflight[i] = t->inflight[--t->ninflight];
            return;
        }
    }
}

/* Committed (or failed) batches: their jobs are finished for good. Returns how many. */
static size_t reap(struct lane *l, int64_t mono)
{
    size_t reaped = 0;
    pthread_mutex_lock(&l->mu);
    struct batch *b = l->committed;
    l->committed = NULL;
    pthread_mutex_unlock(&l->mu);
    while (b) {
        struct batch *next = b->next;
        if (b->a.rc < 0) {
            /*
             * Not recorded: the deliveries are still pending in the store and
             * will be fetched and sent again (same Idempotency-Key). Give the
             * store a moment before trying.
             */
            xd_warn("dispatch: %zu outcome(s) not recorded: %s; they will be retried", b->n,
                    xd_strerror(b->a.rc));
            for (size_t i = 0; i < l->ntargets; i++)
                l->targets[i]->quiet_until = mono + STORE_PAUSE_MS;
        }
        for (size_t i = 0; i < b->n; i++) {
            remove_inflight(b->jobs[i]->t, b->jobs[i]);
            job_free(b->jobs[i]);
        }
        free(b->recs);
        free(b->jobs);
        free(b);
        b = next;
        reaped++;
    }
    return reaped;
}

static size_t total_inflight(const struct lane *l)
{
    size_t n = 0;
    for (size_t i = 0; i < l->ntargets; i++)
        n += l->targets[i]->ninflight;
    return n;
}

/* ---- the thread ---- */

static void *dispatch_main(void *arg)
{
    struct lane *l = arg;
    struct xd_dispatcher *d = l->d;
    char name[16];
    snprintf(name, sizeof name, "xd-dispatch-%u", l->index);
    pthread_setname_np(pthread_self(), name);
    int64_t stop_deadline = 0;
    for (;;) {
        int64_t mono = xd_mono_ms();
        /* Committed outcomes free slots and may have created next steps: look again. */
        int more = reap(l, mono) > 0;
        int stopping = atomic_load(&d->stopping);
        if (stopping) {
            if (!stop_deadline)
                stop_deadline = mono + d->drain_ms;
            if ((total_inflight(l) == 0 && !l->outcomes) || mono > stop_deadline)
                break;
        }
        if (!stopping) {
            atomic_store(&l->nudged, 0);
            for (size_t i = 0; i < l->ntargets; i++)
                more |= pump(l, l->targets[i], mono);
        }
        for (size_t i = 0; i < l->ntargets; i++) /* NATS publishes that ended */
            xd_nats_target_poll(l->targets[i]->nats);
        flush_outcomes(l);
        int wait = more || atomic_load(&l->nudged) ? 0 : IDLE_POLL_MS;
        if (stopping)
            wait = 10;
        xd_http_run(l->http, wait);
    }
    return NULL;
}

static void nats_wake(void *d)
{
    xd_dispatch_nudge(d);
}

static int target_setup(struct xd_dispatcher *d, struct target *t, const struct xd_target *cfg,
                        struct xd_buf *err)
{
    t->cfg = cfg;
    t->st.target = cfg->name;
    t->http = cfg->type && strcmp(cfg->type, "http") == 0;
    if (!t->http) {
        xd_circuit_init(&t->ht.circuit, &(struct xd_circuit_opts){0});
        if (cfg->type && strcmp(cfg->type, "nats") == 0)
            return xd_nats_target_create(cfg, nats_wake, d, &t->nats, err);
        return 0;
    }
    return xd_http_target_init(&t->ht, cfg, err);
}

static void lane_free(struct lane *l, const struct xd_config *cfg, const size_t *off)
{
    if (l->maps) {
        for (size_t i = 0; i < cfg->nroutes; i++) {
            xd_jq_destroy(l->filters[i]);
            for (size_t k = 0; k < cfg->routes[i].nsteps; k++)
                xd_jq_destroy(l->maps[off[i] + k]);
        }
    }
    free(l->maps);
    free(l->filters);
    free(l->targets);
    xd_acks_destroy(l->acks);
    xd_http_client_destroy(l->http);
    pthread_mutex_destroy(&l->mu);
}

static void dispatcher_free(struct xd_dispatcher *d)
{
    for (size_t i = 0; i < d->nlanes; i++)
        lane_free(&d->lanes[i], d->cfg, d->off);
    for (size_t i = 0; i < d->ntargets; i++) {
        if (d->targets[i].http)
            xd_http_target_dispose(&d->targets[i].ht);
        xd_nats_target_destroy(d->targets[i].nats);
    }
    free(d->targets);
    xd_rate_step_destroy(d->rate_step);
    free(d->off);
    pthread_mutex_destroy(&d->mu);
    free(d);
}

static int routes_rate(const struct xd_config *cfg)
{
    for (size_t i = 0; i < cfg->nroutes; i++)
        for (size_t k = 0; k < cfg->routes[i].nsteps; k++)
            if (cfg->routes[i].steps[k].rate)
                return 1;
    return 0;
}

/* Compiles every route's filter and every step's map for one lane (jq state is per thread). */
static int compile_programs(struct lane *l, struct xd_buf *err)
{
    const struct xd_config *cfg = l->d->cfg;
    const size_t *off = l->d->off;
    size_t total = off[cfg->nroutes];
    l->filters = calloc(cfg->nroutes + 1, sizeof *l->filters);
    l->maps = calloc(total + 1, sizeof *l->maps);
    if (!l->filters || !l->maps)
        return XD_ENOMEM;
    for (size_t i = 0; i < cfg->nroutes; i++) {
        const struct xd_route *rt = &cfg->routes[i];
        int rc;
        if (rt->filter) {
            rc = xd_jq_compile(rt->filter, cfg, &l->filters[i], err);
            if (rc < 0) {
                xd_buf_printf(err, " (route %s filter)", rt->name);
                return rc;
            }
        }
        for (size_t k = 0; k < rt->nsteps; k++) {
            if (!rt->steps[k].map)
                continue;
            rc = xd_jq_compile(rt->steps[k].map, cfg, &l->maps[off[i] + k], err);
            if (rc < 0) {
                xd_buf_printf(err, " (route %s step %zu map)", rt->name, k);
                return rc;
            }
        }
    }
    return 0;
}

/* A lane's targets, its programs and its HTTP client; its thread is started later. */
static int lane_setup(struct xd_dispatcher *d, struct lane *l, struct xd_buf *err)
{
    pthread_mutex_init(&l->mu, NULL);
    l->targets = calloc(d->ntargets + 1, sizeof *l->targets);
    if (!l->targets)
        return XD_ENOMEM;
    for (size_t i = l->index; i < d->ntargets; i += d->nlanes) {
        d->targets[i].l = l;
        l->targets[l->ntargets++] = &d->targets[i];
    }
    int rc = compile_programs(l, err);
    if (rc == 0)
        rc = xd_acks_create(l->d->cfg, &l->acks, err);
    if (rc < 0)
        return rc;
    struct xd_http_client_opts ho = {
        .max_connections = (unsigned)(l->ntargets ? l->ntargets : 1) * INFLIGHT_MAX,
        .max_host_connections = INFLIGHT_MAX,
    };
    rc = xd_http_client_create(&ho, &l->http);
    if (rc < 0) {
        xd_buf_puts(err, "cannot create the HTTP client");
        return rc;
    }
    return 0;
}

int xd_dispatch_start(const struct xd_config *cfg, const struct xd_routes *routes,
                      struct xd_store *store, struct xd_dispatcher **out, struct xd_buf *err)
{
    struct xd_dispatcher *d = calloc(1, sizeof *d);
    if (!d)
        return XD_ENOMEM;
    d->cfg = cfg;
    d->routes = routes;
    d->store = store;
    pthread_mutex_init(&d->mu, NULL);
    int rc = XD_ENOMEM;
    d->targets = calloc(cfg->ntargets + 1, sizeof *d->targets); /* + the local target */
    d->off = calloc(cfg->nroutes + 1, sizeof *d->off);
    if (!d->targets || !d->off)
        goto fail;
    for (size_t i = 0; i < cfg->nroutes; i++)
        d->off[i + 1] = d->off[i] + cfg->routes[i].nsteps;
    for (size_t i = 0; i < cfg->ntargets; i++) {
        d->ntargets++;
        rc = target_setup(d, &d->targets[i], &cfg->targets[i], err);
        if (rc < 0)
            goto fail;
    }
    if (routes_rate(cfg)) {
        rc = xd_rate_step_create(cfg, &d->rate_step, err);
        if (rc < 0)
            goto fail;
        struct target *t = &d->targets[d->ntargets++];
        d->local_cfg.name = "";
        d->local_cfg.type = "local";
        d->local_cfg.retry.max_attempts = 8;
        d->local_cfg.retry.initial_backoff_ms = 1000;
        d->local_cfg.retry.max_backoff_ms = 60000;
        t->cfg = &d->local_cfg;
        t->local = 1;
        t->st.target = "(rate)";
        xd_circuit_init(&t->ht.circuit, &(struct xd_circuit_opts){0});
    }
    /* One lane per target, up to LANES_MAX; further targets share them round-robin. */
    d->nlanes = d->ntargets < LANES_MAX ? d->ntargets : LANES_MAX;
    if (d->nlanes == 0)
        d->nlanes = 1;
    for (size_t i = 0; i < d->nlanes; i++) {
        d->lanes[i].d = d;
        d->lanes[i].index = (unsigned)i;
        rc = lane_setup(d, &d->lanes[i], err);
        if (rc < 0) {
            d->nlanes = i + 1;
            goto fail;
        }
    }
    for (size_t i = 0; i < d->nlanes; i++) {
        rc = pthread_create(&d->lanes[i].thread, NULL, dispatch_main, &d->lanes[i]);
        if (rc != 0) {
            xd_buf_printf(err, "cannot start a dispatcher thread: %s", strerror(rc));
            atomic_store(&d->stopping, 1);
            for (size_t k = 0; k < i; k++) {
                xd_http_wakeup(d->lanes[k].http);
                pthread_join(d->lanes[k].thread, NULL);
            }
            rc = XD_ENOMEM;
            goto fail;
        }
        d->lanes[i].started = 1;
    }
    *out = d;
    return 0;
fail:
    dispatcher_free(d);
    return rc;
}

void xd_dispatch_nudge(struct xd_dispatcher *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < d->nlanes; i++) {
        struct lane *l = &d->lanes[i];
        if (atomic_exchange(&l->nudged, 1) == 0)
            xd_http_wakeup(l->http);
    }
}

/* After its thread ended: cancels what is in flight and records what is left. */
static void lane_stop(struct lane *l)
{
    /* Outcome batches still with the store must come back before anything is freed. */
    while (atomic_load(&l->batches_out) > 0)
        nanosleep(&(struct timespec){0, 1000000}, NULL);
    for (size_t i = 0; i < l->ntargets; i++) { /* NATS publishes in flight end: outcomes */
        xd_nats_target_destroy(l->targets[i]->nats);
        l->targets[i]->nats = NULL;
    }
    /*
     * Whatever is still in flight is cancelled by destroying the client (its
     * callbacks run now); outcomes are then recorded synchronously.
     */
    pthread_mutex_lock(&l->mu);
    struct xd_http_client *http = l->http;
    l->http = NULL;
    pthread_mutex_unlock(&l->mu);
    xd_http_client_destroy(http);
    if (l->outcomes) {
        size_t n = l->noutcomes, i = n;
        struct xd_outcome_rec *recs = calloc(n, sizeof *recs);
        if (recs) {
            for (struct job *j = l->outcomes; j; j = j->next)
                recs[--i] = j->rec;
            struct xd_append a = {.outcomes = recs, .noutcomes = n};
            xd_store_append(l->d->store, &a);
            free(recs);
        }
    }
    for (struct job *j = l->outcomes, *next; j; j = next) {
        next = j->next;
        remove_inflight(j->t, j);
        job_free(j);
    }
    l->outcomes = NULL;
    reap(l, xd_mono_ms());
    for (size_t i = 0; i < l->ntargets; i++) /* jobs whose outcome never came */
        while (l->targets[i]->ninflight)
            job_free(l->targets[i]->inflight[--l->targets[i]->ninflight]);
}

void xd_dispatch_stop(struct xd_dispatcher *d, unsigned drain_ms)
{
    if (!d)
        return;
    d->drain_ms = drain_ms;
    atomic_store(&d->stopping, 1);
    for (size_t i = 0; i < d->nlanes; i++)
        xd_http_wakeup(d->lanes[i].http);
    for (size_t i = 0; i < d->nlanes; i++)
        pthread_join(d->lanes[i].thread, NULL);
    for (size_t i = 0; i < d->nlanes; i++)
        lane_stop(&d->lanes[i]);
    dispatcher_free(d);
}

void xd_dispatch_stats(struct xd_dispatcher *d,
                       void (*cb)(void *ctx, const struct xd_target_stats *st), void *ctx)
{
    for (size_t i = 0; i < d->ntargets; i++) {
        struct xd_target_stats st = d->targets[i].st; /* counters: a torn read is harmless */
        st.inflight = (unsigned)d->targets[i].ninflight;
        st.circuit = xd_circuit_state(&d->targets[i].ht.circuit);
        cb(ctx, &st);
    }
}
