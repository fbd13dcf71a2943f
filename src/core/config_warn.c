/*
 * Warnings about a valid configuration (see xd_config_warnings in
 * config.h): choices the hub accepts but that an auditor must see every
 * time, so they are said wherever someone looks, not once in a log.
 */
#include "core/config.h"

#include <stdio.h>

void xd_config_warnings(const struct xd_config *cfg, xd_config_warn_fn *fn, void *ctx)
{
    char msg[300];
    for (size_t i = 0; i < cfg->ntargets; i++) {
        const struct xd_target *t = &cfg->targets[i];
        if (t->tls.verify)
            continue;
        snprintf(msg, sizeof msg,
                 "targets.%s.tls.verify is false: the target's TLS certificate and host name "
                 "are not checked; anyone on the network path can read and change deliveries",
                 t->name);
        fn(ctx, &t->tls.verify_pos, msg);
    }
}
