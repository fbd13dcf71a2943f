/*
 * The store: the only interface the rest of the hub uses to keep things on
 * disk. One interface, two drivers (SQLite in WAL mode, the default; PostgreSQL
 * for several nodes on one database); only store/ includes sqlite3.h or libpq-fe.h.
 *
 * Intake is group-committed: requests are queued with xd_store_submit(), a
 * committer thread takes everything queued, writes it in one transaction
 * (one SAVEPOINT per request so a conflicting request rolls back alone) and
 * one fsync, and only then calls each request's done callback. A request is
 * therefore acknowledged only once it is durable, and many requests share
 * one fsync.
 *
 * The event journal is append-only. Duplicate detection is by event_id,
 * forever: an id seen before with the same body hash is a duplicate (a
 * success), with a different hash a conflict.
 *
 * Ownership: xd_store_open() returns a heap object; xd_store_close() drains
 * the queue (every submitted request still gets its callback) and frees it.
 * Strings returned in xd_stored_event are heap copies freed by
 * xd_stored_event_dispose().
 */
#ifndef XD_STORE_H
#define XD_STORE_H

#include <stddef.h>
#include <stdint.h>

struct xd_config;
struct xd_buf;
struct xd_audit_entry;
struct xd_audit_op;
struct xd_counter_op;
struct xd_exc_op;
struct xd_ext_op;
struct xd_event;
struct xd_store;

enum xd_append_result {
    XD_APPEND_ACCEPTED = 0,  /* new, now durable */
    XD_APPEND_DUPLICATE = 1, /* seen before with the same body */
    XD_APPEND_CONFLICT = 2,  /* seen before with a different body */
};

/* ---- deliveries: the durable work queue of routing ---- */

enum xd_dlv_state {
    XD_DLV_PENDING = 0, /* waiting for its turn, or for its next attempt */
    XD_DLV_DONE = 1,    /* the target accepted it (or a local step succeeded) */
    XD_DLV_DEAD = 2,    /* dead-lettered: attempts exhausted or refused; holds its key */
    XD_DLV_SKIPPED = 3, /* the route's filter said no, or an operator discarded it */
    XD_DLV_HELD = 4,    /* awaiting master data (an xref entry, store/holds.h); holds its key */
};
const char *xd_dlv_state_name(int state); /* "pending", "done", "dead", "skipped", "held" */
int xd_dlv_state_parse(const char *name); /* -1 when unknown */

/* A delivery to create: one step of one route for one event. */
struct xd_dlv_init {
    const char *route;  /* route name */
    unsigned step;      /* index in the route's steps */
    const char *target; /* target name, or "" for a local step (rate) */
};

/*
 * The planner tells the store which deliveries a newly accepted event starts
 * (the first step of every route whose `on` lists its type). It runs on the
 * committer thread inside the intake transaction, so an event and its
 * deliveries are durable together; it must be cheap and must not block.
 * Returns how many entries of out it filled (at most max).
 */
typedef size_t (*xd_planner_fn)(void *ctx, const struct xd_event *ev, struct xd_dlv_init *out,
                                size_t max);
void xd_store_set_planner(struct xd_store *s, xd_planner_fn fn, void *ctx);

/*
 * A charge to record (rating/rate.h makes them; the store keeps them as
 * text, decimals exact). A charge id is recorded once: recording it again
 * changes nothing. As returned by reads, every string is a heap copy freed
 * by xd_charge_rec_dispose().
 */
struct xd_charge_rec {
    char *charge_id, *event_id, *reverses, *customer, *code, *unit, *warehouse, *reference,
        *currency, *service_date, *quantity, *unit_price, *amount;
    int source;          /* enum xd_event_type of the event rated */
    unsigned band;       /* tier band, 0 for a flat price */
    int64_t occurred_us; /* the rated event's occurred_at */
    int64_t event_seq;   /* 0 for charges of no event (monthly minimum top-ups) */
    int64_t created_ms;
    char *json;          /* the charge as billing receives it (contract section 5) */
};
void xd_charge_rec_dispose(struct xd_charge_rec *c);

/*
 * What became of one delivery attempt (or an operator action), written by the
 * committer in the same group-commit stream as intake.
 */
struct xd_outcome_rec {
    int64_t delivery_id;
    int state;           /* new xd_dlv_state */
    int count_attempt;   /* 1: an attempt was made (attempts + 1, attempt row kept) */
    int64_t next_ms;     /* for PENDING: earliest next attempt */
    int64_t at_ms;       /* when the attempt started */
    int status;          /* HTTP status, 0 for a transport or local error */
    int64_t latency_us;
    const char *outcome; /* "ok", "retry", "fail", "filtered", "replayed", ... */
    const char *error;   /* message, or NULL */
    const char *error_class; /* "http_5xx", "timeout", "jq", ... or NULL */
    const char *payload; /* mapped payload to keep with a dead letter, or NULL */
    size_t payload_len;
    /* The route's next step, created when this one is DONE (next.route NULL: none). */
    struct xd_dlv_init next;
    /*
     * Charges a rate step produced, recorded with its outcome. With
     * next_per_charge the next step is created once per charge (part =
     * charge id) instead of once.
     */
    const struct xd_charge_rec *charges;
    size_t ncharges;
    int next_per_charge;
    /* Opens an exception of this category (reason: error) unless one is open. */
    const char *exception;
    int only_if_dead;    /* replay: change nothing unless the delivery is dead now */
    /*
     * The caller knows no exception can be open for this delivery (it was
     * never dead-lettered: first attempt, no error kept), so a DONE need not
     * look for one to resolve.
     */
    int no_exception;
    int reset_attempts;  /* replay: attempts start again from 0 */
    /* What the target's `ack` program made of its 2xx answer (JSON), kept for the ledger. */
    const char *ack;
    size_t ack_len;
};

/* One intake request: an atomic group of events (a single event is n = 1). */
struct xd_append {
    const struct xd_event *events; /* in: not owned, valid until done runs */
    size_t n;
    /* Or (n = 0) delivery outcomes to record, in order. Not owned. */
    const struct xd_outcome_rec *outcomes;
    size_t noutcomes;
    /* Or (n = 0) charges of no delivery (billing close); results: 1 = new. Not owned. */
    const struct xd_charge_rec *charges;
    size_t ncharges;
    /* Or an exception to open or change (internal: see xd_store_update_exception). */
    const struct xd_exc_op *exc_op;
    /* Or a counter to step (internal: see xd_store_next_counter). */
    struct xd_counter_op *counter_op;
    /* Or a driver-specific write (internal: see store_int.h, store/holds.h). */
    const struct xd_ext_op *ext_op;
    /* Or an audit entry to append (internal: see xd_store_audit_append). */
    struct xd_audit_op *audit_op;
    unsigned char *results; /* out: n xd_append_result values (caller storage, or NULL) */
    /*
     * out: 0 when the request's new events are durable (results say which
     * were duplicates); XD_ECONFLICT when any event conflicted (nothing of
     * this request was stored; results mark the conflicting ones);
     * XD_EFULL / XD_EREADONLY / XD_EUNAVAIL / XD_EIO when the transaction
     * could not be made durable (nothing of it was stored); XD_EINVAL /
     * XD_ETOOBIG when the database refused this request's data (nothing of it
     * stored, other requests unaffected); XD_ESTOPPING when the store is
     * closing.
     */
    int rc;
    /*
     * in: 1 when losing this request in a crash is harmless because it is
     * redone (delivery outcomes: the delivery is attempted again with the same
     * Idempotency-Key). A group of nothing but such requests commits without
     * waiting for the disk (SQLite: synchronous=NORMAL for that transaction;
     * the next durable commit makes it durable too, since the WAL is synced
     * in order). Intake, charges, operator actions and counters never are.
     */
    int lazy;
    /* Called once, from the committer thread, after the outcome is known. */
    void (*done)(struct xd_append *a, void *arg);
    void *arg;
    struct xd_append *next; /* internal: queue link */
};

/*
 * Opens (creating or migrating) the store that cfg->store names; on failure
 * returns a negative xd_err and appends a reason to err (may be NULL). A
 * store whose file is read-only opens when its schema is current: reads work,
 * writes and xd_store_ready() give XD_EREADONLY until it is writable again.
 * cfg is not kept.
 */
int xd_store_open(const struct xd_config *cfg, struct xd_store **out, struct xd_buf *err);
/* No read may be running on s when it is closed. NULL is a no-op. */
void xd_store_close(struct xd_store *s);

/*
 * Queues a request; returns 0, or XD_ESTOPPING / XD_EINVAL (a request without
 * done, an event without event_id, bkey, occurred_at, body or a known type);
 * done is then not called. done may submit again but must not close the store.
 */
int xd_store_submit(struct xd_store *s, struct xd_append *a);
/* Submits and waits: returns a->rc. */
int xd_store_append(struct xd_store *s, struct xd_append *a);

/* An event as stored. */
struct xd_stored_event {
    int64_t seq;         /* journal position, increasing */
    char *event_id;
    char *type;
    char *bkey;
    char *occurred_at;
    char *source;
    char *state;         /* received, ... (routing adds more) */
    int64_t received_ms; /* unix ms when it was committed */
    char *body;          /* compact JSON of the normalised event */
    char *traceparent;   /* the W3C traceparent it arrived with, or NULL */
};
/* Returns 0, XD_ENOTFOUND, or another negative xd_err. */
int xd_store_get_event(struct xd_store *s, const char *event_id, struct xd_stored_event *out);
void xd_stored_event_dispose(struct xd_stored_event *e);

/* A delivery as stored, with its event's id and (when asked) body. */
struct xd_stored_dlv {
    int64_t id;
    int64_t event_seq;
    char *event_id;
    char *route;
    unsigned step;
    char *target;
    char *bkey;
    int state;
    unsigned attempts;
    int64_t next_ms, created_ms, updated_ms;
    int last_status;
    char *last_error;
    char *error_class;
    char *payload; /* kept for dead letters */
    char *body;    /* the event body (fetch_ready only) */
    char *part;    /* "" or the charge id this delivery carries */
    char *charge;  /* that charge's JSON (fetch_ready only) */
    char *traceparent; /* the event's traceparent, or NULL (none given) */
};
void xd_stored_dlv_dispose(struct xd_stored_dlv *d);

/*
 * The deliveries of target that may go now, oldest first: PENDING, due
 * (next_ms <= now_ms), and first in line for their business key (no older
 * PENDING, DEAD or HELD delivery of the same key to the same target). The caller
 * skips those it already has in flight: skip (may be NULL) is asked first
 * with the row's id and key, before anything is copied, and a row it says
 * 1 to is passed over (still counted as seen). cb is called per other row
 * (with body); it takes ownership of the row (dispose it). Returns rows seen
 * or an error.
 */
typedef int (*xd_dlv_skip_fn)(void *ctx, int64_t id, const char *bkey);
int xd_store_fetch_ready(struct xd_store *s, const char *target, int64_t now_ms, size_t limit,
                         xd_dlv_skip_fn skip, void (*cb)(void *ctx, struct xd_stored_dlv *d),
                         void *ctx);

/* Filters for listing and bulk replay; NULL / 0 fields match everything. */
struct xd_dlv_filter {
    int state;               /* xd_dlv_state, or -1 for any */
    const char *target;
    const char *route;
    const char *error_class;
    const char *event_id;
    int64_t from_ms, to_ms;  /* updated_ms range, 0 = open */
    int64_t after_id;        /* paging: ids greater than this */
    size_t limit;            /* at most this many (0 = 100) */
};
int xd_store_list_deliveries(struct xd_store *s, const struct xd_dlv_filter *f,
                             void (*cb)(void *ctx, struct xd_stored_dlv *d), void *ctx);
int xd_store_get_delivery(struct xd_store *s, int64_t id, struct xd_stored_dlv *out);

/* One attempt of a delivery, for timelines. */
struct xd_stored_attempt {
    int64_t delivery_id;
    unsigned n;
    int64_t at_ms;
    int status;
    int64_t latency_us;
    const char *outcome; /* valid during the callback only */
    const char *error;
    const char *target;  /* the delivery's ("" for a rate step) */
    const char *route;
    unsigned step;
};
int xd_store_list_attempts(struct xd_store *s, int64_t event_seq,
                           void (*cb)(void *ctx, const struct xd_stored_attempt *a), void *ctx);

/* ---- charges ---- */

/* 1 when the charge id is recorded, 0 when not, or a negative xd_err. */
int xd_store_has_charge(struct xd_store *s, const char *charge_id);
/* Every charge of (warehouse, reference = shipment id), reversals included; cb owns each. */
int xd_store_charges_for_shipment(struct xd_store *s, const char *warehouse,
                                  const char *shipment_id,
                                  void (*cb)(void *ctx, struct xd_charge_rec *c), void *ctx);
/* The bodies of the shipment.voided events of business key bkey, in journal order. */
int xd_store_voids(struct xd_store *s, const char *bkey,
                   void (*cb)(void *ctx, const char *body), void *ctx);

struct xd_charge_filter {
    const char *customer;
    const char *code;
    const char *from; /* service_date >= (YYYY-MM-DD), or NULL */
    const char *to;   /* service_date <= */
    const char *after; /* paging: charges recorded after this charge id */
    size_t limit;      /* 0 = all */
};
int xd_store_list_charges(struct xd_store *s, const struct xd_charge_filter *f,
                          void (*cb)(void *ctx, struct xd_charge_rec *c), void *ctx);

/*
 * The charges rated from the event at journal position event_seq (a void's
 * reversals are the void's), in the order they were recorded, at most limit
 * (0 = 1000); cb owns each. Returns how many, or a negative xd_err.
 */
int xd_store_charges_of_event(struct xd_store *s, int64_t event_seq, size_t limit,
                              void (*cb)(void *ctx, struct xd_charge_rec *c), void *ctx);

/* Charges recorded, per customer and currency (for /metrics). */
int xd_store_charge_counts(struct xd_store *s,
                           void (*cb)(void *ctx, const char *customer, const char *currency,
                                      int64_t n),
                           void *ctx);

/* ---- exceptions ---- */

struct xd_exception {
    int64_t id;
    char *category, *state, *event_id, *target, *reason, *owner, *note;
    int64_t delivery_id, created_ms, updated_ms;
    char *warehouse, *customer; /* of its event, when it has one */
};
void xd_exception_dispose(struct xd_exception *x);
struct xd_exception_filter {
    const char *state;    /* open | acknowledged | resolved, or NULL */
    const char *category;
    const char *owner;
    int64_t after_id;
    size_t limit;         /* 0 = 100 */
};
int xd_store_list_exceptions(struct xd_store *s, const struct xd_exception_filter *f,
                             void (*cb)(void *ctx, struct xd_exception *x), void *ctx);
int xd_store_get_exception(struct xd_store *s, int64_t id, struct xd_exception *out);
/*
 * The exceptions about event_id (of every state), oldest first, at most limit
 * (0 = 1000); cb owns each. Returns how many, or a negative xd_err.
 */
int xd_store_exceptions_of_event(struct xd_store *s, const char *event_id, size_t limit,
                                 void (*cb)(void *ctx, struct xd_exception *x), void *ctx);
/*
 * Changes an exception: state (NULL = keep; only forward: open -> acknowledged
 * -> resolved), owner and note (NULL = keep). XD_ENOTFOUND, XD_ECONFLICT for
 * a backward state change. Goes through the committer and waits.
 */
int xd_store_update_exception(struct xd_store *s, int64_t id, const char *state,
                              const char *owner, const char *note);
/* Opens an exception not tied to a delivery (rejected files, ...). Waits. */
int xd_store_open_exception(struct xd_store *s, const char *category, const char *event_id,
                            const char *reason);

/* ---- counters ---- */

/*
 * Steps the durable counter `name` (1-64 characters) and sets *value to its
 * new value: 1 the first time, then 2, 3, ... across restarts, never the
 * same value twice (X12 control numbers of the documents the hub sends).
 * Goes through the committer like every write and waits; the value is
 * durable when this returns 0. A value taken and then not used is a gap,
 * never a repeat. Returns 0, XD_EINVAL, or the store's write errors.
 */
int xd_store_next_counter(struct xd_store *s, const char *name, int64_t *value);

/* ---- the audit log (audit/chain.h: entries and their hash chain) ---- */

/*
 * Appends an entry to the audit log and waits until it is durable. The
 * store gives it the next seq, the commit time, the previous entry's hash
 * and its own hash (xd_audit_hash()), on the committer thread: the chain
 * follows commit order whoever appends. detail must be a JSON object's text.
 * out (may be NULL) gets seq, at_ms, prev and hash; its strings stay NULL.
 * The table is append-only: nothing in the hub updates or deletes entries.
 */
int xd_store_audit_append(struct xd_store *s, const char *actor, const char *action,
                          const char *object, const char *detail, struct xd_audit_entry *out);
/*
 * The entries with seq > after, in seq order, at most limit (0: all of them,
 * streamed from one read snapshot). cb owns each entry (dispose it).
 * Returns how many, or a negative xd_err.
 */
int xd_store_list_audit(struct xd_store *s, int64_t after, size_t limit,
                        void (*cb)(void *ctx, struct xd_audit_entry *e), void *ctx);
/* The last entry's seq and hash (strings not read); XD_ENOTFOUND when the log is empty. */
int xd_store_audit_head(struct xd_store *s, struct xd_audit_entry *out);
/* ---- reconciliation (reconcile/): the rows the ledger is built from ---- */

/* An event as the ledger reads it; strings valid during the callback only. */
struct xd_recon_event {
    int64_t seq;
    const char *event_id, *type, *bkey, *occurred_at, *body;
    int64_t received_ms;
};
/* A delivery as the ledger reads it, with the target's acknowledgment (ack NULL: none). */
struct xd_recon_dlv {
    int64_t id, event_seq;
    const char *route, *target, *part, *last_error, *ack;
    unsigned step, attempts;
    int state, last_status;
    int64_t created_ms, updated_ms, ack_ms;
};
/* Every event, then every delivery, in journal (id) order. */
int xd_store_recon_events(struct xd_store *s,
                          void (*cb)(void *ctx, const struct xd_recon_event *e), void *ctx);
int xd_store_recon_deliveries(struct xd_store *s,
                              void (*cb)(void *ctx, const struct xd_recon_dlv *d), void *ctx);

/* An exception with a de-duplication key: at most one not resolved per key. */
struct xd_keyed_exc {
    const char *key, *category, *event_id, *reason;
};
/*
 * Opens each exception of v unless one with its key is open or acknowledged
 * (all in one group commit); *opened (may be NULL) counts the new ones.
 */
int xd_store_open_keyed(struct xd_store *s, const struct xd_keyed_exc *v, size_t n,
                        size_t *opened);
/* The keyed exceptions of category not resolved: cb(id, key, state). */
int xd_store_keyed_open(struct xd_store *s, const char *category,
                        void (*cb)(void *ctx, int64_t id, const char *key, const char *state),
                        void *ctx);

/* Counts of deliveries by target and state, for /metrics and the demo. */
int xd_store_count_deliveries(struct xd_store *s,
                              void (*cb)(void *ctx, const char *target, int state, int64_t n),
                              void *ctx);

/* ---- dashboard aggregates (GET /v1/stats, /v1/deliveries/count) ---- */

/* How many deliveries f matches (its after_id and limit are ignored). */
int xd_store_count_matching(struct xd_store *s, const struct xd_dlv_filter *f, int64_t *n);
/* Exceptions per state and category, with the oldest one's creation time. */
int xd_store_exception_counts(struct xd_store *s,
                              void (*cb)(void *ctx, const char *state, const char *category,
                                         int64_t n, int64_t oldest_ms),
                              void *ctx);
/*
 * Charges of one service date (YYYY-MM-DD) per customer, warehouse and
 * currency: their count and exact sum in thousandths of the currency unit.
 */
int xd_store_revenue(struct xd_store *s, const char *date,
                     void (*cb)(void *ctx, const char *customer, const char *warehouse,
                                const char *currency, int64_t milli, int64_t n),
                     void *ctx);
/* Pending and dead deliveries by their event's data.warehouse ("" when it has none). */
int xd_store_backlog_by_warehouse(struct xd_store *s,
                                  void (*cb)(void *ctx, const char *warehouse, int state,
                                             int64_t n),
                                  void *ctx);

/* Counts for /readyz and the demo. */
int xd_store_count_events(struct xd_store *s, int64_t *out);
/* 0 when the store can take writes now (readiness), else a negative xd_err. */
int xd_store_ready(struct xd_store *s);

/* ---- several nodes on one store ---- */

/*
 * Periodic jobs (billing period close, SLA clocks) must run on one node at a
 * time. xd_store_try_job_lock() takes the lock of job `name` (1-64
 * characters) without waiting: 1 when this process now holds it, 0 when
 * another node (or another thread of this one) does, or a negative xd_err.
 * A holder calls xd_store_job_unlock() when the run is over. On PostgreSQL
 * the lock is a session advisory lock on a connection of its own, so a node
 * that dies gives up its jobs with its connection; on SQLite (one node) only
 * the threads of this process compete.
 */
int xd_store_try_job_lock(struct xd_store *s, const char *name);
void xd_store_job_unlock(struct xd_store *s, const char *name);

/* Committer counters since open, for /metrics and benchmarks. */
struct xd_store_stats {
    uint64_t groups;        /* transactions committed (one fsync each) */
    uint64_t requests;      /* requests in them */
    uint64_t events;        /* events in them (accepted, duplicate or conflict) */
    uint64_t failed_groups; /* transactions that could not be committed */
};
void xd_store_stats(struct xd_store *s, struct xd_store_stats *out);

#endif
