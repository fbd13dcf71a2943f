/*
 * The hub assembled from a config, in the one order that works:
 * routes -> store (with the routes as its planner) -> dispatcher -> HTTP
 * server. `crossdock serve` and `crossdock demo` both run exactly this, so
 * the demo shows the real hub, not a copy of it.
 *
 * Ownership: xd_hub_start() returns a heap object that borrows cfg (cfg must
 * outlive it); xd_hub_stop() stops in the reverse order (server drained,
 * dispatcher drained, store closed), frees it, and accepts NULL. The fields
 * are there to be read (the demo asks the store and the dispatcher for
 * counts); only this file changes them.
 */
#ifndef XD_HUB_H
#define XD_HUB_H

struct xd_buf;
struct xd_config;
struct xd_dispatcher;
struct xd_inboxes;
struct xd_nats_sources;
struct xd_recon_sched;
struct xd_routes;
struct xd_server;
struct xd_store;
struct xd_watch;

struct xd_hub {
    const struct xd_config *cfg; /* borrowed */
    struct xd_routes *routes;    /* compiled routes, the store's planner */
    struct xd_store *store;
    struct xd_dispatcher *disp;
    struct xd_server *srv;
    struct xd_inboxes *inbox;    /* the watched folders (NULL: none configured) */
    struct xd_watch *watch;      /* holds, SLA clocks, alerts (reconcile/watch.h) */
    struct xd_nats_sources *sources; /* JetStream consumers (NULL: none configured) */
    struct xd_recon_sched *recon; /* reconciliation on a clock (NULL: reconcile.interval_s 0) */
    unsigned short port; /* the port the server listens on (server.listen may say 0) */
};

/*
 * Starts everything cfg describes. Returns 0, or the negative xd_err of the
 * stage that failed with the reason in err (may be NULL; a failing store or
 * dispatcher says so first: "store: ..."). XD_ECONFIG means the config
 * cannot work (routes, store driver or options, listen address): bad input.
 * Nothing is left running on failure.
 */
int xd_hub_start(const struct xd_config *cfg, struct xd_hub **out, struct xd_buf *err);

/* Stops the inbox (the file in hand is finished), the listener (requests in flight
 * finish, up to 30 s), then the dispatcher (attempts in flight finish, up to 10 s),
 * closes the store and frees h. */
void xd_hub_stop(struct xd_hub *h);

#endif
