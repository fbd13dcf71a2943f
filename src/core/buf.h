/*
 * A growable byte buffer, always NUL-terminated. Used to build responses,
 * error messages and SQL. xd_buf_init() on caller storage, xd_buf_dispose()
 * frees the bytes; xd_buf_steal() hands them to the caller (who frees them).
 * Appends return 0 or XD_ENOMEM; after a failed append the buffer keeps what
 * it had, and `oom` stays set so a long sequence can be checked once.
 */
#ifndef XD_BUF_H
#define XD_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct xd_buf {
    char *data;  /* NUL-terminated; NULL until the first append */
    size_t len;  /* bytes used, not counting the NUL */
    size_t cap;  /* bytes allocated */
    int oom;     /* set once an append failed */
};

void xd_buf_init(struct xd_buf *b);
void xd_buf_dispose(struct xd_buf *b);
void xd_buf_reset(struct xd_buf *b); /* len = 0, keeps the allocation */
int xd_buf_reserve(struct xd_buf *b, size_t extra);
int xd_buf_append(struct xd_buf *b, const void *p, size_t n);
int xd_buf_puts(struct xd_buf *b, const char *s);
int xd_buf_putc(struct xd_buf *b, char c);
int xd_buf_printf(struct xd_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
int xd_buf_vprintf(struct xd_buf *b, const char *fmt, va_list ap);
/* Appends s as a JSON string literal, quotes included, escaping as needed. */
int xd_buf_json_str(struct xd_buf *b, const char *s);
int xd_buf_json_strn(struct xd_buf *b, const char *s, size_t n);
/* Returns the bytes (caller frees) and leaves b empty. Never NULL unless oom. */
char *xd_buf_steal(struct xd_buf *b);
const char *xd_buf_str(const struct xd_buf *b); /* "" when empty */

#endif
