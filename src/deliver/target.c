/* HTTP targets from the configuration (see target.h). */
#include "deliver/target.h"
#include "core/buf.h"
#include "core/config.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/sha256.h"
#include "core/redact.h"
#include "deliver/oauth.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_LINES 64 /* constant lines + the two per delivery, on the stack */

/* name + sep + value, heap-allocated; NULL when out of memory. */
static char *line(const char *name, const char *sep, const char *value)
{
    char *s = NULL;
    if (asprintf(&s, "%s%s%s", name, sep, value) < 0)
        return NULL;
    return s;
}

static int has_ctl(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < ' ' || *p == 0x7f)
            return 1;
    return 0;
}

int xd_http_target_init(struct xd_http_target *t, const struct xd_target *cfg, struct xd_buf *err)
{
    int rc = XD_ENOMEM;
    memset(t, 0, sizeof *t);
    t->cfg = cfg;
    xd_circuit_init(&t->circuit, NULL);
    if (!cfg->url) {
        if (err)
            xd_buf_printf(err, "targets.%s.url: required for http targets\n", cfg->name);
        return XD_ECONFIG;
    }
    /* Room on the stack at submit: these, Content-Type, Authorization, and the two per delivery. */
    if (cfg->nheaders > MAX_LINES - 4) {
        if (err)
            xd_buf_printf(err, "targets.%s.headers: at most %d\n", cfg->name, MAX_LINES - 4);
        return XD_ECONFIG;
    }
    t->lines = calloc(cfg->nheaders + 2, sizeof *t->lines);
    if (!t->lines)
        return XD_ENOMEM;
    int has_ctype = 0;
    for (size_t i = 0; i < cfg->nheaders; i++) {
        has_ctype |= strcasecmp(cfg->headers[i].name, "Content-Type") == 0;
        xd_redact_add_header(cfg->headers[i].name, cfg->headers[i].value);
        t->lines[t->nlines] = line(cfg->headers[i].name, ": ", cfg->headers[i].value);
        if (!t->lines[t->nlines])
            goto fail;
        t->nlines++;
    }
    if (!has_ctype) {
        t->lines[t->nlines] = line("Content-Type", ": ", "application/json");
        if (!t->lines[t->nlines])
            goto fail;
        t->nlines++;
    }
    if (cfg->bearer_env) {
        const char *token = getenv(cfg->bearer_env);
        const char *why = NULL;
        if (!token || !*token)
            why = "is not set";
        else if (has_ctl(token))
            why = "holds control characters";
        if (why) {
            if (err)
                xd_buf_printf(err, "targets.%s.bearer_env: %s %s\n", cfg->name, cfg->bearer_env,
                              why);
            rc = XD_ECONFIG;
            goto fail;
        }
        xd_redact_add(token);
        t->lines[t->nlines] = line("Authorization", ": Bearer ", token);
        if (!t->lines[t->nlines])
            goto fail;
        t->nlines++;
    }
    if (cfg->auth.type) {
        rc = xd_oauth_create(cfg, &t->oauth, err);
        if (rc < 0)
            goto fail;
    }
    return 0;
fail:
    xd_http_target_dispose(t);
    return rc;
}

void xd_http_target_dispose(struct xd_http_target *t)
{
    xd_oauth_destroy(t->oauth);
    t->oauth = NULL;
    for (size_t i = 0; i < t->nlines; i++) {
        explicit_bzero(t->lines[i], strlen(t->lines[i])); /* the bearer token among them */
        free(t->lines[i]);
    }
    free(t->lines);
    t->lines = NULL;
    t->nlines = 0;
}

int xd_http_target_submit(struct xd_http_client *cl, const struct xd_http_target *t,
                          const void *body, size_t len, const char *idem_key,
                          const struct xd_trace *trace, xd_http_done_fn *done, void *user)
{
    const char *lines[MAX_LINES];
    char idem[160], tp[16 + XD_TRACEPARENT_LEN], bearer[4200];
    size_t n = 0;
    if (!idem_key || strlen(idem_key) > 128 || !trace)
        return XD_EINVAL;
    for (size_t i = 0; i < t->nlines; i++)
        lines[n++] = t->lines[i];
    if (t->oauth) {
        int rc = xd_oauth_header(t->oauth, bearer, sizeof bearer);
        if (rc < 0)
            return rc;
        lines[n++] = bearer;
    }
    snprintf(idem, sizeof idem, "Idempotency-Key: %s", idem_key);
    memcpy(tp, "traceparent: ", 13);
    xd_trace_format(trace, tp + 13);
    lines[n++] = idem;
    lines[n++] = tp;
    struct xd_http_request req = {
        .method = "POST",
        .url = t->cfg->url,
        .body = body,
        .body_len = len,
        .headers = lines,
        .nheaders = n,
        .timeout_ms = t->cfg->timeout_ms,
        .insecure = !t->cfg->tls.verify,
        .ca_file = t->cfg->tls.ca_file,
    };
    int rc = xd_http_submit(cl, &req, done, user);
    if (t->oauth)
        explicit_bzero(bearer, sizeof bearer);
    return rc;
}

int xd_http_target_ready(const struct xd_http_target *t)
{
    return !t->oauth || xd_oauth_ready(t->oauth);
}

const struct xd_http_result *xd_http_target_result(const struct xd_http_target *t,
                                                   const struct xd_http_result *res,
                                                   struct xd_http_result *tmp)
{
    if (!t->oauth || res->xport != XD_XPORT_NONE || res->status != 401)
        return res;
    xd_oauth_rejected(t->oauth, xd_mono_ms() - (int64_t)(res->latency_us / 1000));
    *tmp = *res;
    tmp->outcome = XD_OUT_RETRY;
    return tmp;
}

/* Writes a field at p as its 8-byte big-endian length, then its bytes; returns the end. */
static unsigned char *put_field(unsigned char *p, const char *s, size_t len)
{
    for (int i = 0; i < 8; i++)
        *p++ = (unsigned char)((uint64_t)len >> (56 - 8 * i));
    memcpy(p, s, len);
    return p + len;
}

int xd_idempotency_key(char out[XD_IDEM_KEY_LEN + 1], const char *event_id, const char *route,
                       unsigned step, const char *target)
{
    static const char domain[] = "crossdock.delivery.v1";
    unsigned char h[XD_SHA256_LEN];
    char stepbuf[16];
    if (!event_id || !route || !target)
        return XD_EINVAL;
    snprintf(stepbuf, sizeof stepbuf, "%u", step);
    /* SHA-256 over the length-prefixed fields, with the thread's reused context. */
    const char *f[5] = {domain, event_id, route, stepbuf, target};
    size_t len[5], need = 0;
    for (int i = 0; i < 5; i++)
        need += 8 + (len[i] = strlen(f[i]));
    unsigned char stack[512], *msg = need <= sizeof stack ? stack : malloc(need);
    if (!msg)
        return XD_ENOMEM;
    unsigned char *p = msg;
    for (int i = 0; i < 5; i++)
        p = put_field(p, f[i], len[i]);
    int rc = xd_sha256(msg, need, h);
    if (msg != stack)
        free(msg);
    if (rc < 0)
        return rc;
    h[6] = (unsigned char)((h[6] & 0x0f) | 0x80); /* version 8: custom */
    h[8] = (unsigned char)((h[8] & 0x3f) | 0x80); /* variant 10 */
    static const char hex[] = "0123456789abcdef";
    char *o = out;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            *o++ = '-';
        *o++ = hex[h[i] >> 4];
        *o++ = hex[h[i] & 15];
    }
    *o = '\0';
    return 0;
}
