/*
 * The ledger: for every business object (a shipment, a receipt, an
 * adjustment, a storage day) what each system has of it — what the WMS sent
 * (events, quantities, times), what the ERP accepted (each posting's state,
 * the reference and quantity its `ack` program kept, when), and what billing
 * accepted (each charge, its amount, its delivery's state, when).
 *
 * Nothing is stored twice for it: the ledger is built from the store's
 * journal, deliveries, acknowledgments and charges in one pass each
 * (xd_ledger_build), so it can never disagree with them. The reconciliation
 * report (report.h) reads it; GET /v1/ledger prints it.
 *
 * Systems: a delivery of an event (no charge part) to a target is a
 * posting (the "ERP" side, whatever the target is called); a delivery of a
 * charge is billing; the rate step (target "") is the hub's own.
 *
 * Ownership: xd_ledger_build() fills caller storage that xd_ledger_dispose()
 * frees; every string and array in it belongs to it.
 */
#ifndef XD_RECONCILE_LEDGER_H
#define XD_RECONCILE_LEDGER_H

#include "rating/money.h"

#include <stddef.h>
#include <stdint.h>

struct xd_buf;
struct xd_store;

enum xd_obj_type {
    XD_OBJ_SHIPMENT,
    XD_OBJ_RECEIPT,
    XD_OBJ_ADJUSTMENT,
    XD_OBJ_STORAGE_DAY,
    XD_OBJ_CHARGE, /* a charge on its own: only in breaks (a charge billing has, the hub not) */
    XD_OBJ__COUNT
};
/* "shipment", "receipt", "adjustment", "storage_day", "charge" */
const char *xd_obj_type_name(int type);
int xd_obj_type_parse(const char *name); /* -1 when unknown */

/* One delivery of an event to a target: a posting. */
struct xd_lg_post {
    char *target, *route;
    unsigned step, attempts;
    int state; /* enum xd_dlv_state */
    int last_status;
    char *last_error;   /* NULL when none */
    int64_t updated_ms; /* for a done posting: when the target accepted it */
    /* From the target's ack program (NULL / has_qty 0 when it kept none). */
    char *ack; /* the program's JSON */
    char *reference;
    char *ack_error;
    struct xd_dec qty;
    int has_qty;
    int64_t ack_ms;
};

/* A quantity of one SKU. */
struct xd_lg_sku {
    char *sku;
    struct xd_dec qty;
};

/* One event of the WMS. */
struct xd_lg_event {
    int64_t seq;
    char *event_id;
    int type;   /* enum xd_event_type */
    size_t obj; /* its object, an index in xd_ledger.objs */
    int64_t received_ms;
    int64_t occurred_ms;
    long day;          /* service day (occurred_at's UTC date; as_of for snapshots) */
    struct xd_dec qty; /* sum of lines[].qty, qty_delta, or sum of items[].qty */
    int has_qty;
    struct xd_lg_sku *skus; /* shipments and receipts: lines[].qty per SKU, sorted by SKU */
    size_t nskus;
    struct xd_lg_post *posts;
    size_t nposts;
    int rate_state;   /* the rate step's delivery state, -1 when the event has none */
    char *rate_route; /* that step's route and step (billing comes after it) */
    unsigned rate_step;
    char *rate_error;
    char *body; /* kept for snapshots only (storage is rated again from it) */
};

/* One charge and what billing made of it. */
struct xd_lg_charge {
    char *charge_id, *event_id, *reverses, *customer, *code, *warehouse, *reference, *currency,
        *service_date, *unit;
    struct xd_dec amount;
    int source; /* enum xd_event_type of the event rated */
    unsigned band;
    int64_t created_ms;
    long day;       /* service_date */
    size_t event;   /* index in xd_ledger.events, SIZE_MAX when not there */
    int reversed;   /* a reversal of it is recorded */
    int bill_state; /* its billing delivery's state, -1 when it has none */
    char *bill_target;
    char *bill_error;
    char *bill_reference; /* from billing's ack program */
    int64_t bill_ms;      /* when billing accepted it */
};

/* One business object. */
struct xd_lg_object {
    int type;  /* enum xd_obj_type */
    char *key; /* SHP-1; storage days CUSTOMER:WAREHOUSE:YYYY-MM-DD */
    char *warehouse, *customer;
    size_t *events; /* indices in xd_ledger.events, journal order */
    size_t nevents;
    size_t *charges; /* indices in xd_ledger.charges */
    size_t ncharges;
    size_t current;    /* the event that says what it is now (its latest confirmation) */
    int voided;        /* a shipment whose latest confirmation was voided */
    size_t void_event; /* that void */
};

struct xd_recon_ledger {
    struct xd_lg_object *objs;
    size_t nobjs;
    struct xd_lg_event *events;
    size_t nevents;
    struct xd_lg_charge *charges; /* sorted by charge_id */
    size_t ncharges;
    int64_t built_ms;
};

/* Reads the store. 0, a store error, or XD_ENOMEM. */
int xd_ledger_build(struct xd_store *store, struct xd_recon_ledger *lg);
void xd_ledger_dispose(struct xd_recon_ledger *lg);

/* Lookups: the charge with this id, the object of (type, key); NULL when none. */
struct xd_lg_charge *xd_ledger_charge(const struct xd_recon_ledger *lg, const char *charge_id);
struct xd_lg_object *xd_ledger_object(const struct xd_recon_ledger *lg, int type, const char *key);

/*
 * Appends one object as JSON: {"type", "key", "warehouse", "customer",
 * "wms": {...}, "erp": [...], "billing": {...}} (docs/reconciliation.md).
 */
int xd_ledger_object_json(const struct xd_recon_ledger *lg, const struct xd_lg_object *o,
                          struct xd_buf *out);

#endif
