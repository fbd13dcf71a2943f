/*
 * The ERP's and billing's exports (export.h): read with the CSV table
 * reader, then compared with the ledger. Quantities and amounts are exact
 * decimals; a number with an exponent or a thousands separator is refused
 * with its row, not guessed at.
 */
#include "reconcile/export.h"
#include "reconcile/recon_int.h"
#include "core/buf.h"
#include "core/config.h"
#include "core/err.h"
#include "formats/csv_table.h"
#include "ingest/event.h"
#include "store/store.h"

#include <stdlib.h>
#include <string.h>

/* A column the export must have: its index, or an error naming the columns it has. */
static int need_col(const struct xd_csv_table *t, const char *col, const char *key,
                    const char *name, struct xd_buf *err)
{
    int i = xd_csv_table_col(t, col);
    if (i >= 0)
        return i;
    if (err) {
        xd_buf_printf(err, "%s: no column '%s' (reconcile.%s; columns:", name, col ? col : "", key);
        for (size_t k = 0; k < t->ncols; k++)
            xd_buf_printf(err, "%s %s", k ? "," : "", t->head[k]);
        xd_buf_putc(err, ')');
    }
    return XD_EINVAL;
}

/* A decimal cell: "12", "-3.5"; a leading '+' is allowed. */
static int cell_dec(const char *s, struct xd_dec *out)
{
    if (*s == '+')
        s++;
    return xd_dec_parse(s, out);
}

static int bad_number(struct xd_buf *err, const char *name, size_t row, const char *col,
                      const char *v)
{
    if (err)
        xd_buf_printf(err, "%s: row %zu: %s: '%.40s' is not a number", name, row, col, v);
    return XD_EINVAL;
}

static int bad_empty(struct xd_buf *err, const char *name, size_t row, const char *col)
{
    if (err)
        xd_buf_printf(err, "%s: row %zu: %s: empty", name, row, col);
    return XD_EINVAL;
}

/* One row of the ERP's export, before rows are summed per document. */
struct erp_row {
    char *type, *document, *reference, *sku;
    struct xd_dec qty;
    size_t row;
};

/* Rows by document, type, SKU (none first), then row. */
static int row_cmp(const void *a, const void *b)
{
    const struct erp_row *x = a, *y = b;
    int r = strcmp(x->document, y->document);
    if (!r)
        r = strcmp(x->type ? x->type : "", y->type ? y->type : "");
    if (!r)
        r = strcmp(x->sku ? x->sku : "", y->sku ? y->sku : "");
    return r ? r : (x->row > y->row) - (x->row < y->row);
}

/* Row r belongs to entry d (same document and type). */
static int same_doc(const struct xd_erp_doc *d, const struct erp_row *r)
{
    return strcmp(d->document, r->document) == 0 &&
           strcmp(d->type ? d->type : "", r->type ? r->type : "") == 0;
}

/* The rows summed into one entry per document (and per SKU within it); rows' strings move. */
static int sum_rows(struct erp_row *rows, size_t n, struct xd_erp_export *out)
{
    if (n)
        qsort(rows, n, sizeof *rows, row_cmp);
    for (size_t i = 0; i < n; i++) {
        struct erp_row *r = &rows[i];
        struct xd_erp_doc *d = out->n ? &out->docs[out->n - 1] : NULL;
        if (!d || !same_doc(d, r)) {
            d = &out->docs[out->n++];
            d->document = r->document;
            d->type = r->type;
            d->reference = r->reference;
            d->qty = r->qty;
            d->row = r->row;
            r->document = r->type = r->reference = NULL;
        } else {
            xd_dec_add(d->qty, r->qty, &d->qty);
            if (r->row < d->row)
                d->row = r->row;
            if (!d->reference) {
                d->reference = r->reference;
                r->reference = NULL;
            }
        }
        if (!r->sku) {
            d->unsku = 1;
            continue;
        }
        if (d->nskus && strcmp(d->skus[d->nskus - 1].sku, r->sku) == 0) {
            xd_dec_add(d->skus[d->nskus - 1].qty, r->qty, &d->skus[d->nskus - 1].qty);
            continue;
        }
        struct xd_erp_sku *v = realloc(d->skus, (d->nskus + 1) * sizeof *v);
        if (!v)
            return XD_ENOMEM;
        d->skus = v;
        v[d->nskus].sku = r->sku;
        v[d->nskus++].qty = r->qty;
        r->sku = NULL;
    }
    return 0;
}

/* The export as a table; a CSV error is reported as "NAME: what, where". */
static int read_table(const char *buf, size_t len, const char *name, struct xd_csv_table *t,
                      struct xd_buf *err)
{
    struct xd_buf why;
    xd_buf_init(&why);
    int rc = xd_csv_table_read(buf, len, t, &why);
    if (rc < 0 && err)
        xd_buf_printf(err, "%s: %s", name, xd_buf_str(&why));
    xd_buf_dispose(&why);
    if (rc < 0)
        return rc == XD_ENOMEM ? rc : XD_EINVAL;
    return 0;
}

int xd_erp_export_read(const struct xd_export_columns *cols, const char *buf, size_t len,
                       const char *name, struct xd_erp_export *out, struct xd_buf *err)
{
    memset(out, 0, sizeof *out);
    struct xd_csv_table t;
    int rc = read_table(buf, len, name, &t, err);
    if (rc < 0)
        return rc;
    struct erp_row *rows = NULL;
    size_t n = 0;
    int cdoc = need_col(&t, cols->document, "erp_export.document", name, err);
    int cqty = cdoc < 0 ? cdoc : need_col(&t, cols->quantity, "erp_export.quantity", name, err);
    int ctype = xd_csv_table_col(&t, cols->type), cref = xd_csv_table_col(&t, cols->reference);
    int csku = xd_csv_table_col(&t, cols->sku);
    if (cdoc < 0 || cqty < 0) {
        rc = XD_EINVAL;
        goto out;
    }
    rows = calloc(t.nrows + 1, sizeof *rows);
    out->docs = calloc(t.nrows + 1, sizeof *out->docs);
    if (!rows || !out->docs) {
        rc = XD_ENOMEM;
        goto out;
    }
    out->rows = t.nrows;
    for (size_t i = 0; i < t.nrows; i++) {
        size_t row = i + 2;
        const char *doc = xd_csv_table_cell(&t, i, cdoc), *q = xd_csv_table_cell(&t, i, cqty);
        const char *ty = xd_csv_table_cell(&t, i, ctype), *ref = xd_csv_table_cell(&t, i, cref);
        const char *sku = xd_csv_table_cell(&t, i, csku);
        struct xd_dec qty;
        if (!*doc) {
            rc = bad_empty(err, name, row, cols->document);
            goto out;
        }
        if (cell_dec(q, &qty) < 0) {
            rc = bad_number(err, name, row, cols->quantity, q);
            goto out;
        }
        if (*ty && xd_obj_type_parse(ty) < 0) {
            if (err)
                xd_buf_printf(err,
                              "%s: row %zu: %s: '%.40s' is not shipment, receipt or "
                              "adjustment",
                              name, row, cols->type, ty);
            rc = XD_EINVAL;
            goto out;
        }
        struct erp_row *r = &rows[n++];
        r->document = strdup(doc);
        r->type = *ty ? strdup(ty) : NULL;
        r->reference = *ref ? strdup(ref) : NULL;
        r->sku = *sku ? strdup(sku) : NULL;
        r->qty = qty;
        r->row = row;
        if (!r->document || (*ty && !r->type) || (*ref && !r->reference) || (*sku && !r->sku)) {
            rc = XD_ENOMEM;
            goto out;
        }
    }
    rc = sum_rows(rows, n, out);
out:
    for (size_t i = 0; rows && i < n; i++) {
        free(rows[i].document);
        free(rows[i].type);
        free(rows[i].reference);
        free(rows[i].sku);
    }
    free(rows);
    xd_csv_table_dispose(&t);
    if (rc < 0)
        xd_erp_export_dispose(out);
    return rc;
}

void xd_erp_export_dispose(struct xd_erp_export *x)
{
    for (size_t i = 0; x->docs && i < x->n; i++) {
        struct xd_erp_doc *d = &x->docs[i];
        free(d->document);
        free(d->type);
        free(d->reference);
        for (size_t k = 0; k < d->nskus; k++)
            free(d->skus[k].sku);
        free(d->skus);
    }
    free(x->docs);
    memset(x, 0, sizeof *x);
}

static int bill_cmp(const void *a, const void *b)
{
    const struct xd_bill_row *x = a, *y = b;
    int r = strcmp(x->key, y->key);
    if (r)
        return r;
    return strcmp(x->currency ? x->currency : "", y->currency ? y->currency : "");
}

int xd_billing_export_read(const struct xd_export_columns *cols, const char *buf, size_t len,
                           const char *name, struct xd_billing_export *out, struct xd_buf *err)
{
    memset(out, 0, sizeof *out);
    struct xd_csv_table t;
    int rc = read_table(buf, len, name, &t, err);
    if (rc < 0)
        return rc;
    int ckey = xd_csv_table_col(&t, cols->charge_id);
    const char *keyname = cols->charge_id;
    if (ckey < 0) {
        ckey = xd_csv_table_col(&t, cols->reference);
        keyname = cols->reference;
        out->by_reference = 1;
    }
    if (ckey < 0) {
        if (err)
            xd_buf_printf(err, "%s: no column '%s' or '%s' (reconcile.billing_export)", name,
                          cols->charge_id ? cols->charge_id : "",
                          cols->reference ? cols->reference : "");
        rc = XD_EINVAL;
        goto out;
    }
    int camt = need_col(&t, cols->amount, "billing_export.amount", name, err);
    int ccur = xd_csv_table_col(&t, cols->currency);
    if (camt < 0) {
        rc = XD_EINVAL;
        goto out;
    }
    out->v = calloc(t.nrows + 1, sizeof *out->v);
    if (!out->v) {
        rc = XD_ENOMEM;
        goto out;
    }
    out->rows = t.nrows;
    for (size_t i = 0; i < t.nrows; i++) {
        size_t row = i + 2;
        const char *key = xd_csv_table_cell(&t, i, ckey), *a = xd_csv_table_cell(&t, i, camt);
        const char *cur = xd_csv_table_cell(&t, i, ccur);
        struct xd_dec amount;
        if (!*key) {
            rc = bad_empty(err, name, row, keyname);
            goto out;
        }
        if (cell_dec(a, &amount) < 0) {
            rc = bad_number(err, name, row, cols->amount, a);
            goto out;
        }
        struct xd_bill_row *b = &out->v[out->n++];
        b->key = strdup(key);
        b->currency = *cur ? strdup(cur) : NULL;
        b->amount = amount;
        b->row = row;
        b->times = 1;
        if (!b->key || (*cur && !b->currency)) {
            rc = XD_ENOMEM;
            goto out;
        }
    }
    if (out->n)
        qsort(out->v, out->n, sizeof *out->v, bill_cmp);
    size_t w = 0;
    for (size_t i = 0; i < out->n; i++) {
        struct xd_bill_row *b = &out->v[i];
        if (w && strcmp(out->v[w - 1].key, b->key) == 0 &&
            (out->by_reference ? bill_cmp(&out->v[w - 1], b) == 0 : 1)) {
            struct xd_bill_row *k = &out->v[w - 1];
            xd_dec_add(k->amount, b->amount, &k->amount);
            k->times++;
            if (b->row < k->row)
                k->row = b->row;
            free(b->key);
            free(b->currency);
            continue;
        }
        out->v[w++] = *b;
    }
    out->n = w;
out:
    xd_csv_table_dispose(&t);
    if (rc < 0)
        xd_billing_export_dispose(out);
    return rc;
}

void xd_billing_export_dispose(struct xd_billing_export *x)
{
    for (size_t i = 0; x->v && i < x->n; i++) {
        free(x->v[i].key);
        free(x->v[i].currency);
    }
    free(x->v);
    memset(x, 0, sizeof *x);
}

/* ---- the checks ---- */

/* The ERP posting of e that was accepted last, or NULL. */
static const struct xd_lg_post *accepted(const struct xd_lg_event *e)
{
    const struct xd_lg_post *p = NULL;
    for (size_t k = 0; k < e->nposts; k++)
        if (e->posts[k].state == XD_DLV_DONE && (!p || e->posts[k].updated_ms > p->updated_ms))
            p = &e->posts[k];
    return p;
}

static const struct xd_lg_object *find_doc(const struct xd_recon_ledger *lg,
                                           const struct xd_erp_doc *d)
{
    if (d->type)
        return xd_ledger_object(lg, xd_obj_type_parse(d->type), d->document);
    static const int order[] = {XD_OBJ_SHIPMENT, XD_OBJ_RECEIPT, XD_OBJ_ADJUSTMENT};
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) {
        const struct xd_lg_object *o = xd_ledger_object(lg, order[i], d->document);
        if (o)
            return o;
    }
    return NULL;
}

/* Quantities SKU by SKU: one break per SKU that differs (or is on one side only). */
static void sku_mismatches(struct xd_recon_ctx *c, const struct xd_lg_object *o,
                           const struct xd_lg_event *e, const struct xd_erp_doc *d, int64_t since)
{
    size_t i = 0, j = 0;
    while ((i < e->nskus || j < d->nskus) && c->rc == 0) {
        int cmp = i == e->nskus ? 1 : j == d->nskus ? -1 : strcmp(e->skus[i].sku, d->skus[j].sku);
        const char *sku = cmp <= 0 ? e->skus[i].sku : d->skus[j].sku;
        struct xd_dec want = cmp <= 0 ? e->skus[i].qty : xd_dec_int(0);
        struct xd_dec have = cmp >= 0 ? d->skus[j].qty : xd_dec_int(0), diff;
        i += cmp <= 0;
        j += cmp >= 0;
        if (!xd_recon_differs(have, want, c->qtol, &diff))
            continue;
        struct xd_recon_break *b = xd_recon_add(c, "quantity_mismatch", "wms,erp_export", o->type,
                                                o->key, "erp_export/quantity_mismatch:%s:%s:%s",
                                                xd_obj_type_name(o->type), o->key, sku);
        if (!b)
            return;
        xd_recon_set_obj(b, o);
        b->event_id = strdup(e->event_id);
        b->expected = xd_recon_dec(want);
        b->actual = xd_recon_dec(have);
        b->difference = xd_recon_dec(diff);
        b->age_ms = xd_recon_age(c, since);
        xd_recon_detail(b, "SKU %s: the WMS %s %s, the ERP export (row %zu%s%s) says %s", sku,
                        e->type == XD_EV_SHIPMENT_CONFIRMED ? "shipped" : "sent", b->expected, d->row,
                        d->reference ? ", reference " : "", d->reference ? d->reference : "",
                        b->actual);
    }
}

void xd_erp_export_check(struct xd_recon_ctx *c, const struct xd_erp_export *x)
{
    const struct xd_recon_ledger *lg = c->lg;
    unsigned char *seen = calloc(lg->nobjs + 1, 1);
    if (!seen) {
        c->rc = XD_ENOMEM;
        return;
    }
    for (size_t i = 0; i < x->n && c->rc == 0; i++) {
        const struct xd_erp_doc *d = &x->docs[i];
        const struct xd_lg_object *o = find_doc(lg, d);
        if (!o) {
            struct xd_recon_break *b = xd_recon_add(
                c, "unknown_in_erp", "erp_export", d->type ? xd_obj_type_parse(d->type) : 0,
                d->document, "erp_export/unknown_in_erp:%s", d->document);
            if (!b)
                break;
            b->expected = strdup("0");
            b->actual = xd_recon_dec(d->qty);
            b->difference = xd_recon_dec(d->qty);
            xd_recon_detail(b, "the ERP export lists %s (row %zu%s%s) but the WMS never sent it",
                            d->document, d->row, d->reference ? ", reference " : "",
                            d->reference ? d->reference : "");
            continue;
        }
        seen[o - lg->objs] = 1;
        if (o->current == SIZE_MAX || o->voided)
            continue; /* a voided shipment's ERP document is reversed there: not compared */
        const struct xd_lg_event *e = &lg->events[o->current];
        if (!xd_recon_in_window(c, e->day) || !e->has_qty)
            continue;
        const struct xd_lg_post *p = accepted(e);
        int64_t since = p ? p->updated_ms : e->received_ms;
        if (d->nskus && !d->unsku && e->nskus) {
            sku_mismatches(c, o, e, d, since);
            continue;
        }
        struct xd_dec diff;
        if (!xd_recon_differs(d->qty, e->qty, c->qtol, &diff))
            continue;
        struct xd_recon_break *b =
            xd_recon_add(c, "quantity_mismatch", "wms,erp_export", o->type, o->key,
                         "erp_export/quantity_mismatch:%s:%s", xd_obj_type_name(o->type), o->key);
        if (!b)
            break;
        xd_recon_set_obj(b, o);
        b->event_id = strdup(e->event_id);
        b->expected = xd_recon_dec(e->qty);
        b->actual = xd_recon_dec(d->qty);
        b->difference = xd_recon_dec(diff);
        b->age_ms = xd_recon_age(c, since);
        xd_recon_detail(b, "the WMS %s %s, the ERP export (row %zu%s%s) says %s",
                        e->type == XD_EV_SHIPMENT_CONFIRMED ? "shipped" : "sent", b->expected, d->row,
                        d->reference ? ", reference " : "", d->reference ? d->reference : "",
                        b->actual);
    }
    /* What the ERP accepted (2xx) and its export does not list. */
    for (size_t i = 0; i < lg->nobjs && c->rc == 0; i++) {
        const struct xd_lg_object *o = &lg->objs[i];
        if (seen[i] || o->voided || o->current == SIZE_MAX || o->type == XD_OBJ_STORAGE_DAY)
            continue;
        const struct xd_lg_event *e = &lg->events[o->current];
        const struct xd_lg_post *p = accepted(e);
        if (!p || !xd_recon_in_window(c, e->day) || !xd_recon_overdue(c, p->updated_ms))
            continue;
        struct xd_recon_break *b =
            xd_recon_add(c, "missing_in_erp", "erp,erp_export", o->type, o->key,
                         "erp_export/missing_in_erp:%s:%s", xd_obj_type_name(o->type), o->key);
        if (!b)
            break;
        xd_recon_set_obj(b, o);
        b->event_id = strdup(e->event_id);
        if (e->has_qty)
            xd_recon_set_none(b, e->qty);
        b->age_ms = xd_recon_age(c, p->updated_ms);
        xd_recon_detail(b, "%s accepted it (2xx%s%s) but the ERP export does not list it",
                        p->target, p->reference ? ", reference " : "",
                        p->reference ? p->reference : "");
    }
    free(seen);
}

static const struct xd_bill_row *bill_find(const struct xd_billing_export *x, const char *key)
{
    size_t lo = 0, hi = x->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(x->v[mid].key, key) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < x->n && strcmp(x->v[lo].key, key) == 0 ? &x->v[lo] : NULL;
}

static const struct xd_lg_object *charge_obj(const struct xd_recon_ledger *lg,
                                             const struct xd_lg_charge *ch)
{
    return ch->event == SIZE_MAX ? NULL : &lg->objs[lg->events[ch->event].obj];
}

/* Billing export keyed by charge id. */
static void by_charge(struct xd_recon_ctx *c, const struct xd_billing_export *x)
{
    const struct xd_recon_ledger *lg = c->lg;
    for (size_t i = 0; i < x->n && c->rc == 0; i++) {
        const struct xd_bill_row *row = &x->v[i];
        const struct xd_lg_charge *ch = xd_ledger_charge(lg, row->key);
        const struct xd_lg_object *o = ch ? charge_obj(lg, ch) : NULL;
        if (ch && !xd_recon_in_window(c, ch->day))
            continue;
        if (row->times > 1) {
            struct xd_recon_break *b =
                xd_recon_add(c, "duplicate_charge", "billing_export", o ? o->type : XD_OBJ_CHARGE,
                             o ? o->key : row->key, "billing_export/duplicate_charge:%s", row->key);
            if (!b)
                break;
            xd_recon_set_obj(b, o);
            b->charge_id = strdup(row->key);
            b->currency = row->currency ? strdup(row->currency) : NULL;
            if (ch) {
                struct xd_dec d;
                b->expected = xd_recon_dec(ch->amount);
                b->actual = xd_recon_dec(row->amount);
                xd_dec_sub(row->amount, ch->amount, &d);
                b->difference = xd_recon_dec(d);
            }
            xd_recon_detail(b, "the billing export lists charge %s %zu times (first at row %zu)",
                            row->key, row->times, row->row);
        }
        if (!ch) {
            struct xd_recon_break *b =
                xd_recon_add(c, "unknown_in_billing", "billing_export", XD_OBJ_CHARGE, row->key,
                             "billing_export/unknown_in_billing:%s", row->key);
            if (!b)
                break;
            b->charge_id = strdup(row->key);
            b->expected = strdup("0");
            b->actual = xd_recon_dec(row->amount);
            b->difference = xd_recon_dec(row->amount);
            b->currency = row->currency ? strdup(row->currency) : NULL;
            xd_recon_detail(b, "billing has charge %s (row %zu) that the hub never produced",
                            row->key, row->row);
            continue;
        }
        struct xd_dec one = row->amount, diff;
        if (row->times > 1)
            continue; /* the duplicate says it */
        int cur_differs = row->currency && ch->currency && strcmp(row->currency, ch->currency);
        if (!cur_differs && !xd_recon_differs(one, ch->amount, c->atol, &diff))
            continue;
        if (cur_differs)
            xd_dec_sub(one, ch->amount, &diff);
        struct xd_recon_break *b = xd_recon_add(c, "amount_mismatch", "billing,billing_export",
                                                o ? o->type : XD_OBJ_CHARGE, o ? o->key : row->key,
                                                "billing_export/amount_mismatch:%s", row->key);
        if (!b)
            break;
        xd_recon_set_obj(b, o);
        b->event_id = strdup(ch->event_id);
        b->charge_id = strdup(ch->charge_id);
        b->expected = xd_recon_dec(ch->amount);
        b->actual = xd_recon_dec(one);
        b->difference = xd_recon_dec(diff);
        b->currency = ch->currency ? strdup(ch->currency) : NULL;
        b->age_ms = xd_recon_age(c, ch->bill_ms ? ch->bill_ms : ch->created_ms);
        xd_recon_detail(b, "%s %s: the hub charged %s %s, the billing export (row %zu) says %s %s",
                        ch->code, ch->charge_id, b->expected, ch->currency ? ch->currency : "",
                        row->row, b->actual,
                        row->currency ? row->currency : (ch->currency ? ch->currency : ""));
    }
    for (size_t i = 0; i < lg->ncharges && c->rc == 0; i++) {
        const struct xd_lg_charge *ch = &lg->charges[i];
        if (ch->bill_state != XD_DLV_DONE || !xd_recon_in_window(c, ch->day) ||
            !xd_recon_overdue(c, ch->bill_ms) || bill_find(x, ch->charge_id))
            continue;
        const struct xd_lg_object *o = charge_obj(lg, ch);
        struct xd_recon_break *b = xd_recon_add(
            c, "missing_in_billing", "billing,billing_export", o ? o->type : XD_OBJ_CHARGE,
            o ? o->key : ch->charge_id, "billing_export/missing_in_billing:%s", ch->charge_id);
        if (!b)
            break;
        xd_recon_set_obj(b, o);
        b->event_id = strdup(ch->event_id);
        b->charge_id = strdup(ch->charge_id);
        xd_recon_set_none(b, ch->amount);
        b->currency = ch->currency ? strdup(ch->currency) : NULL;
        b->age_ms = xd_recon_age(c, ch->bill_ms);
        xd_recon_detail(b,
                        "%s %s: %s accepted it (2xx%s%s) but the billing export does not list "
                        "it",
                        ch->code, ch->charge_id, ch->bill_target ? ch->bill_target : "billing",
                        ch->bill_reference ? ", reference " : "",
                        ch->bill_reference ? ch->bill_reference : "");
    }
}

/* Billing export keyed by reference: amounts per reference and currency. */
struct ref_sum {
    const char *reference, *currency;
    struct xd_dec amount;
    const struct xd_lg_charge *first;
    int64_t last_ms;
};

static int ref_cmp(const void *a, const void *b)
{
    const struct ref_sum *x = a, *y = b;
    int r = strcmp(x->reference, y->reference);
    return r ? r : strcmp(x->currency, y->currency);
}

static void by_reference(struct xd_recon_ctx *c, const struct xd_billing_export *x)
{
    const struct xd_recon_ledger *lg = c->lg;
    struct ref_sum *v = calloc(lg->ncharges + 1, sizeof *v);
    unsigned char *seen = calloc(x->n + 1, 1);
    if (!v || !seen) {
        free(v);
        free(seen);
        c->rc = XD_ENOMEM;
        return;
    }
    size_t n = 0;
    for (size_t i = 0; i < lg->ncharges; i++) {
        const struct xd_lg_charge *ch = &lg->charges[i];
        if (ch->bill_state != XD_DLV_DONE || !xd_recon_in_window(c, ch->day))
            continue;
        v[n++] = (struct ref_sum){.reference = ch->reference ? ch->reference : "",
                                  .currency = ch->currency ? ch->currency : "",
                                  .amount = ch->amount,
                                  .first = ch,
                                  .last_ms = ch->bill_ms};
    }
    if (n)
        qsort(v, n, sizeof *v, ref_cmp);
    for (size_t i = 0; i < n && c->rc == 0;) {
        size_t j = i + 1;
        struct ref_sum s = v[i];
        while (j < n && ref_cmp(&v[i], &v[j]) == 0) {
            xd_dec_add(s.amount, v[j].amount, &s.amount);
            if (v[j].last_ms > s.last_ms)
                s.last_ms = v[j].last_ms;
            j++;
        }
        i = j;
        const struct xd_bill_row *row = bill_find(x, s.reference);
        /* Rows of the reference with this currency (or with none). */
        while (row && row > x->v && strcmp(row[-1].key, s.reference) == 0)
            row--;
        while (row && row < x->v + x->n && strcmp(row->key, s.reference) == 0 && row->currency &&
               strcmp(row->currency, s.currency) != 0)
            row++;
        if (row && (row >= x->v + x->n || strcmp(row->key, s.reference) != 0))
            row = NULL;
        const struct xd_lg_object *o = charge_obj(lg, s.first);
        struct xd_dec have = row ? row->amount : xd_dec_int(0), diff;
        if (row)
            seen[row - x->v] = 1;
        if (!xd_recon_differs(have, s.amount, c->atol, &diff))
            continue;
        if (!row && !xd_recon_overdue(c, s.last_ms))
            continue;
        struct xd_recon_break *b = xd_recon_add(
            c, row ? "amount_mismatch" : "missing_in_billing", "billing,billing_export",
            o ? o->type : XD_OBJ_CHARGE, o ? o->key : s.reference, "billing_export/%s:%s:%s",
            row ? "amount_mismatch" : "missing_in_billing", s.reference, s.currency);
        if (!b)
            break;
        xd_recon_set_obj(b, o);
        b->expected = xd_recon_dec(s.amount);
        b->actual = xd_recon_dec(have);
        b->difference = xd_recon_dec(diff);
        b->currency = strdup(s.currency);
        b->age_ms = xd_recon_age(c, s.last_ms);
        xd_recon_detail(b, "reference %s: billing accepted %s %s of charges, the billing export %s",
                        s.reference, b->expected, s.currency,
                        row ? "has another amount" : "does not list it");
    }
    for (size_t i = 0; i < x->n && c->rc == 0; i++) {
        if (seen[i])
            continue;
        const struct xd_bill_row *row = &x->v[i];
        struct xd_recon_break *b =
            xd_recon_add(c, "unknown_in_billing", "billing_export", XD_OBJ_CHARGE, row->key,
                         "billing_export/unknown_in_billing:%s:%s", row->key,
                         row->currency ? row->currency : "");
        if (!b)
            break;
        b->expected = strdup("0");
        b->actual = xd_recon_dec(row->amount);
        b->difference = xd_recon_dec(row->amount);
        b->currency = row->currency ? strdup(row->currency) : NULL;
        xd_recon_detail(b,
                        "billing has %s for reference %s (row %zu) that the hub never "
                        "charged (or not in these dates)",
                        b->actual, row->key, row->row);
    }
    free(v);
    free(seen);
}

void xd_billing_export_check(struct xd_recon_ctx *c, const struct xd_billing_export *x)
{
    if (x->by_reference)
        by_reference(c, x);
    else
        by_charge(c, x);
}
