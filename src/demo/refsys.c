/*
 * Reference ERP and billing endpoints for the demo: what a customer's ERP
 * and billing system would do with crossdock's deliveries, kept in memory so
 * the demo can reconcile against them. It behaves like the Python stand-in
 * the tests use (tests/standin/standin.py): every POST is answered
 * 200 {"ok":true,"ref":"..."} unless it was told to fail.
 *
 * Each path records documents by the id their body carries (the ERP by
 * posting_type:plant:delivery, billing by charge_id) and honours
 * Idempotency-Key the way a careful receiver does: a key seen before gets
 * the first answer again and records nothing. A new key for a document it
 * already has is still answered 200 (the receiver cannot tell a correction
 * from a double posting) but is counted as same_doc: the reconciliation
 * flags it.
 *
 * Failures it can be told to produce: an outage (every POST to a path gets
 * 503 with Retry-After for a while) and a refusal (a body containing a text,
 * like one bad SKU, gets 400 with a reason).
 *
 * GET /_stats answers the counters per path as JSON, for the curious.
 */
#include "demo/demo_int.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/err.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BODY_MAX (1u << 20) /* larger bodies get 413 */
#define ID_MAX   256        /* longest document id recorded */

/* ---- a string -> index map (open addressing, FNV-1a) ---- */

struct smap {
    const char **keys; /* cap slots, NULL when empty; the strings are the records' */
    size_t *vals;
    size_t cap, n;
};

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

/* The slot holding key, or the empty slot where it would go. cap is a power of two. */
static size_t smap_slot(const struct smap *m, const char *key)
{
    size_t i = (size_t)fnv1a(key) & (m->cap - 1);
    while (m->keys[i] && strcmp(m->keys[i], key) != 0)
        i = (i + 1) & (m->cap - 1);
    return i;
}

/* 1 and *val when key is in m. */
static int smap_get(const struct smap *m, const char *key, size_t *val)
{
    if (!m->cap)
        return 0;
    size_t i = smap_slot(m, key);
    if (!m->keys[i])
        return 0;
    *val = m->vals[i];
    return 1;
}

/* Makes room for one more key (a load of at most 70%). 0 or XD_ENOMEM. */
static int smap_reserve(struct smap *m)
{
    if ((m->n + 1) * 10 <= m->cap * 7)
        return 0;
    size_t cap = m->cap ? m->cap * 2 : 256;
    struct smap g = {.keys = calloc(cap, sizeof *g.keys),
                     .vals = calloc(cap, sizeof *g.vals),
                     .cap = cap,
                     .n = m->n};
    if (!g.keys || !g.vals) {
        free(g.keys);
        free(g.vals);
        return XD_ENOMEM;
    }
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->keys[i])
            continue;
        size_t j = smap_slot(&g, m->keys[i]);
        g.keys[j] = m->keys[i];
        g.vals[j] = m->vals[i];
    }
    free(m->keys);
    free(m->vals);
    *m = g;
    return 0;
}

/* Adds key -> val: key is not in m, outlives it, and smap_reserve() made room. */
static void smap_put(struct smap *m, const char *key, size_t val)
{
    size_t i = smap_slot(m, key);
    m->keys[i] = key;
    m->vals[i] = val;
    m->n++;
}

static void smap_dispose(struct smap *m)
{
    free(m->keys);
    free(m->vals);
}

/* ---- endpoints ---- */

struct rec {
    char *id, *key, *ref, *body;
    unsigned times;
};

/* One path the reference systems serve: how its documents are named, what it has. */
struct endpoint {
    const char *path;
    const char *prefix;       /* of its references: "ERP" -> "ERP-000042" */
    const char *id_fields[3]; /* body fields whose values, joined by ':', name a document */
    struct rec *recs;         /* in arrival order */
    size_t nrecs, caprecs;
    struct smap by_id, by_key; /* -> index in recs */
    struct xd_refsys_counts counts;
    int64_t outage_until_ms; /* mono ms; 0 = none */
    int outage_status;
    char *refuse_match, *refuse_reason;
    int refuse_status;
    char *drop_match; /* answered 200 and not recorded (xd_refsys_drop) */
};

struct xd_refsys {
    struct MHD_Daemon *daemon;
    unsigned short port;
    pthread_mutex_t mu; /* guards the endpoints */
    struct endpoint ep[2];
};

static struct endpoint *endpoint_of(struct xd_refsys *r, const char *path)
{
    for (size_t i = 0; i < sizeof r->ep / sizeof r->ep[0]; i++)
        if (strcmp(r->ep[i].path, path) == 0)
            return &r->ep[i];
    return NULL;
}

/* The document id from body's id fields into id[ID_MAX]; 0, or -1 when one is missing. */
static int doc_id(const struct endpoint *e, const cJSON *body, char *id)
{
    size_t len = 0;
    id[0] = '\0';
    for (size_t i = 0; i < 3 && e->id_fields[i]; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, e->id_fields[i]);
        if (!cJSON_IsString(v) || !v->valuestring[0])
            return -1;
        int n = snprintf(id + len, ID_MAX - len, "%s%s", i ? ":" : "", v->valuestring);
        if (n < 0 || (size_t)n >= ID_MAX - len)
            return -1;
        len += (size_t)n;
    }
    return 0;
}

/* The answer to one POST, decided under the lock. */
struct answer {
    int status;
    char text[400];
    int retry_after;
};

static void say(struct answer *a, int status, const char *fmt, const char *arg)
{
    a->status = status;
    char msg[300];
    snprintf(msg, sizeof msg, fmt, arg);
    struct xd_buf b;
    xd_buf_init(&b);
    xd_buf_puts(&b, "{\"error\":");
    xd_buf_json_str(&b, msg);
    xd_buf_putc(&b, '}');
    snprintf(a->text, sizeof a->text, "%s", xd_buf_str(&b));
    xd_buf_dispose(&b);
}

/* Records (or recognises) one document; fills the answer. Called with r->mu held. */
static void receive(struct endpoint *e, const char *key, const char *body, size_t len,
                    struct answer *a)
{
    e->counts.requests++;
    if (e->outage_until_ms && xd_mono_ms() < e->outage_until_ms) {
        e->counts.outage++;
        a->retry_after = 1;
        say(a, e->outage_status, "%s is unavailable (maintenance window)", e->path);
        return;
    }
    if (e->refuse_match && strstr(body, e->refuse_match)) {
        e->counts.refused++;
        say(a, e->refuse_status, "%s", e->refuse_reason);
        return;
    }
    if (e->drop_match && strstr(body, e->drop_match)) {
        /* Lost after a 200: the hub cannot tell; only reconciliation against an export can. */
        e->counts.dropped++;
        a->status = 200;
        snprintf(a->text, sizeof a->text, "{\"ok\":true,\"ref\":\"%s-X%06llu\"}", e->prefix,
                 (unsigned long long)e->counts.dropped);
        return;
    }
    size_t i;
    if (key && *key && smap_get(&e->by_key, key, &i)) {
        /* A retry of a request already answered: the same answer, nothing new. */
        e->counts.same_key++;
        e->recs[i].times++;
        a->status = 200;
        snprintf(a->text, sizeof a->text, "{\"ok\":true,\"ref\":\"%s\",\"replayed\":true}",
                 e->recs[i].ref);
        return;
    }
    cJSON *doc = cJSON_ParseWithLength(body, len);
    char id[ID_MAX];
    int bad = !cJSON_IsObject(doc) || doc_id(e, doc, id) < 0;
    cJSON_Delete(doc);
    if (bad) {
        e->counts.bad++;
        say(a, 400, "%s", "not a document this endpoint knows (JSON with its id fields)");
        return;
    }
    if (smap_get(&e->by_id, id, &i)) {
        e->counts.same_doc++;
        e->recs[i].times++;
        a->status = 200;
        snprintf(a->text, sizeof a->text, "{\"ok\":true,\"ref\":\"%s\"}", e->recs[i].ref);
        return;
    }
    if (e->nrecs == e->caprecs) {
        size_t cap = e->caprecs ? e->caprecs * 2 : 1024;
        struct rec *nr = realloc(e->recs, cap * sizeof *nr);
        if (!nr)
            goto oom;
        e->recs = nr;
        e->caprecs = cap;
    }
    if (smap_reserve(&e->by_id) < 0 || smap_reserve(&e->by_key) < 0)
        goto oom;
    char ref[32];
    snprintf(ref, sizeof ref, "%s-%06zu", e->prefix, e->nrecs + 1);
    struct rec *rc = &e->recs[e->nrecs];
    *rc = (struct rec){.id = strdup(id),
                       .key = strdup(key ? key : ""),
                       .ref = strdup(ref),
                       .body = strndup(body, len),
                       .times = 1};
    if (!rc->id || !rc->key || !rc->ref || !rc->body) {
        free(rc->id), free(rc->key), free(rc->ref), free(rc->body);
        goto oom;
    }
    smap_put(&e->by_id, rc->id, e->nrecs);
    if (rc->key[0])
        smap_put(&e->by_key, rc->key, e->nrecs);
    e->nrecs++;
    e->counts.recorded++;
    a->status = 200;
    snprintf(a->text, sizeof a->text, "{\"ok\":true,\"ref\":\"%s\"}", ref);
    return;
oom:
    say(a, 500, "%s", "out of memory");
}

/* ---- HTTP ---- */

static enum MHD_Result reply(struct MHD_Connection *conn, int status, const char *json,
                             int retry_after)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(json), (void *)json, MHD_RESPMEM_MUST_COPY);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    if (retry_after) {
        char ra[16];
        snprintf(ra, sizeof ra, "%d", retry_after);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, ra);
    }
    enum MHD_Result ok = MHD_queue_response(conn, (unsigned)status, resp);
    MHD_destroy_response(resp);
    return ok;
}

static void stats_json(struct xd_refsys *r, struct xd_buf *o)
{
    xd_buf_putc(o, '{');
    pthread_mutex_lock(&r->mu);
    for (size_t i = 0; i < sizeof r->ep / sizeof r->ep[0]; i++) {
        const struct xd_refsys_counts *c = &r->ep[i].counts;
        xd_buf_printf(o,
                      "%s\"%s\":{\"requests\":%llu,\"recorded\":%llu,\"same_key\":%llu,"
                      "\"same_doc\":%llu,\"outage\":%llu,\"refused\":%llu,\"bad\":%llu,"
                      "\"dropped\":%llu}",
                      i ? "," : "", r->ep[i].path, (unsigned long long)c->requests,
                      (unsigned long long)c->recorded, (unsigned long long)c->same_key,
                      (unsigned long long)c->same_doc, (unsigned long long)c->outage,
                      (unsigned long long)c->refused, (unsigned long long)c->bad,
                      (unsigned long long)c->dropped);
    }
    pthread_mutex_unlock(&r->mu);
    xd_buf_putc(o, '}');
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
    (void)version;
    struct xd_refsys *r = cls;
    struct xd_buf *body = *con_cls;
    if (!body) { /* first call: headers only */
        body = calloc(1, sizeof *body);
        if (!body)
            return MHD_NO;
        xd_buf_init(body);
        *con_cls = body;
        return MHD_YES;
    }
    if (*upload_size) {
        if (body->len + *upload_size <= BODY_MAX)
            xd_buf_append(body, upload, *upload_size);
        else
            body->oom = 1; /* marks "too large" */
        *upload_size = 0;
        return MHD_YES;
    }
    if (strcmp(method, "GET") == 0) {
        if (strcmp(url, "/_stats") == 0) {
            struct xd_buf o;
            xd_buf_init(&o);
            stats_json(r, &o);
            enum MHD_Result ok = reply(conn, 200, xd_buf_str(&o), 0);
            xd_buf_dispose(&o);
            return ok;
        }
        if (strcmp(url, "/healthz") == 0)
            return reply(conn, 200, "{\"ok\":true}", 0);
        return reply(conn, 404, "{\"error\":\"not found\"}", 0);
    }
    if (strcmp(method, "POST") != 0 && strcmp(method, "PUT") != 0)
        return reply(conn, 405, "{\"error\":\"method not allowed\"}", 0);
    if (body->oom)
        return reply(conn, 413, "{\"error\":\"body too large\"}", 0);
    const char *key = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Idempotency-Key");
    struct answer a = {.status = 404};
    snprintf(a.text, sizeof a.text, "{\"error\":\"not found\"}");
    pthread_mutex_lock(&r->mu);
    struct endpoint *e = endpoint_of(r, url);
    if (e)
        receive(e, key, xd_buf_str(body), body->len, &a);
    pthread_mutex_unlock(&r->mu);
    return reply(conn, a.status, a.text, a.retry_after);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls, (void)conn, (void)toe;
    struct xd_buf *body = *con_cls;
    if (body) {
        xd_buf_dispose(body);
        free(body);
        *con_cls = NULL;
    }
}

/* ---- the public face ---- */

int xd_refsys_start(struct xd_refsys **out, struct xd_buf *err)
{
    *out = NULL;
    struct xd_refsys *r = calloc(1, sizeof *r);
    if (!r)
        return XD_ENOMEM;
    pthread_mutex_init(&r->mu, NULL);
    r->ep[0] = (struct endpoint){
        .path = XD_REFSYS_ERP, .prefix = "ERP", .id_fields = {"posting_type", "plant", "delivery"}};
    r->ep[1] =
        (struct endpoint){.path = XD_REFSYS_BILLING, .prefix = "INV", .id_fields = {"charge_id"}};
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    r->daemon = MHD_start_daemon(
        MHD_USE_AUTO_INTERNAL_THREAD, 0, NULL, NULL, on_request, r, MHD_OPTION_SOCK_ADDR,
        (struct sockaddr *)&sa, MHD_OPTION_THREAD_POOL_SIZE, 4u, MHD_OPTION_NOTIFY_COMPLETED,
        on_completed, r, MHD_OPTION_CONNECTION_TIMEOUT, 30u, MHD_OPTION_END);
    if (!r->daemon) {
        if (err)
            xd_buf_puts(err, "reference systems: cannot listen on 127.0.0.1");
        xd_refsys_stop(r);
        return XD_EIO;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(r->daemon, MHD_DAEMON_INFO_BIND_PORT);
    r->port = info ? info->port : 0;
    *out = r;
    return 0;
}

unsigned short xd_refsys_port(const struct xd_refsys *r)
{
    return r->port;
}

void xd_refsys_stop(struct xd_refsys *r)
{
    if (!r)
        return;
    if (r->daemon)
        MHD_stop_daemon(r->daemon);
    for (size_t i = 0; i < sizeof r->ep / sizeof r->ep[0]; i++) {
        struct endpoint *e = &r->ep[i];
        for (size_t j = 0; j < e->nrecs; j++) {
            free(e->recs[j].id);
            free(e->recs[j].key);
            free(e->recs[j].ref);
            free(e->recs[j].body);
        }
        free(e->recs);
        smap_dispose(&e->by_id);
        smap_dispose(&e->by_key);
        free(e->refuse_match);
        free(e->refuse_reason);
        free(e->drop_match);
    }
    pthread_mutex_destroy(&r->mu);
    free(r);
}

void xd_refsys_outage(struct xd_refsys *r, const char *path, int status, unsigned ms)
{
    pthread_mutex_lock(&r->mu);
    struct endpoint *e = endpoint_of(r, path);
    if (e) {
        e->outage_until_ms = xd_mono_ms() + ms;
        e->outage_status = status;
    }
    pthread_mutex_unlock(&r->mu);
}

int xd_refsys_in_outage(struct xd_refsys *r, const char *path)
{
    pthread_mutex_lock(&r->mu);
    struct endpoint *e = endpoint_of(r, path);
    int on = e && e->outage_until_ms && xd_mono_ms() < e->outage_until_ms;
    pthread_mutex_unlock(&r->mu);
    return on;
}

void xd_refsys_refuse(struct xd_refsys *r, const char *path, const char *match, int status,
                      const char *reason)
{
    pthread_mutex_lock(&r->mu);
    struct endpoint *e = endpoint_of(r, path);
    if (e) {
        free(e->refuse_match);
        free(e->refuse_reason);
        e->refuse_match = strdup(match);
        e->refuse_reason = strdup(reason);
        e->refuse_status = status;
    }
    pthread_mutex_unlock(&r->mu);
}

void xd_refsys_counts(struct xd_refsys *r, const char *path, struct xd_refsys_counts *out)
{
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&r->mu);
    struct endpoint *e = endpoint_of(r, path);
    if (e)
        *out = e->counts;
    pthread_mutex_unlock(&r->mu);
}

unsigned xd_refsys_seen(struct xd_refsys *r, const char *path, const char *id)
{
    unsigned n = 0;
    size_t i;
    pthread_mutex_lock(&r->mu);
    struct endpoint *e = endpoint_of(r, path);
    if (e && smap_get(&e->by_id, id, &i))
        n = e->recs[i].times;
    pthread_mutex_unlock(&r->mu);
    return n;
}

void xd_refsys_each(struct xd_refsys *r, const char *path,
                    void (*cb)(void *ctx, const struct xd_refsys_rec *rec), void *ctx)
{
    pthread_mutex_lock(&r->mu);
    struct endpoint *e = endpoint_of(r, path);
    for (size_t i = 0; e && i < e->nrecs; i++) {
        const struct rec *s = &e->recs[i];
        struct xd_refsys_rec rec = {
            .id = s->id, .key = s->key, .ref = s->ref, .body = s->body, .times = s->times};
        cb(ctx, &rec);
    }
    pthread_mutex_unlock(&r->mu);
}

void xd_refsys_drop(struct xd_refsys *r, const char *path, const char *match)
{
    pthread_mutex_lock(&r->mu);
    struct endpoint *e = endpoint_of(r, path);
    if (e) {
        free(e->drop_match);
        e->drop_match = strdup(match);
    }
    pthread_mutex_unlock(&r->mu);
}
