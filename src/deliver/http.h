/*
 * An asynchronous HTTP client over libcurl's multi interface, driven by ONE
 * thread: submit requests, call xd_http_run() in a loop, and each request's
 * done callback runs (from xd_http_run) when its answer, or its failure, is
 * known. Connections are kept alive and reused (HTTP/1.1, TCP_NODELAY),
 * limited in total and per host; transfers beyond the limits wait in
 * libcurl's queue for a free connection. Easy handles, body and header
 * buffers are recycled through a free list, so a request in steady state
 * costs no allocation here. The loop is curl_multi_socket_action() over
 * epoll (not curl_multi_perform(), which polls every transfer on every
 * call), plus an eventfd for xd_http_wakeup().
 *
 * What is sent: the request's method, URL, body and header lines, plus
 * `Content-Type: application/json` when no Content-Type line is given, and
 * never `Expect: 100-continue`. TLS peers are verified (certificate and
 * host name) unless the request says `insecure`. Redirects are not
 * followed; only http:// and https:// URLs are allowed. libcurl reads
 * proxies from the environment (http_proxy, https_proxy, no_proxy) unless
 * opts.proxy says otherwise.
 *
 * Ownership: xd_http_client_create() returns a heap object for
 * xd_http_client_destroy(). xd_http_submit() copies everything it needs
 * from the request (URL, body, header lines, CA file name); the caller's
 * memory may go as soon as it returns. The result passed to a done
 * callback, and every string in it, is valid only during that call.
 *
 * Threads: everything but xd_http_wakeup() must be called from the one
 * thread that owns the client.
 */
#ifndef XD_DELIVER_HTTP_H
#define XD_DELIVER_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "deliver/outcome.h"

#define XD_HTTP_BODY_KEEP 4096 /* bytes of a response body kept for diagnostics */

struct xd_http_client;

struct xd_http_client_opts {
    unsigned max_connections;      /* open connections in total; 0 = 64 */
    unsigned max_host_connections; /* to one host:port; 0 = max_connections */
    unsigned default_timeout_ms;   /* for requests that give 0; 0 = 5000 */
    unsigned max_inflight;         /* submitted, not yet done; 0 = no limit */
    const char *user_agent;        /* NULL = "crossdock/VERSION" */
    const char *proxy;             /* NULL = libcurl's environment; "" = never a proxy */
};

struct xd_http_request {
    const char *method; /* "POST" (also when NULL), "PUT", "PATCH", "DELETE", "GET" */
    const char *url;    /* http:// or https:// */
    const void *body;   /* may be NULL when body_len is 0 */
    size_t body_len;
    const char *const *headers; /* nheaders "Name: value" lines, no CR or LF */
    size_t nheaders;
    unsigned timeout_ms; /* whole attempt, connecting and queueing included; 0 = default */
    int insecure;        /* 1: do not verify the TLS peer (explicit opt-out) */
    const char *ca_file; /* PEM bundle to verify with; NULL = the system's */
};

struct xd_http_result {
    long status;             /* HTTP status; 0 when no answer was read */
    int xport;               /* enum xd_xport; XD_XPORT_NONE when the answer was complete */
    enum xd_outcome outcome; /* xd_outcome_classify(status, xport) */
    const char *error_class; /* xd_outcome_class(status, xport): "ok", "http_5xx", "timeout"... */
    const char *error;       /* readable: "connect to 127.0.0.1:18080 failed: Connection
                                refused", "timed out after 5000 ms"; "" when xport is NONE */
    uint64_t latency_us;     /* from xd_http_submit() to the end of the transfer */
    const char *retry_after; /* the Retry-After header's value, NULL when absent */
    const char *body;        /* the first XD_HTTP_BODY_KEEP bytes of the answer, NUL-terminated */
    size_t body_len;
    int body_truncated;       /* the answer was longer than what body holds */
    unsigned new_connections; /* connections opened for it: 0 = a kept-alive one was reused */
};

typedef void xd_http_done_fn(void *user, const struct xd_http_result *res);

/* Returns 0, XD_ENOMEM or XD_EINTERNAL (libcurl or epoll refused to start). opts may be NULL. */
int xd_http_client_create(const struct xd_http_client_opts *opts, struct xd_http_client **out);

/*
 * Destroys the client. Transfers still in flight are cancelled and their
 * done callbacks called, here, with xport XD_XPORT_CANCELLED (outcome
 * RETRY, error "cancelled: client shut down"): every submitted request gets
 * exactly one callback. The target may have received a cancelled request;
 * its Idempotency-Key makes sending it again safe. Callbacks run here may
 * not submit (xd_http_submit returns XD_ESTOPPING). Not to be called from a
 * done callback, nor while another thread may still call xd_http_wakeup().
 * NULL is allowed.
 */
void xd_http_client_destroy(struct xd_http_client *cl);

/*
 * Starts a request. On 0, done(user, result) will be called exactly once,
 * from xd_http_run() or xd_http_client_destroy(). On failure done is never
 * called: XD_EINVAL (no URL, a header line with CR/LF or without ':'),
 * XD_ELIMIT (max_inflight reached), XD_ESTOPPING (the client is being
 * destroyed), XD_ENOMEM, XD_EINTERNAL. May be called from a done callback.
 */
int xd_http_submit(struct xd_http_client *cl, const struct xd_http_request *req,
                   xd_http_done_fn *done, void *user);

/*
 * Moves transfers along and calls the done callbacks of those that ended.
 * Waits at most wait_ms for something to happen (0: do not wait; < 0: until
 * a transfer needs attention or xd_http_wakeup()). Returns the number of
 * callbacks called, or XD_EINTERNAL. Not to be called from a done callback.
 */
int xd_http_run(struct xd_http_client *cl, int wait_ms);

/* Makes a waiting (or the next) xd_http_run() return early. Any thread; async-signal-safe. */
void xd_http_wakeup(struct xd_http_client *cl);

/* Requests submitted whose callback has not run yet. */
size_t xd_http_inflight(const struct xd_http_client *cl);

#endif
