/*
 * The watch: one thread of the hub that looks for what needs a person
 * before anyone asks (docs/exceptions.md). Once a second it
 *
 *   - releases master-data holds whose xref entry exists now (a mapping
 *     that ran while the entry was being added, a config reload);
 *   - runs the business SLA clocks: an event of a route with
 *     `sla: [{target, within}]` not delivered to that target within
 *     `within` of the hub receiving it opens one exception (category sla,
 *     one per event, route and target, ever);
 *   - tells the alert target (exceptions.alert) about new exceptions, one
 *     message per exception, at most one per category per throttle period
 *     (the rest then go out together as a summary).
 *
 * At start it makes the config's xref tables plus the entries added through
 * the API the tables every jq program sees (transform/xref.h), and stores
 * the owner rules (exceptions.owners) the store routes new exceptions with.
 *
 * Ownership: xd_watch_start() returns a heap object that borrows cfg, store
 * and disp (they must outlive it); xd_watch_stop() joins the thread and
 * frees it (NULL is fine).
 */
#ifndef XD_WATCH_H
#define XD_WATCH_H

struct xd_buf;
struct xd_config;
struct xd_dispatcher;
struct xd_store;
struct xd_watch;

/* XD_ECONFIG (reason in err) when an SLA or the alert names a target that does not fit. */
int xd_watch_start(const struct xd_config *cfg, struct xd_store *store, struct xd_dispatcher *disp,
                   struct xd_watch **out, struct xd_buf *err);
void xd_watch_stop(struct xd_watch *w);

/*
 * Reloads the xref tables and owner rules from the config file at path (a
 * SIGHUP): held deliveries whose entry is now there are released at once.
 * Nothing else of the config changes. Returns 0, or the load's error with
 * its messages in err.
 */
int xd_watch_reload(struct xd_watch *w, const char *path, struct xd_buf *err);
/* The same on the process's running watch (POST /v1/admin/reload); XD_ENOTFOUND: none. */
int xd_watch_reload_current(const char *path, struct xd_buf *err);

#endif
