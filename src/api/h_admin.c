/*
 * Operations that need the `admin` scope: today, putting a rewritten key
 * file and a renewed certificate in force without a restart (the same as
 * SIGHUP). Configuration and cross-reference changes over the API would
 * join them here.
 */
#include "api/http.h"
#include "api/server.h"
#include "core/err.h"
#include "core/log.h"
#include "reconcile/watch.h"

void xd_h_admin_reload(struct xd_req *r)
{
    struct xd_buf report;
    xd_buf_init(&report);
    int rc = xd_server_reload(r->srv, &report);
    if (rc == 0 && r->srv->cfg->path) { /* and the xref tables, as SIGHUP (reconcile/watch.h) */
        struct xd_buf why;
        xd_buf_init(&why);
        int wrc = xd_watch_reload_current(r->srv->cfg->path, &why);
        if (wrc == 0)
            xd_info("reload: xref tables and exception owners reloaded from %s",
                    r->srv->cfg->path);
        else if (wrc != XD_ENOTFOUND)
            xd_warn("reload: xref tables not reloaded from %s: %s", r->srv->cfg->path,
                    xd_buf_str(&why));
        xd_buf_dispose(&why);
    }
    const char *who = r->key ? r->key->id : "anonymous";
    if (rc < 0) {
        xd_warn("reload asked by key '%s': %s", who, xd_buf_str(&report));
        xd_http_problem(r, 422, "reload-failed", "Reload Failed", xd_buf_str(&report), NULL);
    } else {
        xd_info("reload asked by key '%s': %s", who, xd_buf_str(&report));
        xd_buf_reset(&r->out);
        xd_buf_puts(&r->out, "{\"status\":\"reloaded\",\"detail\":");
        xd_buf_json_str(&r->out, xd_buf_str(&report));
        xd_buf_putc(&r->out, '}');
        xd_http_reply_json(r, 200);
    }
    xd_buf_dispose(&report);
}
