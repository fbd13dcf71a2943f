/*
 * An in-memory ledger of charges: the xd_ledger interface of rate.h kept
 * in a process, for `crossdock rate` (a dry run that stores nothing), the
 * tests and the benchmark. The hub backs the same interface with its store.
 *
 * It records charges once by id (a second charge with a recorded id is a
 * duplicate and dropped: that is how re-rating and voiding twice stay
 * single), indexes them by (warehouse, shipment_id), and remembers the
 * voids it was told about.
 *
 * Ownership: xd_memledger_create() / xd_memledger_destroy(); it owns copies
 * of everything recorded. Not thread-safe.
 */
#ifndef XD_RATING_LEDGER_H
#define XD_RATING_LEDGER_H

#include "rating/rate.h"

struct xd_memledger;

struct xd_memledger *xd_memledger_create(void);
void xd_memledger_destroy(struct xd_memledger *m);

/* The xd_ledger view, valid while m lives. */
struct xd_ledger xd_memledger_ledger(struct xd_memledger *m);
/* How rules' `when` conditions are evaluated (borrowed; NULL: such rules refuse events). */
void xd_memledger_set_conds(struct xd_memledger *m, const struct xd_rate_conds *conds);

/* Records c: 1 when recorded, 0 when its charge_id was recorded before, XD_ENOMEM. */
int xd_memledger_add(struct xd_memledger *m, const struct xd_charge *c);

/*
 * Remembers ev when it is a shipment.voided (other types are ignored):
 * 0, XD_EINVAL (a void without warehouse, shipment_id or a valid
 * occurred_at), XD_ENOMEM.
 */
int xd_memledger_note_event(struct xd_memledger *m, const cJSON *ev, enum xd_event_type type);

/*
 * One step of a sequence, as the hub's rate step will do it: rates ev with
 * m as the ledger, records the charges and the event, and appends to fresh
 * (may be NULL) the charges that were not recorded before. Returns what
 * xd_rate_event() returns; on failure nothing is recorded.
 */
int xd_memledger_rate(struct xd_memledger *m, const struct xd_rating *r, const cJSON *ev,
                      enum xd_event_type type, struct xd_charges *fresh, struct xd_buf *why);

/* Every charge recorded, in the order recorded (read-only; valid until the next change). */
const struct xd_charges *xd_memledger_charges(const struct xd_memledger *m);

#endif
