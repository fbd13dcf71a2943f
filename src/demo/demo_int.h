/*
 * Inside the demo: the two outside systems it plays against the real hub.
 *
 *   refsys.c  reference ERP and billing endpoints: an in-process HTTP server
 *             (libmicrohttpd) on a free loopback port that records what it
 *             receives and can be told to fail, as tests/standin/standin.py
 *             does for the tests;
 *   wms.c     a simulated WMS: a day of activity for three warehouses and
 *             three customers, posted from its own thread (libcurl) as JSON
 *             to the hub's POST /v1/events; a CSV batch of receipts, an X12
 *             945 of shipments and an X12 944 of receipts it drops into the
 *             hub's watched inbox as a partner would (docs/inbox.md);
 *   summary.c the summary and the reconciliation of what each side has.
 *
 * Both use their libraries directly rather than through api/ and deliver/:
 * they stand for other companies' systems, which know nothing of the hub's
 * code. demo.c runs them and the hub and shows progress.
 *
 * Ownership: _create/_start return heap objects freed by _destroy/_stop
 * (NULL is a no-op). Strings handed to callbacks are valid during the call.
 */
#ifndef XD_DEMO_INT_H
#define XD_DEMO_INT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct xd_buf;

/* ---- reference ERP and billing (refsys.c) ---- */

/* The two paths it serves; a POST anywhere else gets 404. */
#define XD_REFSYS_ERP     "/erp/postings"
#define XD_REFSYS_BILLING "/billing/charges"

struct xd_refsys;

/* Listens on 127.0.0.1 at a free port. 0, or a negative xd_err with err filled. */
int xd_refsys_start(struct xd_refsys **out, struct xd_buf *err);
unsigned short xd_refsys_port(const struct xd_refsys *r);
void xd_refsys_stop(struct xd_refsys *r);

/* Every POST to path answers status (with Retry-After: 1) for the next ms milliseconds. */
void xd_refsys_outage(struct xd_refsys *r, const char *path, int status, unsigned ms);
/* 1 while an outage set on path lasts. */
int xd_refsys_in_outage(struct xd_refsys *r, const char *path);
/* Every POST to path whose body contains match is answered 200 and not recorded (lost). */
void xd_refsys_drop(struct xd_refsys *r, const char *path, const char *match);
/* Every POST to path whose body contains match answers status, with reason as the error. */
void xd_refsys_refuse(struct xd_refsys *r, const char *path, const char *match, int status,
                      const char *reason);

/* What one path has seen. */
struct xd_refsys_counts {
    uint64_t requests; /* POSTs received */
    uint64_t recorded; /* documents recorded (distinct ids) */
    uint64_t same_key; /* requests whose Idempotency-Key was seen before: answered 200 with the
                          first answer's reference, not recorded again */
    uint64_t same_doc; /* requests with a new key for a document already recorded (a double
                          posting the key did not catch): answered 200, counted here */
    uint64_t outage;   /* answered with the outage status */
    uint64_t refused;  /* answered by a refuse rule */
    uint64_t dropped;  /* answered 200 by a drop rule and not recorded */
    uint64_t bad;      /* not JSON, or without the fields that identify the document: 400 */
};
void xd_refsys_counts(struct xd_refsys *r, const char *path, struct xd_refsys_counts *out);

/* A recorded document. The ERP's id is "posting_type:plant:delivery", billing's the charge_id. */
struct xd_refsys_rec {
    const char *id;
    const char *key;  /* the Idempotency-Key it first came with */
    const char *ref;  /* the reference it was answered with */
    const char *body; /* the body as received */
    unsigned times;   /* requests answered 200 for it (1 = exactly once) */
};
/* How many times the document id was answered 200 at path (0: never seen). */
unsigned xd_refsys_seen(struct xd_refsys *r, const char *path, const char *id);
/* Calls cb for every document recorded at path, in arrival order; cb must not call refsys. */
void xd_refsys_each(struct xd_refsys *r, const char *path,
                    void (*cb)(void *ctx, const struct xd_refsys_rec *rec), void *ctx);

/* ---- the simulated WMS (wms.c) ---- */

struct xd_wms_opts {
    const char *url;      /* the hub: "http://127.0.0.1:8080" */
    const char *tag;      /* run tag, part of every event and document id ("K3X9") */
    const char *day;      /* the day simulated, YYYY-MM-DD */
    unsigned events;      /* distinct events to generate */
    unsigned seed;        /* the same seed and count give the same day */
    unsigned duration_ms; /* spread the posts over about this long */
    const char *bad_sku;  /* one shipment carries this SKU (the ERP refuses it) */
    const char *inbox;    /* the hub's watched inbox folder, where the files are dropped */
};

/* How an event reaches the hub. */
enum xd_wms_channel {
    XD_WMS_JSON, /* POST /v1/events, alone or in a batch */
    XD_WMS_CSV,  /* a row group of the CSV batch, dropped into the inbox */
    XD_WMS_X12,  /* a transaction set of the X12 945, dropped into the inbox */
    XD_WMS_X944, /* a transaction set of the X12 944, dropped into the inbox */
};

/* An event the WMS generated, as the demo reconciles it. */
struct xd_wms_event {
    char *event_id; /* JSON: wms-TAG-000123; files: derived, type:warehouse:document */
    int type;       /* enum xd_event_type */
    int channel;    /* enum xd_wms_channel */
    char warehouse[8];
    char customer[16];
    char doc[48];    /* shipment_id or receipt_id; "" for snapshots */
    int planned_bad; /* the shipment with bad_sku */
    int acked;       /* the hub answered 202 listing it (accepted or duplicate), or the
                        file that carried it reached the inbox's processed/ */
    char *json;      /* JSON: the event as posted (files: NULL, the file has it) */
};

struct xd_wms_progress {
    unsigned total;                  /* distinct events generated */
    unsigned posted;                 /* distinct events posted so far */
    unsigned resent;                 /* events posted again (a WMS retrying) */
    unsigned accepted;               /* listed as accepted by the hub */
    unsigned duplicates;             /* listed as duplicates by the hub */
    unsigned rejected;               /* events in requests the hub refused (4xx): should stay 0 */
    unsigned requests;               /* POSTs that got an answer */
    unsigned batches;                /* of them, {"events": [...]} batches */
    unsigned retried;                /* POSTs sent again after 429/503 or a transport error */
    unsigned files;                  /* files dropped into the inbox (the CSV, the 945, the
                                        944 and the 945 again) */
    unsigned files_processed;        /* of them, found in processed/ */
    unsigned files_rejected;         /* found in rejected/ (should stay 0) */
    unsigned files_resent;           /* of the processed, re-sends (all their events duplicates) */
    unsigned csv_events, x12_events; /* events dropped in the CSV batch, the X12 945 */
    unsigned x944_events;            /* events dropped in the X12 944 */
    unsigned acks, acks_accepted;    /* 997s read from processed/; of them, AK9*A */
    char x12_ack[48];                /* the AK9 of the 997 written back for the 945 */
    int done;                        /* the thread has finished */
    char last_error[200];
};

struct xd_wms;

/* Generates the day (deterministic for opts) without sending anything. */
int xd_wms_create(const struct xd_wms_opts *o, struct xd_wms **out, struct xd_buf *err);
/* Starts the thread that posts it. */
int xd_wms_start(struct xd_wms *w, struct xd_buf *err);
/* Asks the thread to stop early (after the request in flight) and joins it. */
void xd_wms_stop(struct xd_wms *w);
void xd_wms_progress(struct xd_wms *w, struct xd_wms_progress *out);
/* The events generated; read them only after xd_wms_stop() (or before start). */
const struct xd_wms_event *xd_wms_events(const struct xd_wms *w, size_t *n);
void xd_wms_destroy(struct xd_wms *w);

/* ---- the summary and the reconciliation (summary.c) ---- */

struct xd_config;
struct xd_hub;

struct xd_demo_run {
    const struct xd_config *cfg;
    struct xd_hub *hub;
    struct xd_refsys *ref;
    struct xd_wms *wms; /* stopped: its events may be read */
    const char *mark;   /* every event id of this run has it ("-K3X9-": "wms-K3X9-000001",
                           "goods.received:DC1:RCV-K3X9-00042") */
    const char *period; /* the month simulated, YYYY-MM */
    int timed_out;      /* deliveries were still pending when the wait ran out */
    const char *dropped; /* the charge id billing loses on purpose (answers 200), or NULL */
    double seconds;     /* from the first post to the end of the wait */
};

/*
 * Prints the summary and the reconciliation to out; returns 1 when the run
 * is clean (docs/demo.md, "What counts as clean"), 0 when not.
 */
int xd_demo_summary(const struct xd_demo_run *run, FILE *out);

/* ---- the hub's reconciliation report against the reference systems (recon.c) ---- */

struct xd_recon_report;
/*
 * Builds the ERP's and billing's exports (CSV) from what the reference
 * systems recorded and runs the hub's reconciliation report with them
 * (reconcile/report.h), opening an exception per break. When the store
 * holds earlier runs (--keep), their charges are not in this run's billing,
 * and every run replays the same day (its snapshots, their storage charges):
 * the exports are then left out (*exports = 0) and no exception is opened.
 * 0, or a negative xd_err with err filled.
 */
int xd_demo_reconcile(const struct xd_demo_run *run, struct xd_recon_report *rep, int *exports,
                      struct xd_buf *err);

#endif
