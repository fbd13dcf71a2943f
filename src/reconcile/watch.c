/*
 * The watch thread (see watch.h): hold sweep, SLA clocks, alerts.
 *
 * SLA clocks. Per route and SLA rule a watermark (the journal position up
 * to which every event is settled, kept in store_meta so a restart goes on
 * where it stopped) moves over the events received at least `within` ago:
 * an event is settled when the route did not take it (no delivery, or its
 * filter said no), when a delivery of the route to the target was done in
 * time, or when its breach is recorded. Events are received in journal
 * order, so each is looked at once, when its clock runs out. A new rule
 * starts with the events received `within` before the hub started.
 *
 * Several nodes on one store (PostgreSQL): the clocks and the alerts run on
 * one node at a time (a store job lock each, taken per tick), from the
 * watermarks and throttle times kept in the store; the xref entries added
 * through the API on other nodes are picked up each tick (xref_sync.h).
 *
 * Alerts. Exceptions carry alerted_ms (store); the oldest untold ones are
 * grouped by category. A category told less than `throttle` ago waits;
 * otherwise one message goes out: the exception itself when it is alone,
 * else a summary (how many, of which owners, the first few). Only a 2xx
 * marks them told, so an alert target that is down delays alerts, never
 * loses them.
 */
#include "reconcile/watch.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/duration.h"
#include "core/err.h"
#include "core/log.h"
#include "deliver/http.h"
#include "deliver/rand.h"
#include "deliver/target.h"
#include "reconcile/xref_sync.h"
#include "route/dispatch.h"
#include "store/holds.h"
#include "store/store.h"
#include "transform/xref.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TICK_MS        1000 /* how often the watch looks */
#define SLA_PAGE       500  /* events looked at per rule per tick */
#define ALERT_LIST_MAX 10   /* exceptions listed in a summary */
#define ALERT_WAIT_MS  15000

struct sla_clock {
    const struct xd_route *route;
    const struct xd_sla *sla;
    int64_t within_ms;
    int64_t wm; /* events up to this seq are settled */
    char meta[160];
};

struct cat_sent {
    char name[64];
    int64_t at_ms; /* last message for this category (unix ms; kept in store_meta) */
};

struct xd_watch {
    const struct xd_config *cfg;
    struct xd_store *store;
    struct xd_dispatcher *disp;
    struct sla_clock *clocks;
    size_t nclocks;

    /* alerts */
    const struct xd_target *alert;
    int64_t throttle_ms;
    struct xd_http_client *http;
    struct xd_http_target ht;
    int ht_ready;
    struct cat_sent *sent;
    size_t nsent;

    pthread_t thread;
    int started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stopping, kick; /* guarded by mu */
    int rules_pending;  /* the owner rules could not be stored yet; guarded by mu */
    struct xd_xref_sync *xref_sync; /* several nodes (PostgreSQL): the others' API entries */
};

/* The running watch, for xd_watch_reload_current(); one hub per process. */
static pthread_mutex_t current_mu = PTHREAD_MUTEX_INITIALIZER;
static struct xd_watch *current;

/* ---- master data ---- */

struct held_list {
    char **table, **key;
    size_t n, cap;
};

static void held_row(void *ctx, const char *table, const char *key, int64_t n, int64_t since)
{
    (void)n;
    (void)since;
    struct held_list *l = ctx;
    if (!table || !key || !xd_xref_has(table, key))
        return;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        char **t = realloc(l->table, cap * sizeof *t);
        if (!t)
            return;
        l->table = t;
        char **k = realloc(l->key, cap * sizeof *k);
        if (!k)
            return;
        l->key = k;
        l->cap = cap;
    }
    l->table[l->n] = strdup(table);
    l->key[l->n] = strdup(key);
    if (l->table[l->n] && l->key[l->n])
        l->n++;
    else {
        free(l->table[l->n]);
        free(l->key[l->n]);
    }
}

/* Releases the holds whose entry exists now. */
static void sweep_holds(struct xd_watch *w)
{
    struct held_list l = {0};
    if (xd_store_held(w->store, held_row, &l) < 0)
        return;
    int64_t total = 0;
    for (size_t i = 0; i < l.n; i++) {
        char why[512];
        int64_t n = 0;
        snprintf(why, sizeof why, "xref %.200s: %.200s is there now", l.table[i], l.key[i]);
        if (xd_store_release_holds(w->store, l.table[i], l.key[i], why, &n) == 0 && n > 0) {
            xd_info("master data: %lld delivery(ies) waiting for xref %s/%s released", (long long)n,
                    l.table[i], l.key[i]);
            total += n;
        }
        free(l.table[i]);
        free(l.key[i]);
    }
    free(l.table);
    free(l.key);
    if (total)
        xd_dispatch_nudge(w->disp);
}

/* ---- SLA clocks ---- */

struct sla_ctx {
    struct xd_watch *w;
    struct sla_clock *c;
    int64_t last;
    size_t n;
    int failed;
};

static int takes(const struct xd_route *r, const char *type)
{
    for (size_t i = 0; type && i < r->non; i++)
        if (strcmp(r->on[i], type) == 0)
            return 1;
    return 0;
}

static void sla_row(void *ctx, const struct xd_sla_row *r)
{
    struct sla_ctx *s = ctx;
    struct sla_clock *c = s->c;
    s->n++;
    if (s->failed)
        return;
    int64_t deadline = r->received_ms + c->within_ms;
    /*
     * Settled without a breach: the route did not take it, its filter said no,
     * it reached the target in time, or the route finished with nothing for
     * the target (a rate step that produced no charge for billing).
     */
    if (!takes(c->route, r->type) || r->deliveries == 0 || r->skipped > 0 ||
        (r->done_ms && r->done_ms <= deadline) || (r->to_target == 0 && r->unfinished == 0)) {
        s->last = r->seq;
        return;
    }
    char dedup[512], reason[512], when[96];
    snprintf(dedup, sizeof dedup, "%s|%s|%s", r->event_id, c->route->name, c->sla->target);
    xd_iso_ms(when, sizeof when, r->received_ms);
    if (r->done_ms)
        snprintf(reason, sizeof reason,
                 "route %s: reached %s %.1f s after it was received (%s), SLA %s", c->route->name,
                 c->sla->target, (double)(r->done_ms - r->received_ms) / 1000.0, when,
                 c->sla->within);
    else
        snprintf(reason, sizeof reason, "route %s: not delivered to %s within %s of %s",
                 c->route->name, c->sla->target, c->sla->within, when);
    struct xd_exc_new x = {.category = "sla",
                           .dedup = dedup,
                           .event_id = r->event_id,
                           .target = c->sla->target,
                           .reason = reason,
                           .ever = 1};
    int opened = 0;
    if (xd_store_open_exception_once(s->w->store, &x, &opened) < 0) {
        s->failed = 1; /* try again next tick, from here */
        return;
    }
    if (opened)
        xd_warn("sla: event %s: %s", r->event_id, reason);
    s->last = r->seq;
}

static void run_clocks(struct xd_watch *w)
{
    int64_t now = xd_now_ms();
    for (size_t i = 0; i < w->nclocks; i++) {
        struct sla_clock *c = &w->clocks[i];
        int64_t wm = 0; /* another node (store.h job locks) may have moved it */
        if (xd_store_meta_get(w->store, c->meta, &wm) == 0 && wm > c->wm)
            c->wm = wm;
        struct sla_ctx s = {.w = w, .c = c, .last = c->wm};
        int rc;
        do {
            s.n = 0;
            rc = xd_store_sla_rows(w->store, s.last, now - c->within_ms, c->route->name,
                                   c->sla->target, SLA_PAGE, sla_row, &s);
        } while (rc >= 0 && !s.failed && s.n == SLA_PAGE);
        if (s.last != c->wm && xd_store_meta_set(w->store, c->meta, s.last) == 0)
            c->wm = s.last;
    }
}

static int clocks_setup(struct xd_watch *w, struct xd_buf *err)
{
    const struct xd_config *cfg = w->cfg;
    size_t n = 0;
    for (size_t i = 0; i < cfg->nroutes; i++)
        n += cfg->routes[i].nsla;
    if (!n)
        return 0;
    w->clocks = calloc(n, sizeof *w->clocks);
    if (!w->clocks)
        return XD_ENOMEM;
    int64_t now = xd_now_ms();
    for (size_t i = 0; i < cfg->nroutes; i++) {
        const struct xd_route *r = &cfg->routes[i];
        for (size_t k = 0; k < r->nsla; k++) {
            struct sla_clock *c = &w->clocks[w->nclocks];
            c->route = r;
            c->sla = &r->sla[k];
            int delivers = 0;
            for (size_t s = 0; s < r->nsteps; s++)
                delivers |= r->steps[s].deliver && strcmp(r->steps[s].deliver, c->sla->target) == 0;
            if (!delivers) {
                xd_buf_printf(err,
                              "%s:%u:%u: routes[%s].sla[%zu].target: route %s delivers to "
                              "no target named '%s'",
                              cfg->path ? cfg->path : "config", c->sla->pos.line, c->sla->pos.col,
                              r->name, k, r->name, c->sla->target);
                return XD_ECONFIG;
            }
            if (xd_duration_parse(c->sla->within, &c->within_ms) < 0)
                return XD_ECONFIG;
            snprintf(c->meta, sizeof c->meta, "sla:%.60s:%.60s", r->name, c->sla->target);
            int64_t wm = 0;
            if (xd_store_meta_get(w->store, c->meta, &wm) < 0 || wm == 0)
                xd_store_last_seq_before(w->store, now - c->within_ms, &wm);
            c->wm = wm;
            w->nclocks++;
        }
    }
    return 0;
}

/* ---- alerts ---- */

static int64_t *sent_at(struct xd_watch *w, const char *cat)
{
    for (size_t i = 0; i < w->nsent; i++)
        if (strcmp(w->sent[i].name, cat) == 0)
            return &w->sent[i].at_ms;
    struct cat_sent *v = realloc(w->sent, (w->nsent + 1) * sizeof *v);
    if (!v)
        return NULL;
    w->sent = v;
    snprintf(v[w->nsent].name, sizeof v[w->nsent].name, "%s", cat);
    /* The last message before a restart counts too: the throttle outlives the process. */
    char meta[96];
    int64_t at = 0;
    snprintf(meta, sizeof meta, "alert:%s", cat);
    v[w->nsent].at_ms = xd_store_meta_get(w->store, meta, &at) == 0 && at ? at : INT64_MIN / 2;
    return &v[w->nsent++].at_ms;
}

static void put_field(struct xd_buf *o, const char *name, const char *v)
{
    xd_buf_printf(o, ",\"%s\":", name);
    if (v)
        xd_buf_json_str(o, v);
    else
        xd_buf_puts(o, "null");
}

/* One exception of a message, as JSON. */
static void alert_row(void *ctx, const struct xd_exc_brief *x)
{
    struct xd_buf *o = ctx;
    char when[96];
    xd_iso_ms(when, sizeof when, x->created_ms);
    xd_buf_printf(o, "%s{\"id\":%lld,\"opened_at\":\"%s\"", o->data[o->len - 1] == '[' ? "" : ",",
                  (long long)x->id, when);
    put_field(o, "category", x->category);
    put_field(o, "state", x->state);
    put_field(o, "owner", x->owner);
    put_field(o, "warehouse", x->warehouse);
    put_field(o, "customer", x->customer);
    put_field(o, "event_id", x->event_id);
    put_field(o, "target", x->target);
    put_field(o, "reason", x->reason);
    xd_buf_putc(o, '}');
}

/* The categories with untold exceptions, copied out of the store's callback. */
struct pending {
    struct {
        char name[64];
        int64_t n, max_id;
    } v[32];
    size_t n;
};

static void pending_cat(void *ctx, const char *category, int64_t n, int64_t max_id)
{
    struct pending *p = ctx;
    if (p->n < sizeof p->v / sizeof p->v[0] && category && strlen(category) < 64) {
        snprintf(p->v[p->n].name, sizeof p->v[p->n].name, "%s", category);
        p->v[p->n].n = n;
        p->v[p->n++].max_id = max_id;
    }
}

struct send_state {
    int done;
    long status;
    char error[256];
};

static void sent_cb(void *user, const struct xd_http_result *res)
{
    struct send_state *s = user;
    s->status = res->status;
    snprintf(s->error, sizeof s->error, "%s", res->error ? res->error : "");
    s->done = 1;
}

/* Posts body to the alert target and waits; 0 on a 2xx. */
static int post(struct xd_watch *w, const struct xd_buf *body, int64_t first_id)
{
    char key[64];
    snprintf(key, sizeof key, "crossdock-alert-%lld", (long long)first_id);
    struct send_state s = {0};
    struct xd_trace trace;
    xd_trace_new(&trace, xd_rand64, NULL);
    int rc =
        xd_http_target_submit(w->http, &w->ht, body->data, body->len, key, &trace, sent_cb, &s);
    if (rc < 0)
        return rc;
    int64_t until = xd_mono_ms() + ALERT_WAIT_MS;
    while (!s.done && xd_mono_ms() < until)
        xd_http_run(w->http, 100);
    if (!s.done) {
        /* cancelled by destroying the client; start afresh next time */
        struct xd_http_client *cl = w->http;
        w->http = NULL;
        xd_http_client_destroy(cl);
        xd_http_client_create(NULL, &w->http);
        return XD_EUNAVAIL;
    }
    if (s.status < 200 || s.status > 299) {
        xd_warn("alert target %s: %s%s (HTTP %ld); will try again", w->alert->name, s.error,
                s.error[0] ? "" : "refused", s.status);
        return XD_EUNAVAIL;
    }
    return 0;
}

/*
 * One message per category that has untold exceptions and was not told
 * within the throttle period: the exception itself, or a summary of all
 * of them (the first ALERT_LIST_MAX listed). All of them are then told.
 */
static void send_alerts(struct xd_watch *w)
{
    if (!w->alert || !w->http)
        return;
    struct pending p = {.n = 0};
    if (xd_store_unalerted_categories(w->store, pending_cat, &p) <= 0)
        return;
    int64_t now = xd_now_ms();
    for (size_t i = 0; i < p.n; i++) {
        int64_t *at = sent_at(w, p.v[i].name);
        char meta[96];
        int64_t other = 0; /* another node's last message counts too */
        snprintf(meta, sizeof meta, "alert:%s", p.v[i].name);
        if (at && xd_store_meta_get(w->store, meta, &other) == 0 && other > *at)
            *at = other;
        if (!at || now - *at < w->throttle_ms)
            continue; /* throttled: they wait and go out as one summary */
        struct xd_buf o;
        xd_buf_init(&o);
        long long n = (long long)p.v[i].n;
        xd_buf_printf(&o, "{\"text\":\"crossdock: %lld new %s exception%s\",\"category\":", n,
                      p.v[i].name, n == 1 ? "" : "s");
        xd_buf_json_str(&o, p.v[i].name);
        xd_buf_printf(&o, ",\"count\":%lld,\"exceptions\":[", n);
        int listed =
            xd_store_unalerted(w->store, p.v[i].name, p.v[i].max_id, ALERT_LIST_MAX, alert_row, &o);
        xd_buf_printf(&o, "],\"more\":%lld}", listed >= 0 && n > listed ? n - listed : 0);
        if (listed > 0 && !o.oom && post(w, &o, p.v[i].max_id) == 0 &&
            xd_store_mark_alerted(w->store, p.v[i].name, p.v[i].max_id) == 0) {
            *at = now;
            xd_store_meta_set(w->store, meta, now);
        }
        xd_buf_dispose(&o);
    }
}

static int alerts_setup(struct xd_watch *w, struct xd_buf *err)
{
    const struct xd_exc_alert *a = &w->cfg->exceptions.alert;
    if (!a->target)
        return 0;
    w->alert = xd_config_target(w->cfg, a->target);
    if (!w->alert || !w->alert->type || strcmp(w->alert->type, "http") != 0) {
        xd_buf_printf(err, "exceptions.alert.target: '%s' is not an http target", a->target);
        return XD_ECONFIG;
    }
    if (xd_duration_parse(a->throttle ? a->throttle : "5m", &w->throttle_ms) < 0)
        return XD_ECONFIG;
    int rc = xd_http_target_init(&w->ht, w->alert, err);
    if (rc < 0)
        return rc;
    w->ht_ready = 1;
    return xd_http_client_create(NULL, &w->http);
}

/* ---- owner rules, xref tables ---- */

static int load_rules(struct xd_store *s, const struct xd_config *cfg)
{
    size_t n = cfg->exceptions.nowners;
    struct xd_owner_rule *r = calloc(n + 1, sizeof *r);
    if (!r)
        return XD_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const struct xd_exc_owner *o = &cfg->exceptions.owners[i];
        r[i] = (struct xd_owner_rule){o->category, o->warehouse, o->customer, o->owner};
    }
    int rc = xd_store_set_owner_rules(s, r, n);
    free(r);
    return rc;
}

static void api_entry(void *ctx, const char *table, const char *key, const char *value,
                      int64_t updated_ms)
{
    (void)updated_ms;
    int *rc = ctx;
    if (*rc == 0)
        *rc = xd_xref_set(table, key, value);
}

/* ---- the thread ---- */

/*
 * Runs job under the store's job lock `name`: with several nodes on one
 * store, one node at a time runs the SLA clocks and tells the alert target.
 */
static void as_job(struct xd_watch *w, const char *name, void (*job)(struct xd_watch *w))
{
    if (xd_store_try_job_lock(w->store, name) != 1)
        return;
    job(w);
    xd_store_job_unlock(w->store, name);
}

static void *watch_main(void *arg)
{
    struct xd_watch *w = arg;
    pthread_setname_np(pthread_self(), "xd-watch");
    pthread_mutex_lock(&w->mu);
    while (!w->stopping) {
        w->kick = 0;
        if (w->rules_pending && load_rules(w->store, w->cfg) == 0)
            w->rules_pending = 0; /* under mu: a reload's rules are not overwritten */
        pthread_mutex_unlock(&w->mu);
        if (w->xref_sync)
            xd_xref_sync_run(w->xref_sync, w->store);
        sweep_holds(w);
        if (w->nclocks)
            as_job(w, "sla-clocks", run_clocks);
        if (w->alert)
            as_job(w, "alerts", send_alerts);
        pthread_mutex_lock(&w->mu);
        if (w->stopping || w->kick)
            continue;
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        t.tv_sec += TICK_MS / 1000;
        pthread_cond_timedwait(&w->cv, &w->mu, &t);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

static void watch_free(struct xd_watch *w)
{
    if (w->ht_ready)
        xd_http_target_dispose(&w->ht);
    xd_http_client_destroy(w->http);
    free(w->clocks);
    free(w->sent);
    xd_xref_sync_destroy(w->xref_sync);
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    free(w);
}

int xd_watch_start(const struct xd_config *cfg, struct xd_store *store, struct xd_dispatcher *disp,
                   struct xd_watch **out, struct xd_buf *err)
{
    *out = NULL;
    struct xd_watch *w = calloc(1, sizeof *w);
    if (!w)
        return XD_ENOMEM;
    w->cfg = cfg;
    w->store = store;
    w->disp = disp;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, &ca);
    pthread_condattr_destroy(&ca);

    int rc = xd_xref_use_config(cfg);
    int lrc = rc == 0 ? xd_store_xref_list(store, NULL, api_entry, &rc) : 0;
    if (lrc < 0)
        rc = lrc;
    if (rc < 0) {
        xd_buf_printf(err, "cannot load the xref entries added through the API: %s",
                      xd_strerror(rc));
        goto fail;
    }
    if (strcmp(xd_store_driver_name(store), "postgres") == 0) {
        w->xref_sync = xd_xref_sync_create(); /* other nodes may add entries */
        if (!w->xref_sync) {
            rc = XD_ENOMEM;
            goto fail;
        }
    }
    if (load_rules(store, cfg) < 0) {
        /* A store that cannot be written now (read-only, full) still serves: try each tick. */
        xd_warn("cannot store the exception owner rules yet; trying again");
        w->rules_pending = 1;
    }
    rc = clocks_setup(w, err);
    if (rc == 0)
        rc = alerts_setup(w, err);
    if (rc < 0)
        goto fail;
    rc = pthread_create(&w->thread, NULL, watch_main, w);
    if (rc != 0) {
        xd_buf_printf(err, "cannot start the watch thread: %s", strerror(rc));
        rc = XD_ENOMEM;
        goto fail;
    }
    w->started = 1;
    pthread_mutex_lock(&current_mu);
    current = w;
    pthread_mutex_unlock(&current_mu);
    *out = w;
    return 0;
fail:
    xd_xref_reset();
    watch_free(w);
    return rc;
}

void xd_watch_stop(struct xd_watch *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&current_mu);
    if (current == w)
        current = NULL;
    pthread_mutex_unlock(&current_mu);
    pthread_mutex_lock(&w->mu);
    w->stopping = 1;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    if (w->started)
        pthread_join(w->thread, NULL);
    xd_xref_reset();
    watch_free(w);
}

int xd_watch_reload_current(const char *path, struct xd_buf *err)
{
    pthread_mutex_lock(&current_mu);
    int rc = current ? xd_watch_reload(current, path, err) : XD_ENOTFOUND;
    pthread_mutex_unlock(&current_mu);
    return rc;
}

int xd_watch_reload(struct xd_watch *w, const char *path, struct xd_buf *err)
{
    struct xd_config *cfg = xd_config_load(path, err);
    if (!cfg)
        return XD_ECONFIG;
    int rc = xd_xref_use_config(cfg);
    pthread_mutex_lock(&w->mu);
    if (rc == 0)
        rc = load_rules(w->store, cfg);
    if (rc == 0)
        w->rules_pending = 0;
    pthread_mutex_unlock(&w->mu);
    xd_config_destroy(cfg);
    if (rc < 0) {
        xd_buf_printf(err, "%s", xd_strerror(rc));
        return rc;
    }
    pthread_mutex_lock(&w->mu);
    w->kick = 1;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    return 0;
}
