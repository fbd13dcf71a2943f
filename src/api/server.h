/*
 * The HTTP listener (libmicrohttpd, epoll, a pool of worker threads).
 * xd_server_start() binds server.listen and serves until xd_server_stop(),
 * which stops accepting, lets every request in flight finish (at most
 * drain_ms), then closes. The store must outlive the server.
 */
#ifndef XD_SERVER_H
#define XD_SERVER_H

struct xd_config;
struct xd_store;
struct xd_buf;
struct xd_server;
struct xd_dispatcher;

/* dispatcher (may be NULL) is nudged whenever intake commits new events. */
int xd_server_start(const struct xd_config *cfg, struct xd_store *store,
                    struct xd_dispatcher *dispatcher, struct xd_server **out, struct xd_buf *err);
unsigned short xd_server_port(const struct xd_server *s);
void xd_server_stop(struct xd_server *s, unsigned drain_ms);
/*
 * Reads the key file and the TLS certificate and key again (SIGHUP,
 * POST /v1/admin/reload). What fails to load leaves what is in force in
 * place. One line for the log in report ("2 keys in force; certificate
 * reloaded: CN=..."). Returns 0, or the first negative xd_err. Any thread.
 */
int xd_server_reload(struct xd_server *s, struct xd_buf *report);
/* 1 when the listener speaks HTTPS. */
int xd_server_tls(const struct xd_server *s);

#endif
