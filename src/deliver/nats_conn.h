/*
 * Connections to a NATS cluster, shared by the JetStream source
 * (ingest/nats_source.c) and the NATS target (deliver/nats_target.c). Only
 * these three files include nats.h.
 *
 * A connection is made in the background when no server answers yet
 * (RetryOnFailedConnect), reconnects forever, and tries the servers in the
 * given order first: the hub starts, and keeps serving HTTP, while NATS is
 * down; JetStream calls then fail with a status the caller classifies and
 * retries.
 *
 * The cnats library is opened with the first connection and closed with the
 * last (nats_CloseAndWait), so a stopped hub leaves no library threads or
 * memory behind.
 *
 * Ownership: xd_nats_connect() returns a connection for xd_nats_disconnect(),
 * which closes and destroys it (NULL is a no-op).
 */
#ifndef XD_DELIVER_NATS_CONN_H
#define XD_DELIVER_NATS_CONN_H

#include <nats/nats.h>
#include <stddef.h>

struct xd_buf;

#define XD_NATS_DEFAULT_URL "nats://127.0.0.1:4222"

/*
 * Connects to servers[0..n) (or url when n is 0, or XD_NATS_DEFAULT_URL when
 * both are absent), naming the connection `name` for the servers' monitoring.
 * Returns 0 (possibly not yet connected), XD_ENOMEM, or XD_ECONFIG with a
 * reason in err (a malformed URL).
 */
int xd_nats_connect(char *const *servers, size_t n, const char *url, const char *name,
                    natsConnection **out, struct xd_buf *err);
void xd_nats_disconnect(natsConnection *nc);

#endif
