/*
 * Writing X12 segments (x12_int.h): the primitives the 997 (x12_ack.c) and
 * the 810 (x12_810.c) share, so that both envelopes are built the same way.
 * Elements are appended as given, between the writer's delimiters; the
 * writer counts segments from ST so that SE01 is always right. Nothing here
 * checks values: callers pass what may stand in an element.
 */
#include "formats/x12_int.h"

#include <stdio.h>
#include <string.h>

struct x12_view xd_x12_view(const char *s)
{
    struct x12_view v = {s ? s : "", s ? strlen(s) : 0};
    return v;
}

void xd_x12_put_seg(struct x12_out *w, const char *id)
{
    xd_buf_puts(w->b, id);
}

void xd_x12_put_el(struct x12_out *w, const char *p, size_t n)
{
    xd_buf_putc(w->b, w->es);
    xd_buf_append(w->b, p, n);
}

void xd_x12_put_el_s(struct x12_out *w, const char *s)
{
    xd_x12_put_el(w, s, strlen(s));
}

void xd_x12_put_el_v(struct x12_out *w, struct x12_view v)
{
    xd_x12_put_el(w, v.p, v.n);
}

void xd_x12_put_el_u(struct x12_out *w, unsigned long u)
{
    char tmp[24];
    int n = snprintf(tmp, sizeof tmp, "%lu", u);
    xd_x12_put_el(w, tmp, (size_t)n);
}

void xd_x12_put_el_pad(struct x12_out *w, struct x12_view v, size_t width)
{
    xd_x12_put_el_v(w, v);
    for (size_t i = v.n; i < width; i++)
        xd_buf_putc(w->b, ' ');
}

void xd_x12_put_seg_end(struct x12_out *w)
{
    xd_buf_putc(w->b, w->st);
    xd_buf_puts(w->b, w->eol);
    w->nseg++;
}

void xd_x12_put_isa(struct x12_out *w, const struct x12_isa *h)
{
    char ctl[16];
    snprintf(ctl, sizeof ctl, "%09lu", h->control);
    xd_x12_put_seg(w, "ISA");
    xd_x12_put_el_s(w, "00");
    xd_x12_put_el_s(w, "          ");
    xd_x12_put_el_s(w, "00");
    xd_x12_put_el_s(w, "          ");
    xd_x12_put_el_pad(w, h->sender_q, 2);
    xd_x12_put_el_pad(w, h->sender, 15);
    xd_x12_put_el_pad(w, h->receiver_q, 2);
    xd_x12_put_el_pad(w, h->receiver, 15);
    xd_x12_put_el_s(w, h->date6);
    xd_x12_put_el_s(w, h->time4);
    xd_x12_put_el_v(w, h->isa11);
    xd_x12_put_el_v(w, h->isa12);
    xd_x12_put_el_s(w, ctl);
    xd_x12_put_el_s(w, "0");
    xd_x12_put_el_v(w, h->isa15);
    xd_x12_put_el(w, &w->cs, 1);
    xd_x12_put_seg_end(w);
}

void xd_x12_put_iea(struct x12_out *w, unsigned long ngroups, unsigned long control)
{
    char ctl[16];
    snprintf(ctl, sizeof ctl, "%09lu", control);
    xd_x12_put_seg(w, "IEA");
    xd_x12_put_el_u(w, ngroups);
    xd_x12_put_el_s(w, ctl);
    xd_x12_put_seg_end(w);
}

void xd_x12_put_gs(struct x12_out *w, const char *gs01, struct x12_view gs02, struct x12_view gs03,
                   const char *date8, const char *time4, unsigned long control,
                   struct x12_view gs08)
{
    xd_x12_put_seg(w, "GS");
    xd_x12_put_el_s(w, gs01);
    xd_x12_put_el_v(w, gs02);
    xd_x12_put_el_v(w, gs03);
    xd_x12_put_el_s(w, date8);
    xd_x12_put_el_s(w, time4);
    xd_x12_put_el_u(w, control);
    xd_x12_put_el_s(w, "X");
    xd_x12_put_el_v(w, gs08);
    xd_x12_put_seg_end(w);
}

void xd_x12_put_ge(struct x12_out *w, unsigned long nsets, unsigned long control)
{
    xd_x12_put_seg(w, "GE");
    xd_x12_put_el_u(w, nsets);
    xd_x12_put_el_u(w, control);
    xd_x12_put_seg_end(w);
}

void xd_x12_put_st(struct x12_out *w, const char *st01, const char *st02)
{
    w->nseg = 0;
    xd_x12_put_seg(w, "ST");
    xd_x12_put_el_s(w, st01);
    xd_x12_put_el_s(w, st02);
    xd_x12_put_seg_end(w);
}

void xd_x12_put_se(struct x12_out *w, const char *st02)
{
    xd_x12_put_seg(w, "SE");
    xd_x12_put_el_u(w, w->nseg + 1);
    xd_x12_put_el_s(w, st02);
    xd_x12_put_seg_end(w);
}
