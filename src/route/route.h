/*
 * Routes: which events go where, in which steps (contract section 6). The
 * config's routes are compiled once into a table the planner consults for
 * every accepted event (on the store's committer thread, so it only matches
 * types: jq filters and mappings run later, on the dispatcher thread).
 *
 * Ownership: xd_routes_create() returns a heap object that borrows cfg (cfg
 * must outlive it); xd_routes_destroy() frees it.
 */
#ifndef XD_ROUTE_H
#define XD_ROUTE_H

#include "core/config.h"
#include "store/store.h"

#include <stddef.h>

struct xd_routes;

int xd_routes_create(const struct xd_config *cfg, struct xd_routes **out, struct xd_buf *err);
void xd_routes_destroy(struct xd_routes *r);

/* The store's planner (store.h xd_planner_fn): first steps of matching routes. */
size_t xd_routes_plan(void *ctx, const struct xd_event *ev, struct xd_dlv_init *out, size_t max);

/* The route named name, or NULL; *index gets its position in cfg->routes. */
const struct xd_route *xd_routes_find(const struct xd_routes *r, const char *name, size_t *index);

/* The step after `step` of route, as a delivery to create; 0 when there is none. */
int xd_routes_next(const struct xd_route *route, unsigned step, struct xd_dlv_init *out);

#endif
