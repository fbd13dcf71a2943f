/*
 * The PostgreSQL side of store/holds.h (sqlite_holds.c's counterpart, the
 * same semantics): xref entries, master-data holds, SLA rows, exceptions
 * opened once per dedup key, owner rules, alerts and KPI reads, as the table
 * xd_pg_holds (holds_int.h). Writes run on the committer
 * (xd_store_ext_write), reads on a pooled reader (xd_store_ext_read), row by
 * row (xd_pg_each). The owner of a new exception is set by the trigger
 * exceptions_route (postgres.c, schema version 4).
 *
 * Several nodes: a held delivery is released by whichever node stores the
 * entry, in the committer's transaction; the others' claims see it pending.
 */
#include "core/err.h"
#include "store/holds.h"
#include "store/holds_int.h"
#include "store/postgres_int.h"
#include "transform/transform.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    struct xd_pg_params p = {.n = 0};
    xd_pg_text(&p, x->category);
    xd_pg_text(&p, x->event_id);
    xd_pg_text(&p, x->target);
    xd_pg_text(&p, x->reason ? x->reason : x->category);
    xd_pg_text(&p, x->dedup);
    xd_pg_int(&p, now_ms);
    xd_pg_int(&p, x->ever ? 1 : 0);
    PGresult *r;
    int rc = xd_pg_exec(c,
                        "INSERT INTO exceptions (category, event_id, target, reason, dedup,"
                        " created_ms, updated_ms)"
                        " SELECT $1::text, $2::text, $3::text, $4::text, $5::text, $6::bigint,"
                        " $6::bigint WHERE NOT EXISTS (SELECT 1 FROM exceptions"
                        "  WHERE category = $1::text AND dedup = $5::text"
                        "  AND ($7::int = 1 OR state != 'resolved'))"
                        /* Another node opening it now: its row wins, this one is not added. */
                        " ON CONFLICT (category, dedup) WHERE dedup IS NOT NULL"
                        " AND state != 'resolved' DO NOTHING",
                        &p, &r, "open exception once");
    if (rc < 0)
        return rc;
    if (opened)
        *opened = xd_pg_changes(r) > 0;
    PQclear(r);
    return 0;
}

/* A NUL-terminated copy of n bytes of s (NULL when out of memory). */
static char *dup_n(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

int xd_pg_hold(struct xd_store_conn *c, const struct xd_outcome_rec *o, int64_t now_ms)
{
    const char *t, *k;
    size_t tl, kl;
    if (!xd_jq_xref_miss(o->error, &t, &tl, &k, &kl))
        return XD_EINVAL; /* a hold says what it waits for */
    char *table = dup_n(t, tl), *key = dup_n(k, kl);
    char *dedup = entry_dedup(t, tl, k, kl);
    char *reason = malloc(tl + kl + 160);
    PGresult *r = NULL;
    int rc = XD_ENOMEM;
    if (!table || !key || !dedup || !reason)
        goto out;
    struct xd_pg_params p = {.n = 0};
    xd_pg_int(&p, o->delivery_id);
    xd_pg_text(&p, table);
    xd_pg_text(&p, key);
    xd_pg_text(&p, o->error);
    rc = xd_pg_exec(c,
                    "UPDATE deliveries d SET hold_table = $2::text, hold_key = $3::text,"
                    " last_error = $4::text, error_class = 'master_data' WHERE d.id = $1::bigint"
                    " RETURNING d.target, (SELECT e.event_id FROM events e"
                    "                      WHERE e.seq = d.event_seq)",
                    &p, &r, "hold delivery");
    if (rc < 0 || PQntuples(r) == 0)
        goto out;
    snprintf(reason, tl + kl + 160,
             "xref %.*s has no entry for %.*s: deliveries that need it wait "
             "(PUT /v1/xref/%.*s/%.*s releases them)",
             (int)tl, t, (int)kl, k, (int)tl, t, (int)kl, k);
    const char *target = xd_pg_col_str(r, 0, 0);
    struct xd_exc_new x = {.category = "master_data",
                           .dedup = dedup,
                           .event_id = xd_pg_col_str(r, 0, 1),
                           .target = target ? target : "",
                           .reason = reason};
    rc = open_once(c, &x, now_ms, NULL);
out:
    PQclear(r);
    free(table);
    free(key);
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
    struct xd_pg_params p = {.n = 0};
    xd_pg_text(&p, a->table);
    xd_pg_text(&p, a->key);
    xd_pg_int(&p, now_ms);
    xd_pg_text(&p, a->why);
    /*
     * The timeline lines are written for the rows the UPDATE released: with
     * another node releasing the same entry at once, each row is released
     * (and told) once.
     */
    PGresult *r;
    int rc = xd_pg_exec(c,
                        "WITH u AS (UPDATE deliveries SET state = 0, next_ms = $3::bigint,"
                        "  updated_ms = $3::bigint, hold_table = NULL, hold_key = NULL"
                        "  WHERE state = 4 AND hold_table = $1::text AND hold_key = $2::text"
                        "  RETURNING id)"
                        " INSERT INTO attempts (delivery_id, at_ms, status, latency_us, outcome,"
                        " error) SELECT id, $3::bigint, 0, 0, 'released', $4::text FROM u",
                        &p, &r, "release held deliveries");
    if (rc < 0)
        return rc;
    a->released = xd_pg_changes(r);
    PQclear(r);
    char *dedup = entry_dedup(a->table, strlen(a->table), a->key, strlen(a->key));
    if (!dedup)
        return XD_ENOMEM;
    p.n = 0;
    xd_pg_text(&p, dedup);
    xd_pg_int(&p, now_ms);
    xd_pg_text(&p, a->why);
    rc = xd_pg_exec(c,
                    "UPDATE exceptions SET state = 'resolved', updated_ms = $2::bigint,"
                    " note = coalesce(note || '; ', '') || $3::text"
                    " WHERE category = 'master_data' AND dedup = $1::text"
                    " AND state != 'resolved'",
                    &p, NULL, "resolve master_data exception");
    free(dedup);
    return rc;
}

static int w_put(struct xd_store_conn *c, void *arg, int64_t now_ms)
{
    struct release_arg *a = arg;
    if (a->put) {
        struct xd_pg_params p = {.n = 0};
        xd_pg_text(&p, a->table);
        xd_pg_text(&p, a->key);
        xd_pg_text(&p, a->value);
        xd_pg_int(&p, now_ms);
        int rc = xd_pg_exec(c,
                            "INSERT INTO xref_entries (tbl, key, value, updated_ms)"
                            " VALUES ($1::text, $2::text, $3::text, $4::bigint)"
                            " ON CONFLICT (tbl, key) DO UPDATE SET value = excluded.value,"
                            " updated_ms = excluded.updated_ms",
                            &p, NULL, "put xref entry");
        if (rc < 0)
            return rc;
    }
    return release(c, a, now_ms);
}

static int pg_xref_put(struct xd_store *s, const char *table, const char *key, const char *value,
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

static int pg_release_holds(struct xd_store *s, const char *table, const char *key, const char *why,
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
    struct xd_pg_params p = {.n = 0};
    xd_pg_text(&p, a->table);
    xd_pg_text(&p, a->key);
    PGresult *r;
    int rc = xd_pg_exec(c, "DELETE FROM xref_entries WHERE tbl = $1::text AND key = $2::text", &p,
                        &r, "delete xref entry");
    if (rc < 0)
        return rc;
    a->found = xd_pg_changes(r) > 0;
    PQclear(r);
    return 0;
}

static int pg_xref_delete(struct xd_store *s, const char *table, const char *key)
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
    const struct xd_pg_params *params;
    void (*row)(const PGresult *r, void *ctx);
    void *ctx;
};

static int r_query(struct xd_store_conn *c, void *arg)
{
    struct read_arg *a = arg;
    return xd_pg_each(c, a->sql, a->params, a->row, a->ctx, "read");
}

/* Runs sql on a pooled reader; rows to row(). Returns rows or an xd_err. */
static int query(struct xd_store *s, const char *sql, const struct xd_pg_params *params,
                 void (*row)(const PGresult *r, void *ctx), void *ctx)
{
    struct read_arg a = {.sql = sql, .params = params, .row = row, .ctx = ctx};
    return xd_store_ext_read(s, r_query, &a);
}

/* Columns of the one row a row callback gets. */
static const char *col(const PGresult *r, int i)
{
    return xd_pg_col_str(r, 0, i);
}

static int64_t col_i64(const PGresult *r, int i)
{
    return xd_pg_col_i64(r, 0, i);
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

static void row_xref(const PGresult *r, void *p)
{
    struct cb_ctx *c = p;
    c->fn.xref(c->ctx, col(r, 0), col(r, 1), col(r, 2), col_i64(r, 3));
}

static int pg_xref_list(struct xd_store *s, const char *table,
                        void (*cb)(void *ctx, const char *table, const char *key, const char *value,
                                   int64_t updated_ms),
                        void *ctx)
{
    struct cb_ctx c = {.fn.xref = cb, .ctx = ctx};
    struct xd_pg_params p = {.n = 0};
    xd_pg_text(&p, table);
    return query(s,
                 "SELECT tbl, key, value, updated_ms FROM xref_entries"
                 " WHERE $1::text IS NULL OR tbl = $1::text ORDER BY tbl, key",
                 &p, row_xref, &c);
}

static void row_held(const PGresult *r, void *p)
{
    struct cb_ctx *c = p;
    c->fn.held(c->ctx, col(r, 0), col(r, 1), col_i64(r, 2), col_i64(r, 3));
}

static int pg_held(struct xd_store *s,
                   void (*cb)(void *ctx, const char *table, const char *key, int64_t n,
                              int64_t since_ms),
                   void *ctx)
{
    struct cb_ctx c = {.fn.held = cb, .ctx = ctx};
    return query(s,
                 "SELECT hold_table, hold_key, count(*), min(updated_ms) FROM deliveries"
                 " WHERE state = 4 GROUP BY hold_table, hold_key ORDER BY 4",
                 NULL, row_held, &c);
}

static void row_target_n(const PGresult *r, void *p)
{
    struct cb_ctx *c = p;
    c->fn.target_n(c->ctx, col(r, 0), col_i64(r, 1));
}

static int pg_held_by_target(struct xd_store *s,
                             void (*cb)(void *ctx, const char *target, int64_t n), void *ctx)
{
    struct cb_ctx c = {.fn.target_n = cb, .ctx = ctx};
    return query(s, "SELECT target, count(*) FROM deliveries WHERE state = 4 GROUP BY target", NULL,
                 row_target_n, &c);
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

static int pg_open_exception_once(struct xd_store *s, const struct xd_exc_new *x, int *opened)
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
    int rc = xd_pg_exec(c, "DELETE FROM exception_owners", NULL, NULL, "clear owner rules");
    for (size_t i = 0; rc == 0 && i < a->n; i++) {
        struct xd_pg_params p = {.n = 0};
        xd_pg_int(&p, (int64_t)i);
        xd_pg_text(&p, a->r[i].category);
        xd_pg_text(&p, a->r[i].warehouse);
        xd_pg_text(&p, a->r[i].customer);
        xd_pg_text(&p, a->r[i].owner ? a->r[i].owner : "");
        rc = xd_pg_exec(c,
                        "INSERT INTO exception_owners (pos, category, warehouse, customer, owner)"
                        " VALUES ($1::int, $2::text, $3::text, $4::text, $5::text)",
                        &p, NULL, "add owner rule");
    }
    return rc;
}

static int pg_set_owner_rules(struct xd_store *s, const struct xd_owner_rule *r, size_t n)
{
    struct rules_arg a = {.r = r, .n = n};
    struct xd_ext_op op = {.fn = w_rules, .arg = &a};
    return xd_store_ext_write(s, &op);
}

static void row_brief(const PGresult *r, void *p)
{
    struct cb_ctx *c = p;
    struct xd_exc_brief x = {
        .id = col_i64(r, 0),
        .category = col(r, 1),
        .state = col(r, 2),
        .event_id = col(r, 3),
        .target = col(r, 4),
        .reason = col(r, 5),
        .owner = col(r, 6),
        .warehouse = col(r, 7),
        .customer = col(r, 8),
        .created_ms = col_i64(r, 9),
    };
    c->fn.brief(c->ctx, &x);
}

static void row_cat(const PGresult *r, void *p)
{
    struct cb_ctx *c = p;
    c->fn.cat(c->ctx, col(r, 0), col_i64(r, 1), col_i64(r, 2));
}

static int pg_unalerted_categories(struct xd_store *s,
                                   void (*cb)(void *ctx, const char *category, int64_t n,
                                              int64_t max_id),
                                   void *ctx)
{
    struct cb_ctx c = {.fn.cat = cb, .ctx = ctx};
    return query(s,
                 "SELECT category, count(*), max(id) FROM exceptions WHERE alerted_ms IS NULL"
                 " GROUP BY category ORDER BY min(id)",
                 NULL, row_cat, &c);
}

static int pg_unalerted(struct xd_store *s, const char *category, int64_t max_id, size_t limit,
                        void (*cb)(void *ctx, const struct xd_exc_brief *x), void *ctx)
{
    struct cb_ctx c = {.fn.brief = cb, .ctx = ctx};
    struct xd_pg_params p = {.n = 0};
    xd_pg_text(&p, category);
    xd_pg_int(&p, max_id);
    xd_pg_int(&p, (int64_t)(limit ? limit : 100));
    return query(s,
                 "SELECT id, category, state, event_id, target, reason, owner, warehouse,"
                 " customer, created_ms FROM exceptions WHERE alerted_ms IS NULL"
                 " AND category = $1::text AND id <= $2::bigint ORDER BY id LIMIT $3::bigint",
                 &p, row_brief, &c);
}

struct mark_arg {
    const char *category;
    int64_t max_id;
};

static int w_mark(struct xd_store_conn *c, void *arg, int64_t now_ms)
{
    struct mark_arg *a = arg;
    struct xd_pg_params p = {.n = 0};
    xd_pg_text(&p, a->category);
    xd_pg_int(&p, a->max_id);
    xd_pg_int(&p, now_ms);
    return xd_pg_exec(c,
                      "UPDATE exceptions SET alerted_ms = $3::bigint WHERE alerted_ms IS NULL"
                      " AND category = $1::text AND id <= $2::bigint",
                      &p, NULL, "mark alerted");
}

static int pg_mark_alerted(struct xd_store *s, const char *category, int64_t max_id)
{
    if (!category)
        return XD_EINVAL;
    struct mark_arg a = {.category = category, .max_id = max_id};
    struct xd_ext_op op = {.fn = w_mark, .arg = &a};
    return xd_store_ext_write(s, &op);
}

/* ---- SLA ---- */

static void row_sla(const PGresult *r, void *p)
{
    struct cb_ctx *c = p;
    struct xd_sla_row s = {
        .seq = col_i64(r, 0),
        .event_id = col(r, 1),
        .type = col(r, 2),
        .received_ms = col_i64(r, 3),
        .deliveries = col_i64(r, 4),
        .skipped = col_i64(r, 5),
        .done_ms = col_i64(r, 6),
        .to_target = col_i64(r, 7),
        .unfinished = col_i64(r, 8),
    };
    c->fn.sla(c->ctx, &s);
}

static int pg_sla_rows(struct xd_store *s, int64_t after_seq, int64_t due_ms, const char *route,
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
    struct xd_pg_params p = {.n = 0};
    xd_pg_text(&p, route);
    xd_pg_text(&p, target);
    xd_pg_int(&p, after_seq);
    xd_pg_int(&p, last);
    xd_pg_int(&p, (int64_t)(limit ? limit : 500));
    /* One pass over the event's deliveries (deliveries_event) instead of one per figure. */
    return query(s,
                 "SELECT e.seq, e.event_id, e.type, e.received_ms, d.n, d.skipped,"
                 " coalesce(d.done_ms, 0), d.to_target, d.unfinished"
                 " FROM events e CROSS JOIN LATERAL (SELECT count(*) AS n,"
                 "  count(*) FILTER (WHERE state = 3) AS skipped,"
                 "  min(updated_ms) FILTER (WHERE target = $2::text AND state = 1) AS done_ms,"
                 "  count(*) FILTER (WHERE target = $2::text) AS to_target,"
                 "  count(*) FILTER (WHERE state IN (0, 2, 4)) AS unfinished"
                 "  FROM deliveries WHERE event_seq = e.seq AND route = $1::text) d"
                 " WHERE e.seq > $3::bigint AND e.seq <= $4::bigint"
                 " ORDER BY e.seq LIMIT $5::bigint",
                 &p, row_sla, &c);
}

struct seq_arg {
    int64_t ms, seq;
};

/* received_ms of the first event at or after seq; 0 when there is none (*rc set on failure). */
static int64_t received_at(struct xd_store_conn *c, int64_t seq, int *rc)
{
    struct xd_pg_params p = {.n = 0};
    xd_pg_int(&p, seq);
    PGresult *r;
    int e = xd_pg_exec(c,
                       "SELECT received_ms FROM events WHERE seq >= $1::bigint"
                       " ORDER BY seq LIMIT 1",
                       &p, &r, "received at");
    if (e < 0) {
        *rc = e;
        return 0;
    }
    int64_t ms = PQntuples(r) ? xd_pg_col_i64(r, 0, 0) : 0;
    PQclear(r);
    return ms;
}

/*
 * Binary search by journal position, as sqlite_holds.c does: received_ms
 * does not go down as seq goes up (a wall clock stepped back aside; with
 * several nodes, by as little as their commits interleave).
 */
static int r_last_seq(struct xd_store_conn *c, void *arg)
{
    struct seq_arg *a = arg;
    PGresult *r;
    int rc = xd_pg_exec(c, "SELECT coalesce(max(seq), 0) FROM events", NULL, &r, "max seq");
    if (rc < 0)
        return rc;
    int64_t hi = xd_pg_col_i64(r, 0, 0);
    PQclear(r);
    int64_t lo = 0; /* invariant: events up to lo are at or before ms; after hi, after it */
    if (received_at(c, hi, &rc) <= a->ms)
        lo = hi;
    while (rc == 0 && lo < hi) {
        int64_t mid = lo + (hi - lo + 1) / 2;
        if (received_at(c, mid, &rc) <= a->ms)
            lo = mid;
        else
            hi = mid - 1;
    }
    a->seq = lo;
    return rc;
}

static int pg_last_seq_before(struct xd_store *s, int64_t ms, int64_t *seq)
{
    *seq = 0;
    struct seq_arg a = {.ms = ms};
    int rc = xd_store_ext_read(s, r_last_seq, &a);
    if (rc == 0)
        *seq = a.seq;
    return rc < 0 ? rc : 0;
}

static void row_i64(const PGresult *r, void *p)
{
    *(int64_t *)p = col_i64(r, 0);
}

static int pg_meta_get(struct xd_store *s, const char *name, int64_t *v)
{
    *v = 0;
    struct xd_pg_params p = {.n = 0};
    xd_pg_text(&p, name);
    int rc =
        query(s, "SELECT value FROM store_meta WHERE key = 'meta:' || $1::text", &p, row_i64, v);
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
    struct xd_pg_params p = {.n = 0};
    xd_pg_text(&p, a->name);
    xd_pg_int(&p, a->v);
    return xd_pg_exec(c,
                      "INSERT INTO store_meta (key, value) VALUES ('meta:' || $1::text, $2::text)"
                      " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                      &p, NULL, "set meta");
}

static int pg_meta_set(struct xd_store *s, const char *name, int64_t v)
{
    if (!name || strlen(name) > 100)
        return XD_EINVAL;
    struct meta_arg a = {.name = name, .v = v};
    struct xd_ext_op op = {.fn = w_meta, .arg = &a};
    return xd_store_ext_write(s, &op);
}

/* ---- KPIs ---- */

static void row_kpi(const PGresult *r, void *p)
{
    struct cb_ctx *c = p;
    struct xd_kpi_charge k = {
        .warehouse = col(r, 0),
        .customer = col(r, 1),
        .occurred_ms = col_i64(r, 2),
        .accepted_ms = col_i64(r, 3),
    };
    c->fn.kpi(c->ctx, &k);
}

static int pg_kpi_charges(struct xd_store *s, int64_t after_seq,
                          void (*cb)(void *ctx, const struct xd_kpi_charge *c), void *ctx)
{
    struct cb_ctx c = {.fn.kpi = cb, .ctx = ctx};
    struct xd_pg_params p = {.n = 0};
    xd_pg_int(&p, after_seq);
    return query(s,
                 "SELECT c.warehouse, c.customer, c.occurred_us / 1000, min(d.updated_ms)"
                 " FROM deliveries d JOIN charges c ON c.charge_id = d.part"
                 " JOIN events e ON e.seq = d.event_seq"
                 " WHERE d.event_seq > $1::bigint AND d.part != '' AND d.state = 1"
                 " AND e.type = 'shipment.confirmed' AND c.reverses = ''"
                 " GROUP BY c.charge_id",
                 &p, row_kpi, &c);
}

/*
 * occurred_at is the event's RFC 3339 time (validated at intake); as
 * milliseconds since the epoch, cut towards zero like sqlite.c's CAST.
 */
static int pg_kpi_receipts(struct xd_store *s, int64_t after_seq,
                           void (*cb)(void *ctx, const struct xd_kpi_charge *c), void *ctx)
{
    struct cb_ctx c = {.fn.kpi = cb, .ctx = ctx};
    struct xd_pg_params p = {.n = 0};
    xd_pg_int(&p, after_seq);
    return query(s,
                 "SELECT e.body::json->'data'->>'warehouse', e.body::json->'data'->>'customer',"
                 " trunc(extract(epoch FROM e.occurred_at::timestamptz) * 1000)::bigint,"
                 " min(d.updated_ms)"
                 " FROM events e JOIN deliveries d ON d.event_seq = e.seq"
                 " WHERE e.seq > $1::bigint AND e.type = 'goods.received' AND d.target != ''"
                 " AND d.part = '' AND d.state = 1"
                 " GROUP BY e.seq",
                 &p, row_kpi, &c);
}

static void row_exc(const PGresult *r, void *p)
{
    struct cb_ctx *c = p;
    c->fn.exc(c->ctx, col(r, 0), col(r, 1), col(r, 2), col_i64(r, 3));
}

static int pg_kpi_exceptions(struct xd_store *s,
                             void (*cb)(void *ctx, const char *category, const char *warehouse,
                                        const char *customer, int64_t created_ms),
                             void *ctx)
{
    struct cb_ctx c = {.fn.exc = cb, .ctx = ctx};
    return query(s,
                 "SELECT category, warehouse, customer, created_ms FROM exceptions"
                 " WHERE state IN ('open', 'acknowledged')",
                 NULL, row_exc, &c);
}

static void row_rev(const PGresult *r, void *p)
{
    struct cb_ctx *c = p;
    c->fn.rev(c->ctx, col_i64(r, 0), col(r, 1), col(r, 2), col(r, 3), col(r, 4));
}

/* The charges' insertion number n stands for SQLite's rowid. */
static int pg_kpi_revenue(struct xd_store *s, int64_t after,
                          void (*cb)(void *ctx, int64_t rowid, const char *customer,
                                     const char *warehouse, const char *currency,
                                     const char *amount),
                          void *ctx)
{
    struct cb_ctx c = {.fn.rev = cb, .ctx = ctx};
    struct xd_pg_params p = {.n = 0};
    xd_pg_int(&p, after);
    return query(s,
                 "SELECT n, customer, warehouse, currency, amount FROM charges"
                 " WHERE n > $1::bigint ORDER BY n",
                 &p, row_rev, &c);
}

const struct xd_holds_ops xd_pg_holds = {
    .xref_put = pg_xref_put,
    .xref_delete = pg_xref_delete,
    .xref_list = pg_xref_list,
    .release_holds = pg_release_holds,
    .held = pg_held,
    .held_by_target = pg_held_by_target,
    .open_exception_once = pg_open_exception_once,
    .set_owner_rules = pg_set_owner_rules,
    .unalerted_categories = pg_unalerted_categories,
    .unalerted = pg_unalerted,
    .mark_alerted = pg_mark_alerted,
    .sla_rows = pg_sla_rows,
    .last_seq_before = pg_last_seq_before,
    .meta_get = pg_meta_get,
    .meta_set = pg_meta_set,
    .kpi_charges = pg_kpi_charges,
    .kpi_receipts = pg_kpi_receipts,
    .kpi_exceptions = pg_kpi_exceptions,
    .kpi_revenue = pg_kpi_revenue,
};
