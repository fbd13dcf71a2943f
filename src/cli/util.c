/* Helpers shared by the commands: reading files, loading the config. */
#include "cli/cli.h"
#include "core/buf.h"
#include "core/config.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int xd_read_file(const char *path, char **out, size_t *len)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (!f)
        return -errno;
    struct xd_buf b;
    xd_buf_init(&b);
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (xd_buf_append(&b, chunk, n) < 0) {
            xd_buf_dispose(&b);
            if (f != stdin)
                fclose(f);
            return -ENOMEM;
        }
    }
    int err = ferror(f) ? -EIO : 0;
    if (f != stdin)
        fclose(f);
    if (err) {
        xd_buf_dispose(&b);
        return err;
    }
    *len = b.len;
    *out = xd_buf_steal(&b);
    return 0;
}

int xd_cli_config_opt(int argc, char **argv, const char **path)
{
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'}, {0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:", opts, NULL)) != -1) {
        if (c != 'c')
            return -1;
        *path = optarg;
    }
    return 0;
}

struct xd_config *xd_cli_load_config(const char *path)
{
    struct xd_buf errs;
    xd_buf_init(&errs);
    struct xd_config *cfg = xd_config_load(path, &errs);
    if (!cfg)
        fputs(xd_buf_str(&errs), stderr);
    xd_buf_dispose(&errs);
    return cfg;
}
