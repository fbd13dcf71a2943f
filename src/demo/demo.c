/*
 * crossdock demo (demo.h): runs the real hub against a simulated WMS and
 * reference ERP and billing endpoints, all in this process, and shows what
 * happens.
 *
 * The run, in order:
 *   1. the reference endpoints start on a free loopback port (refsys.c), told
 *      to refuse one SKU with 400;
 *   2. the hub starts exactly as `crossdock serve` starts it (cli/hub.h), on a
 *      config built here (DEMO_YAML below): its store in a temporary folder,
 *      its targets pointing at the reference endpoints;
 *   3. the WMS thread posts a generated day of events (wms.c): JSON events
 *      and batches; a CSV batch, an X12 945 and an X12 944 it drops into the
 *      hub's watched inbox (and waits until they are processed, their 997s
 *      written back); when 40% of it is posted the
 *      ERP goes down (503) for a few seconds, to show retries, the circuit
 *      breaker and the recovery;
 *   4. once the WMS is done and no delivery is pending (the wait is bounded),
 *      the summary and the reconciliation are printed (summary.c);
 *   5. with --once the demo stops there; otherwise the hub keeps serving
 *      until SIGINT or SIGTERM.
 *
 * Signals are taken synchronously (sigtimedwait on this thread, blocked in
 * every other), as in `crossdock serve`; the wait doubles as the 0.5 s tick
 * of the progress line.
 */
#include "demo/demo.h"
#include "cli/hub.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/err.h"
#include "core/log.h"
#include "demo/demo_int.h"
#include "deliver/circuit.h"
#include "ingest/event.h"
#include "rating/rate.h"
#include "route/dispatch.h"
#include "store/store.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define BAD_SKU           "GX-RECALLED-13"
#define OUTAGE_MS         3000   /* how long the ERP answers 503 */
#define OUTAGE_AT_PERCENT 40     /* of the WMS's events posted */
#define DRAIN_WAIT_MS     120000 /* most we wait for the backlog once the WMS is done */
#define TICK_MS           500

/*
 * The demo hub's config, as a user would write it (printf arguments: the
 * hub's port, the store path, the inbox folder, the reference endpoints'
 * port twice). Rate
 * cards: ACME in USD with freight, GLOBEX in EUR with graduated picks and a
 * minimum per receipt, INITECH in GBP with three tiers, minimum amounts and
 * a monthly minimum. No auth keys: the demo runs without them.
 */
static const char DEMO_YAML[] =
    "server:\n"
    "  listen: \"127.0.0.1:%u\"\n"
    "store:\n"
    "  driver: sqlite\n"
    "  path: %s\n"
    "log: {level: error}\n"
    "reconcile: {grace_s: 0}\n"
    "inbox:\n"
    "  - name: partner-3pl\n"
    "    path: %s\n"
    "    format: auto\n"
    "    poll_ms: 200\n"
    "    settle_ms: 500\n"
    "xref:\n"
    "  plant: {DC1: \"1000\", DC2: \"2000\", DC3: \"3000\"}\n"
    "  account: {ACME: \"ACC-0042\", GLOBEX: \"ACC-0077\", INITECH: \"ACC-0103\"}\n"
    "targets:\n"
    "  erp:\n"
    "    type: http\n"
    "    url: http://127.0.0.1:%u" XD_REFSYS_ERP "\n"
    "    ack: '{reference: .ref}'\n"
    "    timeout_ms: 5000\n"
    "    retry: {max_attempts: 10, initial_backoff_ms: 200, max_backoff_ms: 5000}\n"
    "  billing:\n"
    "    type: http\n"
    "    url: http://127.0.0.1:%u" XD_REFSYS_BILLING "\n"
    "    ack: '{reference: .ref}'\n"
    "    timeout_ms: 5000\n"
    "    retry: {max_attempts: 10, initial_backoff_ms: 200, max_backoff_ms: 5000}\n"
    "routes:\n"
    "  - name: shipments\n"
    "    on: [shipment.confirmed, shipment.voided]\n"
    "    steps:\n"
    "      - deliver: erp\n"
    "        map: >-\n"
    "          if .type == \"shipment.voided\" then\n"
    "            {posting_type: \"GI_REVERSAL\", delivery: .data.shipment_id,\n"
    "             plant: $xref.plant[.data.warehouse], reason: .data.reason, wms_event: "
    ".event_id}\n"
    "          else\n"
    "            {posting_type: \"GI\", delivery: .data.shipment_id,\n"
    "             plant: $xref.plant[.data.warehouse], sold_to: $xref.account[.data.customer],\n"
    "             order: .data.order_id, carrier: .data.carrier.code,\n"
    "             items: [.data.lines[] | {material: .sku, quantity: .qty, uom: .uom}],\n"
    "             wms_event: .event_id}\n"
    "          end\n"
    "      - rate: true\n"
    "      - deliver: billing\n"
    "  - name: receipts\n"
    "    on: [goods.received]\n"
    "    steps:\n"
    "      - deliver: erp\n"
    "        map: >-\n"
    "          {posting_type: \"GR\", delivery: .data.receipt_id,\n"
    "           plant: $xref.plant[.data.warehouse], owner: $xref.account[.data.customer],\n"
    "           po: .data.po_number, vendor: .data.supplier,\n"
    "           items: [.data.lines[] | {material: .sku, quantity: .qty, uom: .uom, batch: "
    ".lot}],\n"
    "           wms_event: .event_id}\n"
    "      - rate: true\n"
    "      - deliver: billing\n"
    "  - name: inventory\n"
    "    on: [inventory.snapshot]\n"
    "    steps:\n"
    "      - rate: true\n"
    "      - deliver: billing\n"
    "rate_cards:\n"
    "  - customer: ACME\n"
    "    currency: USD\n"
    "    effective_from: 2020-01-01\n"
    "    charges:\n"
    "      - {code: HANDLING_SHIPMENT, on: shipment.confirmed, per: shipment, price: \"2.50\"}\n"
    "      - {code: PICK_LINE, on: shipment.confirmed, per: line, price: \"0.20\"}\n"
    "      - {code: PICK_UNIT, on: shipment.confirmed, per: unit, price: \"0.35\"}\n"
    "      - {code: FREIGHT, on: shipment.confirmed, per: freight, markup_percent: \"12\"}\n"
    "      - {code: RECEIVE_PALLET, on: goods.received, per: pallet, price: \"6.00\"}\n"
    "      - {code: STORAGE_PALLET_DAY, on: inventory.snapshot, per: pallet_day, price: \"0.55\"}\n"
    "  - customer: GLOBEX\n"
    "    currency: EUR\n"
    "    effective_from: 2020-01-01\n"
    "    charges:\n"
    "      - {code: HANDLING_SHIPMENT, on: shipment.confirmed, per: shipment, price: \"2.20\"}\n"
    "      - code: PICK_UNIT\n"
    "        on: shipment.confirmed\n"
    "        per: unit\n"
    "        tiers: [{up_to: 100, price: \"0.40\"}, {price: \"0.32\"}]\n"
    "      - {code: RECEIVE_CARTON, on: goods.received, per: carton, price: \"0.90\", "
    "min_amount: \"15.00\"}\n"
    "      - {code: STORAGE_PALLET_DAY, on: inventory.snapshot, per: pallet_day, price: \"0.48\"}\n"
    "  - customer: INITECH\n"
    "    currency: GBP\n"
    "    effective_from: 2020-01-01\n"
    "    minimum_monthly: \"10000.00\"\n"
    "    charges:\n"
    "      - {code: ORDER_FEE, on: shipment.confirmed, per: shipment, price: \"1.75\"}\n"
    "      - code: PICK_UNIT\n"
    "        on: shipment.confirmed\n"
    "        per: unit\n"
    "        tiers: [{up_to: 50, price: \"0.30\"}, {up_to: 200, price: \"0.25\"}, "
    "{price: \"0.18\"}]\n"
    "      - {code: PACK_WEIGHT, on: shipment.confirmed, per: kg, price: \"0.125\", "
    "min_amount: \"3.00\"}\n"
    "      - {code: RECEIVE_LINE, on: goods.received, per: line, price: \"1.10\", "
    "min_amount: \"5.00\"}\n"
    "      - {code: STORAGE_UNIT_DAY, on: inventory.snapshot, per: unit_day, price: \"0.004\", "
    "min_amount: \"10.00\"}\n";

/* ---- small helpers ---- */

/* s as a YAML double-quoted scalar. */
static void yaml_quote(struct xd_buf *b, const char *s)
{
    xd_buf_putc(b, '"');
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            xd_buf_putc(b, '\\');
        xd_buf_putc(b, *s);
    }
    xd_buf_putc(b, '"');
}

/*
 * Binds 127.0.0.1:port (0: any free port) and returns the port bound, or 0
 * when that port is taken. The socket is closed again at once: the hub binds
 * it a moment later (server.listen needs a real port number).
 */
static unsigned try_port(unsigned port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return 0;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof sa;
    unsigned got = 0;
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0 &&
        getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
        got = ntohs(sa.sin_port);
    close(fd);
    return got;
}

/* Removes a folder and what it holds (the store, the inbox and its subfolders). */
static void remove_dir(const char *dir, int depth)
{
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            char p[4096];
            struct stat st;
            if (snprintf(p, sizeof p, "%s/%s", dir, e->d_name) >= (int)sizeof p)
                continue;
            if (depth < 3 && lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
                remove_dir(p, depth + 1);
            else
                unlink(p);
        }
        closedir(d);
    }
    rmdir(dir);
}

/* The run's tag: five base-36 characters of the time, so a kept store can hold several runs. */
static void make_tag(char *out, time_t now)
{
    static const char digits[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    unsigned long long v = (unsigned long long)now;
    for (int i = 4; i >= 0; i--) {
        out[i] = digits[v % 36];
        v /= 36;
    }
    out[5] = '\0';
}

/* ---- progress ---- */

struct live {
    uint64_t pending, dead; /* deliveries, from the store */
    uint64_t retries;       /* RETRY outcomes so far, all targets */
    int erp_circuit, billing_circuit;
};

static void count_cb(void *ctx, const char *target, int state, int64_t n)
{
    (void)target;
    struct live *l = ctx;
    if (state == XD_DLV_PENDING)
        l->pending += (uint64_t)n;
    else if (state == XD_DLV_DEAD)
        l->dead += (uint64_t)n;
}

static void stats_cb(void *ctx, const struct xd_target_stats *st)
{
    struct live *l = ctx;
    l->retries += st->retry;
    if (strcmp(st->target, "erp") == 0)
        l->erp_circuit = st->circuit;
    else if (strcmp(st->target, "billing") == 0)
        l->billing_circuit = st->circuit;
}

static int live_read(struct xd_hub *hub, struct live *l)
{
    memset(l, 0, sizeof *l);
    xd_dispatch_stats(hub->disp, stats_cb, l);
    return xd_store_count_deliveries(hub->store, count_cb, l);
}

struct screen {
    int tty;        /* stdout is a terminal: one line rewritten in place */
    int line_shown; /* a progress line is on screen, to be cleared before other output */
    int64_t last_plain_ms;
};

/* Prints a message line (above the progress line on a terminal). */
static void note(struct screen *sc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(struct screen *sc, const char *fmt, ...)
{
    if (sc->tty && sc->line_shown)
        fputs("\r\033[K", stdout);
    sc->line_shown = 0;
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    fputc('\n', stdout);
    fflush(stdout);
}

static void progress(struct screen *sc, double secs, const struct xd_wms_progress *p,
                     const struct xd_refsys_counts *erp, const struct xd_refsys_counts *bill,
                     const struct live *l, int force)
{
    int64_t now = xd_mono_ms();
    if (!sc->tty && !force && now - sc->last_plain_ms < 1000)
        return; /* plain lines once a second are plenty in a log */
    sc->last_plain_ms = now;
    const char *ec = xd_circuit_state_name((enum xd_circuit_state)l->erp_circuit);
    const char *bc = xd_circuit_state_name((enum xd_circuit_state)l->billing_circuit);
    unsigned cols = 0;
    struct winsize ws;
    if (sc->tty && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0)
        cols = ws.ws_col;
    char line[320];
    if (!sc->tty || cols >= 140)
        snprintf(line, sizeof line,
                 "%5.1fs  WMS posted %u/%u, accepted %u (+%u duplicates) | ERP %llu | billing "
                 "%llu | backlog %llu, retries %llu, dead %llu | circuit erp %s, billing %s",
                 secs, p->posted, p->total, p->accepted, p->duplicates,
                 (unsigned long long)erp->recorded, (unsigned long long)bill->recorded,
                 (unsigned long long)l->pending, (unsigned long long)l->retries,
                 (unsigned long long)l->dead, ec, bc);
    else /* a narrow terminal: the counts, and a circuit only while it is not closed */
        snprintf(line, sizeof line,
                 "%3.0fs WMS %u/%u ERP %llu bill %llu | backlog %llu retry %llu dead %llu%s%s%s%s",
                 secs, p->posted, p->total, (unsigned long long)erp->recorded,
                 (unsigned long long)bill->recorded, (unsigned long long)l->pending,
                 (unsigned long long)l->retries, (unsigned long long)l->dead,
                 l->erp_circuit ? " | erp " : "", l->erp_circuit ? ec : "",
                 l->billing_circuit ? " | billing " : "", l->billing_circuit ? bc : "");
    if (sc->tty) {
        /* One screen line, or \r cannot take it back. */
        if (cols > 1 && cols - 1 < sizeof line)
            line[cols - 1] = '\0';
        fprintf(stdout, "\r\033[K%s", line);
        sc->line_shown = 1;
    } else {
        fprintf(stdout, "%s\n", line);
    }
    fflush(stdout);
}

/* ---- the run ---- */

/*
 * The charge billing loses on purpose: the HANDLING_SHIPMENT charge of the
 * first ACME shipment posted as JSON that is neither the bad-SKU one nor
 * voided later. Its id is known before it exists: charge ids derive from
 * the event and the rule (rating/rate.h).
 */
static void pick_dropped(const struct xd_wms *wms, char *id, char *doc, size_t doc_cap)
{
    size_t n;
    const struct xd_wms_event *ev = xd_wms_events(wms, &n);
    for (size_t i = 0; i < n; i++) {
        const struct xd_wms_event *e = &ev[i];
        if (e->type != XD_EV_SHIPMENT_CONFIRMED || e->channel != XD_WMS_JSON || e->planned_bad ||
            strcmp(e->customer, "ACME") != 0)
            continue;
        int voided = 0;
        for (size_t k = 0; k < n && !voided; k++)
            voided = ev[k].type == XD_EV_SHIPMENT_VOIDED && strcmp(ev[k].doc, e->doc) == 0 &&
                     strcmp(ev[k].warehouse, e->warehouse) == 0;
        if (voided)
            continue;
        xd_charge_id(e->event_id, "HANDLING_SHIPMENT", 0, id);
        snprintf(doc, doc_cap, "%s", e->doc);
        return;
    }
}

/* Waits up to ms for SIGINT/SIGTERM; returns the signal, or 0 after the time. */
static int wait_signal(const sigset_t *set, unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    int sig = sigtimedwait(set, NULL, &ts);
    return sig > 0 ? sig : 0;
}

int xd_demo_run(const struct xd_demo_opts *o)
{
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop, NULL); /* before any thread starts */
    signal(SIGPIPE, SIG_IGN);
    xd_log_setup(XD_LOG_ERROR, 0); /* the summary reports what the log would */
    curl_global_init(CURL_GLOBAL_DEFAULT);

    int rc = 1, sig = 0;
    struct xd_buf err, yaml;
    xd_buf_init(&err);
    xd_buf_init(&yaml);
    struct xd_refsys *ref = NULL;
    struct xd_config *cfg = NULL;
    struct xd_hub *hub = NULL;
    struct xd_wms *wms = NULL;
    char dir[4096] = "", store_path[4200], inbox_path[4200];
    int temp_dir = 0;

    /* Where the store lives. */
    if (o->keep) {
        if (mkdir(o->keep, 0755) < 0 && errno != EEXIST) {
            fprintf(stderr, "crossdock demo: --keep %s: %s\n", o->keep, strerror(errno));
            rc = 2;
            goto out;
        }
        snprintf(dir, sizeof dir, "%s", o->keep);
    } else {
        const char *tmp = getenv("TMPDIR");
        snprintf(dir, sizeof dir, "%s/crossdock-demo.XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(dir)) {
            fprintf(stderr, "crossdock demo: cannot make a temporary folder: %s\n",
                    strerror(errno));
            goto out;
        }
        temp_dir = 1;
    }
    snprintf(store_path, sizeof store_path, "%s/crossdock.db", dir);
    snprintf(inbox_path, sizeof inbox_path, "%s/inbox", dir);

    /* The reference ERP and billing. */
    if (xd_refsys_start(&ref, &err) < 0) {
        fprintf(stderr, "crossdock demo: %s\n", xd_buf_str(&err));
        goto out;
    }
    xd_refsys_refuse(ref, XD_REFSYS_ERP, BAD_SKU, 400,
                     "material " BAD_SKU " is blocked (recalled): posting refused");

    /* The hub. */
    unsigned port = try_port(o->port);
    int moved = o->port != 0 && port == 0;
    if (port == 0)
        port = try_port(0);
    if (port == 0) {
        fprintf(stderr, "crossdock demo: no free port on 127.0.0.1\n");
        goto out;
    }
    struct xd_buf qpath, qinbox;
    xd_buf_init(&qpath);
    xd_buf_init(&qinbox);
    yaml_quote(&qpath, store_path);
    yaml_quote(&qinbox, inbox_path);
    unsigned rport = xd_refsys_port(ref);
    xd_buf_printf(&yaml, DEMO_YAML, port, xd_buf_str(&qpath), xd_buf_str(&qinbox), rport, rport);
    xd_buf_dispose(&qpath);
    xd_buf_dispose(&qinbox);
    cfg = xd_config_parse("demo.yaml", xd_buf_str(&yaml), yaml.len, &err);
    if (!cfg) {
        fprintf(stderr, "crossdock demo: the built-in config does not load:\n%s\n",
                xd_buf_str(&err));
        goto out;
    }
    if (xd_hub_start(cfg, &hub, &err) < 0) {
        fprintf(stderr, "crossdock demo: the hub did not start: %s\n", xd_buf_str(&err));
        goto out;
    }

    /* The WMS's day. */
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    char day[16], period[8], tag[8], mark[16], url[64];
    strftime(day, sizeof day, "%Y-%m-%d", &tm);
    strftime(period, sizeof period, "%Y-%m", &tm);
    make_tag(tag, now);
    snprintf(mark, sizeof mark, "-%s-", tag);
    snprintf(url, sizeof url, "http://127.0.0.1:%u", hub->port);
    unsigned duration = o->events * 5u;
    duration = duration < 1000 ? 1000 : duration > 10000 ? 10000 : duration;
    struct xd_wms_opts wo = {.url = url,
                             .tag = tag,
                             .day = day,
                             .events = o->events,
                             .seed = o->seed,
                             .duration_ms = duration,
                             .bad_sku = BAD_SKU,
                             .inbox = inbox_path};
    if (xd_wms_create(&wo, &wms, &err) < 0) {
        fprintf(stderr, "crossdock demo: %s\n", xd_buf_str(&err));
        goto out;
    }
    /* Billing loses one charge while answering 200: only reconciliation finds it. */
    char dropped[XD_CHARGE_ID_LEN + 1] = "", dropped_doc[48] = "";
    pick_dropped(wms, dropped, dropped_doc, sizeof dropped_doc);
    if (dropped[0])
        xd_refsys_drop(ref, XD_REFSYS_BILLING, dropped);

    printf("crossdock demo: a day at a 3PL (%s), 3 warehouses, 3 customers, %u events\n", day,
           o->events);
    if (moved)
        printf("  note       port %u is busy: the hub listens on %u instead\n", o->port, hub->port);
    printf("  hub        http://127.0.0.1:%u   store %s%s\n", hub->port, store_path,
           temp_dir ? " (removed at the end; --keep DIR keeps it)" : "");
    printf("  ERP        http://127.0.0.1:%u%s    reference endpoint in this process\n", rport,
           XD_REFSYS_ERP);
    printf("  billing    http://127.0.0.1:%u%s  reference endpoint in this process\n", rport,
           XD_REFSYS_BILLING);
    printf("  inputs     JSON events and batches (POST /v1/events); a CSV batch of receipts, "
           "an X12 945 and an X12 944\n             dropped by a partner into the inbox %s\n",
           inbox_path);
    printf("  auth       none: the demo hub takes requests without an API key (auth.keys in a "
           "real config)\n");
    printf("  planned    the ERP refuses SKU %s (one dead letter, one exception) and answers "
           "503 for %u s mid-run;\n             billing answers 200 for the HANDLING_SHIPMENT "
           "charge of %s and loses it\n             (found by the reconciliation against "
           "billing's export)\n\n",
           BAD_SKU, OUTAGE_MS / 1000, dropped_doc[0] ? dropped_doc : "(none)");
    fflush(stdout);

    if (xd_wms_start(wms, &err) < 0) {
        fprintf(stderr, "crossdock demo: %s\n", xd_buf_str(&err));
        goto out;
    }

    /* Watch: progress every tick until the WMS is done and nothing is pending. */
    struct screen sc = {.tty = isatty(STDOUT_FILENO)};
    int64_t t0 = xd_mono_ms(), wms_done_at = 0;
    int outage = 0; /* 0 not yet, 1 on, 2 over */
    int timed_out = 0;
    for (;;) {
        sig = wait_signal(&stop, TICK_MS);
        if (sig)
            break;
        struct xd_wms_progress p;
        struct xd_refsys_counts erp, bill;
        struct live l;
        xd_wms_progress(wms, &p);
        xd_refsys_counts(ref, XD_REFSYS_ERP, &erp);
        xd_refsys_counts(ref, XD_REFSYS_BILLING, &bill);
        int lr = live_read(hub, &l);
        double secs = (double)(xd_mono_ms() - t0) / 1000.0;
        if (outage == 0 && p.posted * 100u >= p.total * OUTAGE_AT_PERCENT) {
            xd_refsys_outage(ref, XD_REFSYS_ERP, 503, OUTAGE_MS);
            outage = 1;
            note(&sc,
                 "%5.1fs  ERP: down for maintenance: answers 503 for %u s "
                 "(watch the retries and the circuit)",
                 secs, OUTAGE_MS / 1000);
        } else if (outage == 1 && !xd_refsys_in_outage(ref, XD_REFSYS_ERP)) {
            outage = 2;
            note(&sc, "%5.1fs  ERP: back up: %llu requests were answered 503 meanwhile", secs,
                 (unsigned long long)erp.outage);
        }
        if (p.done && !wms_done_at) {
            wms_done_at = xd_mono_ms();
            note(&sc,
                 "%5.1fs  WMS: done: %u events posted in %u requests and %u inbox files (%u "
                 "processed), %u sent again%s%s",
                 secs, p.posted, p.requests, p.files, p.files_processed, p.resent,
                 p.last_error[0] ? "; last error: " : "", p.last_error);
        }
        int settled = wms_done_at && outage == 2 && lr >= 0 && l.pending == 0;
        progress(&sc, secs, &p, &erp, &bill, &l, settled);
        if (settled)
            break;
        if (wms_done_at && xd_mono_ms() - wms_done_at > DRAIN_WAIT_MS) {
            timed_out = 1;
            note(&sc, "%5.1fs  still %llu deliveries pending after %d s: summarising anyway", secs,
                 (unsigned long long)l.pending, DRAIN_WAIT_MS / 1000);
            break;
        }
    }
    if (sc.tty && sc.line_shown)
        fputc('\n', stdout);
    xd_wms_stop(wms);
    if (sig) {
        printf("\n%s: stopping before the summary\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
        rc = 128 + sig;
        goto out;
    }

    struct xd_demo_run run = {.cfg = cfg,
                              .hub = hub,
                              .ref = ref,
                              .wms = wms,
                              .mark = mark,
                              .period = period,
                              .timed_out = timed_out,
                              .dropped = dropped[0] ? dropped : NULL,
                              .seconds = (double)(xd_mono_ms() - t0) / 1000.0};
    int clean = xd_demo_summary(&run, stdout);
    rc = clean ? 0 : 3;
    if (!o->once) {
        printf("\nThe hub keeps running: http://127.0.0.1:%u/ui is the dashboard;\n"
               "the API answers too, e.g.\n"
               "  curl -s http://127.0.0.1:%u/v1/charges?customer=ACME\n"
               "  curl -s 'http://127.0.0.1:%u/v1/deliveries?state=dead'\n"
               "  curl -s http://127.0.0.1:%u/v1/exceptions\n"
               "  curl -s http://127.0.0.1:%u/v1/events/wms%s000001\n"
               "  curl -s http://127.0.0.1:%u/_stats          (what the reference ERP and "
               "billing saw)\n"
               "Ctrl-C stops it.\n",
               hub->port, hub->port, hub->port, hub->port, hub->port, mark, rport);
        fflush(stdout);
        int s = 0;
        sigwait(&stop, &s);
        printf("\n%s: stopping cleanly\n", s == SIGINT ? "SIGINT" : "SIGTERM");
    }
out:
    xd_wms_destroy(wms);
    xd_hub_stop(hub);
    xd_refsys_stop(ref);
    xd_config_destroy(cfg);
    if (temp_dir)
        remove_dir(dir, 0);
    else if (dir[0] && rc != 2)
        printf("store kept: %s\n", store_path);
    fflush(stdout);
    xd_buf_dispose(&yaml);
    xd_buf_dispose(&err);
    curl_global_cleanup();
    return rc;
}
