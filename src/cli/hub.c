/*
 * Assembling and stopping the hub (hub.h): the sequence `crossdock serve`
 * and `crossdock demo` share. Each stage needs the one before it: the store
 * plans an accepted event's first deliveries with the compiled routes, the
 * dispatcher reads deliveries from the store, and the server nudges the
 * dispatcher when intake commits. Stopping runs the other way round so that
 * nothing is used after it is gone.
 */
#include "cli/hub.h"
#include "api/server.h"
#include "audit/audit.h"
#include "core/buf.h"
#include "core/config.h"
#include "core/err.h"
#include "ingest/inbox.h"
#include "reconcile/watch.h"
#include "ingest/nats_source.h"
#include "reconcile/schedule.h"
#include "route/dispatch.h"
#include "route/route.h"
#include "store/store.h"

#include <stdlib.h>

int xd_hub_start(const struct xd_config *cfg, struct xd_hub **out, struct xd_buf *err)
{
    *out = NULL;
    struct xd_hub *h = calloc(1, sizeof *h);
    if (!h)
        return XD_ENOMEM;
    h->cfg = cfg;
    struct xd_buf why; /* the failing stage's reason, before it goes to err with its prefix */
    xd_buf_init(&why);
    const char *stage = "";
    int rc = xd_routes_create(cfg, &h->routes, &why);
    if (rc < 0)
        goto fail;
    stage = "store: ";
    rc = xd_store_open(cfg, &h->store, &why);
    if (rc < 0)
        goto fail;
    xd_store_set_planner(h->store, xd_routes_plan, h->routes);
    xd_audit_config_load(h->store, cfg, "start"); /* before the first request can arrive */
    stage = "dispatcher: ";
    rc = xd_dispatch_start(cfg, h->routes, h->store, &h->disp, &why);
    if (rc < 0)
        goto fail;
    stage = "";
    rc = xd_watch_start(cfg, h->store, h->disp, &h->watch, &why);
    if (rc < 0)
        goto fail;
    rc = xd_server_start(cfg, h->store, h->disp, &h->srv, &why);
    if (rc < 0)
        goto fail;
    h->port = xd_server_port(h->srv);
    rc = xd_inbox_start(cfg, h->store, h->disp, &h->inbox, &why);
    if (rc < 0)
        goto fail;
    rc = xd_nats_sources_start(cfg, h->store, h->disp, &h->sources, &why);
    if (rc < 0)
        goto fail;
    stage = "reconcile: ";
    rc = xd_recon_sched_start(cfg, h->store, &h->recon);
    if (rc < 0)
        goto fail;
    xd_buf_dispose(&why);
    *out = h;
    return 0;
fail:
    if (err)
        xd_buf_printf(err, "%s%s", stage, why.len ? why.data : xd_strerror(rc));
    xd_buf_dispose(&why);
    xd_hub_stop(h);
    return rc;
}

void xd_hub_stop(struct xd_hub *h)
{
    if (!h)
        return;
    xd_nats_sources_stop(h->sources);
    xd_recon_sched_stop(h->recon);
    xd_inbox_stop(h->inbox);
    xd_server_stop(h->srv, 30000);
    xd_watch_stop(h->watch);
    xd_dispatch_stop(h->disp, 10000);
    if (h->store)
        xd_store_close(h->store);
    xd_routes_destroy(h->routes);
    free(h);
}
