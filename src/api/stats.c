/*
 * GET /v1/stats: what the dashboard draws, in one answer.
 *
 *   minutes      the last hour, one entry a minute (oldest first): events
 *                accepted and refused, delivery attempts by outcome, and the
 *                latency of answered attempts (p50, p95, mean, from the
 *                delivery histogram's buckets);
 *   totals       events in the store, backlog, dead letters;
 *   targets      per target: circuit state, in flight, backlog, dead
 *                letters, attempts by outcome since start, mean latency;
 *   exceptions   per state (and the oldest open one's age);
 *   kpis         revenue charged today per customer and per warehouse
 *                (exact, per currency), backlog and dead letters per
 *                warehouse, ship-to-charge time (p50, p95).
 *
 * The per-minute series comes from a ring buffer in memory: a sampler
 * thread reads the hub's cumulative counters every few seconds (and every
 * /v1/stats call does too) and adds what changed to the current minute's
 * slot. It starts empty at each start (the store keeps no per-minute
 * history); the totals, targets, exceptions and KPIs are read from the store
 * on each call, so they are right across restarts. The store's KPI queries
 * are cached for a few seconds: a page polling every second costs the store
 * little, with 100,000 events in it or more.
 */
#include "api/http.h"
#include "api/stats.h"
#include "core/clock.h"
#include "deliver/circuit.h"
#include "ingest/intake_metrics.h"
#include "rating/money.h"
#include "route/dispatch.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SLOTS        60    /* minutes kept */
#define SAMPLE_MS    5000  /* sampler period */
#define KPI_CACHE_MS 10000 /* how long the store's KPI answer is reused */

/* The hub's cumulative counters at one moment (all targets summed). */
struct sample {
    uint64_t events, rejected, ok, retry, fail, dead, lat_count, lat_us;
    uint64_t buckets[XD_NLATENCY];
};

/* One minute: what changed during it. */
struct slot {
    int64_t minute; /* unix ms / 60000; 0 = unused */
    struct sample d;
};

struct xd_stats {
    struct xd_server *srv;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thread;
    int running, stop;
    struct sample last; /* cumulative, at the last tick */
    int have_last;
    struct slot slots[SLOTS];
    char *kpis;      /* cached KPI JSON, or NULL */
    int64_t kpis_ms; /* when it was made (monotonic) */
};

static void sum_target(void *ctx, const struct xd_target_stats *st)
{
    struct sample *s = ctx;
    s->ok += st->ok;
    s->retry += st->retry;
    s->fail += st->fail;
    s->dead += st->dead;
    s->lat_count += st->latency_count;
    s->lat_us += st->latency_us_sum;
    for (size_t b = 0; b < XD_NLATENCY; b++)
        s->buckets[b] += st->latency_buckets[b];
}

static void read_counters(struct xd_server *srv, struct sample *s)
{
    memset(s, 0, sizeof *s);
    struct xd_intake_totals in;
    xd_intake_totals(&in);
    s->events = (uint64_t)in.received;
    s->rejected = (uint64_t)in.rejected;
    if (srv->dispatcher)
        xd_dispatch_stats(srv->dispatcher, sum_target, s);
}

/* A counter that went down (it cannot, short of a torn read) adds nothing. */
static uint64_t delta(uint64_t now, uint64_t before)
{
    return now > before ? now - before : 0;
}

/* Adds what changed since the last tick to the current minute. Holds st->mu. */
static void tick_locked(struct xd_stats *st)
{
    struct sample now;
    read_counters(st->srv, &now);
    int64_t minute = xd_now_ms() / 60000;
    struct slot *sl = &st->slots[minute % SLOTS];
    if (sl->minute != minute) {
        memset(sl, 0, sizeof *sl);
        sl->minute = minute;
    }
    if (st->have_last) {
        struct sample *d = &sl->d, *l = &st->last;
        d->events += delta(now.events, l->events);
        d->rejected += delta(now.rejected, l->rejected);
        d->ok += delta(now.ok, l->ok);
        d->retry += delta(now.retry, l->retry);
        d->fail += delta(now.fail, l->fail);
        d->dead += delta(now.dead, l->dead);
        d->lat_count += delta(now.lat_count, l->lat_count);
        d->lat_us += delta(now.lat_us, l->lat_us);
        for (size_t b = 0; b < XD_NLATENCY; b++)
            d->buckets[b] += delta(now.buckets[b], l->buckets[b]);
    }
    st->last = now;
    st->have_last = 1;
}

static void *sampler(void *arg)
{
    struct xd_stats *st = arg;
    pthread_mutex_lock(&st->mu);
    while (!st->stop) {
        tick_locked(st);
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += SAMPLE_MS / 1000;
        pthread_cond_timedwait(&st->cv, &st->mu, &until);
    }
    pthread_mutex_unlock(&st->mu);
    return NULL;
}

struct xd_stats *xd_stats_start(struct xd_server *srv)
{
    struct xd_stats *st = calloc(1, sizeof *st);
    if (!st)
        return NULL;
    st->srv = srv;
    pthread_mutex_init(&st->mu, NULL);
    pthread_cond_init(&st->cv, NULL);
    if (pthread_create(&st->thread, NULL, sampler, st) == 0)
        st->running = 1; /* without the thread, /v1/stats calls still sample */
    return st;
}

void xd_stats_stop(struct xd_stats *st)
{
    if (!st)
        return;
    pthread_mutex_lock(&st->mu);
    st->stop = 1;
    pthread_cond_signal(&st->cv);
    pthread_mutex_unlock(&st->mu);
    if (st->running)
        pthread_join(st->thread, NULL);
    pthread_cond_destroy(&st->cv);
    pthread_mutex_destroy(&st->mu);
    free(st->kpis);
    free(st);
}

/*
 * The q-quantile (0..1) of a latency histogram's per-bucket counts, in ms,
 * interpolated linearly inside its bucket; past the last bound, that bound.
 */
static double quantile_ms(const uint64_t *buckets, uint64_t count, double q)
{
    static const double bounds[] = XD_LATENCY_BUCKETS;
    double rank = q * (double)count, cum = 0, lower = 0;
    for (size_t b = 0; b < XD_NLATENCY; b++) {
        double n = (double)buckets[b];
        if (n > 0 && cum + n >= rank)
            return 1000.0 * (lower + (bounds[b] - lower) * ((rank - cum) / n));
        cum += n;
        lower = bounds[b];
    }
    return 1000.0 * bounds[XD_NLATENCY - 1];
}

static void minutes_json(struct xd_stats *st, struct xd_buf *o)
{
    int64_t now = xd_now_ms() / 60000;
    xd_buf_puts(o, "\"minutes\":[");
    for (int64_t m = now - (SLOTS - 1); m <= now; m++) {
        const struct slot *sl = &st->slots[m % SLOTS];
        struct sample z = {0};
        const struct sample *d = sl->minute == m ? &sl->d : &z;
        xd_buf_printf(o,
                      "%s{\"t\":%lld,\"events\":%llu,\"rejected\":%llu,\"delivered\":%llu,"
                      "\"retried\":%llu,\"failed\":%llu,\"dead\":%llu",
                      m == now - (SLOTS - 1) ? "" : ",", (long long)(m * 60000),
                      (unsigned long long)d->events, (unsigned long long)d->rejected,
                      (unsigned long long)d->ok, (unsigned long long)d->retry,
                      (unsigned long long)d->fail, (unsigned long long)d->dead);
        if (d->lat_count)
            xd_buf_printf(o, ",\"p50_ms\":%.2f,\"p95_ms\":%.2f,\"avg_ms\":%.2f",
                          quantile_ms(d->buckets, d->lat_count, 0.5),
                          quantile_ms(d->buckets, d->lat_count, 0.95),
                          (double)d->lat_us / 1000.0 / (double)d->lat_count);
        else
            xd_buf_puts(o, ",\"p50_ms\":null,\"p95_ms\":null,\"avg_ms\":null");
        xd_buf_putc(o, '}');
    }
    xd_buf_putc(o, ']');
}

/* ---- per target ---- */

struct tgt {
    char name[128];
    int64_t backlog, dead;
    int known; /* in the dispatcher (configured), not only in the store */
    struct xd_target_stats st;
};
struct tgts {
    struct tgt *v;
    size_t n, cap;
};

static struct tgt *tgt_find(struct tgts *t, const char *name)
{
    for (size_t i = 0; i < t->n; i++)
        if (strcmp(t->v[i].name, name) == 0)
            return &t->v[i];
    if (t->n == t->cap) {
        size_t cap = t->cap ? 2 * t->cap : 16;
        struct tgt *v = realloc(t->v, cap * sizeof *v);
        if (!v)
            return NULL;
        t->v = v;
        t->cap = cap;
    }
    struct tgt *g = &t->v[t->n++];
    memset(g, 0, sizeof *g);
    snprintf(g->name, sizeof g->name, "%s", name);
    return g;
}

static void tgt_stats(void *ctx, const struct xd_target_stats *st)
{
    struct tgt *g = tgt_find(ctx, st->target);
    if (!g)
        return;
    g->known = 1;
    g->st = *st;
    g->st.target = NULL; /* not kept: the name is copied */
}

static void tgt_count(void *ctx, const char *target, int state, int64_t n)
{
    struct tgt *g = tgt_find(ctx, target[0] ? target : "(rate)");
    if (g && state == XD_DLV_PENDING)
        g->backlog = n;
    else if (g && state == XD_DLV_DEAD)
        g->dead = n;
}

static void json_kv_str(struct xd_buf *o, const char *k, const char *v)
{
    xd_buf_printf(o, "\"%s\":", k);
    xd_buf_json_str(o, v);
}

static int targets_json(struct xd_server *srv, struct xd_buf *o, int64_t *backlog, int64_t *dead)
{
    struct tgts t = {0};
    if (srv->dispatcher)
        xd_dispatch_stats(srv->dispatcher, tgt_stats, &t);
    int rc = xd_store_count_deliveries(srv->store, tgt_count, &t);
    xd_buf_puts(o, "\"targets\":[");
    for (size_t i = 0; i < t.n; i++) {
        const struct tgt *g = &t.v[i];
        *backlog += g->backlog;
        *dead += g->dead;
        xd_buf_puts(o, i ? ",{" : "{");
        json_kv_str(o, "name", g->name);
        xd_buf_printf(o, ",\"circuit\":\"%s\"",
                      g->known ? xd_circuit_state_name((enum xd_circuit_state)g->st.circuit)
                               : "none");
        xd_buf_printf(o,
                      ",\"inflight\":%u,\"backlog\":%lld,\"dead\":%lld,\"ok\":%llu,"
                      "\"retry\":%llu,\"fail\":%llu,\"dead_lettered\":%llu",
                      g->st.inflight, (long long)g->backlog, (long long)g->dead,
                      (unsigned long long)g->st.ok, (unsigned long long)g->st.retry,
                      (unsigned long long)g->st.fail, (unsigned long long)g->st.dead);
        if (g->st.latency_count)
            xd_buf_printf(o, ",\"avg_ms\":%.2f,\"p95_ms\":%.2f",
                          (double)g->st.latency_us_sum / 1000.0 / (double)g->st.latency_count,
                          quantile_ms(g->st.latency_buckets, g->st.latency_count, 0.95));
        else
            xd_buf_puts(o, ",\"avg_ms\":null,\"p95_ms\":null");
        xd_buf_putc(o, '}');
    }
    xd_buf_putc(o, ']');
    free(t.v);
    return rc < 0 ? rc : 0;
}

/* ---- exceptions ---- */

struct exc_counts {
    int64_t open, acknowledged, resolved, oldest_open_ms;
    struct xd_buf *by_category;
    size_t ncat;
};

static void exc_row(void *ctx, const char *state, const char *category, int64_t n,
                    int64_t oldest_ms)
{
    struct exc_counts *e = ctx;
    if (strcmp(state, "open") == 0) {
        e->open += n;
        if (!e->oldest_open_ms || oldest_ms < e->oldest_open_ms)
            e->oldest_open_ms = oldest_ms;
    } else if (strcmp(state, "acknowledged") == 0) {
        e->acknowledged += n;
    } else {
        e->resolved += n;
    }
    if (strcmp(state, "resolved") == 0)
        return;
    xd_buf_puts(e->by_category, e->ncat++ ? ",{" : "{");
    json_kv_str(e->by_category, "category", category);
    xd_buf_putc(e->by_category, ',');
    json_kv_str(e->by_category, "state", state);
    xd_buf_printf(e->by_category, ",\"count\":%lld}", (long long)n);
}

static int exceptions_json(struct xd_server *srv, struct xd_buf *o)
{
    struct xd_buf cat;
    xd_buf_init(&cat);
    struct exc_counts e = {.by_category = &cat};
    int rc = xd_store_exception_counts(srv->store, exc_row, &e);
    xd_buf_printf(o,
                  "\"exceptions\":{\"open\":%lld,\"acknowledged\":%lld,\"resolved\":%lld,"
                  "\"oldest_open_s\":",
                  (long long)e.open, (long long)e.acknowledged, (long long)e.resolved);
    if (e.open)
        xd_buf_printf(o, "%lld", (long long)((xd_now_ms() - e.oldest_open_ms) / 1000));
    else
        xd_buf_puts(o, "null");
    xd_buf_puts(o, ",\"by_category\":[");
    xd_buf_append(o, cat.data ? cat.data : "", cat.len);
    xd_buf_puts(o, "]}");
    xd_buf_dispose(&cat);
    return rc < 0 ? rc : 0;
}

/* ---- KPIs ---- */

/* Thousandths of a currency unit, written with the currency's minor digits. */
static void milli_str(char *out, size_t n, int64_t milli, const char *currency)
{
    int minor = xd_currency_minor(currency);
    if (minor < 0 || minor > 3)
        minor = 3;
    uint64_t a = milli < 0 ? (uint64_t)(-(milli + 1)) + 1 : (uint64_t)milli;
    unsigned frac = (unsigned)(a % 1000);
    static const unsigned div[] = {1000, 100, 10, 1};
    if (minor == 0)
        snprintf(out, n, "%s%llu", milli < 0 ? "-" : "", (unsigned long long)(a / 1000));
    else
        snprintf(out, n, "%s%llu.%0*u", milli < 0 ? "-" : "", (unsigned long long)(a / 1000), minor,
                 frac / div[minor]);
}

/* Revenue rows summed by one key (customer or warehouse) and currency. */
struct rev {
    char key[128], currency[8];
    int64_t milli, n;
};
struct revs {
    struct rev *v;
    size_t n, cap;
};

static void rev_add(struct revs *r, const char *key, const char *currency, int64_t milli, int64_t n)
{
    for (size_t i = 0; i < r->n; i++)
        if (strcmp(r->v[i].key, key) == 0 && strcmp(r->v[i].currency, currency) == 0) {
            r->v[i].milli += milli;
            r->v[i].n += n;
            return;
        }
    if (r->n == r->cap) {
        size_t cap = r->cap ? 2 * r->cap : 16;
        struct rev *v = realloc(r->v, cap * sizeof *v);
        if (!v)
            return;
        r->v = v;
        r->cap = cap;
    }
    struct rev *e = &r->v[r->n++];
    snprintf(e->key, sizeof e->key, "%s", key);
    snprintf(e->currency, sizeof e->currency, "%s", currency);
    e->milli = milli;
    e->n = n;
}

struct kpi_ctx {
    struct revs by_customer, by_warehouse;
    struct whs {
        char name[128];
        int64_t backlog, dead;
    } * wh;
    size_t nwh, capwh;
};

static void kpi_revenue(void *ctx, const char *customer, const char *warehouse,
                        const char *currency, int64_t milli, int64_t n)
{
    struct kpi_ctx *k = ctx;
    rev_add(&k->by_customer, customer, currency, milli, n);
    rev_add(&k->by_warehouse, warehouse, currency, milli, n);
}

static void kpi_warehouse(void *ctx, const char *warehouse, int state, int64_t n)
{
    struct kpi_ctx *k = ctx;
    size_t i = 0;
    while (i < k->nwh && strcmp(k->wh[i].name, warehouse) != 0)
        i++;
    if (i == k->nwh) {
        if (k->nwh == k->capwh) {
            size_t cap = k->capwh ? 2 * k->capwh : 16;
            struct whs *v = realloc(k->wh, cap * sizeof *v);
            if (!v)
                return;
            k->wh = v;
            k->capwh = cap;
        }
        memset(&k->wh[k->nwh], 0, sizeof k->wh[0]);
        snprintf(k->wh[k->nwh].name, sizeof k->wh[0].name, "%s", warehouse);
        k->nwh++;
    }
    if (state == XD_DLV_PENDING)
        k->wh[i].backlog += n;
    else
        k->wh[i].dead += n;
}

static void revs_json(struct xd_buf *o, const char *name, const char *key, const struct revs *r)
{
    xd_buf_printf(o, "\"%s\":[", name);
    for (size_t i = 0; i < r->n; i++) {
        char amount[48];
        milli_str(amount, sizeof amount, r->v[i].milli, r->v[i].currency);
        xd_buf_puts(o, i ? ",{" : "{");
        json_kv_str(o, key, r->v[i].key);
        xd_buf_putc(o, ',');
        json_kv_str(o, "currency", r->v[i].currency);
        xd_buf_printf(o, ",\"amount\":\"%s\",\"charges\":%lld}", amount, (long long)r->v[i].n);
    }
    xd_buf_putc(o, ']');
}

/* The store's part of the KPIs, as a JSON fragment (members, no braces). */
static int kpis_from_store(struct xd_server *srv, struct xd_buf *o)
{
    char today[32];
    time_t now = (time_t)(xd_now_ms() / 1000);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(today, sizeof today, "%Y-%m-%d", &tm);
    struct kpi_ctx k = {0};
    int rc = xd_store_revenue(srv->store, today, kpi_revenue, &k);
    if (rc >= 0)
        rc = xd_store_backlog_by_warehouse(srv->store, kpi_warehouse, &k);
    xd_buf_printf(o, "\"date\":\"%s\",", today);
    revs_json(o, "revenue_by_customer", "customer", &k.by_customer);
    xd_buf_putc(o, ',');
    revs_json(o, "revenue_by_warehouse", "warehouse", &k.by_warehouse);
    xd_buf_puts(o, ",\"backlog_by_warehouse\":[");
    for (size_t i = 0; i < k.nwh; i++) {
        xd_buf_puts(o, i ? ",{" : "{");
        json_kv_str(o, "warehouse", k.wh[i].name);
        xd_buf_printf(o, ",\"backlog\":%lld,\"dead\":%lld}", (long long)k.wh[i].backlog,
                      (long long)k.wh[i].dead);
    }
    xd_buf_putc(o, ']');
    free(k.by_customer.v);
    free(k.by_warehouse.v);
    free(k.wh);
    return rc < 0 ? rc : 0;
}

static int kpis_json(struct xd_stats *st, struct xd_server *srv, struct xd_buf *o)
{
    int rc = 0;
    xd_buf_puts(o, "\"kpis\":{");
    pthread_mutex_lock(&st->mu);
    if (!st->kpis || xd_mono_ms() - st->kpis_ms > KPI_CACHE_MS) {
        pthread_mutex_unlock(&st->mu);
        struct xd_buf k;
        xd_buf_init(&k);
        rc = kpis_from_store(srv, &k);
        char *fresh = rc == 0 && !k.oom ? xd_buf_steal(&k) : NULL;
        xd_buf_dispose(&k);
        pthread_mutex_lock(&st->mu);
        if (fresh) {
            free(st->kpis);
            st->kpis = fresh;
            st->kpis_ms = xd_mono_ms();
        }
    }
    if (st->kpis)
        xd_buf_puts(o, st->kpis);
    pthread_mutex_unlock(&st->mu);

    if (srv->dispatcher) {
        static const double bounds[] = XD_S2C_BUCKETS;
        struct xd_s2c_stats s2c;
        xd_dispatch_s2c(srv->dispatcher, &s2c);
        xd_buf_printf(o, "%s\"ship_to_charge\":{\"count\":%llu", st->kpis ? "," : "",
                      (unsigned long long)s2c.count);
        if (s2c.count) {
            xd_buf_printf(o, ",\"avg_s\":%.1f", s2c.sum_s / (double)s2c.count);
            /* p50 and p95 as the bucket bound they fall under */
            const double qs[] = {0.5, 0.95};
            const char *names[] = {"p50_le_s", "p95_le_s"};
            for (int q = 0; q < 2; q++) {
                uint64_t cum = 0;
                double le = -1;
                for (size_t b = 0; b < XD_NS2C && le < 0; b++) {
                    cum += s2c.buckets[b];
                    if ((double)cum >= qs[q] * (double)s2c.count)
                        le = bounds[b];
                }
                if (le < 0)
                    xd_buf_printf(o, ",\"%s\":null", names[q]);
                else
                    xd_buf_printf(o, ",\"%s\":%g", names[q], le);
            }
        }
        xd_buf_putc(o, '}');
    }
    xd_buf_putc(o, '}');
    return rc;
}

void xd_h_stats(struct xd_req *r)
{
    struct xd_server *srv = r->srv;
    struct xd_stats *st = srv->stats;
    struct xd_buf *o = &r->out;
    xd_buf_reset(o);
    if (!st) {
        xd_http_problem(r, 503, "overloaded", "Service Unavailable", "statistics unavailable",
                        NULL);
        return;
    }
    int64_t events = 0, backlog = 0, dead = 0;
    int rc = xd_store_count_events(srv->store, &events);
    char now[64];
    xd_iso_ms(now, sizeof now, xd_now_ms());
    xd_buf_printf(o, "{\"now\":\"%s\",\"window_minutes\":%d,", now, SLOTS);
    /* Endpoints other parts of the hub may or may not serve yet: the page asks only those. */
    xd_buf_printf(o, "\"api\":{\"reconciliation\":%s,\"kpis\":%s},",
                  xd_http_has_route("GET", "/v1/reconciliation") ? "true" : "false",
                  xd_http_has_route("GET", "/v1/kpis") ? "true" : "false");

    struct xd_intake_totals dups;
    xd_intake_totals(&dups);
    pthread_mutex_lock(&st->mu);
    tick_locked(st);
    minutes_json(st, o);
    struct sample total = st->last;
    pthread_mutex_unlock(&st->mu);

    xd_buf_putc(o, ',');
    if (rc >= 0)
        rc = targets_json(srv, o, &backlog, &dead);
    xd_buf_printf(o,
                  ",\"totals\":{\"events_stored\":%lld,\"received\":%llu,\"rejected\":%llu,"
                  "\"duplicates\":%ld,\"delivered\":%llu,\"backlog\":%lld,\"dead_letters\":%lld}",
                  (long long)events, (unsigned long long)total.events,
                  (unsigned long long)total.rejected, dups.duplicates,
                  (unsigned long long)total.ok, (long long)backlog, (long long)dead);
    xd_buf_putc(o, ',');
    if (rc >= 0)
        rc = exceptions_json(srv, o);
    xd_buf_putc(o, ',');
    if (rc >= 0)
        rc = kpis_json(st, srv, o);
    xd_buf_putc(o, '}');
    if (rc < 0) {
        xd_http_store_error(r, rc);
        return;
    }
    xd_http_reply_json(r, 200);
}
