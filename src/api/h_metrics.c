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
#include "deliver/nats_metrics.h"
#include "ingest/event.h"
#include "ingest/intake_metrics.h"
#include "route/dispatch.h"

#include <dirent.h>
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

/*
 * Backlog and dead letters per target: every configured target gets a
 * series (0 when it has nothing waiting), then whatever else the store
 * holds (a rate step's deliveries, a target since removed from the config).
 */
struct dlv_row {
    char target[128];
    int64_t pending, dead;
};
struct dlv_counts {
    struct dlv_row *v;
    size_t n, cap;
};

static struct dlv_row *dlv_find(struct dlv_counts *c, const char *target)
{
    for (size_t i = 0; i < c->n; i++)
        if (strcmp(c->v[i].target, target) == 0)
            return &c->v[i];
    if (c->n == c->cap) {
        size_t cap = c->cap ? 2 * c->cap : 16;
        struct dlv_row *v = realloc(c->v, cap * sizeof *v);
        if (!v)
            return NULL;
        c->v = v;
        c->cap = cap;
    }
    struct dlv_row *r = &c->v[c->n++];
    memset(r, 0, sizeof *r);
    snprintf(r->target, sizeof r->target, "%s", target);
    return r;
}

static void dlv_target(void *ctx, const struct xd_target_stats *st)
{
    dlv_find(ctx, st->target);
}

static void dlv_count(void *ctx, const char *target, int state, int64_t n)
{
    struct dlv_row *r = dlv_find(ctx, target[0] ? target : "(rate)");
    if (r && state == XD_DLV_PENDING)
        r->pending = n;
    else if (r && state == XD_DLV_DEAD)
        r->dead = n;
}

static void dlv_emit(struct xd_buf *o, const struct dlv_counts *c, int dead)
{
    for (size_t i = 0; i < c->n; i++) {
        xd_buf_puts(o, dead ? "crossdock_dead_letters{target=" : "crossdock_backlog{target=");
        label(o, c->v[i].target);
        xd_buf_printf(o, "} %lld\n", (long long)(dead ? c->v[i].dead : c->v[i].pending));
    }
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
}

static void stats_inflight(void *ctx, const struct xd_target_stats *st)
{
    struct xd_buf *o = ctx;
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

/* ---- NATS sources and targets (deliver/nats_metrics.h) ---- */

struct nats_emit {
    struct xd_buf *o;
    int part; /* 0: fetched, 1: message ends; 2: publishes */
    size_t n;
};

static void nats_source_row(void *ctx, const char *source, uint64_t fetched,
                            const uint64_t ends[XD_NATS_END__COUNT])
{
    struct nats_emit *e = ctx;
    e->n++;
    if (e->part == 0) {
        xd_buf_puts(e->o, "crossdock_nats_messages_fetched_total{source=");
        label(e->o, source);
        xd_buf_printf(e->o, "} %llu\n", (unsigned long long)fetched);
        return;
    }
    for (int k = 0; k < XD_NATS_END__COUNT; k++) {
        xd_buf_puts(e->o, "crossdock_nats_messages_total{source=");
        label(e->o, source);
        xd_buf_printf(e->o, ",outcome=\"%s\"} %llu\n", xd_nats_msg_end_names[k],
                      (unsigned long long)ends[k]);
    }
}

static void nats_target_row(void *ctx, const char *target, const uint64_t *by_outcome)
{
    struct nats_emit *e = ctx;
    e->n++;
    for (size_t k = 0; k < xd_nats_npublish_outcomes; k++) {
        xd_buf_puts(e->o, "crossdock_nats_publishes_total{target=");
        label(e->o, target);
        xd_buf_printf(e->o, ",outcome=\"%s\"} %llu\n", xd_nats_publish_outcomes[k],
                      (unsigned long long)by_outcome[k]);
    }
}

/* Only the families that have series: a hub without NATS shows none of them. */
static void nats_metrics(struct xd_buf *o)
{
    struct nats_emit e = {.o = o};
    struct xd_buf rows;
    xd_buf_init(&rows);
    e.o = &rows;
    xd_nats_metrics_sources(nats_source_row, &e);
    if (e.n) {
        head(o, "crossdock_nats_messages_fetched_total", "counter",
             "Messages fetched from a NATS JetStream source.");
        xd_buf_append(o, rows.data, rows.len);
        xd_buf_reset(&rows);
        e.part = 1;
        xd_nats_metrics_sources(nats_source_row, &e);
        head(o, "crossdock_nats_messages_total", "counter",
             "What became of a source's messages: acked (stored or a duplicate), naked (to "
             "come again), terminated (refused, an exception opened).");
        xd_buf_append(o, rows.data, rows.len);
    }
    xd_buf_reset(&rows);
    e.n = 0;
    e.part = 2;
    xd_nats_metrics_targets(nats_target_row, &e);
    if (e.n) {
        head(o, "crossdock_nats_publishes_total", "counter",
             "Publishes to a NATS target, by outcome: ok, duplicate (the stream had it), or "
             "the error class.");
        xd_buf_append(o, rows.data, rows.len);
    }
    if (rows.oom)
        o->oom = 1;
    xd_buf_dispose(&rows);
}

/* Resident and virtual memory now and resident at its peak, from /proc/self/status (kB). */
static void process_memory(long *rss_kb, long *hwm_kb, long *vm_kb)
{
    *rss_kb = *hwm_kb = *vm_kb = 0;
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return;
    char line[256];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "VmRSS:", 6) == 0)
            *rss_kb = strtol(line + 6, NULL, 10);
        else if (strncmp(line, "VmHWM:", 6) == 0)
            *hwm_kb = strtol(line + 6, NULL, 10);
        else if (strncmp(line, "VmSize:", 7) == 0)
            *vm_kb = strtol(line + 7, NULL, 10);
    }
    fclose(f);
}

/* Open file descriptors: the entries of /proc/self/fd, less the one reading it. */
static long open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    long n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1;
}

/*
 * When the process started, in unix seconds: its start time in clock ticks
 * after boot (/proc/self/stat, field 22) plus the boot time (/proc/stat
 * btime); 0 when /proc cannot tell.
 */
static double start_time(void)
{
    double t = 0;
    char buf[1024];
    FILE *f = fopen("/proc/self/stat", "r");
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f)
        fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')'); /* the command name may hold spaces */
    unsigned long long ticks = 0;
    int field = 2;
    for (; p && *p && field < 22; p++)
        if (*p == ' ')
            field++;
    if (p && field == 22)
        ticks = strtoull(p, NULL, 10);
    unsigned long long btime = 0;
    f = fopen("/proc/stat", "r");
    if (f) {
        char line[256];
        while (fgets(line, sizeof line, f))
            if (strncmp(line, "btime ", 6) == 0)
                btime = strtoull(line + 6, NULL, 10);
        fclose(f);
    }
    long hz = sysconf(_SC_CLK_TCK);
    if (btime && ticks && hz > 0)
        t = (double)btime + (double)ticks / (double)hz;
    return t;
}

void xd_h_metrics(struct xd_req *r)
{
    struct xd_server *srv = r->srv;
    struct xd_buf *o = &r->out;
    xd_buf_reset(o);

    struct xd_intake_totals in;
    xd_intake_totals(&in);
    head(o, "crossdock_events_received_total", "counter",
         "Events accepted (new), by type: over HTTP, from inbox folders and NATS sources.");
    for (int t = 0; t < XD_EV__COUNT; t++)
        xd_buf_printf(o, "crossdock_events_received_total{type=\"%s\"} %ld\n",
                      xd_event_type_name((enum xd_event_type)t), in.by_type[t]);
    head(o, "crossdock_events_duplicate_total", "counter",
         "Events acknowledged as duplicates of ones stored before.");
    xd_buf_printf(o, "crossdock_events_duplicate_total %ld\n", in.duplicates);
    head(o, "crossdock_events_rejected_total", "counter",
         "Intake refused (an HTTP request, an inbox file, a NATS message), by reason.");
    for (int i = 0; i < XD_REJ__COUNT; i++)
        xd_buf_printf(o, "crossdock_events_rejected_total{reason=\"%s\"} %ld\n",
                      xd_reject_reasons[i], in.by_reason[i]);

    struct xd_store_stats st;
    xd_store_stats(srv->store, &st);
    head(o, "crossdock_store_commits_total", "counter",
         "Transactions of the store's committer (group commit), committed (result=ok: one "
         "fsync each when durable) or failed.");
    xd_buf_printf(o,
                  "crossdock_store_commits_total{result=\"ok\"} %llu\n"
                  "crossdock_store_commits_total{result=\"failed\"} %llu\n",
                  (unsigned long long)st.groups, (unsigned long long)st.failed_groups);
    head(o, "crossdock_store_committed_requests_total", "counter",
         "Requests in committed transactions (intake requests, delivery outcomes, operator "
         "actions): divided by the commits, how well group commit shares them.");
    xd_buf_printf(o, "crossdock_store_committed_requests_total %llu\n",
                  (unsigned long long)st.requests);
    head(o, "crossdock_store_committed_events_total", "counter",
         "Events in committed transactions, stored or answered as duplicates.");
    xd_buf_printf(o, "crossdock_store_committed_events_total %llu\n",
                  (unsigned long long)st.events);

    if (srv->dispatcher) {
        head(o, "crossdock_deliveries_total", "counter",
             "Delivery attempts by target and outcome (dead: deliveries dead-lettered).");
        xd_dispatch_stats(srv->dispatcher, stats_deliveries, o);
        head(o, "crossdock_delivery_seconds", "histogram",
             "Time from sending a delivery to the target's answer.");
        xd_dispatch_stats(srv->dispatcher, stats_latency, o);
        head(o, "crossdock_circuit_open", "gauge", "1 while the target's circuit is open.");
        xd_dispatch_stats(srv->dispatcher, stats_circuit, o);
        head(o, "crossdock_inflight", "gauge", "Deliveries being sent now, by target.");
        xd_dispatch_stats(srv->dispatcher, stats_inflight, o);

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

    struct dlv_counts dc = {0};
    if (srv->dispatcher)
        xd_dispatch_stats(srv->dispatcher, dlv_target, &dc);
    xd_store_count_deliveries(srv->store, dlv_count, &dc);
    head(o, "crossdock_backlog", "gauge", "Deliveries waiting (pending), by target.");
    dlv_emit(o, &dc, 0);
    head(o, "crossdock_dead_letters", "gauge", "Dead-lettered deliveries, by target.");
    dlv_emit(o, &dc, 1);
    free(dc.v);
    head(o, "crossdock_charges_total", "counter", "Charges recorded, by customer and currency.");
    xd_store_charge_counts(srv->store, charge_count, o);
    nats_metrics(o);

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

    long rss, hwm, vm;
    process_memory(&rss, &hwm, &vm);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    head(o, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
    xd_buf_printf(o, "process_resident_memory_bytes %ld\n", rss * 1024);
    head(o, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.");
    xd_buf_printf(o, "process_virtual_memory_bytes %ld\n", vm * 1024);
    head(o, "crossdock_peak_resident_memory_bytes", "gauge", "Peak resident memory (VmHWM).");
    xd_buf_printf(o, "crossdock_peak_resident_memory_bytes %ld\n", hwm * 1024);
    head(o, "process_cpu_seconds_total", "counter", "Total user and system CPU time in seconds.");
    xd_buf_printf(o, "process_cpu_seconds_total %.3f\n",
                  (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                      (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6);
    long fds = open_fds();
    if (fds >= 0) {
        head(o, "process_open_fds", "gauge", "Number of open file descriptors.");
        xd_buf_printf(o, "process_open_fds %ld\n", fds);
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
        head(o, "process_max_fds", "gauge", "Maximum number of open file descriptors.");
        xd_buf_printf(o, "process_max_fds %llu\n", (unsigned long long)rl.rlim_cur);
    }
    head(o, "process_start_time_seconds", "gauge",
         "Start time of the process since unix epoch in seconds.");
    xd_buf_printf(o, "process_start_time_seconds %.2f\n", start_time());
    xd_http_reply_json(r, 200);
    r->content_type = "text/plain; version=0.0.4; charset=utf-8";
}
