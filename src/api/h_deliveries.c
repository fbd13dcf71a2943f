/*
 * Deliveries and the dead-letter queue over HTTP:
 *
 *   GET  /v1/deliveries?state=dead&target=T&route=R&error_class=C&event_id=E
 *        &from=MS&to=MS&after=ID&limit=N          list (paged by id)
 *   GET  /v1/deliveries/count?(same filters)      how many match, and the filter
 *   GET  /v1/deliveries/{id}                      one, with its mapped payload,
 *                                                 the original event and every attempt
 *   POST /v1/deliveries/{id}/replay               put one dead delivery back in line
 *   POST /v1/deliveries/replay                    replay every dead delivery matching a
 *                                                 filter body {"target", "route",
 *                                                 "error_class", "from", "to"}
 *
 * A replay keeps the delivery's Idempotency-Key, resets its attempt count,
 * and leaves an entry in its timeline. Replays go through the store's group
 * commit like everything else.
 */
#include "api/http.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "formats/json.h"
#include "route/dlq.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LIST_MAX 1000      /* most rows one listing returns */

static const char *arg(struct xd_req *r, const char *name)
{
    const char *v = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
    return v && *v ? v : NULL;
}

/* Parses a non-negative integer argument; -1 on junk. */
static long long num_arg(const char *v)
{
    if (!v)
        return 0;
    char *end;
    long long n = strtoll(v, &end, 10);
    return *end || n < 0 ? -1 : n;
}

static int time_arg(const char *v, int64_t *out)
{
    if (!v)
        return 0;
    long long n = num_arg(v);
    if (n >= 0) {
        *out = n;
        return 0;
    }
    return xd_parse_time_ms(v, out);
}

struct list_ctx {
    struct xd_buf *o;
    size_t n;
    int64_t last_id;
};

static void list_row(void *ctx, struct xd_stored_dlv *d)
{
    struct list_ctx *c = ctx;
    if (c->n++)
        xd_buf_putc(c->o, ',');
    xd_dlq_json(c->o, d, 0);
    c->last_id = d->id;
    xd_stored_dlv_dispose(d);
}

/* The query's filter (state, target, route, error_class, event_id, from, to, after, limit). */
static int query_filter(struct xd_req *r, struct xd_dlv_filter *f)
{
    memset(f, 0, sizeof *f);
    f->state = -1;
    const char *state = arg(r, "state");
    if (state) {
        f->state = xd_dlv_state_parse(state);
        if (f->state < 0) {
            xd_http_problem(r, 400, "bad-query", "Bad Request",
                            "state must be pending, done, dead, skipped or held", NULL);
            return -1;
        }
    }
    f->target = arg(r, "target");
    f->route = arg(r, "route");
    f->error_class = arg(r, "error_class");
    f->event_id = arg(r, "event_id");
    long long limit = num_arg(arg(r, "limit")), after = num_arg(arg(r, "after"));
    int64_t from = 0, to = 0;
    if (limit < 0 || after < 0 || time_arg(arg(r, "from"), &from) < 0 ||
        time_arg(arg(r, "to"), &to) < 0) {
        xd_http_problem(r, 400, "bad-query", "Bad Request",
                        "limit and after must be non-negative integers; from and to RFC 3339 "
                        "times, dates or unix milliseconds",
                        NULL);
        return -1;
    }
    f->limit = limit == 0 ? 100 : (limit > LIST_MAX ? LIST_MAX : (size_t)limit);
    f->after_id = after;
    f->from_ms = from;
    f->to_ms = to;
    return 0;
}

/*
 * GET /v1/deliveries/count?state=dead&target=T...: how many deliveries the
 * filter matches, and the filter as understood (what a bulk replay of it
 * would take: the dashboard shows both before it asks).
 */
void xd_h_deliveries_count(struct xd_req *r)
{
    struct xd_dlv_filter f;
    if (query_filter(r, &f) < 0)
        return;
    int64_t n = 0;
    int rc = xd_store_count_matching(r->srv->store, &f, &n);
    if (rc < 0) {
        xd_http_store_error(r, rc);
        return;
    }
    struct xd_buf *o = &r->out;
    xd_buf_reset(o);
    xd_buf_printf(o, "{\"count\":%lld,\"filter\":{", (long long)n);
    int first = 1;
    if (f.state >= 0) {
        xd_buf_printf(o, "\"state\":\"%s\"", xd_dlv_state_name(f.state));
        first = 0;
    }
    const struct {
        const char *k, *v;
    } kv[] = {{"target", f.target}, {"route", f.route}, {"error_class", f.error_class},
              {"event_id", f.event_id}};
    for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++) {
        if (!kv[i].v)
            continue;
        xd_buf_printf(o, "%s\"%s\":", first ? "" : ",", kv[i].k);
        xd_buf_json_str(o, kv[i].v);
        first = 0;
    }
    if (f.from_ms)
        xd_buf_printf(o, "%s\"from\":%lld", first ? "" : ",", (long long)f.from_ms), first = 0;
    if (f.to_ms)
        xd_buf_printf(o, "%s\"to\":%lld", first ? "" : ",", (long long)f.to_ms);
    xd_buf_puts(o, "}}");
    xd_http_reply_json(r, 200);
}

void xd_h_deliveries_list(struct xd_req *r)
{
    struct xd_dlv_filter f;
    if (query_filter(r, &f) < 0)
        return;

    struct xd_buf *o = &r->out;
    xd_buf_reset(o);
    xd_buf_puts(o, "{\"deliveries\":[");
    struct list_ctx c = {.o = o};
    int rc = xd_store_list_deliveries(r->srv->store, &f, list_row, &c);
    if (rc < 0) {
        xd_http_store_error(r, rc);
        return;
    }
    xd_buf_putc(o, ']');
    if (c.n == f.limit)
        xd_buf_printf(o, ",\"next_after\":%lld", (long long)c.last_id);
    xd_buf_putc(o, '}');
    xd_http_reply_json(r, 200);
}

static int parse_id(struct xd_req *r, int64_t *id)
{
    return xd_http_param_id(r, "no such delivery", id);
}

void xd_h_delivery_get(struct xd_req *r)
{
    int64_t id;
    if (parse_id(r, &id) < 0)
        return;
    struct xd_stored_dlv d;
    int rc = xd_store_get_delivery(r->srv->store, id, &d);
    if (rc == XD_ENOTFOUND) {
        xd_http_problem(r, 404, "not-found", "Not Found", "no such delivery", NULL);
        return;
    }
    if (rc < 0) {
        xd_http_store_error(r, rc);
        return;
    }
    struct xd_stored_event ev;
    rc = xd_store_get_event(r->srv->store, d.event_id, &ev);
    struct xd_buf *o = &r->out;
    xd_buf_reset(o);
    xd_dlq_json(o, &d, 1);
    o->len--; /* reopen the object */
    xd_buf_puts(o, ",\"event\":");
    xd_buf_puts(o, rc == 0 ? ev.body : "null");
    xd_buf_puts(o, ",\"attempts_log\":[");
    if (rc == 0)
        xd_dlq_json_attempts(r->srv->store, o, ev.seq, d.id);
    xd_buf_puts(o, "]}");
    if (rc == 0)
        xd_stored_event_dispose(&ev);
    xd_stored_dlv_dispose(&d);
    xd_http_reply_json(r, 200);
}

void xd_h_delivery_replay(struct xd_req *r)
{
    int64_t id;
    if (parse_id(r, &id) < 0)
        return;
    size_t applied = 0;
    int rc = xd_dlq_replay_ids(r->srv->store, &id, 1, r->key ? r->key->id : NULL, &applied);
    if (rc < 0) {
        xd_http_store_error(r, rc);
        return;
    }
    if (!applied) {
        struct xd_stored_dlv d;
        rc = xd_store_get_delivery(r->srv->store, id, &d);
        if (rc == XD_ENOTFOUND) {
            xd_http_problem(r, 404, "not-found", "Not Found", "no such delivery", NULL);
            return;
        }
        char detail[160];
        snprintf(detail, sizeof detail, "delivery %lld is %s, not dead: nothing to replay",
                 (long long)id, rc == 0 ? xd_dlv_state_name(d.state) : "unknown");
        if (rc == 0)
            xd_stored_dlv_dispose(&d);
        xd_http_problem(r, 409, "not-dead", "Conflict", detail, NULL);
        return;
    }
    xd_buf_reset(&r->out);
    xd_buf_printf(&r->out, "{\"replayed\":[%lld]}", (long long)id);
    xd_http_reply_json(r, 200);
}

static const char *json_str(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) && v->valuestring[0] ? v->valuestring : NULL;
}

/* A time in a filter: unix ms, a date, or an RFC 3339 date-time. */
static int time_field(const cJSON *o, const char *k, int64_t *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!v || cJSON_IsNull(v))
        return 0;
    if (cJSON_IsNumber(v) && v->valuedouble >= 0) {
        *out = (int64_t)v->valuedouble;
        return 0;
    }
    if (cJSON_IsString(v))
        return xd_parse_time_ms(v->valuestring, out);
    return -1;
}

void xd_h_deliveries_replay(struct xd_req *r)
{
    struct xd_dlv_filter f = {.state = XD_DLV_DEAD};
    cJSON *body = NULL;
    if (r->body.len) {
        struct xd_json_limits lim = {.max_depth = 8, .max_string = 1024};
        struct xd_json_error jerr;
        if (xd_json_parse(r->body.data, r->body.len, &lim, &body, &jerr) < 0 ||
            !cJSON_IsObject(body)) {
            cJSON_Delete(body);
            xd_http_problem(r, 400, "malformed-json", "Malformed JSON",
                            "expected a filter object {\"target\", \"route\", \"error_class\", "
                            "\"from\", \"to\"}",
                            NULL);
            return;
        }
        f.target = json_str(body, "target");
        f.route = json_str(body, "route");
        f.error_class = json_str(body, "error_class");
        if (time_field(body, "from", &f.from_ms) < 0 || time_field(body, "to", &f.to_ms) < 0) {
            cJSON_Delete(body);
            xd_http_problem(r, 400, "bad-filter", "Bad Request",
                            "from and to must be RFC 3339 times, dates, or unix milliseconds",
                            NULL);
            return;
        }
    }
    size_t total = 0;
    int rc = xd_dlq_replay_filter(r->srv->store, f, r->key ? r->key->id : NULL, &total);
    cJSON_Delete(body);
    if (rc < 0) {
        xd_http_store_error(r, rc);
        return;
    }
    xd_buf_reset(&r->out);
    xd_buf_printf(&r->out, "{\"replayed\":%zu}", total);
    xd_http_reply_json(r, 200);
}
