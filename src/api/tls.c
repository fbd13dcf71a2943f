/*
 * The listener's certificate, reloadable (see tls.h). Each load makes a
 * generation (the chain as gnutls_pcert_st, the private key); the current
 * one is what the handshake callback hands out. Loading checks the pair
 * the way the handshake will use it: the chain parses, the key parses,
 * and the key is the certificate's (a throwaway credentials object says
 * so), so a bad pair never replaces a good one.
 */
#include "api/tls.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/err.h"

#include <gnutls/x509.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CHAIN_MAX 16               /* certificates in one chain */
#define RETIRE_MS (10 * 60 * 1000) /* a replaced pair is kept this long */

struct gen {
    gnutls_pcert_st chain[CHAIN_MAX];
    unsigned n;
    gnutls_privkey_t key;
    char desc[256];     /* subject and expiry of the first certificate */
    int64_t retired_ms; /* when it was replaced (monotonic), 0: in use */
    struct gen *next;   /* older generations */
};

struct xd_tls {
    char *cert_path, *key_path;
    struct gen *cur; /* newest first, then the retired ones */
};

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static struct xd_tls *g_tls; /* the one the callback serves */

static void gen_free(struct gen *g)
{
    if (!g)
        return;
    for (unsigned i = 0; i < g->n; i++)
        gnutls_pcert_deinit(&g->chain[i]);
    if (g->key)
        gnutls_privkey_deinit(g->key);
    free(g);
}

static void describe(struct gen *g)
{
    gnutls_x509_crt_t crt;
    char dn[200] = "?";
    size_t dnlen = sizeof dn;
    time_t exp = 0;
    if (gnutls_x509_crt_init(&crt) < 0)
        return;
    if (gnutls_x509_crt_import(crt, &g->chain[0].cert, GNUTLS_X509_FMT_DER) == 0) {
        if (gnutls_x509_crt_get_dn(crt, dn, &dnlen) < 0)
            snprintf(dn, sizeof dn, "?");
        exp = gnutls_x509_crt_get_expiration_time(crt);
    }
    gnutls_x509_crt_deinit(crt);
    struct tm tm;
    char when[32] = "?";
    if (exp > 0 && gmtime_r(&exp, &tm))
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    snprintf(g->desc, sizeof g->desc, "%s, expires %s", dn, when);
}

static struct gen *load(const char *cert, const char *key, struct xd_buf *err, int *rc)
{
    gnutls_datum_t cd = {0}, kd = {0};
    gnutls_certificate_credentials_t probe = NULL;
    struct gen *g = calloc(1, sizeof *g);
    int r;
    *rc = XD_ENOMEM;
    if (!g)
        return NULL;
    *rc = XD_ECONFIG;
    /* The pair as the handshake will see it: do they belong together? */
    if (gnutls_certificate_allocate_credentials(&probe) < 0) {
        *rc = XD_ENOMEM;
        goto fail;
    }
    r = gnutls_certificate_set_x509_key_file(probe, cert, key, GNUTLS_X509_FMT_PEM);
    if (r < 0) {
        xd_buf_printf(err, "server.tls: cannot use %s with %s: %s", cert, key, gnutls_strerror(r));
        goto fail;
    }
    if ((r = gnutls_load_file(cert, &cd)) < 0 || (r = gnutls_load_file(key, &kd)) < 0) {
        xd_buf_printf(err, "server.tls: cannot read %s: %s", cd.data ? key : cert,
                      gnutls_strerror(r));
        goto fail;
    }
    g->n = CHAIN_MAX;
    r = gnutls_pcert_list_import_x509_raw(g->chain, &g->n, &cd, GNUTLS_X509_FMT_PEM, 0);
    if (r < 0 || g->n == 0) {
        g->n = 0;
        xd_buf_printf(err, "server.tls.cert: %s: %s", cert,
                      r < 0 ? gnutls_strerror(r) : "no certificate");
        goto fail;
    }
    if ((r = gnutls_privkey_init(&g->key)) < 0 ||
        (r = gnutls_privkey_import_x509_raw(g->key, &kd, GNUTLS_X509_FMT_PEM, NULL, 0)) < 0) {
        xd_buf_printf(err, "server.tls.key: %s: %s", key, gnutls_strerror(r));
        goto fail;
    }
    describe(g);
    *rc = 0;
    goto done;
fail:
    gen_free(g);
    g = NULL;
done:
    if (kd.data) {
        gnutls_memset(kd.data, 0, kd.size);
        gnutls_free(kd.data);
    }
    gnutls_free(cd.data);
    if (probe)
        gnutls_certificate_free_credentials(probe);
    return g;
}

static int retrieve(gnutls_session_t s, const gnutls_datum_t *req_ca_dn, int nreqs,
                    const gnutls_pk_algorithm_t *pk_algos, int pk_algos_length,
                    gnutls_pcert_st **pcert, unsigned int *pcert_length, gnutls_privkey_t *pkey)
{
    (void)s, (void)req_ca_dn, (void)nreqs, (void)pk_algos, (void)pk_algos_length;
    int rc = -1;
    pthread_mutex_lock(&g_mu);
    if (g_tls && g_tls->cur) {
        *pcert = g_tls->cur->chain;
        *pcert_length = g_tls->cur->n;
        *pkey = g_tls->cur->key;
        rc = 0;
    }
    pthread_mutex_unlock(&g_mu);
    return rc;
}

gnutls_certificate_retrieve_function2 *const xd_tls_retrieve = retrieve;

int xd_tls_create(const char *cert, const char *key, struct xd_tls **out, struct xd_buf *err)
{
    int rc = XD_ENOMEM;
    *out = NULL;
    struct xd_tls *t = calloc(1, sizeof *t);
    if (!t || !(t->cert_path = strdup(cert)) || !(t->key_path = strdup(key)))
        goto fail;
    t->cur = load(cert, key, err, &rc);
    if (!t->cur)
        goto fail;
    pthread_mutex_lock(&g_mu);
    g_tls = t;
    pthread_mutex_unlock(&g_mu);
    *out = t;
    return 0;
fail:
    if (t) {
        free(t->cert_path);
        free(t->key_path);
    }
    free(t);
    return rc;
}

int xd_tls_reload(struct xd_tls *t, struct xd_buf *err)
{
    int rc;
    struct gen *g = load(t->cert_path, t->key_path, err, &rc);
    if (!g)
        return rc;
    int64_t now = xd_mono_ms();
    struct gen *dead = NULL;
    pthread_mutex_lock(&g_mu);
    t->cur->retired_ms = now;
    g->next = t->cur;
    t->cur = g;
    /* Generations retired long ago can no longer be in a handshake: unlink them. */
    for (struct gen **p = &g->next; *p;) {
        if (now - (*p)->retired_ms > RETIRE_MS) {
            struct gen *x = *p;
            *p = x->next;
            x->next = dead;
            dead = x;
        } else {
            p = &(*p)->next;
        }
    }
    pthread_mutex_unlock(&g_mu);
    while (dead) {
        struct gen *x = dead;
        dead = x->next;
        gen_free(x);
    }
    return 0;
}

void xd_tls_describe(struct xd_tls *t, struct xd_buf *out)
{
    pthread_mutex_lock(&g_mu);
    xd_buf_puts(out, t->cur ? t->cur->desc : "?");
    pthread_mutex_unlock(&g_mu);
}

void xd_tls_destroy(struct xd_tls *t)
{
    if (!t)
        return;
    pthread_mutex_lock(&g_mu);
    if (g_tls == t)
        g_tls = NULL;
    pthread_mutex_unlock(&g_mu);
    for (struct gen *g = t->cur, *next; g; g = next) {
        next = g->next;
        gen_free(g);
    }
    free(t->cert_path);
    free(t->key_path);
    free(t);
}
