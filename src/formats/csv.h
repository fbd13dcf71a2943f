/*
 * The CSV flat-file reader's limits (contract section 8; docs/csv.md).
 * xd_csv_read() in formats/convert.h reads with the defaults below;
 * xd_csv_read_lim() takes other limits, for tests and for callers that
 * must bound a file tighter. Ownership is as for xd_csv_read(): on success
 * *events is a new cJSON array the caller deletes; on failure it is NULL
 * and errs holds the problems, each with its row and column.
 */
#ifndef XD_CSV_H
#define XD_CSV_H

#include "formats/convert.h"

#include <stddef.h>

#define XD_CSV_MAX_ROWS    1000000 /* data rows (not the header, not blank lines) */
#define XD_CSV_MAX_CELL    65536   /* bytes in one cell, after unquoting */
#define XD_CSV_MAX_COLUMNS 256     /* columns in the header */
#define XD_CSV_MAX_LINES   10000   /* lines[] / items[] of one event (the model's limit) */

struct xd_csv_limits {
    size_t max_rows; /* 0 = XD_CSV_MAX_ROWS */
    size_t max_cell; /* 0 = XD_CSV_MAX_CELL */
};

/* xd_csv_read() with limits; lim may be NULL (the defaults). */
int xd_csv_read_lim(const char *buf, size_t len, const struct xd_convert_opts *o,
                    const struct xd_csv_limits *lim, cJSON **events, struct xd_verrs *errs);

#endif
