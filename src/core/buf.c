/* Growable byte buffer (see buf.h). */
#include "core/buf.h"
#include "core/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void xd_buf_init(struct xd_buf *b)
{
    memset(b, 0, sizeof *b);
}

void xd_buf_dispose(struct xd_buf *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}

void xd_buf_reset(struct xd_buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

int xd_buf_reserve(struct xd_buf *b, size_t extra)
{
    if (b->len + extra + 1 <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->len + extra + 1)
        cap *= 2;
    char *p = realloc(b->data, cap);
    if (!p) {
        b->oom = 1;
        return XD_ENOMEM;
    }
    b->data = p;
    b->cap = cap;
    return 0;
}

int xd_buf_append(struct xd_buf *b, const void *p, size_t n)
{
    if (xd_buf_reserve(b, n) < 0)
        return XD_ENOMEM;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int xd_buf_puts(struct xd_buf *b, const char *s)
{
    return xd_buf_append(b, s, strlen(s));
}

int xd_buf_putc(struct xd_buf *b, char c)
{
    return xd_buf_append(b, &c, 1);
}

int xd_buf_vprintf(struct xd_buf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        return XD_EINVAL;
    if (xd_buf_reserve(b, (size_t)n) < 0)
        return XD_ENOMEM;
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return 0;
}

int xd_buf_printf(struct xd_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = xd_buf_vprintf(b, fmt, ap);
    va_end(ap);
    return rc;
}

int xd_buf_json_strn(struct xd_buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    if (xd_buf_reserve(b, n + 2) < 0)
        return XD_ENOMEM;
    xd_buf_putc(b, '"');
    size_t run = 0; /* start of the pending run of bytes that need no escape */
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        const char *esc = NULL;
        char u[7];
        if (c == '"')
            esc = "\\\"";
        else if (c == '\\')
            esc = "\\\\";
        else if (c == '\n')
            esc = "\\n";
        else if (c == '\r')
            esc = "\\r";
        else if (c == '\t')
            esc = "\\t";
        else if (c < 0x20) {
            u[0] = '\\', u[1] = 'u', u[2] = '0', u[3] = '0';
            u[4] = hex[c >> 4], u[5] = hex[c & 15], u[6] = '\0';
            esc = u;
        }
        if (esc) {
            xd_buf_append(b, s + run, i - run);
            xd_buf_puts(b, esc);
            run = i + 1;
        }
    }
    xd_buf_append(b, s + run, n - run);
    xd_buf_putc(b, '"');
    return b->oom ? XD_ENOMEM : 0;
}

int xd_buf_json_str(struct xd_buf *b, const char *s)
{
    return xd_buf_json_strn(b, s, strlen(s));
}

char *xd_buf_steal(struct xd_buf *b)
{
    char *p = b->data;
    if (!p)
        p = calloc(1, 1);
    memset(b, 0, sizeof *b);
    return p;
}

const char *xd_buf_str(const struct xd_buf *b)
{
    return b->data ? b->data : "";
}
