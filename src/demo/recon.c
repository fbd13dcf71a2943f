/*
 * The demo's last word: the hub's own reconciliation report
 * (reconcile/report.h), run as finance would run it, against exports taken
 * from the reference ERP and billing — built here, as CSV, from what they
 * recorded (demo_int.h). The break the demo causes on purpose (billing
 * answers 200 for one charge and loses it) can only be found this way.
 */
#include "cli/hub.h"
#include "core/buf.h"
#include "core/err.h"
#include "demo/demo_int.h"
#include "rating/money.h"
#include "reconcile/report.h"
#include "store/store.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

struct export_ctx {
    struct xd_buf *csv;
};

/* ERP: document,type,reference,quantity; goods issues and receipts (reversals are not rows). */
static void erp_row(void *ctx, const struct xd_refsys_rec *r)
{
    struct export_ctx *c = ctx;
    cJSON *b = cJSON_Parse(r->body);
    const cJSON *pt = cJSON_GetObjectItemCaseSensitive(b, "posting_type");
    const cJSON *doc = cJSON_GetObjectItemCaseSensitive(b, "delivery");
    const char *type = NULL;
    if (cJSON_IsString(pt))
        type = strcmp(pt->valuestring, "GI") == 0   ? "shipment"
               : strcmp(pt->valuestring, "GR") == 0 ? "receipt"
                                                    : NULL;
    if (type && cJSON_IsString(doc)) {
        struct xd_dec q = xd_dec_int(0), x;
        const cJSON *it;
        cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(b, "items"))
        {
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(it, "quantity");
            if (cJSON_IsNumber(v) && xd_dec_from_double(v->valuedouble, &x) == 0)
                xd_dec_add(q, x, &q);
        }
        char n[XD_DEC_BUFSZ];
        xd_dec_format(q, n, sizeof n);
        xd_buf_json_str(c->csv, doc->valuestring); /* a JSON string is a CSV cell too */
        xd_buf_printf(c->csv, ",%s,%s,%s\n", type, r->ref, n);
    }
    cJSON_Delete(b);
}

/* Billing: charge_id,amount,currency. */
static void bill_row(void *ctx, const struct xd_refsys_rec *r)
{
    struct export_ctx *c = ctx;
    cJSON *b = cJSON_Parse(r->body);
    const cJSON *am = cJSON_GetObjectItemCaseSensitive(b, "amount");
    const cJSON *cy = cJSON_GetObjectItemCaseSensitive(b, "currency");
    if (cJSON_IsString(am) && cJSON_IsString(cy))
        xd_buf_printf(c->csv, "%s,%s,%s\n", r->id, am->valuestring, cy->valuestring);
    cJSON_Delete(b);
}

struct others_ctx {
    const char *mark;
    size_t others;
};

/* Charges of other runs (every event id of a run holds its mark, file events too). */
static void count_other(void *ctx, struct xd_charge_rec *ch)
{
    struct others_ctx *c = ctx;
    if (!ch->event_id || !strstr(ch->event_id, c->mark))
        c->others++;
    xd_charge_rec_dispose(ch);
}

int xd_demo_reconcile(const struct xd_demo_run *run, struct xd_recon_report *rep, int *exports,
                      struct xd_buf *err)
{
    struct others_ctx oc = {.mark = run->mark};
    struct xd_charge_filter f = {0};
    int rc = xd_store_list_charges(run->hub->store, &f, count_other, &oc);
    if (rc < 0)
        return rc;
    *exports = oc.others == 0;
    struct xd_buf erp, bill;
    xd_buf_init(&erp);
    xd_buf_init(&bill);
    xd_buf_puts(&erp, "document,type,reference,quantity\n");
    xd_buf_puts(&bill, "charge_id,amount,currency\n");
    struct export_ctx ec = {.csv = &erp};
    xd_refsys_each(run->ref, XD_REFSYS_ERP, erp_row, &ec);
    ec.csv = &bill;
    xd_refsys_each(run->ref, XD_REFSYS_BILLING, bill_row, &ec);
    /* A kept store with earlier runs: report, but open no exceptions (see demo_int.h). */
    struct xd_recon_opts o = {.exceptions = oc.others ? 0 : -1};
    if (*exports) {
        o.erp_export = xd_buf_str(&erp);
        o.erp_len = erp.len;
        o.erp_name = "the reference ERP's export";
        o.billing_export = xd_buf_str(&bill);
        o.billing_len = bill.len;
        o.billing_name = "the reference billing's export";
    }
    rc = erp.oom || bill.oom ? XD_ENOMEM : xd_reconcile(run->cfg, run->hub->store, &o, rep, err);
    xd_buf_dispose(&erp);
    xd_buf_dispose(&bill);
    return rc;
}
