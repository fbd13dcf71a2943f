/*
 * Opening many keyed exceptions at once (store.h xd_store_open_keyed): a
 * reconciliation run may find hundreds of breaks, and waiting for one group
 * commit per break would cost one fsync each. Every exception is submitted
 * as its own request without waiting, so the committer takes them together
 * (one transaction, one fsync), and the caller waits for the last callback.
 */
#include "store/store_int.h"
#include "core/err.h"

#include <pthread.h>
#include <stdlib.h>

struct keyed_batch {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    size_t left;
    int rc; /* the first failure */
};

static void keyed_done(struct xd_append *a, void *arg)
{
    struct keyed_batch *b = arg;
    pthread_mutex_lock(&b->mu);
    if (a->rc < 0 && b->rc == 0)
        b->rc = a->rc;
    if (--b->left == 0)
        pthread_cond_signal(&b->cv);
    pthread_mutex_unlock(&b->mu);
}

int xd_store_open_keyed(struct xd_store *s, const struct xd_keyed_exc *v, size_t n, size_t *opened)
{
    if (opened)
        *opened = 0;
    if (n == 0)
        return 0;
    struct xd_exc_op *ops = calloc(n, sizeof *ops);
    struct xd_append *as = calloc(n, sizeof *as);
    int *flags = calloc(n, sizeof *flags);
    if (!ops || !as || !flags) {
        free(ops);
        free(as);
        free(flags);
        return XD_ENOMEM;
    }
    struct keyed_batch b = {.left = n};
    pthread_mutex_init(&b.mu, NULL);
    pthread_cond_init(&b.cv, NULL);
    for (size_t i = 0; i < n; i++) {
        ops[i] = (struct xd_exc_op){.open = 1,
                                    .key = v[i].key,
                                    .category = v[i].category,
                                    .event_id = v[i].event_id,
                                    .reason = v[i].reason,
                                    .opened = &flags[i]};
        as[i].exc_op = &ops[i];
        as[i].done = keyed_done;
        as[i].arg = &b;
        int rc = xd_store_submit(s, &as[i]);
        if (rc < 0) {
            /* Not queued: its callback will not come. */
            pthread_mutex_lock(&b.mu);
            if (b.rc == 0)
                b.rc = rc;
            b.left -= n - i;
            pthread_mutex_unlock(&b.mu);
            break;
        }
    }
    pthread_mutex_lock(&b.mu);
    while (b.left > 0)
        pthread_cond_wait(&b.cv, &b.mu);
    pthread_mutex_unlock(&b.mu);
    if (opened)
        for (size_t i = 0; i < n; i++)
            *opened += (size_t)flags[i];
    int rc = b.rc;
    pthread_cond_destroy(&b.cv);
    pthread_mutex_destroy(&b.mu);
    free(ops);
    free(as);
    free(flags);
    return rc;
}
