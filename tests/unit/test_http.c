/*
 * The HTTP client against real servers on loopback, started inside the
 * test: libmicrohttpd with a thread per connection (so a slow answer blocks
 * only its own connection), once in plain HTTP and once with TLS and a
 * self-signed certificate made here with libcrypto. The server records what
 * it received (method, headers, body) and counts the connections it
 * accepted, which is how keep-alive reuse is checked.
 *
 * Paths: /ok (200 "ok"), /busy (503 with Retry-After: 7), /slow (answers
 * after a second), /big (200 with 10,000 bytes), /status/NNN (that status;
 * 301 carries a Location that must not be followed).
 *
 * Nothing asserts on timing: the timeout test checks the error kind only.
 * Where a test could hang if the client were broken, a generous deadline
 * turns the hang into a failure.
 *
 * Also here: the traceparent helper (trace.h) and HTTP targets built from
 * the configuration (target.h: bearer token from the environment, constant
 * headers, the derived Idempotency-Key), which produce the headers these
 * requests carry.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/err.h"
#include "deliver/http.h"
#include "deliver/rand.h"
#include "deliver/target.h"
#include "core/buf.h"
#include "core/config.h"
#include "deliver/trace.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* ---- the test server ------------------------------------------------------ */

struct srv {
    struct MHD_Daemon *d;
    unsigned short port;
    atomic_int connections; /* accepted since the last reset */
    atomic_int requests;    /* answered since the last reset */
    atomic_int stop;        /* ends /slow early at teardown */
    pthread_mutex_t mu;     /* guards the last_* fields */
    char method[16];
    char idem[128], trace[128], ctype[128], auth[128], custom[128], expect[64];
    unsigned char *body;
    size_t body_len;
};

struct srv_req {
    unsigned char *body;
    size_t len, cap;
};

static void on_conn(void *cls, struct MHD_Connection *c, void **socket_ctx,
                    enum MHD_ConnectionNotificationCode code)
{
    struct srv *s = cls;
    (void)c;
    (void)socket_ctx;
    if (code == MHD_CONNECTION_NOTIFY_STARTED)
        atomic_fetch_add(&s->connections, 1);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct srv_req *r = *req_cls;
    (void)cls;
    (void)c;
    (void)toe;
    if (r) {
        free(r->body);
        free(r);
        *req_cls = NULL;
    }
}

static void copy_header(struct MHD_Connection *c, const char *name, char *out, size_t cap)
{
    const char *v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
    snprintf(out, cap, "%s", v ? v : "");
}

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const char *body,
                             size_t len, const char *hname, const char *hvalue)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    if (!resp)
        return MHD_NO;
    if (hname)
        MHD_add_response_header(resp, hname, hvalue);
    enum MHD_Result rc = MHD_queue_response(c, status, resp);
    MHD_destroy_response(resp);
    return rc;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **req_cls)
{
    struct srv *s = cls;
    struct srv_req *r = *req_cls;
    (void)version;
    if (!r) {
        r = calloc(1, sizeof *r);
        if (!r)
            return MHD_NO;
        *req_cls = r;
        return MHD_YES;
    }
    if (*upload_size) {
        if (r->len + *upload_size > r->cap) {
            size_t cap = (r->len + *upload_size) * 2;
            unsigned char *p = realloc(r->body, cap);
            if (!p)
                return MHD_NO;
            r->body = p;
            r->cap = cap;
        }
        memcpy(r->body + r->len, upload, *upload_size);
        r->len += *upload_size;
        *upload_size = 0;
        return MHD_YES;
    }

    pthread_mutex_lock(&s->mu);
    snprintf(s->method, sizeof s->method, "%s", method);
    copy_header(c, "Idempotency-Key", s->idem, sizeof s->idem);
    copy_header(c, "traceparent", s->trace, sizeof s->trace);
    copy_header(c, "Content-Type", s->ctype, sizeof s->ctype);
    copy_header(c, "Authorization", s->auth, sizeof s->auth);
    copy_header(c, "X-Custom", s->custom, sizeof s->custom);
    copy_header(c, "Expect", s->expect, sizeof s->expect);
    free(s->body);
    s->body = r->body;
    s->body_len = r->len;
    r->body = NULL;
    r->len = r->cap = 0;
    pthread_mutex_unlock(&s->mu);
    atomic_fetch_add(&s->requests, 1);

    if (strcmp(url, "/busy") == 0)
        return reply(c, 503, "busy", 4, "Retry-After", "7");
    if (strcmp(url, "/slow") == 0) {
        for (int i = 0; i < 100 && !atomic_load(&s->stop); i++)
            usleep(10000);
        return reply(c, 200, "late", 4, NULL, NULL);
    }
    if (strcmp(url, "/big") == 0) {
        static char big[10000];
        memset(big, 'b', sizeof big);
        return reply(c, 200, big, sizeof big, NULL, NULL);
    }
    if (strncmp(url, "/status/", 8) == 0) {
        unsigned st = (unsigned)atoi(url + 8);
        return reply(c, st, "status", 6, st == 301 ? "Location" : NULL, "/ok");
    }
    return reply(c, 200, "ok", 2, NULL, NULL);
}

static int srv_start(struct srv *s, const char *key_pem, const char *cert_pem)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    memset(s, 0, sizeof *s);
    pthread_mutex_init(&s->mu, NULL);
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD;
    if (key_pem)
        s->d = MHD_start_daemon(
            flags | MHD_USE_TLS, 0, NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR,
            (struct sockaddr *)&sa, MHD_OPTION_NOTIFY_CONNECTION, on_conn, s,
            MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_HTTPS_MEM_KEY, key_pem,
            MHD_OPTION_HTTPS_MEM_CERT, cert_pem, MHD_OPTION_END);
    else
        s->d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR,
                                (struct sockaddr *)&sa, MHD_OPTION_NOTIFY_CONNECTION, on_conn, s,
                                MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_END);
    if (!s->d)
        return -1;
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info ? info->port : 0;
    return s->port ? 0 : -1;
}

static void srv_stop(struct srv *s)
{
    atomic_store(&s->stop, 1);
    if (s->d)
        MHD_stop_daemon(s->d);
    free(s->body);
    pthread_mutex_destroy(&s->mu);
}

static void srv_reset(struct srv *s)
{
    atomic_store(&s->connections, 0);
    atomic_store(&s->requests, 0);
}

/* A port nothing listens on: bound by us, then closed. */
static unsigned short closed_port(void)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
    socklen_t len = sizeof sa;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    close(fd);
    return ntohs(sa.sin_port);
}

/* ---- a self-signed certificate for 127.0.0.1 -------------------------------- */

struct cert {
    char *key_pem;
    char *cert_pem;
    char path[64]; /* cert_pem written to a file, for ca_file */
};

static char *bio_string(BIO *b)
{
    char *data;
    long n = BIO_get_mem_data(b, &data);
    char *s = malloc((size_t)n + 1);
    if (s) {
        memcpy(s, data, (size_t)n);
        s[n] = '\0';
    }
    return s;
}

static int make_cert(struct cert *c)
{
    int rc = -1;
    EVP_PKEY *pk = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    BIO *kb = BIO_new(BIO_s_mem()), *cb = BIO_new(BIO_s_mem());
    X509V3_CTX ctx;
    if (!pk || !x || !kb || !cb)
        goto done;
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_set_pubkey(x, pk);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"127.0.0.1", -1, -1,
                               0);
    X509_set_issuer_name(x, name);
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
    static const struct {
        int nid;
        const char *value;
    } exts[] = {{NID_subject_alt_name, "IP:127.0.0.1"},
                {NID_basic_constraints, "critical,CA:TRUE"}};
    for (size_t i = 0; i < 2; i++) {
        X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &ctx, exts[i].nid, exts[i].value);
        if (!e)
            goto done;
        X509_add_ext(x, e, -1);
        X509_EXTENSION_free(e);
    }
    if (!X509_sign(x, pk, EVP_sha256()) ||
        !PEM_write_bio_PrivateKey(kb, pk, NULL, NULL, 0, NULL, NULL) || !PEM_write_bio_X509(cb, x))
        goto done;
    c->key_pem = bio_string(kb);
    c->cert_pem = bio_string(cb);
    snprintf(c->path, sizeof c->path, "/tmp/xd-test-ca-XXXXXX");
    int fd = mkstemp(c->path);
    if (fd < 0 || !c->key_pem || !c->cert_pem)
        goto done;
    size_t n = strlen(c->cert_pem);
    rc = write(fd, c->cert_pem, n) == (ssize_t)n ? 0 : -1;
    close(fd);
done:
    BIO_free(kb);
    BIO_free(cb);
    X509_free(x);
    EVP_PKEY_free(pk);
    return rc;
}

/* ---- fixtures --------------------------------------------------------------- */

static struct srv plain, tls;
static struct cert cert;

static int group_setup(void **state)
{
    (void)state;
    if (srv_start(&plain, NULL, NULL) < 0)
        return -1;
    if (make_cert(&cert) < 0 || srv_start(&tls, cert.key_pem, cert.cert_pem) < 0)
        return -1;
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    srv_stop(&plain);
    srv_stop(&tls);
    if (cert.path[0])
        unlink(cert.path);
    free(cert.key_pem);
    free(cert.cert_pem);
    return 0;
}

/* What a done callback saw, copied out of the result. */
struct got {
    int calls;
    long status;
    int xport;
    enum xd_outcome outcome;
    char cls[32];
    char error[512];
    int has_retry_after;
    char retry_after[128];
    char body[XD_HTTP_BODY_KEEP + 1];
    size_t body_len;
    int truncated;
    unsigned new_connections;
};

static void on_done(void *user, const struct xd_http_result *r)
{
    struct got *g = user;
    g->calls++;
    g->status = r->status;
    g->xport = r->xport;
    g->outcome = r->outcome;
    snprintf(g->cls, sizeof g->cls, "%s", r->error_class);
    snprintf(g->error, sizeof g->error, "%s", r->error);
    g->has_retry_after = r->retry_after != NULL;
    snprintf(g->retry_after, sizeof g->retry_after, "%s", r->retry_after ? r->retry_after : "");
    memcpy(g->body, r->body, r->body_len + 1);
    g->body_len = r->body_len;
    g->truncated = r->body_truncated;
    g->new_connections = r->new_connections;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Runs the client until *calls reaches want; a hang becomes a failure after 60 s. */
static void run_until(struct xd_http_client *cl, const int *calls, int want)
{
    double deadline = now_s() + 60;
    while (*calls < want) {
        assert_true(xd_http_run(cl, 100) >= 0);
        assert_true(now_s() < deadline);
    }
}

static struct xd_http_client *client(unsigned max_conns)
{
    struct xd_http_client_opts o = {.max_connections = max_conns, .proxy = ""};
    struct xd_http_client *cl = NULL;
    assert_int_equal(xd_http_client_create(&o, &cl), 0);
    assert_non_null(cl);
    return cl;
}

static void url(char *out, size_t cap, const struct srv *s, const char *path)
{
    snprintf(out, cap, "%s://127.0.0.1:%u%s", s == &tls ? "https" : "http", s->port, path);
}

/* One request, run to its end. */
static void request(struct xd_http_client *cl, const struct xd_http_request *req, struct got *g)
{
    memset(g, 0, sizeof *g);
    assert_int_equal(xd_http_submit(cl, req, on_done, g), 0);
    run_until(cl, &g->calls, 1);
    assert_int_equal(g->calls, 1);
}

/* ---- tests ------------------------------------------------------------------ */

/* 200: the custom headers arrive, the body arrives byte for byte (NULs included). */
static void test_ok_headers_and_body(void **state)
{
    (void)state;
    char u[128], tp[XD_TRACEPARENT_LEN + 1];
    size_t len = 100000;
    unsigned char *body = malloc(len);
    assert_non_null(body);
    for (size_t i = 0; i < len; i++)
        body[i] = (unsigned char)(i * 7 + i / 251);
    struct xd_trace t;
    xd_trace_new(&t, xd_rand64, NULL);
    xd_trace_format(&t, tp);
    char tph[96];
    snprintf(tph, sizeof tph, "traceparent: %s", tp);
    const char *hdrs[] = {"Idempotency-Key: 5f0c-shipment-42", tph, "Authorization: Bearer s3cret",
                          "X-Custom: plant 1000"};
    url(u, sizeof u, &plain, "/ok");
    struct xd_http_request req = {.url = u,
                                  .body = body,
                                  .body_len = len,
                                  .headers = hdrs,
                                  .nheaders = 4,
                                  .timeout_ms = 5000};
    struct xd_http_client *cl = client(4);
    struct got g;
    request(cl, &req, &g);
    assert_int_equal(g.status, 200);
    assert_int_equal(g.xport, XD_XPORT_NONE);
    assert_int_equal(g.outcome, XD_OUT_OK);
    assert_string_equal(g.cls, "ok");
    assert_string_equal(g.error, "");
    assert_string_equal(g.body, "ok");
    assert_int_equal(g.body_len, 2);
    assert_false(g.has_retry_after);
    assert_int_equal(g.new_connections, 1);

    pthread_mutex_lock(&plain.mu);
    assert_string_equal(plain.method, "POST");
    assert_string_equal(plain.idem, "5f0c-shipment-42");
    assert_string_equal(plain.trace, tp);
    assert_string_equal(plain.ctype, "application/json"); /* added when not given */
    assert_string_equal(plain.auth, "Bearer s3cret");
    assert_string_equal(plain.custom, "plant 1000");
    assert_string_equal(plain.expect, ""); /* no 100-continue for a 100 kB body */
    assert_int_equal(plain.body_len, len);
    assert_memory_equal(plain.body, body, len);
    pthread_mutex_unlock(&plain.mu);
    xd_http_client_destroy(cl);
    free(body);
}

/* A given Content-Type wins; PUT and GET are sent as such; an empty POST has an empty body. */
static void test_methods_and_content_type(void **state)
{
    (void)state;
    char u[128];
    const char *hdrs[] = {"content-type: text/csv"};
    url(u, sizeof u, &plain, "/ok");
    struct xd_http_client *cl = client(4);
    struct got g;
    struct xd_http_request req = {
        .method = "PUT", .url = u, .body = "a,b\n", .body_len = 4, .headers = hdrs, .nheaders = 1};
    request(cl, &req, &g);
    assert_int_equal(g.status, 200);
    pthread_mutex_lock(&plain.mu);
    assert_string_equal(plain.method, "PUT");
    assert_string_equal(plain.ctype, "text/csv");
    assert_int_equal(plain.body_len, 4);
    pthread_mutex_unlock(&plain.mu);

    struct xd_http_request get = {.method = "GET", .url = u};
    request(cl, &get, &g);
    assert_int_equal(g.status, 200);
    pthread_mutex_lock(&plain.mu);
    assert_string_equal(plain.method, "GET");
    assert_int_equal(plain.body_len, 0);
    pthread_mutex_unlock(&plain.mu);

    struct xd_http_request empty = {.url = u}; /* POST, no body */
    request(cl, &empty, &g);
    assert_int_equal(g.status, 200);
    pthread_mutex_lock(&plain.mu);
    assert_string_equal(plain.method, "POST");
    assert_int_equal(plain.body_len, 0);
    pthread_mutex_unlock(&plain.mu);
    xd_http_client_destroy(cl);
}

/* Sequential requests share one kept-alive connection. */
static void test_keepalive_reuse(void **state)
{
    (void)state;
    enum { N = 20 };
    char u[128];
    url(u, sizeof u, &plain, "/ok");
    srv_reset(&plain);
    struct xd_http_client *cl = client(4);
    unsigned reused = 0;
    for (int i = 0; i < N; i++) {
        struct got g;
        struct xd_http_request req = {.url = u, .body = "{}", .body_len = 2};
        request(cl, &req, &g);
        assert_int_equal(g.status, 200);
        reused += g.new_connections == 0;
    }
    assert_int_equal(atomic_load(&plain.requests), N);
    assert_true(atomic_load(&plain.connections) < N);
    assert_int_equal(atomic_load(&plain.connections), 1);
    assert_int_equal(reused, N - 1);
    xd_http_client_destroy(cl);
}

/* 503 with Retry-After: RETRY, the header and the body surfaced. */
static void test_503_retry_after(void **state)
{
    (void)state;
    char u[128];
    url(u, sizeof u, &plain, "/busy");
    struct xd_http_client *cl = client(4);
    struct got g;
    struct xd_http_request req = {.url = u, .body = "{}", .body_len = 2};
    request(cl, &req, &g);
    assert_int_equal(g.status, 503);
    assert_int_equal(g.xport, XD_XPORT_NONE);
    assert_int_equal(g.outcome, XD_OUT_RETRY);
    assert_string_equal(g.cls, "http_5xx");
    assert_true(g.has_retry_after);
    assert_string_equal(g.retry_after, "7");
    assert_string_equal(g.body, "busy");
    xd_http_client_destroy(cl);
}

/* Statuses reach the classifier as they are; a 301 is not followed. */
static void test_statuses(void **state)
{
    (void)state;
    static const struct {
        const char *path;
        long status;
        enum xd_outcome out;
        const char *cls;
    } cases[] = {
        {"/status/404", 404, XD_OUT_FAIL, "http_4xx"},
        {"/status/422", 422, XD_OUT_FAIL, "http_4xx"},
        {"/status/429", 429, XD_OUT_RETRY, "http_429"},
        {"/status/408", 408, XD_OUT_RETRY, "http_4xx"},
        {"/status/500", 500, XD_OUT_RETRY, "http_5xx"},
        {"/status/301", 301, XD_OUT_FAIL, "http_3xx"},
        {"/status/204", 204, XD_OUT_OK, "ok"},
    };
    struct xd_http_client *cl = client(4);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char u[128];
        struct got g;
        url(u, sizeof u, &plain, cases[i].path);
        struct xd_http_request req = {.url = u, .body = "{}", .body_len = 2};
        request(cl, &req, &g);
        assert_int_equal(g.status, cases[i].status);
        assert_int_equal(g.outcome, cases[i].out);
        assert_string_equal(g.cls, cases[i].cls);
    }
    xd_http_client_destroy(cl);
}

/* Only the first XD_HTTP_BODY_KEEP bytes of an answer are kept. */
static void test_body_truncated(void **state)
{
    (void)state;
    char u[128];
    url(u, sizeof u, &plain, "/big");
    struct xd_http_client *cl = client(4);
    struct got g;
    struct xd_http_request req = {.method = "GET", .url = u};
    request(cl, &req, &g);
    assert_int_equal(g.status, 200);
    assert_int_equal(g.body_len, XD_HTTP_BODY_KEEP);
    assert_true(g.truncated);
    assert_int_equal(g.body[XD_HTTP_BODY_KEEP - 1], 'b');
    assert_int_equal(g.body[XD_HTTP_BODY_KEEP], '\0');
    xd_http_client_destroy(cl);
}

/* Nothing listening: a connect error naming the address and the reason. */
static void test_connection_refused(void **state)
{
    (void)state;
    char u[128], want[128];
    unsigned short port = closed_port();
    snprintf(u, sizeof u, "http://127.0.0.1:%u/ok", port);
    snprintf(want, sizeof want, "connect to 127.0.0.1:%u failed: Connection refused", port);
    struct xd_http_client *cl = client(4);
    struct got g;
    struct xd_http_request req = {.url = u, .body = "{}", .body_len = 2};
    request(cl, &req, &g);
    assert_int_equal(g.status, 0);
    assert_int_equal(g.xport, XD_XPORT_CONNECT);
    assert_int_equal(g.outcome, XD_OUT_RETRY);
    assert_string_equal(g.cls, "connect");
    assert_string_equal(g.error, want);
    xd_http_client_destroy(cl);
}

/* The server answers after timeout_ms: a timeout (the kind only, no clock). */
static void test_timeout(void **state)
{
    (void)state;
    char u[128];
    url(u, sizeof u, &plain, "/slow");
    struct xd_http_client *cl = client(4);
    struct got g;
    struct xd_http_request req = {.url = u, .body = "{}", .body_len = 2, .timeout_ms = 200};
    request(cl, &req, &g);
    assert_int_equal(g.xport, XD_XPORT_TIMEOUT);
    assert_int_equal(g.outcome, XD_OUT_RETRY);
    assert_string_equal(g.cls, "timeout");
    assert_string_equal(g.error, "timed out after 200 ms");
    xd_http_client_destroy(cl);
}

/* 200 requests at once over at most 16 connections: all answered. */
static void test_parallel_200(void **state)
{
    (void)state;
    enum { N = 200, CONNS = 16 };
    char u[128];
    url(u, sizeof u, &plain, "/ok");
    srv_reset(&plain);
    struct xd_http_client *cl = client(CONNS);
    static struct got g[N];
    int calls = 0;
    memset(g, 0, sizeof g);
    for (int i = 0; i < N; i++) {
        char key[64], body[64];
        snprintf(key, sizeof key, "Idempotency-Key: k-%d", i);
        snprintf(body, sizeof body, "{\"n\":%d}", i);
        const char *hdrs[] = {key};
        struct xd_http_request req = {
            .url = u, .body = body, .body_len = strlen(body), .headers = hdrs, .nheaders = 1};
        /* The request's memory is ours again as soon as submit returns. */
        assert_int_equal(xd_http_submit(cl, &req, on_done, &g[i]), 0);
    }
    assert_int_equal(xd_http_inflight(cl), N);
    double deadline = now_s() + 60;
    while (xd_http_inflight(cl) > 0) {
        int n = xd_http_run(cl, 100);
        assert_true(n >= 0);
        calls += n;
        assert_true(now_s() < deadline);
    }
    assert_int_equal(calls, N);
    for (int i = 0; i < N; i++) {
        assert_int_equal(g[i].calls, 1);
        assert_int_equal(g[i].status, 200);
    }
    assert_int_equal(atomic_load(&plain.requests), N);
    assert_true(atomic_load(&plain.connections) <= CONNS);
    xd_http_client_destroy(cl);
}

/* A callback may submit the next request (a chain of 10). */
struct chain {
    struct xd_http_client *cl;
    char url[128];
    int done, ok;
};

static void chain_next(void *user, const struct xd_http_result *r)
{
    struct chain *c = user;
    c->done++;
    c->ok += r->status == 200;
    if (c->done < 10) {
        struct xd_http_request req = {.url = c->url, .body = "{}", .body_len = 2};
        assert_int_equal(xd_http_submit(c->cl, &req, chain_next, c), 0);
    }
}

static void test_submit_from_callback(void **state)
{
    (void)state;
    struct chain c = {.cl = client(2)};
    url(c.url, sizeof c.url, &plain, "/ok");
    struct xd_http_request req = {.url = c.url, .body = "{}", .body_len = 2};
    assert_int_equal(xd_http_submit(c.cl, &req, chain_next, &c), 0);
    run_until(c.cl, &c.done, 10);
    assert_int_equal(c.ok, 10);
    assert_int_equal(xd_http_inflight(c.cl), 0);
    xd_http_client_destroy(c.cl);
}

/* Requests the client refuses up front; done is then never called. */
static void test_refused_requests(void **state)
{
    (void)state;
    struct xd_http_client_opts o = {.max_inflight = 1, .proxy = ""};
    struct xd_http_client *cl = NULL;
    struct got g = {0};
    char u[128];
    url(u, sizeof u, &plain, "/ok");
    assert_int_equal(xd_http_client_create(&o, &cl), 0);
    const char *crlf[] = {"X-Evil: a\r\nX-Injected: b"};
    const char *noname[] = {": value"};
    const char *nocolon[] = {"X-Broken"};
    struct xd_http_request bad[] = {
        {.url = NULL},
        {.url = "ftp://127.0.0.1/x"},
        {.url = "file:///etc/passwd"},
        {.url = u, .method = "TRACE"},
        {.url = u, .headers = crlf, .nheaders = 1},
        {.url = u, .headers = noname, .nheaders = 1},
        {.url = u, .headers = nocolon, .nheaders = 1},
        {.url = u, .body = NULL, .body_len = 3},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(xd_http_submit(cl, &bad[i], on_done, &g), XD_EINVAL);
    struct xd_http_request ok = {.url = u};
    assert_int_equal(xd_http_submit(cl, &ok, on_done, &g), 0);
    assert_int_equal(xd_http_submit(cl, &ok, on_done, &g), XD_ELIMIT);
    run_until(cl, &g.calls, 1);
    assert_int_equal(g.calls, 1);
    assert_int_equal(g.status, 200);
    xd_http_client_destroy(cl);
}

/* destroy() with transfers in flight: each gets its callback, cancelled. */
static void test_destroy_cancels(void **state)
{
    (void)state;
    char u[128];
    url(u, sizeof u, &plain, "/slow");
    struct xd_http_client *cl = client(4);
    struct got g[2];
    memset(g, 0, sizeof g);
    struct xd_http_request req = {.url = u, .body = "{}", .body_len = 2, .timeout_ms = 30000};
    assert_int_equal(xd_http_submit(cl, &req, on_done, &g[0]), 0);
    for (int i = 0; i < 5; i++) /* under way: connected, request sent */
        assert_true(xd_http_run(cl, 20) >= 0);
    assert_int_equal(xd_http_submit(cl, &req, on_done, &g[1]), 0); /* never run */
    assert_int_equal(xd_http_inflight(cl), 2);
    xd_http_client_destroy(cl);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(g[i].calls, 1);
        assert_int_equal(g[i].xport, XD_XPORT_CANCELLED);
        assert_int_equal(g[i].outcome, XD_OUT_RETRY);
        assert_string_equal(g[i].cls, "cancelled");
        assert_string_equal(g[i].error, "cancelled: client shut down");
    }
}

/* xd_http_wakeup() from another thread ends a wait with nothing in flight. */
static void *waker(void *arg)
{
    usleep(50000);
    xd_http_wakeup(arg);
    return NULL;
}

static void test_wakeup(void **state)
{
    (void)state;
    pthread_t t;
    struct xd_http_client *cl = client(4);
    double start = now_s();
    assert_int_equal(pthread_create(&t, NULL, waker, cl), 0);
    assert_int_equal(xd_http_run(cl, 60000), 0);
    pthread_join(t, NULL);
    assert_true(now_s() - start < 30); /* a hang detector: without the wakeup it waits 60 s */
    xd_http_wakeup(cl);                /* pending wakeup: the next run returns at once */
    assert_int_equal(xd_http_run(cl, 60000), 0);
    assert_true(now_s() - start < 30);
    xd_http_client_destroy(cl);
}

/* TLS: verified by default; a CA file or an explicit `insecure` lets a self-signed peer in. */
static void test_tls(void **state)
{
    (void)state;
    char u[128];
    url(u, sizeof u, &tls, "/ok");
    struct xd_http_client *cl = client(4);
    struct got g;
    struct xd_http_request verify = {.url = u, .body = "{}", .body_len = 2};
    request(cl, &verify, &g);
    assert_int_equal(g.status, 0);
    assert_int_equal(g.xport, XD_XPORT_TLS_CERT);
    assert_int_equal(g.outcome, XD_OUT_FAIL); /* an untrusted certificate is not retried */
    assert_string_equal(g.cls, "tls_cert");
    assert_non_null(strstr(g.error, "TLS: certificate verify failed"));
    assert_non_null(strstr(g.error, "tls.ca_file"));

    struct xd_http_request with_ca = {.url = u, .body = "{}", .body_len = 2, .ca_file = cert.path};
    request(cl, &with_ca, &g);
    assert_int_equal(g.status, 200);
    assert_string_equal(g.body, "ok");

    struct xd_http_request insecure = {.url = u, .body = "{}", .body_len = 2, .insecure = 1};
    request(cl, &insecure, &g);
    assert_int_equal(g.status, 200);

    /* The recycled handle is back to verifying: no setting leaks into the next request. */
    request(cl, &verify, &g);
    assert_int_equal(g.xport, XD_XPORT_TLS_CERT);
    xd_http_client_destroy(cl);
}

/* ---- traceparent -------------------------------------------------------------- */

/* A fake random source: the values of a list, then counting on from its last. */
struct seq {
    const uint64_t *v;
    size_t n, i;
};

static uint64_t seq_rnd(void *ctx)
{
    struct seq *s = ctx;
    uint64_t r = s->i < s->n ? s->v[s->i] : s->v[s->n - 1] + (s->i - s->n + 1);
    s->i++;
    return r;
}

static void test_trace_format_parse(void **state)
{
    (void)state;
    const uint8_t tid[16] = {0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6,
                             0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36};
    const uint8_t sid[8] = {0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7};
    const uint8_t zero[16] = {0};
    char s[XD_TRACEPARENT_LEN + 1];
    struct xd_trace t, p;
    assert_int_equal(xd_trace_make(&t, tid, sid, NULL, NULL), 0);
    assert_int_equal(xd_trace_format(&t, s), XD_TRACEPARENT_LEN);
    assert_string_equal(s, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
    assert_int_equal(xd_trace_parse(s, strlen(s), &p), 0);
    assert_memory_equal(&p, &t, sizeof t);
    assert_int_equal(xd_trace_make(&t, zero, sid, NULL, NULL), XD_EINVAL);
    assert_int_equal(xd_trace_make(&t, tid, zero, NULL, NULL), XD_EINVAL);

    /* Random ids come from the source given; an all-zero draw is drawn again. */
    static const uint64_t vals[] = {0, 0, 5, 0x1122334455667788u, 0, 9};
    struct seq c = {vals, sizeof vals / sizeof vals[0], 0};
    assert_int_equal(xd_trace_make(&t, NULL, NULL, seq_rnd, &c), 0);
    xd_trace_format(&t, s);
    assert_string_equal(s, "00-05000000000000008877665544332211-0900000000000000-01");

    /* A child keeps the trace id and flags and gets a new span id. */
    struct xd_trace child;
    xd_trace_child(&p, &child, seq_rnd, &c);
    assert_memory_equal(child.trace_id, tid, 16);
    assert_memory_not_equal(child.span_id, sid, 8);
    assert_int_equal(child.flags, 1);

    static const struct {
        const char *s;
        int ok;
    } cases[] = {
        {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", 1},
        {"  00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00 ", 1},
        {"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra", 1}, /* future version */
        {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra", 0},
        {"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", 0},
        {"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", 0}, /* upper case */
        {"00-00000000000000000000000000000000-00f067aa0ba902b7-01", 0},
        {"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", 0},
        {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7", 0},
        {"00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", 0},
        {"00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01", 0},
        {"", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc = xd_trace_parse(cases[i].s, strlen(cases[i].s), &p);
        if (cases[i].ok != (rc == 0))
            fail_msg("case %zu (%s): rc %d", i, cases[i].s, rc);
    }
}

/* ---- targets from the configuration ----------------------------------------- */

/* A configured target sends its headers, the bearer token from the environment,
 * the Idempotency-Key given and a traceparent. */
static void test_target_headers(void **state)
{
    (void)state;
    char u[128], tp[XD_TRACEPARENT_LEN + 1];
    url(u, sizeof u, &plain, "/ok");
    struct xd_header hdrs[] = {{"X-Custom", "plant 1000"}};
    struct xd_target cfg = {.name = "erp",
                            .type = "http",
                            .url = u,
                            .timeout_ms = 5000,
                            .bearer_env = "XD_TEST_ERP_TOKEN",
                            .headers = hdrs,
                            .nheaders = 1};
    struct xd_http_target t;
    struct xd_trace tr;
    char key[XD_IDEM_KEY_LEN + 1];
    struct got g = {0};
    setenv("XD_TEST_ERP_TOKEN", "tok-123", 1);
    assert_int_equal(xd_http_target_init(&t, &cfg, NULL), 0);
    assert_int_equal(xd_circuit_state(&t.circuit), XD_CIRCUIT_CLOSED);
    xd_trace_new(&tr, xd_rand64, NULL);
    xd_trace_format(&tr, tp);
    assert_int_equal(xd_idempotency_key(key, "evt-0001", "shipments", 0, "erp"), 0);

    struct xd_http_client *cl = client(4);
    assert_int_equal(xd_http_target_submit(cl, &t, "{\"a\":1}", 7, key, &tr, on_done, &g), 0);
    run_until(cl, &g.calls, 1);
    assert_int_equal(g.status, 200);
    pthread_mutex_lock(&plain.mu);
    assert_string_equal(plain.method, "POST");
    assert_string_equal(plain.auth, "Bearer tok-123");
    assert_string_equal(plain.custom, "plant 1000");
    assert_string_equal(plain.ctype, "application/json");
    assert_string_equal(plain.idem, key);
    assert_string_equal(plain.trace, tp);
    assert_int_equal(plain.body_len, 7);
    assert_memory_equal(plain.body, "{\"a\":1}", 7);
    pthread_mutex_unlock(&plain.mu);

    assert_int_equal(xd_http_target_submit(cl, &t, "{}", 2, "bad\r\nkey", &tr, on_done, &g),
                     XD_EINVAL);
    xd_http_client_destroy(cl);
    xd_http_target_dispose(&t);

    /* An unset or empty token variable is a configuration error, named. */
    struct xd_buf err;
    xd_buf_init(&err);
    unsetenv("XD_TEST_ERP_TOKEN");
    assert_int_equal(xd_http_target_init(&t, &cfg, &err), XD_ECONFIG);
    assert_string_equal(xd_buf_str(&err), "targets.erp.bearer_env: XD_TEST_ERP_TOKEN is not set\n");
    setenv("XD_TEST_ERP_TOKEN", "", 1);
    assert_int_equal(xd_http_target_init(&t, &cfg, NULL), XD_ECONFIG);
    setenv("XD_TEST_ERP_TOKEN", "a\nb", 1);
    assert_int_equal(xd_http_target_init(&t, &cfg, NULL), XD_ECONFIG);
    unsetenv("XD_TEST_ERP_TOKEN");
    xd_buf_dispose(&err);
}

/* The Idempotency-Key is a function of the delivery's identity, pinned here:
 * changing the derivation would re-key deliveries in flight. */
static void test_idempotency_key(void **state)
{
    (void)state;
    char a[XD_IDEM_KEY_LEN + 1], b[XD_IDEM_KEY_LEN + 1];
    assert_int_equal(xd_idempotency_key(a, "evt-0001", "shipments", 0, "erp"), 0);
    assert_string_equal(a, "37607621-c1ab-8827-a036-1a3b6c4f1171");
    assert_int_equal(strlen(a), XD_IDEM_KEY_LEN);
    assert_int_equal(xd_idempotency_key(b, "evt-0001", "shipments", 0, "erp"), 0);
    assert_string_equal(a, b);
    static const struct {
        const char *ev, *route;
        unsigned step;
        const char *target;
    } others[] = {
        {"evt-0002", "shipments", 0, "erp"}, {"evt-0001", "shipment", 0, "erp"},
        {"evt-0001", "shipments", 2, "erp"}, {"evt-0001", "shipments", 0, "billing"},
        {"evt-000", "1shipments", 0, "erp"}, /* fields are length-prefixed, not concatenated */
    };
    for (size_t i = 0; i < sizeof others / sizeof others[0]; i++) {
        assert_int_equal(
            xd_idempotency_key(b, others[i].ev, others[i].route, others[i].step, others[i].target),
            0);
        assert_string_not_equal(a, b);
        assert_int_equal(b[14], '8'); /* UUID version 8 */
    }
    assert_int_equal(xd_idempotency_key(a, NULL, "r", 0, "t"), XD_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ok_headers_and_body),
        cmocka_unit_test(test_methods_and_content_type),
        cmocka_unit_test(test_keepalive_reuse),
        cmocka_unit_test(test_503_retry_after),
        cmocka_unit_test(test_statuses),
        cmocka_unit_test(test_body_truncated),
        cmocka_unit_test(test_connection_refused),
        cmocka_unit_test(test_timeout),
        cmocka_unit_test(test_parallel_200),
        cmocka_unit_test(test_submit_from_callback),
        cmocka_unit_test(test_refused_requests),
        cmocka_unit_test(test_destroy_cancels),
        cmocka_unit_test(test_wakeup),
        cmocka_unit_test(test_tls),
        cmocka_unit_test(test_trace_format_parse),
        cmocka_unit_test(test_target_headers),
        cmocka_unit_test(test_idempotency_key),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
