/*
 * The SQLite side of reconciliation: the acknowledgments targets gave
 * (table acks), the rows the ledger is built from, and exceptions keyed by
 * the break they stand for (exceptions.break_key). The ledger reads whole
 * tables in id order with statements prepared per call: a report is rare
 * next to intake, and reading in one pass keeps it one snapshot.
 */
#include "store/sqlite_int.h"
#include "core/err.h"

#include <limits.h>
#include <string.h>

static const char *text(sqlite3_stmt *st, int i)
{
    return (const char *)sqlite3_column_text(st, i);
}

static const char *text_or_empty(sqlite3_stmt *st, int i)
{
    const char *t = text(st, i);
    return t ? t : "";
}

int xd_sqlite_record_ack(struct xd_store_conn *c, const struct xd_outcome_rec *o, int64_t now_ms)
{
    sqlite3 *db = xd_sqlite_db(c);
    sqlite3_stmt *st = NULL;
    if (o->ack_len > INT_MAX)
        return XD_ETOOBIG;
    int rc = sqlite3_prepare_v3(db,
                                "INSERT INTO acks (delivery_id, at_ms, ack) VALUES (?1, ?2, ?3)"
                                " ON CONFLICT (delivery_id) DO UPDATE SET at_ms = excluded.at_ms,"
                                " ack = excluded.ack",
                                -1, 0, &st, NULL);
    if (rc != SQLITE_OK)
        return xd_sqlite_fail(c, rc, "prepare ack");
    sqlite3_bind_int64(st, 1, o->delivery_id);
    sqlite3_bind_int64(st, 2, o->at_ms ? o->at_ms : now_ms);
    sqlite3_bind_text(st, 3, o->ack, (int)o->ack_len, SQLITE_STATIC);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : xd_sqlite_fail(c, rc, "record ack");
}

int xd_sqlite_open_keyed(struct xd_store_conn *c, const struct xd_exc_op *op, int64_t now_ms)
{
    sqlite3 *db = xd_sqlite_db(c);
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db,
                                "INSERT INTO exceptions (category, event_id, reason, break_key,"
                                " created_ms, updated_ms) SELECT ?1, ?2, ?3, ?4, ?5, ?5"
                                " WHERE NOT EXISTS (SELECT 1 FROM exceptions"
                                " WHERE break_key = ?4 AND state != 'resolved')",
                                -1, &st, NULL);
    if (rc != SQLITE_OK)
        return xd_sqlite_fail(c, rc, "prepare keyed exception");
    sqlite3_bind_text(st, 1, op->category, -1, SQLITE_STATIC);
    if (op->event_id)
        sqlite3_bind_text(st, 2, op->event_id, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 2);
    sqlite3_bind_text(st, 3, op->reason ? op->reason : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, op->key, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, now_ms);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return xd_sqlite_fail(c, rc, "open keyed exception");
    if (op->opened)
        *op->opened = sqlite3_changes(db) > 0;
    return 0;
}

int xd_sqlite_recon_events(struct xd_store_conn *c,
                           void (*cb)(void *ctx, const struct xd_recon_event *e), void *ctx)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(xd_sqlite_db(c),
                                "SELECT seq, event_id, type, bkey, occurred_at, received_ms, body"
                                " FROM events ORDER BY seq",
                                -1, &st, NULL);
    if (rc != SQLITE_OK)
        return xd_sqlite_fail(c, rc, "prepare ledger events");
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct xd_recon_event e = {
            .seq = sqlite3_column_int64(st, 0),
            .event_id = text_or_empty(st, 1),
            .type = text_or_empty(st, 2),
            .bkey = text_or_empty(st, 3),
            .occurred_at = text_or_empty(st, 4),
            .received_ms = sqlite3_column_int64(st, 5),
            .body = text_or_empty(st, 6),
        };
        cb(ctx, &e);
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : xd_sqlite_fail(c, rc, "ledger events");
}

int xd_sqlite_recon_deliveries(struct xd_store_conn *c,
                               void (*cb)(void *ctx, const struct xd_recon_dlv *d), void *ctx)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(
        xd_sqlite_db(c),
        "SELECT d.id, d.event_seq, d.route, d.step, d.target, d.part, d.state, d.attempts,"
        " d.created_ms, d.updated_ms, d.last_status, d.last_error, a.ack, a.at_ms"
        " FROM deliveries d LEFT JOIN acks a ON a.delivery_id = d.id ORDER BY d.id",
        -1, &st, NULL);
    if (rc != SQLITE_OK)
        return xd_sqlite_fail(c, rc, "prepare ledger deliveries");
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct xd_recon_dlv d = {
            .id = sqlite3_column_int64(st, 0),
            .event_seq = sqlite3_column_int64(st, 1),
            .route = text_or_empty(st, 2),
            .step = (unsigned)sqlite3_column_int(st, 3),
            .target = text_or_empty(st, 4),
            .part = text_or_empty(st, 5),
            .state = sqlite3_column_int(st, 6),
            .attempts = (unsigned)sqlite3_column_int(st, 7),
            .created_ms = sqlite3_column_int64(st, 8),
            .updated_ms = sqlite3_column_int64(st, 9),
            .last_status = sqlite3_column_int(st, 10),
            .last_error = text(st, 11),
            .ack = text(st, 12),
            .ack_ms = sqlite3_column_int64(st, 13),
        };
        cb(ctx, &d);
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : xd_sqlite_fail(c, rc, "ledger deliveries");
}

int xd_sqlite_keyed_open(struct xd_store_conn *c, const char *category,
                         void (*cb)(void *ctx, int64_t id, const char *key, const char *state),
                         void *ctx)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(xd_sqlite_db(c),
                                "SELECT id, break_key, state FROM exceptions"
                                " WHERE break_key IS NOT NULL AND state != 'resolved'"
                                " AND (?1 IS NULL OR category = ?1) ORDER BY id",
                                -1, &st, NULL);
    if (rc != SQLITE_OK)
        return xd_sqlite_fail(c, rc, "prepare keyed exceptions");
    if (category)
        sqlite3_bind_text(st, 1, category, -1, SQLITE_STATIC);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        cb(ctx, sqlite3_column_int64(st, 0), text_or_empty(st, 1), text_or_empty(st, 2));
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : xd_sqlite_fail(c, rc, "keyed exceptions");
}
