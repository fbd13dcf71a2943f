/*
 * CSV as a table of text (csv_table.h). libcsv splits the cells; this file
 * only keeps them: the first record is the header, every later one a row.
 */
#include "formats/csv_table.h"
#include "core/buf.h"
#include "core/err.h"

#include <csv.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct tab_reader {
    struct xd_csv_table *t;
    char **rec; /* the current record's cells */
    size_t nrec, cap;
    size_t rowcap;  /* rows allocated in t->cells */
    size_t records; /* records seen, the header included */
    int rc;         /* first failure */
    struct xd_buf *err;
};

static void on_cell(void *s, size_t len, void *data)
{
    struct tab_reader *r = data;
    if (r->rc < 0)
        return;
    if (r->nrec == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 16;
        if (cap > XD_CSV_TABLE_MAX_COLS + 1)
            cap = XD_CSV_TABLE_MAX_COLS + 1;
        if (r->nrec >= cap) {
            if (r->err)
                xd_buf_printf(r->err, "row %zu: more than %d columns", r->records + 1,
                              XD_CSV_TABLE_MAX_COLS);
            r->rc = XD_ELIMIT;
            return;
        }
        char **v = realloc(r->rec, cap * sizeof *v);
        if (!v) {
            r->rc = XD_ENOMEM;
            return;
        }
        r->rec = v;
        r->cap = cap;
    }
    char *c = malloc(len + 1);
    if (!c) {
        r->rc = XD_ENOMEM;
        return;
    }
    if (len)
        memcpy(c, s, len);
    c[len] = '\0';
    r->rec[r->nrec++] = c;
}

static char *trimmed(char *s)
{
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        s[--n] = '\0';
    size_t i = 0;
    while (s[i] == ' ' || s[i] == '\t')
        i++;
    if (i)
        memmove(s, s + i, n - i + 1);
    return s;
}

static void drop_record(struct tab_reader *r)
{
    for (size_t i = 0; i < r->nrec; i++)
        free(r->rec[i]);
    r->nrec = 0;
}

static void on_row(int term, void *data)
{
    (void)term;
    struct tab_reader *r = data;
    struct xd_csv_table *t = r->t;
    if (r->rc < 0)
        goto out;
    int blank = 1;
    for (size_t i = 0; i < r->nrec && blank; i++)
        blank = r->rec[i][0] == '\0';
    if (blank)
        goto out;
    r->records++;
    if (!t->head) {
        t->head = r->rec;
        t->ncols = r->nrec;
        for (size_t i = 0; i < t->ncols; i++)
            trimmed(t->head[i]);
        r->rec = NULL;
        r->nrec = r->cap = 0;
        return;
    }
    if (r->nrec > t->ncols) {
        if (r->err)
            xd_buf_printf(r->err, "row %zu: %zu cells, the header has %zu columns", r->records,
                          r->nrec, t->ncols);
        r->rc = XD_EPARSE;
        goto out;
    }
    if (t->nrows >= XD_CSV_TABLE_MAX_ROWS) {
        if (r->err)
            xd_buf_printf(r->err, "row %zu: more than %d rows", r->records, XD_CSV_TABLE_MAX_ROWS);
        r->rc = XD_ELIMIT;
        goto out;
    }
    if (t->nrows == r->rowcap) {
        size_t cap = r->rowcap ? r->rowcap * 2 : 64;
        char **v = realloc(t->cells, cap * t->ncols * sizeof *v);
        if (!v) {
            r->rc = XD_ENOMEM;
            goto out;
        }
        t->cells = v;
        r->rowcap = cap;
    }
    char **row = t->cells + t->nrows * t->ncols;
    for (size_t i = 0; i < t->ncols; i++) {
        row[i] = i < r->nrec ? r->rec[i] : strdup("");
        if (!row[i]) {
            for (size_t k = 0; k < i; k++)
                free(row[k]);
            for (size_t k = i + 1; k < r->nrec; k++)
                free(r->rec[k]);
            r->nrec = 0;
            r->rc = XD_ENOMEM;
            return;
        }
        trimmed(row[i]);
    }
    t->nrows++;
    r->nrec = 0;
    return;
out:
    drop_record(r);
}

int xd_csv_table_read(const char *buf, size_t len, struct xd_csv_table *t, struct xd_buf *err)
{
    memset(t, 0, sizeof *t);
    struct tab_reader r = {.t = t, .err = err};
    struct csv_parser p;
    if (csv_init(&p, CSV_STRICT | CSV_STRICT_FINI) != 0)
        return XD_ENOMEM;
    /* A UTF-8 byte order mark is not part of the first column's name. */
    if (len >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0) {
        buf += 3;
        len -= 3;
    }
    size_t done = csv_parse(&p, buf, len, on_cell, on_row, &r);
    if (done == len && r.rc == 0)
        csv_fini(&p, on_cell, on_row, &r);
    if (r.rc == 0 && csv_error(&p) != CSV_SUCCESS) {
        if (err)
            xd_buf_printf(err, "row %zu: %s", r.records + 1, csv_strerror(csv_error(&p)));
        r.rc = XD_EPARSE;
    }
    csv_free(&p);
    drop_record(&r);
    free(r.rec);
    if (r.rc == 0 && !t->head) {
        if (err)
            xd_buf_puts(err, "row 1: no header row");
        r.rc = XD_EPARSE;
    }
    if (r.rc < 0)
        xd_csv_table_dispose(t);
    return r.rc;
}

void xd_csv_table_dispose(struct xd_csv_table *t)
{
    for (size_t i = 0; t->head && i < t->ncols; i++)
        free(t->head[i]);
    for (size_t i = 0; t->cells && i < t->nrows * t->ncols; i++)
        free(t->cells[i]);
    free(t->head);
    free(t->cells);
    memset(t, 0, sizeof *t);
}

int xd_csv_table_col(const struct xd_csv_table *t, const char *name)
{
    for (size_t i = 0; name && i < t->ncols; i++)
        if (strcasecmp(t->head[i], name) == 0)
            return (int)i;
    return -1;
}

const char *xd_csv_table_cell(const struct xd_csv_table *t, size_t row, int col)
{
    if (col < 0 || (size_t)col >= t->ncols || row >= t->nrows)
        return "";
    return t->cells[row * t->ncols + (size_t)col];
}
