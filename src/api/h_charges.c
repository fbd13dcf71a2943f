/*
 * Charges and exceptions over HTTP:
 *
 *   GET   /v1/charges?customer=C&code=X&from=YYYY-MM-DD&to=YYYY-MM-DD&limit=N&after=ID
 *         the charges produced, oldest id first, with totals per currency
 *   GET   /v1/exceptions?state=open&category=C&limit=N&after=ID
 *   GET   /v1/exceptions/{id}
 *   PATCH /v1/exceptions/{id}  {"state": "acknowledged"|"resolved", "owner": "...",
 *                               "note": "..."}      states only move forward
 */
#include "api/http.h"
#include "core/clock.h"
#include "core/err.h"
#include "formats/json.h"
#include "rating/money.h"
#include "route/billing.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHARGES_MAX 10000 /* most charges one answer lists (totals cover them) */

static const char *arg(struct xd_req *r, const char *name)
{
    const char *v = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
    return v && *v ? v : NULL;
}

static int date_ok(const char *s)
{
    return !s || xd_date_valid(s);
}

/* Totals per currency, exact. */
struct total {
    char currency[4];
    struct xd_dec sum;
    size_t n;
};

struct charges_ctx {
    struct xd_buf *o;
    size_t n;
    struct total totals[16];
    size_t ntotals;
    int overflow;
    char last[32];
};

static void charge_row(void *ctx, struct xd_charge_rec *c)
{
    struct charges_ctx *cc = ctx;
    if (cc->n++)
        xd_buf_putc(cc->o, ',');
    xd_buf_puts(cc->o, c->json);
    snprintf(cc->last, sizeof cc->last, "%s", c->charge_id);
    struct xd_dec amount;
    if (xd_dec_parse(c->amount, &amount) == 0) {
        size_t i = 0;
        while (i < cc->ntotals && strcmp(cc->totals[i].currency, c->currency) != 0)
            i++;
        if (i == cc->ntotals && i < 16) {
            snprintf(cc->totals[i].currency, 4, "%s", c->currency);
            xd_dec_parse("0", &cc->totals[i].sum);
            cc->ntotals++;
        }
        if (i < cc->ntotals) {
            if (xd_dec_add(cc->totals[i].sum, amount, &cc->totals[i].sum) < 0)
                cc->overflow = 1;
            cc->totals[i].n++;
        }
    }
    xd_charge_rec_dispose(c);
}

void xd_h_charges_list(struct xd_req *r)
{
    struct xd_charge_filter f = {
        .customer = arg(r, "customer"),
        .code = arg(r, "code"),
        .from = arg(r, "from"),
        .to = arg(r, "to"),
        .after = arg(r, "after"),
    };
    const char *lim = arg(r, "limit");
    long n = lim ? strtol(lim, NULL, 10) : CHARGES_MAX;
    if (!date_ok(f.from) || !date_ok(f.to) || n <= 0) {
        xd_http_problem(r, 400, "bad-query", "Bad Request",
                        "from and to must be dates (YYYY-MM-DD); limit a positive integer", NULL);
        return;
    }
    f.limit = n > CHARGES_MAX ? CHARGES_MAX : (size_t)n;
    struct xd_buf *o = &r->out;
    xd_buf_reset(o);
    xd_buf_puts(o, "{\"charges\":[");
    struct charges_ctx cc = {.o = o};
    int rc = xd_store_list_charges(r->srv->store, &f, charge_row, &cc);
    if (rc < 0) {
        xd_http_store_error(r, rc);
        return;
    }
    xd_buf_puts(o, "],\"totals\":[");
    for (size_t i = 0; i < cc.ntotals; i++) {
        char b[XD_DEC_BUFSZ];
        int minor = xd_currency_minor(cc.totals[i].currency);
        struct xd_dec sum = cc.totals[i].sum;
        if (minor >= 0)
            xd_dec_round(sum, minor, &sum);
        xd_dec_format(sum, b, sizeof b);
        xd_buf_printf(o, "%s{\"currency\":\"%s\",\"amount\":\"%s\",\"charges\":%zu}", i ? "," : "",
                      cc.totals[i].currency, b, cc.totals[i].n);
    }
    xd_buf_putc(o, ']');
    if (cc.n == f.limit)
        xd_buf_printf(o, ",\"next_after\":\"%s\"", cc.last);
    xd_buf_putc(o, '}');
    xd_http_reply_json(r, 200);
}

void xd_exception_json(struct xd_buf *o, const struct xd_exception *x)
{
    char c[96], u[96];
    xd_iso_ms(c, sizeof c, x->created_ms);
    xd_iso_ms(u, sizeof u, x->updated_ms);
    xd_buf_printf(o, "{\"id\":%lld,\"category\":", (long long)x->id);
    xd_buf_json_str(o, x->category ? x->category : "");
    xd_buf_puts(o, ",\"state\":");
    xd_buf_json_str(o, x->state ? x->state : "");
    const char *fields[][2] = {{"event_id", x->event_id}, {"target", x->target},
                               {"reason", x->reason},     {"owner", x->owner},
                               {"note", x->note},         {"warehouse", x->warehouse},
                               {"customer", x->customer}};
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        xd_buf_printf(o, ",\"%s\":", fields[i][0]);
        if (fields[i][1])
            xd_buf_json_str(o, fields[i][1]);
        else
            xd_buf_puts(o, "null");
    }
    if (x->delivery_id)
        xd_buf_printf(o, ",\"delivery_id\":%lld", (long long)x->delivery_id);
    xd_buf_printf(o, ",\"created_at\":\"%s\",\"updated_at\":\"%s\"}", c, u);
}

struct exc_ctx {
    struct xd_buf *o;
    size_t n;
    int64_t last;
};

static void exception_row(void *ctx, struct xd_exception *x)
{
    struct exc_ctx *c = ctx;
    if (c->n++)
        xd_buf_putc(c->o, ',');
    xd_exception_json(c->o, x);
    c->last = x->id;
    xd_exception_dispose(x);
}

static int valid_state(const char *s)
{
    return strcmp(s, "open") == 0 || strcmp(s, "acknowledged") == 0 ||
           strcmp(s, "resolved") == 0;
}

void xd_h_exceptions_list(struct xd_req *r)
{
    struct xd_exception_filter f = {.state = arg(r, "state"), .category = arg(r, "category"),
                                    .owner = arg(r, "owner")};
    const char *lim = arg(r, "limit"), *after = arg(r, "after");
    long n = lim ? strtol(lim, NULL, 10) : 100;
    long long a = after ? strtoll(after, NULL, 10) : 0;
    if ((f.state && !valid_state(f.state)) || n <= 0 || a < 0) {
        xd_http_problem(r, 400, "bad-query", "Bad Request",
                        "state must be open, acknowledged or resolved; limit positive", NULL);
        return;
    }
    f.limit = n > 1000 ? 1000 : (size_t)n;
    f.after_id = a;
    struct xd_buf *o = &r->out;
    xd_buf_reset(o);
    xd_buf_puts(o, "{\"exceptions\":[");
    struct exc_ctx c = {.o = o};
    int rc = xd_store_list_exceptions(r->srv->store, &f, exception_row, &c);
    if (rc < 0) {
        xd_http_store_error(r, rc);
        return;
    }
    xd_buf_putc(o, ']');
    if (c.n == f.limit)
        xd_buf_printf(o, ",\"next_after\":%lld", (long long)c.last);
    xd_buf_putc(o, '}');
    xd_http_reply_json(r, 200);
}

static int exception_id(struct xd_req *r, int64_t *id)
{
    return xd_http_param_id(r, "no such exception", id);
}

static void reply_exception(struct xd_req *r, int64_t id)
{
    struct xd_exception x;
    int rc = xd_store_get_exception(r->srv->store, id, &x);
    if (rc == XD_ENOTFOUND) {
        xd_http_problem(r, 404, "not-found", "Not Found", "no such exception", NULL);
        return;
    }
    if (rc < 0) {
        xd_http_store_error(r, rc);
        return;
    }
    xd_buf_reset(&r->out);
    xd_exception_json(&r->out, &x);
    xd_exception_dispose(&x);
    xd_http_reply_json(r, 200);
}

void xd_h_exception_get(struct xd_req *r)
{
    int64_t id;
    if (exception_id(r, &id) == 0)
        reply_exception(r, id);
}

void xd_h_exception_patch(struct xd_req *r)
{
    int64_t id;
    if (exception_id(r, &id) < 0)
        return;
    struct xd_json_limits lim = {.max_depth = 4, .max_string = 4096};
    struct xd_json_error jerr;
    cJSON *body = NULL;
    if (xd_json_parse(r->body.data ? r->body.data : "", r->body.len, &lim, &body, &jerr) < 0 ||
        !cJSON_IsObject(body)) {
        cJSON_Delete(body);
        xd_http_problem(r, 400, "malformed-json", "Malformed JSON",
                        "expected {\"state\", \"owner\", \"note\"}", NULL);
        return;
    }
    struct xd_verrs errs = {0};
    const char *vals[3] = {NULL, NULL, NULL};
    const char *names[3] = {"state", "owner", "note"};
    for (int i = 0; i < 3; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, names[i]);
        if (!v || cJSON_IsNull(v))
            continue;
        if (!cJSON_IsString(v))
            xd_verrs_add(&errs, names[i], "must be a string");
        else
            vals[i] = v->valuestring;
    }
    if (vals[0] && !valid_state(vals[0]))
        xd_verrs_add(&errs, "state", "must be open, acknowledged or resolved");
    if (errs.n) {
        xd_http_problem(r, 400, "invalid", "Bad Request", NULL, &errs);
        xd_verrs_dispose(&errs);
        cJSON_Delete(body);
        return;
    }
    int rc = xd_store_update_exception(r->srv->store, id, vals[0], vals[1], vals[2]);
    cJSON_Delete(body);
    if (rc == XD_ENOTFOUND) {
        xd_http_problem(r, 404, "not-found", "Not Found", "no such exception", NULL);
        return;
    }
    if (rc == XD_ECONFLICT) {
        xd_http_problem(r, 409, "state", "Conflict",
                        "an exception's state moves forward only: open, acknowledged, resolved",
                        NULL);
        return;
    }
    if (rc < 0) {
        xd_http_store_error(r, rc);
        return;
    }
    reply_exception(r, id);
}

/* POST /v1/billing/close {"period": "YYYY-MM"}: the monthly minimum top-ups. */
void xd_h_billing_close(struct xd_req *r)
{
    struct xd_json_limits lim = {.max_depth = 4, .max_string = 64};
    struct xd_json_error jerr;
    cJSON *body = NULL;
    const cJSON *p = NULL;
    if (xd_json_parse(r->body.data ? r->body.data : "", r->body.len, &lim, &body, &jerr) == 0)
        p = cJSON_GetObjectItemCaseSensitive(body, "period");
    if (!cJSON_IsString(p)) {
        cJSON_Delete(body);
        xd_http_problem(r, 400, "invalid", "Bad Request", "expected {\"period\": \"YYYY-MM\"}",
                        NULL);
        return;
    }
    struct xd_buf lines, err;
    xd_buf_init(&lines);
    xd_buf_init(&err);
    int rc = xd_billing_close(r->srv->cfg, r->srv->store, p->valuestring, &lines, &err);
    cJSON_Delete(body);
    if (rc == XD_EINVAL || rc == XD_ECONFIG) {
        xd_http_problem(r, 400, "invalid", "Bad Request", xd_buf_str(&err), NULL);
    } else if (rc < 0) {
        xd_http_store_error(r, rc);
    } else {
        /* JSON lines -> an array. */
        xd_buf_reset(&r->out);
        xd_buf_puts(&r->out, "{\"topups\":[");
        for (size_t i = 0; i < lines.len; i++)
            xd_buf_putc(&r->out, lines.data[i] == '\n' ? (i + 1 < lines.len ? ',' : ' ')
                                                        : lines.data[i]);
        xd_buf_puts(&r->out, "]}");
        xd_http_reply_json(r, 200);
    }
    xd_buf_dispose(&lines);
    xd_buf_dispose(&err);
}
