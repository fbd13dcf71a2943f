/*
 * The store, driver-agnostic: the intake queue, the committer thread that
 * group-commits it, the pool of read connections, and the public functions of
 * store.h. All SQL lives in the driver (sqlite.c, postgres.c, behind store_int.h).
 *
 * Group commit. Submitters append requests to a queue (one mutex, one
 * condvar) and return. One committer thread repeatedly takes everything
 * queued (up to GROUP_MAX_EVENTS events, so a group's latency stays bounded),
 * drops the mutex, and writes the group as one transaction:
 *
 *   BEGIN IMMEDIATE
 *     per request: SAVEPOINT; insert each event (accepted / duplicate /
 *                  conflict by event_id and hash); ROLLBACK TO the savepoint
 *                  if any event conflicted; RELEASE
 *   COMMIT                                   -- one fsync for the whole group
 *
 * and only then sets each request's rc and calls its done callback. While it
 * writes, new requests pile up in the queue and become the next group, so
 * the more concurrent submitters, the more requests share one fsync.
 *
 * Durability invariant: a request's done callback runs with rc = 0 only after
 * the COMMIT containing it returned success (with synchronous=FULL: after the
 * fsync). If BEGIN, any insert or COMMIT fails, the whole group is rolled back
 * and every request in it gets the same error (XD_EFULL, XD_EREADONLY,
 * XD_EUNAVAIL, XD_EIO...): nothing is ever acknowledged that is not on disk,
 * and no request is ever half stored. A conflicting request (or one whose
 * data the database refuses) rolls back to its own savepoint and does not
 * disturb the others in its group.
 *
 * Lazy groups. A group of nothing but lazy requests (delivery outcomes,
 * which are redone if lost) commits without waiting for the disk.
 *
 * Recovery. After a failed group the writer connection is closed and reopened
 * for the next one, so a connection broken by an I/O error does not linger.
 * While writes are failing the idle committer probes once a second with a
 * tiny real commit; xd_store_ready() reports the last outcome, so readiness
 * returns by itself when the disk has space or is writable again.
 *
 * Reads use separate read-only connections from a small pool (WAL lets them
 * run beside the writer); any thread may read, each read holds one pooled
 * connection for its duration.
 */
#include "store/store_int.h"
#include "store/holds.h"
#include "audit/chain.h"
#include "core/buf.h"
#include "core/config.h"
#include "core/err.h"
#include "core/log.h"
#include "ingest/event.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define GROUP_MAX_EVENTS  10000 /* a group takes requests until this many events */
#define PROBE_INTERVAL_MS 1000  /* write probe while writes are failing */
#define READERS_IDLE_MAX  32    /* idle read connections kept; extras are closed */

static const struct xd_store_driver *const drivers[] = {
    &xd_store_sqlite,
    &xd_store_postgres,
};

#define JOBS_MAX 16 /* periodic jobs whose locks one process may hold at once */

struct xd_store {
    const struct xd_store_driver *drv;
    struct xd_store_opts opts; /* owned copies, immutable after open */

    /* The intake queue, guarded by mu. */
    pthread_mutex_t mu;
    pthread_cond_t work;     /* queue became non-empty, or stopping */
    struct xd_append *head;  /* oldest queued request */
    struct xd_append **tail; /* where the next one is linked */
    int stopping;            /* no more submits; the committer drains and exits */

    /* Which deliveries a new event starts; set before intake begins. */
    xd_planner_fn planner;
    void *planner_ctx;

    /* The committer's own; no lock. */
    pthread_t committer;
    int committer_started;
    struct xd_store_conn *w; /* writer; NULL after a failure until reopened */
    char lastmsg[256];       /* why the last group or probe failed */

    _Atomic int write_rc; /* 0, or the error of the last failed group or probe */
    _Atomic uint64_t n_groups, n_requests, n_events, n_failed;

    /* Idle read connections, guarded by rmu. */
    pthread_mutex_t rmu;
    struct xd_store_conn *idle[READERS_IDLE_MAX];
    size_t nidle;
    unsigned rgen; /* bumped when readers must be reopened; older ones are closed */

    /* Periodic job locks (xd_store_try_job_lock), guarded by jmu. */
    pthread_mutex_t jmu;
    struct xd_store_conn *jobs; /* the session that holds them (drivers with job_lock) */
    char *held[JOBS_MAX];       /* names held by this process */
};

/* A read connection taken from the pool, and the pool generation it belongs to. */
struct reader {
    struct xd_store_conn *c;
    unsigned gen;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- the writer side (committer thread only) ---- */

/* Keeps the reason for the last write failure (the connection may be closed next). */
static void note_failure(struct xd_store *s, const char *what, int rc)
{
    const char *why = s->w ? s->drv->errmsg(s->w) : xd_strerror(rc);
    snprintf(s->lastmsg, sizeof s->lastmsg, "%s: %s", what, why);
}

/* Closes the idle readers, and makes the busy ones close when they come back. */
static void drop_readers(struct xd_store *s)
{
    struct xd_store_conn *old[READERS_IDLE_MAX];
    pthread_mutex_lock(&s->rmu);
    size_t n = s->nidle;
    memcpy(old, s->idle, n * sizeof old[0]);
    s->nidle = 0;
    s->rgen++;
    pthread_mutex_unlock(&s->rmu);
    for (size_t i = 0; i < n; i++)
        s->drv->close(old[i]);
}

/* Drops a writer that saw a failure; the next group or probe reopens it. */
static void drop_writer(struct xd_store *s)
{
    if (!s->w)
        return;
    s->drv->rollback(s->w);
    s->drv->close(s->w);
    s->w = NULL;
}

/*
 * Reopens the writer after a failure. The readers are reopened too: a driver
 * may share per-file state between the connections of one process (SQLite
 * shares one WAL index per file; mapped read-only while the store was
 * read-only, it would keep a fresh writer read-only), and the fresh writer
 * must not inherit it.
 */
static int ensure_writer(struct xd_store *s)
{
    if (s->w)
        return 0;
    drop_readers(s);
    struct xd_buf err;
    xd_buf_init(&err);
    int rc = s->drv->open(&s->opts, XD_CONN_WRITER, &s->w, &err);
    if (rc < 0)
        snprintf(s->lastmsg, sizeof s->lastmsg, "open: %s", xd_buf_str(&err));
    xd_buf_dispose(&err);
    return rc;
}

/* Errors that belong to one request's data, not to the database: only it fails. */
static int request_error(int rc)
{
    return rc == XD_EINVAL || rc == XD_ETOOBIG;
}

/*
 * Writes one request inside the open transaction. A conflict (or data the
 * database refuses) rolls back this request alone and sets its rc; any other
 * error is returned and fails the whole group.
 */
#define PLAN_MAX 32 /* deliveries one event may start (routes matching its type) */

/* The first deliveries an event starts: its routes' first steps. */
struct plan {
    struct xd_dlv_init d[PLAN_MAX];
    size_t n;
};

static void plan_event(const struct xd_store *s, const struct xd_event *ev, struct plan *p)
{
    p->n = s->planner ? s->planner(s->planner_ctx, ev, p->d, PLAN_MAX) : 0;
}

/*
 * Inserts one event and, when it is new, the first deliveries of its routes:
 * those of pre when the caller planned them already, else planned here.
 */
static int write_event(struct xd_store *s, const struct xd_event *ev, int64_t received_ms,
                       const struct plan *pre, enum xd_append_result *res)
{
    const struct xd_store_driver *d = s->drv;
    int64_t seq = 0;
    int rc = d->append_one(s->w, ev, received_ms, res, &seq);
    if (rc < 0 || *res != XD_APPEND_ACCEPTED)
        return rc;
    struct plan own;
    if (!pre) {
        plan_event(s, ev, &own);
        pre = &own;
    }
    for (size_t i = 0; i < pre->n; i++) {
        rc = d->add_delivery(s->w, seq, ev->bkey, &pre->d[i], received_ms);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/*
 * Appends an audit entry inside the open transaction: its seq and prev come
 * from the last entry as this transaction sees it (entries appended earlier
 * in the same group included), so the chain follows commit order.
 */
static int write_audit(struct xd_store *s, struct xd_audit_op *op, int64_t at_ms)
{
    struct xd_audit_entry e = {
        .at_ms = at_ms,
        .actor = (char *)op->actor, /* borrowed: e is never disposed */
        .action = (char *)op->action,
        .object = (char *)(op->object ? op->object : ""),
        .detail = (char *)(op->detail ? op->detail : "{}"),
    };
    int64_t head = 0;
    int rc = s->drv->audit_head(s->w, &head, e.prev);
    if (rc < 0)
        return rc;
    e.seq = head + 1;
    rc = xd_audit_hash(&e, e.hash);
    if (rc < 0)
        return rc;
    rc = s->drv->audit_insert(s->w, &e);
    if (rc < 0 || !op->out)
        return rc;
    op->out->seq = e.seq;
    op->out->at_ms = e.at_ms;
    memcpy(op->out->prev, e.prev, sizeof e.prev);
    memcpy(op->out->hash, e.hash, sizeof e.hash);
    return 0;
}

/*
 * The events of a request through the driver's append_many (one statement
 * for all, not one each), then the first deliveries of the new ones. Sets
 * *outcome like the loop in write_request; returns an error for the group.
 */
static int write_events_many(struct xd_store *s, struct xd_append *a, int64_t received_ms,
                             int *outcome)
{
    const struct xd_store_driver *d = s->drv;
    enum xd_append_result *res = calloc(a->n, sizeof *res);
    int64_t *seq = calloc(a->n, sizeof *seq);
    int rc = XD_ENOMEM;
    if (!res || !seq)
        goto out;
    rc = d->append_many(s->w, a->events, a->n, received_ms, res, seq);
    if (request_error(rc)) {
        *outcome = rc;
        rc = 0;
        goto out;
    }
    if (rc < 0)
        goto out;
    for (size_t i = 0; i < a->n; i++) {
        if (a->results)
            a->results[i] = (unsigned char)res[i];
        if (res[i] == XD_APPEND_CONFLICT)
            *outcome = XD_ECONFLICT;
    }
    for (size_t i = 0; *outcome == 0 && s->planner && i < a->n; i++) {
        if (res[i] != XD_APPEND_ACCEPTED)
            continue;
        struct plan plan;
        plan_event(s, &a->events[i], &plan);
        for (size_t k = 0; k < plan.n; k++) {
            rc = d->add_delivery(s->w, seq[i], a->events[i].bkey, &plan.d[k], received_ms);
            if (request_error(rc)) {
                *outcome = rc;
                rc = 0;
                break;
            }
            if (rc < 0)
                goto out;
        }
    }
    rc = 0;
out:
    free(res);
    free(seq);
    return rc;
}

/*
 * One event and nothing else, which no route takes (plan: its deliveries):
 * on a driver whose statements are atomic by themselves its one INSERT
 * (refused or conflicting, it writes nothing) needs no savepoint. The common
 * single-event request skips two statements and the savepoint's bookkeeping
 * in SQLite.
 */
static int lone_event(const struct xd_store *s, const struct xd_append *a, const struct plan *plan)
{
    return s->drv->stmt_atomic && a->n == 1 && plan->n == 0 && !a->ncharges && !a->exc_op &&
           !a->counter_op && !a->audit_op && !a->ext_op && !a->noutcomes;
}

static int write_request(struct xd_store *s, struct xd_append *a, int64_t received_ms)
{
    const struct xd_store_driver *d = s->drv;
    int outcome = 0;
    /* A request of one event is planned once, before the savepoint it may not need. */
    struct plan plan;
    plan.n = 0;
    if (a->n == 1)
        plan_event(s, &a->events[0], &plan);
    int lone = lone_event(s, a, &plan);
    int rc = lone ? 0 : d->savepoint(s->w);
    if (rc < 0)
        return rc;
    int many = a->n > 1 && d->append_many; /* several events, one statement */
    if (many) {
        rc = write_events_many(s, a, received_ms, &outcome);
        if (rc < 0)
            return rc;
    }
    for (size_t i = 0; !many && i < a->n; i++) {
        enum xd_append_result res;
        rc = write_event(s, &a->events[i], received_ms, a->n == 1 ? &plan : NULL, &res);
        if (request_error(rc)) {
            outcome = rc;
            break;
        }
        if (rc < 0)
            return rc;
        if (a->results)
            a->results[i] = (unsigned char)res;
        if (res == XD_APPEND_CONFLICT)
            outcome = XD_ECONFLICT; /* keep going: results mark every conflicting event */
    }
    for (size_t i = 0; outcome == 0 && i < a->ncharges; i++) {
        int added = 0;
        rc = d->add_charge(s->w, &a->charges[i], a->charges[i].event_seq, received_ms, &added);
        if (request_error(rc)) {
            outcome = rc;
            break;
        }
        if (rc < 0)
            return rc;
        if (a->results)
            a->results[i] = (unsigned char)added;
    }
    if (outcome == 0 && a->exc_op) {
        int res = 0;
        rc = d->exc_op(s->w, a->exc_op, received_ms, &res);
        if (rc < 0 && !request_error(rc))
            return rc;
        outcome = rc < 0 ? rc : (res < 0 ? res : 0);
    }
    if (outcome == 0 && a->counter_op) {
        rc = d->next_counter(s->w, a->counter_op);
        if (rc < 0 && !request_error(rc))
            return rc;
        outcome = rc;
    }
    if (outcome == 0 && a->audit_op) {
        rc = write_audit(s, a->audit_op, received_ms);
        if (rc < 0 && !request_error(rc))
            return rc;
        outcome = rc;
    }
    if (outcome == 0 && a->ext_op) {
        rc = a->ext_op->fn(s->w, a->ext_op->arg, received_ms);
        if (rc < 0 && !request_error(rc))
            return rc;
        outcome = rc;
    }
    for (size_t i = 0; outcome == 0 && i < a->noutcomes; i++) {
        int applied = 0;
        rc = d->record_outcome(s->w, &a->outcomes[i], received_ms, &applied);
        if (request_error(rc)) {
            outcome = rc;
            break;
        }
        if (rc < 0)
            return rc;
        if (a->results)
            a->results[i] = (unsigned char)applied;
    }
    if (lone) {
        a->rc = outcome;
        return 0;
    }
    if (outcome < 0) {
        rc = d->rollback_to(s->w);
        if (rc < 0)
            return rc;
    }
    rc = d->release(s->w);
    if (rc < 0)
        return rc;
    a->rc = outcome;
    return 0;
}

/* Writes and commits a group; returns 0 or the error every request in it gets. */
static int write_group(struct xd_store *s, struct xd_append *g)
{
    const struct xd_store_driver *d = s->drv;
    int rc = ensure_writer(s);
    if (rc < 0)
        return rc;
    int lazy = 1;
    for (struct xd_append *a = g; a && lazy; a = a->next)
        lazy = a->lazy && a->n == 0 && a->ncharges == 0 && !a->exc_op && !a->counter_op;
    rc = d->begin(s->w, lazy ? XD_COMMIT_LAZY : XD_COMMIT_DURABLE);
    if (rc < 0)
        goto fail;
    int64_t received_ms = now_ms();
    for (struct xd_append *a = g; a; a = a->next) {
        rc = write_request(s, a, received_ms);
        if (rc < 0)
            goto fail;
    }
    rc = d->commit(s->w);
    if (rc < 0)
        goto fail;
    return 0;
fail:
    note_failure(s, "write", rc);
    drop_writer(s);
    return rc;
}

/* Records the outcome of a write; logs only when it changes. */
static void set_write_rc(struct xd_store *s, int rc)
{
    int prev = atomic_exchange(&s->write_rc, rc);
    if (rc < 0 && prev == 0)
        xd_warn("store: writes failing (%s): %s", xd_errname(rc), s->lastmsg);
    else if (rc < 0 && prev != rc)
        xd_warn("store: writes still failing (%s): %s", xd_errname(rc), s->lastmsg);
    else if (rc < 0)
        xd_debug("store: writes failing (%s): %s", xd_errname(rc), s->lastmsg);
    else if (rc == 0 && prev < 0)
        xd_info("store: writes work again");
}

/* Tells every request of a group its outcome (rc < 0: the group's error). */
static void group_done(struct xd_append *g, int rc)
{
    struct xd_append *next;
    for (struct xd_append *a = g; a; a = next) {
        next = a->next; /* a may be freed by its callback */
        a->next = NULL;
        if (rc < 0)
            a->rc = rc;
        a->done(a, a->arg);
    }
}

/* Commits a group, then (and only then) tells every request its outcome. */
static void run_group(struct xd_store *s, struct xd_append *g)
{
    size_t nreq = 0, nev = 0;
    for (struct xd_append *a = g; a; a = a->next) {
        nreq++;
        nev += a->n;
    }
    int rc = write_group(s, g);
    if (rc < 0) {
        atomic_fetch_add_explicit(&s->n_failed, 1, memory_order_relaxed);
    } else {
        atomic_fetch_add_explicit(&s->n_groups, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&s->n_requests, nreq, memory_order_relaxed);
        atomic_fetch_add_explicit(&s->n_events, nev, memory_order_relaxed);
    }
    /* EUNAVAIL (another writer held the lock) says nothing about the disk. */
    if (rc != XD_EUNAVAIL)
        set_write_rc(s, rc);
    group_done(g, rc);
}

/* While writes are failing: reopen and try a tiny real commit. */
static void probe(struct xd_store *s)
{
    drop_writer(s); /* a connection opened read-only stays read-only: reopen */
    int rc = ensure_writer(s);
    if (rc == 0) {
        rc = s->drv->ready(s->w);
        if (rc == 0)
            rc = s->drv->probe(s->w);
        if (rc < 0) {
            note_failure(s, "probe", rc);
            drop_writer(s);
        }
    }
    if (rc != XD_EUNAVAIL)
        set_write_rc(s, rc);
}

/* How many rows a request writes, roughly: what a group's size is counted in. */
static size_t weight(const struct xd_append *a)
{
    size_t w = a->n + a->ncharges + (a->exc_op != NULL) + (a->counter_op != NULL) +
               (a->audit_op != NULL) + (a->ext_op != NULL);
    for (size_t i = 0; i < a->noutcomes; i++)
        w += 1 + a->outcomes[i].ncharges;
    return w;
}

/* Detaches the oldest requests, up to GROUP_MAX_EVENTS events (at least one request). */
static struct xd_append *take_group(struct xd_store *s)
{
    struct xd_append *first = s->head, *last = first;
    size_t n = weight(first);
    while (last->next && n + weight(last->next) <= GROUP_MAX_EVENTS) {
        last = last->next;
        n += weight(last);
    }
    s->head = last->next;
    if (!s->head)
        s->tail = &s->head;
    last->next = NULL;
    return first;
}

static void *committer_main(void *arg)
{
    struct xd_store *s = arg;
    pthread_setname_np(pthread_self(), "xd-committer");
    pthread_mutex_lock(&s->mu);
    for (;;) {
        if (s->head) {
            struct xd_append *g = take_group(s);
            pthread_mutex_unlock(&s->mu);
            run_group(s, g);
            pthread_mutex_lock(&s->mu);
            continue;
        }
        if (s->stopping)
            break;
        if (atomic_load(&s->write_rc) == 0) {
            pthread_cond_wait(&s->work, &s->mu);
            continue;
        }
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        t.tv_sec += PROBE_INTERVAL_MS / 1000;
        t.tv_nsec += (PROBE_INTERVAL_MS % 1000) * 1000000L;
        if (t.tv_nsec >= 1000000000L) {
            t.tv_sec++;
            t.tv_nsec -= 1000000000L;
        }
        int rc = pthread_cond_timedwait(&s->work, &s->mu, &t);
        if (rc == ETIMEDOUT && !s->head && !s->stopping) {
            pthread_mutex_unlock(&s->mu);
            probe(s);
            pthread_mutex_lock(&s->mu);
        }
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* ---- submitting ---- */

static int check_request(const struct xd_append *a)
{
    if (!a || !a->done || (a->n && !a->events) || (a->noutcomes && !a->outcomes) ||
        (a->ncharges && !a->charges) ||
        (!!a->n + !!a->noutcomes + !!a->ncharges + !!a->exc_op + !!a->counter_op +
         !!a->audit_op + !!a->ext_op) > 1 ||
        (a->ext_op && !a->ext_op->fn))
        return XD_EINVAL;
    for (size_t i = 0; i < a->noutcomes; i++)
        if (a->outcomes[i].delivery_id <= 0 || a->outcomes[i].state < XD_DLV_PENDING ||
            a->outcomes[i].state > XD_DLV_HELD)
            return XD_EINVAL;
    for (size_t i = 0; i < a->n; i++) {
        const struct xd_event *e = &a->events[i];
        if (!e->event_id || !e->bkey || !e->occurred_at || !e->body || !xd_event_type_name(e->type))
            return XD_EINVAL;
    }
    return 0;
}

int xd_store_submit(struct xd_store *s, struct xd_append *a)
{
    int rc = check_request(a);
    if (rc < 0)
        return rc;
    a->next = NULL;
    a->rc = 0;
    pthread_mutex_lock(&s->mu);
    if (s->stopping) {
        pthread_mutex_unlock(&s->mu);
        return XD_ESTOPPING;
    }
    /* The committer waits only on an empty queue, so only then needs waking. */
    int was_empty = s->head == NULL;
    *s->tail = a;
    s->tail = &a->next;
    if (was_empty)
        pthread_cond_signal(&s->work);
    pthread_mutex_unlock(&s->mu);
    return 0;
}

/* xd_store_append() waits on one of these, on its own stack. */
struct waiter {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done;
};

static void wake(struct xd_append *a, void *arg)
{
    (void)a;
    struct waiter *w = arg;
    pthread_mutex_lock(&w->mu);
    w->done = 1;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

int xd_store_append(struct xd_store *s, struct xd_append *a)
{
    struct waiter w = {.done = 0};
    pthread_mutex_init(&w.mu, NULL);
    pthread_cond_init(&w.cv, NULL);
    if (a) {
        a->done = wake;
        a->arg = &w;
    }
    int rc = xd_store_submit(s, a);
    if (rc < 0) {
        if (a)
            a->rc = rc;
        goto out;
    }
    pthread_mutex_lock(&w.mu);
    while (!w.done)
        pthread_cond_wait(&w.cv, &w.mu);
    pthread_mutex_unlock(&w.mu);
    rc = a->rc;
out:
    pthread_cond_destroy(&w.cv);
    pthread_mutex_destroy(&w.mu);
    return rc;
}

/* ---- reading ---- */

static int reader_get(struct xd_store *s, struct reader *r)
{
    pthread_mutex_lock(&s->rmu);
    r->gen = s->rgen;
    if (s->nidle > 0) {
        r->c = s->idle[--s->nidle];
        pthread_mutex_unlock(&s->rmu);
        return 0;
    }
    pthread_mutex_unlock(&s->rmu);
    struct xd_buf err;
    xd_buf_init(&err);
    int rc = s->drv->open(&s->opts, XD_CONN_READER, &r->c, &err);
    if (rc < 0)
        xd_warn("store: cannot open a read connection: %s", xd_buf_str(&err));
    xd_buf_dispose(&err);
    return rc;
}

/* Returns r to the pool; a connection that failed (rc) or is stale is closed instead. */
static void reader_put(struct xd_store *s, struct reader *r, int rc)
{
    struct xd_store_conn *c = r->c;
    if (rc < 0 && rc != XD_ENOTFOUND) {
        s->drv->close(c);
        return;
    }
    pthread_mutex_lock(&s->rmu);
    if (r->gen == s->rgen && s->nidle < READERS_IDLE_MAX) {
        s->idle[s->nidle++] = c;
        c = NULL;
    }
    pthread_mutex_unlock(&s->rmu);
    s->drv->close(c);
}

/* Runs one read on a pooled reader connection. */
#define WITH_READER(s, call)                                                                       \
    do {                                                                                           \
        struct reader r_;                                                                          \
        int rc_ = reader_get((s), &r_);                                                            \
        if (rc_ < 0)                                                                               \
            return rc_;                                                                            \
        struct xd_store_conn *c_ = r_.c;                                                           \
        rc_ = (call);                                                                              \
        reader_put((s), &r_, rc_);                                                                 \
        return rc_;                                                                                \
    } while (0)

int xd_store_get_event(struct xd_store *s, const char *event_id, struct xd_stored_event *out)
{
    memset(out, 0, sizeof *out);
    if (!event_id)
        return XD_EINVAL;
    WITH_READER(s, s->drv->get_event(c_, event_id, out));
}

void xd_stored_event_dispose(struct xd_stored_event *e)
{
    if (!e)
        return;
    free(e->event_id);
    free(e->type);
    free(e->bkey);
    free(e->occurred_at);
    free(e->source);
    free(e->state);
    free(e->body);
    free(e->traceparent);
    memset(e, 0, sizeof *e);
}

void xd_store_set_planner(struct xd_store *s, xd_planner_fn fn, void *ctx)
{
    pthread_mutex_lock(&s->mu);
    s->planner = fn;
    s->planner_ctx = ctx;
    pthread_mutex_unlock(&s->mu);
}

static const char *const dlv_state_names[] = {"pending", "done", "dead", "skipped", "held"};

const char *xd_dlv_state_name(int state)
{
    if (state < 0 || state > XD_DLV_HELD)
        return "unknown";
    return dlv_state_names[state];
}

int xd_dlv_state_parse(const char *name)
{
    for (int i = 0; i <= XD_DLV_HELD; i++)
        if (strcmp(dlv_state_names[i], name) == 0)
            return i;
    return -1;
}

void xd_stored_dlv_dispose(struct xd_stored_dlv *d)
{
    if (!d)
        return;
    free(d->event_id);
    free(d->route);
    free(d->target);
    free(d->bkey);
    free(d->last_error);
    free(d->error_class);
    free(d->payload);
    free(d->body);
    free(d->part);
    free(d->charge);
    free(d->traceparent);
    memset(d, 0, sizeof *d);
}

int xd_store_fetch_ready(struct xd_store *s, const char *target, int64_t now_ms, size_t limit,
                         xd_dlv_skip_fn skip, void (*cb)(void *ctx, struct xd_stored_dlv *d),
                         void *ctx)
{
    WITH_READER(s, s->drv->fetch_ready(c_, target, now_ms, limit, skip, cb, ctx));
}

int xd_store_list_deliveries(struct xd_store *s, const struct xd_dlv_filter *f,
                             void (*cb)(void *ctx, struct xd_stored_dlv *d), void *ctx)
{
    WITH_READER(s, s->drv->list_deliveries(c_, f, cb, ctx));
}

int xd_store_get_delivery(struct xd_store *s, int64_t id, struct xd_stored_dlv *out)
{
    memset(out, 0, sizeof *out);
    WITH_READER(s, s->drv->get_delivery(c_, id, out));
}

int xd_store_list_attempts(struct xd_store *s, int64_t event_seq,
                           void (*cb)(void *ctx, const struct xd_stored_attempt *a), void *ctx)
{
    WITH_READER(s, s->drv->list_attempts(c_, event_seq, cb, ctx));
}

void xd_charge_rec_dispose(struct xd_charge_rec *c)
{
    if (!c)
        return;
    char *txt[] = {c->charge_id, c->event_id, c->reverses,     c->customer, c->code,
                   c->unit,      c->warehouse, c->reference,   c->currency, c->service_date,
                   c->quantity,  c->unit_price, c->amount,     c->json};
    for (size_t i = 0; i < sizeof txt / sizeof txt[0]; i++)
        free(txt[i]);
    memset(c, 0, sizeof *c);
}

void xd_exception_dispose(struct xd_exception *x)
{
    if (!x)
        return;
    free(x->category);
    free(x->state);
    free(x->event_id);
    free(x->target);
    free(x->reason);
    free(x->owner);
    free(x->note);
    free(x->warehouse);
    free(x->customer);
    memset(x, 0, sizeof *x);
}

int xd_store_has_charge(struct xd_store *s, const char *charge_id)
{
    WITH_READER(s, s->drv->has_charge(c_, charge_id));
}

int xd_store_charges_for_shipment(struct xd_store *s, const char *warehouse,
                                  const char *shipment_id,
                                  void (*cb)(void *ctx, struct xd_charge_rec *c), void *ctx)
{
    WITH_READER(s, s->drv->charges_for_shipment(c_, warehouse, shipment_id, cb, ctx));
}

int xd_store_voids(struct xd_store *s, const char *bkey,
                   void (*cb)(void *ctx, const char *body), void *ctx)
{
    WITH_READER(s, s->drv->voids(c_, bkey, cb, ctx));
}

int xd_store_list_charges(struct xd_store *s, const struct xd_charge_filter *f,
                          void (*cb)(void *ctx, struct xd_charge_rec *c), void *ctx)
{
    WITH_READER(s, s->drv->list_charges(c_, f, cb, ctx));
}

int xd_store_list_exceptions(struct xd_store *s, const struct xd_exception_filter *f,
                             void (*cb)(void *ctx, struct xd_exception *x), void *ctx)
{
    WITH_READER(s, s->drv->list_exceptions(c_, f, cb, ctx));
}

int xd_store_get_exception(struct xd_store *s, int64_t id, struct xd_exception *out)
{
    memset(out, 0, sizeof *out);
    WITH_READER(s, s->drv->get_exception(c_, id, out));
}

#define OF_EVENT_MAX 1000 /* the default (and largest) page of an event's charges or exceptions */

int xd_store_charges_of_event(struct xd_store *s, int64_t event_seq, size_t limit,
                              void (*cb)(void *ctx, struct xd_charge_rec *c), void *ctx)
{
    if (!limit || limit > OF_EVENT_MAX)
        limit = OF_EVENT_MAX;
    WITH_READER(s, s->drv->charges_of_event(c_, event_seq, limit, cb, ctx));
}

int xd_store_exceptions_of_event(struct xd_store *s, const char *event_id, size_t limit,
                                 void (*cb)(void *ctx, struct xd_exception *x), void *ctx)
{
    if (!limit || limit > OF_EVENT_MAX)
        limit = OF_EVENT_MAX;
    WITH_READER(s, s->drv->exceptions_of_event(c_, event_id, limit, cb, ctx));
}

/* Reconciliation's reads (store/store_recon.c has its writes). */
int xd_store_recon_events(struct xd_store *s,
                          void (*cb)(void *ctx, const struct xd_recon_event *e), void *ctx)
{
    WITH_READER(s, s->drv->recon_events(c_, cb, ctx));
}

int xd_store_recon_deliveries(struct xd_store *s,
                              void (*cb)(void *ctx, const struct xd_recon_dlv *d), void *ctx)
{
    WITH_READER(s, s->drv->recon_deliveries(c_, cb, ctx));
}

int xd_store_keyed_open(struct xd_store *s, const char *category,
                        void (*cb)(void *ctx, int64_t id, const char *key, const char *state),
                        void *ctx)
{
    WITH_READER(s, s->drv->keyed_open(c_, category, cb, ctx));
}

int xd_store_update_exception(struct xd_store *s, int64_t id, const char *state,
                              const char *owner, const char *note)
{
    struct xd_exc_op op = {.id = id, .state = state, .owner = owner, .note = note};
    struct xd_append a = {.exc_op = &op};
    return xd_store_append(s, &a);
}

int xd_store_open_exception(struct xd_store *s, const char *category, const char *event_id,
                            const char *reason)
{
    struct xd_exc_op op = {.open = 1, .category = category, .event_id = event_id,
                           .reason = reason};
    struct xd_append a = {.exc_op = &op};
    return xd_store_append(s, &a);
}

int xd_store_ext_write(struct xd_store *s, const struct xd_ext_op *op)
{
    struct xd_append a = {.ext_op = op};
    return xd_store_append(s, &a);
}

int xd_store_ext_read(struct xd_store *s, int (*fn)(struct xd_store_conn *c, void *arg),
                      void *arg)
{
    WITH_READER(s, fn(c_, arg));
}

const char *xd_store_driver_name(const struct xd_store *s)
{
    return s->drv->name;
}

int xd_store_next_counter(struct xd_store *s, const char *name, int64_t *value)
{
    if (!name || !*name || strlen(name) > 64 || !value)
        return XD_EINVAL;
    struct xd_counter_op op = {.name = name};
    struct xd_append a = {.counter_op = &op};
    int rc = xd_store_append(s, &a);
    if (rc == 0)
        *value = op.value;
    return rc;
}

int xd_store_audit_append(struct xd_store *s, const char *actor, const char *action,
                          const char *object, const char *detail, struct xd_audit_entry *out)
{
    if (!actor || !*actor || !action || !*action)
        return XD_EINVAL;
    struct xd_audit_op op = {.actor = actor, .action = action, .object = object,
                             .detail = detail, .out = out};
    struct xd_append a = {.audit_op = &op};
    return xd_store_append(s, &a);
}

int xd_store_list_audit(struct xd_store *s, int64_t after, size_t limit,
                        void (*cb)(void *ctx, struct xd_audit_entry *e), void *ctx)
{
    WITH_READER(s, s->drv->list_audit(c_, after, limit, cb, ctx));
}

int xd_store_audit_head(struct xd_store *s, struct xd_audit_entry *out)
{
    memset(out, 0, sizeof *out);
    struct reader r;
    int rc = reader_get(s, &r);
    if (rc < 0)
        return rc;
    rc = s->drv->audit_head(r.c, &out->seq, out->hash);
    reader_put(s, &r, rc);
    if (rc == 0 && out->seq == 0)
        rc = XD_ENOTFOUND;
    return rc;
}

int xd_store_charge_counts(struct xd_store *s,
                           void (*cb)(void *ctx, const char *customer, const char *currency,
                                      int64_t n),
                           void *ctx)
{
    WITH_READER(s, s->drv->charge_counts(c_, cb, ctx));
}

int xd_store_count_deliveries(struct xd_store *s,
                              void (*cb)(void *ctx, const char *target, int state, int64_t n),
                              void *ctx)
{
    WITH_READER(s, s->drv->count_deliveries(c_, cb, ctx));
}

int xd_store_count_matching(struct xd_store *s, const struct xd_dlv_filter *f, int64_t *n)
{
    *n = 0;
    WITH_READER(s, s->drv->count_matching(c_, f, n));
}

int xd_store_exception_counts(struct xd_store *s,
                              void (*cb)(void *ctx, const char *state, const char *category,
                                         int64_t n, int64_t oldest_ms),
                              void *ctx)
{
    WITH_READER(s, s->drv->exception_counts(c_, cb, ctx));
}

int xd_store_revenue(struct xd_store *s, const char *date,
                     void (*cb)(void *ctx, const char *customer, const char *warehouse,
                                const char *currency, int64_t milli, int64_t n),
                     void *ctx)
{
    WITH_READER(s, s->drv->revenue(c_, date, cb, ctx));
}

int xd_store_backlog_by_warehouse(struct xd_store *s,
                                  void (*cb)(void *ctx, const char *warehouse, int state,
                                             int64_t n),
                                  void *ctx)
{
    WITH_READER(s, s->drv->backlog_by_warehouse(c_, cb, ctx));
}

int xd_store_count_events(struct xd_store *s, int64_t *out)
{
    WITH_READER(s, s->drv->count(c_, out));
}

int xd_store_ready(struct xd_store *s)
{
    pthread_mutex_lock(&s->mu);
    int stopping = s->stopping;
    pthread_mutex_unlock(&s->mu);
    if (stopping)
        return XD_ESTOPPING;
    int rc = atomic_load(&s->write_rc);
    if (rc < 0)
        return rc;
    struct reader r;
    rc = reader_get(s, &r);
    if (rc < 0)
        return rc;
    rc = s->drv->ready(r.c);
    reader_put(s, &r, 0); /* a "not writable" answer is no fault of the connection */
    return rc;
}

/* ---- periodic job locks ---- */

static int held_slot(struct xd_store *s, const char *name)
{
    for (int i = 0; i < JOBS_MAX; i++)
        if (s->held[i] && strcmp(s->held[i], name) == 0)
            return i;
    return -1;
}

int xd_store_try_job_lock(struct xd_store *s, const char *name)
{
    if (!name || !*name || strlen(name) > 64)
        return XD_EINVAL;
    int rc = 0;
    pthread_mutex_lock(&s->jmu);
    int free_slot = held_slot(s, name) >= 0 ? -1 : 0;
    if (free_slot < 0) /* a thread of this process holds it */
        goto out;
    while (free_slot < JOBS_MAX && s->held[free_slot])
        free_slot++;
    if (free_slot == JOBS_MAX) {
        rc = XD_ELIMIT;
        goto out;
    }
    if (s->drv->job_lock) {
        if (!s->jobs) {
            struct xd_buf err;
            xd_buf_init(&err);
            rc = s->drv->open(&s->opts, XD_CONN_READER, &s->jobs, &err);
            if (rc < 0)
                xd_warn("store: cannot open the job lock connection: %s", xd_buf_str(&err));
            xd_buf_dispose(&err);
            if (rc < 0)
                goto out;
        }
        rc = s->drv->job_lock(s->jobs, name, 1);
        if (rc < 0) {
            /* The session is gone, and every lock it held with it. */
            xd_warn("store: job lock %s: %s", name, s->drv->errmsg(s->jobs));
            s->drv->close(s->jobs);
            s->jobs = NULL;
            for (int i = 0; i < JOBS_MAX; i++) {
                free(s->held[i]);
                s->held[i] = NULL;
            }
            goto out;
        }
        if (rc == 0)
            goto out;
    }
    s->held[free_slot] = strdup(name);
    if (!s->held[free_slot]) {
        if (s->drv->job_lock)
            s->drv->job_lock(s->jobs, name, 0);
        rc = XD_ENOMEM;
        goto out;
    }
    rc = 1;
out:
    pthread_mutex_unlock(&s->jmu);
    return rc;
}

void xd_store_job_unlock(struct xd_store *s, const char *name)
{
    if (!name)
        return;
    pthread_mutex_lock(&s->jmu);
    int i = held_slot(s, name);
    if (i >= 0) {
        if (s->jobs && s->drv->job_lock && s->drv->job_lock(s->jobs, name, 0) < 0) {
            s->drv->close(s->jobs); /* closing the session releases its locks too */
            s->jobs = NULL;
        }
        free(s->held[i]);
        s->held[i] = NULL;
    }
    pthread_mutex_unlock(&s->jmu);
}

void xd_store_stats(struct xd_store *s, struct xd_store_stats *out)
{
    out->groups = atomic_load_explicit(&s->n_groups, memory_order_relaxed);
    out->requests = atomic_load_explicit(&s->n_requests, memory_order_relaxed);
    out->events = atomic_load_explicit(&s->n_events, memory_order_relaxed);
    out->failed_groups = atomic_load_explicit(&s->n_failed, memory_order_relaxed);
}

/* ---- lifecycle ---- */

/* This process's name on the work it claims: host, pid and a random part. */
static char *node_name(void)
{
    char host[128] = "host", buf[192];
    gethostname(host, sizeof host - 1);
    host[sizeof host - 1] = '\0';
    unsigned r = 0;
    FILE *f = fopen("/dev/urandom", "rb");
    if (!f || fread(&r, sizeof r, 1, f) != 1)
        r = (unsigned)now_ms() ^ (unsigned)getpid() << 16;
    if (f)
        fclose(f);
    snprintf(buf, sizeof buf, "%s:%d:%08x", host, (int)getpid(), r);
    return strdup(buf);
}

static int copy_opts(const struct xd_config *cfg, struct xd_store_opts *o, struct xd_buf *err)
{
    const char *driver = cfg->store.driver ? cfg->store.driver : "sqlite";
    const char *sync = cfg->store.synchronous ? cfg->store.synchronous : "full";
    if (strcasecmp(sync, "full") == 0) {
        o->sync_full = 1;
    } else if (strcasecmp(sync, "normal") == 0) {
        o->sync_full = 0;
    } else {
        if (err)
            xd_buf_printf(err, "store.synchronous: must be full or normal, not \"%s\"", sync);
        return XD_ECONFIG;
    }
    o->busy_timeout_ms = cfg->store.busy_timeout_ms;
    o->cache_keep = cfg->store.page_cache_keep;
    o->lease_ms = cfg->store.lease_ms;
    o->node_id = node_name();
    o->driver = strdup(driver);
    o->path = cfg->store.path ? strdup(cfg->store.path) : NULL;
    o->url = cfg->store.url ? strdup(cfg->store.url) : NULL;
    if (!o->driver || !o->node_id || (cfg->store.path && !o->path) || (cfg->store.url && !o->url))
        return XD_ENOMEM;
    return 0;
}

static void free_opts(struct xd_store_opts *o)
{
    free(o->node_id);
    free(o->driver);
    free(o->path);
    free(o->url);
}

static const struct xd_store_driver *find_driver(const char *name)
{
    for (size_t i = 0; i < sizeof drivers / sizeof drivers[0]; i++)
        if (strcmp(drivers[i]->name, name) == 0)
            return drivers[i];
    return NULL;
}

int xd_store_open(const struct xd_config *cfg, struct xd_store **out, struct xd_buf *err)
{
    int rc;
    int locks = 0;
    *out = NULL;
    struct xd_store *s = calloc(1, sizeof *s);
    if (!s)
        return XD_ENOMEM;
    s->tail = &s->head;
    rc = copy_opts(cfg, &s->opts, err);
    if (rc < 0)
        goto fail;
    s->drv = find_driver(s->opts.driver);
    if (!s->drv) {
        if (err)
            xd_buf_printf(err, "store.driver: \"%s\" is not available (built: sqlite, postgres)",
                          s->opts.driver);
        rc = XD_ECONFIG;
        goto fail;
    }

    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* the probe timer */
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->work, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&s->rmu, NULL);
    pthread_mutex_init(&s->jmu, NULL);
    locks = 1;

    rc = s->drv->open(&s->opts, XD_CONN_WRITER, &s->w, err);
    if (rc < 0)
        goto fail;
    rc = s->drv->ready(s->w);
    if (rc < 0) {
        note_failure(s, "open", rc);
        set_write_rc(s, rc);
    }
    /* One reader now, so that a store that cannot be read fails here, not later. */
    struct reader r = {.gen = 0};
    rc = s->drv->open(&s->opts, XD_CONN_READER, &r.c, err);
    if (rc < 0)
        goto fail;
    reader_put(s, &r, 0);

    rc = pthread_create(&s->committer, NULL, committer_main, s);
    if (rc != 0) {
        if (err)
            xd_buf_printf(err, "store: cannot start the committer thread: %s", strerror(rc));
        rc = XD_ENOMEM;
        goto fail;
    }
    s->committer_started = 1;
    *out = s;
    return 0;
fail:
    if (locks) {
        s->stopping = 1;
        xd_store_close(s);
        return rc;
    }
    free_opts(&s->opts);
    free(s);
    return rc;
}

void xd_store_close(struct xd_store *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->mu);
    s->stopping = 1;
    pthread_cond_signal(&s->work);
    pthread_mutex_unlock(&s->mu);
    if (s->committer_started)
        pthread_join(s->committer, NULL); /* it drains the queue first */

    /*
     * Readers first: the last connection to close checkpoints and removes the
     * WAL, and only the writer can, so a clean close leaves one file.
     */
    for (size_t i = 0; i < s->nidle; i++)
        s->drv->close(s->idle[i]);
    /* Claims this node did not finish go back to the others now, not when they expire. */
    if (s->w && s->drv->release_leases && s->drv->release_leases(s->w) < 0)
        xd_warn("store: cannot release this node's claims: %s", s->drv->errmsg(s->w));
    if (s->w)
        s->drv->close(s->w);
    s->drv->close(s->jobs); /* releases the job locks still held */
    for (int i = 0; i < JOBS_MAX; i++)
        free(s->held[i]);
    pthread_cond_destroy(&s->work);
    pthread_mutex_destroy(&s->mu);
    pthread_mutex_destroy(&s->rmu);
    pthread_mutex_destroy(&s->jmu);
    free_opts(&s->opts);
    free(s);
}
