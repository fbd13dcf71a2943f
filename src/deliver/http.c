/*
 * The HTTP client (see http.h): libcurl's multi interface in socket mode.
 * libcurl tells us which sockets it wants watched (on_socket: epoll_ctl)
 * and when its next timeout is due (curl_multi_timeout); xd_http_run()
 * waits on epoll, hands ready sockets to curl_multi_socket_action(), fires
 * the timeout when due, and then reads finished transfers
 * (curl_multi_info_read) and calls their callbacks. Only the transfers
 * whose sockets are ready are touched, so the cost of a loop turn does not
 * grow with the number in flight.
 *
 * A transfer (struct xfer) owns one easy handle and the buffers a request
 * needs while in flight: its body, its header lines and the curl_slist
 * nodes pointing into them (built here, not with curl_slist_append, so no
 * allocation per request; libcurl only reads the list). Finished transfers
 * go back to a free list with their easy handle, which keeps its options:
 * the next request sets only what varies.
 *
 * The only file of the hub that includes curl/curl.h.
 */
#include "deliver/http.h"
#include "core/err.h"
#include "core/redact.h"

#include <curl/curl.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#ifndef XD_VERSION
#define XD_VERSION "dev"
#endif

#define IDLE_MAX      256   /* finished transfers kept for reuse */
#define BODY_KEEP_CAP 65536 /* a larger request body buffer is freed, not kept */
#define EVENTS_MAX    128   /* epoll events taken per wait */

struct xfer {
    CURL *easy;
    xd_http_done_fn *done;
    void *user;
    uint64_t start_ns; /* CLOCK_MONOTONIC at submit */
    unsigned timeout_ms;
    int tls_custom; /* insecure or ca_file was set: reset before the next use */
    char *body;     /* copy of the request body */
    size_t body_cap;
    char *hdr; /* header lines, each NUL-terminated */
    size_t hdr_cap;
    struct curl_slist *nodes; /* the list handed to CURLOPT_HTTPHEADER */
    size_t nodes_cap;
    size_t resp_len; /* bytes of the answer kept in resp */
    int resp_trunc;  /* the answer had more than resp holds */
    char resp[XD_HTTP_BODY_KEEP + 1];
    char errbuf[CURL_ERROR_SIZE];
    struct xfer *prev, *next; /* in the busy list, or next in the idle list */
};

struct xd_http_client {
    CURLM *multi;
    int ep;            /* epoll: curl's sockets and evfd */
    int evfd;          /* eventfd written by xd_http_wakeup() */
    struct xfer *busy; /* submitted, callback not yet run */
    struct xfer *idle; /* free list */
    size_t nbusy, nidle;
    unsigned max_inflight;
    unsigned default_timeout_ms;
    char *user_agent;
    char *proxy;  /* NULL: libcurl's default (environment) */
    int stopping; /* in xd_http_client_destroy */
};

/* ---- libcurl global state ------------------------------------------------ */

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc = CURLE_FAILED_INIT;

static void global_init(void)
{
    global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- curl callbacks ------------------------------------------------------ */

/* libcurl wants socket s watched for `what` (or no longer: CURL_POLL_REMOVE). */
static int on_socket(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
    struct xd_http_client *cl = userp;
    (void)easy;
    (void)socketp;
    if (what == CURL_POLL_REMOVE) {
        epoll_ctl(cl->ep, EPOLL_CTL_DEL, s, NULL); /* fails harmlessly if already closed */
        return 0;
    }
    struct epoll_event ev = {.events = 0, .data.fd = s};
    if (what & CURL_POLL_IN)
        ev.events |= EPOLLIN;
    if (what & CURL_POLL_OUT)
        ev.events |= EPOLLOUT;
    /* A socket number can be closed and reused between calls: MOD, else ADD. */
    if (epoll_ctl(cl->ep, EPOLL_CTL_MOD, s, &ev) < 0 && errno == ENOENT)
        epoll_ctl(cl->ep, EPOLL_CTL_ADD, s, &ev);
    return 0;
}

/* Keeps the first XD_HTTP_BODY_KEEP bytes of the answer, drops the rest. */
static size_t on_body(char *p, size_t size, size_t n, void *userp)
{
    struct xfer *x = userp;
    size_t len = size * n, room = XD_HTTP_BODY_KEEP - x->resp_len;
    if (len > room) {
        x->resp_trunc = 1;
        len = room;
    }
    memcpy(x->resp + x->resp_len, p, len);
    x->resp_len += len;
    return size * n;
}

/* ---- transport errors ---------------------------------------------------- */

/* CURLcode -> enum xd_xport; anything not listed is XD_XPORT_OTHER. */
static const struct {
    CURLcode rc;
    enum xd_xport x;
} curl_errors[] = {
    {CURLE_OPERATION_TIMEDOUT, XD_XPORT_TIMEOUT},
    {CURLE_COULDNT_RESOLVE_HOST, XD_XPORT_DNS},
    {CURLE_COULDNT_RESOLVE_PROXY, XD_XPORT_DNS},
    {CURLE_COULDNT_CONNECT, XD_XPORT_CONNECT},
    {CURLE_PEER_FAILED_VERIFICATION, XD_XPORT_TLS_CERT},
    {CURLE_SSL_CONNECT_ERROR, XD_XPORT_TLS},
    {CURLE_SSL_CERTPROBLEM, XD_XPORT_TLS},
    {CURLE_SSL_CIPHER, XD_XPORT_TLS},
    {CURLE_SSL_CACERT_BADFILE, XD_XPORT_TLS_CERT},
    {CURLE_SSL_ISSUER_ERROR, XD_XPORT_TLS_CERT},
    {CURLE_SSL_CRL_BADFILE, XD_XPORT_TLS},
    {CURLE_SSL_PINNEDPUBKEYNOTMATCH, XD_XPORT_TLS_CERT},
    {CURLE_SSL_INVALIDCERTSTATUS, XD_XPORT_TLS},
    {CURLE_SSL_SHUTDOWN_FAILED, XD_XPORT_TLS},
    {CURLE_SSL_ENGINE_NOTFOUND, XD_XPORT_TLS},
    {CURLE_SSL_ENGINE_SETFAILED, XD_XPORT_TLS},
    {CURLE_SSL_ENGINE_INITFAILED, XD_XPORT_TLS},
    {CURLE_SSL_CLIENTCERT, XD_XPORT_TLS},
    {CURLE_USE_SSL_FAILED, XD_XPORT_TLS},
    {CURLE_SEND_ERROR, XD_XPORT_SEND},
    {CURLE_RECV_ERROR, XD_XPORT_RECV},
    {CURLE_GOT_NOTHING, XD_XPORT_RECV},
    {CURLE_PARTIAL_FILE, XD_XPORT_RECV},
    {CURLE_WEIRD_SERVER_REPLY, XD_XPORT_PROTOCOL},
    {CURLE_UNSUPPORTED_PROTOCOL, XD_XPORT_PROTOCOL}, /* e.g. an HTTP/0.9 answer (schemes are
                                                        checked at submit) */
    {CURLE_BAD_CONTENT_ENCODING, XD_XPORT_PROTOCOL},
    {CURLE_HTTP2, XD_XPORT_PROTOCOL},
    {CURLE_HTTP2_STREAM, XD_XPORT_PROTOCOL},
    {CURLE_URL_MALFORMAT, XD_XPORT_REQUEST},
    {CURLE_NOT_BUILT_IN, XD_XPORT_REQUEST},
    {CURLE_BAD_FUNCTION_ARGUMENT, XD_XPORT_REQUEST},
    {CURLE_UNKNOWN_OPTION, XD_XPORT_REQUEST},
    {CURLE_LOGIN_DENIED, XD_XPORT_REQUEST},
    {CURLE_OUT_OF_MEMORY, XD_XPORT_NOMEM},
};

static enum xd_xport xport_of(CURLcode rc)
{
    if (rc == CURLE_OK)
        return XD_XPORT_NONE;
    for (size_t i = 0; i < sizeof curl_errors / sizeof curl_errors[0]; i++)
        if (curl_errors[i].rc == rc)
            return curl_errors[i].x;
    return XD_XPORT_OTHER;
}

/* "host:port" of the transfer's URL, for messages ("[::1]:8080" for IPv6). */
static void host_port(CURL *easy, char *out, size_t cap)
{
    char *url = NULL, *host = NULL, *port = NULL;
    CURLU *u = curl_url();
    curl_easy_getinfo(easy, CURLINFO_EFFECTIVE_URL, &url);
    snprintf(out, cap, "%s", url ? url : "?");
    if (!u || !url || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK)
        goto done;
    if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK)
        goto done;
    snprintf(out, cap, "%s:%s", host, port);
done:
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(u);
}

/* A readable message for a failed transfer, into msg. */
static void describe(struct xfer *x, CURLcode rc, enum xd_xport xp, char *msg, size_t cap)
{
    const char *detail = x->errbuf[0] ? x->errbuf : curl_easy_strerror(rc);
    char where[300], ebuf[128];
    long os_errno = 0;
    if (xp == XD_XPORT_TIMEOUT) {
        snprintf(msg, cap, "timed out after %u ms", x->timeout_ms);
    } else if (xp == XD_XPORT_CONNECT) {
        host_port(x->easy, where, sizeof where);
        curl_easy_getinfo(x->easy, CURLINFO_OS_ERRNO, &os_errno);
        snprintf(msg, cap, "connect to %s failed: %s", where,
                 os_errno ? strerror_r((int)os_errno, ebuf, sizeof ebuf) : detail);
    } else if (xp == XD_XPORT_DNS) {
        host_port(x->easy, where, sizeof where);
        snprintf(msg, cap, "could not resolve host of %s: %s", where, detail);
    } else if (rc == CURLE_PEER_FAILED_VERIFICATION) {
        host_port(x->easy, where, sizeof where);
        snprintf(msg, cap,
                 "TLS: certificate verify failed: the certificate of %s is not trusted (%s); "
                 "give its CA in the target's tls.ca_file",
                 where, detail);
    } else if (rc == CURLE_SSL_CACERT_BADFILE) {
        snprintf(msg, cap, "TLS: cannot use the CA file (tls.ca_file): %s", detail);
    } else if (xp == XD_XPORT_TLS) {
        snprintf(msg, cap, "TLS: %s", detail);
    } else {
        snprintf(msg, cap, "%s", detail);
    }
}

/* ---- transfers ------------------------------------------------------------ */

/* The options every request shares; set once per easy handle (and after a reset). */
static int base_options(struct xd_http_client *cl, struct xfer *x)
{
    CURL *e = x->easy;
    CURLcode rc = CURLE_OK;
    rc |= curl_easy_setopt(e, CURLOPT_PRIVATE, x);
    rc |= curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    rc |= curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
    rc |= curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf);
    rc |= curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    rc |= curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    rc |= curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    rc |= curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    rc |= curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    rc |= curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    rc |= curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
    rc |= curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
    rc |= curl_easy_setopt(e, CURLOPT_USERAGENT, cl->user_agent);
    if (cl->proxy)
        rc |= curl_easy_setopt(e, CURLOPT_PROXY, cl->proxy);
    return rc == CURLE_OK ? 0 : XD_EINTERNAL;
}

static void xfer_free(struct xfer *x)
{
    if (!x)
        return;
    if (x->easy)
        curl_easy_cleanup(x->easy);
    free(x->body);
    free(x->hdr);
    free(x->nodes);
    free(x);
}

/* A transfer from the free list, or a new one. NULL when out of memory. */
static struct xfer *xfer_take(struct xd_http_client *cl)
{
    struct xfer *x = cl->idle;
    if (x) {
        cl->idle = x->next;
        cl->nidle--;
        x->next = NULL;
        return x;
    }
    x = calloc(1, sizeof *x);
    if (!x)
        return NULL;
    x->easy = curl_easy_init();
    if (!x->easy || base_options(cl, x) < 0) {
        xfer_free(x);
        return NULL;
    }
    return x;
}

static void xfer_release(struct xd_http_client *cl, struct xfer *x)
{
    x->done = NULL;
    x->user = NULL;
    if (cl->stopping || cl->nidle >= IDLE_MAX) {
        xfer_free(x);
        return;
    }
    if (x->body_cap > BODY_KEEP_CAP) {
        free(x->body);
        x->body = NULL;
        x->body_cap = 0;
    }
    x->next = cl->idle;
    cl->idle = x;
    cl->nidle++;
}

static int grow(void *pp, size_t *cap, size_t need, size_t elem)
{
    void **p = pp;
    if (need <= *cap)
        return 0;
    size_t n = *cap ? *cap : 8;
    while (n < need)
        n *= 2;
    void *q = realloc(*p, n * elem);
    if (!q)
        return XD_ENOMEM;
    *p = q;
    *cap = n;
    return 0;
}

static int header_name_char(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* "Name: value" with a token name and no CR, LF or other control bytes. */
static int header_ok(const char *line)
{
    const unsigned char *p = (const unsigned char *)line;
    while (header_name_char(*p))
        p++;
    if (p == (const unsigned char *)line || *p != ':')
        return 0;
    for (; *p; p++)
        if ((*p < ' ' && *p != '\t') || *p == 0x7f)
            return 0;
    return 1;
}

static int has_header(const struct xd_http_request *req, const char *name, size_t len)
{
    for (size_t i = 0; i < req->nheaders; i++)
        if (strncasecmp(req->headers[i], name, len) == 0 && req->headers[i][len] == ':')
            return 1;
    return 0;
}

/*
 * Copies the request's header lines (and the ones we add) into x->hdr and
 * links x->nodes over them.
 */
static int set_headers(struct xfer *x, const struct xd_http_request *req)
{
    static const char ctype[] = "Content-Type: application/json";
    static const char expect[] = "Expect:"; /* no 100-continue round trip */
    const char *add[2];
    size_t nadd = 0, total = 0, n, off = 0;
    if (!has_header(req, "Content-Type", 12))
        add[nadd++] = ctype;
    if (!has_header(req, "Expect", 6))
        add[nadd++] = expect;
    for (size_t i = 0; i < req->nheaders; i++)
        total += strlen(req->headers[i]) + 1;
    for (size_t i = 0; i < nadd; i++)
        total += strlen(add[i]) + 1;
    n = req->nheaders + nadd;
    if (grow(&x->hdr, &x->hdr_cap, total, 1) < 0 ||
        grow(&x->nodes, &x->nodes_cap, n, sizeof *x->nodes) < 0)
        return XD_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const char *s = i < req->nheaders ? req->headers[i] : add[i - req->nheaders];
        size_t len = strlen(s) + 1;
        memcpy(x->hdr + off, s, len);
        x->nodes[i].data = x->hdr + off;
        x->nodes[i].next = i + 1 < n ? &x->nodes[i + 1] : NULL;
        off += len;
    }
    return curl_easy_setopt(x->easy, CURLOPT_HTTPHEADER, x->nodes) == CURLE_OK ? 0 : XD_EINTERNAL;
}

static int set_method_body(struct xfer *x, const struct xd_http_request *req)
{
    const char *m = req->method ? req->method : "POST";
    CURL *e = x->easy;
    CURLcode rc = CURLE_OK;
    if (strcmp(m, "GET") == 0) {
        rc |= curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
        rc |= curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, (char *)NULL);
        return rc == CURLE_OK ? 0 : XD_EINTERNAL;
    }
    /* Every other method sends the body, possibly empty (never read from stdin). */
    if (grow(&x->body, &x->body_cap, req->body_len + 1, 1) < 0)
        return XD_ENOMEM;
    if (req->body_len)
        memcpy(x->body, req->body, req->body_len);
    x->body[req->body_len] = '\0';
    rc |= curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
    rc |= curl_easy_setopt(e, CURLOPT_POSTFIELDS, x->body);
    rc |= curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, strcmp(m, "POST") == 0 ? NULL : m);
    return rc == CURLE_OK ? 0 : XD_EINTERNAL;
}

static int set_tls(struct xd_http_client *cl, struct xfer *x, const struct xd_http_request *req)
{
    CURLcode rc = CURLE_OK;
    if (x->tls_custom) { /* back to the defaults: verify with the system's CAs */
        curl_easy_reset(x->easy);
        x->tls_custom = 0;
        if (base_options(cl, x) < 0)
            return XD_EINTERNAL;
    }
    if (req->insecure) {
        rc |= curl_easy_setopt(x->easy, CURLOPT_SSL_VERIFYPEER, 0L);
        rc |= curl_easy_setopt(x->easy, CURLOPT_SSL_VERIFYHOST, 0L);
        x->tls_custom = 1;
    }
    if (req->ca_file) {
        rc |= curl_easy_setopt(x->easy, CURLOPT_CAINFO, req->ca_file);
        x->tls_custom = 1;
    }
    return rc == CURLE_OK ? 0 : XD_EINTERNAL;
}

static int method_ok(const char *m)
{
    static const char *const methods[] = {"POST", "PUT", "PATCH", "DELETE", "GET"};
    if (!m)
        return 1;
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
        if (strcmp(m, methods[i]) == 0)
            return 1;
    return 0;
}

int xd_http_submit(struct xd_http_client *cl, const struct xd_http_request *req,
                   xd_http_done_fn *done, void *user)
{
    struct xfer *x = NULL;
    int rc;
    if (cl->stopping)
        return XD_ESTOPPING;
    if (!req || !done || !req->url || !method_ok(req->method) || (req->body_len && !req->body) ||
        (req->nheaders && !req->headers))
        return XD_EINVAL;
    if (strncasecmp(req->url, "http://", 7) != 0 && strncasecmp(req->url, "https://", 8) != 0)
        return XD_EINVAL;
    for (size_t i = 0; i < req->nheaders; i++)
        if (!req->headers[i] || !header_ok(req->headers[i]))
            return XD_EINVAL;
    if (cl->max_inflight && cl->nbusy >= cl->max_inflight)
        return XD_ELIMIT;

    x = xfer_take(cl);
    if (!x)
        return XD_ENOMEM;
    rc = set_tls(cl, x, req);
    if (rc < 0)
        goto fail;
    rc = set_headers(x, req);
    if (rc < 0)
        goto fail;
    rc = set_method_body(x, req);
    if (rc < 0)
        goto fail;
    x->timeout_ms = req->timeout_ms ? req->timeout_ms : cl->default_timeout_ms;
    if (curl_easy_setopt(x->easy, CURLOPT_URL, req->url) != CURLE_OK ||
        curl_easy_setopt(x->easy, CURLOPT_TIMEOUT_MS, (long)x->timeout_ms) != CURLE_OK) {
        rc = XD_ENOMEM;
        goto fail;
    }
    x->done = done;
    x->user = user;
    x->resp_len = 0;
    x->resp_trunc = 0;
    x->errbuf[0] = '\0';
    x->start_ns = now_ns();
    if (curl_multi_add_handle(cl->multi, x->easy) != CURLM_OK) {
        rc = XD_EINTERNAL;
        goto fail;
    }
    x->prev = NULL;
    x->next = cl->busy;
    if (cl->busy)
        cl->busy->prev = x;
    cl->busy = x;
    cl->nbusy++;
    return 0;
fail:
    xfer_free(x); /* not recycled: its options may be half set */
    return rc;
}

static void unlink_busy(struct xd_http_client *cl, struct xfer *x)
{
    if (x->prev)
        x->prev->next = x->next;
    else
        cl->busy = x->next;
    if (x->next)
        x->next->prev = x->prev;
    x->prev = x->next = NULL;
    cl->nbusy--;
}

/*
 * Ends transfer x: builds its result, takes it out of the multi handle and
 * the busy list, calls its callback, and recycles it. cancelled: the client
 * is being destroyed, rc is meaningless.
 */
static void finish(struct xd_http_client *cl, struct xfer *x, CURLcode rc, int cancelled)
{
    struct xd_http_result r;
    struct curl_header *h = NULL;
    char msg[1024] = "", retry_after[128];
    long status = 0, nconn = 0;
    memset(&r, 0, sizeof r);
    r.xport = cancelled ? XD_XPORT_CANCELLED : xport_of(rc);
    if (!cancelled) {
        curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
        curl_easy_getinfo(x->easy, CURLINFO_NUM_CONNECTS, &nconn);
        /* Retry-After matters only when we are told to come back. */
        if ((status < 200 || status > 299) &&
            curl_easy_header(x->easy, "Retry-After", 0, CURLH_HEADER, -1, &h) == CURLHE_OK) {
            snprintf(retry_after, sizeof retry_after, "%s", h->value);
            r.retry_after = retry_after;
        }
    }
    if (cancelled)
        snprintf(msg, sizeof msg, "cancelled: client shut down");
    else if (r.xport != XD_XPORT_NONE)
        describe(x, rc, (enum xd_xport)r.xport, msg, sizeof msg);
    curl_multi_remove_handle(cl->multi, x->easy);
    unlink_busy(cl, x);

    xd_redact(x->resp, &x->resp_len); /* a target may echo our credentials back */
    xd_redact_str(msg);
    x->resp[x->resp_len] = '\0';
    r.status = status;
    r.outcome = xd_outcome_classify(status, r.xport);
    r.error_class = xd_outcome_class(status, r.xport);
    r.error = msg;
    r.latency_us = (now_ns() - x->start_ns) / 1000;
    r.body = x->resp;
    r.body_len = x->resp_len;
    r.body_truncated = x->resp_trunc;
    r.new_connections = nconn > 0 ? (unsigned)nconn : 0;
    x->done(x->user, &r);
    xfer_release(cl, x);
}

/* Calls the callbacks of every finished transfer; returns how many. */
static int drain(struct xd_http_client *cl)
{
    int n = 0, left;
    for (;;) {
        CURLMsg *m = curl_multi_info_read(cl->multi, &left);
        if (!m)
            break;
        if (m->msg != CURLMSG_DONE)
            continue;
        char *priv = NULL;
        CURLcode rc = m->data.result;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &priv);
        finish(cl, (struct xfer *)priv, rc, 0);
        n++;
    }
    return n;
}

/* Fires libcurl's timeout if it is due; returns its next one (ms, -1 none). */
static long timeouts(struct xd_http_client *cl)
{
    long t = -1;
    int running;
    for (int i = 0; i < 2; i++) {
        if (curl_multi_timeout(cl->multi, &t) != CURLM_OK)
            return -1;
        if (t != 0)
            break;
        curl_multi_socket_action(cl->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    }
    return t;
}

int xd_http_run(struct xd_http_client *cl, int wait_ms)
{
    struct epoll_event ev[EVENTS_MAX];
    int n, done, running;
    long t = timeouts(cl);
    done = drain(cl);

    /* Wait for the earliest of: a socket, curl's timer, wait_ms (none if work is done). */
    int wait = done ? 0 : wait_ms;
    if (t >= 0 && (wait < 0 || t < wait))
        wait = t > INT_MAX ? INT_MAX : (int)t;
    n = epoll_wait(cl->ep, ev, EVENTS_MAX, wait);
    if (n < 0 && errno != EINTR)
        return XD_EINTERNAL;
    for (int i = 0; i < n; i++) {
        if (ev[i].data.fd == cl->evfd) {
            uint64_t v;
            if (read(cl->evfd, &v, sizeof v) < 0) {
                /* EAGAIN: another turn already took it */
            }
            continue;
        }
        int flags = 0;
        if (ev[i].events & (EPOLLIN | EPOLLHUP))
            flags |= CURL_CSELECT_IN;
        if (ev[i].events & EPOLLOUT)
            flags |= CURL_CSELECT_OUT;
        if (ev[i].events & EPOLLERR)
            flags |= CURL_CSELECT_ERR;
        curl_multi_socket_action(cl->multi, ev[i].data.fd, flags, &running);
    }
    timeouts(cl);
    return done + drain(cl);
}

void xd_http_wakeup(struct xd_http_client *cl)
{
    uint64_t one = 1;
    if (write(cl->evfd, &one, sizeof one) < 0) {
        /* EAGAIN: the counter is full, so a wakeup is pending anyway */
    }
}

size_t xd_http_inflight(const struct xd_http_client *cl)
{
    return cl->nbusy;
}

int xd_http_client_create(const struct xd_http_client_opts *opts, struct xd_http_client **out)
{
    struct xd_http_client_opts o = {0};
    struct xd_http_client *cl = NULL;
    int rc = XD_EINTERNAL;
    *out = NULL;
    if (opts)
        o = *opts;
    if (!o.max_connections)
        o.max_connections = 64;
    if (!o.max_host_connections)
        o.max_host_connections = o.max_connections;
    if (!o.default_timeout_ms)
        o.default_timeout_ms = 5000;

    pthread_once(&global_once, global_init);
    if (global_rc != CURLE_OK)
        return XD_EINTERNAL;
    cl = calloc(1, sizeof *cl);
    if (!cl)
        return XD_ENOMEM;
    cl->ep = cl->evfd = -1;
    cl->max_inflight = o.max_inflight;
    cl->default_timeout_ms = o.default_timeout_ms;
    cl->user_agent = strdup(o.user_agent ? o.user_agent : "crossdock/" XD_VERSION);
    cl->proxy = o.proxy ? strdup(o.proxy) : NULL;
    if (!cl->user_agent || (o.proxy && !cl->proxy)) {
        rc = XD_ENOMEM;
        goto fail;
    }
    cl->ep = epoll_create1(EPOLL_CLOEXEC);
    cl->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (cl->ep < 0 || cl->evfd < 0)
        goto fail;
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = cl->evfd};
    if (epoll_ctl(cl->ep, EPOLL_CTL_ADD, cl->evfd, &ev) < 0)
        goto fail;
    cl->multi = curl_multi_init();
    if (!cl->multi)
        goto fail;
    CURLMcode mc = CURLM_OK;
    mc |= curl_multi_setopt(cl->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    mc |= curl_multi_setopt(cl->multi, CURLMOPT_SOCKETDATA, cl);
    mc |= curl_multi_setopt(cl->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)o.max_connections);
    mc |= curl_multi_setopt(cl->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)o.max_host_connections);
    mc |= curl_multi_setopt(cl->multi, CURLMOPT_MAXCONNECTS, (long)o.max_connections);
    if (mc != CURLM_OK)
        goto fail;
    *out = cl;
    return 0;
fail:
    if (cl->multi)
        curl_multi_cleanup(cl->multi);
    if (cl->ep >= 0)
        close(cl->ep);
    if (cl->evfd >= 0)
        close(cl->evfd);
    free(cl->user_agent);
    free(cl->proxy);
    free(cl);
    return rc;
}

void xd_http_client_destroy(struct xd_http_client *cl)
{
    if (!cl)
        return;
    cl->stopping = 1;
    drain(cl); /* transfers that did end get their real result */
    while (cl->busy)
        finish(cl, cl->busy, CURLE_OK, 1);
    while (cl->idle) {
        struct xfer *x = cl->idle;
        cl->idle = x->next;
        xfer_free(x);
    }
    curl_multi_cleanup(cl->multi);
    close(cl->ep);
    close(cl->evfd);
    free(cl->user_agent);
    free(cl->proxy);
    free(cl);
}
