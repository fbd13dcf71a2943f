/*
 * Several nodes on one store: the xref entries added or removed through the
 * API (PUT/DELETE /v1/xref) on one node reach the tables of the others
 * (transform/xref.h) within a tick of their watch (reconcile/watch.h). Each
 * run compares this process's API entries with the store's: an entry the
 * store has (or has with another value) is set at once; one the store lacks
 * is removed when the store still lacks it on the next run, so that an
 * entry this node is adding at this moment (set in the process first, then
 * committed) is never taken away.
 *
 * Ownership: xd_xref_sync_create() returns a heap object (the entries
 * waiting for their second look); xd_xref_sync_destroy() frees it (NULL is
 * fine). One thread uses it.
 */
#ifndef XD_XREF_SYNC_H
#define XD_XREF_SYNC_H

struct xd_store;
struct xd_xref_sync;

struct xd_xref_sync *xd_xref_sync_create(void);
void xd_xref_sync_destroy(struct xd_xref_sync *x);
/* One run: 0, or the store's error (nothing changed then). */
int xd_xref_sync_run(struct xd_xref_sync *x, struct xd_store *s);

#endif
