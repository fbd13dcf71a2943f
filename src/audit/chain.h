/*
 * The audit log's hash chain: what an entry is, the bytes that are hashed,
 * and the walk that checks a chain. Pure functions over memory: no store, no
 * I/O (the store calls xd_audit_hash() when it appends; `crossdock audit
 * verify` feeds entries read back to a verifier).
 *
 * Chain rule. Entry n (n = 1, 2, 3, ... with no gaps) carries
 *
 *     prev = hash of entry n - 1   (32 zero bytes for entry 1)
 *     hash = SHA-256(prev || canonical(entry n))
 *
 * canonical() is "crossdock-audit-v1\n", then seq and at_ms in decimal, then
 * actor, action, object and detail each as "<byte length>:<bytes>", every
 * item followed by "\n". Length prefixes make the encoding unambiguous (no
 * two different entries have the same bytes), and seq is inside the hash, so
 * an entry cannot be moved to another position without breaking it.
 *
 * What a verifier detects, naming the first bad entry: an edited entry (its
 * hash no longer matches its content), a deleted entry (a gap in seq, and the
 * next entry's prev no longer matches), reordered entries (prev does not
 * match the entry before). Removing entries from the END leaves a shorter
 * chain that is still valid: only an anchor (a head hash recorded elsewhere,
 * checked with xd_audit_verifier.anchor_*) detects that, and so does it a
 * chain rewritten from start to end by someone who can write the database.
 */
#ifndef XD_AUDIT_CHAIN_H
#define XD_AUDIT_CHAIN_H

#include <stddef.h>
#include <stdint.h>

struct xd_buf;

#define XD_AUDIT_HASH_LEN 32

/*
 * One entry. As read from the store every string is a heap copy freed by
 * xd_audit_entry_dispose(); the store's writer fills one with borrowed
 * strings and never disposes it.
 */
struct xd_audit_entry {
    int64_t seq;   /* position in the chain: 1, 2, 3, ... */
    int64_t at_ms; /* when it was committed (unix ms) */
    char *actor;   /* who: an API key id, "local:USER" for a command, "anonymous" */
    char *action;  /* what: "config.load", "delivery.replay", "exception.update", ... */
    char *object;  /* on what: "/v1/exceptions/7", a config path, or "" */
    char *detail;  /* a JSON object with the particulars */
    unsigned char prev[XD_AUDIT_HASH_LEN];
    unsigned char hash[XD_AUDIT_HASH_LEN];
};
void xd_audit_entry_dispose(struct xd_audit_entry *e);

/* Appends the canonical bytes of e (seq, at_ms and the four strings) to out. */
int xd_audit_canonical(const struct xd_audit_entry *e, struct xd_buf *out);
/* out = SHA-256(e->prev || canonical(e)). Returns 0, or XD_ENOMEM / XD_EINTERNAL. */
int xd_audit_hash(const struct xd_audit_entry *e, unsigned char out[XD_AUDIT_HASH_LEN]);

/* Lower-case hex of a hash into out (at least 65 bytes). */
void xd_audit_hex(const unsigned char h[XD_AUDIT_HASH_LEN], char *out);
/* Parses 64 hex digits; 0, or -1 when s is not that. */
int xd_audit_unhex(const char *s, unsigned char out[XD_AUDIT_HASH_LEN]);

/*
 * Checks a chain fed in seq order, one entry at a time. Once an entry is
 * bad the verifier stays bad: bad_seq names the first bad entry and why
 * says what is wrong with it.
 */
struct xd_audit_verifier {
    int64_t n;                             /* entries seen */
    int64_t last_seq;                      /* seq of the last entry seen, 0 before any */
    unsigned char last[XD_AUDIT_HASH_LEN]; /* its hash (zeros before any) */
    int64_t bad_seq;                       /* first bad entry, 0 while the chain is good */
    char why[320];                         /* what is wrong with it */
    /* Optional anchor: entry anchor_seq must exist and have hash anchor (seq 0: none). */
    int64_t anchor_seq;
    unsigned char anchor[XD_AUDIT_HASH_LEN];
    int anchor_seen;
};
void xd_audit_verify_init(struct xd_audit_verifier *v);
/* Feeds the next entry; 0 while the chain is good, -1 once it is not. */
int xd_audit_verify_next(struct xd_audit_verifier *v, const struct xd_audit_entry *e);
/* After the last entry: checks the anchor. 0 when the whole chain is good, else -1. */
int xd_audit_verify_end(struct xd_audit_verifier *v);

#endif
