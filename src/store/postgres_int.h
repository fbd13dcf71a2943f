/*
 * Inside the PostgreSQL driver: what postgres.c lends to the driver's other
 * files (postgres_recon.c, postgres_holds.c), so that each area of the schema
 * keeps its SQL in one file while struct xd_store_conn stays private to
 * postgres.c. The counterpart of sqlite_int.h.
 *
 * Statements of the other files are not prepared: they run rarely (a
 * reconciliation report, an operator's PUT, a once-a-second sweep), so they
 * go as PQexecParams with text parameters, every one cast in the SQL
 * ($1::bigint), since nothing else tells the server their types.
 */
#ifndef XD_POSTGRES_INT_H
#define XD_POSTGRES_INT_H

#include "store/store_int.h"

#include <inttypes.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>

#define XD_PG_NPARAM_MAX 24

/* Parameters of one statement: text unless given with a length (raw bytes). */
struct xd_pg_params {
    const char *v[XD_PG_NPARAM_MAX];
    int len[XD_PG_NPARAM_MAX];
    int fmt[XD_PG_NPARAM_MAX];
    char num[XD_PG_NPARAM_MAX][24];
    int n;
};

static inline void xd_pg_text(struct xd_pg_params *p, const char *s)
{
    p->v[p->n] = s; /* NULL is SQL NULL */
    p->len[p->n] = 0;
    p->fmt[p->n] = 0;
    p->n++;
}

static inline void xd_pg_bytes(struct xd_pg_params *p, const void *b, size_t n)
{
    p->v[p->n] = b;
    p->len[p->n] = (int)n;
    p->fmt[p->n] = 1;
    p->n++;
}

static inline void xd_pg_int(struct xd_pg_params *p, int64_t v)
{
    snprintf(p->num[p->n], sizeof p->num[0], "%" PRId64, v);
    xd_pg_text(p, p->num[p->n]);
}

/* A column as an integer (NULL: 0) or as text (NULL stays NULL). */
static inline int64_t xd_pg_col_i64(const PGresult *r, int row, int col)
{
    if (PQgetisnull(r, row, col))
        return 0;
    return strtoll(PQgetvalue(r, row, col), NULL, 10);
}

static inline const char *xd_pg_col_str(const PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? NULL : PQgetvalue(r, row, col);
}

/* Rows a statement changed (INSERT, UPDATE, DELETE). */
static inline int64_t xd_pg_changes(PGresult *r)
{
    return strtoll(PQcmdTuples(r), NULL, 10);
}

/*
 * Runs sql with parameters p (may be NULL). out (may be NULL: the result is
 * dropped) gets the result, which the caller clears. 0 or the mapped xd_err,
 * the reason kept on c for errmsg.
 */
int xd_pg_exec(struct xd_store_conn *c, const char *sql, const struct xd_pg_params *p,
               PGresult **out, const char *what);
/*
 * Runs a query and hands its rows to row() one at a time as they arrive
 * (single-row mode: a whole table is never held in memory at once; the rows
 * still come from one snapshot). row's result holds the one row (row 0) and
 * is valid during the call only. Returns the number of rows or an xd_err.
 */
int xd_pg_each(struct xd_store_conn *c, const char *sql, const struct xd_pg_params *p,
               void (*row)(const PGresult *r, void *ctx), void *ctx, const char *what);

/* ---- postgres_recon.c ---- */

/* Inside record_outcome (writer): keeps o->ack for o->delivery_id, replacing an older one. */
int xd_pg_record_ack(struct xd_store_conn *c, const struct xd_outcome_rec *o, int64_t now_ms);
/* Inside exc_op (writer): opens op unless an exception with op->key is not resolved. */
int xd_pg_open_keyed(struct xd_store_conn *c, const struct xd_exc_op *op, int64_t now_ms);
/* Readers: see store.h. */
int xd_pg_recon_events(struct xd_store_conn *c,
                       void (*cb)(void *ctx, const struct xd_recon_event *e), void *ctx);
int xd_pg_recon_deliveries(struct xd_store_conn *c,
                           void (*cb)(void *ctx, const struct xd_recon_dlv *d), void *ctx);
int xd_pg_keyed_open(struct xd_store_conn *c, const char *category,
                     void (*cb)(void *ctx, int64_t id, const char *key, const char *state),
                     void *ctx);

/* ---- postgres_holds.c ---- */

/*
 * Inside record_outcome (writer), for a delivery that becomes HELD: as
 * xd_sqlite_hold (sqlite_int.h).
 */
int xd_pg_hold(struct xd_store_conn *c, const struct xd_outcome_rec *o, int64_t now_ms);

#endif
