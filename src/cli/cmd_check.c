/*
 * crossdock check: validates a config file. Errors come from the loader as
 * FILE:LINE:COL: message; later areas (routes' jq programs, rate cards) add
 * their checks here as they land.
 */
#include "cli/cli.h"
#include "core/buf.h"
#include "core/config.h"
#include "core/err.h"
#include "transform/transform.h"
#include "rating/card.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

static void warn_line(void *ctx, const struct xd_config_pos *pos, const char *msg)
{
    fprintf(stderr, "%s:%u:%u: warning: %s\n", (const char *)ctx, pos->line, pos->col, msg);
}

int xd_cmd_check(int argc, char **argv)
{
    const char *path = "crossdock.yaml";
    if (xd_cli_config_opt(argc, argv, &path) < 0)
        return xd_cli_usage("check");
    if (optind < argc)
        path = argv[optind++];
    if (optind != argc)
        return xd_cli_usage("check");

    struct xd_config *cfg = xd_cli_load_config(path);
    if (!cfg)
        return 2;
    struct xd_buf jq_errs; /* every jq program (filters, maps, `when`) must compile */
    xd_buf_init(&jq_errs);
    int bad = xd_transform_check(cfg, &jq_errs);
    fputs(xd_buf_str(&jq_errs), stderr);
    if (bad < 0)
        fprintf(stderr, "%s: %s\n", path, xd_strerror(bad));
    xd_buf_dispose(&jq_errs);
    struct xd_buf rerrs; /* rate cards: what the loader cannot see (currencies, `when`, ...) */
    xd_buf_init(&rerrs);
    int rated = xd_rating_check(cfg, &rerrs);
    fputs(xd_buf_str(&rerrs), stderr);
    xd_buf_dispose(&rerrs);
    if (rated < 0) {
        xd_config_destroy(cfg);
        return 2;
    }
    for (size_t i = 0; i < cfg->auth.nkeys; i++)
        if (!cfg->auth.keys[i].secret)
            fprintf(stderr, "%s:%u:%u: warning: key '%s': environment variable %s is not set\n",
                    path, cfg->auth.keys[i].pos.line, cfg->auth.keys[i].pos.col,
                    cfg->auth.keys[i].id, cfg->auth.keys[i].secret_env);
    xd_config_warnings(cfg, warn_line, (void *)path);
    for (size_t i = 0; i < cfg->ntargets; i++) {
        const struct xd_target *t = &cfg->targets[i];
        const char *env = t->auth.client_secret_env;
        if (t->auth.type && env && (!getenv(env) || !*getenv(env)))
            fprintf(stderr, "%s:%u:%u: warning: targets.%s.auth: environment variable %s is not set\n",
                    path, t->pos.line, t->pos.col, t->name, env);
    }
    if (bad != 0) { /* after the other checks, so that every problem is listed */
        xd_config_destroy(cfg);
        return 2;
    }
    printf("%s: ok (%zu targets, %zu routes, %zu rate cards)\n", path, cfg->ntargets,
           cfg->nroutes, cfg->nrate_cards);
    xd_config_destroy(cfg);
    return 0;
}
