/*
 * crossdock rate: a dry run of rating. The event files are read and
 * validated exactly as POST /v1/events would (ingest/intake.h) — all of
 * them before anything is rated, so an invalid event rates nothing — then
 * rated in the order given as one sequence against an in-memory ledger
 * (rating/ledger.h): a void reverses charges produced earlier in the same
 * run, and a charge id printed once is not printed again. One JSON charge a
 * line on stdout; nothing is stored. Exit 2 on an invalid event, an event
 * with no card for its customer and date, or any other event that cannot be
 * rated (each named on stderr with the reason); the other events are still
 * rated and printed.
 */
#include "cli/cli.h"
#include "core/buf.h"
#include "core/config.h"
#include "core/err.h"
#include "ingest/intake.h"
#include "rating/card.h"
#include "rating/ledger.h"
#include "transform/transform.h"
#include "rating/rate.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct input {
    const char *path;
    char *data;
    struct xd_intake in;
    int ready; /* in holds prepared events */
};

static int is_json_lines(const char *path)
{
    size_t n = strlen(path);
    return (n > 6 && strcmp(path + n - 6, ".jsonl") == 0) ||
           (n > 7 && strcmp(path + n - 7, ".ndjson") == 0);
}

static void print_errors(const char *path, const struct xd_intake *in, int rc)
{
    for (size_t k = 0; k < in->errs.n; k++)
        fprintf(stderr, "%s: %s%s%s\n", path, in->errs.v[k].path, *in->errs.v[k].path ? ": " : "",
                in->errs.v[k].message);
    if (in->errs.n == 0)
        fprintf(stderr, "%s: %s\n", path, xd_strerror(rc));
}

/* Reads and validates one file: a single event, a batch, an array, or JSON lines. 0 or 2. */
static int load(struct input *f, const struct xd_intake_limits *lim)
{
    size_t len;
    int rc = xd_read_file(f->path, &f->data, &len);
    if (rc < 0) {
        fprintf(stderr, "%s: cannot read: %s\n", f->path, strerror(-rc));
        return 2;
    }
    xd_intake_init(&f->in, lim, "cli");
    f->ready = 1;
    if (is_json_lines(f->path)) {
        rc = xd_intake_add_lines(&f->in, f->data, len);
    } else {
        rc = xd_intake_add_body(&f->in, f->data, len);
        if (rc == XD_EPARSE) {
            /* Not one JSON document: JSON lines, whatever the name says? */
            struct xd_intake lines;
            xd_intake_init(&lines, lim, "cli");
            if (xd_intake_add_lines(&lines, f->data, len) == 0) {
                xd_intake_dispose(&f->in);
                f->in = lines;
                rc = 0;
            } else {
                xd_intake_dispose(&lines);
            }
        }
    }
    if (rc < 0) {
        print_errors(f->path, &f->in, rc);
        fprintf(stderr, "%s: rejected, nothing rated\n", f->path);
        return 2;
    }
    return 0;
}

int xd_cmd_rate(int argc, char **argv)
{
    const char *path = "crossdock.yaml";
    if (xd_cli_config_opt(argc, argv, &path) < 0)
        return xd_cli_usage("rate");
    if (optind == argc)
        return xd_cli_usage("rate");

    int status = 0;
    size_t nin = (size_t)(argc - optind);
    struct xd_rating *rating = NULL;
    struct xd_memledger *ledger = NULL;
    struct xd_jq_cache *when = NULL;
    struct input *inputs = NULL;
    struct xd_charges fresh;
    struct xd_buf why, out;
    xd_charges_init(&fresh);
    xd_buf_init(&why);
    xd_buf_init(&out);

    struct xd_config *cfg = xd_cli_load_config(path);
    if (!cfg)
        return 2;
    if (xd_rating_compile(cfg, &rating, &why) < 0) {
        fputs(xd_buf_str(&why), stderr);
        if (why.len == 0)
            fprintf(stderr, "%s: rate cards: out of memory\n", path);
        status = 2;
        goto done;
    }
    inputs = calloc(nin, sizeof *inputs);
    ledger = xd_memledger_create();
    when = xd_jq_cache_create(cfg);
    struct xd_rate_conds conds = {.test = xd_jq_cache_cond, .ctx = when};
    if (ledger)
        xd_memledger_set_conds(ledger, &conds);
    if (!inputs || !ledger || !when) {
        fprintf(stderr, "crossdock rate: out of memory\n");
        status = 1;
        goto done;
    }

    /* Every file valid before anything is rated. */
    struct xd_intake_limits lim = {.max_batch = (size_t)-1,
                                   .max_depth = cfg->server.max_depth,
                                   .max_string = cfg->server.max_string};
    for (size_t i = 0; i < nin; i++) {
        inputs[i].path = argv[optind + (int)i];
        if (load(&inputs[i], &lim) != 0)
            status = 2;
    }
    if (status)
        goto done;

    for (size_t i = 0; i < nin; i++) {
        const struct xd_intake *in = &inputs[i].in;
        for (size_t k = 0; k < in->n; k++) {
            const struct xd_event *ev = &in->events[k];
            xd_buf_reset(&why);
            xd_charges_clear(&fresh);
            int rc = xd_memledger_rate(ledger, rating, ev->json, ev->type, &fresh, &why);
            if (rc == XD_ENOMEM) {
                fprintf(stderr, "crossdock rate: out of memory\n");
                status = 1;
                goto done;
            }
            if (rc < 0) {
                fprintf(stderr, "%s: event '%s' (%s): not rated: %s\n", inputs[i].path,
                        ev->event_id, xd_event_type_name(ev->type),
                        why.len ? xd_buf_str(&why) : xd_strerror(rc));
                status = 2;
                continue;
            }
            for (size_t j = 0; j < fresh.n; j++) {
                xd_buf_reset(&out);
                if (xd_charge_json(&out, &fresh.v[j]) < 0 || xd_buf_putc(&out, '\n') < 0) {
                    fprintf(stderr, "crossdock rate: out of memory\n");
                    status = 1;
                    goto done;
                }
                fwrite(out.data, 1, out.len, stdout);
            }
        }
    }
    if (fflush(stdout) != 0) {
        perror("crossdock rate: stdout");
        status = 1;
    }

done:
    for (size_t i = 0; inputs && i < nin; i++) {
        if (inputs[i].ready)
            xd_intake_dispose(&inputs[i].in);
        free(inputs[i].data);
    }
    free(inputs);
    xd_memledger_destroy(ledger);
    xd_jq_cache_destroy(when);
    xd_rating_destroy(rating);
    xd_charges_dispose(&fresh);
    xd_buf_dispose(&why);
    xd_buf_dispose(&out);
    xd_config_destroy(cfg);
    return status;
}
