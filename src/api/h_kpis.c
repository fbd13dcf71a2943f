/*
 * GET /v1/kpis (the dashboard's business figures) and the lines /metrics
 * adds for holds, exceptions and KPIs, both from one snapshot
 * (reconcile/kpi.h):
 *
 *   crossdock_held_deliveries{target}            deliveries awaiting master data
 *   crossdock_master_data_missing                xref entries something waits for
 *   crossdock_exceptions_open{category,warehouse,customer,age}
 *   crossdock_kpi_ship_to_charge_seconds{warehouse,customer,quantile}  summary, last 24 h
 *   crossdock_kpi_receipt_to_post_seconds{warehouse,customer,quantile} summary, last 24 h
 *   crossdock_revenue_charged{customer,warehouse,currency}             exact decimal
 */
#include "api/http.h"
#include "core/clock.h"
#include "core/err.h"
#include "reconcile/kpi.h"
#include "store/holds.h"

#include <stdio.h>
#include <string.h>

static void label(struct xd_buf *o, const char *name, const char *v, int first)
{
    xd_buf_printf(o, "%s%s=\"", first ? "" : ",", name);
    for (; v && *v; v++) {
        if (*v == '\\' || *v == '"')
            xd_buf_putc(o, '\\');
        if (*v == '\n')
            xd_buf_puts(o, "\\n");
        else
            xd_buf_putc(o, *v);
    }
    xd_buf_putc(o, '"');
}

static void head(struct xd_buf *o, const char *name, const char *type, const char *help)
{
    xd_buf_printf(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void held_target(void *ctx, const char *target, int64_t n)
{
    struct xd_buf *o = ctx;
    xd_buf_puts(o, "crossdock_held_deliveries{");
    label(o, "target", target && target[0] ? target : "(rate)", 1);
    xd_buf_printf(o, "} %lld\n", (long long)n);
}

static void summary(struct xd_buf *o, const char *name, const struct xd_kpi_times *t, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const double q[] = {0.5, 0.95};
        const double v[] = {t[i].p50_s, t[i].p95_s};
        for (int j = 0; j < 2; j++) {
            xd_buf_printf(o, "%s{", name);
            label(o, "warehouse", t[i].warehouse, 1);
            label(o, "customer", t[i].customer, 0);
            xd_buf_printf(o, ",quantile=\"%g\"} %.3f\n", q[j], v[j]);
        }
        xd_buf_printf(o, "%s_sum{", name);
        label(o, "warehouse", t[i].warehouse, 1);
        label(o, "customer", t[i].customer, 0);
        xd_buf_printf(o, "} %.3f\n%s_count{", t[i].sum_s, name);
        label(o, "warehouse", t[i].warehouse, 1);
        label(o, "customer", t[i].customer, 0);
        xd_buf_printf(o, "} %zu\n", t[i].n);
    }
}

void xd_kpi_metrics(struct xd_server *srv, struct xd_buf *o)
{
    head(o, "crossdock_held_deliveries", "gauge",
         "Deliveries awaiting master data (an xref entry), by target.");
    xd_store_held_by_target(srv->store, held_target, o);
    const struct xd_kpi_snapshot *k = xd_kpi_get(srv->store);
    if (!k)
        return;
    head(o, "crossdock_master_data_missing", "gauge",
         "Missing xref entries that deliveries are held for.");
    xd_buf_printf(o, "crossdock_master_data_missing %zu\n", k->nheld);
    head(o, "crossdock_exceptions_open", "gauge",
         "Open and acknowledged exceptions by category, warehouse, customer and age.");
    for (size_t i = 0; i < k->nexc; i++) {
        for (int a = 0; a < XD_KPI_AGES; a++) {
            xd_buf_puts(o, "crossdock_exceptions_open{");
            label(o, "category", k->exc[i].category, 1);
            label(o, "warehouse", k->exc[i].warehouse, 0);
            label(o, "customer", k->exc[i].customer, 0);
            label(o, "age", xd_kpi_age_names[a], 0);
            xd_buf_printf(o, "} %lld\n", (long long)k->exc[i].by_age[a]);
        }
    }
    head(o, "crossdock_kpi_ship_to_charge_seconds", "summary",
         "Shipment occurred_at to billing accepting its charge, events of the last 24 h.");
    summary(o, "crossdock_kpi_ship_to_charge_seconds", k->s2c, k->ns2c);
    head(o, "crossdock_kpi_receipt_to_post_seconds", "summary",
         "Receipt occurred_at to the ERP accepting it, events of the last 24 h.");
    summary(o, "crossdock_kpi_receipt_to_post_seconds", k->r2p, k->nr2p);
    head(o, "crossdock_revenue_charged", "gauge",
         "Sum of the charges recorded (reversals included), exact, by customer, warehouse "
         "and currency.");
    for (size_t i = 0; i < k->nrev; i++) {
        xd_buf_puts(o, "crossdock_revenue_charged{");
        label(o, "customer", k->rev[i].customer, 1);
        label(o, "warehouse", k->rev[i].warehouse, 0);
        label(o, "currency", k->rev[i].currency, 0);
        xd_buf_printf(o, "} %s\n", k->rev[i].amount);
    }
    xd_kpi_put(k);
}

static void times_json(struct xd_buf *o, const char *name, const struct xd_kpi_times *t, size_t n)
{
    xd_buf_printf(o, ",\"%s\":[", name);
    for (size_t i = 0; i < n; i++) {
        xd_buf_puts(o, i ? ",{\"warehouse\":" : "{\"warehouse\":");
        xd_buf_json_str(o, t[i].warehouse);
        xd_buf_puts(o, ",\"customer\":");
        xd_buf_json_str(o, t[i].customer);
        xd_buf_printf(o,
                      ",\"count\":%zu,\"avg_s\":%.3f,\"p50_s\":%.3f,\"p95_s\":%.3f,"
                      "\"max_s\":%.3f}",
                      t[i].n, t[i].sum_s / (double)t[i].n, t[i].p50_s, t[i].p95_s, t[i].max_s);
    }
    xd_buf_putc(o, ']');
}

void xd_h_kpis(struct xd_req *r)
{
    const struct xd_kpi_snapshot *k = xd_kpi_get(r->srv->store);
    if (!k) {
        xd_http_store_error(r, XD_EUNAVAIL);
        return;
    }
    struct xd_buf *o = &r->out;
    char when[96];
    xd_buf_reset(o);
    xd_iso_ms(when, sizeof when, k->at_ms);
    xd_buf_printf(o, "{\"at\":\"%s\",\"window_s\":%lld", when,
                  (long long)(XD_KPI_WINDOW_MS / 1000));
    times_json(o, "ship_to_charge", k->s2c, k->ns2c);
    times_json(o, "receipt_to_post", k->r2p, k->nr2p);
    xd_buf_puts(o, ",\"exceptions_open\":[");
    for (size_t i = 0; i < k->nexc; i++) {
        xd_buf_puts(o, i ? ",{\"category\":" : "{\"category\":");
        xd_buf_json_str(o, k->exc[i].category);
        xd_buf_puts(o, ",\"warehouse\":");
        xd_buf_json_str(o, k->exc[i].warehouse);
        xd_buf_puts(o, ",\"customer\":");
        xd_buf_json_str(o, k->exc[i].customer);
        int64_t total = 0;
        for (int a = 0; a < XD_KPI_AGES; a++) {
            xd_buf_printf(o, ",\"%s\":%lld", xd_kpi_age_names[a], (long long)k->exc[i].by_age[a]);
            total += k->exc[i].by_age[a];
        }
        xd_buf_printf(o, ",\"total\":%lld}", (long long)total);
    }
    xd_buf_puts(o, "],\"revenue\":[");
    for (size_t i = 0; i < k->nrev; i++) {
        xd_buf_puts(o, i ? ",{\"customer\":" : "{\"customer\":");
        xd_buf_json_str(o, k->rev[i].customer);
        xd_buf_puts(o, ",\"warehouse\":");
        xd_buf_json_str(o, k->rev[i].warehouse);
        xd_buf_puts(o, ",\"currency\":");
        xd_buf_json_str(o, k->rev[i].currency);
        xd_buf_printf(o, ",\"amount\":\"%s\",\"charges\":%lld}", k->rev[i].amount,
                      (long long)k->rev[i].charges);
    }
    xd_buf_puts(o, "],\"held\":[");
    for (size_t i = 0; i < k->nheld; i++) {
        xd_iso_ms(when, sizeof when, k->held[i].since_ms);
        xd_buf_puts(o, i ? ",{\"table\":" : "{\"table\":");
        xd_buf_json_str(o, k->held[i].table);
        xd_buf_puts(o, ",\"key\":");
        xd_buf_json_str(o, k->held[i].key);
        xd_buf_printf(o, ",\"deliveries\":%lld,\"since\":\"%s\"}", (long long)k->held[i].n, when);
    }
    xd_buf_puts(o, "]}");
    xd_kpi_put(k);
    xd_http_reply_json(r, 200);
}
