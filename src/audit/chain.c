/*
 * The audit log's hash chain (see chain.h for the rule): the canonical bytes
 * of an entry, its SHA-256, and the verifier that walks a chain.
 */
#include "audit/chain.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/hex.h"

#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CANON_TAG "crossdock-audit-v1\n"

void xd_audit_entry_dispose(struct xd_audit_entry *e)
{
    if (!e)
        return;
    free(e->actor);
    free(e->action);
    free(e->object);
    free(e->detail);
    memset(e, 0, sizeof *e);
}

static void put_field(struct xd_buf *out, const char *s)
{
    size_t n = s ? strlen(s) : 0;
    xd_buf_printf(out, "%zu:", n);
    xd_buf_append(out, s ? s : "", n);
    xd_buf_putc(out, '\n');
}

int xd_audit_canonical(const struct xd_audit_entry *e, struct xd_buf *out)
{
    xd_buf_puts(out, CANON_TAG);
    xd_buf_printf(out, "%lld\n%lld\n", (long long)e->seq, (long long)e->at_ms);
    put_field(out, e->actor);
    put_field(out, e->action);
    put_field(out, e->object);
    put_field(out, e->detail);
    return out->oom ? XD_ENOMEM : 0;
}

int xd_audit_hash(const struct xd_audit_entry *e, unsigned char out[XD_AUDIT_HASH_LEN])
{
    struct xd_buf b;
    xd_buf_init(&b);
    int rc = xd_audit_canonical(e, &b);
    if (rc < 0)
        goto done;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned len = 0;
    int ok = md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) &&
             EVP_DigestUpdate(md, e->prev, XD_AUDIT_HASH_LEN) &&
             EVP_DigestUpdate(md, b.data, b.len) && EVP_DigestFinal_ex(md, out, &len) &&
             len == XD_AUDIT_HASH_LEN;
    EVP_MD_CTX_free(md);
    rc = ok ? 0 : XD_EINTERNAL;
done:
    xd_buf_dispose(&b);
    return rc;
}

void xd_audit_hex(const unsigned char h[XD_AUDIT_HASH_LEN], char *out)
{
    xd_hex(h, XD_AUDIT_HASH_LEN, out);
}

int xd_audit_unhex(const char *s, unsigned char out[XD_AUDIT_HASH_LEN])
{
    return xd_unhex(s, out, XD_AUDIT_HASH_LEN);
}

void xd_audit_verify_init(struct xd_audit_verifier *v)
{
    memset(v, 0, sizeof *v);
}

static int bad(struct xd_audit_verifier *v, int64_t seq, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int bad(struct xd_audit_verifier *v, int64_t seq, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    v->bad_seq = seq;
    vsnprintf(v->why, sizeof v->why, fmt, ap);
    va_end(ap);
    return -1;
}

/*
 * Order of the checks: position first (a gap means entries were deleted;
 * the first missing one is named), then the link to the entry before (a
 * mismatch means entries were reordered, removed or inserted, or the one
 * before was rewritten with a fresh hash), then the entry's own content.
 */
int xd_audit_verify_next(struct xd_audit_verifier *v, const struct xd_audit_entry *e)
{
    if (v->bad_seq)
        return -1;
    v->n++;
    int64_t want = v->last_seq + 1;
    if (e->seq != want) {
        if (e->seq > want)
            return bad(v, want,
                       "missing: the log goes from entry %lld to entry %lld (entries deleted)",
                       (long long)v->last_seq, (long long)e->seq);
        return bad(v, e->seq, "out of order: found after entry %lld", (long long)v->last_seq);
    }
    if (memcmp(e->prev, v->last, XD_AUDIT_HASH_LEN) != 0) {
        if (e->seq == 1)
            return bad(v, e->seq,
                       "does not start the chain (its prev hash is not zero): entries before it "
                       "were removed or it was moved");
        return bad(v, e->seq,
                   "does not follow entry %lld (its prev hash differs from that entry's hash): "
                   "entries were reordered, removed or inserted, or entry %lld was rewritten",
                   (long long)v->last_seq, (long long)v->last_seq);
    }
    unsigned char h[XD_AUDIT_HASH_LEN];
    if (xd_audit_hash(e, h) < 0)
        return bad(v, e->seq, "cannot compute its hash (out of memory)");
    if (memcmp(h, e->hash, XD_AUDIT_HASH_LEN) != 0)
        return bad(v, e->seq, "its content does not match its hash: the entry was edited");
    if (v->anchor_seq && e->seq == v->anchor_seq) {
        v->anchor_seen = 1;
        if (memcmp(e->hash, v->anchor, XD_AUDIT_HASH_LEN) != 0)
            return bad(v, e->seq,
                       "its hash differs from the anchor recorded for it: the chain was "
                       "rewritten up to here");
    }
    v->last_seq = e->seq;
    memcpy(v->last, e->hash, XD_AUDIT_HASH_LEN);
    return 0;
}

int xd_audit_verify_end(struct xd_audit_verifier *v)
{
    if (v->bad_seq)
        return -1;
    if (v->anchor_seq && !v->anchor_seen)
        return bad(v, v->anchor_seq,
                   "missing: the anchor names it but the log ends at entry %lld (entries "
                   "removed from the end)",
                   (long long)v->last_seq);
    return 0;
}
