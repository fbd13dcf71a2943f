/*
 * crossdock reconcile: the reconciliation report (reconcile/report.h) of
 * the configured store, as text or JSON, optionally against exports from the
 * ERP and billing; --ledger prints the ledger it was built from instead.
 * Exit 0 when clean, 3 when breaks exist (contract section 2), 2 on bad
 * input, 1 when the store cannot be read.
 */
#include "cli/cli.h"
#include "core/buf.h"
#include "core/config.h"
#include "core/err.h"
#include "rating/card.h"
#include "reconcile/ledger.h"
#include "reconcile/report.h"
#include "store/store.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int print_ledger(struct xd_store *store, const char *from, const char *to)
{
    struct xd_recon_ledger lg;
    long f = -2147483647L, t = 2147483647L;
    if ((from && xd_day_parse(from, &f) < 0) || (to && xd_day_parse(to, &t) < 0)) {
        fprintf(stderr, "crossdock reconcile: dates are YYYY-MM-DD\n");
        return 2;
    }
    int rc = xd_ledger_build(store, &lg);
    if (rc < 0) {
        fprintf(stderr, "crossdock reconcile: store: %s\n", xd_strerror(rc));
        return 1;
    }
    struct xd_buf out;
    xd_buf_init(&out);
    for (size_t i = 0; i < lg.nobjs; i++) {
        const struct xd_lg_object *o = &lg.objs[i];
        long day = o->current != SIZE_MAX ? lg.events[o->current].day : 0;
        if (day < f || day > t)
            continue;
        xd_buf_reset(&out);
        xd_ledger_object_json(&lg, o, &out);
        puts(xd_buf_str(&out));
    }
    xd_buf_dispose(&out);
    xd_ledger_dispose(&lg);
    return 0;
}

static int read_export(const char *path, char **buf, size_t *len)
{
    int rc = xd_read_file(path, buf, len);
    if (rc < 0)
        fprintf(stderr, "crossdock reconcile: %s: %s\n", path, strerror(-rc));
    return rc;
}

int xd_cmd_reconcile(int argc, char **argv)
{
    const char *path = "crossdock.yaml", *format = "text";
    struct xd_recon_opts o = {.exceptions = -1};
    int ledger = 0;
    enum { O_FROM = 256, O_TO, O_ERP, O_BILL, O_FORMAT, O_JSON, O_NOEXC, O_LEDGER };
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"from", required_argument, NULL, O_FROM},
                                         {"since", required_argument, NULL, O_FROM},
                                         {"to", required_argument, NULL, O_TO},
                                         {"until", required_argument, NULL, O_TO},
                                         {"erp-export", required_argument, NULL, O_ERP},
                                         {"billing-export", required_argument, NULL, O_BILL},
                                         {"format", required_argument, NULL, O_FORMAT},
                                         {"json", no_argument, NULL, O_JSON},
                                         {"no-exceptions", no_argument, NULL, O_NOEXC},
                                         {"ledger", no_argument, NULL, O_LEDGER},
                                         {0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            path = optarg;
            break;
        case O_FROM:
            o.from = optarg;
            break;
        case O_TO:
            o.to = optarg;
            break;
        case O_ERP:
            o.erp_name = optarg;
            break;
        case O_BILL:
            o.billing_name = optarg;
            break;
        case O_FORMAT:
            format = optarg;
            break;
        case O_JSON:
            format = "json";
            break;
        case O_NOEXC:
            o.exceptions = 0;
            break;
        case O_LEDGER:
            ledger = 1;
            break;
        default:
            return xd_cli_usage("reconcile");
        }
    }
    if (optind != argc || (strcmp(format, "text") != 0 && strcmp(format, "json") != 0))
        return xd_cli_usage("reconcile");
    char *erp = NULL, *bill = NULL;
    int status = 2;
    if (o.erp_name && read_export(o.erp_name, &erp, &o.erp_len) < 0)
        return 2;
    if (o.billing_name && read_export(o.billing_name, &bill, &o.billing_len) < 0) {
        free(erp);
        return 2;
    }
    o.erp_export = erp;
    o.billing_export = bill;
    struct xd_config *cfg = xd_cli_load_config(path);
    if (!cfg) {
        free(erp);
        free(bill);
        return 2;
    }
    struct xd_buf err, out;
    xd_buf_init(&err);
    xd_buf_init(&out);
    struct xd_store *store = NULL;
    if (xd_store_open(cfg, &store, &err) < 0) {
        fprintf(stderr, "crossdock reconcile: store: %s\n", xd_buf_str(&err));
        status = 1;
        goto out;
    }
    if (ledger) {
        status = print_ledger(store, o.from, o.to);
        goto out;
    }
    struct xd_recon_report r;
    int rc = xd_reconcile(cfg, store, &o, &r, &err);
    if (rc < 0) {
        fprintf(stderr, "crossdock reconcile: %s\n", err.len ? xd_buf_str(&err) : xd_strerror(rc));
        status = rc == XD_EINVAL ? 2 : 1;
        goto out;
    }
    if (strcmp(format, "json") == 0) {
        xd_recon_report_json(&r, &out);
        xd_buf_putc(&out, '\n');
    } else {
        xd_recon_report_text(&r, &out);
    }
    fputs(xd_buf_str(&out), stdout);
    status = r.n ? 3 : 0;
    xd_recon_report_dispose(&r);
out:
    xd_store_close(store);
    xd_buf_dispose(&err);
    xd_buf_dispose(&out);
    xd_config_destroy(cfg);
    free(erp);
    free(bill);
    return status;
}
