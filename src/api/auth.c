/*
 * Who is calling, and may they: API keys (Authorization: Bearer), signed
 * webhooks (X-Crossdock-Timestamp + X-Crossdock-Signature), scopes, and the
 * per-key rate limit (a token bucket, 429 with Retry-After).
 *
 * A signature covers the raw body, so a signed request is checked once the
 * body is in: xd_auth_headers() only notes it, xd_auth_body() decides.
 * Secrets are compared in constant time and never logged.
 */
#include "api/auth.h"
#include "api/http.h"
#include "core/clock.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/core_names.h>
#include <openssl/params.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define SIG_WINDOW_S 300 /* a timestamp further than this from the hub's clock is refused */

struct bucket {
    pthread_mutex_t mu;
    double tokens;
    int64_t last_ms;
};

struct xd_limits {
    struct bucket *b; /* one per configured key, same index */
    size_t n;
};

struct xd_limits *xd_limits_create(const struct xd_config *cfg)
{
    struct xd_limits *l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    l->n = cfg->auth.nkeys;
    l->b = calloc(l->n ? l->n : 1, sizeof *l->b);
    if (!l->b) {
        free(l);
        return NULL;
    }
    for (size_t i = 0; i < l->n; i++) {
        pthread_mutex_init(&l->b[i].mu, NULL);
        l->b[i].tokens = cfg->auth.keys[i].rate_limit; /* a full second's worth to start */
        l->b[i].last_ms = xd_mono_ms();
    }
    return l;
}

void xd_limits_destroy(struct xd_limits *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->n; i++)
        pthread_mutex_destroy(&l->b[i].mu);
    free(l->b);
    free(l);
}

/* Takes a token for key; 0, or the seconds to wait (>= 1) when there is none. */
static unsigned take_token(struct xd_server *srv, const struct xd_key *key)
{
    if (!key || key->rate_limit == 0 || !srv->limits)
        return 0;
    size_t i = (size_t)(key - srv->cfg->auth.keys);
    if (i >= srv->limits->n)
        return 0;
    struct bucket *b = &srv->limits->b[i];
    double rate = key->rate_limit;
    unsigned wait = 0;
    pthread_mutex_lock(&b->mu);
    int64_t now = xd_mono_ms();
    b->tokens += (double)(now - b->last_ms) * rate / 1000.0;
    if (b->tokens > rate)
        b->tokens = rate; /* burst: one second's worth */
    b->last_ms = now;
    if (b->tokens >= 1.0)
        b->tokens -= 1.0;
    else
        wait = (unsigned)((1.0 - b->tokens) / rate) + 1;
    pthread_mutex_unlock(&b->mu);
    return wait;
}

/* Scope and rate limit, once the key is known; answers 403/429 itself. */
static int admit(struct xd_req *r)
{
    if ((r->key->scopes & r->route->scope) == 0) {
        char detail[200];
        snprintf(detail, sizeof detail, "key '%s' lacks the scope this needs", r->key->id);
        xd_http_problem(r, 403, "forbidden", "Forbidden", detail, NULL);
        return -1;
    }
    unsigned wait = take_token(r->srv, r->key);
    if (wait) {
        char detail[200];
        snprintf(detail, sizeof detail, "key '%s' is over its rate limit of %u requests/s",
                 r->key->id, r->key->rate_limit);
        snprintf(r->retry_after, sizeof r->retry_after, "%u", wait);
        xd_http_problem(r, 429, "rate-limited", "Too Many Requests", detail, NULL);
        return -1;
    }
    return 0;
}

static const char *header(struct xd_req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

int xd_auth_headers(struct xd_req *r)
{
    const struct xd_config *cfg = r->srv->cfg;
    if (r->route->scope == 0 || cfg->auth.nkeys == 0)
        return 0;
    const char *h = header(r, MHD_HTTP_HEADER_AUTHORIZATION);
    if (!h && header(r, "X-Crossdock-Signature") && r->route->takes_body) {
        r->sig_pending = 1; /* decided by xd_auth_body() once the body is in */
        return 0;
    }
    if (!h || strncasecmp(h, "Bearer ", 7) != 0) {
        xd_http_problem(r, 401, "unauthorized", "Unauthorized",
                        "send an API key as 'Authorization: Bearer <key>', or sign the request "
                        "(X-Crossdock-Timestamp, X-Crossdock-Signature)",
                        NULL);
        return -1;
    }
    const char *secret = h + 7;
    while (*secret == ' ')
        secret++;
    r->key = xd_config_key_by_secret(cfg, secret, strlen(secret));
    if (!r->key) {
        xd_http_problem(r, 401, "unauthorized", "Unauthorized", "the API key is not valid", NULL);
        return -1;
    }
    return admit(r);
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int xd_auth_body(struct xd_req *r)
{
    if (!r->sig_pending)
        return 0;
    const struct xd_config *cfg = r->srv->cfg;
    const char *ts = header(r, "X-Crossdock-Timestamp");
    const char *sig = header(r, "X-Crossdock-Signature");
    char *end = NULL;
    long long t = ts ? strtoll(ts, &end, 10) : 0;
    if (!ts || !*ts || *end) {
        xd_http_problem(r, 401, "unauthorized", "Unauthorized",
                        "a signed request needs X-Crossdock-Timestamp (unix seconds)", NULL);
        return -1;
    }
    long long now = xd_now_ms() / 1000;
    if (t > now + SIG_WINDOW_S || t < now - SIG_WINDOW_S) {
        xd_http_problem(r, 401, "unauthorized", "Unauthorized",
                        "X-Crossdock-Timestamp is more than 300 s from the hub's clock", NULL);
        return -1;
    }
    unsigned char want[32];
    if (strncmp(sig, "sha256=", 7) != 0 || strlen(sig) != 7 + 64) {
        xd_http_problem(r, 401, "unauthorized", "Unauthorized",
                        "X-Crossdock-Signature must be sha256=<64 hex digits>", NULL);
        return -1;
    }
    for (int i = 0; i < 32; i++) {
        int hi = hexval(sig[7 + 2 * i]), lo = hexval(sig[8 + 2 * i]);
        if (hi < 0 || lo < 0) {
            xd_http_problem(r, 401, "unauthorized", "Unauthorized",
                            "X-Crossdock-Signature must be sha256=<64 hex digits>", NULL);
            return -1;
        }
        want[i] = (unsigned char)(hi << 4 | lo);
    }
    /* HMAC-SHA256(secret, timestamp "." body), tried with every key, all compared. */
    const struct xd_key *hit = NULL;
    for (size_t i = 0; i < cfg->auth.nkeys; i++) {
        const struct xd_key *k = &cfg->auth.keys[i];
        if (!k->secret)
            continue;
        unsigned char mac[32];
        EVP_MAC *m = EVP_MAC_fetch(NULL, "HMAC", NULL);
        EVP_MAC_CTX *c = m ? EVP_MAC_CTX_new(m) : NULL;
        OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string("digest", "SHA256", 0),
                               OSSL_PARAM_construct_end()};
        size_t outl = 0;
        int ok = c && EVP_MAC_init(c, (const unsigned char *)k->secret, strlen(k->secret),
                                   params) &&
                 EVP_MAC_update(c, (const unsigned char *)ts, strlen(ts)) &&
                 EVP_MAC_update(c, (const unsigned char *)".", 1) &&
                 EVP_MAC_update(c, (const unsigned char *)(r->body.data ? r->body.data : ""),
                                r->body.len) &&
                 EVP_MAC_final(c, mac, &outl, sizeof mac);
        EVP_MAC_CTX_free(c);
        EVP_MAC_free(m);
        if (ok && outl == 32 && CRYPTO_memcmp(mac, want, 32) == 0 && !hit)
            hit = k;
        OPENSSL_cleanse(mac, sizeof mac);
    }
    if (!hit) {
        xd_http_problem(r, 401, "unauthorized", "Unauthorized",
                        "the signature does not match the body with any key", NULL);
        return -1;
    }
    r->key = hit;
    r->sig_pending = 0;
    return admit(r);
}
