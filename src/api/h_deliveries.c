/*
 * Deliveries and the dead-letter queue over HTTP:
 *
 *   GET  /v1/deliveries?state=dead&target=T&route=R&error_class=C&event_id=E
 *        &from=MS&to=MS&after=ID&limit=N          list (paged by id)
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

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LIST_MAX 1000      /* most rows one listing returns */
#define REPLAY_PAGE 500    /* bulk replay works through the matches in pages */

static void put_time(struct xd_buf *o, const char *name, int64_t ms)
{
    char when[96];
    xd_iso_ms(when, sizeof when, ms);
    xd_buf_printf(o, ",\"%s\":\"%s\"", name, when);
}

void xd_json_delivery(struct xd_buf *o, const struct xd_stored_dlv *d, int full)
{
    xd_buf_printf(o, "{\"id\":%lld,\"event_id\":", (long long)d->id);
    xd_buf_json_str(o, d->event_id ? d->event_id : "");
    xd_buf_puts(o, ",\"target\":");
    xd_buf_json_str(o, d->target ? d->target : "");
    xd_buf_puts(o, ",\"route\":");
    xd_buf_json_str(o, d->route ? d->route : "");
    xd_buf_printf(o, ",\"step\":%u,\"state\":\"%s\",\"attempts\":%u", d->step,
                  xd_dlv_state_name(d->state), d->attempts);
    if (d->last_status)
        xd_buf_printf(o, ",\"last_status\":%d", d->last_status);
    xd_buf_puts(o, ",\"last_error\":");
    if (d->last_error)
        xd_buf_json_str(o, d->last_error);
    else
        xd_buf_puts(o, "null");
    if (d->error_class) {
        xd_buf_puts(o, ",\"error_class\":");
        xd_buf_json_str(o, d->error_class);
    }
    xd_buf_puts(o, ",\"business_key\":");
    xd_buf_json_str(o, d->bkey ? d->bkey : "");
    put_time(o, "created_at", d->created_ms);
    put_time(o, "updated_at", d->updated_ms);
    if (d->state == XD_DLV_PENDING)
        put_time(o, "next_attempt_at", d->next_ms);
    if (full) {
        xd_buf_puts(o, ",\"payload\":");
        if (d->payload)
            xd_buf_json_str(o, d->payload); /* as sent: a string, it may not be JSON */
        else
            xd_buf_puts(o, "null");
    }
    xd_buf_putc(o, '}');
}

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
    xd_json_delivery(c->o, d, 0);
    c->last_id = d->id;
    xd_stored_dlv_dispose(d);
}

void xd_h_deliveries_list(struct xd_req *r)
{
    struct xd_dlv_filter f = {.state = -1};
    const char *state = arg(r, "state");
    if (state) {
        f.state = xd_dlv_state_parse(state);
        if (f.state < 0) {
            xd_http_problem(r, 400, "bad-query", "Bad Request",
                            "state must be pending, done, dead or skipped", NULL);
            return;
        }
    }
    f.target = arg(r, "target");
    f.route = arg(r, "route");
    f.error_class = arg(r, "error_class");
    f.event_id = arg(r, "event_id");
    long long limit = num_arg(arg(r, "limit")), after = num_arg(arg(r, "after"));
    long long from = num_arg(arg(r, "from")), to = num_arg(arg(r, "to"));
    if (limit < 0 || after < 0 || from < 0 || to < 0) {
        xd_http_problem(r, 400, "bad-query", "Bad Request",
                        "limit, after, from and to must be non-negative integers (from/to: unix ms)",
                        NULL);
        return;
    }
    f.limit = limit == 0 ? 100 : (limit > LIST_MAX ? LIST_MAX : (size_t)limit);
    f.after_id = after;
    f.from_ms = from;
    f.to_ms = to;

    struct xd_buf *o = &r->out;
    xd_buf_reset(o);
    xd_buf_puts(o, "{\"deliveries\":[");
    struct list_ctx c = {.o = o};
    int rc = xd_store_list_deliveries(r->srv->store, &f, list_row, &c);
    if (rc < 0) {
        snprintf(r->retry_after, sizeof r->retry_after, "5");
        xd_http_problem(r, 503, "store-unavailable", "Service Unavailable", xd_strerror(rc), NULL);
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
    char *end;
    long long v = strtoll(r->param, &end, 10);
    if (*end || v <= 0) {
        xd_http_problem(r, 404, "not-found", "Not Found", "no such delivery", NULL);
        return -1;
    }
    *id = v;
    return 0;
}

struct attempts_ctx {
    struct xd_buf *o;
    int64_t delivery_id; /* only this delivery's, or 0 for all */
    size_t n;
};

static void attempt_row(void *ctx, const struct xd_stored_attempt *a)
{
    struct attempts_ctx *c = ctx;
    if (c->delivery_id && a->delivery_id != c->delivery_id)
        return;
    if (c->n++)
        xd_buf_putc(c->o, ',');
    char when[96];
    xd_iso_ms(when, sizeof when, a->at_ms);
    xd_buf_printf(c->o, "{\"delivery_id\":%lld,\"at\":\"%s\",\"outcome\":",
                  (long long)a->delivery_id, when);
    xd_buf_json_str(c->o, a->outcome ? a->outcome : "");
    if (a->status)
        xd_buf_printf(c->o, ",\"status\":%d", a->status);
    xd_buf_printf(c->o, ",\"latency_ms\":%.3f", (double)a->latency_us / 1000.0);
    if (a->error) {
        xd_buf_puts(c->o, ",\"error\":");
        xd_buf_json_str(c->o, a->error);
    }
    xd_buf_putc(c->o, '}');
}

int xd_json_attempts(struct xd_store *s, struct xd_buf *o, int64_t event_seq, int64_t delivery_id)
{
    struct attempts_ctx c = {.o = o, .delivery_id = delivery_id};
    return xd_store_list_attempts(s, event_seq, attempt_row, &c);
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
        snprintf(r->retry_after, sizeof r->retry_after, "5");
        xd_http_problem(r, 503, "store-unavailable", "Service Unavailable", xd_strerror(rc), NULL);
        return;
    }
    struct xd_stored_event ev;
    rc = xd_store_get_event(r->srv->store, d.event_id, &ev);
    struct xd_buf *o = &r->out;
    xd_buf_reset(o);
    xd_json_delivery(o, &d, 1);
    o->len--; /* reopen the object */
    xd_buf_puts(o, ",\"event\":");
    xd_buf_puts(o, rc == 0 ? ev.body : "null");
    xd_buf_puts(o, ",\"attempts_log\":[");
    if (rc == 0)
        xd_json_attempts(r->srv->store, o, ev.seq, d.id);
    xd_buf_puts(o, "]}");
    if (rc == 0)
        xd_stored_event_dispose(&ev);
    xd_stored_dlv_dispose(&d);
    xd_http_reply_json(r, 200);
}

/* Replays: submitted to the store and waited for (replays are rare, not hot). */
static int replay_ids(struct xd_req *r, const int64_t *ids, size_t n, size_t *applied)
{
    struct xd_outcome_rec *recs = calloc(n ? n : 1, sizeof *recs);
    unsigned char *res = calloc(n ? n : 1, 1);
    if (!recs || !res) {
        free(recs);
        free(res);
        return XD_ENOMEM;
    }
    int64_t now = xd_now_ms();
    char who[160];
    snprintf(who, sizeof who, "replayed by %s", r->key ? r->key->id : "an operator");
    for (size_t i = 0; i < n; i++) {
        recs[i].delivery_id = ids[i];
        recs[i].state = XD_DLV_PENDING;
        recs[i].next_ms = now;
        recs[i].at_ms = now;
        recs[i].outcome = "replayed";
        recs[i].error = who;
        recs[i].only_if_dead = 1;
        recs[i].reset_attempts = 1;
    }
    struct xd_append a = {.outcomes = recs, .noutcomes = n, .results = res};
    int rc = xd_store_append(r->srv->store, &a);
    *applied = 0;
    for (size_t i = 0; rc == 0 && i < n; i++)
        *applied += res[i];
    free(recs);
    free(res);
    if (rc == 0 && *applied)
        xd_info("replay: %zu delivery(ies) put back in line by %s", *applied,
                r->key ? r->key->id : "an operator");
    return rc;
}

void xd_h_delivery_replay(struct xd_req *r)
{
    int64_t id;
    if (parse_id(r, &id) < 0)
        return;
    size_t applied = 0;
    int rc = replay_ids(r, &id, 1, &applied);
    if (rc < 0) {
        snprintf(r->retry_after, sizeof r->retry_after, "5");
        xd_http_problem(r, 503, "store-unavailable", "Service Unavailable", xd_strerror(rc), NULL);
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

struct ids_ctx {
    int64_t *ids;
    size_t n;
};

static void collect_id(void *ctx, struct xd_stored_dlv *d)
{
    struct ids_ctx *c = ctx;
    c->ids[c->n++] = d->id;
    xd_stored_dlv_dispose(d);
}

static const char *json_str(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) && v->valuestring[0] ? v->valuestring : NULL;
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
        const cJSON *from = cJSON_GetObjectItemCaseSensitive(body, "from");
        const cJSON *to = cJSON_GetObjectItemCaseSensitive(body, "to");
        if (cJSON_IsNumber(from))
            f.from_ms = (int64_t)from->valuedouble;
        if (cJSON_IsNumber(to))
            f.to_ms = (int64_t)to->valuedouble;
    }
    size_t total = 0;
    int rc = 0;
    int64_t *ids = malloc(REPLAY_PAGE * sizeof *ids);
    if (!ids) {
        rc = XD_ENOMEM;
        goto out;
    }
    f.limit = REPLAY_PAGE;
    for (;;) {
        struct ids_ctx c = {.ids = ids};
        rc = xd_store_list_deliveries(r->srv->store, &f, collect_id, &c);
        if (rc < 0 || c.n == 0)
            break;
        size_t applied = 0;
        rc = replay_ids(r, ids, c.n, &applied);
        if (rc < 0)
            break;
        total += applied;
        f.after_id = ids[c.n - 1];
        if (c.n < REPLAY_PAGE)
            break;
    }
out:
    free(ids);
    cJSON_Delete(body);
    if (rc < 0) {
        snprintf(r->retry_after, sizeof r->retry_after, "5");
        xd_http_problem(r, 503, "store-unavailable", "Service Unavailable", xd_strerror(rc), NULL);
        return;
    }
    xd_buf_reset(&r->out);
    xd_buf_printf(&r->out, "{\"replayed\":%zu}", total);
    xd_http_reply_json(r, 200);
}
