/*
 * crossdock serve: load the config, start the hub (cli/hub.h: routes, store,
 * dispatcher, listener), and on SIGTERM or SIGINT drain and stop. Signals
 * are taken synchronously with sigwait() on the main thread (blocked in
 * every other thread), so no handler runs inside library code.
 */
#include "api/server.h"
#include "audit/audit.h"
#include "cli/cli.h"
#include "cli/hub.h"
#include "core/buf.h"
#include "core/config.h"
#include "core/err.h"
#include "core/log.h"
#include "reconcile/watch.h"

#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

static void warn_line(void *ctx, const struct xd_config_pos *pos, const char *msg)
{
    (void)ctx, (void)pos;
    xd_warn("%s", msg);
}

int xd_cmd_serve(int argc, char **argv)
{
    const char *path = "crossdock.yaml";
    if (xd_cli_config_opt(argc, argv, &path) < 0)
        return xd_cli_usage("serve");
    if (optind != argc)
        return xd_cli_usage("serve");

    struct xd_config *cfg = xd_cli_load_config(path);
    if (!cfg)
        return 2;
    int level = xd_log_level_parse(cfg->log.level ? cfg->log.level : "info");
    xd_log_setup(level < 0 ? XD_LOG_INFO : (enum xd_log_level)level,
                 xd_log_format_is_json(cfg->log.format));

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
    if (cfg->auth.nkeys == 0 && !cfg->auth.key_file)
        xd_warn("auth.keys is empty: the API accepts requests without a key");
    xd_config_warnings(cfg, warn_line, NULL);

    /* Block the stop signals before any thread starts, so only sigwait() sees them. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGHUP); /* reload the key file, the TLS certificate, the xref tables */
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);

    struct xd_buf err;
    xd_buf_init(&err);
    struct xd_hub *hub = NULL;
    int rc = xd_hub_start(cfg, &hub, &err);
    if (rc < 0) {
        xd_error("%s", xd_buf_str(&err));
        rc = rc == XD_ECONFIG ? 2 : 1;
        goto out;
    }
    xd_info("crossdock %s listening on %s://%s (store %s %s)", XD_VERSION,
            xd_server_tls(hub->srv) ? "https" : "http", cfg->server.listen, cfg->store.driver,
            /* a URL may hold a password: not logged */
            strcmp(cfg->store.driver, "postgres") == 0 || !cfg->store.path ? "" : cfg->store.path);
    fprintf(stderr, "listening on port %u\n", hub->port);

    int sig = 0;
    for (;;) {
        sigwait(&stop, &sig);
        if (sig != SIGHUP)
            break;
        struct xd_buf report;
        xd_buf_init(&report);
        if (xd_server_reload(hub->srv, &report) < 0) {
            xd_warn("SIGHUP: %s", xd_buf_str(&report));
        } else {
            xd_info("SIGHUP: %s", xd_buf_str(&report));
            xd_audit_config_load(hub->store, cfg, "reload (SIGHUP)");
        }
        xd_buf_dispose(&report);
        /* The xref tables and exception owners (reconcile/watch.h); held deliveries go. */
        xd_buf_init(&report);
        if (xd_watch_reload(hub->watch, path, &report) == 0)
            xd_info("SIGHUP: xref tables and exception owners reloaded from %s", path);
        else
            xd_warn("SIGHUP: xref tables not reloaded from %s: %s", path, xd_buf_str(&report));
        xd_buf_dispose(&report);
    }
    xd_info("%s: stopping: draining requests in flight", sig == SIGINT ? "SIGINT" : "SIGTERM");
    xd_hub_stop(hub);
    xd_info("stopped cleanly");
out:
    xd_buf_dispose(&err);
    xd_config_destroy(cfg);
    return rc;
}
