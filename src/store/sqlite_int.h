/*
 * What sqlite.c lends the other SQLite files of the store (sqlite_holds.c):
 * the connection's handle and its error mapping. Nothing outside src/store/
 * includes this header.
 */
#ifndef XD_SQLITE_INT_H
#define XD_SQLITE_INT_H

#include <sqlite3.h>

struct xd_outcome_rec;
struct xd_store_conn;

sqlite3 *xd_sq_db(struct xd_store_conn *c);
/* Records why `what` failed on c (for logs) and returns rc mapped to an xd_err. */
int xd_sq_fail(struct xd_store_conn *c, int rc, const char *what);

/*
 * Called by record_outcome for a delivery that becomes HELD: keeps the xref
 * table and key it waits for (parsed from o->error, "xref TABLE: no entry
 * for KEY") and opens the one master_data exception of that entry unless it
 * is open already.
 */
int xd_sq_hold(struct xd_store_conn *c, const struct xd_outcome_rec *o, int64_t now_ms);

#endif
