/* Event ids derived from business documents: see docid.h. */
#include "formats/docid.h"
#include "core/buf.h"
#include "core/sha256.h"


#define KEEP 111 /* characters kept of an id that is too long: 111 + '.' + 16 = 128 */

static int id_char(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '.' || c == '_' || c == ':' || c == '-';
}

void xd_docid_part(struct xd_buf *b, const char *s)
{
    if (b->len)
        xd_buf_putc(b, ':');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (id_char(*p))
            xd_buf_putc(b, (char)*p);
        else if ((*p & 0xc0) != 0x80) /* a continuation byte belongs to the '_' before it */
            xd_buf_putc(b, '_');
    }
}

void xd_docid_finish(struct xd_buf *b)
{
    if (b->oom || b->len <= XD_DOCID_MAX)
        return;
    unsigned char h[XD_SHA256_LEN];
    if (xd_sha256(b->data, b->len, h) < 0) {
        b->oom = 1;
        return;
    }
    b->len = KEEP;
    xd_buf_putc(b, '.');
    for (int i = 0; i < 8; i++)
        xd_buf_printf(b, "%02x", h[i]);
}
