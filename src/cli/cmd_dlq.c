/*
 * crossdock dlq: work the dead-letter queue from a shell, through the store
 * (a running hub picks replayed deliveries up within its poll interval).
 *
 *   crossdock dlq list [-c FILE] [--target T] [--route R] [--limit N]
 *   crossdock dlq show [-c FILE] ID
 *   crossdock dlq replay [-c FILE] ID...
 *   crossdock dlq replay [-c FILE] --all [--target T] [--route R]
 */
#include "cli/cli.h"
#include "audit/audit.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/err.h"
#include "route/dlq.h"
#include "store/store.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct list_ctx {
    size_t n;
};

static void print_row(void *ctx, struct xd_stored_dlv *d)
{
    struct list_ctx *c = ctx;
    if (c->n++ == 0)
        printf("%-8s %-28s %-12s %-16s %4s %8s  %s\n", "ID", "EVENT", "TARGET", "ROUTE", "STEP",
               "ATTEMPTS", "LAST ERROR");
    char err[121];
    snprintf(err, sizeof err, "%s", d->last_error ? d->last_error : "");
    for (char *p = err; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    printf("%-8lld %-28s %-12s %-16s %4u %8u  %s\n", (long long)d->id, d->event_id, d->target,
           d->route, d->step, d->attempts, err);
    xd_stored_dlv_dispose(d);
}

int xd_cmd_dlq(int argc, char **argv)
{
    const char *path = "crossdock.yaml";
    struct xd_dlv_filter f = {.state = XD_DLV_DEAD, .limit = 100};
    int all = 0;
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"target", required_argument, NULL, 't'},
                                         {"route", required_argument, NULL, 'r'},
                                         {"limit", required_argument, NULL, 'n'},
                                         {"all", no_argument, NULL, 'a'},
                                         {0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            path = optarg;
            break;
        case 't':
            f.target = optarg;
            break;
        case 'r':
            f.route = optarg;
            break;
        case 'n':
            f.limit = (size_t)strtoul(optarg, NULL, 10);
            break;
        case 'a':
            all = 1;
            break;
        default:
            return xd_cli_usage("dlq");
        }
    }
    if (optind >= argc)
        return xd_cli_usage("dlq");
    const char *verb = argv[optind++];
    int list = strcmp(verb, "list") == 0, show = strcmp(verb, "show") == 0,
        replay = strcmp(verb, "replay") == 0;
    if (!(list || show || replay) || (show && argc - optind != 1) ||
        (replay && !all && optind == argc) || (replay && all && optind != argc) ||
        (list && optind != argc))
        return xd_cli_usage("dlq");
    int64_t *ids = NULL;
    size_t nids = 0;
    if (show || (replay && !all)) {
        ids = calloc((size_t)(argc - optind), sizeof *ids);
        if (!ids)
            return 1;
        for (int i = optind; i < argc; i++) {
            char *end;
            long long v = strtoll(argv[i], &end, 10);
            if (*end || v <= 0) {
                fprintf(stderr, "crossdock dlq: '%s' is not a delivery id\n", argv[i]);
                free(ids);
                return 2;
            }
            ids[nids++] = v;
        }
    }

    struct xd_config *cfg = xd_cli_load_config(path);
    if (!cfg) {
        free(ids);
        return 2;
    }
    struct xd_buf err, out;
    xd_buf_init(&err);
    xd_buf_init(&out);
    struct xd_store *store = NULL;
    int status = 0, rc;
    if (xd_store_open(cfg, &store, &err) < 0) {
        fprintf(stderr, "store: %s\n", xd_buf_str(&err));
        status = 1;
        goto out;
    }
    if (list) {
        struct list_ctx lc = {0};
        rc = xd_store_list_deliveries(store, &f, print_row, &lc);
        if (rc < 0) {
            fprintf(stderr, "crossdock dlq: %s\n", xd_strerror(rc));
            status = 1;
        } else if (lc.n == 0) {
            printf("no dead letters\n");
        }
    } else if (show) {
        struct xd_stored_dlv d;
        rc = xd_store_get_delivery(store, ids[0], &d);
        if (rc < 0) {
            fprintf(stderr, "crossdock dlq: delivery %lld: %s\n", (long long)ids[0],
                    xd_strerror(rc));
            status = rc == XD_ENOTFOUND ? 2 : 1;
            goto out;
        }
        struct xd_stored_event ev;
        int erc = xd_store_get_event(store, d.event_id, &ev);
        xd_dlq_json(&out, &d, 1);
        out.len--;
        xd_buf_puts(&out, ",\"event\":");
        xd_buf_puts(&out, erc == 0 ? ev.body : "null");
        xd_buf_puts(&out, ",\"attempts_log\":[");
        if (erc == 0)
            xd_dlq_json_attempts(store, &out, ev.seq, d.id);
        xd_buf_puts(&out, "]}\n");
        fputs(xd_buf_str(&out), stdout);
        if (erc == 0)
            xd_stored_event_dispose(&ev);
        xd_stored_dlv_dispose(&d);
    } else {
        size_t applied = 0;
        rc = all ? xd_dlq_replay_filter(store, f, "crossdock dlq", &applied)
                 : xd_dlq_replay_ids(store, ids, nids, "crossdock dlq", &applied);
        if (rc == 0)
            xd_audit_cli(store, all ? "delivery.replay_bulk" : "delivery.replay",
                         "\"replayed\":%zu", applied);
        if (rc < 0) {
            fprintf(stderr, "crossdock dlq: replay failed: %s\n", xd_strerror(rc));
            status = 1;
        } else {
            printf("%zu delivery(ies) put back in line\n", applied);
            if (!all && applied < nids) {
                fprintf(stderr, "crossdock dlq: %zu of the ids were not dead letters\n",
                        nids - applied);
                status = 2;
            }
        }
    }
out:
    xd_store_close(store);
    free(ids);
    xd_buf_dispose(&err);
    xd_buf_dispose(&out);
    xd_config_destroy(cfg);
    return status;
}
