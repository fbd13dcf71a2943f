/*
 * Recording audit entries (see audit.h): the actor of local commands, the
 * detail objects, redaction, and the log line each entry leaves.
 */
#include "audit/audit.h"
#include "audit/chain.h"
#include "core/buf.h"
#include "core/config.h"
#include "core/err.h"
#include "core/log.h"
#include "core/redact.h"
#include "store/store.h"

#include <openssl/evp.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void xd_audit_local_actor(char *out, size_t n)
{
    struct passwd pw, *res = NULL;
    char buf[1024];
    uid_t uid = geteuid();
    if (getpwuid_r(uid, &pw, buf, sizeof buf, &res) == 0 && res && res->pw_name)
        snprintf(out, n, "local:%s", res->pw_name);
    else
        snprintf(out, n, "local:uid %u", (unsigned)uid);
}

int xd_audit_record(struct xd_store *s, const char *actor, const char *action, const char *object,
                    const char *detail)
{
    if (!s)
        return XD_EINVAL;
    char *d = strdup(detail ? detail : "{}");
    char *o = strdup(object ? object : "");
    int rc = XD_ENOMEM;
    if (!d || !o)
        goto done;
    xd_redact_str(d);
    xd_redact_str(o);
    struct xd_audit_entry e;
    memset(&e, 0, sizeof e);
    rc = xd_store_audit_append(s, actor, action, o, d, &e);
    if (rc == 0) {
        char hex[2 * XD_AUDIT_HASH_LEN + 1];
        xd_audit_hex(e.hash, hex);
        xd_info("audit: #%lld %s by %s on %s (hash %s)", (long long)e.seq, action, actor,
                *o ? o : "-", hex);
    } else {
        xd_error("audit: could not record %s by %s on %s %s: %s", action, actor, *o ? o : "-", d,
                 xd_strerror(rc));
    }
done:
    free(d);
    free(o);
    return rc;
}

#define ARGV_MAX 64

static char *saved_argv[ARGV_MAX];
static int saved_argc;

void xd_audit_argv(int argc, char **argv)
{
    saved_argc = argc < ARGV_MAX ? argc : ARGV_MAX;
    for (int i = 0; i < saved_argc; i++)
        saved_argv[i] = argv[i];
}

int xd_audit_cli(struct xd_store *s, const char *action, const char *fmt, ...)
{
    char actor[128];
    xd_audit_local_actor(actor, sizeof actor);
    struct xd_buf d;
    xd_buf_init(&d);
    xd_buf_puts(&d, "{\"argv\":[");
    for (int i = 0; i < saved_argc; i++) {
        if (i)
            xd_buf_putc(&d, ',');
        xd_buf_json_str(&d, saved_argv[i]);
    }
    xd_buf_putc(&d, ']');
    if (fmt && *fmt) {
        va_list ap;
        va_start(ap, fmt);
        xd_buf_putc(&d, ',');
        xd_buf_vprintf(&d, fmt, ap);
        va_end(ap);
    }
    xd_buf_putc(&d, '}');
    int rc = d.oom ? XD_ENOMEM : xd_audit_record(s, actor, action, NULL, d.data);
    xd_buf_dispose(&d);
    return rc;
}

/* The SHA-256 of a file's bytes, as hex; 0, or -1 when it cannot be read. */
static int file_sha256(const char *path, char hex[2 * XD_AUDIT_HASH_LEN + 1], long long *size)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int ok = md && EVP_DigestInit_ex(md, EVP_sha256(), NULL);
    unsigned char buf[8192], h[XD_AUDIT_HASH_LEN];
    size_t n;
    *size = 0;
    while (ok && (n = fread(buf, 1, sizeof buf, f)) > 0) {
        ok = EVP_DigestUpdate(md, buf, n);
        *size += (long long)n;
    }
    ok = ok && !ferror(f) && EVP_DigestFinal_ex(md, h, NULL);
    EVP_MD_CTX_free(md);
    fclose(f);
    if (!ok)
        return -1;
    xd_audit_hex(h, hex);
    return 0;
}

int xd_audit_config_load(struct xd_store *s, const struct xd_config *cfg, const char *reason)
{
    char actor[128];
    xd_audit_local_actor(actor, sizeof actor);
    const char *path = cfg->path ? cfg->path : "";
    char full[4096];
    if (*path && realpath(path, full))
        path = full;
    struct xd_buf d;
    xd_buf_init(&d);
    xd_buf_puts(&d, "{\"reason\":");
    xd_buf_json_str(&d, reason);
    char hex[2 * XD_AUDIT_HASH_LEN + 1];
    long long size = 0;
    if (*path && file_sha256(path, hex, &size) == 0)
        xd_buf_printf(&d, ",\"sha256\":\"%s\",\"bytes\":%lld", hex, size);
    xd_buf_puts(&d, ",\"keys\":[");
    for (size_t i = 0; i < cfg->auth.nkeys; i++) {
        if (i)
            xd_buf_putc(&d, ',');
        xd_buf_json_str(&d, cfg->auth.keys[i].id);
    }
    xd_buf_printf(&d, "],\"targets\":%zu,\"routes\":%zu,\"pid\":%ld}", cfg->ntargets, cfg->nroutes,
                  (long)getpid());
    int rc = d.oom ? XD_ENOMEM : xd_audit_record(s, actor, "config.load", path, d.data);
    xd_buf_dispose(&d);
    return rc;
}
