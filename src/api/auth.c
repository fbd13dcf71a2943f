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
#include "core/err.h"
#include "core/hex.h"
#include "core/keyfile.h"
#include "core/log.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/core_names.h>
#include <openssl/params.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define SIG_WINDOW_S 300 /* a timestamp further than this from the hub's clock is refused */

struct xd_bucket {
    pthread_mutex_t mu;
    double tokens;
    int64_t last_ms;
    char *id;
    struct xd_bucket *next;
};

/* The keys in force: immutable once built, freed when the last holder lets go. */
struct xd_keyset {
    atomic_int refs;
    struct xd_api_key *keys;
    size_t n;
    struct xd_keyfile_entry *file; /* the key file's lines, owning their strings */
    size_t nfile;
};

struct xd_auth {
    const struct xd_config *cfg;
    int enabled;             /* keys configured or a key file named: every route but health asks */
    pthread_mutex_t mu;      /* guards cur and buckets */
    struct xd_keyset *cur;
    struct xd_bucket *buckets; /* one per key id ever seen, kept across reloads */
};

static void keyset_release(struct xd_keyset *ks)
{
    if (!ks || atomic_fetch_sub(&ks->refs, 1) != 1)
        return;
    free(ks->keys);
    xd_keyfile_free(ks->file, ks->nfile);
    free(ks);
}

/* The bucket of id, made when new; call with a->mu held. NULL when out of memory. */
static struct xd_bucket *bucket_of(struct xd_auth *a, const char *id, unsigned rate)
{
    for (struct xd_bucket *b = a->buckets; b; b = b->next)
        if (strcmp(b->id, id) == 0)
            return b;
    struct xd_bucket *b = calloc(1, sizeof *b);
    if (!b || !(b->id = strdup(id))) {
        free(b);
        return NULL;
    }
    pthread_mutex_init(&b->mu, NULL);
    b->tokens = rate; /* a full second's worth to start */
    b->last_ms = xd_mono_ms();
    b->next = a->buckets;
    a->buckets = b;
    return b;
}

/* A new key set from the configuration and the key file; NULL (err says why) on failure. */
static struct xd_keyset *keyset_build(struct xd_auth *a, struct xd_buf *err, int *rc)
{
    const struct xd_config *cfg = a->cfg;
    struct xd_keyset *ks = calloc(1, sizeof *ks);
    *rc = XD_ENOMEM;
    if (!ks)
        return NULL;
    atomic_init(&ks->refs, 1);
    if (cfg->auth.key_file) {
        int warn = 0;
        *rc = xd_keyfile_load(cfg->auth.key_file, &ks->file, &ks->nfile, err, &warn);
        if (*rc < 0)
            goto fail;
        if (warn)
            xd_warn("auth.key_file %s holds secrets and is readable by other users "
                    "(chmod 600, or write the keys as sha256:<hex>)",
                    cfg->auth.key_file);
    }
    ks->keys = calloc(cfg->auth.nkeys + ks->nfile + 1, sizeof *ks->keys);
    *rc = XD_ENOMEM;
    if (!ks->keys)
        goto fail;
    pthread_mutex_lock(&a->mu);
    for (size_t i = 0; i < cfg->auth.nkeys; i++) {
        const struct xd_key *k = &cfg->auth.keys[i];
        if (!k->secret)
            continue; /* its variable is unset: it matches nothing */
        struct xd_api_key *o = &ks->keys[ks->n++];
        *o = (struct xd_api_key){.id = k->id, .scopes = k->scopes, .rate_limit = k->rate_limit,
                                 .secret = k->secret};
        memcpy(o->sha256, k->secret_sha256, sizeof o->sha256);
        o->bucket = bucket_of(a, k->id, k->rate_limit);
    }
    for (size_t i = 0; i < ks->nfile; i++) {
        const struct xd_keyfile_entry *e = &ks->file[i];
        struct xd_api_key *o = &ks->keys[ks->n++];
        *o = (struct xd_api_key){.id = e->id, .scopes = e->scopes, .rate_limit = e->rate_limit,
                                 .secret = e->secret};
        memcpy(o->sha256, e->sha256, sizeof o->sha256);
        o->bucket = bucket_of(a, e->id, e->rate_limit);
    }
    int oom = 0;
    for (size_t i = 0; i < ks->n; i++)
        oom |= ks->keys[i].bucket == NULL;
    pthread_mutex_unlock(&a->mu);
    if (oom)
        goto fail;
    *rc = 0;
    return ks;
fail:
    keyset_release(ks);
    return NULL;
}

int xd_auth_create(const struct xd_config *cfg, struct xd_auth **out, struct xd_buf *err)
{
    int rc = XD_ENOMEM;
    *out = NULL;
    struct xd_auth *a = calloc(1, sizeof *a);
    if (!a)
        return XD_ENOMEM;
    a->cfg = cfg;
    a->enabled = cfg->auth.nkeys > 0 || cfg->auth.key_file != NULL;
    pthread_mutex_init(&a->mu, NULL);
    a->cur = keyset_build(a, err, &rc);
    if (!a->cur) {
        xd_auth_destroy(a);
        return rc;
    }
    *out = a;
    return 0;
}

int xd_auth_reload(struct xd_auth *a, struct xd_buf *err)
{
    int rc;
    struct xd_keyset *ks = keyset_build(a, err, &rc);
    if (!ks)
        return rc;
    pthread_mutex_lock(&a->mu);
    struct xd_keyset *old = a->cur;
    a->cur = ks;
    pthread_mutex_unlock(&a->mu);
    keyset_release(old); /* freed once the requests still holding it complete */
    return (int)ks->n;
}

void xd_auth_destroy(struct xd_auth *a)
{
    if (!a)
        return;
    keyset_release(a->cur);
    for (struct xd_bucket *b = a->buckets, *next; b; b = next) {
        next = b->next;
        pthread_mutex_destroy(&b->mu);
        free(b->id);
        free(b);
    }
    pthread_mutex_destroy(&a->mu);
    free(a);
}

/* The key set in force, held for the request until xd_auth_release(). */
static struct xd_keyset *hold(struct xd_req *r)
{
    struct xd_auth *a = r->srv->auth;
    if (!r->keyset) {
        pthread_mutex_lock(&a->mu);
        struct xd_keyset *ks = a->cur;
        atomic_fetch_add(&ks->refs, 1);
        pthread_mutex_unlock(&a->mu);
        r->keyset = ks;
    }
    return r->keyset;
}

void xd_auth_release(struct xd_req *r)
{
    keyset_release(r->keyset);
    r->keyset = NULL;
}

/* Every key is compared, match or not, so timing says nothing about which matched. */
static const struct xd_api_key *key_by_secret(const struct xd_keyset *ks, const char *secret)
{
    unsigned char digest[32];
    unsigned int mdlen = 0;
    size_t len = strlen(secret);
    if (len == 0 || !EVP_Digest(secret, len, digest, &mdlen, EVP_sha256(), NULL))
        return NULL;
    size_t hit = ks->n;
    for (size_t i = ks->n; i-- > 0;) {
        size_t eq = (size_t)(CRYPTO_memcmp(digest, ks->keys[i].sha256, sizeof digest) == 0);
        size_t mask = (size_t)0 - eq;
        hit = (i & mask) | (hit & ~mask); /* keeps the first match */
    }
    OPENSSL_cleanse(digest, sizeof digest);
    return hit < ks->n ? &ks->keys[hit] : NULL;
}

/* Takes a token for key; 0, or the seconds to wait (>= 1) when there is none. */
static unsigned take_token(const struct xd_api_key *key)
{
    if (!key || key->rate_limit == 0 || !key->bucket)
        return 0;
    struct xd_bucket *b = key->bucket;
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

/* Scope and rate limit, once the key is known; answers 403/429 itself. admin implies all. */
static int admit(struct xd_req *r)
{
    unsigned have = r->key->scopes;
    if (have & XD_SCOPE_ADMIN)
        have = ~0u;
    if ((have & r->route->scope) == 0) {
        char detail[240];
        snprintf(detail, sizeof detail, "key '%s' lacks the scope this needs (%s)", r->key->id,
                 xd_scope_name(r->route->scope) ? xd_scope_name(r->route->scope) : "?");
        xd_http_problem(r, 403, "forbidden", "Forbidden", detail, NULL);
        return -1;
    }
    unsigned wait = take_token(r->key);
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
    if (r->route->scope == 0 || !r->srv->auth->enabled)
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
    r->key = key_by_secret(hold(r), secret);
    if (!r->key) {
        xd_http_problem(r, 401, "unauthorized", "Unauthorized", "the API key is not valid", NULL);
        return -1;
    }
    return admit(r);
}

int xd_auth_body(struct xd_req *r)
{
    if (!r->sig_pending)
        return 0;
    const struct xd_keyset *ks = hold(r);
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
    if (xd_unhex(sig + 7, want, 32) < 0) {
        xd_http_problem(r, 401, "unauthorized", "Unauthorized",
                        "X-Crossdock-Signature must be sha256=<64 hex digits>", NULL);
        return -1;
    }
    /* HMAC-SHA256(secret, timestamp "." body), tried with every key, all compared. */
    const struct xd_api_key *hit = NULL;
    for (size_t i = 0; i < ks->n; i++) {
        const struct xd_api_key *k = &ks->keys[i];
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
