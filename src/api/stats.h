/*
 * The dashboard's time series (stats.c): a ring buffer of the last hour, one
 * slot a minute, filled by a sampler thread from the hub's counters.
 * xd_stats_start() returns NULL only when out of memory; xd_stats_stop()
 * joins the thread and frees (NULL is a no-op). The server must outlive it.
 */
#ifndef XD_API_STATS_H
#define XD_API_STATS_H

struct xd_server;
struct xd_stats;

struct xd_stats *xd_stats_start(struct xd_server *srv);
void xd_stats_stop(struct xd_stats *st);

#endif
