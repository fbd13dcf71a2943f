/* The dead-letter queue's operations (see dlq.h). */
#include "route/dlq.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REPLAY_PAGE 500 /* bulk replay works through the matches in pages */

static void put_time(struct xd_buf *o, const char *name, int64_t ms)
{
    char when[96];
    xd_iso_ms(when, sizeof when, ms);
    xd_buf_printf(o, ",\"%s\":\"%s\"", name, when);
}

void xd_dlq_json(struct xd_buf *o, const struct xd_stored_dlv *d, int full)
{
    xd_buf_printf(o, "{\"id\":%lld,\"event_id\":", (long long)d->id);
    xd_buf_json_str(o, d->event_id ? d->event_id : "");
    xd_buf_puts(o, ",\"target\":");
    xd_buf_json_str(o, d->target ? d->target : "");
    xd_buf_puts(o, ",\"route\":");
    xd_buf_json_str(o, d->route ? d->route : "");
    xd_buf_printf(o, ",\"step\":%u,\"state\":\"%s\",\"attempts\":%u", d->step,
                  xd_dlv_state_name(d->state), d->attempts);
    if (d->last_status)
        xd_buf_printf(o, ",\"last_status\":%d", d->last_status);
    xd_buf_puts(o, ",\"last_error\":");
    if (d->last_error)
        xd_buf_json_str(o, d->last_error);
    else
        xd_buf_puts(o, "null");
    if (d->error_class) {
        xd_buf_puts(o, ",\"error_class\":");
        xd_buf_json_str(o, d->error_class);
    }
    xd_buf_puts(o, ",\"business_key\":");
    xd_buf_json_str(o, d->bkey ? d->bkey : "");
    put_time(o, "created_at", d->created_ms);
    put_time(o, "updated_at", d->updated_ms);
    if (d->state == XD_DLV_PENDING)
        put_time(o, "next_attempt_at", d->next_ms);
    if (full) {
        xd_buf_puts(o, ",\"payload\":");
        if (d->payload)
            xd_buf_json_str(o, d->payload); /* as sent: a string, it may not be JSON */
        else
            xd_buf_puts(o, "null");
    }
    xd_buf_putc(o, '}');
}

struct attempts_ctx {
    struct xd_buf *o;
    int64_t delivery_id; /* only this delivery's, or 0 for all */
    size_t n;
};

void xd_dlq_json_attempt(struct xd_buf *o, const struct xd_stored_attempt *a)
{
    char when[96];
    xd_iso_ms(when, sizeof when, a->at_ms);
    xd_buf_printf(o, "{\"kind\":\"attempt\",\"delivery_id\":%lld,\"at\":\"%s\",\"outcome\":",
                  (long long)a->delivery_id, when);
    xd_buf_json_str(o, a->outcome ? a->outcome : "");
    xd_buf_puts(o, ",\"target\":");
    xd_buf_json_str(o, a->target ? a->target : "");
    xd_buf_puts(o, ",\"route\":");
    xd_buf_json_str(o, a->route ? a->route : "");
    xd_buf_printf(o, ",\"step\":%u", a->step);
    if (a->status)
        xd_buf_printf(o, ",\"status\":%d", a->status);
    xd_buf_printf(o, ",\"latency_ms\":%.3f", (double)a->latency_us / 1000.0);
    if (a->error) {
        xd_buf_puts(o, ",\"error\":");
        xd_buf_json_str(o, a->error);
    }
    xd_buf_putc(o, '}');
}

static void attempt_row(void *ctx, const struct xd_stored_attempt *a)
{
    struct attempts_ctx *c = ctx;
    if (c->delivery_id && a->delivery_id != c->delivery_id)
        return;
    if (c->n++)
        xd_buf_putc(c->o, ',');
    xd_dlq_json_attempt(c->o, a);
}

int xd_dlq_json_attempts(struct xd_store *s, struct xd_buf *o, int64_t event_seq, int64_t dlv_id)
{
    struct attempts_ctx c = {.o = o, .delivery_id = dlv_id};
    return xd_store_list_attempts(s, event_seq, attempt_row, &c);
}

int xd_dlq_replay_ids(struct xd_store *s, const int64_t *ids, size_t n, const char *who,
                      size_t *applied)
{
    *applied = 0;
    if (n == 0)
        return 0;
    struct xd_outcome_rec *recs = calloc(n, sizeof *recs);
    unsigned char *res = calloc(n, 1);
    if (!recs || !res) {
        free(recs);
        free(res);
        return XD_ENOMEM;
    }
    int64_t now = xd_now_ms();
    char note[160];
    snprintf(note, sizeof note, "replayed by %s", who ? who : "an operator");
    for (size_t i = 0; i < n; i++) {
        recs[i].delivery_id = ids[i];
        recs[i].state = XD_DLV_PENDING;
        recs[i].next_ms = now;
        recs[i].at_ms = now;
        recs[i].outcome = "replayed";
        recs[i].error = note;
        recs[i].only_if_dead = 1;
        recs[i].reset_attempts = 1;
    }
    struct xd_append a = {.outcomes = recs, .noutcomes = n, .results = res};
    int rc = xd_store_append(s, &a);
    for (size_t i = 0; rc == 0 && i < n; i++)
        *applied += res[i];
    free(recs);
    free(res);
    if (rc == 0 && *applied)
        xd_info("replay: %zu delivery(ies) put back in line by %s", *applied,
                who ? who : "an operator");
    return rc;
}

struct ids_ctx {
    int64_t *ids;
    size_t n;
};

static void collect_id(void *ctx, struct xd_stored_dlv *d)
{
    struct ids_ctx *c = ctx;
    c->ids[c->n++] = d->id;
    xd_stored_dlv_dispose(d);
}

int xd_dlq_replay_filter(struct xd_store *s, struct xd_dlv_filter f, const char *who,
                         size_t *applied)
{
    *applied = 0;
    int64_t *ids = malloc(REPLAY_PAGE * sizeof *ids);
    if (!ids)
        return XD_ENOMEM;
    f.state = XD_DLV_DEAD;
    f.limit = REPLAY_PAGE;
    int rc;
    for (;;) {
        struct ids_ctx c = {.ids = ids};
        rc = xd_store_list_deliveries(s, &f, collect_id, &c);
        if (rc < 0 || c.n == 0)
            break;
        size_t done = 0;
        rc = xd_dlq_replay_ids(s, ids, c.n, who, &done);
        if (rc < 0)
            break;
        *applied += done;
        f.after_id = ids[c.n - 1];
        if (c.n < REPLAY_PAGE)
            break;
    }
    free(ids);
    return rc < 0 ? rc : 0;
}
