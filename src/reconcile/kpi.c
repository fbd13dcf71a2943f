/* Business KPIs from the store (see kpi.h). */
#include "reconcile/kpi.h"
#include "core/clock.h"
#include "core/err.h"
#include "rating/money.h"
#include "store/holds.h"
#include "store/store.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define FRESH_MS 5000 /* a snapshot this young is handed out again */

const char *const xd_kpi_age_names[XD_KPI_AGES] = {"lt_1h", "1h_1d", "1d_7d", "gt_7d"};

static int same(const char *a, const char *b)
{
    return strcmp(a ? a : "", b ? b : "") == 0;
}

static char *dup0(const char *s)
{
    return strdup(s ? s : "");
}

/* ---- revenue: summed once per charge, kept between snapshots ---- */

struct rev_sum {
    char *customer, *warehouse, *currency;
    struct xd_dec sum;
    int64_t n;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct xd_store *rev_store; /* the store the sums are of */
static int64_t rev_after;          /* charges up to this rowid are summed */
static struct rev_sum *rev;
static size_t nrev;
static struct xd_kpi_snapshot *cur;

static void rev_clear(void)
{
    for (size_t i = 0; i < nrev; i++) {
        free(rev[i].customer);
        free(rev[i].warehouse);
        free(rev[i].currency);
    }
    free(rev);
    rev = NULL;
    nrev = 0;
    rev_after = 0;
}

static void rev_row(void *ctx, int64_t rowid, const char *customer, const char *warehouse,
                    const char *currency, const char *amount)
{
    (void)ctx;
    struct xd_dec a, s;
    rev_after = rowid;
    if (!amount || xd_dec_parse(amount, &a) < 0)
        return;
    size_t i = 0;
    while (i < nrev && !(same(rev[i].customer, customer) && same(rev[i].warehouse, warehouse) &&
                         same(rev[i].currency, currency)))
        i++;
    if (i == nrev) {
        struct rev_sum *v = realloc(rev, (nrev + 1) * sizeof *v);
        if (!v)
            return;
        rev = v;
        rev[i] =
            (struct rev_sum){dup0(customer), dup0(warehouse), dup0(currency), xd_dec_int(0), 0};
        nrev++;
    }
    if (xd_dec_add(rev[i].sum, a, &s) == 0)
        rev[i].sum = s;
    rev[i].n++;
}

/* ---- times ---- */

struct samples {
    struct group {
        char *warehouse, *customer;
        double *v;
        size_t n, cap;
    } * g;
    size_t n;
};

static void sample(void *ctx, const struct xd_kpi_charge *c)
{
    struct samples *s = ctx;
    size_t i = 0;
    while (i < s->n &&
           !(same(s->g[i].warehouse, c->warehouse) && same(s->g[i].customer, c->customer)))
        i++;
    if (i == s->n) {
        struct group *v = realloc(s->g, (s->n + 1) * sizeof *v);
        if (!v)
            return;
        s->g = v;
        s->g[i] = (struct group){dup0(c->warehouse), dup0(c->customer), NULL, 0, 0};
        s->n++;
    }
    struct group *g = &s->g[i];
    if (g->n == g->cap) {
        size_t cap = g->cap ? g->cap * 2 : 64;
        double *v = realloc(g->v, cap * sizeof *v);
        if (!v)
            return;
        g->v = v;
        g->cap = cap;
    }
    double sec = (double)(c->accepted_ms - c->occurred_ms) / 1000.0;
    g->v[g->n++] = sec < 0 ? 0 : sec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The samples as per-group figures; frees the samples. */
static struct xd_kpi_times *summarise(struct samples *s, size_t *n)
{
    struct xd_kpi_times *t = calloc(s->n + 1, sizeof *t);
    for (size_t i = 0; i < s->n; i++) {
        struct group *g = &s->g[i];
        if (t && g->n) {
            qsort(g->v, g->n, sizeof *g->v, cmp_double);
            struct xd_kpi_times *k = &t[(*n)++];
            k->warehouse = g->warehouse;
            k->customer = g->customer;
            g->warehouse = g->customer = NULL;
            k->n = g->n;
            for (size_t j = 0; j < g->n; j++)
                k->sum_s += g->v[j];
            k->p50_s = g->v[(g->n - 1) / 2];
            k->p95_s = g->v[(size_t)((double)(g->n - 1) * 0.95)];
            k->max_s = g->v[g->n - 1];
        }
        free(g->warehouse);
        free(g->customer);
        free(g->v);
    }
    free(s->g);
    return t;
}

/* ---- exceptions and holds ---- */

struct exc_ctx {
    struct xd_kpi_snapshot *k;
    int64_t now;
};

static void exc_row(void *ctx, const char *category, const char *warehouse, const char *customer,
                    int64_t created_ms)
{
    struct exc_ctx *c = ctx;
    struct xd_kpi_snapshot *k = c->k;
    size_t i = 0;
    while (i < k->nexc &&
           !(same(k->exc[i].category, category) && same(k->exc[i].warehouse, warehouse) &&
             same(k->exc[i].customer, customer)))
        i++;
    if (i == k->nexc) {
        struct xd_kpi_exc *v = realloc(k->exc, (k->nexc + 1) * sizeof *v);
        if (!v)
            return;
        k->exc = v;
        memset(&v[i], 0, sizeof v[i]);
        v[i].category = dup0(category);
        v[i].warehouse = dup0(warehouse);
        v[i].customer = dup0(customer);
        k->nexc++;
    }
    int64_t age = c->now - created_ms;
    int b = age < 3600000 ? 0 : age < 86400000 ? 1 : age < 7 * 86400000LL ? 2 : 3;
    k->exc[i].by_age[b]++;
}

static void held_row(void *ctx, const char *table, const char *key, int64_t n, int64_t since)
{
    struct xd_kpi_snapshot *k = ctx;
    struct xd_kpi_held *v = realloc(k->held, (k->nheld + 1) * sizeof *v);
    if (!v)
        return;
    k->held = v;
    v[k->nheld++] = (struct xd_kpi_held){dup0(table), dup0(key), n, since};
}

static void snapshot_free(struct xd_kpi_snapshot *k)
{
    if (!k)
        return;
    for (size_t i = 0; i < k->ns2c; i++) {
        free(k->s2c[i].warehouse);
        free(k->s2c[i].customer);
    }
    for (size_t i = 0; i < k->nr2p; i++) {
        free(k->r2p[i].warehouse);
        free(k->r2p[i].customer);
    }
    for (size_t i = 0; i < k->nexc; i++) {
        free(k->exc[i].category);
        free(k->exc[i].warehouse);
        free(k->exc[i].customer);
    }
    for (size_t i = 0; i < k->nrev; i++) {
        free(k->rev[i].customer);
        free(k->rev[i].warehouse);
        free(k->rev[i].currency);
    }
    for (size_t i = 0; i < k->nheld; i++) {
        free(k->held[i].table);
        free(k->held[i].key);
    }
    free(k->s2c);
    free(k->r2p);
    free(k->exc);
    free(k->rev);
    free(k->held);
    free(k);
}

/* Computes a new snapshot (under mu). */
static struct xd_kpi_snapshot *compute(struct xd_store *s)
{
    struct xd_kpi_snapshot *k = calloc(1, sizeof *k);
    if (!k)
        return NULL;
    k->at_ms = xd_now_ms();
    int64_t lo = 0;
    int rc = xd_store_last_seq_before(s, k->at_ms - XD_KPI_WINDOW_MS, &lo);
    struct samples sm = {0};
    if (rc == 0)
        rc = xd_store_kpi_charges(s, lo, sample, &sm);
    k->s2c = summarise(&sm, &k->ns2c);
    memset(&sm, 0, sizeof sm);
    if (rc >= 0)
        rc = xd_store_kpi_receipts(s, lo, sample, &sm);
    k->r2p = summarise(&sm, &k->nr2p);
    struct exc_ctx ec = {.k = k, .now = k->at_ms};
    if (rc >= 0)
        rc = xd_store_kpi_exceptions(s, exc_row, &ec);
    if (rc >= 0)
        rc = xd_store_held(s, held_row, k);
    if (rc >= 0) {
        if (rev_store != s) {
            rev_clear();
            rev_store = s;
        }
        rc = xd_store_kpi_revenue(s, rev_after, rev_row, NULL);
    }
    if (rc >= 0) {
        k->rev = calloc(nrev + 1, sizeof *k->rev);
        for (size_t i = 0; k->rev && i < nrev; i++) {
            struct xd_kpi_revenue *r = &k->rev[k->nrev++];
            r->customer = dup0(rev[i].customer);
            r->warehouse = dup0(rev[i].warehouse);
            r->currency = dup0(rev[i].currency);
            r->charges = rev[i].n;
            xd_dec_format(rev[i].sum, r->amount, sizeof r->amount);
        }
    }
    if (rc < 0 || !k->s2c || !k->r2p) {
        snapshot_free(k);
        return NULL;
    }
    return k;
}

const struct xd_kpi_snapshot *xd_kpi_get(struct xd_store *s)
{
    pthread_mutex_lock(&mu);
    if (!cur || cur->at_ms + FRESH_MS < xd_now_ms() || rev_store != s) {
        struct xd_kpi_snapshot *k = compute(s);
        if (k) {
            k->refs = 1; /* the cache's */
            if (cur && --cur->refs == 0)
                snapshot_free(cur);
            cur = k;
        }
    }
    struct xd_kpi_snapshot *k = cur && rev_store == s ? cur : NULL;
    if (k)
        k->refs++;
    pthread_mutex_unlock(&mu);
    return k;
}

void xd_kpi_put(const struct xd_kpi_snapshot *k)
{
    if (!k)
        return;
    pthread_mutex_lock(&mu);
    struct xd_kpi_snapshot *m = (struct xd_kpi_snapshot *)k;
    if (--m->refs == 0)
        snapshot_free(m);
    pthread_mutex_unlock(&mu);
}
