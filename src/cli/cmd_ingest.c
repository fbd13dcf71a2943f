/*
 * crossdock ingest: validate files and commit their events to the store, as
 * POST /v1/events would. Each file is one atomic append: a file with any
 * invalid or conflicting event stores nothing.
 */
#include "cli/cli.h"
#include "core/buf.h"
#include "core/config.h"
#include "core/err.h"
#include "ingest/intake.h"
#include "route/route.h"
#include "store/store.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int looks_like_lines(const char *path, const char *data, size_t len)
{
    size_t n = strlen(path);
    if ((n > 6 && strcmp(path + n - 6, ".jsonl") == 0) ||
        (n > 7 && strcmp(path + n - 7, ".ndjson") == 0))
        return 1;
    (void)data, (void)len;
    return 0;
}

static int ingest_one(struct xd_store *store, const struct xd_config *cfg, const char *path)
{
    char *data;
    size_t len;
    int rc = xd_read_file(path, &data, &len);
    if (rc < 0) {
        fprintf(stderr, "%s: cannot read: %s\n", path, strerror(-rc));
        return 2;
    }
    struct xd_intake_limits lim = {.max_batch = (size_t)-1,
                                   .max_depth = cfg->server.max_depth,
                                   .max_string = cfg->server.max_string};
    struct xd_intake in;
    xd_intake_init(&in, &lim, "cli");
    rc = looks_like_lines(path, data, len) ? xd_intake_add_lines(&in, data, len)
                                           : xd_intake_add_body(&in, data, len);
    int status = 0;
    if (rc < 0) {
        for (size_t k = 0; k < in.errs.n; k++)
            fprintf(stderr, "%s: %s%s%s\n", path, in.errs.v[k].path,
                    *in.errs.v[k].path ? ": " : "", in.errs.v[k].message);
        if (in.errs.n == 0)
            fprintf(stderr, "%s: %s\n", path, xd_strerror(rc));
        fprintf(stderr, "%s: rejected, nothing stored\n", path);
        status = 2;
        goto out;
    }
    unsigned char *results = calloc(in.n ? in.n : 1, 1);
    struct xd_append a = {.events = in.events, .n = in.n, .results = results};
    rc = xd_store_append(store, &a);
    if (rc == XD_ECONFLICT) {
        for (size_t k = 0; k < in.n; k++)
            if (results[k] == XD_APPEND_CONFLICT)
                fprintf(stderr, "%s: event '%s' was accepted before with a different body\n",
                        path, in.events[k].event_id);
        fprintf(stderr, "%s: rejected, nothing stored\n", path);
        status = 2;
    } else if (rc < 0) {
        fprintf(stderr, "%s: not stored: %s\n", path, xd_strerror(rc));
        status = 1;
    } else {
        size_t fresh = 0, dup = 0;
        for (size_t k = 0; k < in.n; k++)
            results[k] == XD_APPEND_ACCEPTED ? fresh++ : dup++;
        printf("%s: %zu accepted, %zu duplicates\n", path, fresh, dup);
    }
    free(results);
out:
    xd_intake_dispose(&in);
    free(data);
    return status;
}

int xd_cmd_ingest(int argc, char **argv)
{
    const char *path = "crossdock.yaml";
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'}, {0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:", opts, NULL)) != -1) {
        if (c == 'c')
            path = optarg;
        else
            return xd_cli_usage("ingest");
    }
    if (optind == argc)
        return xd_cli_usage("ingest");
    struct xd_config *cfg = xd_cli_load_config(path);
    if (!cfg)
        return 2;
    struct xd_buf err;
    xd_buf_init(&err);
    struct xd_store *store = NULL;
    struct xd_routes *routes = NULL;
    int status = 0;
    if (xd_routes_create(cfg, &routes, &err) < 0) {
        fprintf(stderr, "%s\n", xd_buf_str(&err));
        status = 2;
        goto out;
    }
    if (xd_store_open(cfg, &store, &err) < 0) {
        fprintf(stderr, "store: %s\n", xd_buf_str(&err));
        status = 1;
        goto out;
    }
    xd_store_set_planner(store, xd_routes_plan, routes);
    for (int i = optind; i < argc; i++) {
        int s = ingest_one(store, cfg, argv[i]);
        if (s > status)
            status = s;
    }
    xd_store_close(store);
out:
    xd_routes_destroy(routes);
    xd_buf_dispose(&err);
    xd_config_destroy(cfg);
    return status;
}
