/*
 * The `rate` step (see rate_step.h). The ledger rating asks ("what was
 * charged for this shipment?", "is this charge recorded?", "was it voided?")
 * is answered from the store's committed charges and journal. Rating steps
 * of one business key run one at a time (they are deliveries to the local
 * target, ordered per key like any other), so each sees the charges of the
 * ones before it.
 */
#include "route/rate_step.h"
#include "core/buf.h"
#include "core/config.h"
#include "core/err.h"
#include "formats/json.h"
#include "rating/card.h"
#include "rating/money.h"
#include "rating/rate.h"
#include "transform/transform.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct xd_rate_step {
    struct xd_rating *rating;
    struct xd_jq_cache *when; /* rules' conditions, compiled on this (the dispatcher) thread */
    struct xd_rate_conds conds;
};

struct ledger_ctx {
    struct xd_store *store;
    int err; /* a store error met inside a callback */
};

int xd_rate_step_create(const struct xd_config *cfg, struct xd_rate_step **out, struct xd_buf *err)
{
    struct xd_rate_step *rs = calloc(1, sizeof *rs);
    if (!rs)
        return XD_ENOMEM;
    int rc = xd_rating_compile(cfg, &rs->rating, err);
    if (rc < 0) {
        free(rs);
        return rc;
    }
    rs->when = xd_jq_cache_create(cfg);
    if (!rs->when) {
        xd_rating_destroy(rs->rating);
        free(rs);
        return XD_ENOMEM;
    }
    rs->conds.test = xd_jq_cache_cond;
    rs->conds.ctx = rs->when;
    *out = rs;
    return 0;
}

void xd_rate_step_destroy(struct xd_rate_step *rs)
{
    if (!rs)
        return;
    xd_rating_destroy(rs->rating);
    xd_jq_cache_destroy(rs->when);
    free(rs);
}

void xd_rate_result_dispose(struct xd_rate_result *r)
{
    for (size_t i = 0; i < r->n; i++)
        xd_charge_rec_dispose(&r->v[i]);
    free(r->v);
    memset(r, 0, sizeof *r);
}

/* ---- the store-backed ledger ---- */

/* A stored charge back as rating's struct (strings borrowed from rec). */
static int from_rec(const struct xd_charge_rec *rec, struct xd_charge *c)
{
    memset(c, 0, sizeof *c);
    snprintf(c->charge_id, sizeof c->charge_id, "%s", rec->charge_id);
    snprintf(c->reverses, sizeof c->reverses, "%s", rec->reverses ? rec->reverses : "");
    c->event_id = rec->event_id;
    c->customer = rec->customer;
    c->code = rec->code;
    c->unit = rec->unit;
    c->warehouse = rec->warehouse;
    c->reference = rec->reference;
    snprintf(c->currency, sizeof c->currency, "%s", rec->currency);
    snprintf(c->service_date, sizeof c->service_date, "%s", rec->service_date);
    c->source = (enum xd_event_type)rec->source;
    c->band = rec->band;
    c->occurred_us = rec->occurred_us;
    if (xd_dec_parse(rec->quantity, &c->quantity) < 0 ||
        xd_dec_parse(rec->unit_price, &c->unit_price) < 0 ||
        xd_dec_parse(rec->amount, &c->amount) < 0)
        return XD_EINTERNAL;
    return 0;
}

struct rec_list {
    struct xd_charge_rec *v;
    size_t n, cap;
    int oom;
};

static void collect_rec(void *ctx, struct xd_charge_rec *rec)
{
    struct rec_list *l = ctx;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        struct xd_charge_rec *v = realloc(l->v, cap * sizeof *v);
        if (!v) {
            l->oom = 1;
            xd_charge_rec_dispose(rec);
            return;
        }
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = *rec;
}

static int each_for_shipment(void *ctx, const char *warehouse, const char *shipment_id,
                             xd_charge_visit_fn *fn, void *arg)
{
    struct ledger_ctx *lc = ctx;
    struct rec_list l = {0};
    int rc = xd_store_charges_for_shipment(lc->store, warehouse, shipment_id, collect_rec, &l);
    if (rc >= 0 && l.oom)
        rc = XD_ENOMEM;
    for (size_t i = 0; rc >= 0 && i < l.n; i++) {
        struct xd_charge c;
        rc = from_rec(&l.v[i], &c);
        if (rc == 0)
            rc = fn(arg, &c);
        if (rc != 0)
            break;
    }
    for (size_t i = 0; i < l.n; i++)
        xd_charge_rec_dispose(&l.v[i]);
    free(l.v);
    return rc < 0 ? rc : (rc > 0 ? rc : 0);
}

static int has(void *ctx, const char *charge_id)
{
    struct ledger_ctx *lc = ctx;
    return xd_store_has_charge(lc->store, charge_id);
}

struct void_scan {
    const char *warehouse;
    int64_t since_us;
    int found;
    struct xd_void_info best;
};

static void scan_void(void *ctx, const char *body)
{
    struct void_scan *v = ctx;
    struct xd_json_limits lim = {0};
    struct xd_json_error jerr;
    cJSON *ev = NULL;
    if (xd_json_parse(body, strlen(body), &lim, &ev, &jerr) < 0)
        return;
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(ev, "data");
    const cJSON *wh = cJSON_GetObjectItemCaseSensitive(data, "warehouse");
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(ev, "event_id");
    int64_t us;
    long day;
    if (cJSON_IsString(wh) && strcmp(wh->valuestring, v->warehouse) == 0 && cJSON_IsString(id) &&
        xd_rate_when(ev, XD_EV_SHIPMENT_VOIDED, &us, &day) == 0 && us >= v->since_us &&
        (!v->found || us < v->best.occurred_us)) {
        v->found = 1;
        snprintf(v->best.event_id, sizeof v->best.event_id, "%s", id->valuestring);
        xd_day_format(day, v->best.service_date);
        v->best.occurred_us = us;
    }
    cJSON_Delete(ev);
}

static int find_void(void *ctx, const char *warehouse, const char *shipment_id, int64_t since_us,
                     struct xd_void_info *out)
{
    struct ledger_ctx *lc = ctx;
    char bkey[300];
    snprintf(bkey, sizeof bkey, "shipment:%s", shipment_id);
    struct void_scan v = {.warehouse = warehouse, .since_us = since_us};
    int rc = xd_store_voids(lc->store, bkey, scan_void, &v);
    if (rc < 0)
        return rc;
    if (!v.found)
        return 0;
    *out = v.best;
    return 1;
}

static const struct xd_ledger_ops store_ledger = {
    .each_for_shipment = each_for_shipment,
    .has = has,
    .find_void = find_void,
};

/* ---- running the step ---- */

static char *dup_dec(struct xd_dec d, int *oom)
{
    char b[XD_DEC_BUFSZ];
    xd_dec_format(d, b, sizeof b);
    char *p = strdup(b);
    if (!p)
        *oom = 1;
    return p;
}

static char *dup_s(const char *s, int *oom)
{
    char *p = strdup(s ? s : "");
    if (!p)
        *oom = 1;
    return p;
}

static int to_rec(const struct xd_charge *c, int64_t event_seq, struct xd_charge_rec *r)
{
    int oom = 0;
    memset(r, 0, sizeof *r);
    r->charge_id = dup_s(c->charge_id, &oom);
    r->event_id = dup_s(c->event_id, &oom);
    r->reverses = dup_s(c->reverses, &oom);
    r->customer = dup_s(c->customer, &oom);
    r->code = dup_s(c->code, &oom);
    r->unit = dup_s(c->unit, &oom);
    r->warehouse = dup_s(c->warehouse, &oom);
    r->reference = dup_s(c->reference, &oom);
    r->currency = dup_s(c->currency, &oom);
    r->service_date = dup_s(c->service_date, &oom);
    r->quantity = dup_dec(xd_dec_normal(c->quantity), &oom);
    r->unit_price = dup_dec(c->unit_price, &oom);
    r->amount = dup_dec(c->amount, &oom);
    r->source = (int)c->source;
    r->band = c->band;
    r->occurred_us = c->occurred_us;
    r->event_seq = event_seq;
    struct xd_buf j;
    xd_buf_init(&j);
    xd_charge_json(&j, c);
    if (j.oom)
        oom = 1;
    r->json = xd_buf_steal(&j);
    if (oom) {
        xd_charge_rec_dispose(r);
        return XD_ENOMEM;
    }
    return 0;
}

int xd_rate_step_run(struct xd_rate_step *rs, struct xd_store *store, const cJSON *ev,
                     enum xd_event_type type, int64_t event_seq, struct xd_rate_result *out,
                     struct xd_buf *why)
{
    struct ledger_ctx lc = {.store = store};
    struct xd_ledger ledger = {.ops = &store_ledger, .ctx = &lc, .conds = &rs->conds};
    struct xd_charges cs;
    xd_charges_init(&cs);
    memset(out, 0, sizeof *out);
    int rc = xd_rate_event(rs->rating, ev, type, &ledger, &cs, why);
    if (rc < 0)
        goto out;
    if (cs.n) {
        out->v = calloc(cs.n, sizeof *out->v);
        if (!out->v) {
            rc = XD_ENOMEM;
            goto out;
        }
    }
    for (size_t i = 0; i < cs.n; i++) {
        rc = to_rec(&cs.v[i], event_seq, &out->v[i]);
        if (rc < 0) {
            xd_rate_result_dispose(out);
            goto out;
        }
        out->n++;
    }
out:
    xd_charges_dispose(&cs);
    return rc;
}
