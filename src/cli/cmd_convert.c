/*
 * crossdock convert: input files to canonical events on stdout, one JSON
 * object a line. JSON input now; CSV and X12 readers plug in here.
 */
#include "cli/cli.h"
#include "core/err.h"
#include "ingest/intake.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A JSON-lines file: by name, or several top-level documents. */
static int is_json_lines(const char *path)
{
    size_t n = strlen(path);
    return (n > 6 && strcmp(path + n - 6, ".jsonl") == 0) ||
           (n > 7 && strcmp(path + n - 7, ".ndjson") == 0);
}

int xd_cmd_convert(int argc, char **argv)
{
    const char *from = NULL;
    static const struct option opts[] = {{"from", required_argument, NULL, 'f'},
                                         {"customer", required_argument, NULL, 'C'},
                                         {"warehouse", required_argument, NULL, 'W'},
                                         {"ack", no_argument, NULL, 'a'},
                                         {0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'f':
            from = optarg;
            break;
        case 'C':
        case 'W':
        case 'a':
            break; /* used by the CSV and X12 readers */
        default:
            return xd_cli_usage("convert");
        }
    }
    if (!from || optind == argc)
        return xd_cli_usage("convert");
    if (strcmp(from, "json") != 0) {
        fprintf(stderr, "crossdock convert: --from %s is not supported (json)\n", from);
        return 2;
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
        struct xd_intake in;
        xd_intake_init(&in, &lim, NULL);
        rc = is_json_lines(argv[i]) ? xd_intake_add_lines(&in, data, len)
                                    : xd_intake_add_body(&in, data, len);
        if (rc < 0) {
            for (size_t k = 0; k < in.errs.n; k++)
                fprintf(stderr, "%s: %s%s%s\n", argv[i], in.errs.v[k].path,
                        *in.errs.v[k].path ? ": " : "", in.errs.v[k].message);
            if (in.errs.n == 0)
                fprintf(stderr, "%s: %s\n", argv[i], xd_strerror(rc));
            status = 2;
        } else {
            for (size_t k = 0; k < in.n; k++) {
                fwrite(in.events[k].body, 1, in.events[k].body_len, stdout);
                fputc('\n', stdout);
            }
        }
        xd_intake_dispose(&in);
        free(data);
    }
    return status;
}
