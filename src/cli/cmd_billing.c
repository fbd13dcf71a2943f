/*
 * crossdock billing close --period YYYY-MM [-c FILE]: settles the monthly
 * minimums of a billing period (route/billing.h) and prints the top-up
 * charges, one JSON object a line. Closing a period again prints the same
 * top-ups and records nothing new.
 */
#include "cli/cli.h"
#include "audit/audit.h"
#include "core/buf.h"
#include "core/config.h"
#include "core/err.h"
#include "route/billing.h"
#include "store/store.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

int xd_cmd_billing(int argc, char **argv)
{
    const char *path = "crossdock.yaml", *period = NULL;
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"period", required_argument, NULL, 'p'},
                                         {0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:", opts, NULL)) != -1) {
        if (c == 'c')
            path = optarg;
        else if (c == 'p')
            period = optarg;
        else
            return xd_cli_usage("billing");
    }
    if (optind != argc - 1 || strcmp(argv[optind], "close") != 0 || !period)
        return xd_cli_usage("billing");
    struct xd_config *cfg = xd_cli_load_config(path);
    if (!cfg)
        return 2;
    struct xd_buf err, out;
    xd_buf_init(&err);
    xd_buf_init(&out);
    struct xd_store *store = NULL;
    int status = 0;
    if (xd_store_open(cfg, &store, &err) < 0) {
        fprintf(stderr, "store: %s\n", xd_buf_str(&err));
        status = 1;
        goto out;
    }
    int rc = xd_billing_close(cfg, store, period, &out, &err);
    if (rc < 0) {
        fprintf(stderr, "crossdock billing close: %s\n",
                err.len ? xd_buf_str(&err) : xd_strerror(rc));
        status = rc == XD_EINVAL || rc == XD_ECONFIG ? 2 : 1;
    } else {
        xd_audit_cli(store, "billing.close", NULL);
        fputs(xd_buf_str(&out), stdout);
    }
    xd_store_close(store);
out:
    xd_buf_dispose(&err);
    xd_buf_dispose(&out);
    xd_config_destroy(cfg);
    return status;
}
