/*
 * The 810 invoice (x12_810.h, docs/x12.md). Layout, one interchange:
 *
 *   ISA  ZZ sender, ZZ receiver, U, 00401, the caller's control number, P or T
 *   GS   IN, sender, receiver, date, time, the same control number, X, 004010
 *   per currency:
 *     ST   810, 0001, 0002, ...
 *     BIG  invoice date, invoice number
 *     CUR  SE, the currency
 *     N1   BT, the customer, 91 and its account when known
 *     DTM  186 / 187: the invoice period, when given
 *     per charge:
 *       IT1  line, quantity, unit (X12 355), unit price, , SV, charge code
 *       PID  F, free-form description: the charge's reference (shipment, receipt...)
 *       REF  ZZ, the charge id
 *       DTM  472: the service date
 *     TDS  the total in hundredths (two implied decimals)
 *     CTT  number of IT1 lines
 *     SE
 *   GE, IEA
 *
 * All arithmetic is exact (rating/money.h). The only rounding is TDS01 for a
 * currency with three decimals, which N2 cannot carry: half-even, reported
 * in the result (docs/x12.md says why).
 */
#include "formats/x12_810.h"
#include "core/err.h"
#include "formats/x12_int.h"
#include "ingest/event.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#define MAX_CTRL   999999999UL
#define TDS_DIGITS 15 /* TDS01 is N2 with at most 15 digits */

/* X12 units of measure (element 355) for the units charges carry (rating/basis.c). */
static const struct {
    const char *unit;
    const char *uom;
} uoms[] = {
    {"unit", "EA"},       {"line", "EA"},     {"shipment", "EA"}, {"receipt", "EA"},
    {"adjustment", "EA"}, {"unit_day", "EA"}, {"pallet", "PL"},   {"pallet_day", "PL"},
    {"carton", "CT"},     {"kg", "KG"},       {"month", "MO"},
};

const char *xd_x12_uom(const char *unit)
{
    for (size_t i = 0; unit && i < sizeof uoms / sizeof uoms[0]; i++)
        if (strcmp(uoms[i].unit, unit) == 0)
            return uoms[i].uom;
    return "EA";
}

/* NULL when s may stand in an element of min..max bytes; else what is wrong with it (in why). */
static const char *unsafe(const char *s, size_t min, size_t max, char why[64])
{
    size_t n = s ? strlen(s) : 0;
    if (n < min || n > max) {
        snprintf(why, 64, "must be %zu to %zu characters", min, max);
        return why;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f || c == '*' || c == '~' || c == '>')
            return "holds an X12 delimiter (*, ~, >) or a control character";
    }
    return NULL;
}

/* "2026-11-28" -> "20261128". */
static void ccyymmdd(const char *date, char out[9])
{
    snprintf(out, 9, "%.4s%.2s%.2s", date, date + 5, date + 8);
}

/* A charge as one IT1 line. */
struct line {
    struct xd_dec qty, price, amount;
    const char *uom;
    int lump; /* written as a lump sum: quantity ±1, LS, price = |amount| */
};

static int charge_error(struct xd_buf *err, size_t i, const struct xd_charge_rec *c,
                        const char *field, const char *why)
{
    xd_buf_printf(err, "charge %zu (%s): %s: %s", i + 1, c->charge_id ? c->charge_id : "no id",
                  field, why);
    return XD_EINVAL;
}

/*
 * Quantity × unit price that gives the amount: as recorded, or with the
 * quantity negated (a reversal carries the original quantity and price with
 * the amount negated), else a lump sum (a min_amount raised the amount).
 */
static int line_of(const struct xd_charge_rec *c, size_t i, int minor, struct line *l,
                   struct xd_buf *err)
{
    char whybuf[64];
    const char *why;
    if (!c->quantity || xd_dec_parse(c->quantity, &l->qty) < 0)
        return charge_error(err, i, c, "quantity", "not a decimal number");
    if (!c->unit_price || xd_dec_parse(c->unit_price, &l->price) < 0)
        return charge_error(err, i, c, "unit_price", "not a decimal number");
    if (!c->amount || xd_dec_parse(c->amount, &l->amount) < 0)
        return charge_error(err, i, c, "amount", "not a decimal number");
    why = unsafe(c->code, 1, 48, whybuf);
    if (why)
        return charge_error(err, i, c, "code", why);
    why = unsafe(c->charge_id, 1, 30, whybuf);
    if (why)
        return charge_error(err, i, c, "charge_id", why);
    if (!c->service_date || !xd_date_valid(c->service_date))
        return charge_error(err, i, c, "service_date", "not a date YYYY-MM-DD");
    struct xd_dec x, at_minor;
    if (xd_dec_round(l->amount, minor, &at_minor) < 0 || xd_dec_cmp(at_minor, l->amount) != 0)
        return charge_error(err, i, c, "amount", "has more decimals than its currency");
    l->amount = at_minor;
    l->uom = xd_x12_uom(c->unit);
    l->lump = 0;
    if (xd_dec_sign(l->price) < 0) {
        l->price = xd_dec_neg(l->price);
        l->qty = xd_dec_neg(l->qty);
    }
    if (xd_dec_mul(l->qty, l->price, &x) < 0 || xd_dec_round(x, minor, &x) < 0)
        return charge_error(err, i, c, "quantity", "quantity × unit_price is beyond the range");
    if (xd_dec_cmp(x, l->amount) == 0)
        return 0;
    if (xd_dec_cmp(xd_dec_neg(x), l->amount) == 0) {
        l->qty = xd_dec_neg(l->qty);
        return 0;
    }
    l->lump = 1;
    l->qty = xd_dec_int(xd_dec_sign(l->amount) < 0 ? -1 : 1);
    l->price = xd_dec_sign(l->amount) < 0 ? xd_dec_neg(l->amount) : l->amount;
    l->uom = "LS";
    return 0;
}

static void el_dec(struct x12_out *w, struct xd_dec d)
{
    char s[XD_DEC_BUFSZ];
    int n = xd_dec_format(xd_dec_normal(d), s, sizeof s);
    xd_x12_put_el(w, s, n > 0 ? (size_t)n : 0);
}

/* A free-form description: delimiters and control characters become spaces. */
static void el_text(struct x12_out *w, const char *s, size_t max)
{
    xd_buf_putc(w->b, w->es);
    for (size_t i = 0; s[i] && i < max; i++) {
        unsigned char c = (unsigned char)s[i];
        xd_buf_putc(w->b,
                    c < 0x20 || c == 0x7f || c == '*' || c == '~' || c == '>' ? ' ' : (char)c);
    }
}

/* TDS01: the total in hundredths, as an integer string of at most 15 digits. */
static int tds_of(struct xd_dec total, struct xd_810_set *set)
{
    struct xd_dec r;
    if (xd_dec_round(total, 2, &r) < 0)
        return XD_ELIMIT;
    set->rounded = xd_dec_cmp(r, total) != 0;
    r.scale = 0; /* units at scale 2 are hundredths */
    int n = xd_dec_format(r, set->tds, sizeof set->tds);
    if (n < 0 || (size_t)n - (r.units < 0) > TDS_DIGITS)
        return XD_ELIMIT;
    return 0;
}

/* One 810 set: the charges in currency cur. */
static int write_set(struct x12_out *w, const struct xd_810 *inv, const struct xd_charge_rec *ch,
                     size_t n, struct xd_810_set *set, int minor, unsigned long stno,
                     struct xd_buf *err)
{
    char st02[8], date[9];
    snprintf(st02, sizeof st02, "%04lu", stno);
    xd_x12_put_st(w, "810", st02);
    ccyymmdd(inv->invoice_date, date);
    xd_x12_put_seg(w, "BIG");
    xd_x12_put_el_s(w, date);
    xd_x12_put_el_s(w, set->invoice);
    xd_x12_put_seg_end(w);
    xd_x12_put_seg(w, "CUR");
    xd_x12_put_el_s(w, "SE");
    xd_x12_put_el_s(w, set->currency);
    xd_x12_put_seg_end(w);
    xd_x12_put_seg(w, "N1");
    xd_x12_put_el_s(w, "BT");
    xd_x12_put_el_s(w, inv->customer);
    if (inv->account && *inv->account) {
        xd_x12_put_el_s(w, "91");
        xd_x12_put_el_s(w, inv->account);
    }
    xd_x12_put_seg_end(w);
    const char *period[2][2] = {{"186", inv->period_from}, {"187", inv->period_to}};
    for (int k = 0; k < 2; k++) {
        if (!period[k][1])
            continue;
        ccyymmdd(period[k][1], date);
        xd_x12_put_seg(w, "DTM");
        xd_x12_put_el_s(w, period[k][0]);
        xd_x12_put_el_s(w, date);
        xd_x12_put_seg_end(w);
    }

    struct xd_dec total = xd_dec_int(0);
    xd_dec_round(total, minor, &total);
    for (size_t i = 0; i < n; i++) {
        const struct xd_charge_rec *c = &ch[i];
        if (strcmp(c->currency, set->currency) != 0)
            continue;
        struct line l;
        int rc = line_of(c, i, minor, &l, err);
        if (rc < 0)
            return rc;
        if (xd_dec_add(total, l.amount, &total) < 0) {
            xd_buf_printf(err, "the %s total is beyond the exact decimal range", set->currency);
            return XD_ELIMIT;
        }
        set->lines++;
        set->lump += (size_t)l.lump;
        xd_x12_put_seg(w, "IT1");
        xd_x12_put_el_u(w, set->lines);
        el_dec(w, l.qty);
        xd_x12_put_el_s(w, l.uom);
        el_dec(w, l.price);
        xd_x12_put_el_s(w, "");
        xd_x12_put_el_s(w, "SV");
        xd_x12_put_el_s(w, c->code);
        xd_x12_put_seg_end(w);
        if (c->reference && *c->reference) {
            xd_x12_put_seg(w, "PID");
            xd_x12_put_el_s(w, "F");
            xd_x12_put_el_s(w, "");
            xd_x12_put_el_s(w, "");
            xd_x12_put_el_s(w, "");
            el_text(w, c->reference, 80);
            xd_x12_put_seg_end(w);
        }
        xd_x12_put_seg(w, "REF");
        xd_x12_put_el_s(w, "ZZ");
        xd_x12_put_el_s(w, c->charge_id);
        xd_x12_put_seg_end(w);
        ccyymmdd(c->service_date, date);
        xd_x12_put_seg(w, "DTM");
        xd_x12_put_el_s(w, "472");
        xd_x12_put_el_s(w, date);
        xd_x12_put_seg_end(w);
    }
    xd_dec_format(total, set->total, sizeof set->total);
    if (tds_of(total, set) < 0) {
        xd_buf_printf(err, "the %s total %s does not fit TDS01 (15 digits)", set->currency,
                      set->total);
        return XD_ELIMIT;
    }
    xd_x12_put_seg(w, "TDS");
    xd_x12_put_el_s(w, set->tds);
    xd_x12_put_seg_end(w);
    xd_x12_put_seg(w, "CTT");
    xd_x12_put_el_u(w, set->lines);
    xd_x12_put_seg_end(w);
    xd_x12_put_se(w, st02);
    return 0;
}

/* Checks what the invoice says beyond its lines. */
static int check_invoice(const struct xd_810 *inv, struct xd_buf *err)
{
    char whybuf[64];
    const struct {
        const char *name, *value;
        size_t min, max;
    } fields[] = {
        {"sender", inv->sender, 1, 15},
        {"receiver", inv->receiver, 1, 15},
        {"customer", inv->customer, 1, 60},
        {"invoice number", inv->invoice, 1, 22},
    };
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        const char *why = unsafe(fields[i].value, fields[i].min, fields[i].max, whybuf);
        if (why) {
            xd_buf_printf(err, "%s '%s': %s", fields[i].name,
                          fields[i].value ? fields[i].value : "", why);
            return XD_EINVAL;
        }
    }
    const char *why = inv->account && *inv->account ? unsafe(inv->account, 2, 80, whybuf) : NULL;
    if (why) {
        xd_buf_printf(err, "account '%s': %s", inv->account, why);
        return XD_EINVAL;
    }
    const char *dates[][2] = {{"invoice date", inv->invoice_date},
                              {"period start", inv->period_from},
                              {"period end", inv->period_to}};
    for (size_t i = 0; i < 3; i++) {
        if (!dates[i][1] && i > 0)
            continue;
        if (!dates[i][1] || !xd_date_valid(dates[i][1])) {
            xd_buf_printf(err, "%s '%s': not a date YYYY-MM-DD", dates[i][0],
                          dates[i][1] ? dates[i][1] : "");
            return XD_EINVAL;
        }
    }
    if (inv->control < 1 || inv->control > MAX_CTRL) {
        xd_buf_printf(err, "control number %lu: must be 1 to 999999999", inv->control);
        return XD_EINVAL;
    }
    return 0;
}

/* The currencies of the charges, in order of first appearance, with their minor units. */
static int currencies(const struct xd_charge_rec *ch, size_t n, const char *invoice,
                      struct xd_810_result *res, int *minor, struct xd_buf *err)
{
    for (size_t i = 0; i < n; i++) {
        const char *cur = ch[i].currency ? ch[i].currency : "";
        size_t k = 0;
        while (k < res->nsets && strcmp(res->sets[k].currency, cur) != 0)
            k++;
        if (k < res->nsets)
            continue;
        int m = xd_currency_minor(cur);
        if (m < 0)
            return charge_error(err, i, &ch[i], "currency",
                                "not an ISO 4217 code with a minor unit");
        if (res->nsets == XD_810_MAX_SETS) {
            xd_buf_printf(err, "more than %d currencies in one invoice", XD_810_MAX_SETS);
            return XD_EINVAL;
        }
        struct xd_810_set *set = &res->sets[res->nsets];
        memset(set, 0, sizeof *set);
        snprintf(set->currency, sizeof set->currency, "%s", cur);
        minor[res->nsets++] = m;
    }
    /* Several currencies: one invoice each, numbered INVOICE-CUR. */
    for (size_t k = 0; k < res->nsets; k++) {
        struct xd_810_set *set = &res->sets[k];
        char cur[4];
        memcpy(cur, set->currency, sizeof cur);
        int len = res->nsets == 1
                      ? snprintf(set->invoice, sizeof set->invoice, "%s", invoice)
                      : snprintf(set->invoice, sizeof set->invoice, "%s-%s", invoice, cur);
        if (len < 0 || len > 22) {
            xd_buf_printf(err,
                          "invoice number '%s-%s': over 22 characters (charges in %zu "
                          "currencies give one invoice each, numbered NUMBER-CURRENCY)",
                          invoice, cur, res->nsets);
            return XD_EINVAL;
        }
    }
    return 0;
}

int xd_x12_810_write(struct xd_buf *out, const struct xd_810 *inv,
                     const struct xd_charge_rec *charges, size_t n, struct xd_810_result *res,
                     struct xd_buf *err)
{
    struct xd_810_result local;
    struct xd_buf b;
    int minor[XD_810_MAX_SETS];
    xd_buf_init(&b);
    if (!res)
        res = &local;
    memset(res, 0, sizeof *res);
    int rc = check_invoice(inv, err);
    if (rc < 0)
        goto out;
    if (n == 0) {
        xd_buf_printf(err, "no charges to invoice");
        rc = XD_EINVAL;
        goto out;
    }
    rc = currencies(charges, n, inv->invoice, res, minor, err);
    if (rc < 0)
        goto out;

    char date8[16], time4[8];
    time_t t = (time_t)inv->time;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(date8, sizeof date8, "%Y%m%d", &tm);
    strftime(time4, sizeof time4, "%H%M", &tm);
    struct x12_out w = {.b = &b, .es = '*', .cs = '>', .st = '~', .eol = "\n"};
    struct x12_isa isa = {.sender_q = xd_x12_view("ZZ"),
                          .sender = xd_x12_view(inv->sender),
                          .receiver_q = xd_x12_view("ZZ"),
                          .receiver = xd_x12_view(inv->receiver),
                          .isa11 = xd_x12_view("U"),
                          .isa12 = xd_x12_view("00401"),
                          .isa15 = xd_x12_view(inv->test ? "T" : "P"),
                          .control = inv->control};
    snprintf(isa.date6, sizeof isa.date6, "%.6s", date8 + 2);
    snprintf(isa.time4, sizeof isa.time4, "%.4s", time4);
    xd_x12_put_isa(&w, &isa);
    xd_x12_put_gs(&w, "IN", isa.sender, isa.receiver, date8, time4, inv->control,
                  xd_x12_view("004010"));
    for (size_t k = 0; k < res->nsets; k++) {
        rc = write_set(&w, inv, charges, n, &res->sets[k], minor[k], k + 1, err);
        if (rc < 0)
            goto out;
    }
    xd_x12_put_ge(&w, res->nsets, inv->control);
    xd_x12_put_iea(&w, 1, inv->control);
    if (b.oom || xd_buf_append(out, b.data, b.len) < 0)
        rc = XD_ENOMEM;
out:
    xd_buf_dispose(&b);
    return rc;
}
