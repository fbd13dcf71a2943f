/*
 * Inside the store: the operations of store/holds.h as each driver
 * implements them (sqlite_holds.c, postgres_holds.c). store_holds.c picks
 * the table of the store's driver and forwards every xd_store_* call of
 * holds.h to it, so the two drivers' SQL stay in files of their own. The
 * members have the signatures and meaning of the holds.h functions of the
 * same name (xref_put is xd_store_xref_put, ...).
 */
#ifndef XD_STORE_HOLDS_INT_H
#define XD_STORE_HOLDS_INT_H

#include "store/holds.h"

struct xd_holds_ops {
    int (*xref_put)(struct xd_store *s, const char *table, const char *key, const char *value,
                    int64_t *released);
    int (*xref_delete)(struct xd_store *s, const char *table, const char *key);
    int (*xref_list)(struct xd_store *s, const char *table,
                     void (*cb)(void *ctx, const char *table, const char *key, const char *value,
                                int64_t updated_ms),
                     void *ctx);
    int (*release_holds)(struct xd_store *s, const char *table, const char *key, const char *why,
                         int64_t *released);
    int (*held)(struct xd_store *s,
                void (*cb)(void *ctx, const char *table, const char *key, int64_t n,
                           int64_t since_ms),
                void *ctx);
    int (*held_by_target)(struct xd_store *s, void (*cb)(void *ctx, const char *target, int64_t n),
                          void *ctx);
    int (*open_exception_once)(struct xd_store *s, const struct xd_exc_new *x, int *opened);
    int (*set_owner_rules)(struct xd_store *s, const struct xd_owner_rule *r, size_t n);
    int (*unalerted_categories)(struct xd_store *s,
                                void (*cb)(void *ctx, const char *category, int64_t n,
                                           int64_t max_id),
                                void *ctx);
    int (*unalerted)(struct xd_store *s, const char *category, int64_t max_id, size_t limit,
                     void (*cb)(void *ctx, const struct xd_exc_brief *x), void *ctx);
    int (*mark_alerted)(struct xd_store *s, const char *category, int64_t max_id);
    int (*sla_rows)(struct xd_store *s, int64_t after_seq, int64_t due_ms, const char *route,
                    const char *target, size_t limit,
                    void (*cb)(void *ctx, const struct xd_sla_row *r), void *ctx);
    int (*last_seq_before)(struct xd_store *s, int64_t ms, int64_t *seq);
    int (*meta_get)(struct xd_store *s, const char *name, int64_t *v);
    int (*meta_set)(struct xd_store *s, const char *name, int64_t v);
    int (*kpi_charges)(struct xd_store *s, int64_t after_seq,
                       void (*cb)(void *ctx, const struct xd_kpi_charge *c), void *ctx);
    int (*kpi_receipts)(struct xd_store *s, int64_t after_seq,
                        void (*cb)(void *ctx, const struct xd_kpi_charge *c), void *ctx);
    int (*kpi_exceptions)(struct xd_store *s,
                          void (*cb)(void *ctx, const char *category, const char *warehouse,
                                     const char *customer, int64_t created_ms),
                          void *ctx);
    int (*kpi_revenue)(struct xd_store *s, int64_t after,
                       void (*cb)(void *ctx, int64_t rowid, const char *customer,
                                  const char *warehouse, const char *currency, const char *amount),
                       void *ctx);
};
extern const struct xd_holds_ops xd_sqlite_holds;
extern const struct xd_holds_ops xd_pg_holds;

#endif
