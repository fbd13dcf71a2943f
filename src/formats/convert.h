/*
 * Readers that turn partner and legacy formats (CSV flat files, X12 EDI)
 * into canonical events (contract sections 7 and 8). They are pure
 * functions over a buffer: no I/O, no store. Each produces a cJSON array of
 * event objects that then goes through the same validation as
 * POST /v1/events (ingest/intake.h), and reports every problem with its
 * place: "row 4, column qty: not a number", "segment 14 (W12), element 3:
 * not a number".
 *
 * Ownership: on success *events is a new cJSON array the caller deletes;
 * on failure it is NULL and errs holds at least one error.
 */
#ifndef XD_CONVERT_H
#define XD_CONVERT_H

#include "core/buf.h"
#include "core/config.h"
#include "ingest/event.h"

#include <cjson/cJSON.h>
#include <stddef.h>

/* A trading partner's defaults: struct xd_partner (core/config.h, config `partners`, by ISA06). */

struct xd_convert_opts {
    const char *customer;  /* --customer: last resort when the input names none */
    const char *warehouse; /* --warehouse */
    const struct xd_partner *partners;
    size_t npartners;
    /* X12 997s (xd_x12_read with ack): each 997 interchange takes *ack_control
     * as its ISA13 and GS06, which is then incremented (999999999 wraps to 1);
     * NULL = the received ISA13, so the same input always gives the same 997. */
    unsigned long *ack_control;
    /* Date and time in the 997 envelope, Unix seconds (UTC); 0 = the received
     * ISA09/ISA10, again for stable output. */
    long long ack_time;
};

/*
 * CSV (contract section 8): a file is accepted whole or rejected whole.
 * Returns 0, XD_EPARSE/XD_ESCHEMA (errs filled, *events NULL) or XD_ENOMEM.
 */
int xd_csv_read(const char *buf, size_t len, const struct xd_convert_opts *o, cJSON **events,
                struct xd_verrs *errs);

/*
 * X12 (contract section 7): every interchange in buf. Transaction sets that
 * fail their checks are left out and reported in errs (a rejected set does
 * not reject the others; a bad GE or IEA rejects its whole group or
 * interchange). Each error's path is "segment N (ID)" or "segment N (ID),
 * element E", N counting the segments of the file from 1. When ack is not
 * NULL a 997 per interchange is appended to it (docs/x12.md). o may be NULL.
 * Returns 0 when every set was accepted, XD_ESCHEMA when any was rejected
 * (*events still holds the accepted ones' events), XD_EPARSE when no
 * interchange could be read at all, XD_ENOMEM (*events NULL, ack as it was).
 */
int xd_x12_read(const char *buf, size_t len, const struct xd_convert_opts *o, cJSON **events,
                struct xd_verrs *errs, struct xd_buf *ack);

#endif
