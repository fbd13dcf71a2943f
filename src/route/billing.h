/*
 * Closing a billing period: the monthly minimum (a card's minimum_monthly)
 * settled as one MINIMUM_TOPUP charge per customer for the shortfall. The
 * top-up's charge id is derived from the customer and the period, so closing
 * a period again records nothing new: closing is idempotent.
 */
#ifndef XD_BILLING_H
#define XD_BILLING_H

#include "store/store.h"

struct xd_config;
struct xd_buf;

/*
 * Closes period ("YYYY-MM"): for every customer whose card in force on the
 * period's last day has a minimum_monthly, compares the sum of that
 * customer's charges in the card's currency with service dates in the
 * period (top-ups excluded) and records a top-up for the shortfall. The
 * top-up charges (new or recorded before) are appended to out as JSON lines.
 * One close runs at a time across the nodes of a store (job lock
 * "billing-close"); another waits for it up to 10 s, then gets XD_EUNAVAIL.
 * Returns 0, XD_EINVAL (bad period, message in err), or another xd_err.
 */
int xd_billing_close(const struct xd_config *cfg, struct xd_store *store, const char *period,
                     struct xd_buf *out, struct xd_buf *err);

#endif
