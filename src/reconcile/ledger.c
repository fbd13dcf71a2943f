/*
 * The ledger built from the store (ledger.h). Three passes, one per kind of
 * row: events (grouped into objects by their business document), charges
 * (sorted by id, tied to their event), then deliveries (each tied to its
 * event or, for a charge's delivery, to its charge). Lookups are binary
 * searches over sorted arrays: no hash table to get wrong, and the memory is
 * a few hundred bytes per event (only snapshots keep their body).
 */
#include "reconcile/ledger.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/err.h"
#include "ingest/event.h"
#include "rating/card.h"
#include "rating/rate.h"
#include "store/store.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const obj_names[XD_OBJ__COUNT] = {"shipment", "receipt", "adjustment",
                                                     "storage_day", "charge"};

const char *xd_obj_type_name(int type)
{
    return type >= 0 && type < XD_OBJ__COUNT ? obj_names[type] : "?";
}

int xd_obj_type_parse(const char *name)
{
    for (int i = 0; name && i < XD_OBJ__COUNT; i++)
        if (strcmp(obj_names[i], name) == 0)
            return i;
    return -1;
}

/* ---- building ---- */

struct pending_obj {
    int type;
    char *key;
    char *warehouse, *customer;
};

struct build {
    struct xd_recon_ledger *lg;
    size_t evcap, chcap, pendcap;
    struct pending_obj *pend; /* per event: its object, before grouping */
    int rc;
};

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

static const char *str_at(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Sum of arr[].name as an exact decimal; 0 when there is none. */
static int sum_of(const cJSON *data, const char *arr, const char *name, struct xd_dec *out)
{
    struct xd_dec sum = xd_dec_int(0);
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(data, arr), *it;
    int any = 0;
    cJSON_ArrayForEach(it, a)
    {
        const cJSON *q = cJSON_GetObjectItemCaseSensitive(it, name);
        struct xd_dec x;
        if (!cJSON_IsNumber(q) || xd_dec_from_double(q->valuedouble, &x) < 0 ||
            xd_dec_add(sum, x, &sum) < 0)
            continue;
        any = 1;
    }
    *out = sum;
    return any;
}

/* A quantity or reference from an ack: a number or a decimal string. */
static int dec_of(const cJSON *v, struct xd_dec *out)
{
    if (cJSON_IsNumber(v))
        return xd_dec_from_double(v->valuedouble, out) == 0;
    if (cJSON_IsString(v))
        return xd_dec_parse(v->valuestring, out) == 0;
    return 0;
}

static int sku_cmp(const void *a, const void *b)
{
    return strcmp(((const struct xd_lg_sku *)a)->sku, ((const struct xd_lg_sku *)b)->sku);
}

/* lines[].qty per SKU into e->skus, sorted, one entry per SKU. 0 or XD_ENOMEM. */
static int per_sku(const cJSON *data, struct xd_lg_event *e)
{
    const cJSON *lines = cJSON_GetObjectItemCaseSensitive(data, "lines"), *it;
    int n = cJSON_GetArraySize(lines);
    if (n <= 0)
        return 0;
    e->skus = calloc((size_t)n, sizeof *e->skus);
    if (!e->skus)
        return XD_ENOMEM;
    cJSON_ArrayForEach(it, lines)
    {
        const cJSON *sku = cJSON_GetObjectItemCaseSensitive(it, "sku");
        const cJSON *q = cJSON_GetObjectItemCaseSensitive(it, "qty");
        struct xd_dec x;
        if (!cJSON_IsString(sku) || !cJSON_IsNumber(q) ||
            xd_dec_from_double(q->valuedouble, &x) < 0)
            continue;
        struct xd_lg_sku *s = &e->skus[e->nskus++];
        s->sku = strdup(sku->valuestring);
        s->qty = x;
        if (!s->sku)
            return XD_ENOMEM;
    }
    if (e->nskus > 1)
        qsort(e->skus, e->nskus, sizeof *e->skus, sku_cmp);
    size_t w = 0;
    for (size_t i = 0; i < e->nskus; i++) {
        if (w && strcmp(e->skus[w - 1].sku, e->skus[i].sku) == 0) {
            xd_dec_add(e->skus[w - 1].qty, e->skus[i].qty, &e->skus[w - 1].qty);
            free(e->skus[i].sku);
            continue;
        }
        e->skus[w++] = e->skus[i];
    }
    e->nskus = w;
    return 0;
}

static int grow(void **v, size_t *cap, size_t n, size_t size)
{
    if (n < *cap)
        return 0;
    size_t c = *cap ? *cap * 2 : 256;
    void *p = realloc(*v, c * size);
    if (!p)
        return XD_ENOMEM;
    *v = p;
    *cap = c;
    return 0;
}

static void on_event(void *ctx, const struct xd_recon_event *e)
{
    struct build *b = ctx;
    struct xd_recon_ledger *lg = b->lg;
    if (b->rc < 0)
        return;
    int type = xd_event_type_parse(e->type);
    if (type < 0)
        return;
    cJSON *ev = cJSON_Parse(e->body);
    if (!ev)
        return; /* stored events are valid JSON; an unreadable one is not the ledger's */
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(ev, "data");
    struct pending_obj po = {.type = -1};
    const char *doc = NULL;
    switch (type) {
    case XD_EV_SHIPMENT_CONFIRMED:
    case XD_EV_SHIPMENT_VOIDED:
    case XD_EV_DELIVERY_CONFIRMED:
        po.type = XD_OBJ_SHIPMENT;
        doc = str_at(data, "shipment_id");
        break;
    case XD_EV_GOODS_RECEIVED:
        po.type = XD_OBJ_RECEIPT;
        doc = str_at(data, "receipt_id");
        break;
    case XD_EV_INVENTORY_ADJUSTED:
        po.type = XD_OBJ_ADJUSTMENT;
        doc = str_at(data, "adjustment_id");
        break;
    case XD_EV_INVENTORY_SNAPSHOT:
        po.type = XD_OBJ_STORAGE_DAY;
        break;
    default:
        break;
    }
    const char *wh = str_at(data, "warehouse"), *cu = str_at(data, "customer");
    char keybuf[400];
    if (po.type == XD_OBJ_STORAGE_DAY) {
        const char *as_of = str_at(data, "as_of");
        snprintf(keybuf, sizeof keybuf, "%s:%s:%s", cu ? cu : "", wh ? wh : "", as_of ? as_of : "");
        doc = keybuf;
    }
    if (po.type < 0 || !doc) {
        cJSON_Delete(ev);
        return;
    }
    if (grow((void **)&lg->events, &b->evcap, lg->nevents, sizeof *lg->events) < 0 ||
        grow((void **)&b->pend, &b->pendcap, lg->nevents, sizeof *b->pend) < 0) {
        b->rc = XD_ENOMEM;
        cJSON_Delete(ev);
        return;
    }
    struct xd_lg_event *x = &lg->events[lg->nevents];
    memset(x, 0, sizeof *x);
    x->seq = e->seq;
    x->type = type;
    x->received_ms = e->received_ms;
    x->rate_state = -1;
    x->event_id = strdup(e->event_id);
    int64_t us = 0;
    long day = 0;
    if (xd_rate_when(ev, (enum xd_event_type)type, &us, &day) == 0) {
        x->occurred_ms = us / 1000;
        x->day = day;
    }
    switch (type) {
    case XD_EV_SHIPMENT_CONFIRMED:
    case XD_EV_GOODS_RECEIVED:
        x->has_qty = sum_of(data, "lines", "qty", &x->qty);
        if (per_sku(data, x) < 0)
            b->rc = XD_ENOMEM;
        break;
    case XD_EV_INVENTORY_ADJUSTED:
        x->has_qty = dec_of(cJSON_GetObjectItemCaseSensitive(data, "qty_delta"), &x->qty);
        break;
    case XD_EV_INVENTORY_SNAPSHOT:
        x->has_qty = sum_of(data, "items", "qty", &x->qty);
        x->body = strdup(e->body);
        break;
    default:
        break;
    }
    po.key = strdup(doc);
    po.warehouse = dup_or_null(wh);
    po.customer = dup_or_null(cu);
    b->pend[lg->nevents] = po;
    lg->nevents++;
    if (!x->event_id || !po.key || (type == XD_EV_INVENTORY_SNAPSHOT && !x->body))
        b->rc = XD_ENOMEM;
    cJSON_Delete(ev);
}

static void on_charge(void *ctx, struct xd_charge_rec *c)
{
    struct build *b = ctx;
    struct xd_recon_ledger *lg = b->lg;
    if (b->rc == 0 && grow((void **)&lg->charges, &b->chcap, lg->ncharges, sizeof *lg->charges) < 0)
        b->rc = XD_ENOMEM;
    if (b->rc < 0) {
        xd_charge_rec_dispose(c);
        return;
    }
    struct xd_lg_charge *x = &lg->charges[lg->ncharges++];
    memset(x, 0, sizeof *x);
    /* The record's strings move into the ledger. */
    x->charge_id = c->charge_id;
    x->event_id = c->event_id;
    x->reverses = c->reverses;
    x->customer = c->customer;
    x->code = c->code;
    x->warehouse = c->warehouse;
    x->reference = c->reference;
    x->currency = c->currency;
    x->service_date = c->service_date;
    x->unit = c->unit;
    c->charge_id = c->event_id = c->reverses = c->customer = c->code = c->warehouse = c->reference =
        c->currency = c->service_date = c->unit = NULL;
    if (xd_dec_parse(c->amount ? c->amount : "0", &x->amount) < 0)
        x->amount = xd_dec_int(0);
    x->source = c->source;
    x->band = c->band;
    x->created_ms = c->created_ms;
    x->event = SIZE_MAX;
    x->bill_state = -1;
    if (!x->service_date || xd_day_parse(x->service_date, &x->day) < 0)
        x->day = 0;
    xd_charge_rec_dispose(c);
}

static int charge_cmp(const void *a, const void *b)
{
    const struct xd_lg_charge *x = a, *y = b;
    return strcmp(x->charge_id ? x->charge_id : "", y->charge_id ? y->charge_id : "");
}

struct xd_lg_charge *xd_ledger_charge(const struct xd_recon_ledger *lg, const char *charge_id)
{
    struct xd_lg_charge key = {.charge_id = (char *)charge_id};
    if (!charge_id || !lg->ncharges)
        return NULL;
    return bsearch(&key, lg->charges, lg->ncharges, sizeof key, charge_cmp);
}

static struct xd_lg_event *event_by_seq(const struct xd_recon_ledger *lg, int64_t seq)
{
    size_t lo = 0, hi = lg->nevents;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (lg->events[mid].seq < seq)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < lg->nevents && lg->events[lo].seq == seq ? &lg->events[lo] : NULL;
}

/* Reads an ack's JSON into reference / quantity / error. */
static void read_ack(const char *ack, char **reference, struct xd_dec *qty, int *has_qty,
                     char **error)
{
    cJSON *a = cJSON_Parse(ack);
    if (!a)
        return;
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(a, "reference");
    if (cJSON_IsString(r)) {
        *reference = strdup(r->valuestring);
    } else if (cJSON_IsNumber(r)) {
        char n[64];
        snprintf(n, sizeof n, "%.17g", r->valuedouble);
        *reference = strdup(n);
    }
    if (qty)
        *has_qty = dec_of(cJSON_GetObjectItemCaseSensitive(a, "quantity"), qty);
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(a, "error");
    if (cJSON_IsString(e))
        *error = strdup(e->valuestring);
    cJSON_Delete(a);
}

static void on_delivery(void *ctx, const struct xd_recon_dlv *d)
{
    struct build *b = ctx;
    struct xd_recon_ledger *lg = b->lg;
    if (b->rc < 0)
        return;
    if (d->part[0]) {
        struct xd_lg_charge *c = xd_ledger_charge(lg, d->part);
        if (!c)
            return;
        /* A charge delivered twice (two billing steps): the one not done tells. */
        if (c->bill_state == XD_DLV_DONE || c->bill_state < 0) {
            free(c->bill_target);
            free(c->bill_error);
            free(c->bill_reference);
            c->bill_reference = NULL;
            c->bill_state = d->state;
            c->bill_target = strdup(d->target);
            c->bill_error = dup_or_null(d->last_error);
            c->bill_ms = d->updated_ms;
            if (d->ack) {
                char *err = NULL;
                read_ack(d->ack, &c->bill_reference, NULL, NULL, &err);
                free(err);
            }
        }
        return;
    }
    struct xd_lg_event *e = event_by_seq(lg, d->event_seq);
    if (!e)
        return;
    if (!d->target[0]) {
        e->rate_state = d->state;
        free(e->rate_route);
        free(e->rate_error);
        e->rate_route = strdup(d->route);
        e->rate_step = d->step;
        e->rate_error = dup_or_null(d->last_error);
        return;
    }
    struct xd_lg_post *v = realloc(e->posts, (e->nposts + 1) * sizeof *v);
    if (!v) {
        b->rc = XD_ENOMEM;
        return;
    }
    e->posts = v;
    struct xd_lg_post *p = &v[e->nposts++];
    memset(p, 0, sizeof *p);
    p->target = strdup(d->target);
    p->route = strdup(d->route);
    p->step = d->step;
    p->attempts = d->attempts;
    p->state = d->state;
    p->last_status = d->last_status;
    p->last_error = dup_or_null(d->last_error);
    p->updated_ms = d->updated_ms;
    if (d->ack) {
        p->ack = strdup(d->ack);
        p->ack_ms = d->ack_ms;
        read_ack(d->ack, &p->reference, &p->qty, &p->has_qty, &p->ack_error);
    }
    if (!p->target || !p->route)
        b->rc = XD_ENOMEM;
}

/* A sort key that carries its own strings (qsort has no context argument). */
struct skey {
    int type;
    const char *key;
    size_t i;
};

/* Events in object order: type, key, then journal order. */
static int skey_cmp(const void *a, const void *b)
{
    const struct skey *x = a, *y = b;
    if (x->type != y->type)
        return x->type < y->type ? -1 : 1;
    int c = strcmp(x->key, y->key);
    if (c)
        return c;
    return x->i < y->i ? -1 : x->i > y->i;
}

static int obj_cmp(const void *a, const void *b)
{
    const struct xd_lg_object *x = a, *y = b;
    if (x->type != y->type)
        return x->type < y->type ? -1 : 1;
    return strcmp(x->key, y->key);
}

struct xd_lg_object *xd_ledger_object(const struct xd_recon_ledger *lg, int type, const char *key)
{
    struct xd_lg_object k = {.type = type, .key = (char *)key};
    if (!key || !lg->nobjs)
        return NULL;
    return bsearch(&k, lg->objs, lg->nobjs, sizeof k, obj_cmp);
}

static int is_confirmation(int type)
{
    return type == XD_EV_SHIPMENT_CONFIRMED || type == XD_EV_GOODS_RECEIVED ||
           type == XD_EV_INVENTORY_ADJUSTED || type == XD_EV_INVENTORY_SNAPSHOT;
}

/* Groups the events into objects (pend is freed as its strings move). */
static int group(struct build *b)
{
    struct xd_recon_ledger *lg = b->lg;
    size_t n = lg->nevents;
    if (!n)
        return 0;
    struct skey *sk = malloc(n * sizeof *sk);
    size_t *ix = malloc(n * sizeof *ix);
    lg->objs = calloc(n, sizeof *lg->objs);
    if (!sk || !ix || !lg->objs) {
        free(sk);
        free(ix);
        return XD_ENOMEM;
    }
    for (size_t i = 0; i < n; i++)
        sk[i] = (struct skey){.type = b->pend[i].type, .key = b->pend[i].key, .i = i};
    qsort(sk, n, sizeof *sk, skey_cmp);
    for (size_t i = 0; i < n; i++)
        ix[i] = sk[i].i;
    free(sk);
    int rc = 0;
    for (size_t i = 0; i < n;) {
        size_t j = i;
        struct pending_obj *p = &b->pend[ix[i]];
        while (j < n && b->pend[ix[j]].type == p->type && strcmp(b->pend[ix[j]].key, p->key) == 0)
            j++;
        struct xd_lg_object *o = &lg->objs[lg->nobjs++];
        o->type = p->type;
        o->key = p->key;
        p->key = NULL;
        o->events = malloc((j - i) * sizeof *o->events);
        if (!o->events) {
            rc = XD_ENOMEM;
            break;
        }
        o->current = SIZE_MAX;
        o->void_event = SIZE_MAX;
        for (size_t k = i; k < j; k++) {
            struct pending_obj *q = &b->pend[ix[k]];
            size_t ei = ix[k];
            o->events[o->nevents++] = ei;
            lg->events[ei].obj = lg->nobjs - 1;
            if (!o->warehouse && q->warehouse) {
                o->warehouse = q->warehouse;
                q->warehouse = NULL;
            }
            if (!o->customer && q->customer) {
                o->customer = q->customer;
                q->customer = NULL;
            }
            if (is_confirmation(lg->events[ei].type))
                o->current = ei;
        }
        /* Voided: a void that occurred at or after the latest confirmation (rating's rule). */
        for (size_t k = 0; k < o->nevents && o->type == XD_OBJ_SHIPMENT; k++) {
            const struct xd_lg_event *e = &lg->events[o->events[k]];
            if (e->type == XD_EV_SHIPMENT_VOIDED &&
                (o->current == SIZE_MAX || e->occurred_ms >= lg->events[o->current].occurred_ms)) {
                o->voided = 1;
                o->void_event = o->events[k];
            }
        }
        i = j;
    }
    free(ix);
    return rc;
}

static int tie_charges(struct xd_recon_ledger *lg)
{
    if (lg->ncharges)
        qsort(lg->charges, lg->ncharges, sizeof *lg->charges, charge_cmp);
    /* Event ids in sorted order, to tie charges to their events. */
    struct skey *sk = malloc((lg->nevents + 1) * sizeof *sk);
    size_t *ix = malloc((lg->nevents + 1) * sizeof *ix);
    if (!sk || !ix) {
        free(sk);
        free(ix);
        return XD_ENOMEM;
    }
    for (size_t i = 0; i < lg->nevents; i++)
        sk[i] = (struct skey){.key = lg->events[i].event_id, .i = i};
    if (lg->nevents)
        qsort(sk, lg->nevents, sizeof *sk, skey_cmp);
    for (size_t i = 0; i < lg->nevents; i++)
        ix[i] = sk[i].i;
    free(sk);
    size_t *count = calloc(lg->nobjs + 1, sizeof *count);
    if (!count) {
        free(ix);
        return XD_ENOMEM;
    }
    for (size_t i = 0; i < lg->ncharges; i++) {
        struct xd_lg_charge *c = &lg->charges[i];
        if (c->reverses && c->reverses[0]) {
            struct xd_lg_charge *orig = xd_ledger_charge(lg, c->reverses);
            if (orig)
                orig->reversed = 1;
        }
        size_t lo = 0, hi = lg->nevents;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (strcmp(lg->events[ix[mid]].event_id, c->event_id ? c->event_id : "") < 0)
                lo = mid + 1;
            else
                hi = mid;
        }
        if (lo < lg->nevents && c->event_id &&
            strcmp(lg->events[ix[lo]].event_id, c->event_id) == 0) {
            c->event = ix[lo];
            count[lg->events[c->event].obj]++;
        }
    }
    free(ix);
    for (size_t o = 0; o < lg->nobjs; o++) {
        if (!count[o])
            continue;
        lg->objs[o].charges = malloc(count[o] * sizeof(size_t));
        if (!lg->objs[o].charges) {
            free(count);
            return XD_ENOMEM;
        }
    }
    free(count);
    for (size_t i = 0; i < lg->ncharges; i++) {
        const struct xd_lg_charge *c = &lg->charges[i];
        if (c->event == SIZE_MAX)
            continue;
        struct xd_lg_object *o = &lg->objs[lg->events[c->event].obj];
        o->charges[o->ncharges++] = i;
    }
    return 0;
}

int xd_ledger_build(struct xd_store *store, struct xd_recon_ledger *lg)
{
    memset(lg, 0, sizeof *lg);
    struct build b = {.lg = lg};
    int rc = xd_store_recon_events(store, on_event, &b);
    if (rc == 0)
        rc = b.rc;
    if (rc == 0)
        rc = group(&b);
    if (b.pend) {
        for (size_t i = 0; i < lg->nevents; i++) {
            free(b.pend[i].key);
            free(b.pend[i].warehouse);
            free(b.pend[i].customer);
        }
        free(b.pend);
    }
    if (rc == 0) {
        struct xd_charge_filter f = {0};
        rc = xd_store_list_charges(store, &f, on_charge, &b);
        if (rc > 0)
            rc = 0; /* the rows it read */
        if (rc == 0)
            rc = b.rc;
    }
    if (rc == 0)
        rc = tie_charges(lg);
    if (rc == 0) {
        rc = xd_store_recon_deliveries(store, on_delivery, &b);
        if (rc == 0)
            rc = b.rc;
    }
    if (rc < 0) {
        xd_ledger_dispose(lg);
        return rc;
    }
    return 0;
}

void xd_ledger_dispose(struct xd_recon_ledger *lg)
{
    for (size_t i = 0; i < lg->nobjs; i++) {
        struct xd_lg_object *o = &lg->objs[i];
        free(o->key);
        free(o->warehouse);
        free(o->customer);
        free(o->events);
        free(o->charges);
    }
    free(lg->objs);
    for (size_t i = 0; i < lg->nevents; i++) {
        struct xd_lg_event *e = &lg->events[i];
        for (size_t k = 0; k < e->nposts; k++) {
            struct xd_lg_post *p = &e->posts[k];
            free(p->target);
            free(p->route);
            free(p->last_error);
            free(p->ack);
            free(p->reference);
            free(p->ack_error);
        }
        free(e->posts);
        for (size_t k = 0; k < e->nskus; k++)
            free(e->skus[k].sku);
        free(e->skus);
        free(e->event_id);
        free(e->rate_route);
        free(e->rate_error);
        free(e->body);
    }
    free(lg->events);
    for (size_t i = 0; i < lg->ncharges; i++) {
        struct xd_lg_charge *c = &lg->charges[i];
        free(c->charge_id);
        free(c->event_id);
        free(c->reverses);
        free(c->customer);
        free(c->code);
        free(c->warehouse);
        free(c->reference);
        free(c->currency);
        free(c->service_date);
        free(c->unit);
        free(c->bill_target);
        free(c->bill_error);
        free(c->bill_reference);
    }
    free(lg->charges);
    memset(lg, 0, sizeof *lg);
}

/* ---- JSON ---- */

static void put_dec(struct xd_buf *o, struct xd_dec d)
{
    char b[XD_DEC_BUFSZ];
    xd_dec_format(d, b, sizeof b);
    xd_buf_json_str(o, b);
}

static void put_time(struct xd_buf *o, int64_t ms)
{
    char b[40];
    if (!ms) {
        xd_buf_puts(o, "null");
        return;
    }
    xd_iso_ms(b, sizeof b, ms);
    xd_buf_json_str(o, b);
}

static void put_str(struct xd_buf *o, const char *s)
{
    if (s)
        xd_buf_json_str(o, s);
    else
        xd_buf_puts(o, "null");
}

int xd_ledger_object_json(const struct xd_recon_ledger *lg, const struct xd_lg_object *o,
                          struct xd_buf *out)
{
    xd_buf_puts(out, "{\"type\":");
    xd_buf_json_str(out, xd_obj_type_name(o->type));
    xd_buf_puts(out, ",\"key\":");
    xd_buf_json_str(out, o->key);
    xd_buf_puts(out, ",\"warehouse\":");
    put_str(out, o->warehouse);
    xd_buf_puts(out, ",\"customer\":");
    put_str(out, o->customer);
    /* WMS: every event, the current quantity. */
    xd_buf_puts(out, ",\"wms\":{");
    if (o->current != SIZE_MAX) {
        const struct xd_lg_event *c = &lg->events[o->current];
        xd_buf_puts(out, "\"event_id\":");
        xd_buf_json_str(out, c->event_id);
        xd_buf_puts(out, ",\"quantity\":");
        if (c->has_qty)
            put_dec(out, c->qty);
        else
            xd_buf_puts(out, "null");
        xd_buf_puts(out, ",\"occurred_at\":");
        put_time(out, c->occurred_ms);
        xd_buf_puts(out, ",\"received_at\":");
        put_time(out, c->received_ms);
        xd_buf_putc(out, ',');
    }
    xd_buf_printf(out, "\"voided\":%s,\"events\":[", o->voided ? "true" : "false");
    for (size_t k = 0; k < o->nevents; k++) {
        const struct xd_lg_event *e = &lg->events[o->events[k]];
        xd_buf_printf(out, "%s{\"event_id\":", k ? "," : "");
        xd_buf_json_str(out, e->event_id);
        xd_buf_puts(out, ",\"type\":");
        xd_buf_json_str(out, xd_event_type_name((enum xd_event_type)e->type));
        xd_buf_puts(out, ",\"received_at\":");
        put_time(out, e->received_ms);
        xd_buf_putc(out, '}');
    }
    xd_buf_puts(out, "]},\"erp\":[");
    size_t np = 0;
    for (size_t k = 0; k < o->nevents; k++) {
        const struct xd_lg_event *e = &lg->events[o->events[k]];
        for (size_t i = 0; i < e->nposts; i++) {
            const struct xd_lg_post *p = &e->posts[i];
            xd_buf_printf(out, "%s{\"event_id\":", np++ ? "," : "");
            xd_buf_json_str(out, e->event_id);
            xd_buf_puts(out, ",\"target\":");
            xd_buf_json_str(out, p->target);
            xd_buf_printf(out,
                          ",\"state\":\"%s\",\"attempts\":%u,\"at\":", xd_dlv_state_name(p->state),
                          p->attempts);
            put_time(out, p->state == XD_DLV_DONE ? p->updated_ms : 0);
            xd_buf_puts(out, ",\"reference\":");
            put_str(out, p->reference);
            xd_buf_puts(out, ",\"quantity\":");
            if (p->has_qty)
                put_dec(out, p->qty);
            else
                xd_buf_puts(out, "null");
            if (p->ack_error) {
                xd_buf_puts(out, ",\"ack_error\":");
                xd_buf_json_str(out, p->ack_error);
            }
            if (p->state != XD_DLV_DONE && p->last_error) {
                xd_buf_puts(out, ",\"last_error\":");
                xd_buf_json_str(out, p->last_error);
            }
            xd_buf_putc(out, '}');
        }
    }
    xd_buf_puts(out, "],\"billing\":[");
    for (size_t k = 0; k < o->ncharges; k++) {
        const struct xd_lg_charge *c = &lg->charges[o->charges[k]];
        xd_buf_printf(out, "%s{\"charge_id\":", k ? "," : "");
        xd_buf_json_str(out, c->charge_id);
        xd_buf_puts(out, ",\"code\":");
        put_str(out, c->code);
        xd_buf_puts(out, ",\"amount\":");
        put_dec(out, c->amount);
        xd_buf_puts(out, ",\"currency\":");
        put_str(out, c->currency);
        if (c->reverses && c->reverses[0]) {
            xd_buf_puts(out, ",\"reverses\":");
            xd_buf_json_str(out, c->reverses);
        }
        xd_buf_printf(out, ",\"state\":\"%s\",\"target\":",
                      c->bill_state < 0 ? "none" : xd_dlv_state_name(c->bill_state));
        put_str(out, c->bill_target);
        xd_buf_puts(out, ",\"at\":");
        put_time(out, c->bill_state == XD_DLV_DONE ? c->bill_ms : 0);
        xd_buf_puts(out, ",\"reference\":");
        put_str(out, c->bill_reference);
        xd_buf_putc(out, '}');
    }
    xd_buf_puts(out, "]}");
    return out->oom ? XD_ENOMEM : 0;
}
