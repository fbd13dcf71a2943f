/*
 * The PostgreSQL driver seen as two nodes: two stores opened on one database
 * (XD_TEST_PG_URL; ctest's pg/test_store_pg starts a private cluster and sets
 * it, see tests/integration/xdpg.py). Without the variable it skips.
 *
 * Covers what only several nodes show: duplicate detection across nodes,
 * deliveries claimed with leases (a claim keeps the other node off, a key's
 * next delivery waits for the one before it, an expired lease passes on, a
 * clean close gives claims back, an outcome from a node whose lease was
 * taken over changes nothing), and job locks held by one node at a time;
 * and that what one node writes for reconciliation (acks, keyed exceptions),
 * tracing and the dashboard's aggregates reads the same on the other.
 * Time is passed in explicitly, so expiry needs no waiting.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/config.h"
#include "core/err.h"
#include "ingest/event.h"
#include "store/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LEASE_MS 60000

struct fx {
    struct xd_config *cfg;
    struct xd_store *a, *b; /* two nodes */
};

static struct xd_config *make_cfg(const char *url)
{
    struct xd_config *cfg = calloc(1, sizeof *cfg);
    assert_non_null(cfg);
    cfg->store.driver = strdup("postgres");
    cfg->store.url = strdup(url);
    cfg->store.lease_ms = LEASE_MS;
    return cfg;
}

static void free_cfg(struct xd_config *cfg)
{
    free(cfg->store.driver);
    free(cfg->store.url);
    free(cfg);
}

/* Every event starts one delivery to target "t" (route "r", step 0). */
static size_t plan(void *ctx, const struct xd_event *ev, struct xd_dlv_init *out, size_t max)
{
    (void)ctx;
    (void)ev;
    if (max < 1)
        return 0;
    out[0] = (struct xd_dlv_init){.route = "r", .step = 0, .target = "t"};
    return 1;
}

/* Empties the tables so each case starts clean (the database is shared by the cases). */
static void wipe(struct xd_store *s);

static int setup(void **state)
{
    const char *url = getenv("XD_TEST_PG_URL");
    struct fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->cfg = make_cfg(url);
    assert_int_equal(xd_store_open(f->cfg, &f->a, NULL), 0);
    assert_int_equal(xd_store_open(f->cfg, &f->b, NULL), 0);
    xd_store_set_planner(f->a, plan, NULL);
    xd_store_set_planner(f->b, plan, NULL);
    wipe(f->a);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    if (!f)
        return 0;
    xd_store_close(f->a);
    xd_store_close(f->b);
    free_cfg(f->cfg);
    free(f);
    return 0;
}

struct tev {
    struct xd_event ev;
    char id[64], bkey[80], body[160];
};

static void make_event(struct tev *t, const char *id, const char *key, int variant)
{
    memset(t, 0, sizeof *t);
    snprintf(t->id, sizeof t->id, "%s", id);
    snprintf(t->bkey, sizeof t->bkey, "shipment:%s", key);
    snprintf(t->body, sizeof t->body, "{\"event_id\":\"%s\",\"v\":%d}", id, variant);
    t->ev.type = XD_EV_SHIPMENT_CONFIRMED;
    t->ev.event_id = t->id;
    t->ev.occurred_at = "2026-11-28T14:03:11Z";
    t->ev.bkey = t->bkey;
    t->ev.body = t->body;
    t->ev.body_len = strlen(t->body);
    memset(t->ev.hash, variant + 1, sizeof t->ev.hash);
}

static int append(struct xd_store *s, const char *id, const char *key, int variant,
                  unsigned char *result)
{
    struct tev t;
    make_event(&t, id, key, variant);
    struct xd_append a = {.events = &t.ev, .n = 1, .results = result};
    return xd_store_append(s, &a);
}

/* What a fetch claimed: event ids in order, and the delivery ids. */
struct got {
    char ids[8][64];
    int64_t dlv[8];
    size_t n;
};

static void on_row(void *ctx, struct xd_stored_dlv *d)
{
    struct got *g = ctx;
    if (g->n < 8) {
        snprintf(g->ids[g->n], sizeof g->ids[0], "%s", d->event_id);
        g->dlv[g->n] = d->id;
        g->n++;
    }
    xd_stored_dlv_dispose(d);
}

static struct got fetch(struct xd_store *s, int64_t now)
{
    struct got g = {.n = 0};
    int rc = xd_store_fetch_ready(s, "t", now, 8, NULL, on_row, &g);
    assert_true(rc >= 0);
    assert_int_equal((size_t)rc, g.n);
    return g;
}

/* Records a delivery's outcome from node s; returns whether it applied. */
static int outcome(struct xd_store *s, int64_t id, int state, int64_t next_ms)
{
    struct xd_outcome_rec o = {.delivery_id = id, .state = state, .count_attempt = 1,
                               .next_ms = next_ms, .status = 200, .outcome = "ok"};
    unsigned char applied = 9;
    struct xd_append a = {.outcomes = &o, .noutcomes = 1, .results = &applied};
    assert_int_equal(xd_store_append(s, &a), 0);
    return applied;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wipes through the store's own writes: every pending delivery is settled. */
static void wipe(struct xd_store *s)
{
    for (;;) {
        struct got g = fetch(s, INT64_MAX / 4);
        if (g.n == 0)
            return;
        for (size_t i = 0; i < g.n; i++)
            outcome(s, g.dlv[i], XD_DLV_DONE, 0);
    }
}

/* ---- cases ---- */

static void test_duplicates_across_nodes(void **state)
{
    struct fx *f = *state;
    char id[64];
    snprintf(id, sizeof id, "dup-%lld", (long long)now_ms());
    unsigned char r = 9;
    assert_int_equal(append(f->a, id, id, 0, &r), 0);
    assert_int_equal(r, XD_APPEND_ACCEPTED);
    assert_int_equal(append(f->b, id, id, 0, &r), 0);
    assert_int_equal(r, XD_APPEND_DUPLICATE);
    assert_int_equal(append(f->b, id, id, 1, &r), XD_ECONFLICT);
    assert_int_equal(r, XD_APPEND_CONFLICT);
    struct xd_stored_event e;
    assert_int_equal(xd_store_get_event(f->b, id, &e), 0);
    assert_string_equal(e.event_id, id);
    xd_stored_event_dispose(&e);
    wipe(f->a);
}

/* A request of several events goes through append_many: the same results as one by one. */
static void test_batch_results(void **state)
{
    struct fx *f = *state;
    char a[48], b[48], q[48];
    long long u = (long long)now_ms();
    snprintf(a, sizeof a, "ba-%lld", u);
    snprintf(b, sizeof b, "bb-%lld", u);
    snprintf(q, sizeof q, "b\"q\\-%lld", u); /* array quoting */
    unsigned char r = 9;
    assert_int_equal(append(f->b, b, b, 0, &r), 0); /* stored before */

    struct tev t[5];
    make_event(&t[0], a, a, 0);
    make_event(&t[1], b, b, 0); /* duplicate of the stored one */
    make_event(&t[2], a, a, 0); /* duplicate of the first, in this request */
    make_event(&t[3], q, q, 0);
    make_event(&t[4], a, a, 1); /* conflicts with the first */
    struct xd_event evs[5];
    for (int i = 0; i < 5; i++)
        evs[i] = t[i].ev;
    unsigned char res[5];
    struct xd_append req = {.events = evs, .n = 5, .results = res};
    assert_int_equal(xd_store_append(f->a, &req), XD_ECONFLICT);
    assert_int_equal(res[0], XD_APPEND_ACCEPTED);
    assert_int_equal(res[1], XD_APPEND_DUPLICATE);
    assert_int_equal(res[2], XD_APPEND_DUPLICATE);
    assert_int_equal(res[3], XD_APPEND_ACCEPTED);
    assert_int_equal(res[4], XD_APPEND_CONFLICT);
    struct xd_stored_event e;
    assert_int_equal(xd_store_get_event(f->a, a, &e), XD_ENOTFOUND); /* rolled back whole */

    req.n = 4; /* without the conflict: stored, with their deliveries */
    assert_int_equal(xd_store_append(f->a, &req), 0);
    assert_int_equal(res[0], XD_APPEND_ACCEPTED);
    assert_int_equal(res[1], XD_APPEND_DUPLICATE);
    assert_int_equal(res[2], XD_APPEND_DUPLICATE);
    assert_int_equal(res[3], XD_APPEND_ACCEPTED);
    assert_int_equal(xd_store_get_event(f->b, q, &e), 0);
    assert_string_equal(e.event_id, q);
    assert_string_equal(e.body, t[3].body);
    xd_stored_event_dispose(&e);
    struct got g = fetch(f->a, now_ms() + 1000);
    int seen_a = 0, seen_q = 0;
    for (size_t i = 0; i < g.n; i++) {
        seen_a += strcmp(g.ids[i], a) == 0;
        seen_q += strcmp(g.ids[i], q) == 0;
    }
    assert_int_equal(seen_a, 1);
    assert_int_equal(seen_q, 1);
    wipe(f->a);
}

static void test_claims_and_leases(void **state)
{
    struct fx *f = *state;
    char k1[32], k2[32], e1[48], e2[48], e3[48];
    long long u = (long long)now_ms();
    snprintf(k1, sizeof k1, "K1-%lld", u);
    snprintf(k2, sizeof k2, "K2-%lld", u);
    snprintf(e1, sizeof e1, "%s-1", k1);
    snprintf(e2, sizeof e2, "%s-2", k1);
    snprintf(e3, sizeof e3, "%s-1", k2);
    assert_int_equal(append(f->a, e1, k1, 0, NULL), 0);
    assert_int_equal(append(f->b, e2, k1, 0, NULL), 0);
    assert_int_equal(append(f->a, e3, k2, 0, NULL), 0);
    int64_t t0 = now_ms();

    /* A claims the first of each key; B finds nothing: claimed, or behind a claimed one. */
    struct got ga = fetch(f->a, t0);
    assert_int_equal(ga.n, 2);
    assert_string_equal(ga.ids[0], e1);
    assert_string_equal(ga.ids[1], e3);
    assert_int_equal(fetch(f->b, t0).n, 0);
    /* A asks again: its own claims come back (the lease is renewed). */
    assert_int_equal(fetch(f->a, t0 + 10).n, 2);

    /* B cannot record an outcome for A's claim; A can. */
    assert_int_equal(outcome(f->b, ga.dlv[0], XD_DLV_DONE, 0), 0);
    assert_int_equal(outcome(f->a, ga.dlv[0], XD_DLV_DONE, 0), 1);
    /* e1 is done: e2 is first in K1's line now, and B may take it. */
    struct got gb = fetch(f->b, t0 + 20);
    assert_int_equal(gb.n, 1);
    assert_string_equal(gb.ids[0], e2);

    /* A's claim on e3 runs out: B takes it over; A's late outcome changes nothing. */
    gb = fetch(f->b, t0 + 10 + LEASE_MS + 1);
    assert_int_equal(gb.n, 2);
    assert_string_equal(gb.ids[1], e3);
    assert_int_equal(outcome(f->a, ga.dlv[1], XD_DLV_PENDING, t0), 0);
    /* A retry (pending again, later) releases the lease: anyone may take it when due. */
    assert_int_equal(outcome(f->b, gb.dlv[1], XD_DLV_PENDING, t0 + 100), 1);
    assert_int_equal(fetch(f->a, t0 + 50).n, 0); /* not due yet (e2 is B's) */
    ga = fetch(f->a, t0 + 100);
    assert_int_equal(ga.n, 1);
    assert_string_equal(ga.ids[0], e3);

    /* A clean close gives A's claims back at once. */
    xd_store_close(f->a);
    f->a = NULL;
    gb = fetch(f->b, t0 + 200);
    assert_int_equal(gb.n, 2);
    assert_string_equal(gb.ids[0], e2);
    assert_string_equal(gb.ids[1], e3);
    assert_int_equal(xd_store_open(f->cfg, &f->a, NULL), 0);
    xd_store_set_planner(f->a, plan, NULL);
    wipe(f->b);
}

/* Tries a job lock for up to 30 s; returns the last answer. */
static int lock_soon(struct xd_store *s, const char *name)
{
    int rc = 0;
    for (int i = 0; i < 600 && rc == 0; i++) {
        rc = xd_store_try_job_lock(s, name);
        if (rc == 0)
            nanosleep(&(struct timespec){0, 50 * 1000000L}, NULL);
    }
    return rc;
}

static void test_job_locks(void **state)
{
    struct fx *f = *state;
    assert_int_equal(xd_store_try_job_lock(f->a, "close"), 1);
    assert_int_equal(xd_store_try_job_lock(f->a, "close"), 0); /* another thread of A */
    assert_int_equal(xd_store_try_job_lock(f->b, "close"), 0); /* another node */
    assert_int_equal(xd_store_try_job_lock(f->b, "sla"), 1);   /* another job */
    xd_store_job_unlock(f->a, "close");
    assert_int_equal(xd_store_try_job_lock(f->b, "close"), 1);
    /*
     * A node that goes away gives up its locks with its session (once the
     * server has seen the connection close: a moment later).
     */
    xd_store_close(f->b);
    f->b = NULL;
    assert_int_equal(lock_soon(f->a, "close"), 1);
    assert_int_equal(lock_soon(f->a, "sla"), 1);
    xd_store_job_unlock(f->a, "close");
    xd_store_job_unlock(f->a, "sla");
    assert_int_equal(xd_store_try_job_lock(f->a, ""), XD_EINVAL);
}

struct find {
    const char *reason;
    int64_t *id;
};

static void find_reason(void *ctx, struct xd_exception *x)
{
    struct find *fd = ctx;
    if (strcmp(x->reason, fd->reason) == 0)
        *fd->id = x->id;
    xd_exception_dispose(x);
}

static void test_counters_and_exceptions(void **state)
{
    struct fx *f = *state;
    char name[48];
    snprintf(name, sizeof name, "ctr-%lld", (long long)now_ms());
    int64_t v1 = 0, v2 = 0, v3 = 0;
    assert_int_equal(xd_store_next_counter(f->a, name, &v1), 0);
    assert_int_equal(xd_store_next_counter(f->b, name, &v2), 0);
    assert_int_equal(xd_store_next_counter(f->a, name, &v3), 0);
    assert_int_equal(v1, 1);
    assert_int_equal(v2, 2);
    assert_int_equal(v3, 3);
    /* An exception opened on one node is read and changed on the other. */
    char reason[64];
    snprintf(reason, sizeof reason, "bad file %s", name);
    assert_int_equal(xd_store_open_exception(f->a, "rejected_file", NULL, reason), 0);
    struct xd_exception_filter xf = {.category = "rejected_file", .state = "open", .limit = 1000};
    int64_t id = 0;
    assert_true(xd_store_list_exceptions(f->b, &xf, find_reason, &(struct find){reason, &id}) > 0);
    assert_true(id > 0);
    assert_int_equal(xd_store_update_exception(f->b, id, "acknowledged", "ops", NULL), 0);
    assert_int_equal(xd_store_update_exception(f->a, id, "open", NULL, NULL), XD_ECONFLICT);
    struct xd_exception x;
    assert_int_equal(xd_store_get_exception(f->a, id, &x), 0);
    assert_string_equal(x.state, "acknowledged");
    assert_string_equal(x.owner, "ops");
    xd_exception_dispose(&x);
}

/* ---- reconciliation, traceparent and the dashboard's aggregates ---- */

struct one_dlv {
    int64_t id;
    char traceparent[80];
    char ack[64];
    int seen;
};

static void on_claim(void *ctx, struct xd_stored_dlv *d)
{
    struct one_dlv *o = ctx;
    o->id = d->id;
    snprintf(o->traceparent, sizeof o->traceparent, "%s", d->traceparent ? d->traceparent : "");
    xd_stored_dlv_dispose(d);
}

static void on_ledger(void *ctx, const struct xd_recon_dlv *d)
{
    struct one_dlv *o = ctx;
    if (d->id != o->id)
        return;
    o->seen++;
    snprintf(o->ack, sizeof o->ack, "%s", d->ack ? d->ack : "(none)");
}

struct sums {
    const char *warehouse;
    int64_t milli, n, backlog;
};

static void on_revenue(void *ctx, const char *customer, const char *warehouse,
                       const char *currency, int64_t milli, int64_t n)
{
    struct sums *m = ctx;
    if (strcmp(customer, "ACME") == 0 && strcmp(warehouse, m->warehouse) == 0 &&
        strcmp(currency, "USD") == 0) {
        m->milli += milli;
        m->n += n;
    }
}

static void on_backlog(void *ctx, const char *warehouse, int state, int64_t n)
{
    struct sums *m = ctx;
    if (strcmp(warehouse, m->warehouse) == 0 && state == XD_DLV_PENDING)
        m->backlog += n;
}

static void on_keyed(void *ctx, int64_t id, const char *key, const char *state)
{
    (void)id;
    struct find *fd = ctx;
    if (strcmp(key, fd->reason) == 0 && strcmp(state, "open") == 0)
        (*fd->id)++;
}

static void test_recon_and_aggregates(void **state)
{
    struct fx *f = *state;
    char id[64], wh[64], body[256];
    long long t = (long long)now_ms();
    snprintf(id, sizeof id, "rec-%lld", t);
    snprintf(wh, sizeof wh, "WH-%lld", t);
    snprintf(body, sizeof body,
             "{\"event_id\":\"%s\",\"data\":{\"warehouse\":\"%s\",\"customer\":\"ACME\"}}", id,
             wh);
    struct tev e;
    make_event(&e, id, id, 0);
    e.ev.body = body;
    e.ev.body_len = strlen(body);
    const char *tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    e.ev.traceparent = tp;
    struct xd_append a = {.events = &e.ev, .n = 1};
    assert_int_equal(xd_store_append(f->a, &a), 0);

    /* The traceparent comes back with the event and with its deliveries, on either node. */
    struct xd_stored_event got;
    assert_int_equal(xd_store_get_event(f->b, id, &got), 0);
    assert_string_equal(got.traceparent, tp);
    xd_stored_event_dispose(&got);
    struct sums m = {.warehouse = wh};
    assert_int_equal(xd_store_backlog_by_warehouse(f->b, on_backlog, &m), 0);
    assert_int_equal(m.backlog, 1);
    struct xd_dlv_filter df = {.state = -1, .event_id = id};
    int64_t n = 0;
    assert_int_equal(xd_store_count_matching(f->b, &df, &n), 0);
    assert_int_equal(n, 1);
    struct one_dlv o = {.id = 0};
    assert_int_equal(xd_store_fetch_ready(f->a, "t", now_ms(), 8, NULL, on_claim, &o), 1);
    assert_string_equal(o.traceparent, tp);

    /* Done with an ack and two charges: the ledger sees the ack, revenue sums exactly. */
    char c1[80], c2[80];
    snprintf(c1, sizeof c1, "%s-1", id);
    snprintf(c2, sizeof c2, "%s-2", id);
    struct xd_charge_rec ch[2];
    memset(ch, 0, sizeof ch);
    char *amounts[] = {"12345678901.01", "-0.015"};
    char *ids[] = {c1, c2};
    for (int i = 0; i < 2; i++) {
        ch[i].charge_id = ids[i];
        ch[i].event_id = id;
        ch[i].customer = "ACME";
        ch[i].code = "PICK";
        ch[i].unit = "line";
        ch[i].warehouse = wh;
        ch[i].reference = id;
        ch[i].currency = "USD";
        ch[i].service_date = "2099-12-31";
        ch[i].quantity = "1";
        ch[i].unit_price = amounts[i];
        ch[i].amount = amounts[i];
        ch[i].json = "{}";
    }
    const char *ack = "{\"ref\":\"ERP-7\"}";
    struct xd_outcome_rec rec = {.delivery_id = o.id,
                                 .state = XD_DLV_DONE,
                                 .count_attempt = 1,
                                 .status = 200,
                                 .outcome = "ok",
                                 .charges = ch,
                                 .ncharges = 2,
                                 .ack = ack,
                                 .ack_len = strlen(ack)};
    unsigned char applied = 9;
    struct xd_append oa = {.outcomes = &rec, .noutcomes = 1, .results = &applied};
    assert_int_equal(xd_store_append(f->a, &oa), 0);
    assert_int_equal(applied, 1);
    assert_int_equal(xd_store_recon_deliveries(f->b, on_ledger, &o), 0);
    assert_int_equal(o.seen, 1);
    assert_string_equal(o.ack, ack);
    assert_int_equal(xd_store_revenue(f->b, "2099-12-31", on_revenue, &m), 0);
    assert_int_equal(m.n, 2);
    assert_true(m.milli == 12345678901010LL - 15);
    m.backlog = 0;
    assert_int_equal(xd_store_backlog_by_warehouse(f->b, on_backlog, &m), 0);
    assert_int_equal(m.backlog, 0);

    /* Keyed exceptions: one not resolved per key, whichever node opens it. */
    struct xd_keyed_exc k = {.key = id, .category = "recon_test", .event_id = id,
                             .reason = "break"};
    size_t opened = 9;
    assert_int_equal(xd_store_open_keyed(f->a, &k, 1, &opened), 0);
    assert_int_equal(opened, 1);
    assert_int_equal(xd_store_open_keyed(f->b, &k, 1, &opened), 0);
    assert_int_equal(opened, 0);
    int64_t open_n = 0;
    assert_int_equal(xd_store_keyed_open(f->b, "recon_test", on_keyed, &(struct find){id, &open_n}),
                     0);
    assert_int_equal(open_n, 1);
}

int main(void)
{
    const char *url = getenv("XD_TEST_PG_URL");
    if (!url || !*url) {
        printf("test_store_pg: skipped: XD_TEST_PG_URL is not set (ctest runs it as "
               "pg/test_store_pg, with a private PostgreSQL cluster)\n");
        return 0;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_duplicates_across_nodes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch_results, setup, teardown),
        cmocka_unit_test_setup_teardown(test_claims_and_leases, setup, teardown),
        cmocka_unit_test_setup_teardown(test_job_locks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_counters_and_exceptions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_recon_and_aggregates, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
