/*
 * Reconciliation over HTTP (docs/reconciliation.md):
 *
 *   GET  /v1/reconciliation?from=YYYY-MM-DD&to=YYYY-MM-DD
 *        the report of the store's own checks (JSON, as `crossdock reconcile --json`)
 *   POST /v1/reconciliation  {"from", "to", "erp_export": "CSV", "billing_export": "CSV"}
 *        the same with exports taken from the ERP and billing, given as CSV text
 *   GET  /v1/ledger?from=&to=&type=shipment&key=SHP-1&limit=N
 *        the ledger's objects
 *
 * Like the command, a report opens one `reconciliation` exception per break
 * (the same break never twice), unless reconcile.exceptions is false.
 */
#include "api/http.h"
#include "core/err.h"
#include "formats/json.h"
#include "rating/card.h"
#include "reconcile/ledger.h"
#include "reconcile/report.h"

#include <stdlib.h>
#include <string.h>

#define LEDGER_MAX 10000 /* objects one answer lists */

static const char *arg(struct xd_req *r, const char *name)
{
    const char *v = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
    return v && *v ? v : NULL;
}

static void report(struct xd_req *r, const struct xd_recon_opts *o)
{
    struct xd_recon_report rep;
    struct xd_buf err;
    xd_buf_init(&err);
    int rc = xd_reconcile(r->srv->cfg, r->srv->store, o, &rep, &err);
    if (rc == XD_EINVAL) {
        xd_http_problem(r, 400, "invalid", "Bad Request", xd_buf_str(&err), NULL);
    } else if (rc < 0) {
        xd_http_store_error(r, rc);
    } else {
        xd_buf_reset(&r->out);
        xd_recon_report_json(&rep, &r->out);
        xd_recon_report_dispose(&rep);
        xd_http_reply_json(r, 200);
    }
    xd_buf_dispose(&err);
}

void xd_h_reconciliation_get(struct xd_req *r)
{
    struct xd_recon_opts o = {.from = arg(r, "from"), .to = arg(r, "to"), .exceptions = -1};
    /* ?exceptions=false: only look (the dashboard polls the report). */
    const char *ex = arg(r, "exceptions");
    if (ex && (strcmp(ex, "false") == 0 || strcmp(ex, "0") == 0))
        o.exceptions = 0;
    report(r, &o);
}

static const char *member(const cJSON *body, const char *name, int *bad)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, name);
    if (!v || cJSON_IsNull(v))
        return NULL;
    if (!cJSON_IsString(v)) {
        *bad = 1;
        return NULL;
    }
    return v->valuestring;
}

void xd_h_reconciliation_post(struct xd_req *r)
{
    struct xd_json_limits lim = {.max_depth = 4, .max_string = r->body.len + 1};
    struct xd_json_error jerr;
    cJSON *body = NULL;
    int bad = 0;
    if (xd_json_parse(r->body.data ? r->body.data : "", r->body.len, &lim, &body, &jerr) < 0 ||
        !cJSON_IsObject(body)) {
        cJSON_Delete(body);
        xd_http_problem(r, 400, "invalid", "Bad Request",
                        "expected {\"erp_export\": \"CSV\", \"billing_export\": \"CSV\", "
                        "\"from\": \"YYYY-MM-DD\", \"to\": \"YYYY-MM-DD\"}",
                        NULL);
        return;
    }
    struct xd_recon_opts o = {.from = member(body, "from", &bad),
                              .to = member(body, "to", &bad),
                              .erp_export = member(body, "erp_export", &bad),
                              .billing_export = member(body, "billing_export", &bad),
                              .erp_name = "erp_export",
                              .billing_name = "billing_export",
                              .exceptions = -1};
    if (bad) {
        cJSON_Delete(body);
        xd_http_problem(r, 400, "invalid", "Bad Request",
                        "from, to, erp_export and billing_export must be strings", NULL);
        return;
    }
    o.erp_len = o.erp_export ? strlen(o.erp_export) : 0;
    o.billing_len = o.billing_export ? strlen(o.billing_export) : 0;
    report(r, &o);
    cJSON_Delete(body);
}

void xd_h_ledger_get(struct xd_req *r)
{
    const char *from = arg(r, "from"), *to = arg(r, "to"), *type = arg(r, "type"),
               *key = arg(r, "key"), *lim = arg(r, "limit");
    long f = -2147483647L, t = 2147483647L, n = lim ? strtol(lim, NULL, 10) : 1000;
    int ty = type ? xd_obj_type_parse(type) : -1;
    if ((from && xd_day_parse(from, &f) < 0) || (to && xd_day_parse(to, &t) < 0) ||
        (type && ty < 0) || n <= 0) {
        xd_http_problem(r, 400, "bad-query", "Bad Request",
                        "from and to must be dates (YYYY-MM-DD); type shipment, receipt, "
                        "adjustment or storage_day; limit a positive integer",
                        NULL);
        return;
    }
    if (n > LEDGER_MAX)
        n = LEDGER_MAX;
    struct xd_recon_ledger lg;
    int rc = xd_ledger_build(r->srv->store, &lg);
    if (rc < 0) {
        xd_http_store_error(r, rc);
        return;
    }
    struct xd_buf *o = &r->out;
    xd_buf_reset(o);
    xd_buf_puts(o, "{\"objects\":[");
    long shown = 0;
    for (size_t i = 0; i < lg.nobjs && shown < n; i++) {
        const struct xd_lg_object *ob = &lg.objs[i];
        long day = ob->current != SIZE_MAX ? lg.events[ob->current].day : 0;
        if (day < f || day > t || (ty >= 0 && ob->type != ty) || (key && strcmp(key, ob->key)))
            continue;
        if (shown++)
            xd_buf_putc(o, ',');
        xd_ledger_object_json(&lg, ob, o);
    }
    xd_buf_puts(o, "]}");
    xd_ledger_dispose(&lg);
    xd_http_reply_json(r, 200);
}
