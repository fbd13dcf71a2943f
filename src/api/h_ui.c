/*
 * GET /ui (and /ui/, /ui/{file}): the operations dashboard, served from the
 * files embedded in the binary (api/ui_assets.h). The page itself holds no
 * data and needs no key; every figure it shows comes from the API with the
 * key the operator enters (kept in the browser tab's sessionStorage).
 */
#include "api/http.h"
#include "api/ui_assets.h"

#include <string.h>

void xd_h_ui(struct xd_req *r)
{
    const char *name = r->param[0] && strcmp(r->url, "/ui") != 0 ? r->param : "index.html";
    for (unsigned i = 0; i < xd_ui_nassets; i++) {
        if (strcmp(xd_ui_assets[i].name, name) != 0)
            continue;
        xd_buf_reset(&r->out);
        xd_buf_append(&r->out, xd_ui_assets[i].data, xd_ui_assets[i].len);
        xd_http_reply_json(r, 200);
        r->content_type = xd_ui_assets[i].content_type;
        return;
    }
    xd_http_problem(r, 404, "not-found", "Not Found", "no such file in the dashboard", NULL);
}
