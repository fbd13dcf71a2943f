/*
 * GET /v1/events/{id}: the event, its state, and its timeline (contract
 * section 3): every route step's deliveries, every delivery attempt, the
 * charges rated from the event (with whether billing accepted each) and the
 * exceptions about it.
 *
 * The timeline is one list in time order. Its entries come from four reads
 * (the event, its attempts, its charges, its exceptions); each entry is
 * written into one text buffer as it is read, and then the entries are
 * sorted by time. Entries of the same millisecond keep the order in which
 * things happen: the event is received, a step is attempted, its charges are
 * recorded, the charges are delivered to billing, an exception opens.
 */
#include "api/http.h"
#include "core/clock.h"
#include "core/err.h"
#include "deliver/trace.h"
#include "route/dlq.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TIMELINE_DELIVERIES_MAX 1000 /* deliveries one answer lists */

/* Ranks of entries at the same millisecond, in the order things happen. */
enum tl_rank {
    TL_RECEIVED,  /* committed to the journal */
    TL_STEP,      /* an attempt of a step of the event itself */
    TL_CHARGE,    /* a charge a rate step recorded */
    TL_BILLING,   /* an attempt of a step carrying one charge (part = charge id) */
    TL_EXCEPTION, /* an exception opened, or where it stands now */
};

struct tl_entry {
    int64_t at_ms;
    int rank;        /* enum tl_rank */
    size_t order;    /* read order: keeps the sort stable */
    size_t off, len; /* the entry's JSON in timeline.txt */
};

/* A delivery that carries a charge (its part), kept to say where that charge stands. */
struct part_dlv {
    int64_t id;
    char *part; /* the charge id */
    char *target;
    int state; /* xd_dlv_state */
};

struct timeline {
    struct xd_buf txt; /* every entry's JSON, one after the other */
    struct tl_entry *v;
    size_t n, cap;
    int oom;
    struct xd_buf *dl; /* the deliveries' JSON */
    size_t ndl;
    int pending, dead, done, skipped, held;
    struct part_dlv *parts;
    size_t nparts, capparts;
    struct xd_buf *charges; /* the charges' JSON */
    size_t ncharges;
    struct xd_buf *exceptions; /* the exceptions' JSON */
    size_t nexceptions;
};

/* Starts an entry: its JSON follows in t->txt until tl_end(). */
static size_t tl_begin(struct timeline *t)
{
    return t->txt.len;
}

static void tl_end(struct timeline *t, size_t off, int64_t at_ms, int rank)
{
    if (t->n == t->cap) {
        size_t cap = t->cap ? 2 * t->cap : 32;
        struct tl_entry *v = realloc(t->v, cap * sizeof *v);
        if (!v) {
            t->oom = 1;
            return;
        }
        t->v = v;
        t->cap = cap;
    }
    t->v[t->n] = (struct tl_entry){
        .at_ms = at_ms, .rank = rank, .order = t->n, .off = off, .len = t->txt.len - off};
    t->n++;
}

static int tl_cmp(const void *pa, const void *pb)
{
    const struct tl_entry *a = pa, *b = pb;
    if (a->at_ms != b->at_ms)
        return a->at_ms < b->at_ms ? -1 : 1;
    if (a->rank != b->rank)
        return a->rank < b->rank ? -1 : 1;
    return a->order < b->order ? -1 : a->order > b->order;
}

static void put_time(struct xd_buf *o, const char *name, int64_t ms)
{
    char when[96];
    xd_iso_ms(when, sizeof when, ms);
    xd_buf_printf(o, ",\"%s\":\"%s\"", name, when);
}

static void put_str_or_null(struct xd_buf *o, const char *name, const char *v)
{
    xd_buf_printf(o, ",\"%s\":", name);
    if (v && *v)
        xd_buf_json_str(o, v);
    else
        xd_buf_puts(o, "null");
}

/* ---- deliveries ---- */

static void keep_part(struct timeline *t, struct xd_stored_dlv *d)
{
    if (t->nparts == t->capparts) {
        size_t cap = t->capparts ? 2 * t->capparts : 8;
        struct part_dlv *v = realloc(t->parts, cap * sizeof *v);
        if (!v) {
            t->oom = 1;
            return;
        }
        t->parts = v;
        t->capparts = cap;
    }
    t->parts[t->nparts++] =
        (struct part_dlv){.id = d->id, .part = d->part, .target = d->target, .state = d->state};
    d->part = NULL; /* now the timeline's */
    d->target = NULL;
}

static void on_delivery(void *ctx, struct xd_stored_dlv *d)
{
    struct timeline *t = ctx;
    if (t->ndl++)
        xd_buf_putc(t->dl, ',');
    xd_dlq_json(t->dl, d, 0);
    t->pending += d->state == XD_DLV_PENDING;
    t->dead += d->state == XD_DLV_DEAD;
    t->done += d->state == XD_DLV_DONE;
    t->skipped += d->state == XD_DLV_SKIPPED;
    t->held += d->state == XD_DLV_HELD;
    if (d->part && d->part[0])
        keep_part(t, d);
    xd_stored_dlv_dispose(d);
}

/*
 * The event's state is derived from its deliveries, never stored twice:
 * received (no route took it), processing (something pending),
 * dead_lettered (something dead), awaiting_master_data (something held for
 * an xref entry), delivered (all done or filtered out).
 */
static const char *event_state(const struct timeline *t)
{
    if (t->ndl == 0)
        return "received";
    if (t->dead)
        return "dead_lettered";
    if (t->held)
        return "awaiting_master_data";
    if (t->pending)
        return "processing";
    return "delivered";
}

/*
 * The delivery that says whether billing accepted charge_id, or NULL (no
 * step delivers it). Of several (two steps after the rate step), one that is
 * not done tells, as in the ledger (reconcile/ledger.c).
 */
static const struct part_dlv *billing_of(const struct timeline *t, const char *charge_id)
{
    const struct part_dlv *found = NULL;
    for (size_t i = 0; i < t->nparts; i++) {
        if (strcmp(t->parts[i].part, charge_id) != 0)
            continue;
        if (!found || found->state == XD_DLV_DONE)
            found = &t->parts[i];
    }
    return found;
}

/* ---- attempts ---- */

static int carries_charge(const struct timeline *t, int64_t delivery_id)
{
    for (size_t i = 0; i < t->nparts; i++)
        if (t->parts[i].id == delivery_id)
            return 1;
    return 0;
}

static void on_attempt(void *ctx, const struct xd_stored_attempt *a)
{
    struct timeline *t = ctx;
    size_t off = tl_begin(t);
    xd_dlq_json_attempt(&t->txt, a);
    tl_end(t, off, a->at_ms, carries_charge(t, a->delivery_id) ? TL_BILLING : TL_STEP);
}

/* ---- charges ---- */

static void charge_fields(struct xd_buf *o, const struct xd_charge_rec *c)
{
    xd_buf_puts(o, "\"charge_id\":");
    xd_buf_json_str(o, c->charge_id ? c->charge_id : "");
    const char *fields[][2] = {{"code", c->code},
                               {"quantity", c->quantity},
                               {"unit", c->unit},
                               {"unit_price", c->unit_price},
                               {"amount", c->amount},
                               {"currency", c->currency},
                               {"service_date", c->service_date}};
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        xd_buf_printf(o, ",\"%s\":", fields[i][0]);
        xd_buf_json_str(o, fields[i][1] ? fields[i][1] : "");
    }
    put_str_or_null(o, "reverses", c->reverses);
}

static void on_charge(void *ctx, struct xd_charge_rec *c)
{
    struct timeline *t = ctx;
    const struct part_dlv *bill = billing_of(t, c->charge_id ? c->charge_id : "");
    const char *bill_state = bill ? xd_dlv_state_name(bill->state) : NULL;

    struct xd_buf *o = t->charges;
    if (t->ncharges++)
        xd_buf_putc(o, ',');
    xd_buf_putc(o, '{');
    charge_fields(o, c);
    put_time(o, "created_at", c->created_ms);
    if (bill) {
        xd_buf_printf(o, ",\"billing\":{\"delivery_id\":%lld,\"target\":", (long long)bill->id);
        xd_buf_json_str(o, bill->target ? bill->target : "");
        xd_buf_printf(o, ",\"state\":\"%s\"}", bill_state);
    } else {
        xd_buf_puts(o, ",\"billing\":null");
    }
    xd_buf_printf(o, ",\"billing_accepted\":%s}",
                  bill && bill->state == XD_DLV_DONE ? "true" : "false");

    size_t off = tl_begin(t);
    char when[96];
    xd_iso_ms(when, sizeof when, c->created_ms);
    xd_buf_printf(&t->txt,
                  "{\"kind\":\"charge\",\"at\":\"%s\",\"step\":\"charge\","
                  "\"outcome\":\"recorded\",",
                  when);
    charge_fields(&t->txt, c);
    put_str_or_null(&t->txt, "billing", bill_state);
    char detail[256];
    snprintf(detail, sizeof detail, "%s: %s %s at %s = %s %s%s%s", c->code ? c->code : "",
             c->quantity ? c->quantity : "", c->unit ? c->unit : "",
             c->unit_price ? c->unit_price : "", c->amount ? c->amount : "",
             c->currency ? c->currency : "", c->reverses && c->reverses[0] ? "; reverses " : "",
             c->reverses ? c->reverses : "");
    put_str_or_null(&t->txt, "detail", detail);
    xd_buf_putc(&t->txt, '}');
    tl_end(t, off, c->created_ms, TL_CHARGE);
    xd_charge_rec_dispose(c);
}

/* ---- exceptions ---- */

static void exception_entry(struct timeline *t, const struct xd_exception *x, int64_t at_ms,
                            const char *outcome, const char *detail)
{
    size_t off = tl_begin(t);
    char when[96];
    xd_iso_ms(when, sizeof when, at_ms);
    xd_buf_printf(&t->txt,
                  "{\"kind\":\"exception\",\"at\":\"%s\",\"step\":\"exception\","
                  "\"exception_id\":%lld,\"outcome\":",
                  when, (long long)x->id);
    xd_buf_json_str(&t->txt, outcome);
    put_str_or_null(&t->txt, "category", x->category);
    put_str_or_null(&t->txt, "state", x->state);
    put_str_or_null(&t->txt, "owner", x->owner);
    put_str_or_null(&t->txt, "target", x->target);
    put_str_or_null(&t->txt, "detail", detail);
    xd_buf_putc(&t->txt, '}');
    tl_end(t, off, at_ms, TL_EXCEPTION);
}

/*
 * An exception is two moments at most: when it opened (its reason), and,
 * once it moved on (acknowledged, resolved), where it stands now (its note).
 */
static void on_exception(void *ctx, struct xd_exception *x)
{
    struct timeline *t = ctx;
    if (t->nexceptions++)
        xd_buf_putc(t->exceptions, ',');
    xd_exception_json(t->exceptions, x);
    exception_entry(t, x, x->created_ms, "opened", x->reason);
    if (x->state && strcmp(x->state, "open") != 0)
        exception_entry(t, x, x->updated_ms, x->state, x->note);
    xd_exception_dispose(x);
}

static void timeline_dispose(struct timeline *t)
{
    for (size_t i = 0; i < t->nparts; i++) {
        free(t->parts[i].part);
        free(t->parts[i].target);
    }
    free(t->parts);
    free(t->v);
    xd_buf_dispose(&t->txt);
}

/* The whole answer, into r->out. */
static void answer(struct xd_req *r, const struct xd_stored_event *ev, struct timeline *t)
{
    struct xd_buf *o = &r->out;
    char when[96];
    xd_iso_ms(when, sizeof when, ev->received_ms);
    xd_buf_reset(o);
    xd_buf_puts(o, "{\"event_id\":");
    xd_buf_json_str(o, ev->event_id);
    xd_buf_puts(o, ",\"type\":");
    xd_buf_json_str(o, ev->type);
    xd_buf_printf(o, ",\"state\":\"%s\"", event_state(t));
    xd_buf_puts(o, ",\"business_key\":");
    xd_buf_json_str(o, ev->bkey ? ev->bkey : "");
    xd_buf_puts(o, ",\"source\":");
    xd_buf_json_str(o, ev->source ? ev->source : "");
    char tid[33];
    xd_trace_id_for_event(ev->event_id, ev->traceparent, tid);
    xd_buf_printf(o, ",\"trace_id\":\"%s\"", tid);
    if (ev->traceparent) {
        xd_buf_puts(o, ",\"traceparent\":");
        xd_buf_json_str(o, ev->traceparent);
    }
    xd_buf_printf(o, ",\"seq\":%lld,\"received_at\":\"%s\",\"event\":", (long long)ev->seq, when);
    xd_buf_puts(o, ev->body);
    xd_buf_puts(o, ",\"deliveries\":[");
    xd_buf_append(o, t->dl->data ? t->dl->data : "", t->dl->len);
    xd_buf_puts(o, "],\"charges\":[");
    xd_buf_append(o, t->charges->data ? t->charges->data : "", t->charges->len);
    xd_buf_puts(o, "],\"exceptions\":[");
    xd_buf_append(o, t->exceptions->data ? t->exceptions->data : "", t->exceptions->len);
    xd_buf_puts(o, "],\"timeline\":[");
    qsort(t->v, t->n, sizeof *t->v, tl_cmp);
    for (size_t i = 0; i < t->n; i++) {
        if (i)
            xd_buf_putc(o, ',');
        xd_buf_append(o, t->txt.data + t->v[i].off, t->v[i].len);
    }
    xd_buf_puts(o, "]}");
}

void xd_h_events_get(struct xd_req *r)
{
    struct xd_store *s = r->srv->store;
    struct xd_stored_event ev;
    int rc = xd_store_get_event(s, r->param, &ev);
    if (rc == XD_ENOTFOUND) {
        char detail[320];
        snprintf(detail, sizeof detail, "no event with id '%s'", r->param);
        xd_http_problem(r, 404, "not-found", "Not Found", detail, NULL);
        return;
    }
    if (rc < 0) {
        xd_http_store_error(r, rc);
        return;
    }

    struct xd_buf dl, charges, exceptions;
    xd_buf_init(&dl);
    xd_buf_init(&charges);
    xd_buf_init(&exceptions);
    struct timeline t = {.dl = &dl, .charges = &charges, .exceptions = &exceptions};
    xd_buf_init(&t.txt);

    size_t off = tl_begin(&t);
    char when[96];
    xd_iso_ms(when, sizeof when, ev.received_ms);
    xd_buf_printf(&t.txt,
                  "{\"kind\":\"received\",\"at\":\"%s\",\"step\":\"received\","
                  "\"outcome\":\"ok\",\"detail\":\"committed to the journal\"}",
                  when);
    tl_end(&t, off, ev.received_ms, TL_RECEIVED);

    /* Deliveries first: which of them carry charges orders the attempts and bills the charges. */
    struct xd_dlv_filter f = {
        .state = -1, .event_id = ev.event_id, .limit = TIMELINE_DELIVERIES_MAX};
    rc = xd_store_list_deliveries(s, &f, on_delivery, &t);
    if (rc >= 0)
        rc = xd_store_list_attempts(s, ev.seq, on_attempt, &t);
    /* A driver without one of these reads (XD_ENOTSUP): the timeline without it. */
    if (rc >= 0)
        rc = xd_store_charges_of_event(s, ev.seq, 0, on_charge, &t);
    if (rc >= 0 || rc == XD_ENOTSUP)
        rc = xd_store_exceptions_of_event(s, ev.event_id, 0, on_exception, &t);
    if (rc == XD_ENOTSUP)
        rc = 0;
    if (rc >= 0 && (t.oom || t.txt.oom || dl.oom || charges.oom || exceptions.oom))
        rc = XD_ENOMEM;
    if (rc >= 0)
        answer(r, &ev, &t);

    timeline_dispose(&t);
    xd_buf_dispose(&exceptions);
    xd_buf_dispose(&charges);
    xd_buf_dispose(&dl);
    xd_stored_event_dispose(&ev);
    if (rc < 0) {
        xd_http_store_error(r, rc);
        return;
    }
    xd_http_reply_json(r, 200);
}
