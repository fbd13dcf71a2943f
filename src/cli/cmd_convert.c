/*
 * crossdock convert: input files to canonical events on stdout, one JSON
 * object a line (with --ack, X12: the 997 for each interchange instead).
 * No store, no network. Every rejection goes to stderr with the file and
 * the place (JSON path, CSV row and column, X12 segment and element).
 */
#include "cli/cli.h"
#include "core/buf.h"
#include "core/config.h"
#include "core/err.h"
#include "ingest/files.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Prints in's errors as FILE: PLACE: message. */
void xd_cli_print_errors(const char *file, const struct xd_intake *in, int rc)
{
    for (size_t k = 0; k < in->errs.n; k++)
        fprintf(stderr, "%s: %s%s%s\n", file, in->errs.v[k].path,
                *in->errs.v[k].path ? ": " : "", in->errs.v[k].message);
    if (in->errs.dropped)
        fprintf(stderr, "%s: %zu more errors\n", file, in->errs.dropped);
    if (in->errs.n == 0)
        fprintf(stderr, "%s: %s\n", file, xd_strerror(rc));
}

int xd_cmd_convert(int argc, char **argv)
{
    const char *from = NULL, *config = NULL;
    struct xd_convert_opts opts = {0};
    int ack = 0;
    static const struct option lopts[] = {{"from", required_argument, NULL, 'f'},
                                          {"customer", required_argument, NULL, 'C'},
                                          {"warehouse", required_argument, NULL, 'W'},
                                          {"ack", no_argument, NULL, 'a'},
                                          {"config", required_argument, NULL, 'c'},
                                          {0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:", lopts, NULL)) != -1) {
        switch (c) {
        case 'f':
            from = optarg;
            break;
        case 'C':
            opts.customer = optarg;
            break;
        case 'W':
            opts.warehouse = optarg;
            break;
        case 'a':
            ack = 1;
            break;
        case 'c':
            config = optarg;
            break;
        default:
            return xd_cli_usage("convert");
        }
    }
    if (!from || optind == argc)
        return xd_cli_usage("convert");
    int fmt = xd_format_parse(from);
    if (fmt < 0) {
        fprintf(stderr, "crossdock convert: --from %s: expected json, jsonl, csv or x12\n", from);
        return 2;
    }
    if (ack && fmt != XD_FMT_X12) {
        fprintf(stderr, "crossdock convert: --ack goes with --from x12\n");
        return 2;
    }
    struct xd_config *cfg = NULL;
    if (config) {
        cfg = xd_cli_load_config(config);
        if (!cfg)
            return 2;
        opts.partners = cfg->partners;
        opts.npartners = cfg->npartners;
    }

    int status = 0;
    struct xd_intake_limits lim = {.max_batch = (size_t)-1, .max_depth = 64, .max_string = 65536};
    for (int i = optind; i < argc; i++) {
        char *data;
        size_t len;
        int rc = xd_read_file(argv[i], &data, &len);
        if (rc < 0) {
            fprintf(stderr, "%s: cannot read: %s\n", argv[i], strerror(-rc));
            status = 2;
            continue;
        }
        /* .jsonl files stay JSON lines under --from json. */
        int f = fmt == XD_FMT_JSON && xd_format_guess(argv[i], "", 0) == XD_FMT_JSONL
                    ? XD_FMT_JSONL
                    : fmt;
        struct xd_intake in;
        xd_intake_init(&in, &lim, xd_format_name(f == XD_FMT_JSONL ? XD_FMT_JSON : f));
        struct xd_buf acks;
        xd_buf_init(&acks);
        rc = xd_intake_add_file(&in, f, data, len, &opts, ack ? &acks : NULL);
        if (rc < 0) {
            xd_cli_print_errors(argv[i], &in, rc);
            status = 2;
        }
        if (ack) {
            fputs(xd_buf_str(&acks), stdout);
        } else if (rc == 0) {
            for (size_t k = 0; k < in.n; k++) {
                fwrite(in.events[k].body, 1, in.events[k].body_len, stdout);
                fputc('\n', stdout);
            }
        }
        xd_buf_dispose(&acks);
        xd_intake_dispose(&in);
        free(data);
    }
    xd_config_destroy(cfg);
    return status;
}
