/*
 * The listener's certificate (server.tls.cert / server.tls.key), served to
 * libmicrohttpd through MHD_OPTION_HTTPS_CERT_CALLBACK, so that it can be
 * replaced while the hub runs: xd_tls_reload() reads both files again and,
 * when they load and match, the next TLS handshake gets the new pair.
 * Connections already open keep the one they began with.
 *
 * GnuTLS's certificate callback takes no user pointer, so there is one
 * listener certificate per process: the xd_tls most recently created.
 * A replaced pair is freed once no handshake can still be using it (ten
 * minutes later, at the next reload, or at xd_tls_destroy()).
 *
 * Ownership: xd_tls_create() returns a heap object for xd_tls_destroy(),
 * which must come after the MHD daemon is stopped.
 */
#ifndef XD_API_TLS_H
#define XD_API_TLS_H

#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>

struct xd_buf;
struct xd_tls;

/* Loads cert and key; 0, or XD_ECONFIG / XD_ENOMEM with one line in err. */
int xd_tls_create(const char *cert, const char *key, struct xd_tls **out, struct xd_buf *err);
/* Loads the files again; on failure the pair in use stays (err says why). */
int xd_tls_reload(struct xd_tls *t, struct xd_buf *err);
void xd_tls_destroy(struct xd_tls *t);
/* A line for the log: "CN=..., expires 2027-11-28" of the pair in use. */
void xd_tls_describe(struct xd_tls *t, struct xd_buf *out);

/* The callback for MHD_OPTION_HTTPS_CERT_CALLBACK. */
extern gnutls_certificate_retrieve_function2 *const xd_tls_retrieve;

#endif
