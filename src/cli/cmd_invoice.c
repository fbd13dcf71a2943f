/*
 * crossdock invoice --customer C --period YYYY-MM [-c FILE] [--out FILE]:
 * the X12 810 for one customer's charges of one month (the charges whose
 * service_date is in the period, as GET /v1/charges?customer=C&from=&to=
 * lists them), written by formats/x12_810.c.
 *
 * The interchange control number (ISA13 = GS06) comes from the store's
 * durable counter `x12.interchange`, so it increases across runs and
 * restarts. It is taken only once the invoice is known to be writable (a
 * dry run with a placeholder number first), so a refused invoice uses no
 * number; a number taken and then not written (the output could not be
 * saved) is a gap, never a repeat. With --out the file appears whole or not
 * at all (written beside it, then renamed).
 */
#include "cli/cli.h"
#include "core/buf.h"
#include "core/config.h"
#include "core/err.h"
#include "formats/x12_810.h"
#include "ingest/event.h"
#include "store/store.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define COUNTER "x12.interchange" /* every X12 interchange the hub sends */

/* The charges of the period, owned. */
struct list {
    struct xd_charge_rec *v;
    size_t n, cap;
    int oom;
};

static void take(void *ctx, struct xd_charge_rec *c)
{
    struct list *l = ctx;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        struct xd_charge_rec *v = l->oom ? NULL : realloc(l->v, cap * sizeof *v);
        if (!v) {
            l->oom = 1;
            xd_charge_rec_dispose(c);
            return;
        }
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = *c; /* the strings move into the list */
}

static void list_dispose(struct list *l)
{
    for (size_t i = 0; i < l->n; i++)
        xd_charge_rec_dispose(&l->v[i]);
    free(l->v);
}

/* "2026-11" -> "2026-11-01" and "2026-11-30"; -1 when not YYYY-MM. */
static int period_days(const char *p, char first[11], char last[11])
{
    static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    for (int i = 0; i < 7; i++)
        if (i == 4 ? p[i] != '-' : (p[i] < '0' || p[i] > '9'))
            return -1;
    if (p[7])
        return -1;
    int y = atoi(p), m = atoi(p + 5);
    if (m < 1 || m > 12 || y < 1970)
        return -1;
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    snprintf(first, 11, "%.7s-01", p);
    snprintf(last, 11, "%.7s-%02d", p, mdays[m - 1] + (m == 2 && leap));
    return 0;
}

/* The receiver's id: the X12 partner whose customer is c, else c itself. */
static const char *receiver_of(const struct xd_config *cfg, const char *customer)
{
    for (size_t i = 0; i < cfg->npartners; i++)
        if (cfg->partners[i].customer && strcmp(cfg->partners[i].customer, customer) == 0)
            return cfg->partners[i].id;
    return customer;
}

/* Writes data to path whole: a temporary file beside it, flushed, then renamed. */
static int save(const char *path, const struct xd_buf *data)
{
    struct xd_buf tmp;
    xd_buf_init(&tmp);
    xd_buf_printf(&tmp, "%s.%ld.tmp", path, (long)getpid());
    if (tmp.oom) {
        xd_buf_dispose(&tmp);
        return ENOMEM;
    }
    int e = 0;
    FILE *f = fopen(tmp.data, "wb");
    if (!f) {
        e = errno;
        goto out;
    }
    if (fwrite(data->data, 1, data->len, f) != data->len || fflush(f) != 0 || fsync(fileno(f)))
        e = errno ? errno : EIO;
    if (fclose(f) != 0 && !e)
        e = errno;
    if (!e && rename(tmp.data, path) != 0)
        e = errno;
    if (e)
        unlink(tmp.data);
out:
    xd_buf_dispose(&tmp);
    return e;
}

int xd_cmd_invoice(int argc, char **argv)
{
    const char *path = "crossdock.yaml", *customer = NULL, *period = NULL, *outpath = NULL;
    const char *date = NULL, *number = NULL, *sender = "CROSSDOCK", *receiver = NULL;
    int test = 0;
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'}, {"customer", required_argument, NULL, 'C'},
        {"period", required_argument, NULL, 'p'}, {"out", required_argument, NULL, 'o'},
        {"date", required_argument, NULL, 'd'},   {"number", required_argument, NULL, 'n'},
        {"sender", required_argument, NULL, 's'}, {"receiver", required_argument, NULL, 'r'},
        {"test", no_argument, NULL, 't'},         {0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:o:", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            path = optarg;
            break;
        case 'C':
            customer = optarg;
            break;
        case 'p':
            period = optarg;
            break;
        case 'o':
            outpath = optarg;
            break;
        case 'd':
            date = optarg;
            break;
        case 'n':
            number = optarg;
            break;
        case 's':
            sender = optarg;
            break;
        case 'r':
            receiver = optarg;
            break;
        case 't':
            test = 1;
            break;
        default:
            return xd_cli_usage("invoice");
        }
    }
    if (optind != argc || !customer || !*customer || !period)
        return xd_cli_usage("invoice");
    char first[11], last[11], today[11], defnum[64];
    if (period_days(period, first, last) < 0) {
        fprintf(stderr, "crossdock invoice: --period '%s': expected YYYY-MM\n", period);
        return 2;
    }
    time_t now = time(NULL);
    if (!date) {
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(today, sizeof today, "%Y-%m-%d", &tm);
        date = today;
    } else if (!xd_date_valid(date)) {
        fprintf(stderr, "crossdock invoice: --date '%s': expected YYYY-MM-DD\n", date);
        return 2;
    }
    if (!number) {
        /* CUSTOMER-YYYYMM: the same invoice number each time the month is invoiced */
        snprintf(defnum, sizeof defnum, "%.48s-%.4s%.2s", customer, period, period + 5);
        number = defnum;
    }

    struct xd_config *cfg = xd_cli_load_config(path);
    if (!cfg)
        return 2;
    struct xd_buf err, out;
    xd_buf_init(&err);
    xd_buf_init(&out);
    struct list charges = {0};
    struct xd_store *store = NULL;
    int status = 0, rc;
    if (xd_store_open(cfg, &store, &err) < 0) {
        fprintf(stderr, "store: %s\n", xd_buf_str(&err));
        status = 1;
        goto out;
    }
    struct xd_charge_filter f = {.customer = customer, .from = first, .to = last};
    rc = xd_store_list_charges(store, &f, take, &charges);
    if (rc < 0 || charges.oom) {
        fprintf(stderr, "crossdock invoice: cannot read the charges: %s\n",
                xd_strerror(rc < 0 ? rc : XD_ENOMEM));
        status = 1;
        goto out;
    }
    if (charges.n == 0) {
        fprintf(stderr,
                "crossdock invoice: no charges for customer '%s' in %s: nothing to invoice\n",
                customer, period);
        status = 2;
        goto out;
    }

    struct xd_810 inv = {
        .sender = sender,
        .receiver = receiver ? receiver : receiver_of(cfg, customer),
        .customer = customer,
        .account = xd_config_xref(cfg, "account", customer),
        .invoice = number,
        .invoice_date = date,
        .period_from = first,
        .period_to = last,
        .control = 1, /* the dry run's; the real number is taken below */
        .time = (long long)now,
        .test = test,
    };
    struct xd_810_result res;
    rc = xd_x12_810_write(&out, &inv, charges.v, charges.n, &res, &err);
    if (rc < 0) {
        fprintf(stderr, "crossdock invoice: %s\n", err.len ? xd_buf_str(&err) : xd_strerror(rc));
        status = rc == XD_ENOMEM ? 1 : 2;
        goto out;
    }
    int64_t ctl = 0;
    rc = xd_store_next_counter(store, COUNTER, &ctl);
    if (rc < 0) {
        fprintf(stderr, "crossdock invoice: cannot take a control number: %s\n", xd_strerror(rc));
        status = 1;
        goto out;
    }
    inv.control = (unsigned long)((ctl - 1) % 999999999 + 1);
    xd_buf_reset(&out);
    rc = xd_x12_810_write(&out, &inv, charges.v, charges.n, &res, &err);
    if (rc < 0) {
        fprintf(stderr, "crossdock invoice: %s\n", err.len ? xd_buf_str(&err) : xd_strerror(rc));
        status = 1;
        goto out;
    }
    if (outpath) {
        int e = save(outpath, &out);
        if (e) {
            fprintf(stderr, "crossdock invoice: %s: cannot write: %s\n", outpath, strerror(e));
            status = 1;
            goto out;
        }
    } else if (fwrite(out.data, 1, out.len, stdout) != out.len || fflush(stdout) != 0) {
        fprintf(stderr, "crossdock invoice: cannot write to stdout\n");
        status = 1;
        goto out;
    }
    for (size_t k = 0; k < res.nsets; k++) {
        const struct xd_810_set *s = &res.sets[k];
        fprintf(stderr, "invoice %s: %zu line%s, total %s %s, interchange %09lu\n", s->invoice,
                s->lines, s->lines == 1 ? "" : "s", s->total, s->currency, inv.control);
        if (s->rounded)
            fprintf(stderr,
                    "invoice %s: TDS01 carries 2 decimals: the %s total %s is written as %s "
                    "hundredths (rounded half-even); the lines are exact\n",
                    s->invoice, s->currency, s->total, s->tds);
    }
out:
    list_dispose(&charges);
    xd_store_close(store);
    xd_buf_dispose(&err);
    xd_buf_dispose(&out);
    xd_config_destroy(cfg);
    return status;
}
