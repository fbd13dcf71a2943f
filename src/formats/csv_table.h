/*
 * A CSV file as a plain table: a header row of column names, then rows of
 * text cells (RFC 4180, read with libcsv like formats/csv.c, which turns
 * CSV into events). For files that are not events: the exports of other
 * systems that reconciliation compares with (reconcile/export.c).
 *
 * Rows are numbered as a spreadsheet shows them: the header is row 1, the
 * first data row row 2 (blank lines are not rows).
 *
 * Ownership: xd_csv_table_read() fills caller storage that
 * xd_csv_table_dispose() frees.
 */
#ifndef XD_CSV_TABLE_H
#define XD_CSV_TABLE_H

#include <stddef.h>

struct xd_buf;

#define XD_CSV_TABLE_MAX_ROWS 1000000
#define XD_CSV_TABLE_MAX_COLS 256

struct xd_csv_table {
    char **head; /* ncols column names, trimmed of spaces */
    size_t ncols;
    char **cells; /* nrows * ncols cells; a short row's missing cells are "" */
    size_t nrows; /* data rows (the header not counted) */
};

/*
 * Reads buf. Returns 0, XD_EPARSE with one line in err naming the row (bad
 * quoting, no header, a row with more cells than the header, invalid UTF-8
 * is let through as bytes), XD_ELIMIT (too many rows or columns), XD_ENOMEM.
 */
int xd_csv_table_read(const char *buf, size_t len, struct xd_csv_table *t, struct xd_buf *err);
void xd_csv_table_dispose(struct xd_csv_table *t);
/* The index of the column named name (exact, case-insensitive), or -1. */
int xd_csv_table_col(const struct xd_csv_table *t, const char *name);
/* Cell (row 0 = first data row, col); "" when col < 0. */
const char *xd_csv_table_cell(const struct xd_csv_table *t, size_t row, int col);

#endif
