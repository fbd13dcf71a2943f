/*
 * The HTTP API's internals: the request context every handler receives, the
 * route table's shape, and the helpers that build JSON and
 * application/problem+json (RFC 9457) answers. Only api/ includes
 * microhttpd.h.
 *
 * A handler runs on an HTTP worker thread once the whole body is read. It
 * either answers at once (xd_http_reply*) or suspends the connection while
 * the store commits (see h_events.c) and answers when resumed.
 */
#ifndef XD_HTTP_H
#define XD_HTTP_H

#include "api/auth.h"
#include "core/buf.h"
#include "core/config.h"
#include "ingest/intake.h"
#include "store/store.h"

#include <microhttpd.h>
#include <stdatomic.h>

struct xd_server {
    const struct xd_config *cfg;
    struct xd_store *store;
    struct xd_dispatcher *dispatcher; /* nudged after intake commits; may be NULL */
    struct xd_auth *auth;             /* the keys in force and their rate limits (auth.c) */
    struct xd_tls *tls;               /* the listener's certificate, NULL: plain HTTP (tls.c) */
    struct xd_stats *stats;           /* the dashboard's per-minute series (stats.c) */
    struct MHD_Daemon *daemon;
    unsigned short port;     /* the port actually bound */
    atomic_long inflight;    /* requests started and not yet completed */
    atomic_int stopping;     /* set once SIGTERM/SIGINT arrived */
    /* events received, duplicates and intake refusals: ingest/intake_metrics.h */
    atomic_long rejected;    /* requests answered 4xx */
};

struct xd_req;
typedef void (*xd_handler_fn)(struct xd_req *r);

/* One row of the route table (api/server.c). */
struct xd_http_route {
    const char *method;
    const char *pattern;  /* "/v1/events/{id}": {x} matches one path segment */
    unsigned scope;       /* XD_SCOPE_* needed; 0 = open (health checks) */
    int takes_body;       /* 1: a JSON body (415 otherwise); 2: a file (JSON, CSV, X12) */
    xd_handler_fn fn;
};

struct xd_req {
    struct xd_server *srv;
    struct MHD_Connection *conn;
    const struct xd_http_route *route;
    const struct xd_api_key *key; /* the caller's key, NULL when auth is off */
    struct xd_keyset *keyset; /* the key set key belongs to, held until completion */
    int sig_pending;          /* a signed request: checked once the body is in */
    const char *url;
    char param[256];          /* the {x} segment of the pattern, if any */
    struct xd_buf body;
    int over_limit;           /* body grew past server.max_body */

    /* Answer, set by a handler or on resume. */
    unsigned status;
    struct xd_buf out;
    const char *content_type;
    const char *problem;      /* the problem type's slug of an error answer (a literal) */
    char retry_after[16];     /* Retry-After header when non-empty */
    const char *allow;        /* Allow header for 405 */
    char allow_buf[64];
    int answered;             /* status and out are ready to send */
    int sent;                 /* the answer was queued with MHD */

    /* Intake in flight (POST /v1/events). */
    struct xd_intake intake;
    int intake_used;
    struct xd_buf ack;        /* POST /v1/files with X12: the 997s */
    struct xd_append append;
    unsigned char *results;
    char traceparent[56];     /* the request's valid W3C traceparent, normalised, or "" */
    int suspended;            /* waiting for the store */
    atomic_int store_done;    /* the committer called back */
};

/* Answers with a JSON body already in r->out. */
void xd_http_reply_json(struct xd_req *r, unsigned status);
/* Answers with application/problem+json. errs may be NULL. */
void xd_http_problem(struct xd_req *r, unsigned status, const char *slug, const char *title,
                     const char *detail, const struct xd_verrs *errs);

/* 503 with Retry-After for a store that could not answer (rc: a negative xd_err). */
void xd_http_store_error(struct xd_req *r, int rc);
/* The {id} path segment as a positive integer; answers 404 (detail: what) otherwise. */
int xd_http_param_id(struct xd_req *r, const char *what, int64_t *id);

/* 1 when the route table answers method on path (the dashboard asks what this build serves). */
int xd_http_has_route(const char *method, const char *path);

/* Handlers (h_*.c). */
void xd_h_events_post(struct xd_req *r);
void xd_h_events_get(struct xd_req *r);
void xd_h_files_post(struct xd_req *r);
void xd_h_healthz(struct xd_req *r);
void xd_h_readyz(struct xd_req *r);
void xd_h_deliveries_list(struct xd_req *r);
void xd_h_delivery_get(struct xd_req *r);
void xd_h_delivery_replay(struct xd_req *r);
void xd_h_deliveries_replay(struct xd_req *r);

void xd_h_charges_list(struct xd_req *r);
void xd_h_exceptions_list(struct xd_req *r);
void xd_h_exception_get(struct xd_req *r);
void xd_h_exception_patch(struct xd_req *r);
/* An exception as the API shows it (h_charges.c; the event timeline lists them too). */
void xd_exception_json(struct xd_buf *o, const struct xd_exception *x);
void xd_h_billing_close(struct xd_req *r);
void xd_h_metrics(struct xd_req *r);
void xd_h_audit_list(struct xd_req *r);

/* Records an ops/admin change request in the audit log (h_audit.c); runs for every answer. */
void xd_audit_http(struct xd_req *r);

#ifdef XD_FUZZ_HOOKS
/* server.c's MHD callbacks, for tests/fuzz/fuzz_http.c (fuzz builds only). */
extern const MHD_AccessHandlerCallback xd_fuzz_on_request;
extern const MHD_RequestCompletedCallback xd_fuzz_on_completed;
#endif
void xd_h_admin_reload(struct xd_req *r);
void xd_h_xref_tables(struct xd_req *r); /* h_xref.c */
void xd_h_xref_get(struct xd_req *r);
void xd_h_xref_put(struct xd_req *r);
void xd_h_xref_delete(struct xd_req *r);
void xd_h_kpis(struct xd_req *r);        /* h_kpis.c */
/* Appends the holds, exception and KPI metrics (h_kpis.c) to /metrics. */
void xd_kpi_metrics(struct xd_server *srv, struct xd_buf *o);
void xd_h_reconciliation_get(struct xd_req *r);
void xd_h_reconciliation_post(struct xd_req *r);
void xd_h_ledger_get(struct xd_req *r);
void xd_h_stats(struct xd_req *r);
void xd_h_deliveries_count(struct xd_req *r);
void xd_h_ui(struct xd_req *r);

/* Called again when a suspended request is resumed. */
void xd_h_events_post_resume(struct xd_req *r);

#endif
