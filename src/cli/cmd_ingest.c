/*
 * crossdock ingest: validate files (format from the extension or the
 * content: JSON, JSON lines, CSV, X12) and commit their events to the store,
 * as POST /v1/events would. Each file is one atomic append: a file with any
 * invalid or conflicting event stores nothing. X12 files get their 997
 * written next to them (FILE.997).
 */
#include "cli/cli.h"
#include "core/buf.h"
#include "core/config.h"
#include "core/err.h"
#include "ingest/files.h"
#include "route/route.h"
#include "store/store.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void write_ack(const char *path, const struct xd_buf *ack)
{
    if (!ack->len)
        return;
    struct xd_buf name;
    xd_buf_init(&name);
    xd_buf_printf(&name, "%s.997", path);
    FILE *f = fopen(xd_buf_str(&name), "wb");
    if (!f || fwrite(ack->data, 1, ack->len, f) != ack->len)
        fprintf(stderr, "%s: cannot write the 997\n", xd_buf_str(&name));
    if (f)
        fclose(f);
    xd_buf_dispose(&name);
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
    struct xd_convert_opts opts = {.partners = cfg->partners, .npartners = cfg->npartners};
    int fmt = xd_format_guess(path, data, len);
    struct xd_intake in;
    xd_intake_init(&in, &lim, xd_format_name(fmt == XD_FMT_JSONL ? XD_FMT_JSON : fmt));
    struct xd_buf ack;
    xd_buf_init(&ack);
    rc = xd_intake_add_file(&in, fmt, data, len, &opts, fmt == XD_FMT_X12 ? &ack : NULL);
    write_ack(path, &ack);
    xd_buf_dispose(&ack);
    int status = 0;
    if (rc < 0) {
        xd_cli_print_errors(path, &in, rc);
        fprintf(stderr, "%s: rejected, nothing stored\n", path);
        status = 2;
        goto out;
    }
    unsigned char *results = calloc(in.n ? in.n : 1, 1);
    struct xd_append a = {.events = in.events, .n = in.n, .results = results};
    rc = results ? xd_store_append(store, &a) : XD_ENOMEM;
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
        printf("%s: %zu accepted, %zu duplicates (%s)\n", path, fresh, dup, xd_format_name(fmt));
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
    if (xd_cli_config_opt(argc, argv, &path) < 0)
        return xd_cli_usage("ingest");
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
