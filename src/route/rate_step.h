/*
 * The `rate` route step: rates an event with the config's rate cards
 * against what the store says was charged before (a store-backed ledger for
 * rating/rate.h), and turns the charges into records the store keeps with
 * the step's outcome. Runs on the dispatcher thread.
 *
 * Ownership: xd_rate_step_create() compiles the cards (cfg must outlive it);
 * xd_rate_result_dispose() frees what xd_rate_step_run() filled.
 */
#ifndef XD_RATE_STEP_H
#define XD_RATE_STEP_H

#include "ingest/event.h"
#include "store/store.h"

#include <cjson/cJSON.h>
#include <stddef.h>

struct xd_config;
struct xd_buf;
struct xd_rate_step;

struct xd_rate_result {
    struct xd_charge_rec *v; /* strings owned */
    size_t n;
};
void xd_rate_result_dispose(struct xd_rate_result *r);

int xd_rate_step_create(const struct xd_config *cfg, struct xd_rate_step **out, struct xd_buf *err);
void xd_rate_step_destroy(struct xd_rate_step *rs);

/*
 * Rates ev (a stored, valid event of type; its journal position event_seq).
 * Returns 0 with the charges in out (maybe none), or: XD_ENOTFOUND (no rate
 * card: why says for which customer and date), XD_EINVAL / XD_ELIMIT (the
 * event cannot be rated: why says why), another xd_err from the store.
 */
int xd_rate_step_run(struct xd_rate_step *rs, struct xd_store *store, const cJSON *ev,
                     enum xd_event_type type, int64_t event_seq, struct xd_rate_result *out,
                     struct xd_buf *why);

#endif
