/*
 * Business KPIs per warehouse and customer, computed from the store
 * (docs/operations.md#kpis): ship-to-charge time (a shipment's occurred_at
 * to billing accepting its charge), receipt-to-post time (a receipt's
 * occurred_at to its first target, the ERP, accepting it), exceptions open
 * by age, revenue charged (exact decimal sums), and what is held for master
 * data. Times are over the events received in the last XD_KPI_WINDOW_MS;
 * revenue is over every charge ever recorded, summed incrementally (each
 * charge is read once per process). A snapshot is kept for a few seconds so
 * that scrapes and the dashboard do not repeat the queries.
 *
 * xd_kpi_get() hands out a snapshot that stays valid until xd_kpi_put().
 */
#ifndef XD_KPI_H
#define XD_KPI_H

#include <stddef.h>
#include <stdint.h>

#define XD_KPI_WINDOW_MS (24 * 3600 * 1000LL)
#define XD_KPI_AGES      4 /* exceptions' age buckets: <1h, 1h-1d, 1d-7d, >7d */

struct xd_store;

struct xd_kpi_times {
    char *warehouse, *customer;
    size_t n;
    double sum_s, p50_s, p95_s, max_s;
};

struct xd_kpi_exc {
    char *category, *warehouse, *customer;
    int64_t by_age[XD_KPI_AGES];
};

struct xd_kpi_revenue {
    char *customer, *warehouse, *currency;
    char amount[64]; /* exact decimal text */
    int64_t charges;
};

struct xd_kpi_held {
    char *table, *key;
    int64_t n, since_ms;
};

struct xd_kpi_snapshot {
    int64_t at_ms;
    struct xd_kpi_times *s2c, *r2p;
    size_t ns2c, nr2p;
    struct xd_kpi_exc *exc;
    size_t nexc;
    struct xd_kpi_revenue *rev;
    size_t nrev;
    struct xd_kpi_held *held;
    size_t nheld;
    int refs;
};

extern const char *const xd_kpi_age_names[XD_KPI_AGES];

/* The current snapshot (computed now when older than a few seconds); NULL when the store failed. */
const struct xd_kpi_snapshot *xd_kpi_get(struct xd_store *s);
void xd_kpi_put(const struct xd_kpi_snapshot *k);

#endif
