/*
 * The HTTP listener: libmicrohttpd with an epoll thread pool and
 * suspend/resume, so a request waiting for its group commit holds no
 * thread. Every request walks the same path:
 *
 *   first call   route lookup (404/405), API key (401/403), Content-Type
 *                (415), declared Content-Length (413) — answered before
 *                any of the body is read;
 *   upload calls the body is appended up to server.max_body (413 past it);
 *   last call    the route's handler runs, and answers or suspends;
 *   resumed      the handler's resume function answers.
 */
#include "api/server.h"
#include "api/auth.h"
#include "api/http.h"
#include "api/tls.h"
#include "api/stats.h"
#include "core/err.h"
#include "core/log.h"
#include "ingest/files.h"
#include "ingest/intake_metrics.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static const struct xd_http_route routes[] = {
    {"POST", "/v1/events", XD_SCOPE_EVENTS_WRITE, 1, xd_h_events_post},
    {"GET", "/v1/events/{id}", XD_SCOPE_READ, 0, xd_h_events_get},
    {"POST", "/v1/files", XD_SCOPE_EVENTS_WRITE, 2, xd_h_files_post},
    {"GET", "/v1/deliveries", XD_SCOPE_READ, 0, xd_h_deliveries_list},
    {"GET", "/v1/deliveries/count", XD_SCOPE_READ, 0, xd_h_deliveries_count},
    {"POST", "/v1/deliveries/replay", XD_SCOPE_OPS, 1, xd_h_deliveries_replay},
    {"GET", "/v1/deliveries/{id}", XD_SCOPE_READ, 0, xd_h_delivery_get},
    {"POST", "/v1/deliveries/{id}/replay", XD_SCOPE_OPS, 0, xd_h_delivery_replay},
    {"GET", "/v1/charges", XD_SCOPE_READ, 0, xd_h_charges_list},
    {"GET", "/v1/exceptions", XD_SCOPE_READ, 0, xd_h_exceptions_list},
    {"GET", "/v1/exceptions/{id}", XD_SCOPE_READ, 0, xd_h_exception_get},
    {"PATCH", "/v1/exceptions/{id}", XD_SCOPE_OPS, 1, xd_h_exception_patch},
    {"POST", "/v1/billing/close", XD_SCOPE_OPS, 1, xd_h_billing_close},
    {"POST", "/v1/admin/reload", XD_SCOPE_ADMIN, 0, xd_h_admin_reload},
    {"GET", "/v1/reconciliation", XD_SCOPE_READ, 0, xd_h_reconciliation_get},
    {"POST", "/v1/reconciliation", XD_SCOPE_READ, 1, xd_h_reconciliation_post},
    {"GET", "/v1/ledger", XD_SCOPE_READ, 0, xd_h_ledger_get},
    {"GET", "/metrics", XD_SCOPE_READ, 0, xd_h_metrics},
    {"GET", "/v1/xref", XD_SCOPE_READ | XD_SCOPE_OPS | XD_SCOPE_ADMIN, 0, xd_h_xref_tables},
    {"GET", "/v1/xref/{table}", XD_SCOPE_READ | XD_SCOPE_OPS | XD_SCOPE_ADMIN, 0, xd_h_xref_get},
    {"PUT", "/v1/xref/{table}/{key}", XD_SCOPE_OPS | XD_SCOPE_ADMIN, 1, xd_h_xref_put},
    {"DELETE", "/v1/xref/{table}/{key}", XD_SCOPE_OPS | XD_SCOPE_ADMIN, 0, xd_h_xref_delete},
    {"GET", "/v1/kpis", XD_SCOPE_READ, 0, xd_h_kpis},
    {"GET", "/v1/audit", XD_SCOPE_OPS | XD_SCOPE_ADMIN, 0, xd_h_audit_list},
    {"GET", "/healthz", 0, 0, xd_h_healthz},
    {"GET", "/readyz", 0, 0, xd_h_readyz},
    {"GET", "/v1/stats", XD_SCOPE_READ, 0, xd_h_stats},
    {"GET", "/ui", 0, 0, xd_h_ui}, /* the page holds no data: its API calls need a key */
    {"GET", "/ui/", 0, 0, xd_h_ui},
    {"GET", "/ui/{file}", 0, 0, xd_h_ui},
};
#define NROUTES (sizeof routes / sizeof routes[0])

/* Matches url against pattern; a {x} segment is copied into param. */
static int path_match(const char *pattern, const char *url, char *param, size_t psize)
{
    const char *p = pattern, *u = url;
    while (*p) {
        if (*p == '{') {
            const char *close = strchr(p, '}');
            const char *seg_end = strchr(u, '/');
            size_t n = seg_end ? (size_t)(seg_end - u) : strlen(u);
            if (n == 0 || n >= psize)
                return 0;
            memcpy(param, u, n);
            param[n] = '\0';
            u += n;
            p = close + 1;
            continue;
        }
        if (*p != *u)
            return 0;
        p++, u++;
    }
    return *u == '\0';
}

/*
 * Finds the route for method+url. When only the method is wrong, allow gets
 * the methods the path takes ("GET, PATCH") for the 405's Allow header.
 */
static const struct xd_http_route *route_find(const char *method, const char *url, char *param,
                                              size_t psize, char *allow, size_t asize)
{
    allow[0] = '\0';
    for (size_t i = 0; i < NROUTES; i++) {
        if (!path_match(routes[i].pattern, url, param, psize))
            continue;
        if (strcmp(routes[i].method, method) == 0 ||
            (strcmp(method, "HEAD") == 0 && strcmp(routes[i].method, "GET") == 0))
            return &routes[i];
        size_t n = strlen(allow);
        snprintf(allow + n, asize - n, "%s%s", n ? ", " : "", routes[i].method);
    }
    return NULL;
}

int xd_http_has_route(const char *method, const char *path)
{
    char param[256], allow[64];
    return route_find(method, path, param, sizeof param, allow, sizeof allow) != NULL;
}

void xd_http_store_error(struct xd_req *r, int rc)
{
    snprintf(r->retry_after, sizeof r->retry_after, "5");
    xd_http_problem(r, 503, "store-unavailable", "Service Unavailable", xd_strerror(rc), NULL);
}

int xd_http_param_id(struct xd_req *r, const char *what, int64_t *id)
{
    char *end;
    long long v = strtoll(r->param, &end, 10);
    if (*end || v <= 0) {
        xd_http_problem(r, 404, "not-found", "Not Found", what, NULL);
        return -1;
    }
    *id = v;
    return 0;
}

/* Counts an intake refusal under its problem type (the "reason" label). */
static void count_rejection(struct xd_req *r)
{
    xd_intake_count_rejected(xd_reject_reason_of(r->problem));
}

static void send_answer(struct xd_req *r)
{
    xd_audit_http(r); /* before the answer leaves: an operator who got it knows it is recorded */
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        r->out.len, r->out.data ? r->out.data : (void *)"", MHD_RESPMEM_MUST_COPY);
    if (!resp)
        return;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                            r->content_type ? r->content_type : "application/json");
    if (r->retry_after[0])
        MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, r->retry_after);
    if (r->allow)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, r->allow);
    if (r->route && r->route->fn == xd_h_ui && r->status == 200) {
        /* The dashboard loads only its own files and talks only to this hub. */
        MHD_add_response_header(resp, "Content-Security-Policy",
                                "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; "
                                "base-uri 'none'; form-action 'self'");
        MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    }
    if (r->status == 401)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                                "Bearer realm=\"crossdock\"");
    if (r->status >= 400 && r->status < 500 && r->status != 404 && r->status != 409)
        atomic_fetch_add(&r->srv->rejected, 1);
    if (r->status >= 400 && r->route &&
        (r->route->fn == xd_h_events_post || r->route->fn == xd_h_files_post))
        count_rejection(r);
    MHD_queue_response(r->conn, r->status, resp);
    MHD_destroy_response(resp);
    r->sent = 1;
}

void xd_http_reply_json(struct xd_req *r, unsigned status)
{
    r->status = status;
    r->content_type = "application/json";
    r->answered = 1;
}

void xd_http_problem(struct xd_req *r, unsigned status, const char *slug, const char *title,
                     const char *detail, const struct xd_verrs *errs)
{
    xd_buf_reset(&r->out);
    xd_buf_printf(&r->out, "{\"type\":\"urn:crossdock:problem:%s\",\"title\":", slug);
    xd_buf_json_str(&r->out, title);
    xd_buf_printf(&r->out, ",\"status\":%u", status);
    if (detail) {
        xd_buf_puts(&r->out, ",\"detail\":");
        xd_buf_json_str(&r->out, detail);
    }
    if (errs && errs->n) {
        xd_buf_puts(&r->out, ",\"errors\":[");
        for (size_t i = 0; i < errs->n; i++) {
            xd_buf_puts(&r->out, i ? ",{\"path\":" : "{\"path\":");
            xd_buf_json_str(&r->out, errs->v[i].path);
            xd_buf_puts(&r->out, ",\"message\":");
            xd_buf_json_str(&r->out, errs->v[i].message);
            xd_buf_putc(&r->out, '}');
        }
        xd_buf_putc(&r->out, ']');
    }
    if (r->url) {
        xd_buf_puts(&r->out, ",\"instance\":");
        xd_buf_json_str(&r->out, r->url);
    }
    xd_buf_putc(&r->out, '}');
    r->status = status;
    r->problem = slug;
    r->content_type = "application/problem+json";
    r->answered = 1;
}

static int json_content_type(const char *ct)
{
    if (!ct)
        return 0;
    while (*ct == ' ')
        ct++;
    size_t n = strcspn(ct, "; ");
    if (n == 16 && strncasecmp(ct, "application/json", 16) == 0)
        return 1;
    /* application/something+json */
    return n > 5 && strncasecmp(ct, "application/", 12) == 0 &&
           strncasecmp(ct + n - 5, "+json", 5) == 0;
}

/* Checks done once headers are in, before the body is read. */
static void first_call(struct xd_req *r, const char *method)
{
    r->route = route_find(method, r->url, r->param, sizeof r->param, r->allow_buf,
                          sizeof r->allow_buf);
    if (!r->route) {
        if (r->allow_buf[0]) {
            r->allow = r->allow_buf;
            xd_http_problem(r, 405, "method-not-allowed", "Method Not Allowed", NULL, NULL);
        } else {
            xd_http_problem(r, 404, "not-found", "Not Found", "no such resource", NULL);
        }
        return;
    }
    if (xd_auth_headers(r) < 0)
        return;
    if (r->route->takes_body) {
        const char *ct = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_CONTENT_TYPE);
        int ok = r->route->takes_body == 2 ? xd_format_from_content_type(ct) >= 0
                                           : json_content_type(ct);
        if (!ok) {
            char detail[200];
            snprintf(detail, sizeof detail, "expected Content-Type: %s, got %.100s",
                     r->route->takes_body == 2
                         ? "text/csv, application/edi-x12 or application/json"
                         : "application/json",
                     ct ? ct : "none");
            xd_http_problem(r, 415, "unsupported-media-type", "Unsupported Media Type", detail,
                            NULL);
            return;
        }
        const char *cl = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl && strtoull(cl, NULL, 10) > r->srv->cfg->server.max_body) {
            char detail[120];
            snprintf(detail, sizeof detail, "body over server.max_body (%zu bytes)",
                     r->srv->cfg->server.max_body);
            xd_http_problem(r, 413, "too-large", "Payload Too Large", detail, NULL);
            return;
        }
    }
    if (atomic_load(&r->srv->stopping)) {
        snprintf(r->retry_after, sizeof r->retry_after, "5");
        xd_http_problem(r, 503, "stopping", "Service Unavailable", "the hub is shutting down",
                        NULL);
    }
}

/*
 * Room for the whole body at its first chunk, when Content-Length says how
 * much comes (and it is within server.max_body): one allocation instead of a
 * doubling one per chunk, each copying what came before.
 */
#define BODY_RESERVE_MAX (1024 * 1024)

static void reserve_body(struct xd_req *r)
{
    const char *cl =
        MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (!cl || *cl < '0' || *cl > '9')
        return;
    char *end;
    errno = 0;
    unsigned long long n = strtoull(cl, &end, 10);
    if (errno || *end || n == 0 || n > r->srv->cfg->server.max_body)
        return;
    /* A promise is not data: reserve at most 1 MiB ahead of what arrives. */
    if (n > BODY_RESERVE_MAX)
        n = BODY_RESERVE_MAX;
    (void)xd_buf_reserve(&r->body, (size_t)n); /* on failure the appends below say so */
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    (void)version;
    struct xd_server *srv = cls;
    struct xd_req *r = *con_cls;

    if (!r) {
        r = calloc(1, sizeof *r);
        if (!r)
            return MHD_NO;
        r->srv = srv;
        r->conn = conn;
        r->url = url;
        atomic_fetch_add(&srv->inflight, 1);
        *con_cls = r;
        first_call(r, method);
        if (r->answered)
            send_answer(r);
        return MHD_YES;
    }

    if (*upload_data_size) {
        if (!r->body.cap && !r->sent && !r->over_limit)
            reserve_body(r);
        if (!r->sent && !r->over_limit) {
            if (r->body.len + *upload_data_size > srv->cfg->server.max_body) {
                r->over_limit = 1;
                xd_buf_dispose(&r->body);
            } else if (xd_buf_append(&r->body, upload_data, *upload_data_size) < 0) {
                r->over_limit = 1; /* answered as 413 below: we cannot hold it */
                xd_buf_dispose(&r->body);
            }
        }
        *upload_data_size = 0;
        return MHD_YES;
    }

    if (r->suspended) {
        /* Resumed by the store's callback. */
        r->suspended = 0;
        xd_h_events_post_resume(r);
        send_answer(r);
        return MHD_YES;
    }
    if (r->sent)
        return MHD_YES;

    if (r->over_limit) {
        char detail[120];
        snprintf(detail, sizeof detail, "body over server.max_body (%zu bytes)",
                 srv->cfg->server.max_body);
        xd_http_problem(r, 413, "too-large", "Payload Too Large", detail, NULL);
        send_answer(r);
        return MHD_YES;
    }

    if (xd_auth_body(r) < 0) {
        send_answer(r);
        return MHD_YES;
    }
    r->route->fn(r);
    if (r->suspended)
        return MHD_YES;
    if (!r->answered)
        xd_http_problem(r, 500, "internal", "Internal Server Error", NULL, NULL);
    send_answer(r);
    return MHD_YES;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)conn, (void)toe;
    struct xd_server *srv = cls;
    struct xd_req *r = *con_cls;
    if (!r)
        return;
    if (r->intake_used)
        xd_intake_dispose(&r->intake);
    xd_auth_release(r);
    xd_buf_dispose(&r->ack);
    free(r->results);
    xd_buf_dispose(&r->body);
    xd_buf_dispose(&r->out);
    free(r);
    *con_cls = NULL;
    atomic_fetch_sub(&srv->inflight, 1);
}

#ifdef XD_FUZZ_HOOKS
/*
 * For the fuzz target tests/fuzz/fuzz_http.c only (built with -DXD_FUZZ=ON):
 * MHD's two callbacks, so that a request can walk exactly the path above
 * (route, auth, limits, handler, suspend/resume, answer) without a socket.
 * The target supplies the connection-level MHD functions the path calls.
 */
const MHD_AccessHandlerCallback xd_fuzz_on_request = on_request;
const MHD_RequestCompletedCallback xd_fuzz_on_completed = on_completed;
#endif

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    xd_debug("http: %s", msg);
}

/* Parses "host:port" or "[v6]:port" into a socket address. */
static int parse_listen(const char *listen, struct sockaddr_storage *ss, socklen_t *len)
{
    char host[128];
    const char *colon = strrchr(listen, ':');
    if (!colon || (size_t)(colon - listen) >= sizeof host)
        return XD_EINVAL;
    memcpy(host, listen, (size_t)(colon - listen));
    host[colon - listen] = '\0';
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end || port < 0 || port > 65535)
        return XD_EINVAL;
    memset(ss, 0, sizeof *ss);
    size_t hl = strlen(host);
    if (hl >= 2 && host[0] == '[' && host[hl - 1] == ']') {
        host[hl - 1] = '\0';
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)port);
        if (inet_pton(AF_INET6, host + 1, &s6->sin6_addr) != 1)
            return XD_EINVAL;
        *len = sizeof *s6;
        return 0;
    }
    struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
    s4->sin_family = AF_INET;
    s4->sin_port = htons((uint16_t)port);
    if (strcmp(host, "localhost") == 0)
        strcpy(host, "127.0.0.1");
    if (hl == 0 || strcmp(host, "*") == 0)
        s4->sin_addr.s_addr = htonl(INADDR_ANY);
    else if (inet_pton(AF_INET, host, &s4->sin_addr) != 1)
        return XD_EINVAL;
    *len = sizeof *s4;
    return 0;
}

int xd_server_start(const struct xd_config *cfg, struct xd_store *store,
                    struct xd_dispatcher *dispatcher, struct xd_server **out, struct xd_buf *err)
{
    struct sockaddr_storage ss;
    socklen_t sslen;
    if (parse_listen(cfg->server.listen, &ss, &sslen) < 0) {
        xd_buf_printf(err, "server.listen: cannot use '%s' (expected host:port)",
                      cfg->server.listen);
        return XD_ECONFIG;
    }
    struct xd_server *s = calloc(1, sizeof *s);
    if (!s)
        return XD_ENOMEM;
    s->cfg = cfg;
    s->store = store;
    s->dispatcher = dispatcher;
    int rc = xd_auth_create(cfg, &s->auth, err);
    if (rc < 0) {
        free(s);
        return rc == XD_ENOMEM ? rc : XD_ECONFIG;
    }
    if (cfg->server.tls.cert) {
        rc = xd_tls_create(cfg->server.tls.cert, cfg->server.tls.key, &s->tls, err);
        if (rc < 0) {
            xd_auth_destroy(s->auth);
            free(s);
            return rc;
        }
    }

    s->stats = xd_stats_start(s);
    /*
     * By default one worker per core but one: the store's committer is the
     * one stage every write goes through, one thread, and workers that
     * outnumber the other cores only take its CPU when they parse (batches
     * of 100 on 2 cores: ~204k events/s with two workers, ~217k with one).
     */
    unsigned threads = cfg->server.threads;
    if (threads == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        threads = n > 1 ? (unsigned)(n - 1) : 1;
    }
    unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ITC |
                     MHD_USE_ERROR_LOG;
    if (ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    /* Options that depend on the configuration: HTTPS, per-address limit. */
    struct MHD_OptionItem extra[4];
    size_t nx = 0;
    if (s->tls) {
        flags |= MHD_USE_TLS;
        extra[nx++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_CERT_CALLBACK, 0,
                                              (void *)xd_tls_retrieve};
    }
    if (cfg->server.max_connections_per_ip)
        extra[nx++] = (struct MHD_OptionItem){MHD_OPTION_PER_IP_CONNECTION_LIMIT,
                                              (intptr_t)cfg->server.max_connections_per_ip, NULL};
    extra[nx] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
    size_t mem = cfg->server.max_header < 4096 ? 4096 : cfg->server.max_header;
    s->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
        MHD_OPTION_THREAD_POOL_SIZE, threads, MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
        MHD_OPTION_CONNECTION_LIMIT, cfg->server.max_connections, MHD_OPTION_CONNECTION_TIMEOUT,
        cfg->server.timeout_s, MHD_OPTION_CONNECTION_MEMORY_LIMIT, mem,
        MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
        MHD_OPTION_ARRAY, extra, MHD_OPTION_END);
    if (!s->daemon) {
        xd_buf_printf(err, "cannot listen on %s: %s", cfg->server.listen, strerror(errno));
        xd_tls_destroy(s->tls);
        xd_auth_destroy(s->auth);
        xd_stats_stop(s->stats);
        free(s);
        return XD_EIO;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info ? info->port : 0;
    *out = s;
    return 0;
}

unsigned short xd_server_port(const struct xd_server *s)
{
    return s->port;
}

void xd_server_stop(struct xd_server *s, unsigned drain_ms)
{
    if (!s)
        return;
    atomic_store(&s->stopping, 1);
    /* Stop accepting; the listen socket is ours to close, after the daemon is gone. */
    MHD_socket fd = MHD_quiesce_daemon(s->daemon);
    /* Let every request in flight (read, committing, or being answered) finish. */
    struct timespec tick = {0, 10 * 1000 * 1000};
    for (unsigned waited = 0; atomic_load(&s->inflight) > 0 && waited < drain_ms; waited += 10)
        nanosleep(&tick, NULL);
    MHD_stop_daemon(s->daemon);
    if (fd != MHD_INVALID_SOCKET)
        close(fd);
    xd_tls_destroy(s->tls);
    xd_auth_destroy(s->auth);
    xd_stats_stop(s->stats);
    free(s);
}

int xd_server_reload(struct xd_server *s, struct xd_buf *report)
{
    int bad = 0;
    struct xd_buf why;
    xd_buf_init(&why);
    int n = xd_auth_reload(s->auth, &why);
    if (n < 0) {
        bad = n;
        xd_buf_printf(report, "keys not reloaded, the ones in force stay: %s", xd_buf_str(&why));
    } else {
        xd_buf_printf(report, "%d key%s in force", n, n == 1 ? "" : "s");
    }
    if (s->tls) {
        xd_buf_reset(&why);
        int rc = xd_tls_reload(s->tls, &why);
        if (rc < 0) {
            bad = bad ? bad : rc;
            xd_buf_printf(report, "; certificate not reloaded, the one in use stays: %s",
                          xd_buf_str(&why));
        } else {
            xd_buf_puts(report, "; certificate reloaded: ");
            xd_tls_describe(s->tls, report);
        }
    }
    xd_buf_dispose(&why);
    for (size_t i = 0; i < report->len; i++) /* one line, whatever the files' errors were */
        if (report->data[i] == '\n')
            report->data[i] = i + 1 == report->len ? ' ' : ';';
    while (report->len && report->data[report->len - 1] == ' ')
        report->data[--report->len] = '\0';
    return bad;
}

int xd_server_tls(const struct xd_server *s)
{
    return s->tls != NULL;
}
