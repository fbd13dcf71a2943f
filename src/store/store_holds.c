/*
 * store/holds.h, driver-agnostic: each call goes to the implementation of
 * the store's driver (holds_int.h), XD_ENOTSUP for a driver without one.
 */
#include "store/holds.h"
#include "core/err.h"
#include "store/holds_int.h"

#include <string.h>

static const struct {
    const char *driver;
    const struct xd_holds_ops *ops;
} by_driver[] = {
    {"sqlite", &xd_sqlite_holds},
    {"postgres", &xd_pg_holds},
};

static const struct xd_holds_ops *ops_of(const struct xd_store *s)
{
    const char *name = xd_store_driver_name(s);
    for (size_t i = 0; i < sizeof by_driver / sizeof by_driver[0]; i++)
        if (strcmp(by_driver[i].driver, name) == 0)
            return by_driver[i].ops;
    return NULL;
}

int xd_store_xref_put(struct xd_store *s, const char *table, const char *key, const char *value,
                      int64_t *released)
{
    const struct xd_holds_ops *h = ops_of(s);
    return h ? h->xref_put(s, table, key, value, released) : XD_ENOTSUP;
}

int xd_store_xref_delete(struct xd_store *s, const char *table, const char *key)
{
    const struct xd_holds_ops *h = ops_of(s);
    return h ? h->xref_delete(s, table, key) : XD_ENOTSUP;
}

int xd_store_xref_list(struct xd_store *s, const char *table,
                       void (*cb)(void *ctx, const char *table, const char *key, const char *value,
                                  int64_t updated_ms),
                       void *ctx)
{
    const struct xd_holds_ops *h = ops_of(s);
    return h ? h->xref_list(s, table, cb, ctx) : XD_ENOTSUP;
}

int xd_store_release_holds(struct xd_store *s, const char *table, const char *key, const char *why,
                           int64_t *released)
{
    const struct xd_holds_ops *h = ops_of(s);
    return h ? h->release_holds(s, table, key, why, released) : XD_ENOTSUP;
}

int xd_store_held(struct xd_store *s,
                  void (*cb)(void *ctx, const char *table, const char *key, int64_t n,
                             int64_t since_ms),
                  void *ctx)
{
    const struct xd_holds_ops *h = ops_of(s);
    return h ? h->held(s, cb, ctx) : XD_ENOTSUP;
}

int xd_store_held_by_target(struct xd_store *s,
                            void (*cb)(void *ctx, const char *target, int64_t n), void *ctx)
{
    const struct xd_holds_ops *h = ops_of(s);
    return h ? h->held_by_target(s, cb, ctx) : XD_ENOTSUP;
}

int xd_store_open_exception_once(struct xd_store *s, const struct xd_exc_new *x, int *opened)
{
    const struct xd_holds_ops *h = ops_of(s);
    return h ? h->open_exception_once(s, x, opened) : XD_ENOTSUP;
}

int xd_store_set_owner_rules(struct xd_store *s, const struct xd_owner_rule *r, size_t n)
{
    const struct xd_holds_ops *h = ops_of(s);
    return h ? h->set_owner_rules(s, r, n) : XD_ENOTSUP;
}

int xd_store_unalerted_categories(struct xd_store *s,
                                  void (*cb)(void *ctx, const char *category, int64_t n,
                                             int64_t max_id),
                                  void *ctx)
{
    const struct xd_holds_ops *h = ops_of(s);
    return h ? h->unalerted_categories(s, cb, ctx) : XD_ENOTSUP;
}

int xd_store_unalerted(struct xd_store *s, const char *category, int64_t max_id, size_t limit,
                       void (*cb)(void *ctx, const struct xd_exc_brief *x), void *ctx)
{
    const struct xd_holds_ops *h = ops_of(s);
    return h ? h->unalerted(s, category, max_id, limit, cb, ctx) : XD_ENOTSUP;
}

int xd_store_mark_alerted(struct xd_store *s, const char *category, int64_t max_id)
{
    const struct xd_holds_ops *h = ops_of(s);
    return h ? h->mark_alerted(s, category, max_id) : XD_ENOTSUP;
}

int xd_store_sla_rows(struct xd_store *s, int64_t after_seq, int64_t due_ms, const char *route,
                      const char *target, size_t limit,
                      void (*cb)(void *ctx, const struct xd_sla_row *r), void *ctx)
{
    const struct xd_holds_ops *h = ops_of(s);
    return h ? h->sla_rows(s, after_seq, due_ms, route, target, limit, cb, ctx) : XD_ENOTSUP;
}

int xd_store_last_seq_before(struct xd_store *s, int64_t ms, int64_t *seq)
{
    const struct xd_holds_ops *h = ops_of(s);
    return h ? h->last_seq_before(s, ms, seq) : XD_ENOTSUP;
}

int xd_store_meta_get(struct xd_store *s, const char *name, int64_t *v)
{
    const struct xd_holds_ops *h = ops_of(s);
    return h ? h->meta_get(s, name, v) : XD_ENOTSUP;
}

int xd_store_meta_set(struct xd_store *s, const char *name, int64_t v)
{
    const struct xd_holds_ops *h = ops_of(s);
    return h ? h->meta_set(s, name, v) : XD_ENOTSUP;
}

int xd_store_kpi_charges(struct xd_store *s, int64_t after_seq,
                         void (*cb)(void *ctx, const struct xd_kpi_charge *c), void *ctx)
{
    const struct xd_holds_ops *h = ops_of(s);
    return h ? h->kpi_charges(s, after_seq, cb, ctx) : XD_ENOTSUP;
}

int xd_store_kpi_receipts(struct xd_store *s, int64_t after_seq,
                          void (*cb)(void *ctx, const struct xd_kpi_charge *c), void *ctx)
{
    const struct xd_holds_ops *h = ops_of(s);
    return h ? h->kpi_receipts(s, after_seq, cb, ctx) : XD_ENOTSUP;
}

int xd_store_kpi_exceptions(struct xd_store *s,
                            void (*cb)(void *ctx, const char *category, const char *warehouse,
                                       const char *customer, int64_t created_ms),
                            void *ctx)
{
    const struct xd_holds_ops *h = ops_of(s);
    return h ? h->kpi_exceptions(s, cb, ctx) : XD_ENOTSUP;
}

int xd_store_kpi_revenue(struct xd_store *s, int64_t after,
                         void (*cb)(void *ctx, int64_t rowid, const char *customer,
                                    const char *warehouse, const char *currency,
                                    const char *amount),
                         void *ctx)
{
    const struct xd_holds_ops *h = ops_of(s);
    return h ? h->kpi_revenue(s, after, cb, ctx) : XD_ENOTSUP;
}
