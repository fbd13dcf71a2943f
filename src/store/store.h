/*
 * The store: the only interface the rest of the hub uses to keep things on
 * disk. One interface, two drivers (SQLite in WAL mode now, PostgreSQL
 * later); only store/ includes sqlite3.h or libpq-fe.h.
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
struct xd_event;
struct xd_store;

enum xd_append_result {
    XD_APPEND_ACCEPTED = 0,  /* new, now durable */
    XD_APPEND_DUPLICATE = 1, /* seen before with the same body */
    XD_APPEND_CONFLICT = 2,  /* seen before with a different body */
};

/* One intake request: an atomic group of events (a single event is n = 1). */
struct xd_append {
    const struct xd_event *events; /* in: not owned, valid until done runs */
    size_t n;
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
};
/* Returns 0, XD_ENOTFOUND, or another negative xd_err. */
int xd_store_get_event(struct xd_store *s, const char *event_id, struct xd_stored_event *out);
void xd_stored_event_dispose(struct xd_stored_event *e);

/* Counts for /readyz and the demo. */
int xd_store_count_events(struct xd_store *s, int64_t *out);
/* 0 when the store can take writes now (readiness), else a negative xd_err. */
int xd_store_ready(struct xd_store *s);

/* Committer counters since open, for /metrics and benchmarks. */
struct xd_store_stats {
    uint64_t groups;        /* transactions committed (one fsync each) */
    uint64_t requests;      /* requests in them */
    uint64_t events;        /* events in them (accepted, duplicate or conflict) */
    uint64_t failed_groups; /* transactions that could not be committed */
};
void xd_store_stats(struct xd_store *s, struct xd_store_stats *out);

#endif
