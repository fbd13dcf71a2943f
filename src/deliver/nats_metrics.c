/*
 * NATS counters (nats_metrics.h): a fixed table of named entries, filled
 * under a mutex as sources and targets are created; the counters themselves
 * are atomics, so counting takes no lock. Readers look only at the entries
 * published before them (n is read with acquire, written with release after
 * an entry is complete).
 */
#include "deliver/nats_metrics.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

const char *const xd_nats_msg_end_names[XD_NATS_END__COUNT] = {
    [XD_NATS_ACKED] = "acked",
    [XD_NATS_NAKED] = "naked",
    [XD_NATS_TERMINATED] = "terminated",
};

/* "nats" (an unknown status) must stay: unknown outcomes count there. */
const char *const xd_nats_publish_outcomes[] = {
    "ok",        "duplicate", "timeout",   "no_responders", "connect", "tls",       "nomem",
    "too_large", "request",   "forbidden", "js_error",      "nats",    "cancelled",
};
#define NOUTCOMES (sizeof xd_nats_publish_outcomes / sizeof xd_nats_publish_outcomes[0])
const size_t xd_nats_npublish_outcomes = NOUTCOMES;

struct xd_nats_counters {
    int is_target;
    char name[128];
    atomic_ullong fetched;
    atomic_ullong ends[XD_NATS_END__COUNT];
    atomic_ullong publishes[NOUTCOMES];
};

static struct xd_nats_counters table[XD_NATS_METRICS_MAX];
static atomic_size_t ntable;
static pthread_mutex_t table_mu = PTHREAD_MUTEX_INITIALIZER;

static struct xd_nats_counters *lookup(const char *name, int is_target)
{
    struct xd_nats_counters *c = NULL;
    pthread_mutex_lock(&table_mu);
    size_t n = atomic_load_explicit(&ntable, memory_order_relaxed);
    for (size_t i = 0; i < n && !c; i++)
        if (table[i].is_target == is_target && strcmp(table[i].name, name) == 0)
            c = &table[i];
    if (!c && n < XD_NATS_METRICS_MAX) {
        c = &table[n];
        c->is_target = is_target;
        snprintf(c->name, sizeof c->name, "%s", name);
        atomic_store_explicit(&ntable, n + 1, memory_order_release);
    }
    pthread_mutex_unlock(&table_mu);
    return c;
}

struct xd_nats_counters *xd_nats_metrics_source(const char *name)
{
    return lookup(name ? name : "", 0);
}

struct xd_nats_counters *xd_nats_metrics_target(const char *name)
{
    return lookup(name ? name : "", 1);
}

void xd_nats_count_fetched(struct xd_nats_counters *c, size_t n)
{
    if (c)
        atomic_fetch_add(&c->fetched, n);
}

void xd_nats_count_end(struct xd_nats_counters *c, enum xd_nats_msg_end end)
{
    if (c && (unsigned)end < XD_NATS_END__COUNT)
        atomic_fetch_add(&c->ends[end], 1);
}

void xd_nats_count_publish(struct xd_nats_counters *c, const char *outcome)
{
    if (!c)
        return;
    size_t i = 0, other = 0;
    for (; i < NOUTCOMES; i++) {
        if (strcmp(xd_nats_publish_outcomes[i], "nats") == 0)
            other = i;
        if (outcome && strcmp(xd_nats_publish_outcomes[i], outcome) == 0)
            break;
    }
    atomic_fetch_add(&c->publishes[i < NOUTCOMES ? i : other], 1);
}

void xd_nats_metrics_sources(void (*cb)(void *ctx, const char *source, uint64_t fetched,
                                        const uint64_t ends[XD_NATS_END__COUNT]),
                             void *ctx)
{
    size_t n = atomic_load_explicit(&ntable, memory_order_acquire);
    for (size_t i = 0; i < n; i++) {
        struct xd_nats_counters *c = &table[i];
        if (c->is_target)
            continue;
        uint64_t ends[XD_NATS_END__COUNT];
        for (int k = 0; k < XD_NATS_END__COUNT; k++)
            ends[k] = atomic_load(&c->ends[k]);
        cb(ctx, c->name, atomic_load(&c->fetched), ends);
    }
}

void xd_nats_metrics_targets(void (*cb)(void *ctx, const char *target, const uint64_t *by_outcome),
                             void *ctx)
{
    size_t n = atomic_load_explicit(&ntable, memory_order_acquire);
    for (size_t i = 0; i < n; i++) {
        struct xd_nats_counters *c = &table[i];
        if (!c->is_target)
            continue;
        uint64_t v[NOUTCOMES];
        for (size_t k = 0; k < NOUTCOMES; k++)
            v[k] = atomic_load(&c->publishes[k]);
        cb(ctx, c->name, v);
    }
}
