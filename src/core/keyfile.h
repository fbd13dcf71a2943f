/*
 * The API key file (auth.key_file): more keys than the configuration's
 * environment-backed ones, in a file an operator can rewrite and make the
 * hub re-read (SIGHUP) without a restart. One key a line:
 *
 *     # id        scopes              secret                       [rate_limit=N]
 *     wms-dc1     events:write        sha256:9f86d081884c7d65...  rate_limit=50
 *     ops-alice   ops,read            s3cr3t-from-the-vault
 *
 * Fields are separated by spaces or tabs; `#` starts a comment line. The
 * secret is either `sha256:` and the 64 hex digits of the SHA-256 of the
 * bearer key (the file then holds no usable secret; such a key cannot
 * check webhook signatures, which need the secret itself) or the secret
 * itself. Several lines may share an id: that is how a key is rotated
 * (old and new secret both valid until the old line is removed).
 *
 * Pure parsing, no global state. Ownership: xd_keyfile_load() returns an
 * array the caller frees with xd_keyfile_free(), which wipes the secrets.
 */
#ifndef XD_CORE_KEYFILE_H
#define XD_CORE_KEYFILE_H

#include <stddef.h>

struct xd_buf;

struct xd_keyfile_entry {
    char *id;
    unsigned scopes;          /* XD_SCOPE_* bits */
    unsigned rate_limit;      /* requests per second, 0 = none */
    unsigned char sha256[32]; /* of the bearer key */
    char *secret;             /* the secret itself, NULL when the file gave its hash */
    unsigned line;            /* 1-based line in the file */
};

/*
 * Reads path. Returns 0 with the entries (maybe none) in *out and *n, or a
 * negative xd_err with one line per problem in errs (may be NULL), each
 * "PATH:LINE: message"; every problem is listed, and nothing is returned
 * when there is any. A file readable by others than its owner is accepted
 * (the hashes are safe to show) but, when it holds a plain secret, *warn is
 * set (may be NULL) so the caller can say so.
 */
int xd_keyfile_load(const char *path, struct xd_keyfile_entry **out, size_t *n, struct xd_buf *errs,
                    int *warn);
/* Parses text as the file's contents (name is used in messages). */
int xd_keyfile_parse(const char *name, const char *text, size_t len, struct xd_keyfile_entry **out,
                     size_t *n, struct xd_buf *errs);
void xd_keyfile_free(struct xd_keyfile_entry *e, size_t n);

#endif
