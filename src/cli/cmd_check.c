/*
 * crossdock check: validates a config file. Errors come from the loader as
 * FILE:LINE:COL: message; later areas (routes' jq programs, rate cards) add
 * their checks here as they land.
 */
#include "cli/cli.h"
#include "core/config.h"

#include <getopt.h>
#include <stdio.h>

int xd_cmd_check(int argc, char **argv)
{
    const char *path = "crossdock.yaml";
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'}, {0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:", opts, NULL)) != -1) {
        if (c == 'c')
            path = optarg;
        else
            return xd_cli_usage("check");
    }
    if (optind < argc)
        path = argv[optind++];
    if (optind != argc)
        return xd_cli_usage("check");

    struct xd_config *cfg = xd_cli_load_config(path);
    if (!cfg)
        return 2;
    for (size_t i = 0; i < cfg->auth.nkeys; i++)
        if (!cfg->auth.keys[i].secret)
            fprintf(stderr, "%s:%u:%u: warning: key '%s': environment variable %s is not set\n",
                    path, cfg->auth.keys[i].pos.line, cfg->auth.keys[i].pos.col,
                    cfg->auth.keys[i].id, cfg->auth.keys[i].secret_env);
    printf("%s: ok (%zu targets, %zu routes, %zu rate cards)\n", path, cfg->ntargets,
           cfg->nroutes, cfg->nrate_cards);
    xd_config_destroy(cfg);
    return 0;
}
