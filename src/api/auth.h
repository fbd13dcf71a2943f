/*
 * Authentication and limits for the HTTP API (see auth.c). Both functions
 * answer the request themselves (401/403/429) and return -1 when it may not
 * go on; 0 otherwise.
 */
#ifndef XD_AUTH_H
#define XD_AUTH_H

struct xd_req;
struct xd_config;
struct xd_limits;

/* With the headers: a Bearer key is checked now; a signature is noted for later. */
int xd_auth_headers(struct xd_req *r);
/* With the body: a signed request is checked now. */
int xd_auth_body(struct xd_req *r);

/* Token buckets of the keys' rate limits (cfg->auth.keys[i].rate_limit). */
struct xd_limits *xd_limits_create(const struct xd_config *cfg);
void xd_limits_destroy(struct xd_limits *l);

#endif
