/*
 * Helpers of one reconciliation run (recon_int.h).
 */
#include "reconcile/recon_int.h"
#include "core/buf.h"
#include "core/err.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

char *xd_recon_dec(struct xd_dec d)
{
    char b[XD_DEC_BUFSZ];
    xd_dec_format(d, b, sizeof b);
    return strdup(b);
}

void xd_recon_set_none(struct xd_recon_break *b, struct xd_dec expected)
{
    b->expected = xd_recon_dec(expected);
    b->actual = strdup("0");
    b->difference = xd_recon_dec(xd_dec_neg(expected));
}

static struct xd_dec dec_abs(struct xd_dec d)
{
    return xd_dec_sign(d) < 0 ? xd_dec_neg(d) : d;
}

/* 1 when |a - b| is over tol. */
int xd_recon_differs(struct xd_dec a, struct xd_dec b, struct xd_dec tol, struct xd_dec *diff)
{
    if (xd_dec_sub(a, b, diff) < 0)
        return 1;
    return xd_dec_cmp(dec_abs(*diff), tol) > 0;
}

int xd_recon_in_window(const struct xd_recon_ctx *c, long day)
{
    return day >= c->from && day <= c->to;
}

int64_t xd_recon_age(const struct xd_recon_ctx *c, int64_t since_ms)
{
    return since_ms && c->now > since_ms ? c->now - since_ms : 0;
}

int xd_recon_overdue(const struct xd_recon_ctx *c, int64_t since_ms)
{
    return xd_recon_age(c, since_ms) >= c->grace_ms;
}

struct xd_recon_break *xd_recon_add(struct xd_recon_ctx *c, const char *category,
                                    const char *systems, int obj_type, const char *obj_key,
                                    const char *fmt, ...)
{
    struct xd_recon_report *r = c->r;
    if (c->rc < 0)
        return NULL;
    if (r->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 32;
        struct xd_recon_break *v = realloc(r->breaks, cap * sizeof *v);
        if (!v) {
            c->rc = XD_ENOMEM;
            return NULL;
        }
        r->breaks = v;
        c->cap = cap;
    }
    struct xd_recon_break *b = &r->breaks[r->n++];
    memset(b, 0, sizeof *b);
    struct xd_buf k;
    xd_buf_init(&k);
    va_list ap;
    va_start(ap, fmt);
    xd_buf_vprintf(&k, fmt, ap);
    va_end(ap);
    b->key = xd_buf_steal(&k);
    b->category = category;
    b->systems = systems;
    b->obj_type = obj_type;
    b->obj_key = strdup(obj_key ? obj_key : "");
    if (!b->key || !b->obj_key)
        c->rc = XD_ENOMEM;
    return b;
}

void xd_recon_set_obj(struct xd_recon_break *b, const struct xd_lg_object *o)
{
    if (!b || !o)
        return;
    b->warehouse = o->warehouse ? strdup(o->warehouse) : NULL;
    b->customer = o->customer ? strdup(o->customer) : NULL;
}

void xd_recon_detail(struct xd_recon_break *b, const char *fmt, ...)
{
    if (!b)
        return;
    struct xd_buf d;
    xd_buf_init(&d);
    va_list ap;
    va_start(ap, fmt);
    xd_buf_vprintf(&d, fmt, ap);
    va_end(ap);
    free(b->detail);
    b->detail = xd_buf_steal(&d);
}
