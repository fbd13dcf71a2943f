/*
 * The 997 functional acknowledgment for one received interchange
 * (x12_int.h, docs/x12.md). Layout:
 *
 *   ISA  sender and receiver swapped, our own control number
 *   TA1  only when the interchange was rejected (IEA, ISA13) or ISA14 asked for it
 *   GS   FA, one group holding one 997 per received group (997s are not acknowledged)
 *   ST   997, then AK1 (GS01, GS06), per set AK2 (ST01, ST02), AK3/AK4 for each
 *        problem found in it, AK5 (A, or R and a code); AK9 (A, P or R, the
 *        counts, a code when the group itself was rejected); SE
 *   GE, IEA
 *
 * The received delimiters are reused, and so is what followed each segment
 * terminator of the received file (nothing, LF or CRLF), so the 997 reads
 * like the document it answers. Control numbers and dates follow o
 * (convert.h): by default both derive from the received ISA, so the same
 * input always gives the same bytes. Segments go through the writer of
 * x12_write.c, which the 810 (x12_810.c) uses too.
 */
#include "core/err.h"
#include "formats/x12_int.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#define MAX_CTRL 999999999UL

/* The segment writer (x12_write.c) and the interchange being answered. */
struct w {
    struct x12_out o;
    const struct x12_ack_ic *ic;
};

static void seg_begin(struct w *w, const char *id)
{
    xd_x12_put_seg(&w->o, id);
}

static void el_s(struct w *w, const char *s)
{
    xd_x12_put_el_s(&w->o, s);
}

static void el_v(struct w *w, struct x12_view v)
{
    xd_x12_put_el_v(&w->o, v);
}

static void el_u(struct w *w, unsigned long u)
{
    xd_x12_put_el_u(&w->o, u);
}

static void seg_end(struct w *w)
{
    xd_x12_put_seg_end(&w->o);
}

static int digits(struct x12_view v, size_t n)
{
    if (v.n != n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (v.p[i] < '0' || v.p[i] > '9')
            return 0;
    return 1;
}

static struct x12_view trimmed(const struct x12_ack_ic *ic, int i)
{
    return xd_x12_trim(ic->isa[i]);
}

static struct x12_view or_default(struct x12_view v, const char *dflt)
{
    if (!v.n) {
        v.p = dflt;
        v.n = strlen(dflt);
    }
    return v;
}

/*
 * A received ISA value echoed into our 997's ISA: used only when it has the
 * element's size and holds printable bytes other than our delimiters (a
 * broken envelope can put anything there); otherwise the default.
 */
static struct x12_view fit(const struct x12_ack_ic *ic, struct x12_view v, size_t max,
                           const char *dflt)
{
    int ok = v.n <= max;
    for (size_t i = 0; ok && i < v.n; i++) {
        char c = v.p[i];
        ok = c >= 0x20 && c <= 0x7e && c != ic->es && c != ic->cs && c != ic->st &&
             c != '*' && c != '~' && c != '>';
    }
    if (!ok)
        v.n = 0;
    return or_default(v, dflt);
}

/* AK404 quotes the bad value only when it is short, printable and holds no delimiter. */
static int quotable(const struct x12_ack_ic *ic, struct x12_view v)
{
    if (v.n == 0 || v.n > 99)
        return 0;
    for (size_t i = 0; i < v.n; i++) {
        char c = v.p[i];
        if (c < 0x20 || c > 0x7e || c == ic->es || c == ic->cs || c == ic->st)
            return 0;
    }
    return 1;
}

/* The 997 for one received group, numbered ctl (ST02). */
static void write_997(struct w *w, const struct x12_ack_group *g, unsigned long ctl,
                      int ic_rejected)
{
    const struct x12_ack_ic *ic = w->ic;
    char st02[16];
    size_t accepted = 0;
    snprintf(st02, sizeof st02, "%04lu", ctl);
    xd_x12_put_st(&w->o, "997", st02);
    seg_begin(w, "AK1");
    el_v(w, g->gs01);
    el_v(w, g->gs06);
    seg_end(w);
    for (size_t i = 0; i < g->nsets; i++) {
        const struct x12_ack_set *set = &ic->sets[g->first_set + i];
        seg_begin(w, "AK2");
        el_v(w, set->st01);
        el_v(w, set->st02);
        seg_end(w);
        /* one AK3 per segment in error, its AK4s under it */
        for (size_t j = 0; j < set->nerr;) {
            const struct x12_ack_err *e = &ic->errs[set->first_err + j];
            size_t k = j, run;
            int elements = 0;
            while (k < set->nerr && ic->errs[set->first_err + k].pos == e->pos &&
                   strcmp(ic->errs[set->first_err + k].id, e->id) == 0) {
                elements |= ic->errs[set->first_err + k].el > 0;
                k++;
            }
            run = k;
            seg_begin(w, "AK3");
            el_s(w, e->id);
            el_u(w, e->pos);
            el_s(w, "");
            el_u(w, elements ? X12_AK3_ELEMENTS : e->ak3);
            seg_end(w);
            for (k = j; k < run; k++) {
                const struct x12_ack_err *f = &ic->errs[set->first_err + k];
                if (!f->el)
                    continue;
                seg_begin(w, "AK4");
                el_u(w, f->el);
                el_s(w, "");
                el_u(w, f->ak4);
                if (quotable(ic, f->bad))
                    el_v(w, f->bad);
                seg_end(w);
            }
            j = run;
        }
        seg_begin(w, "AK5");
        if (set->ak5) {
            el_s(w, "R");
            el_u(w, set->ak5);
        } else {
            el_s(w, "A");
            accepted++;
        }
        seg_end(w);
    }
    if (g->rejected || ic_rejected)
        accepted = 0;
    seg_begin(w, "AK9");
    el_s(w, accepted == g->nsets && !g->rejected && !ic_rejected ? "A" : accepted ? "P" : "R");
    el_u(w, g->ge01 >= 0 ? (unsigned long)g->ge01 : g->nsets);
    el_u(w, g->nsets);
    el_u(w, accepted);
    if (g->ak9)
        el_u(w, g->ak9);
    seg_end(w);
    xd_x12_put_se(&w->o, st02);
}

static int acked(const struct x12_ack_group *g)
{
    return !xd_x12_eq(g->gs01, "FA");
}

int xd_x12_ack_write(struct xd_buf *b, const struct x12_ack_ic *ic, const struct xd_convert_opts *o)
{
    struct w w = {.o = {.b = b, .es = ic->es, .cs = ic->cs, .st = ic->st, .eol = ic->eol},
                  .ic = ic};
    const struct x12_ack_group *first = NULL;
    size_t ngroups = 0;
    unsigned long ctl;
    char date[16], time6[8], time4[8];
    int ta1 = ic->ta1 || xd_x12_eq(trimmed(ic, 14), "1");

    for (size_t i = 0; i < ic->ngroups; i++)
        if (acked(&ic->groups[i]) && !ngroups++)
            first = &ic->groups[i];
    if (!ngroups && !ta1)
        return 0;

    /* our control number: the caller's counter, else the received ISA13 */
    if (o->ack_control) {
        ctl = *o->ack_control;
        if (ctl < 1 || ctl > MAX_CTRL)
            ctl = 1;
        *o->ack_control = ctl >= MAX_CTRL ? 1 : ctl + 1;
    } else {
        struct x12_view v = trimmed(ic, 13);
        ctl = 0;
        for (size_t i = 0; i < v.n; i++)
            ctl = ctl * 10 + (unsigned long)(v.p[i] - '0');
    }

    /* date and time: the caller's clock, else the received ISA09/ISA10 */
    if (o->ack_time) {
        time_t t = (time_t)o->ack_time;
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(date, sizeof date, "%Y%m%d", &tm);
        strftime(time4, sizeof time4, "%H%M", &tm);
    } else {
        struct x12_view d = trimmed(ic, 9), t = trimmed(ic, 10);
        snprintf(date, sizeof date, "20%.6s", digits(d, 6) ? d.p : "000101");
        snprintf(time4, sizeof time4, "%.4s", digits(t, 4) ? t.p : "0000");
    }
    snprintf(time6, sizeof time6, "%.6s", date + 2);

    struct x12_isa isa = {.sender_q = fit(ic, trimmed(ic, 7), 2, "ZZ"),
                          .sender = fit(ic, trimmed(ic, 8), 15, ""),
                          .receiver_q = fit(ic, trimmed(ic, 5), 2, "ZZ"),
                          .receiver = fit(ic, trimmed(ic, 6), 15, ""),
                          .isa11 = fit(ic, trimmed(ic, 11), 1, "U"),
                          .isa12 = fit(ic, trimmed(ic, 12), 5, "00401"),
                          .isa15 = fit(ic, trimmed(ic, 15), 1, "P"),
                          .control = ctl};
    snprintf(isa.date6, sizeof isa.date6, "%.6s", time6);
    snprintf(isa.time4, sizeof isa.time4, "%.4s", time4);
    xd_x12_put_isa(&w.o, &isa);

    if (ta1) {
        seg_begin(&w, "TA1");
        el_v(&w, trimmed(ic, 13));
        el_v(&w, trimmed(ic, 9));
        el_v(&w, trimmed(ic, 10));
        el_s(&w, ic->ta1 ? "R" : "A");
        el_s(&w, ic->ta1 ? ic->ta1 : "000");
        seg_end(&w);
    }

    if (ngroups) {
        unsigned long n = 0;
        xd_x12_put_gs(&w.o, "FA", first->gs03, first->gs02, date, time4, ctl,
                      or_default(first->gs08, "004010"));
        for (size_t i = 0; i < ic->ngroups; i++)
            if (acked(&ic->groups[i]))
                write_997(&w, &ic->groups[i], ++n, ic->ta1 != NULL);
        xd_x12_put_ge(&w.o, n, ctl);
    }

    xd_x12_put_iea(&w.o, ngroups ? 1 : 0, ctl);
    return b->oom ? XD_ENOMEM : 0;
}
