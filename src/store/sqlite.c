/*
 * The SQLite driver: the only file that includes sqlite3.h. It fills the
 * driver table of store_int.h; store.c decides when to begin, commit and roll
 * back, this file only knows how.
 *
 * Invariants:
 * - The database is in WAL mode, so one writer (the committer thread) and any
 *   number of read-only connections run side by side; readers see the last
 *   committed group, never part of one.
 * - synchronous=FULL by default: COMMIT returns only after the WAL is fsynced,
 *   which is what lets store.c acknowledge a request once commit() returns 0.
 * - The schema version is PRAGMA user_version; migrations[] holds one step per
 *   version and a writer applies the missing ones in one transaction. A
 *   database newer than this build is refused, never written.
 * - Statements are prepared once per connection (on first use) and reset
 *   after every use, so no statement holds a read snapshot or the write lock
 *   beyond the call that stepped it.
 * - Every SQLite result code is mapped here to an xd_err (err_map[]).
 */
#include "store/store_int.h"
#include "audit/chain.h"
#include "store/sqlite_int.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/log.h"
#include "ingest/event.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/*
 * Schema steps: migrations[v] takes a database from user_version v to v + 1.
 *
 * events is the append-only journal. seq is the rowid: rows are never
 * deleted, so each new row gets max(seq) + 1 and seq follows commit order.
 * Its `state` column stays 'received': an event's state is derived from its
 * deliveries when asked. store_meta holds small keyed values (the write
 * probe, and the counters of xd_store_next_counter as `counter:NAME`).
 */
static const char *const migrations[] = {
    /* 0 -> 1 */
    "CREATE TABLE events ("
    " seq INTEGER PRIMARY KEY,"
    " event_id TEXT NOT NULL UNIQUE,"
    " type TEXT NOT NULL,"
    " bkey TEXT NOT NULL,"
    " occurred_at TEXT NOT NULL,"
    " source TEXT,"
    " received_ms INTEGER NOT NULL,"
    " hash BLOB NOT NULL,"
    " body TEXT NOT NULL,"
    " state TEXT NOT NULL DEFAULT 'received');"
    "CREATE INDEX events_bkey_seq ON events(bkey, seq);"
    "CREATE TABLE store_meta (key TEXT PRIMARY KEY, value);",
    /*
     * 1 -> 2: routing. deliveries is the durable work queue: one row per
     * (event, route, step), created with the event (first steps) or when the
     * step before it is done. Its state is an xd_dlv_state. Order per
     * business key and target is by id (creation order). The partial indexes
     * keep the dispatcher's scans to live rows: pending ones per target, and
     * the rows that hold a key's line (pending or dead).
     */
    "CREATE TABLE deliveries ("
    " id INTEGER PRIMARY KEY,"
    " event_seq INTEGER NOT NULL,"
    " route TEXT NOT NULL,"
    " step INTEGER NOT NULL,"
    " target TEXT NOT NULL,"
    " bkey TEXT NOT NULL,"
    " state INTEGER NOT NULL DEFAULT 0,"
    " attempts INTEGER NOT NULL DEFAULT 0,"
    " next_ms INTEGER NOT NULL,"
    " created_ms INTEGER NOT NULL,"
    " updated_ms INTEGER NOT NULL,"
    " last_status INTEGER,"
    " last_error TEXT,"
    " error_class TEXT,"
    " payload TEXT,"
    " part TEXT NOT NULL DEFAULT '',"
    " UNIQUE (event_seq, route, step, part));"
    "CREATE INDEX deliveries_pending ON deliveries(target, id) WHERE state = 0;"
    "CREATE INDEX deliveries_line ON deliveries(target, bkey, id) WHERE state IN (0, 2);"
    "CREATE INDEX deliveries_state ON deliveries(state, id);"
    "CREATE TABLE attempts ("
    " id INTEGER PRIMARY KEY,"
    " delivery_id INTEGER NOT NULL,"
    " at_ms INTEGER NOT NULL,"
    " status INTEGER,"
    " latency_us INTEGER,"
    " outcome TEXT NOT NULL,"
    " error TEXT);"
    "CREATE INDEX attempts_delivery ON attempts(delivery_id);"
    /*
     * Charges produced by rate steps, one row per charge id (a charge can
     * never be recorded twice). Decimals are kept as their exact text.
     * A step after a rate step delivers each charge: its deliveries carry
     * the charge id as `part`.
     */
    "CREATE TABLE charges ("
    " charge_id TEXT PRIMARY KEY,"
    " event_seq INTEGER NOT NULL,"
    " event_id TEXT NOT NULL,"
    " reverses TEXT NOT NULL DEFAULT '',"
    " customer TEXT NOT NULL,"
    " code TEXT NOT NULL,"
    " unit TEXT NOT NULL,"
    " warehouse TEXT NOT NULL,"
    " reference TEXT NOT NULL,"
    " currency TEXT NOT NULL,"
    " service_date TEXT NOT NULL,"
    " quantity TEXT NOT NULL,"
    " unit_price TEXT NOT NULL,"
    " amount TEXT NOT NULL,"
    " source INTEGER NOT NULL,"
    " band INTEGER NOT NULL,"
    " occurred_us INTEGER NOT NULL,"
    " created_ms INTEGER NOT NULL,"
    " json TEXT NOT NULL);"
    "CREATE INDEX charges_shipment ON charges(warehouse, reference);"
    "CREATE INDEX charges_customer ON charges(customer, service_date);"
    "CREATE INDEX charges_date ON charges(service_date);"
    /* Everything that needs a person: dead letters, events no card rates, ... */
    "CREATE TABLE exceptions ("
    " id INTEGER PRIMARY KEY,"
    " category TEXT NOT NULL,"
    " state TEXT NOT NULL DEFAULT 'open',"
    " event_id TEXT,"
    " delivery_id INTEGER,"
    " target TEXT,"
    " reason TEXT NOT NULL,"
    " owner TEXT,"
    " note TEXT,"
    " created_ms INTEGER NOT NULL,"
    " updated_ms INTEGER NOT NULL);"
    "CREATE INDEX exceptions_state ON exceptions(state, id);"
    "CREATE INDEX exceptions_open_delivery ON exceptions(delivery_id) WHERE state != 'resolved';",
    /*
     * 2 -> 3: the audit log (audit/chain.h), a hash chain of operator
     * actions. seq is the rowid, given by the store (last seq + 1). The
     * triggers make the table append-only for every connection, the hub's
     * own included: an UPDATE or DELETE fails. (Whoever can write the file
     * can drop them; the chain is what detects that, see docs/security.md.)
     */
    "CREATE TABLE audit ("
    " seq INTEGER PRIMARY KEY,"
    " at_ms INTEGER NOT NULL,"
    " actor TEXT NOT NULL,"
    " action TEXT NOT NULL,"
    " object TEXT NOT NULL,"
    " detail TEXT NOT NULL,"
    " prev BLOB NOT NULL,"
    " hash BLOB NOT NULL);"
    "CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit"
    " BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;"
    "CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit"
    " BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;",
    /*
     * 3 -> 4: reconciliation (store/sqlite_recon.c). acks keeps what a
     * target's `ack` program made of its 2xx answer (its reference, the
     * quantity it booked), one row per delivery, the latest answer. An
     * exception may carry a break key: at most one not resolved per key.
     */
    "CREATE TABLE acks ("
    " delivery_id INTEGER PRIMARY KEY,"
    " at_ms INTEGER NOT NULL,"
    " ack TEXT NOT NULL);"
    "ALTER TABLE exceptions ADD COLUMN break_key TEXT;"
    "CREATE INDEX exceptions_open_break ON exceptions(break_key)"
    " WHERE break_key IS NOT NULL AND state != 'resolved';",
    /*
     * 4 -> 5: master-data holds, xref entries, exception routing and alerts
     * (sqlite_holds.c, docs/exceptions.md). A held delivery (state 4) waits
     * for xref hold_table/hold_key and holds its key's line like a dead one,
     * so the line index now covers it. xref_entries are the entries added
     * through the API; they overlay the config's tables. Exceptions get a
     * dedup key (one per missing entry, one per SLA breach), the event's
     * warehouse and customer, and an owner from exception_owners (the
     * config's rules, first match wins) set by a trigger as they open, so
     * every path that opens one routes it. alerted_ms: when the alert target
     * was told (existing exceptions count as told).
     */
    "ALTER TABLE deliveries ADD COLUMN hold_table TEXT;"
    "ALTER TABLE deliveries ADD COLUMN hold_key TEXT;"
    "CREATE INDEX deliveries_held ON deliveries(hold_table, hold_key) WHERE state = 4;"
    "DROP INDEX deliveries_line;"
    "CREATE INDEX deliveries_line ON deliveries(target, bkey, id) WHERE state IN (0, 2, 4);"
    "CREATE TABLE xref_entries ("
    " tbl TEXT NOT NULL,"
    " key TEXT NOT NULL,"
    " value TEXT NOT NULL,"
    " updated_ms INTEGER NOT NULL,"
    " PRIMARY KEY (tbl, key));"
    "ALTER TABLE exceptions ADD COLUMN dedup TEXT;"
    "ALTER TABLE exceptions ADD COLUMN warehouse TEXT;"
    "ALTER TABLE exceptions ADD COLUMN customer TEXT;"
    "ALTER TABLE exceptions ADD COLUMN alerted_ms INTEGER;"
    "UPDATE exceptions SET alerted_ms = updated_ms;"
    "CREATE INDEX exceptions_dedup ON exceptions(category, dedup) WHERE dedup IS NOT NULL;"
    "CREATE INDEX exceptions_unalerted ON exceptions(id) WHERE alerted_ms IS NULL;"
    "CREATE TABLE exception_owners ("
    " pos INTEGER PRIMARY KEY,"
    " category TEXT,"
    " warehouse TEXT,"
    " customer TEXT,"
    " owner TEXT NOT NULL);"
    "CREATE TRIGGER exceptions_route AFTER INSERT ON exceptions BEGIN"
    " UPDATE exceptions SET"
    "  warehouse = coalesce(NEW.warehouse, (SELECT json_extract(e.body, '$.data.warehouse')"
    "                                       FROM events e WHERE e.event_id = NEW.event_id)),"
    "  customer = coalesce(NEW.customer, (SELECT json_extract(e.body, '$.data.customer')"
    "                                     FROM events e WHERE e.event_id = NEW.event_id))"
    "  WHERE id = NEW.id;"
    " UPDATE exceptions SET owner = (SELECT o.owner FROM exception_owners o"
    "   WHERE (o.category IS NULL OR o.category = exceptions.category)"
    "   AND (o.warehouse IS NULL OR o.warehouse = exceptions.warehouse)"
    "   AND (o.customer IS NULL OR o.customer = exceptions.customer)"
    "   ORDER BY o.pos LIMIT 1)"
    "  WHERE id = NEW.id AND owner IS NULL;"
    " END;",
    /*
     * 5 -> 6: observability. The W3C traceparent an event arrived with (NULL:
     * none given, its deliveries' trace id is derived from the event id).
     */
    "ALTER TABLE events ADD COLUMN traceparent TEXT;",
    /*
     * 6 -> 7: an event's timeline reads its charges (by event_seq) and the
     * exceptions about it (by event_id).
     */
    "CREATE INDEX charges_event ON charges(event_seq);"
    "CREATE INDEX exceptions_event ON exceptions(event_id) WHERE event_id IS NOT NULL;",
    /*
     * 7 -> 8: fewer index writes per event. The line index's predicate as
     * comparisons: SQLite evaluates a partial index's WHERE on every insert
     * and update of the table, and an IN list there is built as a temporary
     * b-tree each time (a zeroed page, opened and closed): about a third of
     * the committer's work per event. Queries that use the index spell the
     * predicate the same way (STATE_OPEN).
     */
    "DROP INDEX deliveries_line;"
    "CREATE INDEX deliveries_line ON deliveries(target, bkey, id)"
    " WHERE state = 0 OR state = 2 OR state = 4;"
    /*
     * ... and events are found by business key only to read a shipment's
     * voids (rating): index those alone. A full (bkey, seq) index put one
     * more page at a random place into every commit (the WAL and its fsync).
     */
    "DROP INDEX events_bkey_seq;"
    "CREATE INDEX events_voids ON events(bkey, seq) WHERE type = 'shipment.voided';",
};
#define SCHEMA_VERSION ((int)(sizeof migrations / sizeof migrations[0]))

/* The columns of a charge as struct xd_stored_charge reads them (read_charge). */
#define XD_CHARGE_COLS                                                                             \
    "charge_id, event_id, reverses, customer, code, unit, warehouse, reference, currency,"         \
    " service_date, quantity, unit_price, amount, source, band, occurred_us, created_ms, json"

/* Cached statements, prepared on first use. */
enum stmt_id {
    ST_BEGIN,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_SAVEPOINT,
    ST_RELEASE,
    ST_ROLLBACK_TO,
    ST_INSERT,
    ST_HASH,
    ST_GET,
    ST_COUNT,
    ST_PROBE,
    ST_DLV_ADD,
    ST_DLV_NEXT,
    ST_CHARGE_ADD,
    ST_EXC_ADD,
    ST_EXC_RESOLVE,
    ST_HAS_CHARGE,
    ST_CHARGES_SHIPMENT,
    ST_VOIDS,
    ST_DLV_UPDATE,
    ST_ATTEMPT_ADD,
    ST_DLV_READY,
    ST_DLV_GET,
    ST_ATTEMPTS_OF,
    ST_DLV_COUNTS,
    ST_COUNTER,
    ST__COUNT
};

static const char *const stmt_sql[ST__COUNT] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_SAVEPOINT] = "SAVEPOINT req",
    [ST_RELEASE] = "RELEASE req",
    [ST_ROLLBACK_TO] = "ROLLBACK TO req",
    [ST_INSERT] = "INSERT INTO events"
                  " (event_id, type, bkey, occurred_at, source, received_ms, hash, body,"
                  " traceparent)"
                  " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
                  " ON CONFLICT (event_id) DO NOTHING",
    [ST_HASH] = "SELECT hash FROM events WHERE event_id = ?1",
    [ST_GET] = "SELECT seq, event_id, type, bkey, occurred_at, source, state, received_ms, body,"
               " traceparent"
               " FROM events WHERE event_id = ?1",
    [ST_COUNT] = "SELECT count(*) FROM events",
    [ST_PROBE] = "INSERT INTO store_meta (key, value) VALUES ('probe_ms', ?1)"
                 " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    [ST_DLV_ADD] = "INSERT INTO deliveries"
                   " (event_seq, route, step, target, bkey, next_ms, created_ms, updated_ms)"
                   " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, ?6)"
                   " ON CONFLICT (event_seq, route, step, part) DO NOTHING",
    /*
     * VALUES with scalar subqueries, not INSERT ... SELECT: reading the table
     * being inserted into makes SQLite stage the rows in a temporary b-tree.
     */
    [ST_DLV_NEXT] = "INSERT INTO deliveries"
                    " (event_seq, route, step, target, bkey, next_ms, created_ms, updated_ms, part)"
                    " VALUES ((SELECT event_seq FROM deliveries WHERE id = ?1), ?2, ?3, ?4,"
                    " (SELECT bkey FROM deliveries WHERE id = ?1), ?5, ?5, ?5, ?6)"
                    " ON CONFLICT (event_seq, route, step, part) DO NOTHING",
    [ST_CHARGE_ADD] = "INSERT INTO charges (charge_id, event_seq, event_id, reverses, customer,"
                      " code, unit, warehouse, reference, currency, service_date, quantity,"
                      " unit_price, amount, source, band, occurred_us, created_ms, json)"
                      " VALUES (?1, ?19, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13,"
                      " ?14, ?15, ?16, ?17, ?18)"
                      " ON CONFLICT (charge_id) DO NOTHING",
    [ST_EXC_ADD] = "INSERT INTO exceptions (category, event_id, delivery_id, target, reason,"
                   " created_ms, updated_ms)"
                   " SELECT ?1, e.event_id, d.id, d.target, ?2, ?3, ?3"
                   " FROM deliveries d JOIN events e ON e.seq = d.event_seq WHERE d.id = ?4"
                   " AND NOT EXISTS (SELECT 1 FROM exceptions x WHERE x.delivery_id = d.id"
                   "                 AND x.state != 'resolved' AND x.category = ?1)",
    [ST_EXC_RESOLVE] = "UPDATE exceptions SET state = 'resolved', updated_ms = ?2,"
                       " note = coalesce(note || '; ', '') || ?3"
                       " WHERE delivery_id = ?1 AND state != 'resolved'",
    [ST_HAS_CHARGE] = "SELECT 1 FROM charges WHERE charge_id = ?1",
    [ST_CHARGES_SHIPMENT] = "SELECT " XD_CHARGE_COLS " FROM charges"
                            " WHERE warehouse = ?1 AND reference = ?2 ORDER BY occurred_us, rowid",
    [ST_VOIDS] = "SELECT body FROM events WHERE bkey = ?1 AND type = 'shipment.voided'"
                 " ORDER BY seq",
    /* ?9 = 1 when an attempt was made: it counts and its status and error are kept. */
    [ST_DLV_UPDATE] = "UPDATE deliveries SET state = ?2,"
                      " attempts = CASE WHEN ?10 THEN 0 ELSE attempts + ?9 END,"
                      " next_ms = ?3, updated_ms = ?4,"
                      " last_status = CASE WHEN ?9 THEN ?5 ELSE last_status END,"
                      " last_error = CASE WHEN ?9 THEN ?6 ELSE last_error END,"
                      " error_class = CASE WHEN ?9 THEN ?7 ELSE error_class END,"
                      " payload = coalesce(?8, payload)"
                      " WHERE id = ?1 AND (?11 = 0 OR state = 2)",
    [ST_ATTEMPT_ADD] = "INSERT INTO attempts (delivery_id, at_ms, status, latency_us, outcome, error)"
                       " VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    [ST_DLV_READY] =
        "SELECT d.id, d.event_seq, e.event_id, d.route, d.step, d.target, d.bkey, d.state,"
        " d.attempts, d.next_ms, d.created_ms, d.updated_ms, d.last_status, d.last_error,"
        " d.error_class, NULL, e.body, d.part, c.json, e.traceparent"
        /*
         * INDEXED BY: the per-target partial index of pending rows. Left to
         * itself the planner may walk every target's pending rows by state,
         * which under a backlog for one target starves the others.
         */
        " FROM deliveries d INDEXED BY deliveries_pending JOIN events e ON e.seq = d.event_seq"
        " LEFT JOIN charges c ON d.part != '' AND c.charge_id = d.part"
        " WHERE d.target = ?1 AND d.state = 0 AND d.next_ms <= ?2"
        " AND NOT EXISTS (SELECT 1 FROM deliveries p WHERE p.target = ?1 AND p.bkey = d.bkey"
        "                 AND " STATE_OPEN("p") " AND p.id < d.id)"
        " ORDER BY d.id LIMIT ?3",
    [ST_DLV_GET] =
        "SELECT d.id, d.event_seq, e.event_id, d.route, d.step, d.target, d.bkey, d.state,"
        " d.attempts, d.next_ms, d.created_ms, d.updated_ms, d.last_status, d.last_error,"
        " d.error_class, d.payload, NULL, d.part, NULL, e.traceparent"
        " FROM deliveries d JOIN events e ON e.seq = d.event_seq WHERE d.id = ?1",
    [ST_ATTEMPTS_OF] = "SELECT a.delivery_id, a.at_ms, a.status, a.latency_us, a.outcome, a.error,"
                       " d.target, d.route, d.step"
                       " FROM attempts a JOIN deliveries d ON d.id = a.delivery_id"
                       " WHERE d.event_seq = ?1 ORDER BY a.id",
    [ST_DLV_COUNTS] = "SELECT target, state, count(*) FROM deliveries WHERE state IN (0, 2)"
                      " GROUP BY target, state",
    [ST_COUNTER] = "INSERT INTO store_meta (key, value) VALUES ('counter:' || ?1, 1)"
                   " ON CONFLICT (key) DO UPDATE SET value = value + 1 RETURNING value",
};

/*
 * Page size of a new store, and the WAL size at which the committer
 * checkpoints (SQLite's default: 1,000 pages of 4 KiB). Batch intake is
 * bound by per-page work (WAL frame writes, checkpoint reads and writes,
 * b-tree bookkeeping); a single-event commit writes and checksums a few
 * whole pages, so larger pages cost it bytes (its fsync takes the same time
 * up to 128 KiB). 8 KiB pages were the best of both in
 * alternating runs on 2 cores: batches of 100 ~185k -> ~198k events/s,
 * single events at 16 connections ~29.7k -> ~28.8k requests/s; 16 KiB pages
 * gave batches no more and cost single events 10% (docs/store.md).
 */
#define PAGE_SIZE_TEXT   "8192"
#define CHECKPOINT_BYTES (4 << 20)

struct xd_store_conn {
    sqlite3 *db;
    int sync_full;               /* the configured synchronous=FULL */
    int sync_now;                /* what the connection is set to now */
    enum xd_conn_mode mode;
    char *path;                  /* database file */
    char *dir;                   /* its directory (WAL and SHM files live there) */
    sqlite3_stmt *st[ST__COUNT]; /* NULL until first used */
    char msg[256];               /* the last failure, for logs */
};

/* SQLite primary result codes and what they mean to the hub. */
static const struct {
    int sqlite;
    int xd;
} err_map[] = {
    {SQLITE_FULL, XD_EFULL},      {SQLITE_READONLY, XD_EREADONLY}, {SQLITE_CANTOPEN, XD_EREADONLY},
    {SQLITE_PERM, XD_EREADONLY},  {SQLITE_BUSY, XD_EUNAVAIL},      {SQLITE_LOCKED, XD_EUNAVAIL},
    {SQLITE_IOERR, XD_EIO},       {SQLITE_CORRUPT, XD_EIO},        {SQLITE_NOTADB, XD_EIO},
    {SQLITE_NOMEM, XD_ENOMEM},    {SQLITE_TOOBIG, XD_ETOOBIG},     {SQLITE_CONSTRAINT, XD_EINVAL},
    {SQLITE_MISMATCH, XD_EINVAL}, {SQLITE_RANGE, XD_EINVAL},
};

/*
 * Maps rc. An I/O error whose cause was the disk filling up or turning
 * read-only (ENOSPC at fsync, EROFS) counts as that, not as a plain I/O error.
 */
static int map_rc(sqlite3 *db, int rc)
{
    if ((rc & 0xff) == SQLITE_IOERR && db) {
        int e = sqlite3_system_errno(db);
        if (e == ENOSPC || e == EDQUOT)
            return XD_EFULL;
        if (e == EROFS || e == EACCES || e == EPERM)
            return XD_EREADONLY;
        if (rc == SQLITE_IOERR_NOMEM)
            return XD_ENOMEM;
    }
    for (size_t i = 0; i < sizeof err_map / sizeof err_map[0]; i++)
        if (err_map[i].sqlite == (rc & 0xff))
            return err_map[i].xd;
    return XD_EINTERNAL;
}

/* Records why `what` failed on c and returns the mapped xd_err. */
static int fail(struct xd_store_conn *c, int rc, const char *what)
{
    snprintf(c->msg, sizeof c->msg, "%s: %s: %s (%d)", c->path, what, sqlite3_errmsg(c->db), rc);
    return map_rc(c->db, rc);
}

static int stmt(struct xd_store_conn *c, enum stmt_id id, sqlite3_stmt **out)
{
    if (!c->st[id]) {
        int rc = sqlite3_prepare_v3(c->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT, &c->st[id],
                                    NULL);
        if (rc != SQLITE_OK)
            return fail(c, rc, "prepare");
    }
    *out = c->st[id];
    return 0;
}

/* Runs a statement that takes no parameters and returns no rows. */
static int run(struct xd_store_conn *c, enum stmt_id id)
{
    sqlite3_stmt *st = NULL;
    int rc = stmt(c, id, &st);
    if (rc < 0)
        return rc;
    rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return fail(c, rc, stmt_sql[id]);
    return 0;
}

/* Runs a script (DDL, pragmas) that returns no rows. */
static int exec(struct xd_store_conn *c, const char *sql)
{
    int rc = sqlite3_exec(c->db, sql, NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return fail(c, rc, "exec");
    return 0;
}

/* The single integer a pragma query returns. */
static int pragma_int(struct xd_store_conn *c, const char *sql, int *out)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(c->db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        goto fail;
    rc = sqlite3_step(st);
    if (rc != SQLITE_ROW)
        goto fail;
    *out = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return 0;
fail:
    rc = fail(c, rc, sql);
    sqlite3_finalize(st);
    return rc;
}

/* Switches to WAL; fails when the database cannot be in WAL mode (read-only, not yet WAL). */
static int set_wal(struct xd_store_conn *c)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(c->db, "PRAGMA journal_mode=WAL", -1, &st, NULL);
    if (rc != SQLITE_OK)
        goto fail;
    rc = sqlite3_step(st);
    if (rc != SQLITE_ROW)
        goto fail;
    const char *mode = (const char *)sqlite3_column_text(st, 0);
    if (!mode || strcmp(mode, "wal") != 0) {
        snprintf(c->msg, sizeof c->msg, "%s: cannot switch to WAL mode (journal_mode is %s)",
                 c->path, mode ? mode : "unknown");
        sqlite3_finalize(st);
        return sqlite3_db_readonly(c->db, "main") == 1 ? XD_EREADONLY : XD_EIO;
    }
    sqlite3_finalize(st);
    return 0;
fail:
    rc = fail(c, rc, "PRAGMA journal_mode=WAL");
    sqlite3_finalize(st);
    return rc;
}

/* Brings the schema to SCHEMA_VERSION, in one transaction (writer only). */
static int migrate(struct xd_store_conn *c)
{
    int v = 0;
    int rc = pragma_int(c, "PRAGMA user_version", &v);
    if (rc < 0)
        return rc;
    if (v == SCHEMA_VERSION)
        return 0;
    if (v > SCHEMA_VERSION) {
        snprintf(c->msg, sizeof c->msg, "%s: schema version %d is newer than this build knows (%d)",
                 c->path, v, SCHEMA_VERSION);
        return XD_ECONFIG;
    }
    if (sqlite3_db_readonly(c->db, "main") == 1) {
        snprintf(c->msg, sizeof c->msg, "%s: read-only, cannot create the schema", c->path);
        return XD_EREADONLY;
    }
    rc = run(c, ST_BEGIN);
    if (rc < 0)
        return rc;
    /* Another process may have migrated between the check and the lock. */
    rc = pragma_int(c, "PRAGMA user_version", &v);
    if (rc < 0)
        goto fail;
    for (; v < SCHEMA_VERSION; v++) {
        rc = exec(c, migrations[v]);
        if (rc < 0)
            goto fail;
    }
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA user_version = %d", SCHEMA_VERSION);
    rc = exec(c, sql);
    if (rc < 0)
        goto fail;
    rc = run(c, ST_COMMIT);
    if (rc < 0)
        goto fail;
    return 0;
fail:
    if (!sqlite3_get_autocommit(c->db))
        sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

static void sq_close(struct xd_store_conn *c)
{
    if (!c)
        return;
    for (int i = 0; i < ST__COUNT; i++)
        sqlite3_finalize(c->st[i]);
    sqlite3_close_v2(c->db);
    free(c->path);
    free(c->dir);
    free(c);
}

static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return strdup(".");
    if (slash == path)
        return strdup("/");
    return strndup(path, (size_t)(slash - path));
}

/*
 * Process-wide settings, before SQLite's first use. Memory statistics off:
 * with them on, every allocation SQLite makes takes one global mutex, shared
 * by the committer, the dispatcher lanes and the API's readers.
 */
static pthread_once_t sqlite_once = PTHREAD_ONCE_INIT;
static const char *writer_vfs; /* xd_sqlite_vfs_register's, or NULL: the default */
static atomic_int keep_warned; /* store.page_cache_keep's warning was logged */

static void configure_sqlite(void)
{
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    writer_vfs = xd_sqlite_vfs_register();
}

static int sq_open(const struct xd_store_opts *o, enum xd_conn_mode mode,
                   struct xd_store_conn **out, struct xd_buf *err)
{
    int rc;
    *out = NULL;
    if (!o->path || !*o->path) {
        if (err)
            xd_buf_puts(err, "store.path: required for the sqlite driver");
        return XD_ECONFIG;
    }
    struct xd_store_conn *c = calloc(1, sizeof *c);
    if (!c)
        return XD_ENOMEM;
    c->mode = mode;
    c->path = strdup(o->path);
    c->dir = dir_of(o->path);
    if (!c->path || !c->dir) {
        rc = XD_ENOMEM;
        snprintf(c->msg, sizeof c->msg, "out of memory");
        goto fail;
    }
    pthread_once(&sqlite_once, configure_sqlite);
    /*
     * NOMUTEX: a connection is used by one thread at a time (store_int.h), so
     * SQLite's per-connection mutex would only cost.
     */
    int flags = SQLITE_OPEN_NOMUTEX;
    flags |=
        mode == XD_CONN_WRITER ? SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE : SQLITE_OPEN_READONLY;
    rc = sqlite3_open_v2(o->path, &c->db, flags, mode == XD_CONN_WRITER ? writer_vfs : NULL);
    if (rc != SQLITE_OK) {
        rc = c->db ? fail(c, rc, "open") : XD_ENOMEM;
        goto fail;
    }
    sqlite3_extended_result_codes(c->db, 1);
    sqlite3_busy_timeout(c->db, (int)o->busy_timeout_ms);

    if (mode == XD_CONN_WRITER) {
        /* Takes effect only while the file is empty: a new store. */
        rc = exec(c, "PRAGMA page_size=" PAGE_SIZE_TEXT);
        if (rc < 0)
            goto fail;
        rc = set_wal(c);
        if (rc < 0)
            goto fail;
        /*
         * Keep the -wal and -shm files when the last connection closes: a WAL
         * database cannot be opened read-only without them, and a store whose
         * file system turned read-only after a clean stop must still open
         * (reads work, writes say XD_EREADONLY).
         */
        int persist = 1;
        sqlite3_file_control(c->db, "main", SQLITE_FCNTL_PERSIST_WAL, &persist);
        rc = exec(c, o->sync_full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL");
        c->sync_full = c->sync_now = o->sync_full;
        if (rc < 0)
            goto fail;
        /* A bigger page cache keeps the event_id index hot. */
        rc = exec(c, "PRAGMA cache_size=-16384; PRAGMA temp_store=MEMORY; PRAGMA foreign_keys=ON;"
                     " PRAGMA journal_size_limit=16777216");
        if (rc < 0)
            goto fail;
        rc = migrate(c);
        if (rc < 0)
            goto fail;
        /* The store's own page size: one made before 8 KiB pages keeps 4 KiB. */
        int page = 0;
        rc = pragma_int(c, "PRAGMA page_size", &page);
        if (rc < 0)
            goto fail;
        sqlite3_wal_autocheckpoint(c->db, page > 0 ? (int)(CHECKPOINT_BYTES / page) : 1000);
        /* Checkpointed pages beyond the newest cache_keep bytes leave the page cache. */
        if (!xd_sqlite_vfs_keep_cached(c->db, (sqlite3_int64)o->cache_keep) && o->cache_keep &&
            !atomic_exchange(&keep_warned, 1))
            xd_warn("store: %s: store.page_cache_keep has no effect with this SQLite build;"
                    " the page cache keeps the whole file",
                    o->path);
    } else {
        int v = 0;
        rc = pragma_int(c, "PRAGMA user_version", &v);
        if (rc < 0)
            goto fail;
        if (v != SCHEMA_VERSION) {
            snprintf(c->msg, sizeof c->msg, "%s: schema version %d, expected %d", c->path, v,
                     SCHEMA_VERSION);
            rc = v > SCHEMA_VERSION ? XD_ECONFIG : XD_EUNAVAIL;
            goto fail;
        }
    }
    *out = c;
    return 0;
fail:
    if (err)
        xd_buf_puts(err, c->msg[0] ? c->msg : xd_strerror(rc));
    sq_close(c);
    return rc;
}

static int sq_begin(struct xd_store_conn *c, enum xd_commit_mode mode)
{
    /* synchronous can only change outside a transaction: here, before BEGIN. */
    int sync = c->sync_full && mode == XD_COMMIT_DURABLE;
    if (sync != c->sync_now) {
        int rc = exec(c, sync ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL");
        if (rc < 0)
            return rc;
        c->sync_now = sync;
    }
    /* A commit that syncs the WAL publishes its frames after the sync alone. */
    int rc = xd_sqlite_vfs_gather(c->db, sync);
    if (rc != SQLITE_OK)
        return fail(c, rc, "write");
    return run(c, ST_BEGIN);
}

static int sq_commit(struct xd_store_conn *c)
{
    return run(c, ST_COMMIT);
}

/*
 * After some errors (FULL, IOERR, BUSY in COMMIT) SQLite has already rolled
 * the transaction back itself; ROLLBACK is then not needed and would fail.
 */
static int sq_rollback(struct xd_store_conn *c)
{
    if (sqlite3_get_autocommit(c->db))
        return 0;
    return run(c, ST_ROLLBACK);
}

static int sq_savepoint(struct xd_store_conn *c)
{
    return run(c, ST_SAVEPOINT);
}

static int sq_release(struct xd_store_conn *c)
{
    return run(c, ST_RELEASE);
}

static int sq_rollback_to(struct xd_store_conn *c)
{
    return run(c, ST_ROLLBACK_TO);
}

/*
 * Parameters are bound SQLITE_STATIC (no copy): they point into the event,
 * which lives until the statement is reset below, and every parameter is
 * bound again before the next step.
 */
static int sq_append_one(struct xd_store_conn *c, const struct xd_event *ev, int64_t received_ms,
                         enum xd_append_result *res, int64_t *seq)
{
    sqlite3_stmt *st = NULL;
    int rc = stmt(c, ST_INSERT, &st);
    if (rc < 0)
        return rc;
    if (ev->body_len > INT_MAX)
        return XD_ETOOBIG;
    int b = sqlite3_bind_text(st, 1, ev->event_id, -1, SQLITE_STATIC);
    if (b == SQLITE_OK)
        b = sqlite3_bind_text(st, 2, xd_event_type_name(ev->type), -1, SQLITE_STATIC);
    if (b == SQLITE_OK)
        b = sqlite3_bind_text(st, 3, ev->bkey, -1, SQLITE_STATIC);
    if (b == SQLITE_OK)
        b = sqlite3_bind_text(st, 4, ev->occurred_at, -1, SQLITE_STATIC);
    if (b == SQLITE_OK)
        b = sqlite3_bind_text(st, 5, ev->source, -1, SQLITE_STATIC); /* NULL binds NULL */
    if (b == SQLITE_OK)
        b = sqlite3_bind_int64(st, 6, received_ms);
    if (b == SQLITE_OK)
        b = sqlite3_bind_blob(st, 7, ev->hash, (int)sizeof ev->hash, SQLITE_STATIC);
    if (b == SQLITE_OK)
        b = sqlite3_bind_text(st, 8, ev->body, (int)ev->body_len, SQLITE_STATIC);
    if (b == SQLITE_OK)
        b = sqlite3_bind_text(st, 9, ev->traceparent, -1, SQLITE_STATIC); /* NULL binds NULL */
    if (b != SQLITE_OK)
        return fail(c, b, "bind event");
    rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return fail(c, rc, "insert event");
    if (sqlite3_changes(c->db) == 1) {
        *res = XD_APPEND_ACCEPTED;
        *seq = sqlite3_last_insert_rowid(c->db);
        return 0;
    }

    /* Not inserted: the id is stored already; the hash says duplicate or conflict. */
    rc = stmt(c, ST_HASH, &st);
    if (rc < 0)
        return rc;
    sqlite3_bind_text(st, 1, ev->event_id, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        sqlite3_reset(st);
        if (rc == SQLITE_DONE) {
            snprintf(c->msg, sizeof c->msg, "%s: event %s neither inserted nor found", c->path,
                     ev->event_id);
            return XD_EINTERNAL;
        }
        return fail(c, rc, "select hash");
    }
    const void *h = sqlite3_column_blob(st, 0);
    int hlen = sqlite3_column_bytes(st, 0);
    int same = hlen == (int)sizeof ev->hash && memcmp(h, ev->hash, sizeof ev->hash) == 0;
    sqlite3_reset(st);
    *res = same ? XD_APPEND_DUPLICATE : XD_APPEND_CONFLICT;
    return 0;
}

static int sq_probe(struct xd_store_conn *c)
{
    sqlite3_stmt *st = NULL;
    int rc = run(c, ST_BEGIN);
    if (rc < 0)
        return rc;
    rc = stmt(c, ST_PROBE, &st);
    if (rc < 0)
        goto fail;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    sqlite3_bind_int64(st, 1, (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
    rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        rc = fail(c, rc, "probe");
        goto fail;
    }
    rc = run(c, ST_COMMIT);
    if (rc < 0)
        goto fail;
    return 0;
fail:
    sq_rollback(c);
    return rc;
}

/* XD_EREADONLY (message in c) when `path` exists and cannot be written. */
static int check_writable(struct xd_store_conn *c, const char *path, int must_exist)
{
    if (access(path, W_OK) == 0)
        return 0;
    int e = errno;
    if (e == ENOENT && !must_exist)
        return 0;
    snprintf(c->msg, sizeof c->msg, "%s: %s", path, strerror(e));
    return e == ENOENT ? XD_EUNAVAIL : XD_EREADONLY;
}

/*
 * Can the database be written? A few access(2) calls, no database I/O. SQLite
 * creates the -wal and -shm files with the database file's mode, so a file
 * that was read-only leaves them read-only too, and they count.
 */
static int sq_ready(struct xd_store_conn *c)
{
    if (c->mode == XD_CONN_WRITER && sqlite3_db_readonly(c->db, "main") == 1) {
        snprintf(c->msg, sizeof c->msg, "%s: opened read-only", c->path);
        return XD_EREADONLY;
    }
    char side[4096];
    int rc = check_writable(c, c->path, 1);
    if (rc == 0)
        rc = check_writable(c, c->dir, 1);
    if (rc == 0 && snprintf(side, sizeof side, "%s-wal", c->path) < (int)sizeof side)
        rc = check_writable(c, side, 0);
    if (rc == 0 && snprintf(side, sizeof side, "%s-shm", c->path) < (int)sizeof side)
        rc = check_writable(c, side, 0);
    return rc;
}

/* A heap copy of a text column; NULL stays NULL. Sets *oom when a copy fails. */
static char *col_dup(sqlite3_stmt *st, int i, int *oom)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    if (!t)
        return NULL;
    size_t n = (size_t)sqlite3_column_bytes(st, i);
    char *p = malloc(n + 1);
    if (!p) {
        *oom = 1;
        return NULL;
    }
    memcpy(p, t, n);
    p[n] = '\0';
    return p;
}

static int sq_get_event(struct xd_store_conn *c, const char *event_id, struct xd_stored_event *out)
{
    sqlite3_stmt *st = NULL;
    memset(out, 0, sizeof *out);
    int rc = stmt(c, ST_GET, &st);
    if (rc < 0)
        return rc;
    sqlite3_bind_text(st, 1, event_id, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        sqlite3_reset(st);
        return XD_ENOTFOUND;
    }
    if (rc != SQLITE_ROW) {
        sqlite3_reset(st);
        return fail(c, rc, "get event");
    }
    int oom = 0;
    out->seq = sqlite3_column_int64(st, 0);
    out->event_id = col_dup(st, 1, &oom);
    out->type = col_dup(st, 2, &oom);
    out->bkey = col_dup(st, 3, &oom);
    out->occurred_at = col_dup(st, 4, &oom);
    out->source = col_dup(st, 5, &oom);
    out->state = col_dup(st, 6, &oom);
    out->received_ms = sqlite3_column_int64(st, 7);
    out->body = col_dup(st, 8, &oom);
    out->traceparent = col_dup(st, 9, &oom);
    sqlite3_reset(st);
    if (oom) {
        xd_stored_event_dispose(out);
        return XD_ENOMEM;
    }
    return 0;
}

static int sq_count(struct xd_store_conn *c, int64_t *out)
{
    sqlite3_stmt *st = NULL;
    int rc = stmt(c, ST_COUNT, &st);
    if (rc < 0)
        return rc;
    rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        sqlite3_reset(st);
        return fail(c, rc, "count");
    }
    *out = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    return 0;
}

/* ---- deliveries ---- */

static int bind_text_or_null(sqlite3_stmt *st, int i, const char *v)
{
    return v ? sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC) : sqlite3_bind_null(st, i);
}

static int sq_add_delivery(struct xd_store_conn *c, int64_t event_seq, const char *bkey,
                           const struct xd_dlv_init *d, int64_t now_ms)
{
    sqlite3_stmt *st = NULL;
    int rc = stmt(c, ST_DLV_ADD, &st);
    if (rc < 0)
        return rc;
    sqlite3_bind_int64(st, 1, event_seq);
    sqlite3_bind_text(st, 2, d->route, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 3, (int)d->step);
    sqlite3_bind_text(st, 4, d->target ? d->target : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, bkey, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 6, now_ms);
    rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return fail(c, rc, "insert delivery");
    return 0;
}

static int add_next(struct xd_store_conn *c, const struct xd_outcome_rec *o, const char *part,
                    int64_t now_ms)
{
    sqlite3_stmt *st = NULL;
    int rc = stmt(c, ST_DLV_NEXT, &st);
    if (rc < 0)
        return rc;
    sqlite3_bind_int64(st, 1, o->delivery_id);
    sqlite3_bind_text(st, 2, o->next.route, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 3, (int)o->next.step);
    sqlite3_bind_text(st, 4, o->next.target ? o->next.target : "", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, now_ms);
    sqlite3_bind_text(st, 6, part, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return fail(c, rc, "insert next delivery");
    return 0;
}

static int sq_add_charge(struct xd_store_conn *c, const struct xd_charge_rec *ch,
                         int64_t event_seq, int64_t now_ms, int *added)
{
    sqlite3_stmt *st = NULL;
    *added = 0;
    int rc = stmt(c, ST_CHARGE_ADD, &st);
    if (rc < 0)
        return rc;
    const char *txt[] = {ch->charge_id, ch->event_id, ch->reverses, ch->customer,
                         ch->code, ch->unit, ch->warehouse, ch->reference,
                         ch->currency, ch->service_date, ch->quantity, ch->unit_price,
                         ch->amount};
    for (int i = 0; i < 13; i++)
        sqlite3_bind_text(st, i + 1, txt[i] ? txt[i] : "", -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 14, ch->source);
    sqlite3_bind_int(st, 15, (int)ch->band);
    sqlite3_bind_int64(st, 16, ch->occurred_us);
    sqlite3_bind_int64(st, 17, now_ms);
    sqlite3_bind_text(st, 18, ch->json ? ch->json : "{}", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 19, event_seq);
    rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return fail(c, rc, "insert charge");
    *added = sqlite3_changes(c->db) == 1;
    return 0;
}

/*
 * Records an outcome: the delivery's new state, an attempt row, and the
 * route's next step when this one is done. *applied is 0 when the delivery
 * was not in the state the record expects (a replay of one not dead).
 */
static int sq_record_outcome(struct xd_store_conn *c, const struct xd_outcome_rec *o,
                             int64_t now_ms, int *applied)
{
    sqlite3_stmt *st = NULL;
    *applied = 0;
    int rc = stmt(c, ST_DLV_UPDATE, &st);
    if (rc < 0)
        return rc;
    if (o->payload_len > INT_MAX)
        return XD_ETOOBIG;
    sqlite3_bind_int64(st, 1, o->delivery_id);
    sqlite3_bind_int(st, 2, o->state);
    sqlite3_bind_int64(st, 3, o->next_ms);
    sqlite3_bind_int64(st, 4, now_ms);
    sqlite3_bind_int(st, 5, o->status);
    bind_text_or_null(st, 6, o->error);
    bind_text_or_null(st, 7, o->error_class);
    if (o->payload)
        sqlite3_bind_text(st, 8, o->payload, (int)o->payload_len, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 8);
    sqlite3_bind_int(st, 9, o->count_attempt ? 1 : 0);
    sqlite3_bind_int(st, 10, o->reset_attempts ? 1 : 0);
    sqlite3_bind_int(st, 11, o->only_if_dead ? 1 : 0);
    rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return fail(c, rc, "update delivery");
    if (sqlite3_changes(c->db) == 0)
        return 0;
    *applied = 1;

    if (o->outcome) {
        rc = stmt(c, ST_ATTEMPT_ADD, &st);
        if (rc < 0)
            return rc;
        sqlite3_bind_int64(st, 1, o->delivery_id);
        sqlite3_bind_int64(st, 2, o->at_ms ? o->at_ms : now_ms);
        sqlite3_bind_int(st, 3, o->status);
        sqlite3_bind_int64(st, 4, o->latency_us);
        sqlite3_bind_text(st, 5, o->outcome, -1, SQLITE_STATIC);
        bind_text_or_null(st, 6, o->error);
        rc = sqlite3_step(st);
        sqlite3_reset(st);
        if (rc != SQLITE_DONE)
            return fail(c, rc, "insert attempt");
    }

    if (o->ack) {
        rc = xd_sqlite_record_ack(c, o, now_ms);
        if (rc < 0)
            return rc;
    }
    for (size_t i = 0; i < o->ncharges; i++) {
        int added;
        rc = sq_add_charge(c, &o->charges[i], o->charges[i].event_seq, now_ms, &added);
        if (rc < 0)
            return rc;
    }
    if (o->state == XD_DLV_DONE && o->next.route) {
        size_t parts = o->next_per_charge ? o->ncharges : 1;
        for (size_t i = 0; i < parts; i++) {
            rc = add_next(c, o, o->next_per_charge ? o->charges[i].charge_id : "", now_ms);
            if (rc < 0)
                return rc;
        }
    }
    if (o->state == XD_DLV_DONE && !o->no_exception) {
        /* A delivery that made it (after a replay) settles its open exception. */
        rc = stmt(c, ST_EXC_RESOLVE, &st);
        if (rc < 0)
            return rc;
        sqlite3_bind_int64(st, 1, o->delivery_id);
        sqlite3_bind_int64(st, 2, now_ms);
        sqlite3_bind_text(st, 3, "delivered", -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        sqlite3_reset(st);
        if (rc != SQLITE_DONE)
            return fail(c, rc, "resolve exception");
    }
    if (o->state == XD_DLV_HELD) {
        rc = xd_sqlite_hold(c, o, now_ms); /* sqlite_holds.c: what it waits for, its exception */
        if (rc < 0)
            return rc;
    }
    if (o->exception) {
        rc = stmt(c, ST_EXC_ADD, &st);
        if (rc < 0)
            return rc;
        sqlite3_bind_text(st, 1, o->exception, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, o->error ? o->error : o->exception, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, now_ms);
        sqlite3_bind_int64(st, 4, o->delivery_id);
        rc = sqlite3_step(st);
        sqlite3_reset(st);
        if (rc != SQLITE_DONE)
            return fail(c, rc, "open exception");
    }
    return 0;
}

/* Reads the 19 columns every delivery query returns (see ST_DLV_READY). */
static int read_dlv(sqlite3_stmt *st, struct xd_stored_dlv *d)
{
    int oom = 0;
    memset(d, 0, sizeof *d);
    d->id = sqlite3_column_int64(st, 0);
    d->event_seq = sqlite3_column_int64(st, 1);
    d->event_id = col_dup(st, 2, &oom);
    d->route = col_dup(st, 3, &oom);
    d->step = (unsigned)sqlite3_column_int(st, 4);
    d->target = col_dup(st, 5, &oom);
    d->bkey = col_dup(st, 6, &oom);
    d->state = sqlite3_column_int(st, 7);
    d->attempts = (unsigned)sqlite3_column_int(st, 8);
    d->next_ms = sqlite3_column_int64(st, 9);
    d->created_ms = sqlite3_column_int64(st, 10);
    d->updated_ms = sqlite3_column_int64(st, 11);
    d->last_status = sqlite3_column_int(st, 12);
    d->last_error = col_dup(st, 13, &oom);
    d->error_class = col_dup(st, 14, &oom);
    d->payload = col_dup(st, 15, &oom);
    d->body = col_dup(st, 16, &oom);
    d->part = col_dup(st, 17, &oom);
    d->charge = col_dup(st, 18, &oom);
    d->traceparent = col_dup(st, 19, &oom);
    if (oom) {
        xd_stored_dlv_dispose(d);
        return XD_ENOMEM;
    }
    return 0;
}

/* Steps st to the end, handing each row to cb; resets st. Returns rows or an error. */
static int each_dlv(struct xd_store_conn *c, sqlite3_stmt *st, xd_dlv_skip_fn skip,
                    void (*cb)(void *ctx, struct xd_stored_dlv *d), void *ctx, const char *what)
{
    int n = 0, rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        n++;
        /* A row skip says 1 to (by its id and key) costs no copy. */
        if (skip && skip(ctx, sqlite3_column_int64(st, 0), (const char *)sqlite3_column_text(st, 6)))
            continue;
        struct xd_stored_dlv d;
        int r = read_dlv(st, &d);
        if (r < 0) {
            sqlite3_reset(st);
            return r;
        }
        cb(ctx, &d);
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return fail(c, rc, what);
    return n;
}

static int sq_fetch_ready(struct xd_store_conn *c, const char *target, int64_t now_ms,
                          size_t limit, xd_dlv_skip_fn skip,
                          void (*cb)(void *ctx, struct xd_stored_dlv *d), void *ctx)
{
    sqlite3_stmt *st = NULL;
    int rc = stmt(c, ST_DLV_READY, &st);
    if (rc < 0)
        return rc;
    sqlite3_bind_text(st, 1, target, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, now_ms);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)limit);
    /* Rows the caller has in flight already cost no copy. */
    return each_dlv(c, st, skip, cb, ctx, "fetch ready deliveries");
}

static int sq_get_delivery(struct xd_store_conn *c, int64_t id, struct xd_stored_dlv *out)
{
    sqlite3_stmt *st = NULL;
    memset(out, 0, sizeof *out);
    int rc = stmt(c, ST_DLV_GET, &st);
    if (rc < 0)
        return rc;
    sqlite3_bind_int64(st, 1, id);
    rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        sqlite3_reset(st);
        return XD_ENOTFOUND;
    }
    if (rc != SQLITE_ROW) {
        sqlite3_reset(st);
        return fail(c, rc, "get delivery");
    }
    rc = read_dlv(st, out);
    sqlite3_reset(st);
    return rc;
}

/* Prepares a query built in q (listings with optional filters); disposes q. */
static int prepare_built(struct xd_store_conn *c, struct xd_buf *q, sqlite3_stmt **st,
                         const char *what)
{
    if (q->oom) {
        xd_buf_dispose(q);
        return XD_ENOMEM;
    }
    int rc = sqlite3_prepare_v2(c->db, q->data, -1, st, NULL);
    xd_buf_dispose(q);
    if (rc != SQLITE_OK)
        return fail(c, rc, what);
    return 0;
}

/* The WHERE clause of a delivery filter: only the conditions set (see dlv_bind). */
static void dlv_where(struct xd_buf *q, const struct xd_dlv_filter *f)
{
    xd_buf_puts(q, " WHERE d.id > ?1");
    if (f->state >= 0)
        xd_buf_puts(q, " AND d.state = ?2");
    if (f->target)
        xd_buf_puts(q, " AND d.target = ?3");
    if (f->route)
        xd_buf_puts(q, " AND d.route = ?4");
    if (f->error_class)
        xd_buf_puts(q, " AND d.error_class = ?5");
    if (f->event_id)
        xd_buf_puts(q, " AND e.event_id = ?6");
    if (f->from_ms)
        xd_buf_puts(q, " AND d.updated_ms >= ?7");
    if (f->to_ms)
        xd_buf_puts(q, " AND d.updated_ms < ?8");
}

static void dlv_bind(sqlite3_stmt *st, const struct xd_dlv_filter *f)
{
    sqlite3_bind_int64(st, 1, f->after_id);
    sqlite3_bind_int(st, 2, f->state);
    bind_text_or_null(st, 3, f->target);
    bind_text_or_null(st, 4, f->route);
    bind_text_or_null(st, 5, f->error_class);
    bind_text_or_null(st, 6, f->event_id);
    sqlite3_bind_int64(st, 7, f->from_ms);
    sqlite3_bind_int64(st, 8, f->to_ms);
}

/* Listing with optional filters: the WHERE clause is built from the ones set. */
static int sq_list_deliveries(struct xd_store_conn *c, const struct xd_dlv_filter *f,
                              void (*cb)(void *ctx, struct xd_stored_dlv *d), void *ctx)
{
    struct xd_buf q;
    xd_buf_init(&q);
    xd_buf_puts(&q, "SELECT d.id, d.event_seq, e.event_id, d.route, d.step, d.target, d.bkey,"
                    " d.state, d.attempts, d.next_ms, d.created_ms, d.updated_ms, d.last_status,"
                    " d.last_error, d.error_class, d.payload, NULL, d.part, NULL,"
                    " e.traceparent FROM deliveries d JOIN events e ON e.seq = d.event_seq");
    dlv_where(&q, f);
    xd_buf_puts(&q, " ORDER BY d.id LIMIT ?9");
    sqlite3_stmt *st = NULL;
    int rc = prepare_built(c, &q, &st, "prepare list deliveries");
    if (rc < 0)
        return rc;
    dlv_bind(st, f);
    sqlite3_bind_int64(st, 9, (sqlite3_int64)(f->limit ? f->limit : 100));
    rc = each_dlv(c, st, NULL, cb, ctx, "list deliveries");
    sqlite3_finalize(st);
    return rc;
}

/* How many deliveries a filter matches (after_id and limit ignored). */
static int sq_count_matching(struct xd_store_conn *c, const struct xd_dlv_filter *f, int64_t *n)
{
    struct xd_dlv_filter g = *f;
    g.after_id = 0;
    struct xd_buf q;
    xd_buf_init(&q);
    xd_buf_puts(&q, "SELECT count(*) FROM deliveries d");
    if (g.event_id)
        xd_buf_puts(&q, " JOIN events e ON e.seq = d.event_seq");
    dlv_where(&q, &g);
    sqlite3_stmt *st = NULL;
    int rc = prepare_built(c, &q, &st, "prepare count deliveries");
    if (rc < 0)
        return rc;
    dlv_bind(st, &g);
    rc = sqlite3_step(st);
    *n = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    rc = rc == SQLITE_ROW ? 0 : fail(c, rc, "count deliveries");
    sqlite3_finalize(st);
    return rc;
}

/* Steps a prepared dashboard query to the end; rows go to each(). Finalizes st. */
static int each_row(struct xd_store_conn *c, sqlite3_stmt *st, const char *what,
                    void (*each)(sqlite3_stmt *st, void *ctx), void *ctx)
{
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        each(st, ctx);
    rc = rc == SQLITE_DONE ? 0 : fail(c, rc, what);
    sqlite3_finalize(st);
    return rc;
}

static const char *col_text(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    return t ? (const char *)t : "";
}

struct exc_count_cb {
    void (*cb)(void *ctx, const char *state, const char *category, int64_t n, int64_t oldest_ms);
    void *ctx;
};

static void exc_count_row(sqlite3_stmt *st, void *ctx)
{
    struct exc_count_cb *e = ctx;
    e->cb(e->ctx, col_text(st, 0), col_text(st, 1), sqlite3_column_int64(st, 2),
          sqlite3_column_int64(st, 3));
}

static int sq_exception_counts(struct xd_store_conn *c,
                               void (*cb)(void *ctx, const char *state, const char *category,
                                          int64_t n, int64_t oldest_ms),
                               void *ctx)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(c->db,
                                "SELECT state, category, count(*), min(created_ms) FROM exceptions"
                                " GROUP BY state, category ORDER BY state, category",
                                -1, &st, NULL);
    if (rc != SQLITE_OK)
        return fail(c, rc, "prepare exception counts");
    struct exc_count_cb e = {cb, ctx};
    return each_row(c, st, "exception counts", exc_count_row, &e);
}

struct revenue_cb {
    void (*cb)(void *ctx, const char *customer, const char *warehouse, const char *currency,
               int64_t milli, int64_t n);
    void *ctx;
};

static void revenue_row(sqlite3_stmt *st, void *ctx)
{
    struct revenue_cb *e = ctx;
    e->cb(e->ctx, col_text(st, 0), col_text(st, 1), col_text(st, 2), sqlite3_column_int64(st, 3),
          sqlite3_column_int64(st, 4));
}

/*
 * Revenue of one service date per customer, warehouse and currency, in
 * thousandths of the currency unit, summed exactly: an amount's text is split
 * at its point into integer and (up to three) fraction digits, so no binary
 * floating point touches it (amounts are rounded to the currency's minor
 * unit, at most three digits).
 */
#define MILLI(a)                                                                                 \
    "CASE WHEN instr(" a ", '.') = 0 THEN CAST(" a " AS INTEGER) * 1000"                        \
    " ELSE CAST(substr(" a ", 1, instr(" a ", '.') - 1) AS INTEGER) * 1000"                     \
    " + (CASE WHEN substr(" a ", 1, 1) = '-' THEN -1 ELSE 1 END)"                               \
    " * CAST(substr(substr(" a ", instr(" a ", '.') + 1) || '000', 1, 3) AS INTEGER) END"

static int sq_revenue(struct xd_store_conn *c, const char *date,
                      void (*cb)(void *ctx, const char *customer, const char *warehouse,
                                 const char *currency, int64_t milli, int64_t n),
                      void *ctx)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(c->db,
                                "SELECT customer, warehouse, currency, sum(" MILLI("amount") "),"
                                " count(*) FROM charges WHERE service_date = ?1"
                                " GROUP BY customer, warehouse, currency",
                                -1, &st, NULL);
    if (rc != SQLITE_OK)
        return fail(c, rc, "prepare revenue");
    sqlite3_bind_text(st, 1, date, -1, SQLITE_STATIC);
    struct revenue_cb e = {cb, ctx};
    return each_row(c, st, "revenue", revenue_row, &e);
}

struct wh_cb {
    void (*cb)(void *ctx, const char *warehouse, int state, int64_t n);
    void *ctx;
};

static void wh_row(sqlite3_stmt *st, void *ctx)
{
    struct wh_cb *e = ctx;
    e->cb(e->ctx, col_text(st, 0), sqlite3_column_int(st, 1), sqlite3_column_int64(st, 2));
}

/* Pending and dead deliveries by the warehouse of their event. */
static int sq_backlog_by_warehouse(struct xd_store_conn *c,
                                   void (*cb)(void *ctx, const char *warehouse, int state,
                                              int64_t n),
                                   void *ctx)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(
        c->db,
        "SELECT coalesce(json_extract(e.body, '$.data.warehouse'), ''), d.state, count(*)"
        " FROM deliveries d INDEXED BY deliveries_state JOIN events e ON e.seq = d.event_seq"
        " WHERE d.state IN (0, 2) GROUP BY 1, 2",
        -1, &st, NULL);
    if (rc != SQLITE_OK)
        return fail(c, rc, "prepare backlog by warehouse");
    struct wh_cb e = {cb, ctx};
    return each_row(c, st, "backlog by warehouse", wh_row, &e);
}

static int sq_list_attempts(struct xd_store_conn *c, int64_t event_seq,
                            void (*cb)(void *ctx, const struct xd_stored_attempt *a), void *ctx)
{
    sqlite3_stmt *st = NULL;
    int rc = stmt(c, ST_ATTEMPTS_OF, &st);
    if (rc < 0)
        return rc;
    sqlite3_bind_int64(st, 1, event_seq);
    int n = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct xd_stored_attempt a = {
            .delivery_id = sqlite3_column_int64(st, 0),
            .at_ms = sqlite3_column_int64(st, 1),
            .status = sqlite3_column_int(st, 2),
            .latency_us = sqlite3_column_int64(st, 3),
            .outcome = (const char *)sqlite3_column_text(st, 4),
            .error = (const char *)sqlite3_column_text(st, 5),
            .target = (const char *)sqlite3_column_text(st, 6),
            .route = (const char *)sqlite3_column_text(st, 7),
            .step = (unsigned)sqlite3_column_int(st, 8),
        };
        cb(ctx, &a);
        n++;
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return fail(c, rc, "list attempts");
    return n;
}

static int sq_count_deliveries(struct xd_store_conn *c,
                               void (*cb)(void *ctx, const char *target, int state, int64_t n),
                               void *ctx)
{
    sqlite3_stmt *st = NULL;
    int rc = stmt(c, ST_DLV_COUNTS, &st);
    if (rc < 0)
        return rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        cb(ctx, (const char *)sqlite3_column_text(st, 0), sqlite3_column_int(st, 1),
           sqlite3_column_int64(st, 2));
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return fail(c, rc, "count deliveries");
    return 0;
}

/* ---- charges and exceptions ---- */

static int read_charge(sqlite3_stmt *st, struct xd_charge_rec *ch)
{
    int oom = 0;
    memset(ch, 0, sizeof *ch);
    char **txt[] = {&ch->charge_id, &ch->event_id,  &ch->reverses,     &ch->customer,
                    &ch->code,      &ch->unit,      &ch->warehouse,    &ch->reference,
                    &ch->currency,  &ch->service_date, &ch->quantity,  &ch->unit_price,
                    &ch->amount};
    for (int i = 0; i < 13; i++)
        *txt[i] = col_dup(st, i, &oom);
    ch->source = sqlite3_column_int(st, 13);
    ch->band = (unsigned)sqlite3_column_int(st, 14);
    ch->occurred_us = sqlite3_column_int64(st, 15);
    ch->created_ms = sqlite3_column_int64(st, 16);
    ch->json = col_dup(st, 17, &oom);
    if (oom) {
        xd_charge_rec_dispose(ch);
        return XD_ENOMEM;
    }
    return 0;
}

static int each_charge(struct xd_store_conn *c, sqlite3_stmt *st,
                       void (*cb)(void *ctx, struct xd_charge_rec *ch), void *ctx)
{
    int n = 0, rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct xd_charge_rec ch;
        int r = read_charge(st, &ch);
        if (r < 0) {
            sqlite3_reset(st);
            return r;
        }
        cb(ctx, &ch);
        n++;
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return fail(c, rc, "read charges");
    return n;
}

static int sq_has_charge(struct xd_store_conn *c, const char *charge_id)
{
    sqlite3_stmt *st = NULL;
    int rc = stmt(c, ST_HAS_CHARGE, &st);
    if (rc < 0)
        return rc;
    sqlite3_bind_text(st, 1, charge_id, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc == SQLITE_ROW)
        return 1;
    if (rc == SQLITE_DONE)
        return 0;
    return fail(c, rc, "has charge");
}

static int sq_charges_for_shipment(struct xd_store_conn *c, const char *warehouse,
                                   const char *sid,
                                   void (*cb)(void *ctx, struct xd_charge_rec *ch), void *ctx)
{
    sqlite3_stmt *st = NULL;
    int rc = stmt(c, ST_CHARGES_SHIPMENT, &st);
    if (rc < 0)
        return rc;
    sqlite3_bind_text(st, 1, warehouse, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, sid, -1, SQLITE_STATIC);
    return each_charge(c, st, cb, ctx);
}

static int sq_voids(struct xd_store_conn *c, const char *bkey,
                    void (*cb)(void *ctx, const char *body), void *ctx)
{
    sqlite3_stmt *st = NULL;
    int rc = stmt(c, ST_VOIDS, &st);
    if (rc < 0)
        return rc;
    sqlite3_bind_text(st, 1, bkey, -1, SQLITE_STATIC);
    int n = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        cb(ctx, (const char *)sqlite3_column_text(st, 0));
        n++;
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return fail(c, rc, "read voids");
    return n;
}

static int sq_list_charges(struct xd_store_conn *c, const struct xd_charge_filter *f,
                           void (*cb)(void *ctx, struct xd_charge_rec *ch), void *ctx)
{
    struct xd_buf q;
    xd_buf_init(&q);
    xd_buf_puts(&q, "SELECT " XD_CHARGE_COLS " FROM charges WHERE 1");
    if (f->customer)
        xd_buf_puts(&q, " AND customer = ?1");
    if (f->code)
        xd_buf_puts(&q, " AND code = ?2");
    if (f->from)
        xd_buf_puts(&q, " AND service_date >= ?3");
    if (f->to)
        xd_buf_puts(&q, " AND service_date <= ?4");
    if (f->after)
        xd_buf_puts(&q, " AND rowid > (SELECT rowid FROM charges WHERE charge_id = ?5)");
    xd_buf_puts(&q, " ORDER BY rowid");
    if (f->limit)
        xd_buf_puts(&q, " LIMIT ?6");
    sqlite3_stmt *st = NULL;
    int rc = prepare_built(c, &q, &st, "prepare list charges");
    if (rc < 0)
        return rc;
    bind_text_or_null(st, 1, f->customer);
    bind_text_or_null(st, 2, f->code);
    bind_text_or_null(st, 3, f->from);
    bind_text_or_null(st, 4, f->to);
    bind_text_or_null(st, 5, f->after);
    sqlite3_bind_int64(st, 6, (sqlite3_int64)f->limit);
    rc = each_charge(c, st, cb, ctx);
    sqlite3_finalize(st);
    return rc;
}

static int sq_charges_of_event(struct xd_store_conn *c, int64_t event_seq, size_t limit,
                               void (*cb)(void *ctx, struct xd_charge_rec *ch), void *ctx)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(c->db,
                                "SELECT " XD_CHARGE_COLS " FROM charges WHERE event_seq = ?1"
                                " ORDER BY rowid LIMIT ?2",
                                -1, &st, NULL);
    if (rc != SQLITE_OK)
        return fail(c, rc, "prepare charges of event");
    sqlite3_bind_int64(st, 1, event_seq);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)limit);
    rc = each_charge(c, st, cb, ctx);
    sqlite3_finalize(st);
    return rc;
}

#define XD_EXC_COLS                                                                                \
    "id, category, state, event_id, delivery_id, target, reason, owner, note, created_ms,"         \
    " updated_ms, warehouse, customer"

static int read_exception(sqlite3_stmt *st, struct xd_exception *x)
{
    int oom = 0;
    memset(x, 0, sizeof *x);
    x->id = sqlite3_column_int64(st, 0);
    x->category = col_dup(st, 1, &oom);
    x->state = col_dup(st, 2, &oom);
    x->event_id = col_dup(st, 3, &oom);
    x->delivery_id = sqlite3_column_int64(st, 4);
    x->target = col_dup(st, 5, &oom);
    x->reason = col_dup(st, 6, &oom);
    x->owner = col_dup(st, 7, &oom);
    x->note = col_dup(st, 8, &oom);
    x->created_ms = sqlite3_column_int64(st, 9);
    x->updated_ms = sqlite3_column_int64(st, 10);
    x->warehouse = col_dup(st, 11, &oom);
    x->customer = col_dup(st, 12, &oom);
    if (oom) {
        xd_exception_dispose(x);
        return XD_ENOMEM;
    }
    return 0;
}

/* Steps st to the end, handing each exception to cb (it owns it). Returns rows or an error. */
static int each_exception(struct xd_store_conn *c, sqlite3_stmt *st,
                          void (*cb)(void *ctx, struct xd_exception *x), void *ctx,
                          const char *what)
{
    int n = 0, rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct xd_exception x;
        int r = read_exception(st, &x);
        if (r < 0)
            return r;
        cb(ctx, &x);
        n++;
    }
    return rc == SQLITE_DONE ? n : fail(c, rc, what);
}

static int sq_list_exceptions(struct xd_store_conn *c, const struct xd_exception_filter *f,
                              void (*cb)(void *ctx, struct xd_exception *x), void *ctx)
{
    struct xd_buf q;
    xd_buf_init(&q);
    xd_buf_puts(&q, "SELECT " XD_EXC_COLS " FROM exceptions WHERE id > ?1");
    if (f->state)
        xd_buf_puts(&q, " AND state = ?2");
    if (f->category)
        xd_buf_puts(&q, " AND category = ?3");
    if (f->owner)
        xd_buf_puts(&q, " AND owner = ?5");
    xd_buf_puts(&q, " ORDER BY id LIMIT ?4");
    sqlite3_stmt *st = NULL;
    int rc = prepare_built(c, &q, &st, "prepare list exceptions");
    if (rc < 0)
        return rc;
    sqlite3_bind_int64(st, 1, f->after_id);
    bind_text_or_null(st, 2, f->state);
    bind_text_or_null(st, 3, f->category);
    sqlite3_bind_int64(st, 4, (sqlite3_int64)(f->limit ? f->limit : 100));
    bind_text_or_null(st, 5, f->owner);
    rc = each_exception(c, st, cb, ctx, "list exceptions");
    sqlite3_finalize(st);
    return rc;
}

static int sq_exceptions_of_event(struct xd_store_conn *c, const char *event_id, size_t limit,
                                  void (*cb)(void *ctx, struct xd_exception *x), void *ctx)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(c->db,
                                "SELECT " XD_EXC_COLS " FROM exceptions WHERE event_id = ?1"
                                " ORDER BY id LIMIT ?2",
                                -1, &st, NULL);
    if (rc != SQLITE_OK)
        return fail(c, rc, "prepare exceptions of event");
    sqlite3_bind_text(st, 1, event_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)limit);
    rc = each_exception(c, st, cb, ctx, "exceptions of event");
    sqlite3_finalize(st);
    return rc;
}

static int sq_get_exception(struct xd_store_conn *c, int64_t id, struct xd_exception *out)
{
    sqlite3_stmt *st = NULL;
    memset(out, 0, sizeof *out);
    int rc = sqlite3_prepare_v2(c->db, "SELECT " XD_EXC_COLS " FROM exceptions WHERE id = ?1",
                                -1, &st, NULL);
    if (rc != SQLITE_OK)
        return fail(c, rc, "prepare get exception");
    sqlite3_bind_int64(st, 1, id);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        rc = read_exception(st, out);
    else if (rc == SQLITE_DONE)
        rc = XD_ENOTFOUND;
    else
        rc = fail(c, rc, "get exception");
    sqlite3_finalize(st);
    return rc;
}

/* The order of exception states; a change may only move forward. */
static int exc_rank(const char *state)
{
    static const char *const order[] = {"open", "acknowledged", "resolved"};
    for (int i = 0; i < 3; i++)
        if (strcmp(order[i], state) == 0)
            return i;
    return -1;
}

/* Opens or changes an exception (writer). *res: 1 done, XD_ENOTFOUND, XD_ECONFLICT. */
static int sq_exc_op(struct xd_store_conn *c, const struct xd_exc_op *op, int64_t now_ms,
                     int *res)
{
    sqlite3_stmt *st = NULL;
    int rc;
    *res = 1;
    if (op->open && op->key)
        return xd_sqlite_open_keyed(c, op, now_ms);
    if (op->open) {
        rc = sqlite3_prepare_v2(c->db,
                                "INSERT INTO exceptions (category, event_id, reason, created_ms,"
                                " updated_ms) VALUES (?1, ?2, ?3, ?4, ?4)",
                                -1, &st, NULL);
        if (rc != SQLITE_OK)
            return fail(c, rc, "prepare open exception");
        sqlite3_bind_text(st, 1, op->category, -1, SQLITE_STATIC);
        bind_text_or_null(st, 2, op->event_id);
        sqlite3_bind_text(st, 3, op->reason ? op->reason : "", -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 4, now_ms);
        rc = sqlite3_step(st);
        sqlite3_finalize(st);
        return rc == SQLITE_DONE ? 0 : fail(c, rc, "open exception");
    }
    struct xd_exception cur;
    rc = sq_get_exception(c, op->id, &cur);
    if (rc == XD_ENOTFOUND) {
        *res = XD_ENOTFOUND;
        return 0;
    }
    if (rc < 0)
        return rc;
    int from = exc_rank(cur.state), to = op->state ? exc_rank(op->state) : from;
    xd_exception_dispose(&cur);
    if (to < 0 || to < from) {
        *res = XD_ECONFLICT;
        return 0;
    }
    rc = sqlite3_prepare_v2(c->db,
                            "UPDATE exceptions SET state = coalesce(?2, state),"
                            " owner = coalesce(?3, owner), note = coalesce(?4, note),"
                            " updated_ms = ?5 WHERE id = ?1",
                            -1, &st, NULL);
    if (rc != SQLITE_OK)
        return fail(c, rc, "prepare update exception");
    sqlite3_bind_int64(st, 1, op->id);
    bind_text_or_null(st, 2, op->state);
    bind_text_or_null(st, 3, op->owner);
    bind_text_or_null(st, 4, op->note);
    sqlite3_bind_int64(st, 5, now_ms);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : fail(c, rc, "update exception");
}

/* Steps a counter inside the committer's transaction (writer). */
static int sq_next_counter(struct xd_store_conn *c, struct xd_counter_op *op)
{
    sqlite3_stmt *st = NULL;
    int rc = stmt(c, ST_COUNTER, &st);
    if (rc < 0)
        return rc;
    sqlite3_bind_text(st, 1, op->name, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        rc = fail(c, rc, "next counter");
        sqlite3_reset(st);
        return rc;
    }
    op->value = sqlite3_column_int64(st, 0);
    rc = sqlite3_step(st); /* finishes the statement: RETURNING writes as it steps */
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc == SQLITE_DONE ? 0 : fail(c, rc, "next counter");
}

static int sq_charge_counts(struct xd_store_conn *c,
                            void (*cb)(void *ctx, const char *customer, const char *currency,
                                       int64_t n),
                            void *ctx)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(c->db,
                                "SELECT customer, currency, count(*) FROM charges"
                                " GROUP BY customer, currency",
                                -1, &st, NULL);
    if (rc != SQLITE_OK)
        return fail(c, rc, "prepare charge counts");
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        cb(ctx, (const char *)sqlite3_column_text(st, 0),
           (const char *)sqlite3_column_text(st, 1), sqlite3_column_int64(st, 2));
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : fail(c, rc, "charge counts");
}

/* ---- the audit log ---- */

static int sq_audit_head(struct xd_store_conn *c, int64_t *seq, unsigned char hash[32])
{
    sqlite3_stmt *st = NULL;
    *seq = 0;
    memset(hash, 0, 32);
    int rc = sqlite3_prepare_v2(c->db, "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1",
                                -1, &st, NULL);
    if (rc != SQLITE_OK)
        return fail(c, rc, "prepare audit head");
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *seq = sqlite3_column_int64(st, 0);
        const void *h = sqlite3_column_blob(st, 1);
        int n = sqlite3_column_bytes(st, 1);
        memcpy(hash, h, n == 32 && h ? 32 : 0); /* a mangled hash stays zeros: verify says so */
        rc = SQLITE_DONE;
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : fail(c, rc, "audit head");
}

static int sq_audit_insert(struct xd_store_conn *c, const struct xd_audit_entry *e)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(c->db,
                                "INSERT INTO audit (seq, at_ms, actor, action, object, detail,"
                                " prev, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                                -1, &st, NULL);
    if (rc != SQLITE_OK)
        return fail(c, rc, "prepare audit insert");
    sqlite3_bind_int64(st, 1, e->seq);
    sqlite3_bind_int64(st, 2, e->at_ms);
    sqlite3_bind_text(st, 3, e->actor, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, e->action, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, e->object, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, e->detail, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 7, e->prev, 32, SQLITE_STATIC);
    sqlite3_bind_blob(st, 8, e->hash, 32, SQLITE_STATIC);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : fail(c, rc, "audit insert");
}

/* A blob column into a 32-byte hash; anything else (NULL, wrong length) leaves zeros. */
static void col_hash(sqlite3_stmt *st, int i, unsigned char out[32])
{
    const void *h = sqlite3_column_blob(st, i);
    memset(out, 0, 32);
    if (h && sqlite3_column_bytes(st, i) == 32)
        memcpy(out, h, 32);
}

static int sq_list_audit(struct xd_store_conn *c, int64_t after, size_t limit,
                         void (*cb)(void *ctx, struct xd_audit_entry *e), void *ctx)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(c->db,
                                "SELECT seq, at_ms, actor, action, object, detail, prev, hash"
                                " FROM audit WHERE seq > ?1 ORDER BY seq LIMIT ?2",
                                -1, &st, NULL);
    if (rc != SQLITE_OK)
        return fail(c, rc, "prepare list audit");
    sqlite3_bind_int64(st, 1, after);
    sqlite3_bind_int64(st, 2, limit ? (sqlite3_int64)limit : -1);
    int n = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct xd_audit_entry e;
        int oom = 0;
        memset(&e, 0, sizeof e);
        e.seq = sqlite3_column_int64(st, 0);
        e.at_ms = sqlite3_column_int64(st, 1);
        e.actor = col_dup(st, 2, &oom);
        e.action = col_dup(st, 3, &oom);
        e.object = col_dup(st, 4, &oom);
        e.detail = col_dup(st, 5, &oom);
        col_hash(st, 6, e.prev);
        col_hash(st, 7, e.hash);
        if (oom) {
            xd_audit_entry_dispose(&e);
            sqlite3_finalize(st);
            return XD_ENOMEM;
        }
        cb(ctx, &e);
        n++;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return fail(c, rc, "list audit");
    return n;
}

static const char *sq_errmsg(struct xd_store_conn *c)
{
    return c->msg[0] ? c->msg : "no error";
}

sqlite3 *xd_sqlite_db(struct xd_store_conn *c)
{
    return c->db;
}

int xd_sqlite_fail(struct xd_store_conn *c, int rc, const char *what)
{
    return fail(c, rc, what);
}

const struct xd_store_driver xd_store_sqlite = {
    .name = "sqlite",
    .open = sq_open,
    .close = sq_close,
    .begin = sq_begin,
    .savepoint = sq_savepoint,
    .stmt_atomic = 1,
    .release = sq_release,
    .rollback_to = sq_rollback_to,
    .commit = sq_commit,
    .rollback = sq_rollback,
    .append_one = sq_append_one,
    .probe = sq_probe,
    .ready = sq_ready,
    .get_event = sq_get_event,
    .count = sq_count,
    .add_delivery = sq_add_delivery,
    .record_outcome = sq_record_outcome,
    .fetch_ready = sq_fetch_ready,
    .get_delivery = sq_get_delivery,
    .list_deliveries = sq_list_deliveries,
    .list_attempts = sq_list_attempts,
    .count_deliveries = sq_count_deliveries,
    .add_charge = sq_add_charge,
    .exc_op = sq_exc_op,
    .next_counter = sq_next_counter,
    .has_charge = sq_has_charge,
    .charges_for_shipment = sq_charges_for_shipment,
    .voids = sq_voids,
    .list_charges = sq_list_charges,
    .list_exceptions = sq_list_exceptions,
    .get_exception = sq_get_exception,
    .charges_of_event = sq_charges_of_event,
    .exceptions_of_event = sq_exceptions_of_event,
    .charge_counts = sq_charge_counts,
    .audit_head = sq_audit_head,
    .audit_insert = sq_audit_insert,
    .list_audit = sq_list_audit,
    .recon_events = xd_sqlite_recon_events,
    .recon_deliveries = xd_sqlite_recon_deliveries,
    .keyed_open = xd_sqlite_keyed_open,
    .count_matching = sq_count_matching,
    .exception_counts = sq_exception_counts,
    .revenue = sq_revenue,
    .backlog_by_warehouse = sq_backlog_by_warehouse,
    .errmsg = sq_errmsg,
};
