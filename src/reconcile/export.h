/*
 * Exports taken from the other systems, read for reconciliation: what the
 * ERP and billing say they have, so that breaks made outside the hub (a
 * quantity changed in the ERP, a charge billing dropped while answering
 * 200, a charge keyed by hand) are found too. Both are CSV with a header
 * row; the column names come from reconcile.erp_export and
 * reconcile.billing_export (docs/reconciliation.md, "Exports").
 *
 * ERP export: one row per document, or per document and SKU (quantities
 * are summed per document). Billing export: one row per charge id, or,
 * without a charge id column, rows by reference (amounts summed per
 * reference and currency).
 *
 * Ownership: the _read functions fill caller storage that the _dispose
 * functions free (a zeroed struct may be disposed).
 */
#ifndef XD_RECONCILE_EXPORT_H
#define XD_RECONCILE_EXPORT_H

#include "rating/money.h"

#include <stddef.h>

struct xd_buf;
struct xd_export_columns;
struct xd_recon_ctx;

struct xd_erp_sku {
    char *sku;
    struct xd_dec qty;
};
struct xd_erp_doc {
    char *type; /* "shipment", ... or NULL when the export has no type column */
    char *document;
    char *reference; /* the ERP's document number (first row's), or NULL */
    struct xd_dec qty;
    size_t row; /* its first row */
    /* Per SKU, sorted: compared SKU by SKU when every row of the document names one. */
    struct xd_erp_sku *skus;
    size_t nskus;
    int unsku; /* a row without a SKU: only the total is compared */
};
struct xd_erp_export {
    struct xd_erp_doc *docs; /* sorted by document, then type */
    size_t n;
    size_t rows;
};

struct xd_bill_row {
    char *key;      /* charge id, or reference when the export has no charge id column */
    char *currency; /* or NULL */
    struct xd_dec amount;
    size_t row;   /* its first row */
    size_t times; /* rows with this key (a charge id listed twice: 2) */
};
struct xd_billing_export {
    struct xd_bill_row *v; /* sorted by key */
    size_t n;
    size_t rows;
    int by_reference; /* keys are references, not charge ids */
};

/*
 * Read CSV text. Errors (XD_EINVAL) say where: "NAME: row 4: quantity: 'x'
 * is not a number", "NAME: no column 'amount' (columns: ...)".
 */
int xd_erp_export_read(const struct xd_export_columns *cols, const char *buf, size_t len,
                       const char *name, struct xd_erp_export *out, struct xd_buf *err);
void xd_erp_export_dispose(struct xd_erp_export *x);
int xd_billing_export_read(const struct xd_export_columns *cols, const char *buf, size_t len,
                           const char *name, struct xd_billing_export *out, struct xd_buf *err);
void xd_billing_export_dispose(struct xd_billing_export *x);

/* The checks (recon_int.h): breaks are added to the run's report. */
void xd_erp_export_check(struct xd_recon_ctx *c, const struct xd_erp_export *x);
void xd_billing_export_check(struct xd_recon_ctx *c, const struct xd_billing_export *x);

#endif
