/*
 * The reconciliation report (report.h). One pass over the ledger per check,
 * in the order finance reads them:
 *
 *   not_posted           an event the ERP has not accepted after the grace period
 *   quantity_mismatch    the ERP acknowledged another quantity than the WMS sent
 *   posted_not_billed    posted, but its charges are not all accepted by billing
 *                        (or the event could not be rated)
 *   billed_not_shipped   a voided shipment whose billed amount does not net to zero
 *                        (its reversal missing, refused or pending)
 *   storage_not_charged  a storage day (a snapshot, or a day between two) that a
 *                        storage card prices and that has no storage charge
 *   duplicate_charge     one document charged twice for the same code under
 *                        different charge ids
 *
 * then the exports (export.c): missing_in_erp, unknown_in_erp, quantity
 * mismatches against the ERP's export, missing_in_billing,
 * unknown_in_billing, amount_mismatch, and ids billing lists twice.
 *
 * Differences are exact decimals (rating/money.h): what the other system has
 * minus what the hub expects.
 */
#include "reconcile/report.h"
#include "reconcile/recon_int.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/err.h"
#include "ingest/event.h"
#include "rating/card.h"
#include "rating/money.h"
#include "rating/rate.h"
#include "store/store.h"
#include "transform/transform.h"

#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GAP_DAYS_MAX 62 /* storage days looked at between two snapshots */

static const char *state_words(int state)
{
    switch (state) {
    case XD_DLV_PENDING:
        return "still pending";
    case XD_DLV_DEAD:
        return "dead-lettered";
    case XD_DLV_SKIPPED:
        return "skipped";
    case XD_DLV_DONE:
        return "accepted";
    default:
        return "never sent";
    }
}

static const char *event_verb(int type)
{
    switch (type) {
    case XD_EV_SHIPMENT_CONFIRMED:
        return "shipped";
    case XD_EV_SHIPMENT_VOIDED:
        return "voided";
    case XD_EV_GOODS_RECEIVED:
        return "received";
    case XD_EV_INVENTORY_ADJUSTED:
        return "adjusted";
    case XD_EV_INVENTORY_SNAPSHOT:
        return "counted";
    default:
        return "delivered";
    }
}

/* ---- the checks on the ledger ---- */

/* not_posted and quantity_mismatch, per event and target. */
static void check_postings(struct xd_recon_ctx *c)
{
    const struct xd_recon_ledger *lg = c->lg;
    for (size_t i = 0; i < lg->nevents; i++) {
        const struct xd_lg_event *e = &lg->events[i];
        const struct xd_lg_object *o = &lg->objs[e->obj];
        if (!xd_recon_in_window(c, e->day))
            continue;
        for (size_t k = 0; k < e->nposts; k++) {
            const struct xd_lg_post *p = &e->posts[k];
            if (p->state == XD_DLV_DONE) {
                struct xd_dec diff;
                if (!p->has_qty || !e->has_qty || !xd_recon_differs(p->qty, e->qty, c->qtol, &diff))
                    continue;
                struct xd_recon_break *b =
                    xd_recon_add(c, "quantity_mismatch", "wms,erp", o->type, o->key,
                                 "quantity_mismatch:%s:%s:%s:%s:%s", xd_obj_type_name(o->type),
                                 o->key, e->event_id, p->route, p->target);
                if (!b)
                    return;
                xd_recon_set_obj(b, o);
                b->event_id = strdup(e->event_id);
                b->expected = xd_recon_dec(e->qty);
                b->actual = xd_recon_dec(p->qty);
                b->difference = xd_recon_dec(diff);
                b->age_ms = xd_recon_age(c, p->ack_ms ? p->ack_ms : p->updated_ms);
                xd_recon_detail(b, "the WMS %s %s, %s acknowledged %s (reference %s)",
                                event_verb(e->type), b->expected, p->target, b->actual,
                                p->reference ? p->reference : "none");
                continue;
            }
            if (p->state == XD_DLV_SKIPPED || !xd_recon_overdue(c, e->received_ms))
                continue;
            struct xd_recon_break *b = xd_recon_add(
                c, "not_posted", "wms,erp", o->type, o->key, "not_posted:%s:%s:%s:%s:%s",
                xd_obj_type_name(o->type), o->key, e->event_id, p->route, p->target);
            if (!b)
                return;
            xd_recon_set_obj(b, o);
            b->event_id = strdup(e->event_id);
            if (e->has_qty)
                xd_recon_set_none(b, e->qty);
            b->age_ms = xd_recon_age(c, e->received_ms);
            xd_recon_detail(b, "%s, not posted: %s %s after %u attempt%s%s%s", event_verb(e->type),
                            p->target, state_words(p->state), p->attempts,
                            p->attempts == 1 ? "" : "s", p->last_error ? ": " : "",
                            p->last_error ? p->last_error : "");
        }
    }
}

/* Does the route of a rate step deliver its charges (a step after it)? */
static int route_bills(const struct xd_config *cfg, const char *route, unsigned step)
{
    for (size_t i = 0; route && i < cfg->nroutes; i++)
        if (cfg->routes[i].name && strcmp(cfg->routes[i].name, route) == 0)
            return cfg->routes[i].nsteps > step + 1;
    return 0;
}

static int all_posted(const struct xd_lg_event *e)
{
    for (size_t k = 0; k < e->nposts; k++)
        if (e->posts[k].state != XD_DLV_DONE && e->posts[k].state != XD_DLV_SKIPPED)
            return 0;
    return 1;
}

static int64_t posted_at(const struct xd_lg_event *e)
{
    int64_t t = 0;
    for (size_t k = 0; k < e->nposts; k++)
        if (e->posts[k].updated_ms > t)
            t = e->posts[k].updated_ms;
    return t ? t : e->received_ms;
}

/* posted_not_billed: per event that was posted (or needs no posting) and is not voided. */
static void check_billing(struct xd_recon_ctx *c)
{
    const struct xd_recon_ledger *lg = c->lg;
    for (size_t oi = 0; oi < lg->nobjs; oi++) {
        const struct xd_lg_object *o = &lg->objs[oi];
        if (o->voided)
            continue; /* billed_not_shipped looks at voided shipments */
        for (size_t k = 0; k < o->nevents; k++) {
            const struct xd_lg_event *e = &lg->events[o->events[k]];
            if (!xd_recon_in_window(c, e->day) || e->type == XD_EV_SHIPMENT_VOIDED ||
                e->rate_state < 0 || !all_posted(e))
                continue;
            /* Superseded confirmations (a re-shipment) are judged by duplicate_charge. */
            int64_t since = posted_at(e);
            if (e->rate_state != XD_DLV_DONE) {
                if (e->rate_state == XD_DLV_SKIPPED || !xd_recon_overdue(c, since))
                    continue;
                struct xd_recon_break *b = xd_recon_add(
                    c, "posted_not_billed", "erp,billing", o->type, o->key,
                    "posted_not_billed:%s:%s:%s", xd_obj_type_name(o->type), o->key, e->event_id);
                if (!b)
                    return;
                xd_recon_set_obj(b, o);
                b->event_id = strdup(e->event_id);
                b->age_ms = xd_recon_age(c, since);
                xd_recon_detail(b, "%s and posted, not rated: the rate step is %s%s%s",
                                event_verb(e->type), state_words(e->rate_state),
                                e->rate_error ? ": " : "", e->rate_error ? e->rate_error : "");
                continue;
            }
            if (!route_bills(c->cfg, e->rate_route, e->rate_step))
                continue;
            struct xd_dec missing = xd_dec_int(0);
            size_t n = 0;
            const struct xd_lg_charge *first = NULL;
            int64_t oldest = 0;
            for (size_t j = 0; j < o->ncharges; j++) {
                const struct xd_lg_charge *ch = &lg->charges[o->charges[j]];
                if (ch->event != o->events[k] || ch->bill_state == XD_DLV_DONE ||
                    ch->bill_state == XD_DLV_SKIPPED)
                    continue;
                int64_t t = ch->created_ms > since ? ch->created_ms : since;
                if (!xd_recon_overdue(c, t))
                    continue;
                if (xd_dec_add(missing, ch->amount, &missing) < 0)
                    continue;
                if (!first)
                    first = ch;
                if (!oldest || t < oldest)
                    oldest = t;
                n++;
            }
            if (!n)
                continue;
            struct xd_recon_break *b = xd_recon_add(c, "posted_not_billed", "erp,billing", o->type,
                                                    o->key, "posted_not_billed:%s:%s:%s",
                                                    xd_obj_type_name(o->type), o->key, e->event_id);
            if (!b)
                return;
            xd_recon_set_obj(b, o);
            b->event_id = strdup(e->event_id);
            xd_recon_set_none(b, missing);
            b->currency = first->currency ? strdup(first->currency) : NULL;
            b->charge_id = strdup(first->charge_id);
            b->age_ms = xd_recon_age(c, oldest);
            xd_recon_detail(b, "%zu charge%s not accepted by billing (%s %s %s%s%s)", n,
                            n == 1 ? "" : "s", first->charge_id, first->code,
                            state_words(first->bill_state), first->bill_error ? ": " : "",
                            first->bill_error ? first->bill_error : "");
        }
    }
}

/* billed_not_shipped: a voided shipment whose accepted charges do not net to zero. */
static void check_voids(struct xd_recon_ctx *c)
{
    const struct xd_recon_ledger *lg = c->lg;
    for (size_t oi = 0; oi < lg->nobjs; oi++) {
        const struct xd_lg_object *o = &lg->objs[oi];
        if (!o->voided || o->void_event == SIZE_MAX)
            continue;
        const struct xd_lg_event *v = &lg->events[o->void_event];
        if (!xd_recon_in_window(c, v->day) || !xd_recon_overdue(c, v->received_ms))
            continue;
        struct xd_dec net = xd_dec_int(0);
        const char *currency = NULL;
        const struct xd_lg_charge *stuck = NULL;
        size_t unreversed = 0;
        for (size_t j = 0; j < o->ncharges; j++) {
            const struct xd_lg_charge *ch = &lg->charges[o->charges[j]];
            if (ch->bill_state == XD_DLV_DONE) {
                if (xd_dec_add(net, ch->amount, &net) < 0)
                    continue;
                currency = ch->currency;
            } else if (ch->reverses && ch->reverses[0] &&
                       (!stuck ||
                        (ch->bill_state == XD_DLV_DEAD && stuck->bill_state != XD_DLV_DEAD))) {
                stuck = ch; /* a refused reversal says most */
            }
            if ((!ch->reverses || !ch->reverses[0]) && !ch->reversed &&
                lg->events[ch->event].occurred_ms <= v->occurred_ms)
                unreversed++;
        }
        struct xd_dec diff;
        if (!xd_recon_differs(net, xd_dec_int(0), c->atol, &diff))
            continue;
        struct xd_recon_break *b =
            xd_recon_add(c, "billed_not_shipped", "wms,billing", o->type, o->key,
                         "billed_not_shipped:%s:%s", xd_obj_type_name(o->type), o->key);
        if (!b)
            return;
        xd_recon_set_obj(b, o);
        b->event_id = strdup(v->event_id);
        b->expected = strdup("0");
        b->actual = xd_recon_dec(net);
        b->difference = xd_recon_dec(net);
        b->currency = currency ? strdup(currency) : NULL;
        b->age_ms = xd_recon_age(c, v->received_ms);
        if (stuck) {
            b->charge_id = strdup(stuck->charge_id);
            xd_recon_detail(b, "voided, still billed: reversal %s (%s) %s%s%s", stuck->charge_id,
                            stuck->code, state_words(stuck->bill_state),
                            stuck->bill_error ? ": " : "",
                            stuck->bill_error ? stuck->bill_error : "");
        } else {
            xd_recon_detail(b, "voided, still billed: %zu charge%s never reversed", unreversed,
                            unreversed == 1 ? "" : "s");
        }
    }
}

/* duplicate_charge: live charges of one document, code and band under several events. */
struct dupkey {
    const struct xd_lg_charge *ch;
};
static int dup_cmp(const void *a, const void *b)
{
    const struct xd_lg_charge *x = ((const struct dupkey *)a)->ch,
                              *y = ((const struct dupkey *)b)->ch;
    int r;
    if (x->source != y->source)
        return x->source < y->source ? -1 : 1;
    if ((r = strcmp(x->customer ? x->customer : "", y->customer ? y->customer : "")))
        return r;
    if ((r = strcmp(x->warehouse ? x->warehouse : "", y->warehouse ? y->warehouse : "")))
        return r;
    if ((r = strcmp(x->reference ? x->reference : "", y->reference ? y->reference : "")))
        return r;
    if ((r = strcmp(x->code ? x->code : "", y->code ? y->code : "")))
        return r;
    if (x->band != y->band)
        return x->band < y->band ? -1 : 1;
    return x->created_ms < y->created_ms ? -1 : x->created_ms > y->created_ms;
}

static int same_document(const struct xd_lg_charge *x, const struct xd_lg_charge *y)
{
    return x->source == y->source && x->band == y->band &&
           strcmp(x->customer ? x->customer : "", y->customer ? y->customer : "") == 0 &&
           strcmp(x->warehouse ? x->warehouse : "", y->warehouse ? y->warehouse : "") == 0 &&
           strcmp(x->reference ? x->reference : "", y->reference ? y->reference : "") == 0 &&
           strcmp(x->code ? x->code : "", y->code ? y->code : "") == 0;
}

static void check_duplicates(struct xd_recon_ctx *c)
{
    const struct xd_recon_ledger *lg = c->lg;
    struct dupkey *v = malloc((lg->ncharges + 1) * sizeof *v);
    if (!v) {
        c->rc = XD_ENOMEM;
        return;
    }
    size_t n = 0;
    for (size_t i = 0; i < lg->ncharges; i++) {
        const struct xd_lg_charge *ch = &lg->charges[i];
        if ((ch->reverses && ch->reverses[0]) || ch->reversed || ch->event == SIZE_MAX ||
            !xd_recon_in_window(c, ch->day))
            continue;
        v[n++].ch = ch;
    }
    qsort(v, n, sizeof *v, dup_cmp);
    for (size_t i = 0; i < n;) {
        size_t j = i + 1;
        while (j < n && same_document(v[i].ch, v[j].ch))
            j++;
        if (j - i > 1) {
            const struct xd_lg_charge *first = v[i].ch;
            const struct xd_lg_object *o = &lg->objs[lg->events[first->event].obj];
            struct xd_dec extra = xd_dec_int(0);
            for (size_t k = i + 1; k < j; k++)
                xd_dec_add(extra, v[k].ch->amount, &extra);
            struct xd_recon_break *b = xd_recon_add(
                c, "duplicate_charge", "billing", o->type, o->key, "duplicate_charge:%s:%s:%s:%u",
                xd_obj_type_name(o->type), o->key, first->code, first->band);
            if (!b)
                break;
            xd_recon_set_obj(b, o);
            b->event_id = strdup(v[j - 1].ch->event_id);
            b->charge_id = strdup(v[j - 1].ch->charge_id);
            b->expected = xd_recon_dec(first->amount);
            xd_dec_add(first->amount, extra, &extra);
            b->actual = xd_recon_dec(extra);
            xd_dec_sub(extra, first->amount, &extra);
            b->difference = xd_recon_dec(extra);
            b->currency = first->currency ? strdup(first->currency) : NULL;
            b->age_ms = xd_recon_age(c, v[j - 1].ch->created_ms);
            xd_recon_detail(b,
                            "%s charged %zu times under different charge ids (%s first, %s last, "
                            "from events %s and %s)",
                            first->code, j - i, first->charge_id, v[j - 1].ch->charge_id,
                            first->event_id, v[j - 1].ch->event_id);
        }
        i = j;
    }
    free(v);
}

/* storage_not_charged: snapshots whose storage charges are missing, and days between them. */
struct storage {
    struct xd_rating *rating;
    struct xd_jq_cache *when;
    struct xd_rate_conds conds;
    struct xd_ledger led;
};

/* The storage charges rating gives ev (as_of set to day when day >= 0). */
static int expected_storage(struct storage *s, const char *body, long day, struct xd_charges *out)
{
    cJSON *ev = cJSON_Parse(body);
    if (!ev)
        return XD_EINVAL;
    if (day >= 0) {
        cJSON *data = cJSON_GetObjectItemCaseSensitive(ev, "data");
        char d[11];
        xd_day_format(day, d);
        cJSON_ReplaceItemInObjectCaseSensitive(data, "as_of", cJSON_CreateString(d));
        /* A day estimated is a charge of its own: its id comes from another event id. */
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(ev, "event_id");
        char nid[200];
        snprintf(nid, sizeof nid, "%s@%s", cJSON_IsString(id) ? id->valuestring : "", d);
        cJSON_ReplaceItemInObjectCaseSensitive(ev, "event_id", cJSON_CreateString(nid));
    }
    int rc = xd_rate_event(s->rating, ev, XD_EV_INVENTORY_SNAPSHOT, &s->led, out, NULL);
    cJSON_Delete(ev);
    return rc;
}

static struct xd_dec charges_total(const struct xd_charges *cs, const char **currency)
{
    struct xd_dec t = xd_dec_int(0);
    for (size_t i = 0; i < cs->n; i++) {
        xd_dec_add(t, cs->v[i].amount, &t);
        *currency = cs->v[i].currency;
    }
    return t;
}

static void storage_gap(struct xd_recon_ctx *c, struct storage *s, const struct xd_lg_object *prev,
                        const struct xd_lg_event *pe, long day)
{
    struct xd_charges cs;
    xd_charges_init(&cs);
    if (expected_storage(s, pe->body, day, &cs) == 0 && cs.n > 0) {
        char d[11], key[300];
        xd_day_format(day, d);
        snprintf(key, sizeof key, "%s:%s:%s", prev->customer ? prev->customer : "",
                 prev->warehouse ? prev->warehouse : "", d);
        const char *currency = NULL;
        struct xd_dec want = charges_total(&cs, &currency);
        struct xd_recon_break *b =
            xd_recon_add(c, "storage_not_charged", "wms,billing", XD_OBJ_STORAGE_DAY, key,
                         "storage_not_charged:%s:%s", xd_obj_type_name(XD_OBJ_STORAGE_DAY), key);
        if (b) {
            xd_recon_set_obj(b, prev);
            xd_recon_set_none(b, want);
            b->currency = currency ? strdup(currency) : NULL;
            b->age_ms = xd_recon_age(c, (int64_t)(day + 1) * 86400000);
            char pd[11];
            xd_day_format(pe->day, pd);
            xd_recon_detail(b,
                            "no inventory snapshot for this day, so no storage charge; "
                            "estimated from the positions of %s",
                            pd);
        }
    }
    xd_charges_dispose(&cs);
}

static void check_storage(struct xd_recon_ctx *c)
{
    const struct xd_recon_ledger *lg = c->lg;
    if (!c->cfg->nrate_cards)
        return;
    struct storage s = {0};
    if (xd_rating_compile(c->cfg, &s.rating, NULL) < 0)
        return; /* `crossdock check` reports bad cards; nothing to compare with here */
    s.when = xd_jq_cache_create(c->cfg);
    s.conds = (struct xd_rate_conds){.test = xd_jq_cache_cond, .ctx = s.when};
    s.led = (struct xd_ledger){.conds = s.when ? &s.conds : NULL};
    const struct xd_lg_object *prev = NULL;
    for (size_t oi = 0; oi < lg->nobjs && c->rc == 0; oi++) {
        const struct xd_lg_object *o = &lg->objs[oi];
        if (o->type != XD_OBJ_STORAGE_DAY || o->current == SIZE_MAX)
            continue;
        const struct xd_lg_event *e = &lg->events[o->current];
        /* Days missing between this snapshot and the one before, same customer and warehouse
           (objects are sorted by CUSTOMER:WAREHOUSE:DATE). */
        if (prev && prev->customer && o->customer && prev->warehouse && o->warehouse &&
            strcmp(prev->customer, o->customer) == 0 &&
            strcmp(prev->warehouse, o->warehouse) == 0) {
            const struct xd_lg_event *pe = &lg->events[prev->current];
            for (long d = pe->day + 1; d < e->day && d <= pe->day + GAP_DAYS_MAX; d++)
                if (xd_recon_in_window(c, d))
                    storage_gap(c, &s, prev, pe, d);
        }
        prev = o;
        /* A rate step that failed or waits is posted_not_billed's to report. */
        int rated_or_not_routed =
            e->rate_state < 0 || e->rate_state == XD_DLV_DONE || e->rate_state == XD_DLV_SKIPPED;
        if (!xd_recon_in_window(c, e->day) || !xd_recon_overdue(c, e->received_ms) ||
            !rated_or_not_routed)
            continue;
        struct xd_charges cs;
        xd_charges_init(&cs);
        if (expected_storage(&s, e->body, -1, &cs) == 0) {
            struct xd_dec missing = xd_dec_int(0);
            size_t n = 0;
            const char *currency = NULL;
            for (size_t i = 0; i < cs.n; i++) {
                if (xd_ledger_charge(lg, cs.v[i].charge_id))
                    continue;
                xd_dec_add(missing, cs.v[i].amount, &missing);
                currency = cs.v[i].currency;
                n++;
            }
            if (n) {
                struct xd_recon_break *b =
                    xd_recon_add(c, "storage_not_charged", "wms,billing", o->type, o->key,
                                 "storage_not_charged:%s:%s", xd_obj_type_name(o->type), o->key);
                if (b) {
                    xd_recon_set_obj(b, o);
                    b->event_id = strdup(e->event_id);
                    xd_recon_set_none(b, missing);
                    b->currency = currency ? strdup(currency) : NULL;
                    b->age_ms = xd_recon_age(c, e->received_ms);
                    xd_recon_detail(b,
                                    "the snapshot is priced by a storage card but %zu storage "
                                    "charge%s %s not recorded (the rate step is %s)",
                                    n, n == 1 ? "" : "s", n == 1 ? "is" : "are",
                                    state_words(e->rate_state));
                }
            }
        }
        xd_charges_dispose(&cs);
    }
    xd_jq_cache_destroy(s.when);
    xd_rating_destroy(s.rating);
}

/* ---- exceptions ---- */

static int key_scope_ran(const struct xd_recon_report *r, const char *key, int full)
{
    if (!full)
        return 0;
    if (strncmp(key, "erp_export/", 11) == 0)
        return r->erp_export;
    if (strncmp(key, "billing_export/", 15) == 0)
        return r->billing_export;
    return 1; /* a break of the store's own checks */
}

struct open_ctx {
    struct xd_recon_report *r;
    int64_t *ids; /* per break */
    int64_t *stale;
    size_t nstale, cap;
    int full;
    int rc;
};

static int break_key_cmp(const void *a, const void *b)
{
    return strcmp(((const struct xd_recon_break *)a)->key, ((const struct xd_recon_break *)b)->key);
}

static void on_open(void *ctx, int64_t id, const char *key, const char *state)
{
    (void)state;
    struct open_ctx *oc = ctx;
    struct xd_recon_break k = {.key = (char *)key};
    struct xd_recon_break *b =
        oc->r->n ? bsearch(&k, oc->r->breaks, oc->r->n, sizeof k, break_key_cmp) : NULL;
    if (b) {
        b->exception_id = id;
        return;
    }
    if (!key_scope_ran(oc->r, key, oc->full))
        return;
    if (oc->nstale == oc->cap) {
        size_t cap = oc->cap ? oc->cap * 2 : 16;
        int64_t *v = realloc(oc->stale, cap * sizeof *v);
        if (!v) {
            oc->rc = XD_ENOMEM;
            return;
        }
        oc->stale = v;
        oc->cap = cap;
    }
    oc->stale[oc->nstale++] = id;
}

static void reason_of(const struct xd_recon_break *b, struct xd_buf *o)
{
    xd_buf_printf(o, "%s: %s %s", b->category, xd_obj_type_name(b->obj_type), b->obj_key);
    if (b->difference)
        xd_buf_printf(o, ", difference %s%s%s", b->difference, b->currency ? " " : "",
                      b->currency ? b->currency : "");
    if (b->detail)
        xd_buf_printf(o, ": %s", b->detail);
}

/* Opens an exception per break, resolves those of breaks gone; sets exception ids. */
static int sync_exceptions(struct xd_store *store, struct xd_recon_report *r, int full)
{
    int rc = 0;
    if (r->n) {
        struct xd_keyed_exc *v = calloc(r->n, sizeof *v);
        struct xd_buf *reasons = calloc(r->n, sizeof *reasons);
        if (!v || !reasons) {
            free(v);
            free(reasons);
            return XD_ENOMEM;
        }
        for (size_t i = 0; i < r->n; i++) {
            reason_of(&r->breaks[i], &reasons[i]);
            v[i] = (struct xd_keyed_exc){.key = r->breaks[i].key,
                                         .category = "reconciliation",
                                         .event_id = r->breaks[i].event_id,
                                         .reason = xd_buf_str(&reasons[i])};
        }
        rc = xd_store_open_keyed(store, v, r->n, &r->exc_opened);
        for (size_t i = 0; i < r->n; i++)
            xd_buf_dispose(&reasons[i]);
        free(reasons);
        free(v);
        if (rc < 0)
            return rc;
    }
    struct open_ctx oc = {.r = r, .full = full};
    rc = xd_store_keyed_open(store, "reconciliation", on_open, &oc);
    if (rc == 0)
        rc = oc.rc;
    for (size_t i = 0; rc == 0 && i < oc.nstale; i++) {
        int u = xd_store_update_exception(store, oc.stale[i], "resolved", NULL,
                                          "reconciliation: the break is no longer found");
        if (u == 0)
            r->exc_resolved++;
        else if (u != XD_ECONFLICT && u != XD_ENOTFOUND)
            rc = u;
    }
    free(oc.stale);
    return rc;
}

/* ---- the run ---- */

static int parse_day(const char *s, long *out, const char *what, struct xd_buf *err)
{
    if (xd_day_parse(s, out) == 0)
        return 0;
    if (err)
        xd_buf_printf(err, "%s: '%.40s' is not a date (YYYY-MM-DD)", what, s);
    return XD_EINVAL;
}

int xd_reconcile(const struct xd_config *cfg, struct xd_store *store, const struct xd_recon_opts *o,
                 struct xd_recon_report *r, struct xd_buf *err)
{
    memset(r, 0, sizeof *r);
    struct xd_recon_ctx c = {.cfg = cfg, .r = r, .from = -2147483647L, .to = 2147483647L};
    c.now = o->now_ms ? o->now_ms : xd_now_ms();
    c.grace_ms = (int64_t)cfg->reconcile.grace_s * 1000;
    r->at_ms = c.now;
    r->grace_s = cfg->reconcile.grace_s;
    const char *qt = cfg->reconcile.quantity_tolerance ? cfg->reconcile.quantity_tolerance : "0";
    const char *at = cfg->reconcile.amount_tolerance ? cfg->reconcile.amount_tolerance : "0";
    if (xd_dec_parse(qt, &c.qtol) < 0 || xd_dec_parse(at, &c.atol) < 0) {
        if (err)
            xd_buf_puts(err, "reconcile: tolerances must be decimals");
        return XD_EINVAL;
    }
    snprintf(r->qty_tol, sizeof r->qty_tol, "%s", qt);
    snprintf(r->amount_tol, sizeof r->amount_tol, "%s", at);
    if (o->from && parse_day(o->from, &c.from, "from", err) < 0)
        return XD_EINVAL;
    if (o->to && parse_day(o->to, &c.to, "to", err) < 0)
        return XD_EINVAL;
    if (o->from)
        snprintf(r->from, sizeof r->from, "%s", o->from);
    if (o->to)
        snprintf(r->to, sizeof r->to, "%s", o->to);

    /* The exports are read first: a bad file is bad input, before any work. */
    struct xd_erp_export erp = {0};
    struct xd_billing_export bill = {0};
    int rc = 0;
    if (o->erp_export) {
        rc = xd_erp_export_read(&cfg->reconcile.erp_export, o->erp_export, o->erp_len,
                                o->erp_name ? o->erp_name : "erp export", &erp, err);
        if (rc < 0)
            return rc;
        r->erp_export = 1;
        r->erp_rows = erp.rows;
    }
    if (o->billing_export) {
        rc = xd_billing_export_read(
            &cfg->reconcile.billing_export, o->billing_export, o->billing_len,
            o->billing_name ? o->billing_name : "billing export", &bill, err);
        if (rc < 0) {
            xd_erp_export_dispose(&erp);
            return rc;
        }
        r->billing_export = 1;
        r->billing_rows = bill.rows;
    }

    struct xd_recon_ledger lg;
    rc = xd_ledger_build(store, &lg);
    if (rc < 0)
        goto out_exports;
    c.lg = &lg;
    for (size_t i = 0; i < lg.nobjs; i++) {
        const struct xd_lg_object *ob = &lg.objs[i];
        if (ob->current != SIZE_MAX && xd_recon_in_window(&c, lg.events[ob->current].day))
            r->objects++;
    }
    for (size_t i = 0; i < lg.nevents; i++)
        r->events += xd_recon_in_window(&c, lg.events[i].day);
    for (size_t i = 0; i < lg.ncharges; i++)
        r->charges += xd_recon_in_window(&c, lg.charges[i].day);

    check_postings(&c);
    check_billing(&c);
    check_voids(&c);
    check_storage(&c);
    check_duplicates(&c);
    if (c.rc == 0 && o->erp_export)
        xd_erp_export_check(&c, &erp);
    if (c.rc == 0 && o->billing_export)
        xd_billing_export_check(&c, &bill);
    rc = c.rc;
    if (rc == 0 && r->n)
        qsort(r->breaks, r->n, sizeof *r->breaks, break_key_cmp);
    int want = o->exceptions < 0 ? cfg->reconcile.exceptions : o->exceptions;
    if (rc == 0 && want) {
        /* A store that cannot be written (full, read-only) still gives its report. */
        r->exc_error = sync_exceptions(store, r, !o->from && !o->to);
        if (r->exc_error == XD_ENOMEM)
            rc = r->exc_error;
    }
    xd_ledger_dispose(&lg);
out_exports:
    xd_erp_export_dispose(&erp);
    xd_billing_export_dispose(&bill);
    if (rc < 0) {
        if (err && !err->len && rc != XD_EINVAL)
            xd_buf_printf(err, "store: %s", xd_strerror(rc));
        xd_recon_report_dispose(r);
    }
    return rc;
}

static void break_dispose(struct xd_recon_break *b)
{
    free(b->key);
    free(b->obj_key);
    free(b->warehouse);
    free(b->customer);
    free(b->event_id);
    free(b->charge_id);
    free(b->expected);
    free(b->actual);
    free(b->difference);
    free(b->currency);
    free(b->detail);
}

void xd_recon_report_dispose(struct xd_recon_report *r)
{
    for (size_t i = 0; i < r->n; i++)
        break_dispose(&r->breaks[i]);
    free(r->breaks);
    r->breaks = NULL;
    r->n = 0;
}

/* ---- output ---- */

/* Categories in the order they are explained (docs/reconciliation.md). */
static const char *const categories[] = {
    "not_posted",          "quantity_mismatch",  "posted_not_billed", "billed_not_shipped",
    "storage_not_charged", "duplicate_charge",   "missing_in_erp",    "unknown_in_erp",
    "missing_in_billing",  "unknown_in_billing", "amount_mismatch",
};
#define NCATEGORIES (sizeof categories / sizeof categories[0])

static void put_opt(struct xd_buf *o, const char *name, const char *v)
{
    xd_buf_printf(o, ",\"%s\":", name);
    if (v)
        xd_buf_json_str(o, v);
    else
        xd_buf_puts(o, "null");
}

int xd_recon_report_json(const struct xd_recon_report *r, struct xd_buf *o)
{
    char at[40];
    xd_iso_ms(at, sizeof at, r->at_ms);
    xd_buf_puts(o, "{\"from\":");
    if (r->from[0])
        xd_buf_json_str(o, r->from);
    else
        xd_buf_puts(o, "null");
    put_opt(o, "to", r->to[0] ? r->to : NULL);
    xd_buf_printf(o, ",\"generated_at\":\"%s\",\"clean\":%s", at, r->n ? "false" : "true");
    xd_buf_printf(o, ",\"tolerances\":{\"quantity\":\"%s\",\"amount\":\"%s\",\"grace_s\":%u}",
                  r->qty_tol, r->amount_tol, r->grace_s);
    xd_buf_printf(o, ",\"checked\":{\"objects\":%zu,\"events\":%zu,\"charges\":%zu", r->objects,
                  r->events, r->charges);
    if (r->erp_export)
        xd_buf_printf(o, ",\"erp_export_rows\":%zu", r->erp_rows);
    if (r->billing_export)
        xd_buf_printf(o, ",\"billing_export_rows\":%zu", r->billing_rows);
    xd_buf_puts(o, "},\"counts\":{");
    size_t shown = 0;
    for (size_t i = 0; i < NCATEGORIES; i++) {
        size_t n = 0;
        for (size_t k = 0; k < r->n; k++)
            n += strcmp(r->breaks[k].category, categories[i]) == 0;
        if (n)
            xd_buf_printf(o, "%s\"%s\":%zu", shown++ ? "," : "", categories[i], n);
    }
    xd_buf_printf(o, "},\"exceptions\":{\"opened\":%zu,\"resolved\":%zu", r->exc_opened,
                  r->exc_resolved);
    if (r->exc_error)
        xd_buf_printf(o, ",\"error\":\"%s\"", xd_strerror(r->exc_error));
    xd_buf_puts(o, "},\"breaks\":[");
    for (size_t i = 0; i < r->n; i++) {
        const struct xd_recon_break *b = &r->breaks[i];
        xd_buf_puts(o, i ? ",{\"key\":" : "{\"key\":");
        xd_buf_json_str(o, b->key);
        xd_buf_printf(o, ",\"category\":\"%s\",\"object\":{\"type\":\"%s\",\"key\":", b->category,
                      xd_obj_type_name(b->obj_type));
        xd_buf_json_str(o, b->obj_key);
        put_opt(o, "warehouse", b->warehouse);
        put_opt(o, "customer", b->customer);
        put_opt(o, "event_id", b->event_id);
        put_opt(o, "charge_id", b->charge_id);
        xd_buf_puts(o, "},\"systems\":[");
        const char *s = b->systems;
        for (int first = 1; *s; first = 0) {
            size_t n = strcspn(s, ",");
            xd_buf_puts(o, first ? "" : ",");
            xd_buf_json_strn(o, s, n);
            s += n + (s[n] == ',');
        }
        xd_buf_putc(o, ']');
        put_opt(o, "expected", b->expected);
        put_opt(o, "actual", b->actual);
        put_opt(o, "difference", b->difference);
        put_opt(o, "currency", b->currency);
        xd_buf_printf(o, ",\"age_s\":%lld", (long long)(b->age_ms / 1000));
        put_opt(o, "detail", b->detail);
        if (b->exception_id)
            xd_buf_printf(o, ",\"exception_id\":%lld", (long long)b->exception_id);
        else
            xd_buf_puts(o, ",\"exception_id\":null");
        xd_buf_putc(o, '}');
    }
    xd_buf_puts(o, "]}");
    return o->oom ? XD_ENOMEM : 0;
}

static void put_age(struct xd_buf *o, int64_t ms)
{
    int64_t s = ms / 1000;
    if (s >= 86400)
        xd_buf_printf(o, "%lldd%02lldh", (long long)(s / 86400), (long long)(s % 86400 / 3600));
    else if (s >= 3600)
        xd_buf_printf(o, "%lldh%02lldm", (long long)(s / 3600), (long long)(s % 3600 / 60));
    else if (s >= 60)
        xd_buf_printf(o, "%lldm%02llds", (long long)(s / 60), (long long)(s % 60));
    else
        xd_buf_printf(o, "%llds", (long long)s);
}

int xd_recon_report_text(const struct xd_recon_report *r, struct xd_buf *o)
{
    char at[40];
    xd_iso_ms(at, sizeof at, r->at_ms);
    xd_buf_printf(o, "reconciliation at %s, service dates %s to %s\n", at,
                  r->from[0] ? r->from : "(any)", r->to[0] ? r->to : "(any)");
    xd_buf_printf(o, "  grace %u s, quantity tolerance %s, amount tolerance %s\n", r->grace_s,
                  r->qty_tol, r->amount_tol);
    xd_buf_printf(o, "  checked %zu objects, %zu events, %zu charges", r->objects, r->events,
                  r->charges);
    if (r->erp_export)
        xd_buf_printf(o, "; ERP export %zu rows", r->erp_rows);
    if (r->billing_export)
        xd_buf_printf(o, "; billing export %zu rows", r->billing_rows);
    xd_buf_putc(o, '\n');
    for (size_t i = 0; i < r->n; i++) {
        const struct xd_recon_break *b = &r->breaks[i];
        xd_buf_printf(o, "  break %-19s %s %s", b->category, xd_obj_type_name(b->obj_type),
                      b->obj_key);
        if (b->warehouse || b->customer)
            xd_buf_printf(o, " (%s%s%s)", b->warehouse ? b->warehouse : "",
                          b->warehouse && b->customer ? " " : "", b->customer ? b->customer : "");
        xd_buf_printf(o, " [%s]", b->systems);
        if (b->difference)
            xd_buf_printf(o, " difference %s%s%s", b->difference, b->currency ? " " : "",
                          b->currency ? b->currency : "");
        xd_buf_puts(o, ", age ");
        put_age(o, b->age_ms);
        if (b->exception_id)
            xd_buf_printf(o, ", exception #%lld", (long long)b->exception_id);
        xd_buf_putc(o, '\n');
        if (b->detail)
            xd_buf_printf(o, "        %s\n", b->detail);
    }
    if (r->exc_error)
        xd_buf_printf(o, "  exceptions not opened: %s\n", xd_strerror(r->exc_error));
    if (r->n)
        xd_buf_printf(o, "result: %zu break%s (%zu exception%s opened, %zu resolved)\n", r->n,
                      r->n == 1 ? "" : "s", r->exc_opened, r->exc_opened == 1 ? "" : "s",
                      r->exc_resolved);
    else
        xd_buf_printf(o, "result: clean (%zu exception%s resolved)\n", r->exc_resolved,
                      r->exc_resolved == 1 ? "" : "s");
    return o->oom ? XD_ENOMEM : 0;
}
