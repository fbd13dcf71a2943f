/*
 * The reconciliation clock (schedule.h): one thread that sleeps on a
 * condition variable (so a stop wakes it at once) and runs the report.
 */
#include "reconcile/schedule.h"
#include "core/buf.h"
#include "core/config.h"
#include "core/err.h"
#include "core/log.h"
#include "reconcile/report.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

struct xd_recon_sched {
    const struct xd_config *cfg;
    struct xd_store *store;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv; /* CLOCK_MONOTONIC */
    int stopping;      /* guarded by mu */
};

static void run_once(struct xd_recon_sched *s)
{
    struct xd_recon_opts o = {.exceptions = -1};
    struct xd_recon_report r;
    struct xd_buf err;
    xd_buf_init(&err);
    int rc = xd_reconcile(s->cfg, s->store, &o, &r, &err);
    if (rc < 0) {
        xd_warn("reconciliation: %s", err.len ? xd_buf_str(&err) : xd_strerror(rc));
    } else {
        if (r.n || r.exc_resolved)
            xd_info("reconciliation: %zu break%s (%zu exception%s opened, %zu resolved)%s%s",
                    r.n, r.n == 1 ? "" : "s", r.exc_opened, r.exc_opened == 1 ? "" : "s",
                    r.exc_resolved, r.exc_error ? "; exceptions: " : "",
                    r.exc_error ? xd_strerror(r.exc_error) : "");
        xd_recon_report_dispose(&r);
    }
    xd_buf_dispose(&err);
}

static void *loop(void *arg)
{
    struct xd_recon_sched *s = arg;
    pthread_mutex_lock(&s->mu);
    while (!s->stopping) {
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_sec += (time_t)s->cfg->reconcile.interval_s;
        int rc = 0;
        while (!s->stopping && rc != ETIMEDOUT)
            rc = pthread_cond_timedwait(&s->cv, &s->mu, &until);
        if (s->stopping)
            break;
        pthread_mutex_unlock(&s->mu);
        run_once(s);
        pthread_mutex_lock(&s->mu);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

int xd_recon_sched_start(const struct xd_config *cfg, struct xd_store *store,
                         struct xd_recon_sched **out)
{
    *out = NULL;
    if (!cfg->reconcile.interval_s)
        return 0;
    struct xd_recon_sched *s = calloc(1, sizeof *s);
    if (!s)
        return XD_ENOMEM;
    s->cfg = cfg;
    s->store = store;
    pthread_mutex_init(&s->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&s->thread, NULL, loop, s) != 0) {
        pthread_cond_destroy(&s->cv);
        pthread_mutex_destroy(&s->mu);
        free(s);
        return XD_EINTERNAL;
    }
    *out = s;
    return 0;
}

void xd_recon_sched_stop(struct xd_recon_sched *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->mu);
    s->stopping = 1;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->thread, NULL);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    free(s);
}
