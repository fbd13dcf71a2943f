/*
 * OAuth 2.0 client credentials (see oauth.h). The state is one token, when
 * it was fetched, when to renew it and when it expires, behind a mutex; the
 * fetcher thread sleeps on a condition variable until a token is needed
 * (none, renewal due, dropped after a 401) or it is told to stop.
 *
 * The request (RFC 6749 4.4.2): POST token_url, form body
 * grant_type=client_credentials[&scope=..][&audience=..], the client's id
 * and secret in `Authorization: Basic` (client_auth: basic, RFC 6749
 * 2.3.1: each form-urlencoded, then base64) or as client_id/client_secret
 * form fields (client_auth: body). The answer (5.1): JSON with
 * access_token, token_type "Bearer" and, usually, expires_in.
 */
#include "deliver/oauth.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/err.h"
#include "core/log.h"
#include "core/redact.h"
#include "deliver/http.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define TOKEN_MAX      4096 /* longest access token accepted */
#define DEFAULT_LIFE_S 3600 /* when the server gives no expires_in */
#define RETRY_FIRST_MS 1000
#define RETRY_MAX_MS   60000

struct xd_oauth {
    const struct xd_target *cfg;
    char *secret; /* the client secret, wiped at destroy */

    pthread_mutex_t mu;
    pthread_cond_t cv;
    char *token;         /* NULL: none usable */
    int64_t got_ms;      /* when the current token was asked for (monotonic) */
    int64_t renew_ms;    /* from then on, fetch the next one */
    int64_t expire_ms;   /* from then on, the token is not handed out */
    int64_t next_try_ms; /* after a failed fetch, not before */
    unsigned backoff_ms;
    int stop;
    pthread_t thread;
    int started;
};

/* ---- the request --------------------------------------------------------- */

/* application/x-www-form-urlencoded (unreserved characters kept, space as +). */
static void form_enc(struct xd_buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            *p == '-' || *p == '.' || *p == '_' || *p == '~')
            xd_buf_putc(b, (char)*p);
        else if (*p == ' ')
            xd_buf_putc(b, '+');
        else {
            xd_buf_putc(b, '%');
            xd_buf_putc(b, hex[*p >> 4]);
            xd_buf_putc(b, hex[*p & 15]);
        }
    }
}

static void form_field(struct xd_buf *b, const char *name, const char *value)
{
    if (!value)
        return;
    xd_buf_printf(b, "&%s=", name);
    form_enc(b, value);
}

/* "Authorization: Basic base64(enc(id):enc(secret))" into out; 0 or XD_ENOMEM. */
static int basic_line(const struct xd_oauth *o, struct xd_buf *out)
{
    struct xd_buf pair;
    xd_buf_init(&pair);
    form_enc(&pair, o->cfg->auth.client_id);
    xd_buf_putc(&pair, ':');
    form_enc(&pair, o->secret);
    int rc = XD_ENOMEM;
    size_t cap = 4 * ((pair.len + 2) / 3) + 1;
    unsigned char *b64 = pair.oom ? NULL : malloc(cap);
    if (b64) {
        EVP_EncodeBlock(b64, (const unsigned char *)pair.data, (int)pair.len);
        xd_buf_printf(out, "Authorization: Basic %s", (const char *)b64);
        OPENSSL_cleanse(b64, cap);
        free(b64);
        rc = out->oom ? XD_ENOMEM : 0;
    }
    if (pair.data)
        OPENSSL_cleanse(pair.data, pair.len);
    xd_buf_dispose(&pair);
    return rc;
}

static void wipe(struct xd_buf *b)
{
    if (b->data)
        OPENSSL_cleanse(b->data, b->len);
    xd_buf_dispose(b);
}

struct answer {
    int done;
    long status;
    int xport;
    char error[512];
    struct xd_buf body;
};

static void on_answer(void *user, const struct xd_http_result *res)
{
    struct answer *a = user;
    a->done = 1;
    a->status = res->status;
    a->xport = res->xport;
    snprintf(a->error, sizeof a->error, "%s", res->error ? res->error : "");
    xd_buf_append(&a->body, res->body, res->body_len);
}

/* A token's characters (RFC 6750 b64token, and a little more): printable ASCII, no space. */
static int token_ok(const char *t)
{
    size_t n = strlen(t);
    if (n == 0 || n > TOKEN_MAX)
        return 0;
    for (; *t; t++)
        if (*t <= ' ' || *t >= 0x7f)
            return 0;
    return 1;
}

/*
 * One round trip to the token endpoint. On success *token (caller frees)
 * and *life_s; else a negative xd_err with the reason in why.
 */
static int fetch(struct xd_oauth *o, struct xd_http_client *cl, char **token, long *life_s,
                 struct xd_buf *why)
{
    const struct xd_target_auth *au = &o->cfg->auth;
    struct xd_buf body, auth_line;
    struct answer a = {0};
    int rc = XD_ENOMEM;
    xd_buf_init(&body);
    xd_buf_init(&auth_line);
    xd_buf_init(&a.body);
    xd_buf_puts(&body, "grant_type=client_credentials");
    form_field(&body, "scope", au->scope);
    form_field(&body, "audience", au->audience);
    int basic = !au->client_auth || strcmp(au->client_auth, "body") != 0;
    if (!basic) {
        form_field(&body, "client_id", au->client_id);
        form_field(&body, "client_secret", o->secret);
    } else if (basic_line(o, &auth_line) < 0) {
        goto done;
    }
    if (body.oom)
        goto done;
    const char *headers[3] = {"Content-Type: application/x-www-form-urlencoded",
                              "Accept: application/json", auth_line.data};
    struct xd_http_request req = {
        .method = "POST",
        .url = au->token_url,
        .body = body.data,
        .body_len = body.len,
        .headers = headers,
        .nheaders = basic ? 3 : 2,
        .timeout_ms = o->cfg->timeout_ms,
        .insecure = !o->cfg->tls.verify,
        .ca_file = o->cfg->tls.ca_file,
    };
    rc = xd_http_submit(cl, &req, on_answer, &a);
    if (rc < 0) {
        xd_buf_printf(why, "cannot send: %s", xd_strerror(rc));
        goto done;
    }
    while (!a.done)
        if (xd_http_run(cl, 100) < 0)
            break;
    rc = XD_EAUTH;
    if (!a.done) {
        xd_buf_puts(why, "the HTTP client failed");
        goto done;
    }
    if (a.xport != XD_XPORT_NONE) {
        xd_buf_puts(why, a.error);
        goto done;
    }
    if (a.status != 200) {
        xd_buf_printf(why, "HTTP %ld", a.status);
        if (a.body.len)
            xd_buf_printf(why, ": %.300s", xd_buf_str(&a.body));
        goto done;
    }
    cJSON *j = cJSON_ParseWithLength(a.body.data ? a.body.data : "", a.body.len);
    const cJSON *tok = cJSON_GetObjectItemCaseSensitive(j, "access_token");
    const cJSON *typ = cJSON_GetObjectItemCaseSensitive(j, "token_type");
    const cJSON *exp = cJSON_GetObjectItemCaseSensitive(j, "expires_in");
    if (!cJSON_IsString(tok) || !token_ok(tok->valuestring)) {
        xd_buf_puts(why, "the answer has no usable access_token");
    } else if (typ && (!cJSON_IsString(typ) || strcasecmp(typ->valuestring, "bearer") != 0)) {
        xd_buf_puts(why, "token_type is not Bearer");
    } else if (exp && !(cJSON_IsNumber(exp) && exp->valuedouble >= 1 && exp->valuedouble < 1e9)) {
        xd_buf_puts(why, "expires_in is not a positive number of seconds");
    } else {
        *token = strdup(tok->valuestring);
        *life_s = exp ? (long)exp->valuedouble : DEFAULT_LIFE_S;
        rc = *token ? 0 : XD_ENOMEM;
    }
    if (cJSON_IsString(tok))
        OPENSSL_cleanse(tok->valuestring, strlen(tok->valuestring));
    cJSON_Delete(j);
done:
    wipe(&a.body);
    wipe(&body);
    wipe(&auth_line);
    return rc;
}

/* ---- the fetcher thread ---------------------------------------------------- */

static int needs_token(const struct xd_oauth *o, int64_t now)
{
    return !o->token || now >= o->renew_ms;
}

static void drop_token(struct xd_oauth *o)
{
    if (!o->token)
        return;
    OPENSSL_cleanse(o->token, strlen(o->token));
    free(o->token);
    o->token = NULL;
}

static void wait_until(struct xd_oauth *o, int64_t mono_ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t left = mono_ms - xd_mono_ms();
    if (left > 60000)
        left = 60000;
    if (left < 1)
        left = 1;
    ts.tv_sec += left / 1000;
    ts.tv_nsec += (left % 1000) * 1000000;
    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }
    pthread_cond_timedwait(&o->cv, &o->mu, &ts);
}

static void *fetcher(void *arg)
{
    struct xd_oauth *o = arg;
    struct xd_http_client *cl = NULL;
    struct xd_http_client_opts opts = {.max_connections = 2};
    if (xd_http_client_create(&opts, &cl) < 0)
        xd_error("targets.%s.auth: cannot start the token client", o->cfg->name);
    pthread_mutex_lock(&o->mu);
    while (!o->stop) {
        int64_t now = xd_mono_ms();
        if (!cl || !needs_token(o, now) || now < o->next_try_ms) {
            /* Sleep until the renewal is due, a failed fetch may be tried again, or a signal. */
            int64_t at = !cl ? now + 60000 : needs_token(o, now) ? o->next_try_ms : o->renew_ms;
            wait_until(o, at);
            continue;
        }
        pthread_mutex_unlock(&o->mu);
        char *token = NULL;
        long life = 0;
        struct xd_buf why;
        xd_buf_init(&why);
        int64_t asked = xd_mono_ms();
        int rc = fetch(o, cl, &token, &life, &why);
        pthread_mutex_lock(&o->mu);
        if (rc == 0) {
            xd_redact_add_rotating(token); /* never in a log line or a delivery's error */
            drop_token(o);
            o->token = token;
            o->got_ms = asked;
            int64_t margin = (int64_t)o->cfg->auth.refresh_margin_s * 1000;
            if (margin > life * 500)
                margin = life * 500; /* at most half the lifetime */
            o->expire_ms = asked + life * 1000;
            o->renew_ms = o->expire_ms - margin;
            o->backoff_ms = 0;
            o->next_try_ms = 0;
            xd_info("targets.%s.auth: token fetched, valid %ld s", o->cfg->name, life);
        } else {
            o->backoff_ms = o->backoff_ms ? o->backoff_ms * 2 : RETRY_FIRST_MS;
            if (o->backoff_ms > RETRY_MAX_MS)
                o->backoff_ms = RETRY_MAX_MS;
            o->next_try_ms = xd_mono_ms() + o->backoff_ms;
            xd_warn("targets.%s.auth: no token from %s: %s (trying again in %u s)", o->cfg->name,
                    o->cfg->auth.token_url, xd_buf_str(&why), o->backoff_ms / 1000);
        }
        xd_buf_dispose(&why);
    }
    pthread_mutex_unlock(&o->mu);
    xd_http_client_destroy(cl);
    return NULL;
}

/* ---- the interface --------------------------------------------------------- */

int xd_oauth_create(const struct xd_target *cfg, struct xd_oauth **out, struct xd_buf *err)
{
    *out = NULL;
    const char *env = cfg->auth.client_secret_env;
    const char *secret = env ? getenv(env) : NULL;
    if (!secret || !*secret) {
        if (err)
            xd_buf_printf(err, "targets.%s.auth.client_secret_env: %s is not set\n", cfg->name,
                          env ? env : "(none)");
        return XD_ECONFIG;
    }
    struct xd_oauth *o = calloc(1, sizeof *o);
    if (!o)
        return XD_ENOMEM;
    o->cfg = cfg;
    xd_redact_add(secret);
    o->secret = strdup(secret);
    if (!o->secret) {
        free(o);
        return XD_ENOMEM;
    }
    pthread_mutex_init(&o->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&o->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&o->thread, NULL, fetcher, o) != 0) {
        xd_oauth_destroy(o);
        return XD_ENOMEM;
    }
    o->started = 1;
    *out = o;
    return 0;
}

void xd_oauth_destroy(struct xd_oauth *o)
{
    if (!o)
        return;
    if (o->started) {
        pthread_mutex_lock(&o->mu);
        o->stop = 1;
        pthread_cond_signal(&o->cv);
        pthread_mutex_unlock(&o->mu);
        pthread_join(o->thread, NULL);
    }
    drop_token(o);
    OPENSSL_cleanse(o->secret, strlen(o->secret));
    free(o->secret);
    pthread_cond_destroy(&o->cv);
    pthread_mutex_destroy(&o->mu);
    free(o);
}

int xd_oauth_header(struct xd_oauth *o, char *line, size_t cap)
{
    int rc = XD_EAUTH;
    pthread_mutex_lock(&o->mu);
    int64_t now = xd_mono_ms();
    if (o->token && now < o->expire_ms) {
        int n = snprintf(line, cap, "Authorization: Bearer %s", o->token);
        rc = n > 0 && (size_t)n < cap ? 0 : XD_ETOOBIG;
    }
    if (needs_token(o, now))
        pthread_cond_signal(&o->cv);
    pthread_mutex_unlock(&o->mu);
    return rc;
}

int xd_oauth_ready(struct xd_oauth *o)
{
    pthread_mutex_lock(&o->mu);
    int64_t now = xd_mono_ms();
    int ok = o->token && now < o->expire_ms;
    if (needs_token(o, now))
        pthread_cond_signal(&o->cv);
    pthread_mutex_unlock(&o->mu);
    return ok;
}

void xd_oauth_rejected(struct xd_oauth *o, int64_t sent_ms)
{
    pthread_mutex_lock(&o->mu);
    if (o->token && o->got_ms <= sent_ms) {
        drop_token(o);
        o->next_try_ms = 0; /* fetch at once: this is not the endpoint failing */
        xd_info("targets.%s: answered 401: fetching a new token", o->cfg->name);
        pthread_cond_signal(&o->cv);
    }
    pthread_mutex_unlock(&o->mu);
}
