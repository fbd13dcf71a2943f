/*
 * libFuzzer target: one HTTP request through the API's whole request path
 * (api/server.c): route lookup, API key and scope, Content-Type, declared
 * and actual body size, signature check, the handler, suspend/resume while
 * the store commits, the answer, and the audit hook. No socket: the input
 * is parsed here into a method, a path with a query, headers and a body,
 * and server.c's own MHD callbacks (exposed with XD_FUZZ_HOOKS) are called
 * the way libmicrohttpd calls them. The few connection-level MHD functions
 * that path uses are defined below; being defined in the executable, they
 * take the place of libmicrohttpd's for every caller (symbol interposition).
 *
 * Input, as text:   METHOD SP PATH[?QUERY] LF
 *                   (Name: value LF)*
 *                   LF
 *                   BODY
 * The hub behind it has a real SQLite store (in a temporary folder, with
 * synchronous=normal), API keys (the seed corpus uses the ops/admin one,
 * "Bearer fuzz-secret-all"), a rate card, no routes and no dispatcher.
 */
#include "api/auth.h"
#include "api/http.h"
#include "core/config.h"
#include "core/log.h"
#include "store/store.h"

#include <sched.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define MAX_PAIRS 32

struct pair {
    const char *name, *value;
};

/* What the fake connection holds: the request's headers and query arguments. */
struct fake_conn {
    struct pair headers[MAX_PAIRS], args[MAX_PAIRS];
    size_t nheaders, nargs;
    atomic_int resumed;
    unsigned status; /* what the answer was queued with */
};

/* ---- the MHD functions the request path calls on a connection ---- */

const char *MHD_lookup_connection_value(struct MHD_Connection *connection, enum MHD_ValueKind kind,
                                        const char *key)
{
    struct fake_conn *c = (struct fake_conn *)connection;
    if (!c || !key)
        return NULL;
    if (kind == MHD_HEADER_KIND) {
        for (size_t i = 0; i < c->nheaders; i++)
            if (strcasecmp(c->headers[i].name, key) == 0)
                return c->headers[i].value;
    } else if (kind == MHD_GET_ARGUMENT_KIND) {
        for (size_t i = 0; i < c->nargs; i++)
            if (strcmp(c->args[i].name, key) == 0)
                return c->args[i].value;
    }
    return NULL;
}

enum MHD_Result MHD_queue_response(struct MHD_Connection *connection, unsigned int status_code,
                                   struct MHD_Response *response)
{
    (void)response;
    ((struct fake_conn *)connection)->status = status_code;
    return MHD_YES;
}

void MHD_suspend_connection(struct MHD_Connection *connection)
{
    (void)connection;
}

void MHD_resume_connection(struct MHD_Connection *connection)
{
    atomic_store(&((struct fake_conn *)connection)->resumed, 1);
}

const union MHD_ConnectionInfo *MHD_get_connection_info(struct MHD_Connection *connection,
                                                        enum MHD_ConnectionInfoType info_type, ...)
{
    (void)connection, (void)info_type;
    return NULL;
}

/* ---- the hub behind it ---- */

static struct xd_server srv;
static char dir[] = "/tmp/xd-fuzz-http-XXXXXX";

/* At exit: the store closed (its committer drained) and its folder removed. */
static void hub_fini(void)
{
    static const char *const files[] = {"fuzz.db", "fuzz.db-wal", "fuzz.db-shm"};
    xd_store_close(srv.store);
    xd_auth_destroy(srv.auth);
    xd_config_destroy((struct xd_config *)srv.cfg);
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char path[sizeof dir + 16];
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        unlink(path);
    }
    rmdir(dir);
}

static const char config_fmt[] =
    "server: {listen: \"127.0.0.1:9\", max_body: 65536, max_batch: 20}\n"
    "store: {driver: sqlite, path: \"%s/fuzz.db\", synchronous: normal}\n"
    "auth:\n"
    "  keys:\n"
    "    - {id: fuzz-all, secret_env: XD_FUZZ_KEY_ALL,"
    " scopes: [events:write, read, ops, admin]}\n"
    "    - {id: fuzz-read, secret_env: XD_FUZZ_KEY_READ, scopes: [read], rate_limit: 100000}\n"
    "rate_cards:\n"
    "  - customer: ACME\n"
    "    currency: USD\n"
    "    effective_from: 2026-01-01\n"
    "    minimum_monthly: \"100.00\"\n"
    "    charges:\n"
    "      - {code: PICK_UNIT, on: shipment.confirmed, per: unit, price: \"0.35\"}\n";

static void hub_init(void)
{
    if (!mkdtemp(dir))
        abort();
    setenv("XD_FUZZ_KEY_ALL", "fuzz-secret-all", 1);
    setenv("XD_FUZZ_KEY_READ", "fuzz-secret-read", 1);
    xd_log_setup(XD_LOG_ERROR, 0);
    char text[2048];
    int n = snprintf(text, sizeof text, config_fmt, dir);
    struct xd_buf err;
    xd_buf_init(&err);
    struct xd_config *cfg = xd_config_parse("fuzz.yaml", text, (size_t)n, &err);
    if (!cfg) {
        fprintf(stderr, "fuzz_http: config: %s\n", xd_buf_str(&err));
        abort();
    }
    struct xd_store *store = NULL;
    if (xd_store_open(cfg, &store, &err) < 0) {
        fprintf(stderr, "fuzz_http: store: %s\n", xd_buf_str(&err));
        abort();
    }
    xd_buf_dispose(&err);
    srv.cfg = cfg;
    srv.store = store;
    if (xd_auth_create(cfg, &srv.auth, &err) < 0) {
        fprintf(stderr, "fuzz_http: keys: %s\n", xd_buf_str(&err));
        abort();
    }
    xd_buf_dispose(&err);
    atexit(hub_fini);
}

/* ---- one input ---- */

/* The next line of [*p, end) as a NUL-terminated copy in out (CR LF or LF ends it). */
static int next_line(const char **p, const char *end, char *out, size_t cap)
{
    if (*p >= end)
        return -1;
    const char *nl = memchr(*p, '\n', (size_t)(end - *p));
    const char *stop = nl ? nl : end;
    size_t n = (size_t)(stop - *p);
    if (n && (*p)[n - 1] == '\r')
        n--;
    if (n >= cap)
        n = cap - 1;
    memcpy(out, *p, n);
    out[n] = '\0';
    *p = nl ? nl + 1 : end;
    return 0;
}

/* Splits "a=1&b=2" (in place) into the connection's arguments. */
static void parse_query(struct fake_conn *c, char *q)
{
    while (q && *q && c->nargs < MAX_PAIRS) {
        char *amp = strchr(q, '&');
        if (amp)
            *amp = '\0';
        char *eq = strchr(q, '=');
        if (eq)
            *eq = '\0';
        c->args[c->nargs].name = q;
        c->args[c->nargs].value = eq ? eq + 1 : "";
        c->nargs++;
        q = amp ? amp + 1 : NULL;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    if (!ready) {
        hub_init();
        ready = 1;
    }
    const char *p = (const char *)data, *end = p + size;
    char first[2048], lines[MAX_PAIRS][512];
    if (next_line(&p, end, first, sizeof first) < 0)
        return 0;
    char *sp = strchr(first, ' ');
    if (!sp || sp == first)
        return 0;
    *sp = '\0';
    const char *method = first;
    char *url = sp + 1;
    if (*url != '/')
        return 0;

    struct fake_conn conn;
    memset(&conn, 0, sizeof conn);
    char *q = strchr(url, '?');
    if (q)
        *q++ = '\0';
    parse_query(&conn, q);
    while (conn.nheaders < MAX_PAIRS) {
        char *line = lines[conn.nheaders];
        if (next_line(&p, end, line, sizeof lines[0]) < 0 || !*line)
            break;
        char *colon = strchr(line, ':');
        if (!colon)
            continue;
        *colon = '\0';
        char *v = colon + 1;
        while (*v == ' ')
            v++;
        conn.headers[conn.nheaders].name = line;
        conn.headers[conn.nheaders].value = v;
        conn.nheaders++;
    }
    const char *body = p;
    size_t blen = (size_t)(end - p);

    /* As libmicrohttpd calls: headers, the body in pieces, the end, and after a resume. */
    struct MHD_Connection *mc = (struct MHD_Connection *)&conn;
    void *cls = NULL;
    size_t n = 0;
    xd_fuzz_on_request(&srv, mc, url, method, "HTTP/1.1", NULL, &n, &cls);
    size_t half = blen / 2;
    const char *pieces[2] = {body, body + half};
    size_t lens[2] = {half, blen - half};
    for (int i = 0; i < 2; i++) {
        if (!lens[i])
            continue;
        n = lens[i];
        xd_fuzz_on_request(&srv, mc, url, method, "HTTP/1.1", pieces[i], &n, &cls);
    }
    n = 0;
    xd_fuzz_on_request(&srv, mc, url, method, "HTTP/1.1", NULL, &n, &cls);
    struct xd_req *r = cls;
    if (r && r->suspended) {
        while (!atomic_load(&conn.resumed))
            sched_yield(); /* the store's committer resumes it */
        n = 0;
        xd_fuzz_on_request(&srv, mc, url, method, "HTTP/1.1", NULL, &n, &cls);
    }
    if (cls && !((struct xd_req *)cls)->sent)
        abort(); /* every request must be answered */
    xd_fuzz_on_completed(&srv, mc, &cls, MHD_REQUEST_TERMINATED_COMPLETED_OK);
    return 0;
}
