/*
 * The PostgreSQL side of reconciliation (sqlite_recon.c's counterpart): the
 * acknowledgments targets gave (table acks), the rows the ledger is built
 * from, and exceptions keyed by the break they stand for
 * (exceptions.break_key). The ledger reads whole tables in id order, one
 * query each, row by row (xd_pg_each): one snapshot, never the whole table in
 * memory at once.
 */
#include "store/postgres_int.h"
#include "core/err.h"

static const char *text_or_empty(const PGresult *r, int col)
{
    const char *t = xd_pg_col_str(r, 0, col);
    return t ? t : "";
}

int xd_pg_record_ack(struct xd_store_conn *c, const struct xd_outcome_rec *o, int64_t now_ms)
{
    if (o->ack_len > 0x3fffffff)
        return XD_ETOOBIG;
    struct xd_pg_params p = {.n = 0};
    xd_pg_int(&p, o->delivery_id);
    xd_pg_int(&p, o->at_ms ? o->at_ms : now_ms);
    xd_pg_bytes(&p, o->ack, o->ack_len); /* its text as it is: a bytes parameter needs no NUL */
    return xd_pg_exec(c,
                      "INSERT INTO acks (delivery_id, at_ms, ack)"
                      " VALUES ($1::bigint, $2::bigint, convert_from($3::bytea, 'UTF8'))"
                      " ON CONFLICT (delivery_id) DO UPDATE SET at_ms = excluded.at_ms,"
                      " ack = excluded.ack",
                      &p, NULL, "record ack");
}

int xd_pg_open_keyed(struct xd_store_conn *c, const struct xd_exc_op *op, int64_t now_ms)
{
    struct xd_pg_params p = {.n = 0};
    xd_pg_text(&p, op->category);
    xd_pg_text(&p, op->event_id);
    xd_pg_text(&p, op->reason ? op->reason : "");
    xd_pg_text(&p, op->key);
    xd_pg_int(&p, now_ms);
    PGresult *r;
    int rc = xd_pg_exec(c,
                        "INSERT INTO exceptions (category, event_id, reason, break_key,"
                        " created_ms, updated_ms)"
                        " SELECT $1::text, $2::text, $3::text, $4::text, $5::bigint, $5::bigint"
                        " WHERE NOT EXISTS (SELECT 1 FROM exceptions"
                        " WHERE break_key = $4::text AND state != 'resolved')"
                        /* Another node opening it now: its row wins, this one is not added. */
                        " ON CONFLICT (break_key) WHERE break_key IS NOT NULL"
                        " AND state != 'resolved' DO NOTHING",
                        &p, &r, "open keyed exception");
    if (rc < 0)
        return rc;
    if (op->opened)
        *op->opened = xd_pg_changes(r) > 0;
    PQclear(r);
    return 0;
}

struct event_cb {
    void (*cb)(void *ctx, const struct xd_recon_event *e);
    void *ctx;
};

static void event_row(const PGresult *r, void *ctx)
{
    struct event_cb *a = ctx;
    struct xd_recon_event e = {
        .seq = xd_pg_col_i64(r, 0, 0),
        .event_id = text_or_empty(r, 1),
        .type = text_or_empty(r, 2),
        .bkey = text_or_empty(r, 3),
        .occurred_at = text_or_empty(r, 4),
        .received_ms = xd_pg_col_i64(r, 0, 5),
        .body = text_or_empty(r, 6),
    };
    a->cb(a->ctx, &e);
}

int xd_pg_recon_events(struct xd_store_conn *c,
                       void (*cb)(void *ctx, const struct xd_recon_event *e), void *ctx)
{
    struct event_cb a = {cb, ctx};
    int rc = xd_pg_each(c,
                        "SELECT seq, event_id, type, bkey, occurred_at, received_ms, body"
                        " FROM events ORDER BY seq",
                        NULL, event_row, &a, "ledger events");
    return rc < 0 ? rc : 0;
}

struct dlv_cb {
    void (*cb)(void *ctx, const struct xd_recon_dlv *d);
    void *ctx;
};

static void dlv_row(const PGresult *r, void *ctx)
{
    struct dlv_cb *a = ctx;
    struct xd_recon_dlv d = {
        .id = xd_pg_col_i64(r, 0, 0),
        .event_seq = xd_pg_col_i64(r, 0, 1),
        .route = text_or_empty(r, 2),
        .step = (unsigned)xd_pg_col_i64(r, 0, 3),
        .target = text_or_empty(r, 4),
        .part = text_or_empty(r, 5),
        .state = (int)xd_pg_col_i64(r, 0, 6),
        .attempts = (unsigned)xd_pg_col_i64(r, 0, 7),
        .created_ms = xd_pg_col_i64(r, 0, 8),
        .updated_ms = xd_pg_col_i64(r, 0, 9),
        .last_status = (int)xd_pg_col_i64(r, 0, 10),
        .last_error = xd_pg_col_str(r, 0, 11),
        .ack = xd_pg_col_str(r, 0, 12),
        .ack_ms = xd_pg_col_i64(r, 0, 13),
    };
    a->cb(a->ctx, &d);
}

int xd_pg_recon_deliveries(struct xd_store_conn *c,
                           void (*cb)(void *ctx, const struct xd_recon_dlv *d), void *ctx)
{
    struct dlv_cb a = {cb, ctx};
    int rc = xd_pg_each(
        c,
        "SELECT d.id, d.event_seq, d.route, d.step, d.target, d.part, d.state, d.attempts,"
        " d.created_ms, d.updated_ms, d.last_status, d.last_error, a.ack, a.at_ms"
        " FROM deliveries d LEFT JOIN acks a ON a.delivery_id = d.id ORDER BY d.id",
        NULL, dlv_row, &a, "ledger deliveries");
    return rc < 0 ? rc : 0;
}

struct keyed_cb {
    void (*cb)(void *ctx, int64_t id, const char *key, const char *state);
    void *ctx;
};

static void keyed_row(const PGresult *r, void *ctx)
{
    struct keyed_cb *a = ctx;
    a->cb(a->ctx, xd_pg_col_i64(r, 0, 0), text_or_empty(r, 1), text_or_empty(r, 2));
}

int xd_pg_keyed_open(struct xd_store_conn *c, const char *category,
                     void (*cb)(void *ctx, int64_t id, const char *key, const char *state),
                     void *ctx)
{
    struct keyed_cb a = {cb, ctx};
    struct xd_pg_params p = {.n = 0};
    xd_pg_text(&p, category);
    int rc = xd_pg_each(c,
                        "SELECT id, break_key, state FROM exceptions"
                        " WHERE break_key IS NOT NULL AND state != 'resolved'"
                        " AND ($1::text IS NULL OR category = $1::text) ORDER BY id",
                        &p, keyed_row, &a, "keyed exceptions");
    return rc < 0 ? rc : 0;
}
