/*
 * The store's side of master-data holds, xref entries, SLA breaches,
 * exception routing, alerts and KPIs (issue 6; docs/exceptions.md). These
 * are separate from store.h because they are one feature's: each write goes
 * through the committer like every other (store_int.h struct xd_ext_op), each
 * read through a pooled reader. Implemented by each driver (sqlite_holds.c,
 * postgres_holds.c; store_holds.c picks the store's); a driver without them
 * would return XD_ENOTSUP.
 *
 * Strings handed to callbacks are valid during the callback only.
 */
#ifndef XD_STORE_HOLDS_H
#define XD_STORE_HOLDS_H

#include <stddef.h>
#include <stdint.h>

struct xd_store;

/* "sqlite", "postgres": the store's driver. */
const char *xd_store_driver_name(const struct xd_store *s);

/* ---- xref entries added through the API (they overlay the config's) ---- */

/*
 * Adds or replaces xref TABLE.KEY = value and, in the same transaction,
 * releases every delivery held for that entry (back to pending, due now,
 * a "released" line in its timeline) and resolves its master_data
 * exception. *released (may be NULL) = deliveries released.
 */
int xd_store_xref_put(struct xd_store *s, const char *table, const char *key, const char *value,
                      int64_t *released);
/* Removes an API entry: 0, or XD_ENOTFOUND. */
int xd_store_xref_delete(struct xd_store *s, const char *table, const char *key);
/* The API entries of table (NULL: all), ordered by table and key. */
int xd_store_xref_list(struct xd_store *s, const char *table,
                       void (*cb)(void *ctx, const char *table, const char *key, const char *value,
                                  int64_t updated_ms),
                       void *ctx);

/* ---- holds ---- */

/* Releases the deliveries held for TABLE.KEY (as xd_store_xref_put does); why goes in the timeline.
 */
int xd_store_release_holds(struct xd_store *s, const char *table, const char *key, const char *why,
                           int64_t *released);
/* What is held: one call per missing entry, with how many deliveries wait and since when. */
int xd_store_held(struct xd_store *s,
                  void (*cb)(void *ctx, const char *table, const char *key, int64_t n,
                             int64_t since_ms),
                  void *ctx);
/* Held deliveries per target (for /metrics). */
int xd_store_held_by_target(struct xd_store *s,
                            void (*cb)(void *ctx, const char *target, int64_t n), void *ctx);

/* ---- exceptions: opened once per dedup key, routed to an owner, alerted ---- */

struct xd_exc_new {
    const char *category; /* master_data, sla, ... */
    const char *dedup;    /* the key that makes it one: TABLE/KEY, EVENT|ROUTE|TARGET */
    const char *event_id; /* or NULL; its warehouse and customer route the exception */
    const char *target;   /* or NULL */
    const char *reason;
    int ever; /* 1: never again once opened (an SLA breach); 0: not while one is open */
};
/* *opened (may be NULL) = 1 when a new exception was opened. */
int xd_store_open_exception_once(struct xd_store *s, const struct xd_exc_new *x, int *opened);

/* Owner rules, first match wins; a NULL field matches anything. Replaces the stored ones. */
struct xd_owner_rule {
    const char *category, *warehouse, *customer, *owner;
};
int xd_store_set_owner_rules(struct xd_store *s, const struct xd_owner_rule *r, size_t n);

/* An exception the alert target has not been told about. */
struct xd_exc_brief {
    int64_t id, created_ms;
    const char *category, *state, *event_id, *target, *reason, *owner, *warehouse, *customer;
};
/* Untold exceptions per category: how many, and the newest id. */
int xd_store_unalerted_categories(struct xd_store *s,
                                  void (*cb)(void *ctx, const char *category, int64_t n,
                                             int64_t max_id),
                                  void *ctx);
/* The oldest untold exceptions of category up to max_id (at most limit), oldest first. */
int xd_store_unalerted(struct xd_store *s, const char *category, int64_t max_id, size_t limit,
                       void (*cb)(void *ctx, const struct xd_exc_brief *x), void *ctx);
/* Marks every untold exception of category up to max_id as told. */
int xd_store_mark_alerted(struct xd_store *s, const char *category, int64_t max_id);

/* ---- SLA clocks ---- */

/* How one event fared on one route, for an SLA on target. */
struct xd_sla_row {
    int64_t seq, received_ms;
    const char *event_id, *type;
    int64_t deliveries; /* of the route for this event */
    int64_t skipped;    /* of them filtered out */
    int64_t done_ms;    /* first delivery to target done at (0: none done) */
    int64_t to_target;  /* deliveries of the route to target, in any state */
    int64_t unfinished; /* deliveries of the route pending, dead or held */
};
/*
 * Events after after_seq received at or before due_ms (oldest first, at
 * most limit), each with its progress on route towards target.
 */
int xd_store_sla_rows(struct xd_store *s, int64_t after_seq, int64_t due_ms, const char *route,
                      const char *target, size_t limit,
                      void (*cb)(void *ctx, const struct xd_sla_row *r), void *ctx);
/*
 * The last event received at or before ms (0: none), by binary search on the
 * journal position: where a new SLA clock starts, where a KPI window begins.
 */
int xd_store_last_seq_before(struct xd_store *s, int64_t ms, int64_t *seq);
/* A small durable value in store_meta (name up to 100 characters). *v = 0 when unset. */
int xd_store_meta_get(struct xd_store *s, const char *name, int64_t *v);
int xd_store_meta_set(struct xd_store *s, const char *name, int64_t v);

/* ---- KPIs ---- */

/* A charge delivered to billing: its shipment's warehouse and customer and the times. */
struct xd_kpi_charge {
    const char *warehouse, *customer;
    int64_t occurred_ms, accepted_ms;
};
/* Charges delivered (accepted) for events after after_seq (oldest first). */
int xd_store_kpi_charges(struct xd_store *s, int64_t after_seq,
                         void (*cb)(void *ctx, const struct xd_kpi_charge *c), void *ctx);
/*
 * Receipts (goods.received) after after_seq whose first delivery to a
 * non-local target is done: the warehouse, customer, occurred_at and when
 * that target accepted (accepted_ms).
 */
int xd_store_kpi_receipts(struct xd_store *s, int64_t after_seq,
                          void (*cb)(void *ctx, const struct xd_kpi_charge *c), void *ctx);
/* Open and acknowledged exceptions: category, warehouse, customer, created_ms. */
int xd_store_kpi_exceptions(struct xd_store *s,
                            void (*cb)(void *ctx, const char *category, const char *warehouse,
                                       const char *customer, int64_t created_ms),
                            void *ctx);
/* Charges recorded after rowid after (oldest first): customer, warehouse, currency, amount. */
int xd_store_kpi_revenue(struct xd_store *s, int64_t after,
                         void (*cb)(void *ctx, int64_t rowid, const char *customer,
                                    const char *warehouse, const char *currency,
                                    const char *amount),
                         void *ctx);

#endif
