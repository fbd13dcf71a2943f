/*
 * The X12 810 invoice writer: a customer's charges (contract section 5, as
 * the store keeps them) as one interchange with one 810 transaction set per
 * currency, for `crossdock invoice` (docs/x12.md, "The 810 invoice"). A pure
 * function over a buffer like the readers of convert.h: no I/O, no store, no
 * clock; the control number and the time come in with the invoice.
 *
 * Every sum is exact (rating/money.h). A line is written as its charge's
 * quantity, unit and unit price when those give its amount, otherwise as a
 * lump sum (IT103 LS) of the amount, so that IT1 lines always add up to the
 * TDS total.
 *
 * Ownership: nothing is kept; the caller owns every input and the output
 * buffer.
 */
#ifndef XD_X12_810_H
#define XD_X12_810_H

#include "core/buf.h"
#include "rating/money.h"
#include "store/store.h"

#include <stddef.h>

/* What the invoice says beyond its lines. Strings must hold no *, ~, > or control character. */
struct xd_810 {
    const char *sender;       /* ISA06 and GS02: who bills (1-15 characters) */
    const char *receiver;     /* ISA08 and GS03: who is billed (1-15 characters) */
    const char *customer;     /* N102: the bill-to's name (the charges' customer) */
    const char *account;      /* N104 (N103 91, assigned by the seller), or NULL */
    const char *invoice;      /* BIG02, the invoice number (1-22 characters) */
    const char *invoice_date; /* BIG01, YYYY-MM-DD */
    const char *period_from;  /* DTM*186 (invoice period start), YYYY-MM-DD, or NULL */
    const char *period_to;    /* DTM*187 (invoice period end), or NULL */
    unsigned long control;    /* ISA13 and GS06, 1-999999999 */
    long long time;           /* ISA09/ISA10 and GS04/GS05: Unix seconds, UTC */
    int test;                 /* 1: ISA15 T (test data), 0: P (production) */
};

#define XD_810_MAX_SETS 16 /* currencies in one invoice */

/* One transaction set as written: what `crossdock invoice` reports. */
struct xd_810_set {
    char currency[4];
    char invoice[24];         /* its BIG02 (the invoice number, -CUR when several) */
    size_t lines;             /* IT1 segments (CTT01) */
    size_t lump;              /* of those, written as a lump sum (LS) */
    char total[XD_DEC_BUFSZ]; /* exact sum of the amounts, at the currency's minor unit */
    char tds[XD_DEC_BUFSZ];   /* TDS01 as written: the total in hundredths */
    int rounded;              /* 1: TDS01 is the total rounded half-even (3-decimal currency) */
};

struct xd_810_result {
    struct xd_810_set sets[XD_810_MAX_SETS];
    size_t nsets;
};

/*
 * Appends the 810 interchange for charges[0..n) to out: ISA, GS (IN), per
 * currency (in the order the charges first name it) ST 810 .. SE, GE, IEA.
 * res (may be NULL) says what was written. Returns 0; XD_EINVAL when the
 * invoice or a charge cannot be written (the reason, naming the charge, in
 * err; out unchanged); XD_ELIMIT when a total is beyond the exact range or
 * TDS01's 15 digits; XD_ENOMEM.
 */
int xd_x12_810_write(struct xd_buf *out, const struct xd_810 *inv,
                     const struct xd_charge_rec *charges, size_t n, struct xd_810_result *res,
                     struct xd_buf *err);

/* The X12 unit of measure (355) for a charge unit: "unit" -> "EA", "pallet" -> "PL", ... */
const char *xd_x12_uom(const char *unit);

#endif
