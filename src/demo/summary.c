/*
 * The demo's summary and reconciliation (demo_int.h): what the WMS sent,
 * what the ERP and billing recorded, the charges and their totals per
 * customer and currency, the dead letters and open exceptions, and a
 * reconciliation of the three sides: the WMS's list of events, the hub's
 * store, and the reference endpoints' records.
 *
 * Only this run is looked at: every event id of a run holds its tag
 * ("-K3X9-"), so a store kept across runs (--keep) does not blur the picture.
 * Money is summed exactly (rating/money.h) and printed rounded to the
 * currency's minor unit, never through a double.
 *
 * Clean means, all of these (docs/demo.md repeats them):
 *   1. the hub acknowledged every event the WMS generated, and refused none;
 *   2. the ERP recorded every shipment, void and receipt the hub accepted,
 *      except the planned bad-SKU shipment, which it must not have; it got
 *      nothing else, and no document twice under different keys;
 *   3. billing recorded every charge of the store once (a repeat with the
 *      same Idempotency-Key is the at-least-once delivery working, not a
 *      double charge), with the same customer, amount and currency, and
 *      nothing the store does not have;
 *   4. the totals per customer and currency are equal on both sides;
 *   5. no delivery is pending, and the only dead letter is the planned one
 *      (the ERP's 400 for the bad SKU);
 *   6. the open exceptions are the planned ones: that dead letter's, and the
 *      reconciliation's for the two planned breaks;
 *   7. the hub's own reconciliation report (recon.c), against exports from
 *      the reference ERP and billing, finds exactly the planned breaks: the
 *      bad-SKU shipment not posted, and the charge billing lost while
 *      answering 200 (run->dropped).
 */
#include "cli/hub.h"
#include "core/buf.h"
#include "core/config.h"
#include "demo/demo_int.h"
#include "ingest/event.h"
#include "rating/money.h"
#include "reconcile/report.h"
#include "store/store.h"

#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SHOW_MAX 8 /* discrepancies listed per check before "... and N more" */

/* ---- what the store has for this run ---- */

struct charge {
    char *id, *customer, *currency, *code;
    struct xd_dec amount;
    int reversal;
};

struct totals { /* one customer + currency + code (code "" for the customer's total) */
    char customer[32], currency[8], code[64];
    size_t n, reversals;
    struct xd_dec sum;
    int overflow;
};

struct dead {
    int64_t id;
    unsigned step;
    char *event_id, *target, *route, *error;
};

struct exc {
    int64_t id;
    char *category, *event_id, *reason;
};

struct state {
    const struct xd_demo_run *run;
    FILE *out;
    struct charge *ch;
    size_t nch, capch;
    struct totals *tot, *btot; /* the store's, billing's */
    size_t ntot, nbtot, captot, capbtot;
    struct dead *dead;
    size_t ndead, capdead;
    int64_t last_id;
    size_t pending;
    struct exc *exc;
    size_t nexc, capexc;
    int oom;
    int problems; /* checks that failed */
};

static int grow(void **v, size_t *cap, size_t n, size_t size)
{
    if (n < *cap)
        return 0;
    size_t c = *cap ? *cap * 2 : 64;
    void *p = realloc(*v, c * size);
    if (!p)
        return -1;
    *v = p;
    *cap = c;
    return 0;
}

static int mine(const struct state *s, const char *event_id)
{
    return event_id && strstr(event_id, s->run->mark) != NULL;
}

static struct totals *totals_of(struct totals **v, size_t *n, size_t *cap, const char *customer,
                                const char *currency, const char *code)
{
    for (size_t i = 0; i < *n; i++)
        if (strcmp((*v)[i].customer, customer) == 0 && strcmp((*v)[i].currency, currency) == 0 &&
            strcmp((*v)[i].code, code) == 0)
            return &(*v)[i];
    if (grow((void **)v, cap, *n, sizeof **v) < 0)
        return NULL;
    struct totals *t = &(*v)[(*n)++];
    memset(t, 0, sizeof *t);
    snprintf(t->customer, sizeof t->customer, "%s", customer);
    snprintf(t->currency, sizeof t->currency, "%s", currency);
    snprintf(t->code, sizeof t->code, "%s", code);
    t->sum = xd_dec_int(0);
    return t;
}

static void add_to(struct totals *t, struct xd_dec amount, int reversal)
{
    if (!t)
        return;
    t->n++;
    t->reversals += (size_t)reversal;
    if (xd_dec_add(t->sum, amount, &t->sum) < 0)
        t->overflow = 1;
}

static void on_charge(void *ctx, struct xd_charge_rec *c)
{
    struct state *s = ctx;
    struct xd_dec amount;
    if (mine(s, c->event_id) && xd_dec_parse(c->amount, &amount) == 0 &&
        grow((void **)&s->ch, &s->capch, s->nch, sizeof *s->ch) == 0) {
        struct charge *k = &s->ch[s->nch];
        *k = (struct charge){.id = strdup(c->charge_id),
                             .customer = strdup(c->customer),
                             .currency = strdup(c->currency),
                             .code = strdup(c->code),
                             .amount = amount,
                             .reversal = c->reverses && c->reverses[0]};
        if (k->id && k->customer && k->currency && k->code) {
            s->nch++;
            add_to(totals_of(&s->tot, &s->ntot, &s->captot, k->customer, k->currency, k->code),
                   amount, k->reversal);
            add_to(totals_of(&s->tot, &s->ntot, &s->captot, k->customer, k->currency, ""), amount,
                   k->reversal);
        } else {
            free(k->id), free(k->customer), free(k->currency), free(k->code);
            s->oom = 1;
        }
    }
    xd_charge_rec_dispose(c);
}

static void on_dead(void *ctx, struct xd_stored_dlv *d)
{
    struct state *s = ctx;
    s->last_id = d->id;
    if (mine(s, d->event_id) &&
        grow((void **)&s->dead, &s->capdead, s->ndead, sizeof *s->dead) == 0) {
        s->dead[s->ndead++] = (struct dead){.id = d->id,
                                            .step = d->step,
                                            .event_id = strdup(d->event_id),
                                            .target = strdup(d->target ? d->target : ""),
                                            .route = strdup(d->route),
                                            .error = strdup(d->last_error ? d->last_error : "")};
    }
    xd_stored_dlv_dispose(d);
}

static void on_pending(void *ctx, struct xd_stored_dlv *d)
{
    struct state *s = ctx;
    s->last_id = d->id;
    s->pending += (size_t)mine(s, d->event_id);
    xd_stored_dlv_dispose(d);
}

static void on_exception(void *ctx, struct xd_exception *x)
{
    struct state *s = ctx;
    s->last_id = x->id;
    if (mine(s, x->event_id) && grow((void **)&s->exc, &s->capexc, s->nexc, sizeof *s->exc) == 0) {
        s->exc[s->nexc++] = (struct exc){.id = x->id,
                                         .category = strdup(x->category),
                                         .event_id = strdup(x->event_id),
                                         .reason = strdup(x->reason ? x->reason : "")};
    }
    xd_exception_dispose(x);
}

/* Reads this run's deliveries in state st, 100 at a time. */
static void list_deliveries(struct state *s, int st, void (*cb)(void *, struct xd_stored_dlv *))
{
    for (s->last_id = 0;;) {
        int64_t before = s->last_id;
        struct xd_dlv_filter f = {.state = st, .after_id = before, .limit = 100};
        if (xd_store_list_deliveries(s->run->hub->store, &f, cb, s) < 0 || s->last_id == before)
            break;
    }
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int has(char **sorted, size_t n, const char *key)
{
    return n && bsearch(&key, sorted, n, sizeof *sorted, cmp_str) != NULL;
}

static int cmp_charge(const void *a, const void *b)
{
    return strcmp(((const struct charge *)a)->id, ((const struct charge *)b)->id);
}

/* This run's charge with that id (s->ch is sorted by id), or NULL. */
static const struct charge *charge_of(const struct state *s, const char *id)
{
    struct charge key = {.id = (char *)id};
    return s->nch ? bsearch(&key, s->ch, s->nch, sizeof *s->ch, cmp_charge) : NULL;
}

static int cmp_totals(const void *a, const void *b)
{
    const struct totals *x = a, *y = b;
    int c = strcmp(x->customer, y->customer);
    if (!c)
        c = strcmp(x->currency, y->currency);
    return c ? c : strcmp(x->code, y->code);
}

/* amount rounded to the currency's minor unit, as text. */
static const char *money(struct xd_dec d, const char *currency, char *buf)
{
    int minor = xd_currency_minor(currency);
    if (minor >= 0)
        xd_dec_round(d, minor, &d);
    xd_dec_format(d, buf, XD_DEC_BUFSZ);
    return buf;
}

/* ---- printing ---- */

/* One line of the reconciliation; counts a failed check. */
static void check(struct state *s, int ok, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void check(struct state *s, int ok, const char *fmt, ...)
{
    fprintf(s->out, "  [%s] ", ok ? "ok" : "!!");
    va_list ap;
    va_start(ap, fmt);
    vfprintf(s->out, fmt, ap);
    va_end(ap);
    fputc('\n', s->out);
    if (!ok)
        s->problems++;
}

/* A discrepancy under a failed check, the first SHOW_MAX of them. */
static void detail(struct state *s, size_t *shown, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void detail(struct state *s, size_t *shown, const char *fmt, ...)
{
    if ((*shown)++ >= SHOW_MAX)
        return;
    fputs("         ", s->out);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(s->out, fmt, ap);
    va_end(ap);
    fputc('\n', s->out);
}

static void more(struct state *s, size_t shown)
{
    if (shown > SHOW_MAX)
        fprintf(s->out, "         ... and %zu more\n", shown - SHOW_MAX);
}

/* The ERP's id for an event (refsys.c: posting_type:plant:delivery); 0 when none goes there. */
static int erp_id(const struct xd_config *cfg, const struct xd_wms_event *e, char *out, size_t cap)
{
    const char *kind = e->type == XD_EV_SHIPMENT_CONFIRMED ? "GI"
                       : e->type == XD_EV_SHIPMENT_VOIDED  ? "GI_REVERSAL"
                       : e->type == XD_EV_GOODS_RECEIVED   ? "GR"
                                                           : NULL;
    if (!kind)
        return 0;
    const char *plant = xd_config_xref(cfg, "plant", e->warehouse);
    snprintf(out, cap, "%s:%s:%s", kind, plant ? plant : "?", e->doc);
    return 1;
}

/* ---- the ERP side ---- */

struct erp_ctx {
    struct state *s;
    char **expected; /* sorted */
    size_t nexpected;
    int print; /* second pass: list the unexpected ones */
    size_t unexpected, shown;
    size_t gi, rev, gr;
};

static void on_erp_rec(void *ctx, const struct xd_refsys_rec *r)
{
    struct erp_ctx *c = ctx;
    if (strncmp(r->id, "GI_REVERSAL:", 12) == 0)
        c->rev++;
    else if (strncmp(r->id, "GI:", 3) == 0)
        c->gi++;
    else if (strncmp(r->id, "GR:", 3) == 0)
        c->gr++;
    if (!has(c->expected, c->nexpected, r->id)) {
        c->unexpected++;
        if (c->print)
            detail(c->s, &c->shown, "ERP recorded %s, which the WMS never sent", r->id);
    }
}

/* ---- the billing side ---- */

struct bill_ctx {
    struct state *s;
    int print; /* second pass: list the discrepancies (and add nothing up again) */
    size_t unknown, earlier, mismatched, shown, same_key;
};

static void on_bill_rec(void *ctx, const struct xd_refsys_rec *r)
{
    struct bill_ctx *c = ctx;
    struct state *s = c->s;
    char buf[XD_DEC_BUFSZ];
    const struct charge *k = charge_of(s, r->id);
    if (!k) {
        if (xd_store_has_charge(s->run->hub->store, r->id) == 1) {
            c->earlier++; /* a charge of an earlier run in a kept store */
            return;
        }
        c->unknown++;
        if (c->print)
            detail(s, &c->shown, "billing recorded %s, which the store does not have", r->id);
    }
    c->same_key += r->times - 1;
    cJSON *b = cJSON_Parse(r->body);
    const cJSON *cu = cJSON_GetObjectItemCaseSensitive(b, "customer");
    const cJSON *cy = cJSON_GetObjectItemCaseSensitive(b, "currency");
    const cJSON *am = cJSON_GetObjectItemCaseSensitive(b, "amount");
    struct xd_dec amount;
    if (cJSON_IsString(cu) && cJSON_IsString(cy) && cJSON_IsString(am) &&
        xd_dec_parse(am->valuestring, &amount) == 0) {
        if (!c->print)
            add_to(
                totals_of(&s->btot, &s->nbtot, &s->capbtot, cu->valuestring, cy->valuestring, ""),
                amount, 0);
        /* The same customer, currency and amount as the store's charge. */
        if (k &&
            (strcmp(k->customer, cu->valuestring) != 0 ||
             strcmp(k->currency, cy->valuestring) != 0 || xd_dec_cmp(k->amount, amount) != 0)) {
            c->mismatched++;
            if (c->print)
                detail(s, &c->shown, "%s: billing has %s %s %s, the store %s %s %s", r->id,
                       cu->valuestring, am->valuestring, cy->valuestring, k->customer,
                       money(k->amount, k->currency, buf), k->currency);
        }
    } else {
        c->mismatched++;
        if (c->print)
            detail(s, &c->shown, "%s: billing's record has no customer, currency or amount", r->id);
    }
    cJSON_Delete(b);
}

/* ---- the planned breaks ---- */

/* A break of this run that the demo caused on purpose. */
static int planned_break(const struct xd_recon_break *b, const struct xd_demo_run *run,
                         const struct xd_wms_event *bad)
{
    if (bad && strcmp(b->category, "not_posted") == 0 && b->event_id &&
        strcmp(b->event_id, bad->event_id) == 0)
        return 1;
    return run->dropped && strcmp(b->category, "missing_in_billing") == 0 && b->charge_id &&
           strcmp(b->charge_id, run->dropped) == 0;
}

/*
 * Breaks of this run that were planned; *unplanned (may be NULL) counts the
 * others. With earlier runs in a kept store (no exports), breaks between runs
 * are theirs: each run replays the same day, so its storage days (and their
 * charges) repeat.
 */
static size_t planned_breaks(const struct xd_recon_report *rep, const struct xd_demo_run *run,
                             const struct xd_wms_event *bad, int exports, size_t *unplanned)
{
    size_t n = 0, other = 0;
    for (size_t i = 0; i < rep->n; i++) {
        const struct xd_recon_break *b = &rep->breaks[i];
        int across = strcmp(b->category, "duplicate_charge") == 0 ||
                     strcmp(b->category, "storage_not_charged") == 0;
        if (planned_break(b, run, bad))
            n++;
        else if ((!b->event_id || strstr(b->event_id, run->mark)) && (exports || !across))
            other++;
    }
    if (unplanned)
        *unplanned = other;
    return n;
}

static int planned_exc(const struct xd_demo_run *run, const struct xd_wms_event *bad,
                       const struct exc *x)
{
    if (bad && x->event_id && strcmp(x->event_id, bad->event_id) == 0)
        return 1; /* the dead letter's, and the reconciliation's not_posted */
    return run->dropped && strcmp(x->category, "reconciliation") == 0 && x->reason &&
           strstr(x->reason, run->dropped) != NULL;
}

/* ---- the summary ---- */

int xd_demo_summary(const struct xd_demo_run *run, FILE *out)
{
    struct state s = {.run = run, .out = out};
    struct xd_store *store = run->hub->store;
    size_t nev;
    const struct xd_wms_event *ev = xd_wms_events(run->wms, &nev);
    struct xd_wms_progress wp;
    xd_wms_progress(run->wms, &wp);
    struct xd_refsys_counts erp, bill;
    xd_refsys_counts(run->ref, XD_REFSYS_ERP, &erp);
    xd_refsys_counts(run->ref, XD_REFSYS_BILLING, &bill);

    struct xd_charge_filter cf = {0};
    xd_store_list_charges(store, &cf, on_charge, &s);
    if (s.nch)
        qsort(s.ch, s.nch, sizeof *s.ch, cmp_charge);
    list_deliveries(&s, XD_DLV_DEAD, on_dead);
    list_deliveries(&s, XD_DLV_PENDING, on_pending);
    /* The hub's report first: the breaks it finds open exceptions, listed below. */
    struct xd_recon_report rep = {0};
    struct xd_buf rtext, rerr;
    xd_buf_init(&rtext);
    xd_buf_init(&rerr);
    int exports = 0, rep_rc = xd_demo_reconcile(run, &rep, &exports, &rerr);
    if (rep_rc == 0)
        xd_recon_report_text(&rep, &rtext);
    for (s.last_id = 0;;) {
        int64_t before = s.last_id;
        struct xd_exception_filter xf = {.state = "open", .after_id = before, .limit = 100};
        if (xd_store_list_exceptions(store, &xf, on_exception, &s) < 0 || s.last_id == before)
            break;
    }
    const struct xd_wms_event *bad = NULL;
    size_t by_type[XD_EV__COUNT] = {0}, acked = 0;
    for (size_t i = 0; i < nev; i++) {
        if (ev[i].planned_bad)
            bad = &ev[i];
        if (ev[i].type >= 0 && ev[i].type < XD_EV__COUNT)
            by_type[ev[i].type]++;
        acked += (size_t)ev[i].acked;
    }
    char a[XD_DEC_BUFSZ], b[XD_DEC_BUFSZ];

    fprintf(out, "\n== summary (%.1f s) ==\n\n", run->seconds);

    /* Events. */
    fprintf(out, "events      %zu generated by the WMS, %zu acknowledged by the hub", nev, acked);
    if (wp.rejected)
        fprintf(out, ", %u refused", wp.rejected);
    fputc('\n', out);
    fputs("           ", out);
    for (int t = 0, first = 1; t < XD_EV__COUNT; t++) {
        if (!by_type[t])
            continue;
        fprintf(out, "%s %s %zu", first ? "" : ",", xd_event_type_name((enum xd_event_type)t),
                by_type[t]);
        first = 0;
    }
    fprintf(out,
            "\n            JSON: %u events in %u batches and %u single events to "
            "POST /v1/events\n",
            wp.posted - wp.csv_events - wp.x12_events - wp.x944_events, wp.batches,
            wp.requests - wp.batches);
    fprintf(out,
            "            sent again: %u (events, a batch, the 945 under new control "
            "numbers); the hub answered %u duplicates\n",
            wp.resent, wp.duplicates);

    /* The files dropped into the inbox. */
    fprintf(out,
            "\nfiles       inbox: %u file%s processed (CSV %u receipt%s, 945 %u shipment%s, "
            "944 %u receipt%s, 945 re-sent: %s)",
            wp.files_processed, wp.files_processed == 1 ? "" : "s", wp.csv_events,
            wp.csv_events == 1 ? "" : "s", wp.x12_events, wp.x12_events == 1 ? "" : "s",
            wp.x944_events, wp.x944_events == 1 ? "" : "s",
            wp.files_resent ? "duplicates" : "not processed");
    if (wp.files_rejected)
        fprintf(out, ", %u REJECTED", wp.files_rejected);
    if (wp.files > wp.files_processed + wp.files_rejected)
        fprintf(out, ", %u still in the inbox", wp.files - wp.files_processed - wp.files_rejected);
    fprintf(out, ", 997s written back: %u (%s)\n", wp.acks,
            wp.acks && wp.acks == wp.acks_accepted ? "AK9*A"
            : wp.acks                              ? "not all AK9*A"
                                                   : "none");
    if (wp.x12_ack[0])
        fprintf(out, "            the 945's 997: %s\n", wp.x12_ack);

    /* The ERP. */
    struct erp_ctx ec = {.s = &s};
    ec.expected = calloc(nev ? nev : 1, sizeof *ec.expected);
    size_t expected_n = 0, missing = 0, bad_seen = 0, shown = 0;
    if (!ec.expected)
        s.oom = 1;
    for (size_t i = 0; ec.expected && i < nev; i++) {
        char id[128];
        if (!ev[i].acked || !erp_id(run->cfg, &ev[i], id, sizeof id))
            continue;
        if (!(ec.expected[ec.nexpected] = strdup(id))) {
            s.oom = 1;
            break;
        }
        ec.nexpected++;
        unsigned seen = xd_refsys_seen(run->ref, XD_REFSYS_ERP, id);
        if (ev[i].planned_bad) {
            bad_seen = seen;
            continue;
        }
        expected_n++;
        if (!seen)
            missing++;
    }
    if (ec.nexpected)
        qsort(ec.expected, ec.nexpected, sizeof *ec.expected, cmp_str);
    xd_refsys_each(run->ref, XD_REFSYS_ERP, on_erp_rec, &ec); /* counts by posting type */
    fprintf(out,
            "\nERP         %llu postings recorded: %zu goods issues, %zu reversals (voids), "
            "%zu goods receipts\n            %llu requests: %llu answered 503 during the "
            "outage, %llu refused (400), %llu repeats of a key\n",
            (unsigned long long)erp.recorded, ec.gi, ec.rev, ec.gr,
            (unsigned long long)erp.requests, (unsigned long long)erp.outage,
            (unsigned long long)erp.refused, (unsigned long long)erp.same_key);

    /* Billing. */
    fprintf(out, "billing     %llu charges recorded from %llu requests (%llu repeats of a key)\n",
            (unsigned long long)bill.recorded, (unsigned long long)bill.requests,
            (unsigned long long)bill.same_key);

    /* Charges per customer and currency. */
    /* Sorted: customer, currency, then the customer's total ("" code) before its codes. */
    if (s.ntot)
        qsort(s.tot, s.ntot, sizeof *s.tot, cmp_totals);
    fprintf(out, "\ncharges     %-20s %-8s %7s %9s %14s\n", "customer / code", "currency",
            "charges", "reversals", "total");
    for (size_t i = 0; i < s.ntot; i++) {
        const struct totals *t = &s.tot[i];
        if (!t->code[0])
            fprintf(out, "            %-20s %-8s %7zu %9zu %14s%s\n", t->customer, t->currency,
                    t->n, t->reversals, money(t->sum, t->currency, a),
                    t->overflow ? " (overflow!)" : "");
        else
            fprintf(out, "              %-18s %-8s %7zu %9zu %14s\n", t->code, "", t->n,
                    t->reversals, money(t->sum, t->currency, a));
    }
    for (size_t i = 0; i < run->cfg->nrate_cards; i++) {
        const struct xd_rate_card *rc = &run->cfg->rate_cards[i];
        struct xd_dec min, sum = xd_dec_int(0), gap;
        if (!rc->minimum_monthly || xd_dec_parse(rc->minimum_monthly, &min) < 0)
            continue;
        for (size_t j = 0; j < s.ntot; j++)
            if (!s.tot[j].code[0] && strcmp(s.tot[j].customer, rc->customer) == 0 &&
                strcmp(s.tot[j].currency, rc->currency) == 0)
                sum = s.tot[j].sum;
        if (xd_dec_sub(min, sum, &gap) < 0 || xd_dec_sign(gap) <= 0) {
            fprintf(out, "minimum     %s: minimum_monthly %s %s is met by this run\n", rc->customer,
                    rc->minimum_monthly, rc->currency);
            continue;
        }
        fprintf(out,
                "minimum     %s: minimum_monthly %s %s; closing %s now would add a "
                "MINIMUM_TOPUP of %s\n            (`crossdock billing close --period %s`; "
                "the demo leaves the period open)\n",
                rc->customer, rc->minimum_monthly, rc->currency, run->period,
                money(gap, rc->currency, b), run->period);
    }

    /* Dead letters and exceptions. */
    fprintf(out, "\ndead letters %zu\n", s.ndead);
    for (size_t i = 0; i < s.ndead; i++) {
        const struct dead *d = &s.dead[i];
        fprintf(out, "            #%lld %s (route %s, step %u) event %s%s\n              %.200s\n",
                (long long)d->id, d->target, d->route, d->step, d->event_id,
                bad && strcmp(d->event_id, bad->event_id) == 0 ? " (planned)" : "", d->error);
    }
    fprintf(out, "exceptions  %zu open\n", s.nexc);
    for (size_t i = 0; i < s.nexc; i++) {
        const struct exc *x = &s.exc[i];
        fprintf(out, "            #%lld %s event %s%s\n              %.200s\n", (long long)x->id,
                x->category, x->event_id, planned_exc(run, bad, x) ? " (planned)" : "", x->reason);
    }

    /* The reconciliation. */
    fprintf(out, "\nreconciliation\n");
    size_t unacked = nev - acked;
    check(&s, unacked == 0 && wp.rejected == 0,
          "WMS -> hub: %zu of %zu events acknowledged, %u refused", acked, nev, wp.rejected);
    shown = 0;
    for (size_t i = 0; unacked && i < nev; i++)
        if (!ev[i].acked)
            detail(&s, &shown, "%s was never acknowledged", ev[i].event_id);
    more(&s, shown);

    shown = 0;
    check(&s, missing == 0,
          "ERP: %zu of %zu shipments, voids and receipts posted (the planned "
          "bad-SKU shipment aside)",
          expected_n - missing, expected_n);
    for (size_t i = 0; missing && i < nev; i++) {
        char id[128];
        if (ev[i].acked && !ev[i].planned_bad && erp_id(run->cfg, &ev[i], id, sizeof id) &&
            !xd_refsys_seen(run->ref, XD_REFSYS_ERP, id))
            detail(&s, &shown, "%s (event %s) never reached the ERP", id, ev[i].event_id);
    }
    more(&s, shown);
    check(&s, bad && bad->acked && bad_seen == 0 && erp.refused > 0,
          "ERP: the planned bad-SKU shipment %s was refused and not posted",
          bad ? bad->doc : "(none generated)");
    size_t unexpected = ec.unexpected;
    ec.unexpected = 0;
    ec.print = 1;
    check(&s, unexpected == 0 && erp.same_doc == 0,
          "ERP: nothing unexpected (%zu), no document posted twice under different keys (%llu); "
          "%llu repeats with the same Idempotency-Key",
          unexpected, (unsigned long long)erp.same_doc, (unsigned long long)erp.same_key);
    if (unexpected)
        xd_refsys_each(run->ref, XD_REFSYS_ERP, on_erp_rec, &ec);
    more(&s, ec.shown);

    size_t bmissing = 0;
    const struct charge *lost = run->dropped ? charge_of(&s, run->dropped) : NULL;
    int lost_ok = !run->dropped || (lost && !xd_refsys_seen(run->ref, XD_REFSYS_BILLING, lost->id));
    for (size_t i = 0; i < s.nch; i++)
        bmissing += &s.ch[i] != lost && !xd_refsys_seen(run->ref, XD_REFSYS_BILLING, s.ch[i].id);
    check(&s, bmissing == 0 && bill.same_doc == 0 && lost_ok,
          "billing: %zu of %zu charges in the store recorded once (%llu under a second key); "
          "%s",
          s.nch - bmissing - (lost != NULL), s.nch - (lost != NULL),
          (unsigned long long)bill.same_doc,
          lost ? "the planned lost charge answered 200 and not recorded" : "no planned loss");
    shown = 0;
    for (size_t i = 0; bmissing && i < s.nch; i++)
        if (&s.ch[i] != lost && !xd_refsys_seen(run->ref, XD_REFSYS_BILLING, s.ch[i].id))
            detail(&s, &shown, "charge %s (%s %s) never reached billing", s.ch[i].id,
                   s.ch[i].customer, s.ch[i].code);
    more(&s, shown);
    struct bill_ctx bc = {.s = &s};
    xd_refsys_each(run->ref, XD_REFSYS_BILLING, on_bill_rec, &bc);
    check(&s, bc.unknown == 0 && bc.mismatched == 0,
          "billing: nothing the store lacks (%zu), customer, currency and amount equal (%zu "
          "differ); %zu repeats with the same Idempotency-Key",
          bc.unknown, bc.mismatched, bc.same_key);
    if (bc.unknown || bc.mismatched) {
        bc.print = 1;
        xd_refsys_each(run->ref, XD_REFSYS_BILLING, on_bill_rec, &bc);
        more(&s, bc.shown);
    }

    /* Totals: each customer and currency, the store's against billing's. */
    int totals_ok = 1;
    struct xd_buf line;
    xd_buf_init(&line);
    for (size_t i = 0; i < s.ntot; i++) {
        const struct totals *t = &s.tot[i];
        if (t->code[0])
            continue;
        struct xd_dec other = xd_dec_int(0);
        for (size_t j = 0; j < s.nbtot; j++)
            if (strcmp(s.btot[j].customer, t->customer) == 0 &&
                strcmp(s.btot[j].currency, t->currency) == 0)
                other = s.btot[j].sum;
        if (lost && strcmp(lost->customer, t->customer) == 0 &&
            strcmp(lost->currency, t->currency) == 0)
            xd_dec_add(other, lost->amount, &other); /* billing + what it lost on purpose */
        int eq = xd_dec_cmp(t->sum, other) == 0 && !t->overflow;
        totals_ok &= eq;
        xd_buf_printf(&line, "%s%s %s %s %s %s", line.len ? ", " : "", t->customer, t->currency,
                      money(t->sum, t->currency, a), eq ? "=" : "!=", money(other, t->currency, b));
    }
    for (size_t j = 0; j < s.nbtot; j++) { /* billing totals the store has none of */
        int found = 0;
        for (size_t i = 0; i < s.ntot; i++)
            found |= !s.tot[i].code[0] && strcmp(s.tot[i].customer, s.btot[j].customer) == 0 &&
                     strcmp(s.tot[i].currency, s.btot[j].currency) == 0;
        if (!found) {
            totals_ok = 0;
            xd_buf_printf(&line, "%s%s %s 0 != %s", line.len ? ", " : "", s.btot[j].customer,
                          s.btot[j].currency, money(s.btot[j].sum, s.btot[j].currency, a));
        }
    }
    check(&s, totals_ok, "totals, store = billing%s: %s",
          lost ? " (+ the charge it lost)" : "", line.len ? line.data : "(no charges)");
    xd_buf_dispose(&line);

    size_t unplanned_dead = 0, planned_dead = 0;
    for (size_t i = 0; i < s.ndead; i++) {
        if (bad && strcmp(s.dead[i].event_id, bad->event_id) == 0 &&
            strcmp(s.dead[i].target, "erp") == 0)
            planned_dead++;
        else
            unplanned_dead++;
    }
    check(&s, s.pending == 0 && !run->timed_out && planned_dead == 1 && unplanned_dead == 0,
          "deliveries: %zu pending, %zu dead letters (%zu planned)", s.pending, s.ndead,
          planned_dead);
    size_t unplanned = 0;
    size_t planned = rep_rc == 0 ? planned_breaks(&rep, run, bad, exports, &unplanned) : 0;
    size_t nplanned = 0;
    for (size_t i = 0; i < s.nexc; i++)
        nplanned += planned_exc(run, bad, &s.exc[i]);
    check(&s, s.nexc == 1 + (exports ? planned : 0) && nplanned == s.nexc,
          "exceptions: %zu open (%zu planned: the dead letter's, and one per planned break)",
          s.nexc, nplanned);

    /* The hub's own report, against the reference systems' exports. */
    check(&s, rep_rc == 0 && unplanned == 0 && planned == (run->dropped && exports ? 2u : 1u),
          "the hub's reconciliation report%s: %zu break%s of this run, %zu planned (the bad-SKU "
          "shipment not posted%s)",
          exports ? " against the ERP's and billing's exports"
                  : " (a kept store with earlier runs: no exports, no exceptions)",
          planned + unplanned, planned + unplanned == 1 ? "" : "s", planned,
          run->dropped && exports ? ", the charge billing lost" : "");
    if (rep_rc < 0)
        fprintf(out, "         %s\n", xd_buf_str(&rerr));
    if (s.oom)
        check(&s, 0, "the summary ran out of memory: the counts above may be short");

    if (rep_rc == 0) {
        fprintf(out, "\n== crossdock reconcile (the hub's report; docs/reconciliation.md) ==\n\n");
        fputs(xd_buf_str(&rtext), out);
    }

    int clean = s.problems == 0;
    if (clean)
        fprintf(out, "\nresult: CLEAN: every event reached its targets and the books agree; the "
                     "dead letter, the\n        breaks and their exceptions are the planned ones "
                     "(the bad SKU, the lost charge)\n");
    else
        fprintf(out, "\nresult: NOT CLEAN: %d check%s failed (marked [!!] above)\n", s.problems,
                s.problems == 1 ? "" : "s");
    fflush(out);

    for (size_t i = 0; i < ec.nexpected; i++)
        free(ec.expected[i]);
    free(ec.expected);
    for (size_t i = 0; i < s.nch; i++)
        free(s.ch[i].id), free(s.ch[i].customer), free(s.ch[i].currency), free(s.ch[i].code);
    free(s.ch);
    free(s.tot);
    free(s.btot);
    for (size_t i = 0; i < s.ndead; i++)
        free(s.dead[i].event_id), free(s.dead[i].target), free(s.dead[i].route),
            free(s.dead[i].error);
    free(s.dead);
    for (size_t i = 0; i < s.nexc; i++)
        free(s.exc[i].category), free(s.exc[i].event_id), free(s.exc[i].reason);
    free(s.exc);
    xd_recon_report_dispose(&rep);
    xd_buf_dispose(&rtext);
    xd_buf_dispose(&rerr);
    return clean;
}
