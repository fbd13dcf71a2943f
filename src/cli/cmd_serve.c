/*
 * crossdock serve: load the config, open the store, listen, and on SIGTERM
 * or SIGINT drain and stop. Signals are taken synchronously with sigwait()
 * on the main thread (blocked in every other thread), so no handler runs
 * inside library code.
 */
#include "api/server.h"
#include "cli/cli.h"
#include "core/buf.h"
#include "core/config.h"
#include "core/log.h"
#include "route/dispatch.h"
#include "route/route.h"
#include "store/store.h"

#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

int xd_cmd_serve(int argc, char **argv)
{
    const char *path = "crossdock.yaml";
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'}, {0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:", opts, NULL)) != -1) {
        if (c == 'c')
            path = optarg;
        else
            return xd_cli_usage("serve");
    }
    if (optind != argc)
        return xd_cli_usage("serve");

    struct xd_config *cfg = xd_cli_load_config(path);
    if (!cfg)
        return 2;
    int level = xd_log_level_parse(cfg->log.level ? cfg->log.level : "info");
    xd_log_setup(level < 0 ? XD_LOG_INFO : (enum xd_log_level)level,
                 cfg->log.format && strcmp(cfg->log.format, "json") == 0);

    int missing = 0;
    for (size_t i = 0; i < cfg->auth.nkeys; i++) {
        if (!cfg->auth.keys[i].secret || !cfg->auth.keys[i].secret[0]) {
            fprintf(stderr, "%s: auth key '%s': environment variable %s is not set\n", path,
                    cfg->auth.keys[i].id, cfg->auth.keys[i].secret_env);
            missing = 1;
        }
    }
    if (missing) {
        xd_config_destroy(cfg);
        return 2;
    }
    if (cfg->auth.nkeys == 0)
        xd_warn("auth.keys is empty: the API accepts requests without a key");

    /* Block the stop signals before any thread starts, so only sigwait() sees them. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);

    int rc = 1;
    struct xd_buf err;
    xd_buf_init(&err);
    struct xd_store *store = NULL;
    struct xd_server *srv = NULL;
    struct xd_routes *routes = NULL;
    struct xd_dispatcher *disp = NULL;
    if (xd_routes_create(cfg, &routes, &err) < 0) {
        xd_error("%s", xd_buf_str(&err));
        rc = 2;
        goto out;
    }
    if (xd_store_open(cfg, &store, &err) < 0) {
        xd_error("store: %s", xd_buf_str(&err));
        goto out;
    }
    xd_store_set_planner(store, xd_routes_plan, routes);
    if (xd_dispatch_start(cfg, routes, store, &disp, &err) < 0) {
        xd_error("dispatcher: %s", xd_buf_str(&err));
        goto out;
    }
    if (xd_server_start(cfg, store, disp, &srv, &err) < 0) {
        xd_error("%s", xd_buf_str(&err));
        goto out;
    }
    xd_info("crossdock %s listening on http://%s (store %s %s)", XD_VERSION, cfg->server.listen,
            cfg->store.driver, cfg->store.path ? cfg->store.path : "");
    fprintf(stderr, "listening on port %u\n", xd_server_port(srv));

    int sig = 0;
    sigwait(&stop, &sig);
    xd_info("%s: stopping: draining requests in flight", sig == SIGINT ? "SIGINT" : "SIGTERM");
    rc = 0;
out:
    xd_server_stop(srv, 30000);
    xd_dispatch_stop(disp, 10000);
    if (store)
        xd_store_close(store);
    xd_routes_destroy(routes);
    if (rc == 0)
        xd_info("stopped cleanly");
    xd_buf_dispose(&err);
    xd_config_destroy(cfg);
    return rc;
}
