/*
 * GET /metrics: Prometheus text format (version 0.0.4). Counters are since
 * the process started (Prometheus handles resets); backlog, dead letters and
 * charges are read from the store at scrape time, so they are right across
 * restarts. Label values are escaped; no secret ever appears here (targets
 * are named, never their URLs' credentials or tokens).
 */
#include "api/http.h"
#include "core/clock.h"
#include "deliver/circuit.h"
#include "ingest/event.h"
#include "route/dispatch.h"

#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <stdlib.h>
#include <unistd.h>

static void label(struct xd_buf *o, const char *v)
{
    xd_buf_putc(o, '"');
    for (; v && *v; v++) {
        if (*v == '\\' || *v == '"')
            xd_buf_putc(o, '\\');
        if (*v == '\n') {
            xd_buf_puts(o, "\\n");
            continue;
        }
        xd_buf_putc(o, *v);
    }
    xd_buf_putc(o, '"');
}

static void head(struct xd_buf *o, const char *name, const char *type, const char *help)
{
    xd_buf_printf(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

struct dlv_counts {
    struct xd_buf *o;
    int state;
};

static void dlv_count(void *ctx, const char *target, int state, int64_t n)
{
    struct dlv_counts *c = ctx;
    if (state != c->state)
        return;
    xd_buf_puts(c->o, c->state == XD_DLV_PENDING ? "crossdock_backlog{target=" :
                                                   "crossdock_dead_letters{target=");
    label(c->o, target[0] ? target : "(rate)");
    xd_buf_printf(c->o, "} %lld\n", (long long)n);
}

static void stats_deliveries(void *ctx, const struct xd_target_stats *st)
{
    struct xd_buf *o = ctx;
    const struct {
        const char *outcome;
        uint64_t n;
    } rows[] = {{"ok", st->ok}, {"retry", st->retry}, {"fail", st->fail},
                {"filtered", st->filtered}, {"dead", st->dead}};
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        xd_buf_puts(o, "crossdock_deliveries_total{target=");
        label(o, st->target);
        xd_buf_printf(o, ",outcome=\"%s\"} %llu\n", rows[i].outcome,
                      (unsigned long long)rows[i].n);
    }
}

static void stats_latency(void *ctx, const struct xd_target_stats *st)
{
    static const double bounds[] = XD_LATENCY_BUCKETS;
    struct xd_buf *o = ctx;
    uint64_t cum = 0;
    for (size_t b = 0; b < XD_NLATENCY; b++) {
        cum += st->latency_buckets[b];
        xd_buf_puts(o, "crossdock_delivery_seconds_bucket{target=");
        label(o, st->target);
        xd_buf_printf(o, ",le=\"%g\"} %llu\n", bounds[b], (unsigned long long)cum);
    }
    xd_buf_puts(o, "crossdock_delivery_seconds_bucket{target=");
    label(o, st->target);
    xd_buf_printf(o, ",le=\"+Inf\"} %llu\n", (unsigned long long)st->latency_count);
    xd_buf_puts(o, "crossdock_delivery_seconds_sum{target=");
    label(o, st->target);
    xd_buf_printf(o, "} %.6f\n", (double)st->latency_us_sum / 1e6);
    xd_buf_puts(o, "crossdock_delivery_seconds_count{target=");
    label(o, st->target);
    xd_buf_printf(o, "} %llu\n", (unsigned long long)st->latency_count);
}

static void stats_circuit(void *ctx, const struct xd_target_stats *st)
{
    struct xd_buf *o = ctx;
    xd_buf_puts(o, "crossdock_circuit_open{target=");
    label(o, st->target);
    xd_buf_printf(o, "} %d\n", st->circuit == XD_CIRCUIT_OPEN ? 1 : 0);
    xd_buf_puts(o, "crossdock_inflight{target=");
    label(o, st->target);
    xd_buf_printf(o, "} %u\n", st->inflight);
}

static void charge_count(void *ctx, const char *customer, const char *currency, int64_t n)
{
    struct xd_buf *o = ctx;
    xd_buf_puts(o, "crossdock_charges_total{customer=");
    label(o, customer);
    xd_buf_puts(o, ",currency=");
    label(o, currency);
    xd_buf_printf(o, "} %lld\n", (long long)n);
}

/* Resident memory now and at its peak, from /proc/self/status (kB). */
static void process_memory(long *rss_kb, long *hwm_kb)
{
    *rss_kb = *hwm_kb = 0;
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return;
    char line[256];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "VmRSS:", 6) == 0)
            *rss_kb = strtol(line + 6, NULL, 10);
        else if (strncmp(line, "VmHWM:", 6) == 0)
            *hwm_kb = strtol(line + 6, NULL, 10);
    }
    fclose(f);
}

void xd_h_metrics(struct xd_req *r)
{
    struct xd_server *srv = r->srv;
    struct xd_buf *o = &r->out;
    xd_buf_reset(o);

    head(o, "crossdock_events_received_total", "counter", "Events accepted (new), by type.");
    for (int t = 0; t < XD_EV__COUNT; t++)
        xd_buf_printf(o, "crossdock_events_received_total{type=\"%s\"} %ld\n",
                      xd_event_type_name((enum xd_event_type)t),
                      atomic_load(&srv->received_by_type[t]));
    head(o, "crossdock_events_duplicate_total", "counter",
         "Events acknowledged as duplicates of ones stored before.");
    xd_buf_printf(o, "crossdock_events_duplicate_total %ld\n", atomic_load(&srv->duplicates));
    head(o, "crossdock_events_rejected_total", "counter",
         "Intake requests refused, by reason (the problem type).");
    for (int i = 0; i < 12; i++)
        xd_buf_printf(o, "crossdock_events_rejected_total{reason=\"%s\"} %ld\n",
                      xd_reject_reasons[i], atomic_load(&srv->rejected_by_reason[i]));

    if (srv->dispatcher) {
        head(o, "crossdock_deliveries_total", "counter",
             "Delivery attempts by target and outcome (dead: deliveries dead-lettered).");
        xd_dispatch_stats(srv->dispatcher, stats_deliveries, o);
        head(o, "crossdock_delivery_seconds", "histogram",
             "Time from sending a delivery to the target's answer.");
        xd_dispatch_stats(srv->dispatcher, stats_latency, o);
        head(o, "crossdock_circuit_open", "gauge", "1 while the target's circuit is open.");
        xd_dispatch_stats(srv->dispatcher, stats_circuit, o);

        static const double s2c_bounds[] = XD_S2C_BUCKETS;
        struct xd_s2c_stats s2c;
        xd_dispatch_s2c(srv->dispatcher, &s2c);
        head(o, "crossdock_ship_to_charge_seconds", "histogram",
             "From an event's occurred_at to billing accepting its charge.");
        uint64_t cum = 0;
        for (size_t b = 0; b < XD_NS2C; b++) {
            cum += s2c.buckets[b];
            xd_buf_printf(o, "crossdock_ship_to_charge_seconds_bucket{le=\"%g\"} %llu\n",
                          s2c_bounds[b], (unsigned long long)cum);
        }
        xd_buf_printf(o,
                      "crossdock_ship_to_charge_seconds_bucket{le=\"+Inf\"} %llu\n"
                      "crossdock_ship_to_charge_seconds_sum %.3f\n"
                      "crossdock_ship_to_charge_seconds_count %llu\n",
                      (unsigned long long)s2c.count, s2c.sum_s, (unsigned long long)s2c.count);
    }

    head(o, "crossdock_backlog", "gauge", "Deliveries waiting (pending), by target.");
    struct dlv_counts dc = {.o = o, .state = XD_DLV_PENDING};
    xd_store_count_deliveries(srv->store, dlv_count, &dc);
    head(o, "crossdock_dead_letters", "gauge", "Dead-lettered deliveries, by target.");
    dc.state = XD_DLV_DEAD;
    xd_store_count_deliveries(srv->store, dlv_count, &dc);
    head(o, "crossdock_charges_total", "counter", "Charges recorded, by customer and currency.");
    xd_store_charge_counts(srv->store, charge_count, o);

    head(o, "crossdock_target_tls_verify", "gauge",
         "0 for an http target whose TLS certificate is not checked (tls.verify: false).");
    for (size_t i = 0; i < srv->cfg->ntargets; i++) {
        const struct xd_target *t = &srv->cfg->targets[i];
        if (!t->type || strcmp(t->type, "http") != 0)
            continue;
        xd_buf_puts(o, "crossdock_target_tls_verify{target=");
        label(o, t->name);
        xd_buf_printf(o, "} %d\n", t->tls.verify ? 1 : 0);
    }
    xd_kpi_metrics(srv, o); /* holds, exceptions by age, KPIs per warehouse and customer */

    long rss, hwm;
    process_memory(&rss, &hwm);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    head(o, "process_resident_memory_bytes", "gauge", "Resident memory.");
    xd_buf_printf(o, "process_resident_memory_bytes %ld\n", rss * 1024);
    head(o, "crossdock_peak_resident_memory_bytes", "gauge", "Peak resident memory (VmHWM).");
    xd_buf_printf(o, "crossdock_peak_resident_memory_bytes %ld\n", hwm * 1024);
    head(o, "process_cpu_seconds_total", "counter", "User and system CPU time.");
    xd_buf_printf(o, "process_cpu_seconds_total %.3f\n",
                  (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                      (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6);
    xd_http_reply_json(r, 200);
    r->content_type = "text/plain; version=0.0.4; charset=utf-8";
}
