/*
 * Inside the SQLite driver: what sqlite.c lends to the driver's other files
 * (sqlite_recon.c, sqlite_holds.c), so that each area of the schema keeps its SQL in one
 * file while struct xd_store_conn stays private to sqlite.c.
 */
#ifndef XD_SQLITE_INT_H
#define XD_SQLITE_INT_H

#include "store/store_int.h"

#include <sqlite3.h>

/*
 * A delivery that still holds its business key: pending, dead or held
 * (XD_DLV_PENDING, XD_DLV_DEAD, XD_DLV_HELD), spelt as the line index's
 * predicate is (schema 8) so that SQLite can use that index, and as
 * comparisons: an IN list costs a temporary b-tree per evaluation.
 */
#define STATE_OPEN(t) "(" t ".state = 0 OR " t ".state = 2 OR " t ".state = 4)"

/* The connection's database handle. */
sqlite3 *xd_sqlite_db(struct xd_store_conn *c);
/* Records why `what` failed on c (for errmsg) and returns the mapped xd_err. */
int xd_sqlite_fail(struct xd_store_conn *c, int rc, const char *what);

/* ---- sqlite_vfs.c ---- */

/*
 * Registers the writer's VFS (SQLite's default one, with a durable commit's
 * WAL writes gathered into one write) and returns its name; NULL when the
 * default VFS is not one it can wrap (the writer then opens with the default).
 * Called once (pthread_once).
 */
const char *xd_sqlite_vfs_register(void);
/*
 * Gathers the WAL writes of db's next transactions (on) or not (off, which
 * writes what is held). On only for transactions whose commit syncs the WAL
 * (synchronous=FULL): their frames are published after that sync alone.
 * Does nothing for a connection opened with another VFS. An SQLite code.
 */
int xd_sqlite_vfs_gather(sqlite3 *db, int on);
/*
 * After each sync of db's database file (a checkpoint's end), drops from the
 * OS page cache the pages more than keep bytes behind the file's end (0: never).
 * Returns 1, or 0 when it cannot for db: opened with another VFS, or the
 * file's descriptor not found (see unix_fd in sqlite_vfs.c).
 */
int xd_sqlite_vfs_keep_cached(sqlite3 *db, sqlite3_int64 keep);

/* ---- sqlite_recon.c ---- */

/* Inside record_outcome (writer): keeps o->ack for o->delivery_id, replacing an older one. */
int xd_sqlite_record_ack(struct xd_store_conn *c, const struct xd_outcome_rec *o, int64_t now_ms);
/* Inside exc_op (writer): opens op unless an exception with op->key is not resolved. */
int xd_sqlite_open_keyed(struct xd_store_conn *c, const struct xd_exc_op *op, int64_t now_ms);
/* Readers: see store.h. */
int xd_sqlite_recon_events(struct xd_store_conn *c,
                           void (*cb)(void *ctx, const struct xd_recon_event *e), void *ctx);
int xd_sqlite_recon_deliveries(struct xd_store_conn *c,
                               void (*cb)(void *ctx, const struct xd_recon_dlv *d), void *ctx);
int xd_sqlite_keyed_open(struct xd_store_conn *c, const char *category,
                         void (*cb)(void *ctx, int64_t id, const char *key, const char *state),
                         void *ctx);

/* ---- sqlite_holds.c ---- */

/*
 * Inside record_outcome (writer), for a delivery that becomes HELD: keeps
 * the xref table and key it waits for (parsed from o->error, "xref TABLE:
 * no entry for KEY") and opens the one master_data exception of that entry
 * unless it is open already.
 */
int xd_sqlite_hold(struct xd_store_conn *c, const struct xd_outcome_rec *o, int64_t now_ms);

#endif
