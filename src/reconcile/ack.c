/*
 * Acknowledgment programs, one per target that has one (see ack.h).
 */
#include "reconcile/ack.h"
#include "core/buf.h"
#include "core/config.h"
#include "core/err.h"
#include "transform/transform.h"

#include <stdlib.h>
#include <string.h>

struct xd_acks {
    const struct xd_config *cfg;
    struct xd_jq **progs; /* per cfg->targets[i], NULL when it has no ack */
    size_t n;
};

void xd_acks_destroy(struct xd_acks *a)
{
    if (!a)
        return;
    for (size_t i = 0; i < a->n; i++)
        xd_jq_destroy(a->progs[i]);
    free(a->progs);
    free(a);
}

int xd_acks_create(const struct xd_config *cfg, struct xd_acks **out, struct xd_buf *err)
{
    *out = NULL;
    size_t any = 0;
    for (size_t i = 0; i < cfg->ntargets; i++)
        any += cfg->targets[i].ack != NULL;
    if (!any)
        return 0;
    struct xd_acks *a = calloc(1, sizeof *a);
    if (!a)
        return XD_ENOMEM;
    a->cfg = cfg;
    a->n = cfg->ntargets;
    a->progs = calloc(a->n, sizeof *a->progs);
    if (!a->progs) {
        free(a);
        return XD_ENOMEM;
    }
    for (size_t i = 0; i < a->n; i++) {
        const struct xd_target *t = &cfg->targets[i];
        if (!t->ack)
            continue;
        struct xd_buf msg;
        xd_buf_init(&msg);
        int rc = xd_jq_compile(t->ack, cfg, &a->progs[i], &msg);
        if (rc < 0) {
            if (err)
                xd_buf_printf(err, "targets.%s.ack: %s", t->name, xd_buf_str(&msg));
            xd_buf_dispose(&msg);
            xd_acks_destroy(a);
            return rc;
        }
        xd_buf_dispose(&msg);
    }
    *out = a;
    return 0;
}

void xd_acks_run(struct xd_acks *a, const char *target, const char *body, size_t len,
                 struct xd_buf *out)
{
    xd_buf_reset(out);
    if (!a || !target)
        return;
    struct xd_jq *p = NULL;
    for (size_t i = 0; i < a->n && !p; i++)
        if (a->progs[i] && strcmp(a->cfg->targets[i].name, target) == 0)
            p = a->progs[i];
    if (!p)
        return;
    struct xd_buf err;
    xd_buf_init(&err);
    int rc = body && len ? xd_jq_map_text(p, body, len, out, &err) : XD_EINVAL;
    if (rc < 0) {
        xd_buf_reset(out);
        xd_buf_puts(out, "{\"error\":");
        xd_buf_json_str(out, err.len ? xd_buf_str(&err) : "the answer has no body");
        xd_buf_putc(out, '}');
    }
    xd_buf_dispose(&err);
}
