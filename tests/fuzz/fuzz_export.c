/*
 * libFuzzer target: bytes through the exports reconciliation reads
 * (reconcile/export.h over formats/csv_table.h). Any input must be read or
 * refused, never a crash, a leak or undefined behaviour; a refusal always
 * says why, naming the export, and a success keeps the reader's promises:
 * every document or charge once (sorted, no two alike), every row
 * accounted for. The input's length picks the ERP's or billing's reader.
 */
#include "core/buf.h"
#include "core/config.h"
#include "core/err.h"
#include "reconcile/export.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct xd_config *cfg;
    if (!cfg && !(cfg = xd_config_default()))
        abort();
    struct xd_buf err;
    xd_buf_init(&err);
    int rc;
    if (size % 2) {
        struct xd_erp_export x;
        rc = xd_erp_export_read(&cfg->reconcile.erp_export, (const char *)data, size, "erp.csv",
                                &x, &err);
        if (rc == 0) {
            if (x.n > x.rows)
                abort();
            for (size_t i = 1; i < x.n; i++)
                if (strcmp(x.docs[i - 1].document, x.docs[i].document) > 0)
                    abort();
        }
        xd_erp_export_dispose(&x);
    } else {
        struct xd_billing_export x;
        rc = xd_billing_export_read(&cfg->reconcile.billing_export, (const char *)data, size,
                                    "billing.csv", &x, &err);
        if (rc == 0) {
            size_t rows = 0;
            for (size_t i = 0; i < x.n; i++)
                rows += x.v[i].times;
            if (rows != x.rows)
                abort();
            for (size_t i = 1; i < x.n && !x.by_reference; i++)
                if (strcmp(x.v[i - 1].key, x.v[i].key) >= 0)
                    abort();
        }
        xd_billing_export_dispose(&x);
    }
    if (rc < 0 && rc != XD_ENOMEM && (!err.len || strstr(xd_buf_str(&err), ".csv") == NULL))
        abort();
    xd_buf_dispose(&err);
    return 0;
}
