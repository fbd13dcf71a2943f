/*
 * The SQLite side of store/holds.h: xref entries, master-data holds, SLA
 * rows, exceptions opened once per dedup key, owner rules, alerts and KPI
 * reads, as the table xd_sqlite_holds (holds_int.h). Writes run on the
 * committer (xd_store_ext_write), reads on a pooled reader
 * (xd_store_ext_read). These statements run rarely (an
 * operator's PUT, a once-a-second sweep, a scrape), so they are prepared per
 * call rather than cached on the connection.
 */
#include "store/holds.h"
#include "store/holds_int.h"
#include "core/err.h"
#include "store/sqlite_int.h"
#include "store/store_int.h"
#include "transform/transform.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Prepares sql on c; 0 or the mapped error. */
static int prep(struct xd_store_conn *c, const char *sql, sqlite3_stmt **st)
{
    int rc = sqlite3_prepare_v2(xd_sqlite_db(c), sql, -1, st, NULL);
    return rc == SQLITE_OK ? 0 : xd_sqlite_fail(c, rc, "prepare");
}

static void bind_opt(sqlite3_stmt *st, int i, const char *v)
{
    if (v)
        sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

/* Steps a statement that returns no rows, finalizes it. */
static int done(struct xd_store_conn *c, sqlite3_stmt *st, const char *what)
{
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : xd_sqlite_fail(c, rc, what);
}

static const char *col(sqlite3_stmt *st, int i)
{
    return (const char *)sqlite3_column_text(st, i);
}

/* ---- holds ---- */

/* The dedup key of a missing entry's exception. */
static char *entry_dedup(const char *table, size_t tlen, const char *key, size_t klen)
{
    char *d = malloc(tlen + klen + 2);
    if (d) {
        memcpy(d, table, tlen);
        d[tlen] = '/';
        memcpy(d + tlen + 1, key, klen);
        d[tlen + 1 + klen] = '\0';
    }
    return d;
}

static int open_once(struct xd_store_conn *c, const struct xd_exc_new *x, int64_t now_ms,
                     int *opened)
{
    sqlite3_stmt *st = NULL;
    int rc = prep(c,
                  "INSERT INTO exceptions (category, event_id, target, reason, dedup, created_ms,"
                  " updated_ms) SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?6"
                  " WHERE NOT EXISTS (SELECT 1 FROM exceptions WHERE category = ?1 AND dedup = ?5"
                  "                   AND (?7 OR state != 'resolved'))",
                  &st);
    if (rc < 0)
        return rc;
    sqlite3_bind_text(st, 1, x->category, -1, SQLITE_STATIC);
    bind_opt(st, 2, x->event_id);
    bind_opt(st, 3, x->target);
    sqlite3_bind_text(st, 4, x->reason ? x->reason : x->category, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, x->dedup, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 6, now_ms);
    sqlite3_bind_int(st, 7, x->ever ? 1 : 0);
    rc = done(c, st, "open exception once");
    if (rc == 0 && opened)
        *opened = sqlite3_changes(xd_sqlite_db(c)) > 0;
    return rc;
}

int xd_sqlite_hold(struct xd_store_conn *c, const struct xd_outcome_rec *o, int64_t now_ms)
{
    const char *t, *k;
    size_t tl, kl;
    if (!xd_jq_xref_miss(o->error, &t, &tl, &k, &kl))
        return XD_EINVAL; /* a hold says what it waits for */
    sqlite3_stmt *st = NULL;
    int rc = prep(c,
                  "UPDATE deliveries SET hold_table = ?2, hold_key = ?3, last_error = ?4,"
                  " error_class = 'master_data' WHERE id = ?1 RETURNING target,"
                  " (SELECT e.event_id FROM events e WHERE e.seq = event_seq)",
                  &st);
    if (rc < 0)
        return rc;
    sqlite3_bind_int64(st, 1, o->delivery_id);
    sqlite3_bind_text(st, 2, t, (int)tl, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, k, (int)kl, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, o->error, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        sqlite3_finalize(st);
        return rc == SQLITE_DONE ? 0 : xd_sqlite_fail(c, rc, "hold delivery");
    }
    char *target = strdup(col(st, 0) ? col(st, 0) : "");
    char *event_id = col(st, 1) ? strdup(col(st, 1)) : NULL;
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    char *dedup = entry_dedup(t, tl, k, kl);
    char *reason = malloc(tl + kl + 160);
    if (rc != SQLITE_DONE || !target || !dedup || !reason) {
        rc = rc != SQLITE_DONE ? xd_sqlite_fail(c, rc, "hold delivery") : XD_ENOMEM;
        goto out;
    }
    snprintf(reason, tl + kl + 160,
             "xref %.*s has no entry for %.*s: deliveries that need it wait "
             "(PUT /v1/xref/%.*s/%.*s releases them)",
             (int)tl, t, (int)kl, k, (int)tl, t, (int)kl, k);
    struct xd_exc_new x = {.category = "master_data",
                           .dedup = dedup,
                           .event_id = event_id,
                           .target = target,
                           .reason = reason};
    rc = open_once(c, &x, now_ms, NULL);
out:
    free(target);
    free(event_id);
    free(dedup);
    free(reason);
    return rc;
}

struct release_arg {
    const char *table, *key, *value, *why;
    int put;          /* also write the xref entry */
    int64_t released; /* out */
};

/* Held deliveries of table/key back to pending, due now; their exception resolved. */
static int release(struct xd_store_conn *c, struct release_arg *a, int64_t now_ms)
{
    sqlite3_stmt *st = NULL;
    int rc = prep(c,
                  "INSERT INTO attempts (delivery_id, at_ms, status, latency_us, outcome, error)"
                  " SELECT id, ?3, 0, 0, 'released', ?4 FROM deliveries"
                  " WHERE state = 4 AND hold_table = ?1 AND hold_key = ?2",
                  &st);
    if (rc < 0)
        return rc;
    sqlite3_bind_text(st, 1, a->table, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, a->key, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, now_ms);
    sqlite3_bind_text(st, 4, a->why, -1, SQLITE_STATIC);
    rc = done(c, st, "release: timeline");
    if (rc < 0)
        return rc;
    rc = prep(c,
              "UPDATE deliveries SET state = 0, next_ms = ?3, updated_ms = ?3,"
              " hold_table = NULL, hold_key = NULL"
              " WHERE state = 4 AND hold_table = ?1 AND hold_key = ?2",
              &st);
    if (rc < 0)
        return rc;
    sqlite3_bind_text(st, 1, a->table, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, a->key, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, now_ms);
    rc = done(c, st, "release held deliveries");
    if (rc < 0)
        return rc;
    a->released = sqlite3_changes(xd_sqlite_db(c));
    char *dedup = entry_dedup(a->table, strlen(a->table), a->key, strlen(a->key));
    if (!dedup)
        return XD_ENOMEM;
    rc = prep(c,
              "UPDATE exceptions SET state = 'resolved', updated_ms = ?2,"
              " note = coalesce(note || '; ', '') || ?3"
              " WHERE category = 'master_data' AND dedup = ?1 AND state != 'resolved'",
              &st);
    if (rc == 0) {
        sqlite3_bind_text(st, 1, dedup, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, now_ms);
        sqlite3_bind_text(st, 3, a->why, -1, SQLITE_STATIC);
        rc = done(c, st, "resolve master_data exception");
    }
    free(dedup);
    return rc;
}

static int w_put(struct xd_store_conn *c, void *arg, int64_t now_ms)
{
    struct release_arg *a = arg;
    if (a->put) {
        sqlite3_stmt *st = NULL;
        int rc =
            prep(c,
                 "INSERT INTO xref_entries (tbl, key, value, updated_ms) VALUES (?1, ?2, ?3, ?4)"
                 " ON CONFLICT (tbl, key) DO UPDATE SET value = excluded.value,"
                 " updated_ms = excluded.updated_ms",
                 &st);
        if (rc < 0)
            return rc;
        sqlite3_bind_text(st, 1, a->table, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, a->key, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, a->value, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 4, now_ms);
        rc = done(c, st, "put xref entry");
        if (rc < 0)
            return rc;
    }
    return release(c, a, now_ms);
}

static int sq_xref_put(struct xd_store *s, const char *table, const char *key, const char *value,
                       int64_t *released)
{
    if (!table || !key || !value)
        return XD_EINVAL;
    char why[512];
    snprintf(why, sizeof why, "xref %.200s: %.200s added", table, key);
    struct release_arg a = {.table = table, .key = key, .value = value, .why = why, .put = 1};
    struct xd_ext_op op = {.fn = w_put, .arg = &a};
    int rc = xd_store_ext_write(s, &op);
    if (rc == 0 && released)
        *released = a.released;
    return rc;
}

static int sq_release_holds(struct xd_store *s, const char *table, const char *key, const char *why,
                            int64_t *released)
{
    if (!table || !key)
        return XD_EINVAL;
    struct release_arg a = {.table = table, .key = key, .why = why ? why : "released"};
    struct xd_ext_op op = {.fn = w_put, .arg = &a};
    int rc = xd_store_ext_write(s, &op);
    if (rc == 0 && released)
        *released = a.released;
    return rc;
}

struct del_arg {
    const char *table, *key;
    int found;
};

static int w_del(struct xd_store_conn *c, void *arg, int64_t now_ms)
{
    (void)now_ms;
    struct del_arg *a = arg;
    sqlite3_stmt *st = NULL;
    int rc = prep(c, "DELETE FROM xref_entries WHERE tbl = ?1 AND key = ?2", &st);
    if (rc < 0)
        return rc;
    sqlite3_bind_text(st, 1, a->table, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, a->key, -1, SQLITE_STATIC);
    rc = done(c, st, "delete xref entry");
    a->found = rc == 0 && sqlite3_changes(xd_sqlite_db(c)) > 0;
    return rc;
}

static int sq_xref_delete(struct xd_store *s, const char *table, const char *key)
{
    if (!table || !key)
        return XD_EINVAL;
    struct del_arg a = {.table = table, .key = key};
    struct xd_ext_op op = {.fn = w_del, .arg = &a};
    int rc = xd_store_ext_write(s, &op);
    return rc < 0 ? rc : (a.found ? 0 : XD_ENOTFOUND);
}

/* ---- generic reads: one query, each row to a callback ---- */

struct read_arg {
    const char *sql;
    void (*bind)(sqlite3_stmt *st, const void *params);
    const void *params;
    void (*row)(sqlite3_stmt *st, void *ctx);
    void *ctx;
};

static int r_query(struct xd_store_conn *c, void *arg)
{
    struct read_arg *a = arg;
    sqlite3_stmt *st = NULL;
    int rc = prep(c, a->sql, &st);
    if (rc < 0)
        return rc;
    if (a->bind)
        a->bind(st, a->params);
    int n = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        a->row(st, a->ctx);
        n++;
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? n : xd_sqlite_fail(c, rc, "read");
}

static int query(struct xd_store *s, const char *sql, void (*bind)(sqlite3_stmt *, const void *),
                 const void *params, void (*row)(sqlite3_stmt *, void *), void *ctx)
{
    struct read_arg a = {.sql = sql, .bind = bind, .params = params, .row = row, .ctx = ctx};
    return xd_store_ext_read(s, r_query, &a);
}

/*
 * Parameters for the reads below: text ?1, ?2, ?3 and integers ?4, ?5, ?6,
 * bound up to the highest one the statement names (SQLite creates every
 * parameter below the highest, used or not).
 */
struct params {
    const char *t1, *t2, *t3;
    int64_t i4, i5, i6;
};

static void bind_params(sqlite3_stmt *st, const void *p)
{
    const struct params *q = p;
    int n = sqlite3_bind_parameter_count(st);
    const char *t[] = {q->t1, q->t2, q->t3};
    int64_t v[] = {q->i4, q->i5, q->i6};
    for (int i = 1; i <= n && i <= 6; i++) {
        if (i <= 3)
            bind_opt(st, i, t[i - 1]);
        else
            sqlite3_bind_int64(st, i, v[i - 4]);
    }
}

/* A caller's callback (of the type its read hands rows to) and its context. */
struct cb_ctx {
    union {
        void (*xref)(void *, const char *, const char *, const char *, int64_t);
        void (*held)(void *, const char *, const char *, int64_t, int64_t);
        void (*target_n)(void *, const char *, int64_t);
        void (*brief)(void *, const struct xd_exc_brief *);
        void (*cat)(void *, const char *, int64_t, int64_t);
        void (*sla)(void *, const struct xd_sla_row *);
        void (*kpi)(void *, const struct xd_kpi_charge *);
        void (*exc)(void *, const char *, const char *, const char *, int64_t);
        void (*rev)(void *, int64_t, const char *, const char *, const char *, const char *);
    } fn;
    void *ctx;
};

static void row_xref(sqlite3_stmt *st, void *p)
{
    struct cb_ctx *c = p;
    c->fn.xref(c->ctx, col(st, 0), col(st, 1), col(st, 2), sqlite3_column_int64(st, 3));
}

static int sq_xref_list(struct xd_store *s, const char *table,
                        void (*cb)(void *ctx, const char *table, const char *key, const char *value,
                                   int64_t updated_ms),
                        void *ctx)
{
    struct cb_ctx c = {.fn.xref = cb, .ctx = ctx};
    struct params p = {.t1 = table};
    return query(s,
                 "SELECT tbl, key, value, updated_ms FROM xref_entries"
                 " WHERE ?1 IS NULL OR tbl = ?1 ORDER BY tbl, key",
                 bind_params, &p, row_xref, &c);
}

static void row_held(sqlite3_stmt *st, void *p)
{
    struct cb_ctx *c = p;
    c->fn.held(c->ctx, col(st, 0), col(st, 1), sqlite3_column_int64(st, 2),
               sqlite3_column_int64(st, 3));
}

static int sq_held(struct xd_store *s,
                   void (*cb)(void *ctx, const char *table, const char *key, int64_t n,
                              int64_t since_ms),
                   void *ctx)
{
    struct cb_ctx c = {.fn.held = cb, .ctx = ctx};
    return query(s,
                 "SELECT hold_table, hold_key, count(*), min(updated_ms) FROM deliveries"
                 " WHERE state = 4 GROUP BY hold_table, hold_key ORDER BY 4",
                 NULL, NULL, row_held, &c);
}

static void row_target_n(sqlite3_stmt *st, void *p)
{
    struct cb_ctx *c = p;
    c->fn.target_n(c->ctx, col(st, 0), sqlite3_column_int64(st, 1));
}

static int sq_held_by_target(struct xd_store *s,
                             void (*cb)(void *ctx, const char *target, int64_t n), void *ctx)
{
    struct cb_ctx c = {.fn.target_n = cb, .ctx = ctx};
    return query(s, "SELECT target, count(*) FROM deliveries WHERE state = 4 GROUP BY target", NULL,
                 NULL, row_target_n, &c);
}

/* ---- exceptions ---- */

struct once_arg {
    const struct xd_exc_new *x;
    int opened;
};

static int w_once(struct xd_store_conn *c, void *arg, int64_t now_ms)
{
    struct once_arg *a = arg;
    return open_once(c, a->x, now_ms, &a->opened);
}

static int sq_open_exception_once(struct xd_store *s, const struct xd_exc_new *x, int *opened)
{
    if (!x || !x->category || !x->dedup)
        return XD_EINVAL;
    struct once_arg a = {.x = x};
    struct xd_ext_op op = {.fn = w_once, .arg = &a};
    int rc = xd_store_ext_write(s, &op);
    if (rc == 0 && opened)
        *opened = a.opened;
    return rc;
}

struct rules_arg {
    const struct xd_owner_rule *r;
    size_t n;
};

static int w_rules(struct xd_store_conn *c, void *arg, int64_t now_ms)
{
    (void)now_ms;
    struct rules_arg *a = arg;
    sqlite3_stmt *st = NULL;
    int rc = prep(c, "DELETE FROM exception_owners", &st);
    if (rc == 0)
        rc = done(c, st, "clear owner rules");
    for (size_t i = 0; rc == 0 && i < a->n; i++) {
        rc = prep(c,
                  "INSERT INTO exception_owners (pos, category, warehouse, customer, owner)"
                  " VALUES (?1, ?2, ?3, ?4, ?5)",
                  &st);
        if (rc < 0)
            break;
        sqlite3_bind_int64(st, 1, (int64_t)i);
        bind_opt(st, 2, a->r[i].category);
        bind_opt(st, 3, a->r[i].warehouse);
        bind_opt(st, 4, a->r[i].customer);
        sqlite3_bind_text(st, 5, a->r[i].owner ? a->r[i].owner : "", -1, SQLITE_STATIC);
        rc = done(c, st, "add owner rule");
    }
    return rc;
}

static int sq_set_owner_rules(struct xd_store *s, const struct xd_owner_rule *r, size_t n)
{
    struct rules_arg a = {.r = r, .n = n};
    struct xd_ext_op op = {.fn = w_rules, .arg = &a};
    return xd_store_ext_write(s, &op);
}

static void row_brief(sqlite3_stmt *st, void *p)
{
    struct cb_ctx *c = p;
    struct xd_exc_brief x = {
        .id = sqlite3_column_int64(st, 0),
        .category = col(st, 1),
        .state = col(st, 2),
        .event_id = col(st, 3),
        .target = col(st, 4),
        .reason = col(st, 5),
        .owner = col(st, 6),
        .warehouse = col(st, 7),
        .customer = col(st, 8),
        .created_ms = sqlite3_column_int64(st, 9),
    };
    c->fn.brief(c->ctx, &x);
}

static void row_cat(sqlite3_stmt *st, void *p)
{
    struct cb_ctx *c = p;
    c->fn.cat(c->ctx, col(st, 0), sqlite3_column_int64(st, 1), sqlite3_column_int64(st, 2));
}

static int sq_unalerted_categories(struct xd_store *s,
                                   void (*cb)(void *ctx, const char *category, int64_t n,
                                              int64_t max_id),
                                   void *ctx)
{
    struct cb_ctx c = {.fn.cat = cb, .ctx = ctx};
    return query(s,
                 "SELECT category, count(*), max(id) FROM exceptions WHERE alerted_ms IS NULL"
                 " GROUP BY category ORDER BY min(id)",
                 NULL, NULL, row_cat, &c);
}

static int sq_unalerted(struct xd_store *s, const char *category, int64_t max_id, size_t limit,
                        void (*cb)(void *ctx, const struct xd_exc_brief *x), void *ctx)
{
    struct cb_ctx c = {.fn.brief = cb, .ctx = ctx};
    struct params p = {.t1 = category, .i4 = max_id, .i5 = (int64_t)(limit ? limit : 100)};
    return query(s,
                 "SELECT id, category, state, event_id, target, reason, owner, warehouse,"
                 " customer, created_ms FROM exceptions WHERE alerted_ms IS NULL"
                 " AND category = ?1 AND id <= ?4 ORDER BY id LIMIT ?5",
                 bind_params, &p, row_brief, &c);
}

struct mark_arg {
    const char *category;
    int64_t max_id;
};

static int w_mark(struct xd_store_conn *c, void *arg, int64_t now_ms)
{
    struct mark_arg *a = arg;
    sqlite3_stmt *st = NULL;
    int rc = prep(c,
                  "UPDATE exceptions SET alerted_ms = ?3 WHERE alerted_ms IS NULL"
                  " AND category = ?1 AND id <= ?2",
                  &st);
    if (rc < 0)
        return rc;
    sqlite3_bind_text(st, 1, a->category, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, a->max_id);
    sqlite3_bind_int64(st, 3, now_ms);
    return done(c, st, "mark alerted");
}

static int sq_mark_alerted(struct xd_store *s, const char *category, int64_t max_id)
{
    if (!category)
        return XD_EINVAL;
    struct mark_arg a = {.category = category, .max_id = max_id};
    struct xd_ext_op op = {.fn = w_mark, .arg = &a};
    return xd_store_ext_write(s, &op);
}

/* ---- SLA ---- */

static void row_sla(sqlite3_stmt *st, void *p)
{
    struct cb_ctx *c = p;
    struct xd_sla_row r = {
        .seq = sqlite3_column_int64(st, 0),
        .event_id = col(st, 1),
        .type = col(st, 2),
        .received_ms = sqlite3_column_int64(st, 3),
        .deliveries = sqlite3_column_int64(st, 4),
        .skipped = sqlite3_column_int64(st, 5),
        .done_ms = sqlite3_column_int64(st, 6),
        .to_target = sqlite3_column_int64(st, 7),
        .unfinished = sqlite3_column_int64(st, 8),
    };
    c->fn.sla(c->ctx, &r);
}

static int sq_sla_rows(struct xd_store *s, int64_t after_seq, int64_t due_ms, const char *route,
                       const char *target, size_t limit,
                       void (*cb)(void *ctx, const struct xd_sla_row *r), void *ctx)
{
    struct cb_ctx c = {.fn.sla = cb, .ctx = ctx};
    int64_t last = 0; /* the scan ends there, not at the journal's end */
    int rc = xd_store_last_seq_before(s, due_ms, &last);
    if (rc < 0)
        return rc;
    if (last <= after_seq)
        return 0;
    struct params p = {.t1 = route,
                       .t2 = target,
                       .t3 = NULL,
                       .i4 = after_seq,
                       .i5 = last,
                       .i6 = (int64_t)(limit ? limit : 500)};
    return query(s,
                 "SELECT e.seq, e.event_id, e.type, e.received_ms,"
                 " (SELECT count(*) FROM deliveries d WHERE d.event_seq = e.seq AND d.route = ?1),"
                 " (SELECT count(*) FROM deliveries d WHERE d.event_seq = e.seq AND d.route = ?1"
                 "  AND d.state = 3),"
                 " coalesce((SELECT min(d.updated_ms) FROM deliveries d WHERE d.event_seq = e.seq"
                 "  AND d.route = ?1 AND d.target = ?2 AND d.state = 1), 0),"
                 " (SELECT count(*) FROM deliveries d WHERE d.event_seq = e.seq AND d.route = ?1"
                 "  AND d.target = ?2),"
                 " (SELECT count(*) FROM deliveries d WHERE d.event_seq = e.seq AND d.route = ?1"
                 "  AND " STATE_OPEN("d") ")"
                 " FROM events e WHERE e.seq > ?4 AND e.seq <= ?5"
                 " ORDER BY e.seq LIMIT ?6",
                 bind_params, &p, row_sla, &c);
}

static void row_i64(sqlite3_stmt *st, void *p)
{
    *(int64_t *)p = sqlite3_column_int64(st, 0);
}

struct seq_arg {
    int64_t ms, seq;
};

/* received_ms of the first event at or after seq; 0 when there is none (*rc set on failure). */
static int64_t received_at(struct xd_store_conn *c, sqlite3_stmt *st, int64_t seq, int *rc)
{
    sqlite3_bind_int64(st, 1, seq);
    int r = sqlite3_step(st);
    int64_t ms = r == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    if (r != SQLITE_ROW && r != SQLITE_DONE)
        *rc = xd_sqlite_fail(c, r, "received at");
    sqlite3_reset(st);
    return ms;
}

/*
 * Binary search by journal position: events are committed in seq order and
 * each group's received_ms is taken as it commits, so received_ms does not
 * go down as seq goes up (a wall clock stepped back aside). About 2 log2(n)
 * primary-key lookups instead of a scan of the journal.
 */
static int r_last_seq(struct xd_store_conn *c, void *arg)
{
    struct seq_arg *a = arg;
    sqlite3_stmt *st = NULL;
    int rc = prep(c, "SELECT coalesce(max(seq), 0) FROM events", &st);
    if (rc < 0)
        return rc;
    int r = sqlite3_step(st);
    int64_t hi = r == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_finalize(st);
    if (r != SQLITE_ROW)
        return xd_sqlite_fail(c, r, "max seq");
    rc = prep(c, "SELECT received_ms FROM events WHERE seq >= ?1 ORDER BY seq LIMIT 1", &st);
    if (rc < 0)
        return rc;
    int64_t lo = 0; /* invariant: events up to lo are at or before ms; after hi, after it */
    if (received_at(c, st, hi, &rc) <= a->ms)
        lo = hi;
    while (rc == 0 && lo < hi) {
        int64_t mid = lo + (hi - lo + 1) / 2;
        if (received_at(c, st, mid, &rc) <= a->ms)
            lo = mid;
        else
            hi = mid - 1;
    }
    sqlite3_finalize(st);
    a->seq = lo;
    return rc;
}

static int sq_last_seq_before(struct xd_store *s, int64_t ms, int64_t *seq)
{
    *seq = 0;
    struct seq_arg a = {.ms = ms};
    int rc = xd_store_ext_read(s, r_last_seq, &a);
    if (rc == 0)
        *seq = a.seq;
    return rc < 0 ? rc : 0;
}

static int sq_meta_get(struct xd_store *s, const char *name, int64_t *v)
{
    *v = 0;
    struct params p = {.t1 = name};
    int rc = query(s, "SELECT value FROM store_meta WHERE key = 'meta:' || ?1", bind_params, &p,
                   row_i64, v);
    return rc < 0 ? rc : 0;
}

struct meta_arg {
    const char *name;
    int64_t v;
};

static int w_meta(struct xd_store_conn *c, void *arg, int64_t now_ms)
{
    (void)now_ms;
    struct meta_arg *a = arg;
    sqlite3_stmt *st = NULL;
    int rc = prep(c,
                  "INSERT INTO store_meta (key, value) VALUES ('meta:' || ?1, ?2)"
                  " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                  &st);
    if (rc < 0)
        return rc;
    sqlite3_bind_text(st, 1, a->name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, a->v);
    return done(c, st, "set meta");
}

static int sq_meta_set(struct xd_store *s, const char *name, int64_t v)
{
    if (!name || strlen(name) > 100)
        return XD_EINVAL;
    struct meta_arg a = {.name = name, .v = v};
    struct xd_ext_op op = {.fn = w_meta, .arg = &a};
    return xd_store_ext_write(s, &op);
}

/* ---- KPIs ---- */

static void row_kpi(sqlite3_stmt *st, void *p)
{
    struct cb_ctx *c = p;
    struct xd_kpi_charge k = {
        .warehouse = col(st, 0),
        .customer = col(st, 1),
        .occurred_ms = sqlite3_column_int64(st, 2),
        .accepted_ms = sqlite3_column_int64(st, 3),
    };
    c->fn.kpi(c->ctx, &k);
}

static int sq_kpi_charges(struct xd_store *s, int64_t after_seq,
                          void (*cb)(void *ctx, const struct xd_kpi_charge *c), void *ctx)
{
    struct cb_ctx c = {.fn.kpi = cb, .ctx = ctx};
    struct params p = {.i4 = after_seq};
    return query(s,
                 "SELECT c.warehouse, c.customer, c.occurred_us / 1000, min(d.updated_ms)"
                 " FROM deliveries d JOIN charges c ON c.charge_id = d.part"
                 " JOIN events e ON e.seq = d.event_seq"
                 " WHERE d.event_seq > ?4 AND d.part != '' AND d.state = 1"
                 " AND e.type = 'shipment.confirmed' AND c.reverses = ''"
                 " GROUP BY d.part",
                 bind_params, &p, row_kpi, &c);
}

static int sq_kpi_receipts(struct xd_store *s, int64_t after_seq,
                           void (*cb)(void *ctx, const struct xd_kpi_charge *c), void *ctx)
{
    struct cb_ctx c = {.fn.kpi = cb, .ctx = ctx};
    struct params p = {.i4 = after_seq};
    return query(s,
                 "SELECT json_extract(e.body, '$.data.warehouse'),"
                 " json_extract(e.body, '$.data.customer'),"
                 " CAST((julianday(e.occurred_at) - 2440587.5) * 86400000.0 AS INTEGER),"
                 " min(d.updated_ms)"
                 " FROM events e JOIN deliveries d ON d.event_seq = e.seq"
                 " WHERE e.seq > ?4 AND e.type = 'goods.received' AND d.target != ''"
                 " AND d.part = '' AND d.state = 1"
                 " GROUP BY e.seq",
                 bind_params, &p, row_kpi, &c);
}

static void row_exc(sqlite3_stmt *st, void *p)
{
    struct cb_ctx *c = p;
    c->fn.exc(c->ctx, col(st, 0), col(st, 1), col(st, 2), sqlite3_column_int64(st, 3));
}

static int sq_kpi_exceptions(struct xd_store *s,
                             void (*cb)(void *ctx, const char *category, const char *warehouse,
                                        const char *customer, int64_t created_ms),
                             void *ctx)
{
    struct cb_ctx c = {.fn.exc = cb, .ctx = ctx};
    return query(s,
                 "SELECT category, warehouse, customer, created_ms FROM exceptions"
                 " WHERE state IN ('open', 'acknowledged')",
                 NULL, NULL, row_exc, &c);
}

static void row_rev(sqlite3_stmt *st, void *p)
{
    struct cb_ctx *c = p;
    c->fn.rev(c->ctx, sqlite3_column_int64(st, 0), col(st, 1), col(st, 2), col(st, 3), col(st, 4));
}

static int sq_kpi_revenue(struct xd_store *s, int64_t after,
                          void (*cb)(void *ctx, int64_t rowid, const char *customer,
                                     const char *warehouse, const char *currency,
                                     const char *amount),
                          void *ctx)
{
    struct cb_ctx c = {.fn.rev = cb, .ctx = ctx};
    struct params p = {.i4 = after};
    return query(s,
                 "SELECT rowid, customer, warehouse, currency, amount FROM charges"
                 " WHERE rowid > ?4 ORDER BY rowid",
                 bind_params, &p, row_rev, &c);
}

const struct xd_holds_ops xd_sqlite_holds = {
    .xref_put = sq_xref_put,
    .xref_delete = sq_xref_delete,
    .xref_list = sq_xref_list,
    .release_holds = sq_release_holds,
    .held = sq_held,
    .held_by_target = sq_held_by_target,
    .open_exception_once = sq_open_exception_once,
    .set_owner_rules = sq_set_owner_rules,
    .unalerted_categories = sq_unalerted_categories,
    .unalerted = sq_unalerted,
    .mark_alerted = sq_mark_alerted,
    .sla_rows = sq_sla_rows,
    .last_seq_before = sq_last_seq_before,
    .meta_get = sq_meta_get,
    .meta_set = sq_meta_set,
    .kpi_charges = sq_kpi_charges,
    .kpi_receipts = sq_kpi_receipts,
    .kpi_exceptions = sq_kpi_exceptions,
    .kpi_revenue = sq_kpi_revenue,
};
