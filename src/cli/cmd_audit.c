/*
 * crossdock audit verify [-c FILE | --db PATH] [--anchor SEQ:HASH]: walks the
 * audit log's hash chain (audit/chain.h) from the first entry to the last
 * and says whether it is intact; when not, names the first bad entry and
 * what is wrong with it. Prints the head (last seq and hash) to record
 * elsewhere; --anchor checks a head recorded earlier, which also catches
 * entries removed from the end and a chain rewritten whole.
 *
 * Exit: 0 intact, 4 tampered (contract section 2), 2 bad usage, config or
 * store file, 1 when the store cannot be read.
 */
#include "audit/chain.h"
#include "cli/cli.h"
#include "core/buf.h"
#include "core/config.h"
#include "core/err.h"
#include "store/store.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define EXIT_TAMPERED 4

static void feed(void *ctx, struct xd_audit_entry *e)
{
    xd_audit_verify_next(ctx, e);
    xd_audit_entry_dispose(e);
}

/* "SEQ:HEX" into the verifier's anchor; -1 when malformed. */
static int parse_anchor(const char *s, struct xd_audit_verifier *v)
{
    char *end;
    long long seq = strtoll(s, &end, 10);
    if (seq <= 0 || *end != ':' || xd_audit_unhex(end + 1, v->anchor) < 0)
        return -1;
    v->anchor_seq = seq;
    return 0;
}

static int verify(int argc, char **argv)
{
    const char *path = "crossdock.yaml", *db = NULL, *anchor = NULL;
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"db", required_argument, NULL, 'd'},
                                         {"anchor", required_argument, NULL, 'a'},
                                         {0}};
    int c, have_c = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:", opts, NULL)) != -1) {
        if (c == 'c')
            path = optarg, have_c = 1;
        else if (c == 'd')
            db = optarg;
        else if (c == 'a')
            anchor = optarg;
        else
            return xd_cli_usage("audit");
    }
    if (optind != argc || (db && have_c))
        return xd_cli_usage("audit");
    struct xd_audit_verifier v;
    xd_audit_verify_init(&v);
    if (anchor && parse_anchor(anchor, &v) < 0) {
        fprintf(stderr,
                "crossdock audit verify: --anchor: expected SEQ:HASH (64 hex digits), "
                "not '%s'\n",
                anchor);
        return 2;
    }

    struct xd_config *cfg = db ? xd_config_default() : xd_cli_load_config(path);
    if (!cfg)
        return 2;
    if (db) {
        char *p = strdup(db);
        free(cfg->store.path);
        cfg->store.path = p;
        if (!p) {
            xd_config_destroy(cfg);
            return 1;
        }
    }
    int status = 0;
    struct xd_store *store = NULL;
    struct xd_buf err;
    xd_buf_init(&err);
    /* Verifying must not create an empty store where the real one was expected. */
    const char *file = cfg->store.path;
    if ((!cfg->store.driver || strcmp(cfg->store.driver, "sqlite") == 0) && file &&
        access(file, F_OK) != 0) {
        fprintf(stderr, "crossdock audit verify: %s: no such store file\n", file);
        status = 2;
        goto out;
    }
    if (xd_store_open(cfg, &store, &err) < 0) {
        fprintf(stderr, "crossdock audit verify: store: %s\n", xd_buf_str(&err));
        status = 1;
        goto out;
    }
    int rc = xd_store_list_audit(store, 0, 0, feed, &v);
    if (rc < 0) {
        fprintf(stderr, "crossdock audit verify: cannot read the audit log: %s\n", xd_strerror(rc));
        status = 1;
        goto out;
    }
    if (xd_audit_verify_end(&v) < 0) {
        printf("audit log TAMPERED: entry %lld: %s\n", (long long)v.bad_seq, v.why);
        if (v.bad_seq > 1)
            printf("entries 1 to %lld are intact\n", (long long)v.bad_seq - 1);
        status = EXIT_TAMPERED;
        goto out;
    }
    char hex[2 * XD_AUDIT_HASH_LEN + 1];
    xd_audit_hex(v.last, hex);
    printf("audit log intact: %lld entries\n", (long long)v.n);
    if (v.n)
        printf("head: %lld:%s\n", (long long)v.last_seq, hex);
out:
    xd_store_close(store);
    xd_buf_dispose(&err);
    xd_config_destroy(cfg);
    return status;
}

int xd_cmd_audit(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "verify") != 0)
        return xd_cli_usage("audit");
    return verify(argc - 1, argv + 1);
}
