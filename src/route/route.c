/*
 * The route table (see route.h). Matching is by event type only: each route
 * has a bit mask of the types in its `on` list, so planning an event is one
 * pass over the routes with no allocation.
 */
#include "route/route.h"
#include "core/buf.h"
#include "core/err.h"
#include "ingest/event.h"

#include <stdlib.h>
#include <string.h>

struct xd_routes {
    const struct xd_config *cfg;
    unsigned *types; /* per route: bit (1 << xd_event_type) for each type in `on` */
};

int xd_routes_create(const struct xd_config *cfg, struct xd_routes **out, struct xd_buf *err)
{
    struct xd_routes *r = calloc(1, sizeof *r);
    if (!r)
        return XD_ENOMEM;
    r->cfg = cfg;
    r->types = calloc(cfg->nroutes ? cfg->nroutes : 1, sizeof *r->types);
    if (!r->types) {
        free(r);
        return XD_ENOMEM;
    }
    for (size_t i = 0; i < cfg->nroutes; i++) {
        const struct xd_route *rt = &cfg->routes[i];
        for (size_t k = 0; k < rt->non; k++) {
            int t = xd_event_type_parse(rt->on[k]);
            if (t < 0) {
                if (err)
                    xd_buf_printf(err, "route %s: unknown event type '%s'", rt->name, rt->on[k]);
                xd_routes_destroy(r);
                return XD_ECONFIG;
            }
            r->types[i] |= 1u << t;
        }
    }
    *out = r;
    return 0;
}

void xd_routes_destroy(struct xd_routes *r)
{
    if (!r)
        return;
    free(r->types);
    free(r);
}

/* A step as a delivery: its target, or "" for a local step (rate). */
static void step_init(const struct xd_route *rt, unsigned step, struct xd_dlv_init *out)
{
    out->route = rt->name;
    out->step = step;
    out->target = rt->steps[step].deliver ? rt->steps[step].deliver : "";
}

size_t xd_routes_plan(void *ctx, const struct xd_event *ev, struct xd_dlv_init *out, size_t max)
{
    const struct xd_routes *r = ctx;
    size_t n = 0;
    unsigned bit = 1u << ev->type;
    for (size_t i = 0; i < r->cfg->nroutes && n < max; i++) {
        const struct xd_route *rt = &r->cfg->routes[i];
        if ((r->types[i] & bit) && rt->nsteps > 0)
            step_init(rt, 0, &out[n++]);
    }
    return n;
}

const struct xd_route *xd_routes_find(const struct xd_routes *r, const char *name, size_t *index)
{
    for (size_t i = 0; i < r->cfg->nroutes; i++) {
        if (strcmp(r->cfg->routes[i].name, name) == 0) {
            if (index)
                *index = i;
            return &r->cfg->routes[i];
        }
    }
    return NULL;
}

int xd_routes_next(const struct xd_route *route, unsigned step, struct xd_dlv_init *out)
{
    if (step + 1 >= route->nsteps)
        return 0;
    step_init(route, step + 1, out);
    return 1;
}
