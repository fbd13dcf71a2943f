/*
 * NATS JetStream sources (the config's `sources` of type nats; docs/nats.md).
 * One thread per source reads a durable pull consumer in a fetch loop and
 * takes each message's data as one canonical event, validated exactly as
 * `POST /v1/events` validates a single event.
 *
 * The rule that keeps events from being lost: a message is acknowledged only
 * after its event is committed (the store's done callback has said so). A
 * crash between the commit and the ack makes JetStream deliver it again; the
 * event id is then a duplicate, which is acknowledged and stored nothing.
 * The messages of one fetch are submitted together, so they share the store's
 * group commit (one fsync).
 *
 * The `Nats-Msg-Id` header gives the event its event_id when the event has
 * none, and must equal it when it has one. A message that cannot be an event
 * (malformed, invalid, an id mismatch, a conflict with a stored event) opens
 * an exception of category `rejected_message` naming the stream sequence and
 * every problem, is logged, and is terminated (never delivered again). When
 * the store cannot take events (full, read-only, unavailable) the messages
 * are negatively acknowledged with a delay and come back.
 *
 * Ownership: xd_nats_sources_start() returns a heap object (NULL when the
 * config has no source) that borrows cfg, store and disp; they must outlive
 * it. xd_nats_sources_stop() lets the fetch in hand finish (acks included),
 * joins the threads, closes the connections and frees it; it accepts NULL.
 * Stop it before the store is closed.
 */
#ifndef XD_INGEST_NATS_SOURCE_H
#define XD_INGEST_NATS_SOURCE_H

struct xd_buf;
struct xd_config;
struct xd_dispatcher;
struct xd_nats_sources;
struct xd_store;

/*
 * Starts one thread per source. Connecting, finding the stream and creating
 * the consumer happen in the thread, again and again until they work: a NATS
 * cluster that is down does not stop the hub. Returns 0, XD_ENOMEM, or
 * XD_ECONFIG with the reason in err.
 */
int xd_nats_sources_start(const struct xd_config *cfg, struct xd_store *store,
                          struct xd_dispatcher *disp, struct xd_nats_sources **out,
                          struct xd_buf *err);

void xd_nats_sources_stop(struct xd_nats_sources *s);

#endif
