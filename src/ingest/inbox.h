/*
 * The watched inbox: one thread that polls the folders of the config's
 * `inbox` list and ingests every complete file dropped there, each as one
 * atomic append, exactly as `crossdock ingest` would (ingest/files.h). After
 * the commit the file is moved to processed/ (X12: its 997 beside it as
 * FILE.997); a file that cannot be accepted goes to rejected/ with
 * FILE.errors (one line per problem: place and message) and opens an
 * exception of category `rejected_file`. docs/inbox.md has the life cycle
 * and what senders must do.
 *
 * Crash safety rests on two facts: the events of a file have ids derived
 * from its business documents (contract section 7), so ingesting a file
 * again stores nothing new (duplicates are a success); and a file leaves the
 * inbox only after its events are committed. A crash between the commit and
 * the move therefore re-ingests the file as duplicates after restart; no
 * order of events ever loses one. Moves are rename(2)s inside one file
 * system, and the folders are fsynced after them.
 *
 * Ownership: xd_inbox_start() returns a heap object (NULL when the config
 * has no inbox) that borrows cfg, store and disp; they must outlive it.
 * xd_inbox_stop() finishes the file in hand, joins the thread and frees it;
 * it accepts NULL. Stop it before the store is closed.
 */
#ifndef XD_INBOX_H
#define XD_INBOX_H

struct xd_buf;
struct xd_config;
struct xd_dispatcher;
struct xd_inboxes;
struct xd_store;

/*
 * Prepares every source (creates path, processed/ and rejected/ as needed;
 * they must be on one file system) and starts the thread. *out is NULL when
 * cfg has no inbox. disp may be NULL (nobody to nudge). Returns 0, or
 * XD_ECONFIG with the reason in err ("inbox 'acme': ./in: cannot create:
 * Permission denied"), XD_ENOMEM.
 */
int xd_inbox_start(const struct xd_config *cfg, struct xd_store *store, struct xd_dispatcher *disp,
                   struct xd_inboxes **out, struct xd_buf *err);

void xd_inbox_stop(struct xd_inboxes *w);

#endif
