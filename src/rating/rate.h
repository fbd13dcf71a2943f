/*
 * Rating: one validated event and the compiled rate cards in, its charges
 * out (contract 5 and 6.1). Rating is a pure function of the event, the
 * cards and what a ledger says was charged before; it records nothing.
 *
 * Charge ids are derived from the event and the rule only:
 *   charge_id = "chg-" + first 16 hex digits of
 *               SHA-256(event_id NUL code NUL band)
 * with band the tier band (0 for a flat price), so rating an event again —
 * a replay, a changed card, a shuffled order — gives the same ids. A
 * reversal's id is derived from the charge it reverses:
 *   "chg-" + 16 hex of SHA-256(original charge_id ":void")
 * so voiding twice gives the same reversal ids, and a ledger that dedups by
 * charge id reverses once.
 *
 * Voids. A shipment.voided reverses every charge of that warehouse and
 * shipment_id whose event occurred (occurred_at) at or before the void, and
 * a shipment.confirmed rated after a void that occurred at or after it is
 * reversed at once: the same charges and reversals come out whatever order
 * the events are rated in. A shipment confirmed again after its void
 * (a re-shipment) is not reversed by the earlier void. Reversals already in
 * the ledger are not produced again.
 *
 * Ownership: struct xd_charges owns its charges and every string they point
 * to (xd_charges_init/_dispose on caller storage). The ledger interface is
 * borrowed for the duration of a call.
 */
#ifndef XD_RATING_RATE_H
#define XD_RATING_RATE_H

#include "ingest/event.h"
#include "rating/card.h"
#include "rating/money.h"

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

struct xd_buf;

#define XD_CHARGE_ID_LEN 20  /* "chg-" + 16 hex digits */
#define XD_EVENT_ID_MAX  128 /* event ids are 1-128 characters of A-Za-z0-9._:- */

struct xd_charge {
    char charge_id[XD_CHARGE_ID_LEN + 1];
    char reverses[XD_CHARGE_ID_LEN + 1]; /* a reversal: the charge it reverses; "" otherwise */
    const char *event_id;                /* the event rated (a reversal: the void's) */
    const char *customer;
    const char *code; /* the rule's code, "PICK_UNIT" */
    const char *unit; /* "unit", "pallet_day", ... (xd_bases[].unit) */
    const char *warehouse;
    const char *reference;  /* shipment_id, receipt_id, adjustment_id, or as_of of a snapshot */
    char currency[4];       /* the card's */
    char service_date[11];  /* occurred_at's UTC date; as_of for snapshots; the void's for reversals
                             */
    struct xd_dec quantity; /* what was counted, exact ("12", "18.4") */
    struct xd_dec unit_price;  /* the rule's (or band's) price as written; freight: rounded */
    struct xd_dec amount;      /* at the currency's minor unit; negative for reversals */
    enum xd_event_type source; /* type of the event that produced it */
    unsigned band;             /* tier band, 0 for a flat price */
    int64_t occurred_us;       /* the event's occurred_at, UTC microseconds since 1970 */
};

/* A list of charges that owns their strings. */
struct xd_charges {
    struct xd_charge *v;
    size_t n, cap;
    struct xd_strblock *blocks; /* string storage (private) */
};

void xd_charges_init(struct xd_charges *cs);
void xd_charges_dispose(struct xd_charges *cs);
/* Empties the list, keeping its memory for reuse. */
void xd_charges_clear(struct xd_charges *cs);
/* Appends a copy of c (its strings copied into cs). 0 or XD_ENOMEM. */
int xd_charges_push(struct xd_charges *cs, const struct xd_charge *c);

/*
 * Appends c as one JSON object (contract 5; no newline): charge_id, event_id,
 * customer, code, quantity, unit, unit_price, amount, currency,
 * service_date, warehouse, reference, decimals as strings. 0 or XD_ENOMEM.
 */
int xd_charge_json(struct xd_buf *b, const struct xd_charge *c);

/* The ids described above; out gets XD_CHARGE_ID_LEN characters and a NUL. */
void xd_charge_id(const char *event_id, const char *code, unsigned band, char *out);
void xd_reversal_id(const char *charge_id, char *out);

/* ---- what was charged before: the ledger interface -------------------------- */

typedef int xd_charge_visit_fn(void *arg, const struct xd_charge *c);

/* A void on record for a shipment. */
struct xd_void_info {
    char event_id[XD_EVENT_ID_MAX + 1];
    char service_date[11];
    int64_t occurred_us;
};

/*
 * Backed by the store in the hub and by xd_memledger (ledger.h) in
 * `crossdock rate` and the tests. Each returns 0 or a negative xd_err
 * (passed on by xd_rate_event) unless said otherwise.
 */
struct xd_ledger_ops {
    /* Calls fn for every charge recorded for (warehouse, shipment_id), reversals included;
     * a non-zero return from fn stops the walk and is returned. */
    int (*each_for_shipment)(void *ctx, const char *warehouse, const char *shipment_id,
                             xd_charge_visit_fn *fn, void *arg);
    /* 1 when a charge with this id is recorded, 0 when not. */
    int (*has)(void *ctx, const char *charge_id);
    /* The earliest void of (warehouse, shipment_id) that occurred at or after since_us:
     * 1 and *out filled, or 0 when there is none. */
    int (*find_void)(void *ctx, const char *warehouse, const char *shipment_id, int64_t since_us,
                     struct xd_void_info *out);
};

/*
 * Rule conditions (`when`): test() runs the jq program on the event and sets
 * *truthy; a runtime error refuses the event (XD_EINVAL, message in why).
 * Compiled jq programs are single-threaded, so each caller brings its own
 * (transform/transform.h xd_jq_cache).
 */
struct xd_rate_conds {
    int (*test)(void *ctx, const char *program, const cJSON *ev, int *truthy,
                struct xd_buf *why);
    void *ctx;
};

struct xd_ledger {
    const struct xd_ledger_ops *ops;
    void *ctx;
    const struct xd_rate_conds *conds; /* NULL: a rule with `when` refuses the event */
};

/* ---- rating ------------------------------------------------------------------ */

/*
 * Rates ev, a validated and prepared event object of the given type, and
 * appends its charges to out, in the order of the card's rules and bands,
 * reversals last. ledger may be NULL (nothing was charged before).
 * Returns 0 (maybe with no charges: a delivery.confirmed, a rule whose
 * quantity is absent or zero) or, with out unchanged and the reason in why
 * (may be NULL):
 *   XD_ENOTFOUND  no card for the customer on the service date;
 *   XD_EINVAL     the event lacks what rating needs, or its freight is in
 *                 another currency than the card;
 *   XD_ELIMIT     a quantity or amount beyond the exact decimal range;
 *   XD_ENOMEM, or what the ledger returned.
 */
int xd_rate_event(const struct xd_rating *r, const cJSON *ev, enum xd_event_type type,
                  const struct xd_ledger *ledger, struct xd_charges *out, struct xd_buf *why);

/*
 * When an event happened for rating: its occurred_at as UTC microseconds
 * (an offset such as -05:00 applied) and its service date (occurred_at's UTC
 * date; as_of for inventory.snapshot). 0, or XD_EINVAL when the fields are
 * missing or malformed.
 */
int xd_rate_when(const cJSON *ev, enum xd_event_type type, int64_t *occurred_us, long *day);

#endif
