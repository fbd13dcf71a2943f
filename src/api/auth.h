/*
 * Authentication and limits for the HTTP API (see auth.c). The request
 * functions answer the request themselves (401/403/429) and return -1 when
 * it may not go on; 0 otherwise.
 *
 * The keys in force are a key set: the configuration's keys (secrets from
 * the environment) plus the lines of auth.key_file. xd_auth_reload() builds
 * a new set from the file and swaps it in; a request holds a reference to
 * the set it was authenticated with until it completes, so a key removed
 * by a reload stays valid for the requests already admitted with it, and no
 * longer. Rate limit buckets belong to key ids and outlive reloads.
 */
#ifndef XD_AUTH_H
#define XD_AUTH_H

#include <stddef.h>

struct xd_req;
struct xd_config;
struct xd_buf;
struct xd_auth;

/* One key in force. */
struct xd_api_key {
    const char *id;           /* recorded as the source of its events */
    unsigned scopes;          /* XD_SCOPE_* bits as given (admin implies the others) */
    unsigned rate_limit;      /* requests per second, 0 = none */
    unsigned char sha256[32]; /* of the bearer key */
    const char *secret;       /* for webhook signatures; NULL when only the hash is known */
    struct xd_bucket *bucket; /* its id's token bucket */
};

/*
 * Builds the first key set from cfg (which must outlive it) and its key
 * file. Returns 0, or a negative xd_err with the reasons in err (a key file
 * that cannot be read or has a bad line: FILE:LINE: message).
 */
int xd_auth_create(const struct xd_config *cfg, struct xd_auth **out, struct xd_buf *err);
/*
 * Reads the key file again and puts the new set in force. On failure the
 * set in force stays, and err says why. Returns the number of keys now in
 * force, or a negative xd_err. Any thread.
 */
int xd_auth_reload(struct xd_auth *a, struct xd_buf *err);
void xd_auth_destroy(struct xd_auth *a);

/* With the headers: a Bearer key is checked now; a signature is noted for later. */
int xd_auth_headers(struct xd_req *r);
/* With the body: a signed request is checked now. */
int xd_auth_body(struct xd_req *r);
/* At the request's end: lets go of the key set it held. */
void xd_auth_release(struct xd_req *r);

#endif
