/*
 * Inside the store: the driver table that store.c (driver-agnostic: queue,
 * committer thread, group commit, reader pool) calls, and that sqlite.c (and
 * postgres.c) fills in. Nothing outside src/store/ includes
 * this header, and no SQL or driver type appears in it.
 *
 * A connection (struct xd_store_conn, defined by each driver) is used by one
 * thread at a time: the writer only by the committer thread, readers by
 * whichever thread took them from the pool. A driver therefore needs no
 * locking of its own. Every operation returns 0 or a negative xd_err; the
 * driver maps its native error codes (SQLITE_FULL → XD_EFULL, ...) so that
 * store.c never sees them.
 *
 * Transaction shape, driven by store.c for every group:
 *   begin, { savepoint, append_one..., [rollback_to], release }..., commit
 * and rollback when anything in it failed. A driver may assume savepoints are
 * never nested.
 */
#ifndef XD_STORE_INT_H
#define XD_STORE_INT_H

#include "store/store.h"

#include <stdint.h>

struct xd_buf;
struct xd_event;
struct xd_store_conn;

/* An exception to open (open = 1) or to change (id, state, owner, note). */
struct xd_exc_op {
    int open;
    int64_t id;
    const char *state, *owner, *note;
    const char *category, *event_id, *reason;
    const char *key; /* open: unless one with this key is not resolved (reconciliation) */
    int *opened;     /* open with key: set to 1 when it was opened (may be NULL) */
};

/* A counter to step: name in, its new value out (xd_store_next_counter). */
struct xd_counter_op {
    const char *name;
    int64_t value;
};

/*
 * A write that belongs to one driver (store/holds.h: xref entries, holds,
 * SLA breaches, alerts): fn runs on the committer thread inside the group's
 * transaction, in the request's savepoint, with the writer connection. It
 * returns 0 or a negative xd_err (XD_EINVAL / XD_ETOOBIG fail this request
 * alone, anything else the group).
 */
struct xd_ext_op {
    int (*fn)(struct xd_store_conn *c, void *arg, int64_t now_ms);
    void *arg;
};
/* Submits op and waits: returns its outcome. */
int xd_store_ext_write(struct xd_store *s, const struct xd_ext_op *op);
/* Runs fn with a pooled read connection; returns what fn returns. */
int xd_store_ext_read(struct xd_store *s, int (*fn)(struct xd_store_conn *c, void *arg),
                      void *arg);
/* An audit entry to append (xd_store_audit_append); out receives seq, at_ms, prev, hash. */
struct xd_audit_op {
    const char *actor, *action, *object, *detail;
    struct xd_audit_entry *out; /* may be NULL */
};

/* The config's store section, copied (the store outlives a config reload). */
struct xd_store_opts {
    char *driver;             /* "sqlite" | "postgres" */
    char *path;               /* sqlite: database file */
    char *url;                /* postgres: connection URL */
    int sync_full;            /* sqlite: synchronous=FULL (1) or NORMAL (0) */
    unsigned busy_timeout_ms; /* how long to wait for another writer's lock */
    size_t cache_keep;        /* sqlite: page cache drop-behind window (0: none) */
    char *node_id;            /* postgres: this process's name on the leases it takes */
    unsigned lease_ms;        /* postgres: how long a claim on a delivery lasts */
};

/* How a transaction's COMMIT treats durability. */
enum xd_commit_mode {
    XD_COMMIT_DURABLE,  /* durable when COMMIT returns */
    XD_COMMIT_LAZY,     /* may be lost in a crash: nothing waits for the disk */
};

enum xd_conn_mode {
    XD_CONN_WRITER, /* read-write; creates and migrates the schema */
    XD_CONN_READER, /* read-only; the schema must exist */
};

struct xd_store_driver {
    const char *name; /* matches store.driver in the config */

    /*
     * Opens a connection. A writer creates the database and migrates its
     * schema to the current version; a writer on a database that cannot be
     * written (read-only file or file system) still opens when the schema is
     * current, and ready() then says XD_EREADONLY. On failure returns a
     * negative xd_err and appends a one-line reason to err (may be NULL).
     */
    int (*open)(const struct xd_store_opts *o, enum xd_conn_mode mode, struct xd_store_conn **out,
                struct xd_buf *err);
    void (*close)(struct xd_store_conn *c); /* NULL is a no-op */

    /* Transactions (writer only). rollback is harmless when none is open. */
    /* Takes the write lock now; mode says whether COMMIT must wait for the disk. */
    int (*begin)(struct xd_store_conn *c, enum xd_commit_mode mode);
    int (*savepoint)(struct xd_store_conn *c);
    /*
     * 1 when a failed statement undoes itself alone and the transaction goes
     * on (SQLite): a request of one statement then needs no savepoint. Not
     * PostgreSQL, where an error aborts the whole transaction.
     */
    int stmt_atomic;
    int (*release)(struct xd_store_conn *c);
    int (*rollback_to)(struct xd_store_conn *c); /* undo since savepoint, keep it open */
    int (*commit)(struct xd_store_conn *c);      /* durable when it returns 0 */
    int (*rollback)(struct xd_store_conn *c);

    /*
     * Inserts one event unless its event_id is stored already (including
     * earlier in this transaction); *res says which: ACCEPTED, DUPLICATE
     * (same hash) or CONFLICT (different hash).
     */
    int (*append_one)(struct xd_store_conn *c, const struct xd_event *ev, int64_t received_ms,
                      enum xd_append_result *res, int64_t *seq);
    /*
     * Optional (NULL: append_one is called per event): the n events of one
     * request at once, with the results n calls of append_one in order would
     * give (res[i], seq[i]; an event_id given twice: the later one is a
     * DUPLICATE or CONFLICT of the earlier). For drivers where a statement
     * costs a round trip.
     */
    int (*append_many)(struct xd_store_conn *c, const struct xd_event *evs, size_t n,
                       int64_t received_ms, enum xd_append_result *res, int64_t *seq);
    /*
     * One small real write in its own transaction, to learn whether writes
     * work again after a failure (disk full, read-only).
     */
    int (*probe)(struct xd_store_conn *c);
    /* Cheap check, no I/O on the database: XD_EREADONLY when it cannot be written. */
    int (*ready)(struct xd_store_conn *c);

    /* Reads (reader connections). */
    int (*get_event)(struct xd_store_conn *c, const char *event_id, struct xd_stored_event *out);
    int (*count)(struct xd_store_conn *c, int64_t *out);

    /* Deliveries (writer): see store.h for what each means. */
    int (*add_delivery)(struct xd_store_conn *c, int64_t event_seq, const char *bkey,
                        const struct xd_dlv_init *d, int64_t now_ms);
    int (*record_outcome)(struct xd_store_conn *c, const struct xd_outcome_rec *o, int64_t now_ms,
                          int *applied);
    int (*add_charge)(struct xd_store_conn *c, const struct xd_charge_rec *ch, int64_t event_seq,
                      int64_t now_ms, int *added);
    int (*exc_op)(struct xd_store_conn *c, const struct xd_exc_op *op, int64_t now_ms, int *res);
    /* Steps counter op->name (kept in store_meta) and sets op->value to the new value. */
    int (*next_counter)(struct xd_store_conn *c, struct xd_counter_op *op);
    /* Deliveries (readers). */
    int (*fetch_ready)(struct xd_store_conn *c, const char *target, int64_t now_ms, size_t limit,
                       xd_dlv_skip_fn skip, void (*cb)(void *ctx, struct xd_stored_dlv *d),
                       void *ctx);
    int (*get_delivery)(struct xd_store_conn *c, int64_t id, struct xd_stored_dlv *out);
    int (*list_deliveries)(struct xd_store_conn *c, const struct xd_dlv_filter *f,
                           void (*cb)(void *ctx, struct xd_stored_dlv *d), void *ctx);
    int (*list_attempts)(struct xd_store_conn *c, int64_t event_seq,
                         void (*cb)(void *ctx, const struct xd_stored_attempt *a), void *ctx);
    int (*count_deliveries)(struct xd_store_conn *c,
                            void (*cb)(void *ctx, const char *target, int state, int64_t n),
                            void *ctx);

    /* Charges and exceptions (readers). */
    int (*has_charge)(struct xd_store_conn *c, const char *charge_id);
    int (*charges_for_shipment)(struct xd_store_conn *c, const char *warehouse, const char *sid,
                                void (*cb)(void *ctx, struct xd_charge_rec *ch), void *ctx);
    int (*voids)(struct xd_store_conn *c, const char *bkey,
                 void (*cb)(void *ctx, const char *body), void *ctx);
    int (*list_charges)(struct xd_store_conn *c, const struct xd_charge_filter *f,
                        void (*cb)(void *ctx, struct xd_charge_rec *ch), void *ctx);
    int (*list_exceptions)(struct xd_store_conn *c, const struct xd_exception_filter *f,
                           void (*cb)(void *ctx, struct xd_exception *x), void *ctx);
    int (*get_exception)(struct xd_store_conn *c, int64_t id, struct xd_exception *out);
    /* An event's charges and exceptions, for its timeline (store.h; limit is never 0 here). */
    int (*charges_of_event)(struct xd_store_conn *c, int64_t event_seq, size_t limit,
                            void (*cb)(void *ctx, struct xd_charge_rec *ch), void *ctx);
    int (*exceptions_of_event)(struct xd_store_conn *c, const char *event_id, size_t limit,
                               void (*cb)(void *ctx, struct xd_exception *x), void *ctx);
    int (*charge_counts)(struct xd_store_conn *c,
                         void (*cb)(void *ctx, const char *customer, const char *currency,
                                    int64_t n),
                         void *ctx);

    /*
     * The audit log. audit_head: the last entry's seq and hash (0 and zeros
     * when empty), on the writer inside the open transaction or on a reader.
     * audit_insert (writer): stores e as given (seq, at_ms, strings, prev,
     * hash); store.c computes the chain. list_audit (readers): as
     * xd_store_list_audit().
     */
    int (*audit_head)(struct xd_store_conn *c, int64_t *seq, unsigned char hash[32]);
    int (*audit_insert)(struct xd_store_conn *c, const struct xd_audit_entry *e);
    int (*list_audit)(struct xd_store_conn *c, int64_t after, size_t limit,
                      void (*cb)(void *ctx, struct xd_audit_entry *e), void *ctx);
    /*
     * Several nodes (optional; NULL: one node, every job lock is granted).
     * job_lock takes (take = 1) or releases (take = 0) the lock of periodic
     * job `name` for this connection's session: 1 done, 0 another node holds
     * it, or a negative xd_err. release_leases (writer) gives back the claims
     * this node holds on deliveries it did not finish, at a clean stop.
     */
    int (*job_lock)(struct xd_store_conn *c, const char *name, int take);
    int (*release_leases)(struct xd_store_conn *c);
    /* Reconciliation (reconcile/; store.h says what each returns). */
    int (*recon_events)(struct xd_store_conn *c,
                        void (*cb)(void *ctx, const struct xd_recon_event *e), void *ctx);
    int (*recon_deliveries)(struct xd_store_conn *c,
                            void (*cb)(void *ctx, const struct xd_recon_dlv *d), void *ctx);
    int (*keyed_open)(struct xd_store_conn *c, const char *category,
                      void (*cb)(void *ctx, int64_t id, const char *key, const char *state),
                      void *ctx);
    /* Dashboard aggregates (readers): see the xd_store_* functions of the same names. */
    int (*count_matching)(struct xd_store_conn *c, const struct xd_dlv_filter *f, int64_t *n);
    int (*exception_counts)(struct xd_store_conn *c,
                            void (*cb)(void *ctx, const char *state, const char *category,
                                       int64_t n, int64_t oldest_ms),
                            void *ctx);
    int (*revenue)(struct xd_store_conn *c, const char *date,
                   void (*cb)(void *ctx, const char *customer, const char *warehouse,
                              const char *currency, int64_t milli, int64_t n),
                   void *ctx);
    int (*backlog_by_warehouse)(struct xd_store_conn *c,
                                void (*cb)(void *ctx, const char *warehouse, int state, int64_t n),
                                void *ctx);

    /* The driver's message for the last failure on c (for logs); never NULL. */
    const char *(*errmsg)(struct xd_store_conn *c);
};

extern const struct xd_store_driver xd_store_sqlite;
extern const struct xd_store_driver xd_store_postgres;

#endif
