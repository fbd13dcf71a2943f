/*
 * The store against real SQLite files in a fresh mkdtemp folder per test:
 * accepted / duplicate / conflict, atomic requests, group commit under
 * concurrent submitters, reads, persistence, and a read-only store.
 *
 * Events are built by hand (no JSON): the store only reads event_id, type,
 * bkey, occurred_at, source, body and hash. The "hash" here is a cheap
 * stand-in for SHA-256, a function of the body, which is all the store needs.
 * Nothing asserts on timing; where grouping matters, the test holds the
 * committer in a done callback so the grouping is certain.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/buf.h"
#include "core/config.h"
#include "core/err.h"
#include "core/log.h"
#include "ingest/event.h"
#include "store/store.h"

#include <sqlite3.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- fixtures ---- */

struct fx {
    char dir[64];  /* mkdtemp folder */
    char path[96]; /* the database file in it */
    struct xd_config *cfg;
    struct xd_store *s;
};

static struct xd_config *make_cfg(const char *path)
{
    struct xd_config *cfg = calloc(1, sizeof *cfg);
    if (!cfg)
        return NULL;
    cfg->store.driver = strdup("sqlite");
    cfg->store.path = strdup(path);
    cfg->store.synchronous = strdup("full");
    cfg->store.busy_timeout_ms = 5000;
    return cfg;
}

static void free_cfg(struct xd_config *cfg)
{
    if (!cfg)
        return;
    free(cfg->store.driver);
    free(cfg->store.path);
    free(cfg->store.synchronous);
    free(cfg);
}

static void rm_dir(const char *dir)
{
    static const char *const suffix[] = {"store.db",   "store.db-wal", "store.db-shm",  "new.db",
                                         "new.db-wal", "new.db-shm",   "new.db-journal"};
    char p[160];
    chmod(dir, 0755);
    for (size_t i = 0; i < sizeof suffix / sizeof suffix[0]; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, suffix[i]);
        unlink(p);
    }
    rmdir(dir);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    snprintf(f->dir, sizeof f->dir, "/tmp/xd-store-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->path, sizeof f->path, "%s/store.db", f->dir);
    f->cfg = make_cfg(f->path);
    if (!f->cfg)
        return -1;
    if (xd_store_open(f->cfg, &f->s, NULL) != 0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    xd_store_close(f->s);
    free_cfg(f->cfg);
    rm_dir(f->dir);
    free(f);
    return 0;
}

/* An event; strings are copied into a small arena the test frees. */
struct tev {
    struct xd_event ev;
    char id[64];
    char bkey[80];
    char body[160];
};

static void fake_hash(const char *body, size_t len, unsigned char out[32])
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)body[i]) * 1099511628211ull;
    for (int i = 0; i < 32; i++) {
        h = h * 6364136223846793005ull + 1442695040888963407ull;
        out[i] = (unsigned char)(h >> 56);
    }
}

/* Fills t with event `id`; `variant` changes the body (and so the hash). */
static void make_event(struct tev *t, const char *id, int variant)
{
    memset(t, 0, sizeof *t);
    snprintf(t->id, sizeof t->id, "%s", id);
    snprintf(t->bkey, sizeof t->bkey, "shipment:SHP-%s", id);
    snprintf(t->body, sizeof t->body,
             "{\"event_id\":\"%s\",\"type\":\"shipment.confirmed\",\"data\":{\"v\":%d}}", id,
             variant);
    t->ev.type = XD_EV_SHIPMENT_CONFIRMED;
    t->ev.event_id = t->id;
    t->ev.occurred_at = "2026-11-28T14:03:11Z";
    t->ev.source = "wms-dc1";
    t->ev.bkey = t->bkey;
    t->ev.body = t->body;
    t->ev.body_len = strlen(t->body);
    fake_hash(t->body, t->ev.body_len, t->ev.hash);
}

/* Appends a request of n events made from ids[i] / variants[i]; returns rc. */
static int append_events(struct xd_store *s, size_t n, const char *const *ids, const int *variants,
                         unsigned char *results)
{
    struct tev *t = calloc(n, sizeof *t);
    struct xd_event *evs = calloc(n, sizeof *evs);
    assert_non_null(t);
    assert_non_null(evs);
    for (size_t i = 0; i < n; i++) {
        make_event(&t[i], ids[i], variants ? variants[i] : 0);
        evs[i] = t[i].ev;
    }
    struct xd_append a = {.events = evs, .n = n, .results = results};
    int rc = xd_store_append(s, &a);
    assert_int_equal(rc, a.rc);
    free(evs);
    free(t);
    return rc;
}

static int append_one(struct xd_store *s, const char *id, int variant, unsigned char *result)
{
    return append_events(s, 1, &id, &variant, result);
}

static int64_t count(struct xd_store *s)
{
    int64_t n = -1;
    assert_int_equal(xd_store_count_events(s, &n), 0);
    return n;
}

/* 1 when id is stored, 0 when not, -1 on another error. */
static int present_quiet(struct xd_store *s, const char *id)
{
    struct xd_stored_event e;
    int rc = xd_store_get_event(s, id, &e);
    xd_stored_event_dispose(&e);
    return rc == 0 ? 1 : rc == XD_ENOTFOUND ? 0 : -1;
}

static int present(struct xd_store *s, const char *id)
{
    int p = present_quiet(s, id);
    assert_int_not_equal(p, -1);
    return p;
}

/* ---- cases ---- */

static void test_empty_and_not_found(void **state)
{
    struct fx *f = *state;
    struct xd_stored_event e;
    assert_int_equal(count(f->s), 0);
    assert_int_equal(xd_store_get_event(f->s, "nope", &e), XD_ENOTFOUND);
    xd_stored_event_dispose(&e);
    assert_int_equal(xd_store_ready(f->s), 0);
}

static void test_accept_and_get(void **state)
{
    struct fx *f = *state;
    unsigned char res = 0xff;
    assert_int_equal(append_one(f->s, "wms1-000123", 0, &res), 0);
    assert_int_equal(res, XD_APPEND_ACCEPTED);
    assert_int_equal(count(f->s), 1);

    struct tev t;
    make_event(&t, "wms1-000123", 0);
    struct xd_stored_event e;
    assert_int_equal(xd_store_get_event(f->s, "wms1-000123", &e), 0);
    assert_true(e.seq > 0);
    assert_string_equal(e.event_id, "wms1-000123");
    assert_string_equal(e.type, "shipment.confirmed");
    assert_string_equal(e.bkey, "shipment:SHP-wms1-000123");
    assert_string_equal(e.occurred_at, "2026-11-28T14:03:11Z");
    assert_string_equal(e.source, "wms-dc1");
    assert_string_equal(e.state, "received");
    assert_string_equal(e.body, t.body);
    assert_true(e.received_ms > 1700000000000LL);
    xd_stored_event_dispose(&e);
}

static void test_duplicate_same_hash(void **state)
{
    struct fx *f = *state;
    unsigned char res;
    assert_int_equal(append_one(f->s, "dup-1", 0, &res), 0);
    assert_int_equal(res, XD_APPEND_ACCEPTED);
    assert_int_equal(append_one(f->s, "dup-1", 0, &res), 0);
    assert_int_equal(res, XD_APPEND_DUPLICATE);
    assert_int_equal(count(f->s), 1);
}

static void test_conflict_rolls_back_request(void **state)
{
    struct fx *f = *state;
    unsigned char res[3];
    assert_int_equal(append_one(f->s, "c-1", 0, res), 0);

    /* c-2 is new, c-1 comes back with another body, c-3 is new: nothing of it stays. */
    const char *ids[] = {"c-2", "c-1", "c-3"};
    const int vars[] = {0, 1, 0};
    assert_int_equal(append_events(f->s, 3, ids, vars, res), XD_ECONFLICT);
    assert_int_equal(res[1], XD_APPEND_CONFLICT);
    assert_int_not_equal(res[0], XD_APPEND_CONFLICT);
    assert_int_not_equal(res[2], XD_APPEND_CONFLICT);
    assert_false(present(f->s, "c-2"));
    assert_false(present(f->s, "c-3"));
    assert_int_equal(count(f->s), 1);

    /* The stored c-1 is the original. */
    struct tev t;
    make_event(&t, "c-1", 0);
    struct xd_stored_event e;
    assert_int_equal(xd_store_get_event(f->s, "c-1", &e), 0);
    assert_string_equal(e.body, t.body);
    xd_stored_event_dispose(&e);

    /* The store goes on working after a conflict. */
    assert_int_equal(append_one(f->s, "c-2", 0, res), 0);
    assert_int_equal(res[0], XD_APPEND_ACCEPTED);
}

static void test_atomic_batch(void **state)
{
    struct fx *f = *state;
    enum { N = 100 };
    unsigned char res[N];
    assert_int_equal(append_one(f->s, "b-050", 0, res), 0);

    char idbuf[N][16];
    const char *ids[N];
    int vars[N];
    for (int i = 0; i < N; i++) {
        snprintf(idbuf[i], sizeof idbuf[i], "b-%03d", i);
        ids[i] = idbuf[i];
        vars[i] = i == 50 ? 7 : 0; /* b-050 conflicts */
    }
    assert_int_equal(append_events(f->s, N, ids, vars, res), XD_ECONFLICT);
    for (int i = 0; i < N; i++)
        assert_int_equal(res[i] == XD_APPEND_CONFLICT, i == 50);
    assert_int_equal(count(f->s), 1);

    /* Without the conflict the same batch goes in whole; b-050 is a duplicate. */
    vars[50] = 0;
    assert_int_equal(append_events(f->s, N, ids, vars, res), 0);
    for (int i = 0; i < N; i++)
        assert_int_equal(res[i], i == 50 ? XD_APPEND_DUPLICATE : XD_APPEND_ACCEPTED);
    assert_int_equal(count(f->s), N);
}

static void test_duplicates_inside_batch(void **state)
{
    struct fx *f = *state;
    unsigned char res[3];
    const char *ids[] = {"d-1", "d-2", "d-1"};
    const int same[] = {0, 0, 0};
    assert_int_equal(append_events(f->s, 3, ids, same, res), 0);
    assert_int_equal(res[0], XD_APPEND_ACCEPTED);
    assert_int_equal(res[1], XD_APPEND_ACCEPTED);
    assert_int_equal(res[2], XD_APPEND_DUPLICATE);
    assert_int_equal(count(f->s), 2);

    const char *ids2[] = {"d-3", "d-3"};
    const int differ[] = {0, 1};
    assert_int_equal(append_events(f->s, 2, ids2, differ, res), XD_ECONFLICT);
    assert_int_equal(res[0], XD_APPEND_ACCEPTED);
    assert_int_equal(res[1], XD_APPEND_CONFLICT);
    assert_false(present(f->s, "d-3"));
    assert_int_equal(count(f->s), 2);
}

static void test_persists_across_reopen(void **state)
{
    struct fx *f = *state;
    unsigned char res;
    assert_int_equal(append_one(f->s, "p-1", 0, &res), 0);
    assert_int_equal(append_one(f->s, "p-2", 0, &res), 0);
    xd_store_close(f->s);
    f->s = NULL;
    /*
     * A clean close checkpoints the WAL into the database file; the WAL file
     * itself is kept (sqlite.c), so that the store can be opened read-only
     * later. What matters is that everything is there after reopening.
     */

    free(f->cfg->store.synchronous);
    f->cfg->store.synchronous = strdup("normal");
    assert_int_equal(xd_store_open(f->cfg, &f->s, NULL), 0);
    assert_int_equal(count(f->s), 2);
    assert_true(present(f->s, "p-1"));
    assert_int_equal(append_one(f->s, "p-1", 0, &res), 0);
    assert_int_equal(res, XD_APPEND_DUPLICATE);
    assert_int_equal(append_one(f->s, "p-2", 1, &res), XD_ECONFLICT);
    assert_int_equal(append_one(f->s, "p-3", 0, &res), 0);

    struct xd_stored_event a, b;
    assert_int_equal(xd_store_get_event(f->s, "p-2", &a), 0);
    assert_int_equal(xd_store_get_event(f->s, "p-3", &b), 0);
    assert_true(b.seq > a.seq);
    xd_stored_event_dispose(&a);
    xd_stored_event_dispose(&b);
}

static int page_size(const char *path)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int n = -1;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(db, "PRAGMA page_size", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
}

/* A new store gets 8 KiB pages; a file made with 4 KiB pages keeps them and works. */
static void test_page_size(void **state)
{
    struct fx *f = *state;
    unsigned char res;
    assert_int_equal(append_one(f->s, "ps-1", 0, &res), 0);
    assert_int_equal(page_size(f->path), 8192);

    char old[128];
    snprintf(old, sizeof old, "%s/new.db", f->dir);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(old, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "PRAGMA page_size=4096; VACUUM", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    struct xd_config *cfg = make_cfg(old);
    struct xd_store *s = NULL;
    assert_int_equal(xd_store_open(cfg, &s, NULL), 0);
    assert_int_equal(append_one(s, "ps-2", 0, &res), 0);
    assert_int_equal(res, XD_APPEND_ACCEPTED);
    assert_int_equal(count(s), 1);
    xd_store_close(s);
    free_cfg(cfg);
    assert_int_equal(page_size(old), 4096);
}

static void test_bad_config_and_request(void **state)
{
    struct fx *f = *state;
    struct xd_store *s = NULL;
    struct xd_buf err;
    xd_buf_init(&err);
    struct xd_config *cfg = make_cfg(f->path);
    free(cfg->store.synchronous);
    cfg->store.synchronous = strdup("sometimes");
    assert_int_equal(xd_store_open(cfg, &s, &err), XD_ECONFIG);
    assert_null(s);
    assert_non_null(strstr(xd_buf_str(&err), "store.synchronous"));
    xd_buf_reset(&err);
    free(cfg->store.synchronous);
    cfg->store.synchronous = NULL;
    free(cfg->store.driver);
    cfg->store.driver = strdup("postgres"); /* without a url */
    assert_int_equal(xd_store_open(cfg, &s, &err), XD_ECONFIG);
    assert_non_null(strstr(xd_buf_str(&err), "store.url"));
    xd_buf_reset(&err);
    free(cfg->store.driver);
    cfg->store.driver = strdup("oracle");
    assert_int_equal(xd_store_open(cfg, &s, &err), XD_ECONFIG);
    assert_non_null(strstr(xd_buf_str(&err), "store.driver"));
    xd_buf_dispose(&err);
    free_cfg(cfg);

    /* An event without an id is refused before it is queued. */
    struct tev t;
    make_event(&t, "x", 0);
    t.ev.event_id = NULL;
    struct xd_append a = {.events = &t.ev, .n = 1};
    assert_int_equal(xd_store_append(f->s, &a), XD_EINVAL);
}

/* ---- group commit ---- */

enum { THREADS = 8, PER_THREAD = 500 };

struct worker {
    struct xd_store *s;
    int id;
    int failures;     /* appends that did not come back 0 / ACCEPTED */
    atomic_int acked; /* async completions seen */
};

static void count_done(struct xd_append *a, void *arg)
{
    struct worker *w = arg;
    if (a->rc != 0 || a->results[0] != XD_APPEND_ACCEPTED)
        w->failures++; /* only the committer thread writes it */
    atomic_fetch_add(&w->acked, 1);
}

/* Even workers append (and wait), odd ones submit everything, then wait. */
static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct tev *t = calloc(PER_THREAD, sizeof *t);
    struct xd_append *a = calloc(PER_THREAD, sizeof *a);
    unsigned char *res = calloc(PER_THREAD, 1);
    if (!t || !a || !res) {
        w->failures = -1;
        goto out;
    }
    for (int i = 0; i < PER_THREAD; i++) {
        char id[32];
        snprintf(id, sizeof id, "g-%d-%d", w->id, i);
        make_event(&t[i], id, 0);
        a[i] = (struct xd_append){.events = &t[i].ev, .n = 1, .results = &res[i]};
        if (w->id % 2 == 0) {
            if (xd_store_append(w->s, &a[i]) != 0 || res[i] != XD_APPEND_ACCEPTED)
                w->failures++;
        } else {
            a[i].done = count_done;
            a[i].arg = w;
            if (xd_store_submit(w->s, &a[i]) != 0)
                w->failures++;
        }
    }
    if (w->id % 2 == 1) {
        while (atomic_load(&w->acked) < PER_THREAD)
            usleep(1000);
    }
out:
    free(res);
    free(a);
    free(t);
    return NULL;
}

static void test_group_commit_threads(void **state)
{
    struct fx *f = *state;
    pthread_t th[THREADS];
    struct worker w[THREADS];
    for (int i = 0; i < THREADS; i++) {
        w[i] = (struct worker){.s = f->s, .id = i};
        atomic_init(&w[i].acked, 0);
        assert_int_equal(pthread_create(&th[i], NULL, worker_main, &w[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(w[i].failures, 0);
    }
    assert_int_equal(count(f->s), THREADS * PER_THREAD);
    for (int i = 0; i < THREADS; i++) {
        for (int j = 0; j < PER_THREAD; j++) {
            char id[32];
            snprintf(id, sizeof id, "g-%d-%d", i, j);
            assert_true(present(f->s, id));
        }
    }
    struct xd_store_stats st;
    xd_store_stats(f->s, &st);
    assert_int_equal(st.requests, THREADS * PER_THREAD);
    assert_int_equal(st.failed_groups, 0);
    assert_true(st.groups >= 1 && st.groups <= st.requests);
    print_message("    %d requests in %llu groups\n", THREADS * PER_THREAD,
                  (unsigned long long)st.groups);
}

/*
 * A gate held by the first request's done callback (in the committer thread)
 * so that the requests queued meanwhile all land in the next group together.
 */
struct gate {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int entered, open;
    atomic_int done;
};

static void gate_done(struct xd_append *a, void *arg)
{
    (void)a;
    struct gate *g = arg;
    pthread_mutex_lock(&g->mu);
    g->entered = 1;
    pthread_cond_broadcast(&g->cv);
    while (!g->open)
        pthread_cond_wait(&g->cv, &g->mu);
    pthread_mutex_unlock(&g->mu);
    atomic_fetch_add(&g->done, 1);
}

static void gate_count(struct xd_append *a, void *arg)
{
    (void)a;
    struct gate *g = arg;
    atomic_fetch_add(&g->done, 1);
}

/*
 * Single-event requests with no planner take no savepoint (store.c,
 * lone_event): a duplicate and a conflict in the same group as the event
 * they repeat must still come out right, and the conflict write nothing.
 */
static void test_same_event_in_one_group(void **state)
{
    struct fx *f = *state;
    struct gate g = {.entered = 0, .open = 0};
    pthread_mutex_init(&g.mu, NULL);
    pthread_cond_init(&g.cv, NULL);
    atomic_init(&g.done, 0);

    struct tev t[4];
    unsigned char res[4];
    make_event(&t[0], "gate", 0);
    make_event(&t[1], "same", 0);
    make_event(&t[2], "same", 0); /* duplicate of 1, in another request */
    make_event(&t[3], "same", 1); /* conflict with 1 */
    struct xd_append a[4];
    for (int i = 0; i < 4; i++)
        a[i] = (struct xd_append){.events = &t[i].ev,
                                  .n = 1,
                                  .results = &res[i],
                                  .done = i ? gate_count : gate_done,
                                  .arg = &g};

    assert_int_equal(xd_store_submit(f->s, &a[0]), 0);
    pthread_mutex_lock(&g.mu);
    while (!g.entered)
        pthread_cond_wait(&g.cv, &g.mu);
    pthread_mutex_unlock(&g.mu);
    for (int i = 1; i < 4; i++)
        assert_int_equal(xd_store_submit(f->s, &a[i]), 0);
    pthread_mutex_lock(&g.mu);
    g.open = 1;
    pthread_cond_broadcast(&g.cv);
    pthread_mutex_unlock(&g.mu);
    while (atomic_load(&g.done) < 4)
        usleep(1000);

    assert_int_equal(a[0].rc, 0);
    assert_int_equal(a[1].rc, 0);
    assert_int_equal(res[1], XD_APPEND_ACCEPTED);
    assert_int_equal(a[2].rc, 0);
    assert_int_equal(res[2], XD_APPEND_DUPLICATE);
    assert_int_equal(a[3].rc, XD_ECONFLICT);
    assert_int_equal(res[3], XD_APPEND_CONFLICT);
    assert_int_equal(count(f->s), 2);

    struct xd_store_stats st;
    xd_store_stats(f->s, &st);
    assert_int_equal(st.groups, 2); /* the gate's, then the three together */
    pthread_cond_destroy(&g.cv);
    pthread_mutex_destroy(&g.mu);
}

static void test_close_drains_queue(void **state)
{
    struct fx *f = *state;
    enum { N = 200 };
    struct gate g = {.entered = 0, .open = 1};
    pthread_mutex_init(&g.mu, NULL);
    pthread_cond_init(&g.cv, NULL);
    atomic_init(&g.done, 0);
    struct tev *t = calloc(N, sizeof *t);
    struct xd_append *a = calloc(N, sizeof *a);
    unsigned char res[N];
    assert_non_null(t);
    assert_non_null(a);
    for (int i = 0; i < N; i++) {
        char id[32];
        snprintf(id, sizeof id, "q-%d", i);
        make_event(&t[i], id, 0);
        a[i] = (struct xd_append){
            .events = &t[i].ev, .n = 1, .results = &res[i], .done = gate_count, .arg = &g};
        assert_int_equal(xd_store_submit(f->s, &a[i]), 0);
    }
    xd_store_close(f->s); /* every queued request is committed and answered */
    assert_int_equal(atomic_load(&g.done), N);
    for (int i = 0; i < N; i++)
        assert_int_equal(a[i].rc, 0);

    assert_int_equal(xd_store_open(f->cfg, &f->s, NULL), 0);
    assert_int_equal(count(f->s), N);
    free(a);
    free(t);
    pthread_cond_destroy(&g.cv);
    pthread_mutex_destroy(&g.mu);
}

/* Readers on several threads while a writer appends: no errors, counts only grow. */
struct reader_job {
    struct xd_store *s;
    atomic_int *stop;
    int errors;
    long reads;
};

static void *reader_main(void *arg)
{
    struct reader_job *j = arg;
    int64_t last = 0;
    while (!atomic_load(j->stop)) {
        int64_t n = 0;
        if (xd_store_count_events(j->s, &n) != 0 || n < last)
            j->errors++;
        last = n;
        struct xd_stored_event e;
        int rc = xd_store_get_event(j->s, "r-0", &e);
        if (rc != 0 && rc != XD_ENOTFOUND)
            j->errors++;
        if (rc == 0 && strcmp(e.event_id, "r-0") != 0)
            j->errors++;
        xd_stored_event_dispose(&e);
        if (xd_store_ready(j->s) != 0)
            j->errors++;
        j->reads++;
    }
    return NULL;
}

static void test_concurrent_reads(void **state)
{
    struct fx *f = *state;
    enum { READERS = 4, WRITES = 300 };
    atomic_int stop;
    atomic_init(&stop, 0);
    pthread_t th[READERS];
    struct reader_job j[READERS];
    for (int i = 0; i < READERS; i++) {
        j[i] = (struct reader_job){.s = f->s, .stop = &stop};
        assert_int_equal(pthread_create(&th[i], NULL, reader_main, &j[i]), 0);
    }
    for (int i = 0; i < WRITES; i++) {
        char id[32];
        unsigned char res;
        snprintf(id, sizeof id, "r-%d", i);
        assert_int_equal(append_one(f->s, id, 0, &res), 0);
    }
    atomic_store(&stop, 1);
    for (int i = 0; i < READERS; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(j[i].errors, 0);
        assert_true(j[i].reads > 0);
    }
    assert_int_equal(count(f->s), WRITES);
}

/* ---- read-only ---- */

/*
 * The read-only checks, without cmocka (they may run in a child process):
 * returns 0, or the line of the first failed check.
 */
#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "check failed at line %d: %s\n", __LINE__, #cond);                     \
            line = __LINE__;                                                                       \
            goto out;                                                                              \
        }                                                                                          \
    } while (0)

/* chmod path and its -wal and -shm files (when they exist). */
static int chmod_all(const char *path, mode_t mode)
{
    char side[160];
    if (chmod(path, mode) != 0)
        return -1;
    snprintf(side, sizeof side, "%s-wal", path);
    if (chmod(side, mode) != 0 && errno != ENOENT)
        return -1;
    snprintf(side, sizeof side, "%s-shm", path);
    if (chmod(side, mode) != 0 && errno != ENOENT)
        return -1;
    return 0;
}

static int readonly_checks(struct fx *f)
{
    int line = 0;
    struct xd_store *s = NULL;
    struct xd_config *cfg = NULL;
    struct xd_stored_event e = {0};
    char newpath[128];
    unsigned char res;

    /* A read-only file: reads work, writes and readiness say read-only. */
    CHECK(chmod(f->path, 0444) == 0);
    CHECK(xd_store_open(f->cfg, &s, NULL) == 0);
    CHECK(xd_store_ready(s) == XD_EREADONLY);
    CHECK(xd_store_get_event(s, "ro-1", &e) == 0);
    xd_stored_event_dispose(&e);
    struct tev t;
    make_event(&t, "ro-2", 0);
    struct xd_append a = {.events = &t.ev, .n = 1, .results = &res};
    CHECK(xd_store_append(s, &a) == XD_EREADONLY);
    CHECK(xd_store_ready(s) == XD_EREADONLY);
    CHECK(present_quiet(s, "ro-2") == 0);

    /*
     * Writable again (SQLite made the -wal and -shm files read-only like the
     * database, so they are fixed too, as `chmod u+w store.db*` would): the
     * next request just works, without a restart.
     */
    CHECK(chmod_all(f->path, 0644) == 0);
    CHECK(xd_store_append(s, &a) == 0);
    CHECK(res == XD_APPEND_ACCEPTED);
    CHECK(xd_store_ready(s) == 0);
    CHECK(present_quiet(s, "ro-2") == 1);
    xd_store_close(s);
    s = NULL;

    /*
     * File and folder read-only (as on a file system remounted read-only):
     * the WAL files were kept at close, so the store still opens for reads;
     * writes and readiness say read-only.
     */
    CHECK(chmod(f->path, 0444) == 0);
    CHECK(chmod(f->dir, 0555) == 0);
    CHECK(xd_store_open(f->cfg, &s, NULL) == 0);
    CHECK(xd_store_ready(s) == XD_EREADONLY);
    CHECK(present_quiet(s, "ro-2") == 1);
    xd_store_close(s);
    s = NULL;

    /* A new store in a read-only folder cannot be created. */
    snprintf(newpath, sizeof newpath, "%s/new.db", f->dir);
    cfg = make_cfg(newpath);
    CHECK(cfg != NULL);
    CHECK(xd_store_open(cfg, &s, NULL) == XD_EREADONLY);
    CHECK(s == NULL);
out:
    xd_store_close(s);
    free_cfg(cfg);
    chmod(f->dir, 0755);
    chmod_all(f->path, 0644);
    return line;
}

static void test_readonly_store(void **state)
{
    struct fx *f = *state;
    unsigned char res;
    assert_int_equal(append_one(f->s, "ro-1", 0, &res), 0);
    xd_store_close(f->s);
    f->s = NULL;

    if (geteuid() != 0) {
        assert_int_equal(readonly_checks(f), 0);
    } else {
        /* root ignores file modes: run the checks as nobody, in a child. */
        assert_int_equal(chown(f->dir, 65534, 65534), 0);
        assert_int_equal(chown(f->path, 65534, 65534), 0);
        /* The WAL files persist across closes (sqlite.c): hand them over too. */
        char side[160];
        snprintf(side, sizeof side, "%s-wal", f->path);
        if (chown(side, 65534, 65534) != 0)
            assert_int_equal(errno, ENOENT);
        snprintf(side, sizeof side, "%s-shm", f->path);
        if (chown(side, 65534, 65534) != 0)
            assert_int_equal(errno, ENOENT);
        fflush(NULL);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            if (setgid(65534) != 0 || setuid(65534) != 0)
                _exit(100);
            prctl(PR_SET_DUMPABLE, 1); /* lets LeakSanitizer inspect the child */
            int line = readonly_checks(f);
            /* exit, not _exit: the sanitizers' leak check runs at exit. */
            exit(line ? 1 : 0);
        }
        int status = 0;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
        assert_int_equal(chown(f->dir, 0, 0), 0);
    }
    assert_int_equal(xd_store_open(f->cfg, &f->s, NULL), 0);
    assert_int_equal(count(f->s), 2);
}

int main(void)
{
    if (getenv("XD_TEST_DEBUG"))
        xd_log_setup(XD_LOG_DEBUG, 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_empty_and_not_found, setup, teardown),
        cmocka_unit_test_setup_teardown(test_accept_and_get, setup, teardown),
        cmocka_unit_test_setup_teardown(test_duplicate_same_hash, setup, teardown),
        cmocka_unit_test_setup_teardown(test_conflict_rolls_back_request, setup, teardown),
        cmocka_unit_test_setup_teardown(test_atomic_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_duplicates_inside_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_persists_across_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_page_size, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_config_and_request, setup, teardown),
        cmocka_unit_test_setup_teardown(test_group_commit_threads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_same_event_in_one_group, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_drains_queue, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_reads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_readonly_store, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
