/*
 * Intake: from bytes to prepared canonical events, shared by the HTTP API,
 * `crossdock ingest` and `crossdock convert`. A body is parsed once
 * (formats/json.h), each event validated and normalised (ingest/event.h);
 * the result is either a list of events ready for xd_store_submit() or a
 * list of errors with JSON paths. Nothing here touches the store.
 *
 * Ownership: xd_intake_init() on caller storage, xd_intake_dispose() frees
 * the parsed trees, the prepared events and the errors.
 */
#ifndef XD_INTAKE_H
#define XD_INTAKE_H

#include "formats/json.h"
#include "ingest/event.h"

#include <stddef.h>

struct xd_intake_limits {
    size_t max_batch;   /* most events in one body */
    unsigned max_depth; /* JSON nesting */
    size_t max_string;  /* longest JSON string */
};

struct xd_intake {
    struct xd_intake_limits lim;
    const char *default_source; /* an event's source when it has none */
    cJSON **roots;              /* parsed documents (owned) */
    struct xd_json_arena arena; /* where the parsed trees and added defaults live */
    size_t nroots, roots_cap;
    int heap_trees;             /* a root came from xd_intake_add_tree: free trees node by node */
    struct xd_event *events; /* prepared events, in input order */
    size_t n, cap;
    struct xd_verrs errs;    /* every problem found, with its path */
    int status;              /* 0, or the HTTP status for the first failure kind: 400, 413 */
    int has_offset;          /* a JSON syntax error: offset is its byte offset */
    size_t offset;
};

void xd_intake_init(struct xd_intake *in, const struct xd_intake_limits *lim,
                    const char *default_source);
void xd_intake_dispose(struct xd_intake *in);

/*
 * Adds a request body: one event object, or {"events":[...]} (a batch), or a
 * JSON array of events. Paths in errors are "events[i]..." for batches and
 * "[i]..." for arrays. Returns 0 when everything in it is valid, XD_EPARSE /
 * XD_ESCHEMA / XD_ETOOBIG (errors recorded), XD_ENOMEM.
 */
int xd_intake_add_body(struct xd_intake *in, const char *body, size_t len);

/*
 * Adds events already parsed (a converter's output: an array of event
 * objects, or one). Takes ownership of root in every case. Paths in errors
 * are "[i]...". Same returns as xd_intake_add_body().
 */
int xd_intake_add_tree(struct xd_intake *in, cJSON *root);

/* Adds JSON lines: one document per non-blank line; error paths start "line N: ". */
int xd_intake_add_lines(struct xd_intake *in, const char *buf, size_t len);

#endif
