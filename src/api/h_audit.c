/*
 * The audit log over HTTP, and the hook that records operator actions taken
 * through it (audit/audit.h):
 *
 *   GET /v1/audit?after=SEQ&limit=N    the entries after SEQ, oldest first
 *                                      (scope ops or admin), with the head
 *
 * xd_audit_http() runs for every answer (server.c send_answer): a request
 * to a route that needs `ops` or `admin` and is not a read is recorded with
 * the key that made it, the status it got and its JSON body, whether it
 * succeeded or not. Requests that never showed a valid key (401) are not
 * recorded (anyone could fill the log with them; they are counted in
 * /metrics), nor those refused by the key's rate limit (429).
 */
#include "api/http.h"
#include "audit/audit.h"
#include "audit/chain.h"
#include "core/clock.h"
#include "core/err.h"
#include "formats/json.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LIST_DEFAULT    100
#define LIST_MAX        1000
#define BODY_KEPT_MAX   4096 /* a request body larger than this is recorded by size only */
#define ANSWER_KEPT_MAX 1024

/* The operator actions with names of their own; any other ops/admin change is "METHOD PATTERN". */
static const struct {
    const char *method, *pattern, *action;
} actions[] = {
    {"POST", "/v1/deliveries/{id}/replay", "delivery.replay"},
    {"POST", "/v1/deliveries/replay", "delivery.replay_bulk"},
    {"PATCH", "/v1/exceptions/{id}", "exception.update"},
    {"POST", "/v1/billing/close", "billing.close"},
};

/* Appends text as a compact JSON value when it is JSON (within limits), else as {"bytes":N}. */
static void put_json_or_size(struct xd_buf *d, const char *text, size_t len, size_t max)
{
    cJSON *v = NULL;
    struct xd_json_limits lim = {.max_depth = 16, .max_string = max};
    struct xd_json_error jerr;
    if (text && len && len <= max && xd_json_parse(text, len, &lim, &v, &jerr) == 0)
        xd_json_write(d, v);
    else
        xd_buf_printf(d, "{\"bytes\":%zu}", len);
    cJSON_Delete(v);
}

static void put_client(struct xd_buf *d, struct xd_req *r)
{
    const union MHD_ConnectionInfo *ci =
        r->conn ? MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS) : NULL;
    char ip[INET6_ADDRSTRLEN] = "";
    if (ci && ci->client_addr) {
        const struct sockaddr *sa = ci->client_addr;
        if (sa->sa_family == AF_INET)
            inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, ip, sizeof ip);
        else if (sa->sa_family == AF_INET6)
            inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, ip, sizeof ip);
    }
    if (ip[0]) {
        xd_buf_puts(d, ",\"client\":");
        xd_buf_json_str(d, ip);
    }
}

void xd_audit_http(struct xd_req *r)
{
    const struct xd_http_route *rt = r->route;
    if (!rt || !(rt->scope & (XD_SCOPE_OPS | XD_SCOPE_ADMIN)) || strcmp(rt->method, "GET") == 0)
        return;
    if (r->status == 401 || r->status == 429 || (r->srv->cfg->auth.nkeys && !r->key))
        return;
    char action[160];
    snprintf(action, sizeof action, "%s %s", rt->method, rt->pattern);
    for (size_t i = 0; i < sizeof actions / sizeof actions[0]; i++)
        if (strcmp(actions[i].method, rt->method) == 0 &&
            strcmp(actions[i].pattern, rt->pattern) == 0)
            snprintf(action, sizeof action, "%s", actions[i].action);

    struct xd_buf d;
    xd_buf_init(&d);
    xd_buf_puts(&d, "{\"method\":");
    xd_buf_json_str(&d, rt->method);
    xd_buf_printf(&d, ",\"status\":%u", r->status);
    put_client(&d, r);
    xd_buf_puts(&d, ",\"request\":");
    put_json_or_size(&d, r->body.data, r->body.len, BODY_KEPT_MAX);
    if (r->status >= 200 && r->status < 300) {
        xd_buf_puts(&d, ",\"answer\":");
        put_json_or_size(&d, r->out.data, r->out.len, ANSWER_KEPT_MAX);
    } else if (r->problem) {
        xd_buf_puts(&d, ",\"problem\":");
        xd_buf_json_str(&d, r->problem);
    }
    xd_buf_putc(&d, '}');
    if (!d.oom)
        xd_audit_record(r->srv->store, r->key ? r->key->id : "anonymous", action,
                        r->url ? r->url : "", d.data);
    xd_buf_dispose(&d);
}

/* ---- GET /v1/audit ---- */

static const char *arg(struct xd_req *r, const char *name)
{
    const char *v = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
    return v && *v ? v : NULL;
}

/* A non-negative integer argument: 0 when absent, -1 on junk. */
static long long num_arg(const char *v)
{
    if (!v)
        return 0;
    char *end;
    long long n = strtoll(v, &end, 10);
    return *end || n < 0 ? -1 : n;
}

struct list_ctx {
    struct xd_buf *o;
    size_t n;
    int64_t last;
};

static void entry_json(struct xd_buf *o, const struct xd_audit_entry *e)
{
    char at[40], hex[2 * XD_AUDIT_HASH_LEN + 1];
    xd_iso_ms(at, sizeof at, e->at_ms);
    xd_buf_printf(o, "{\"seq\":%lld,\"at\":\"%s\",\"actor\":", (long long)e->seq, at);
    xd_buf_json_str(o, e->actor ? e->actor : "");
    xd_buf_puts(o, ",\"action\":");
    xd_buf_json_str(o, e->action ? e->action : "");
    xd_buf_puts(o, ",\"object\":");
    xd_buf_json_str(o, e->object ? e->object : "");
    xd_buf_puts(o, ",\"detail\":");
    /* As stored; text that is not JSON (a damaged row) is shown as a string. */
    cJSON *v = NULL;
    struct xd_json_limits lim = {.max_depth = 64};
    struct xd_json_error jerr;
    if (e->detail && xd_json_parse(e->detail, strlen(e->detail), &lim, &v, &jerr) == 0)
        xd_json_write(o, v);
    else
        xd_buf_json_str(o, e->detail ? e->detail : "");
    cJSON_Delete(v);
    xd_audit_hex(e->prev, hex);
    xd_buf_printf(o, ",\"prev\":\"%s\"", hex);
    xd_audit_hex(e->hash, hex);
    xd_buf_printf(o, ",\"hash\":\"%s\"}", hex);
}

static void list_row(void *ctx, struct xd_audit_entry *e)
{
    struct list_ctx *c = ctx;
    if (c->n++)
        xd_buf_putc(c->o, ',');
    entry_json(c->o, e);
    c->last = e->seq;
    xd_audit_entry_dispose(e);
}

void xd_h_audit_list(struct xd_req *r)
{
    long long after = num_arg(arg(r, "after")), limit = num_arg(arg(r, "limit"));
    if (after < 0 || limit < 0) {
        xd_http_problem(r, 400, "bad-query", "Bad Request",
                        "after and limit must be non-negative integers", NULL);
        return;
    }
    size_t lim = limit == 0 ? LIST_DEFAULT : (limit > LIST_MAX ? LIST_MAX : (size_t)limit);
    struct xd_audit_entry head;
    int rc = xd_store_audit_head(r->srv->store, &head);
    if (rc < 0 && rc != XD_ENOTFOUND) {
        xd_http_store_error(r, rc);
        return;
    }
    struct xd_buf *o = &r->out;
    xd_buf_reset(o);
    xd_buf_puts(o, "{\"entries\":[");
    struct list_ctx c = {.o = o};
    int lr = xd_store_list_audit(r->srv->store, after, lim, list_row, &c);
    if (lr < 0) {
        xd_http_store_error(r, lr);
        return;
    }
    xd_buf_putc(o, ']');
    if (c.n == lim)
        xd_buf_printf(o, ",\"next_after\":%lld", (long long)c.last);
    if (rc == 0) {
        char hex[2 * XD_AUDIT_HASH_LEN + 1];
        xd_audit_hex(head.hash, hex);
        xd_buf_printf(o, ",\"head\":{\"seq\":%lld,\"hash\":\"%s\"}", (long long)head.seq, hex);
    } else {
        xd_buf_puts(o, ",\"head\":null");
    }
    xd_buf_putc(o, '}');
    xd_http_reply_json(r, 200);
}
