/*
 * Master-data holds, the router's side: a mapping that fails because an
 * xref entry does not exist yet ("xref TABLE: no entry for KEY", see
 * transform.h) holds its delivery (state held, awaiting_master_data)
 * instead of dead-lettering it; the store keeps what it waits for and
 * opens one master_data exception per missing entry (store/holds.h). The
 * delivery holds its business key's line, so later events of that key wait
 * behind it and order is kept. Adding the entry (PUT /v1/xref, a config
 * reload) releases it; the watch (reconcile/watch.h) also sweeps once a
 * second for holds whose entry exists (a mapping that ran while the entry
 * was being added).
 */
#ifndef XD_HOLD_H
#define XD_HOLD_H

struct xd_buf;
struct xd_store;

/*
 * 1 when err (a mapping's runtime error) says an xref entry is missing: hold,
 * do not fail. Both store drivers keep holds (store/holds.h); s may be NULL.
 */
int xd_hold_wanted(struct xd_store *s, const struct xd_buf *err);

#endif
