/*
 * OAuth 2.0 client credentials for an HTTP target (targets.NAME.auth,
 * RFC 6749 section 4.4): the hub asks the token endpoint for an access
 * token and sends it as `Authorization: Bearer` with every delivery.
 *
 * Off the hot path: each target with OAuth2 has one small thread of its own
 * that fetches tokens (with its own xd_http client), so the dispatcher's
 * thread never waits for a token endpoint. A token is used until shortly
 * before it expires (auth.refresh_margin_s, at most half its lifetime),
 * when the thread fetches the next one while the current one is still
 * handed out. A 401 from the target drops the token it was sent with
 * (xd_oauth_rejected) and the thread fetches a new one. When the endpoint
 * fails, the thread tries again after 1 s, 2 s, ... up to 60 s, and says
 * why in the log; the client secret and the tokens are never logged.
 *
 * Ownership: xd_oauth_create() returns a heap object (and a running thread)
 * for xd_oauth_destroy(). cfg is borrowed and must outlive it.
 * xd_oauth_header() and xd_oauth_rejected() may be called from any thread.
 */
#ifndef XD_DELIVER_OAUTH_H
#define XD_DELIVER_OAUTH_H

#include <stddef.h>
#include <stdint.h>

struct xd_buf;
struct xd_target;
struct xd_oauth;

/* XD_ECONFIG (err: "targets.erp.auth.client_secret_env: X is not set"), XD_ENOMEM. */
int xd_oauth_create(const struct xd_target *cfg, struct xd_oauth **out, struct xd_buf *err);
void xd_oauth_destroy(struct xd_oauth *o);

/*
 * Writes "Authorization: Bearer <token>" into line (cap bytes) and returns
 * 0; XD_EAUTH when there is no valid token yet (one is being fetched: try
 * again shortly), XD_ETOOBIG when line is too small.
 */
int xd_oauth_header(struct xd_oauth *o, char *line, size_t cap);
/* 1 when xd_oauth_header() would give a token now (and asks for one when not). */
int xd_oauth_ready(struct xd_oauth *o);
/*
 * The target answered 401 to a request sent at sent_ms (xd_mono_ms()): the
 * token it carried is dropped, unless a newer one was fetched since.
 */
void xd_oauth_rejected(struct xd_oauth *o, int64_t sent_ms);

#endif
