/*
 * Inside reconciliation: the state of one run that the store's checks
 * (report.c) and the exports' checks (export.c) share, and the helpers that
 * add breaks to the report. Nothing outside src/reconcile/ includes this.
 */
#ifndef XD_RECON_INT_H
#define XD_RECON_INT_H

#include "reconcile/export.h"
#include "reconcile/ledger.h"
#include "reconcile/report.h"
#include "rating/money.h"

#include <stdint.h>

struct xd_config;

struct xd_recon_ctx {
    const struct xd_config *cfg;
    const struct xd_recon_ledger *lg;
    struct xd_recon_report *r;
    size_t cap;    /* breaks allocated in r */
    long from, to; /* service days of the window, inclusive */
    int64_t now, grace_ms;
    struct xd_dec qtol, atol;
    int rc; /* first failure (XD_ENOMEM): the run fails */
};

/*
 * Adds a break to c->r with its key printed from fmt; category and systems
 * are static strings; obj_key is copied. NULL when memory ran out (c->rc is
 * then set). The pointer is valid until the next add.
 */
struct xd_recon_break *xd_recon_add(struct xd_recon_ctx *c, const char *category,
                                    const char *systems, int obj_type, const char *obj_key,
                                    const char *fmt, ...) __attribute__((format(printf, 6, 7)));
/* The object's warehouse and customer into b (b may be NULL). */
void xd_recon_set_obj(struct xd_recon_break *b, const struct xd_lg_object *o);
/* b's one-line detail (b may be NULL). */
void xd_recon_detail(struct xd_recon_break *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* A heap copy of d's text. */
char *xd_recon_dec(struct xd_dec d);
/* b expected `expected` and found none of it: actual 0, difference -expected. */
void xd_recon_set_none(struct xd_recon_break *b, struct xd_dec expected);
/* 1 when |a - b| is over tol; *diff = a - b. */
int xd_recon_differs(struct xd_dec a, struct xd_dec b, struct xd_dec tol, struct xd_dec *diff);
int xd_recon_in_window(const struct xd_recon_ctx *c, long day);
int64_t xd_recon_age(const struct xd_recon_ctx *c, int64_t since_ms);
/* At least the grace period has passed since since_ms. */
int xd_recon_overdue(const struct xd_recon_ctx *c, int64_t since_ms);

#endif
