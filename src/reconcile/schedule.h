/*
 * The reconciliation report on a clock: with reconcile.interval_s set, a
 * running hub runs the report (report.h, no window, no exports) every
 * interval, so every break becomes an open `reconciliation` exception
 * before anyone asks, and one that went away is resolved. Each run logs
 * one line: "reconciliation: 3 breaks (1 exception opened, 2 resolved)".
 *
 * Ownership: xd_recon_sched_start() returns a heap object (NULL when
 * interval_s is 0: nothing runs); xd_recon_sched_stop() wakes the thread,
 * waits for a run in progress to finish, joins and frees it, and accepts
 * NULL. cfg and store must outlive it.
 */
#ifndef XD_RECONCILE_SCHEDULE_H
#define XD_RECONCILE_SCHEDULE_H

struct xd_config;
struct xd_store;
struct xd_recon_sched;

/* 0 (*out maybe NULL), XD_ENOMEM, or XD_EINTERNAL when the thread cannot start. */
int xd_recon_sched_start(const struct xd_config *cfg, struct xd_store *store,
                         struct xd_recon_sched **out);
void xd_recon_sched_stop(struct xd_recon_sched *s);

#endif
