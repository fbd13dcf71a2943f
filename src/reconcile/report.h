/*
 * The reconciliation report (docs/reconciliation.md): the ledger (ledger.h)
 * checked system against system, and against exports taken from the ERP and
 * billing (export.c), with the config's tolerances and grace period. Each
 * discrepancy is a break: its category, the business object, the systems
 * that disagree, the exact difference and how long it has been so.
 *
 * Breaks are keyed ("posted_not_billed:shipment:SHP-1:EVENT",
 * "billing_export/missing_in_billing:shipment:SHP-1:chg-..."); with
 * reconcile.exceptions on, each key opens at most one `reconciliation`
 * exception, and a full run that no longer finds a break resolves its
 * exception (a run limited by dates resolves nothing; an export's breaks
 * are settled only by a run with that export).
 *
 * Ownership: xd_reconcile() fills caller storage that
 * xd_recon_report_dispose() frees.
 */
#ifndef XD_RECONCILE_REPORT_H
#define XD_RECONCILE_REPORT_H

#include <stddef.h>
#include <stdint.h>

struct xd_buf;
struct xd_config;
struct xd_store;

struct xd_recon_opts {
    const char *from, *to;  /* service dates YYYY-MM-DD, inclusive; NULL: open */
    const char *erp_export; /* CSV text (reconcile.erp_export columns), or NULL */
    size_t erp_len;
    const char *erp_name;       /* how messages name it ("erp.csv") */
    const char *billing_export; /* CSV text (reconcile.billing_export columns), or NULL */
    size_t billing_len;
    const char *billing_name;
    int exceptions; /* 1 open/resolve exceptions, 0 not, -1 as the config says */
    int64_t now_ms; /* 0: the clock */
};

struct xd_recon_break {
    char *key;            /* unique per break, stable across runs */
    const char *category; /* not_posted, posted_not_billed, ... (static) */
    int obj_type;         /* enum xd_obj_type */
    char *obj_key, *warehouse, *customer, *event_id, *charge_id;
    const char *systems;                  /* "wms,erp" ... (static) */
    char *expected, *actual, *difference; /* exact decimals as text, NULL when not known */
    char *currency;                       /* of amounts, NULL for quantities */
    int64_t age_ms;
    char *detail;         /* one line for a person */
    int64_t exception_id; /* its open exception, 0 when none */
};

struct xd_recon_report {
    char from[11], to[11]; /* "" when open */
    int64_t at_ms;
    unsigned grace_s;
    char qty_tol[48], amount_tol[48];
    size_t objects, events, charges; /* in the window */
    size_t erp_rows, billing_rows;   /* export rows read (0 without an export) */
    int erp_export, billing_export;  /* an export was given */
    struct xd_recon_break *breaks;
    size_t n;
    size_t exc_opened, exc_resolved;
    int exc_error; /* exceptions could not be opened or resolved (store full, read-only) */
};

/*
 * Builds the ledger, checks it, and opens or resolves exceptions. Returns 0
 * (r->n breaks), XD_EINVAL with one line in err (a bad date, an export that
 * cannot be read: "erp.csv: row 4: quantity: not a number"), or a store
 * error (nothing opened).
 */
int xd_reconcile(const struct xd_config *cfg, struct xd_store *store, const struct xd_recon_opts *o,
                 struct xd_recon_report *r, struct xd_buf *err);
void xd_recon_report_dispose(struct xd_recon_report *r);

/* {"from", "to", "generated_at", "clean", "tolerances", "checked", "counts", "breaks"}. */
int xd_recon_report_json(const struct xd_recon_report *r, struct xd_buf *out);
/* The same for a person: a header, one block per break, a result line. */
int xd_recon_report_text(const struct xd_recon_report *r, struct xd_buf *out);

#endif
