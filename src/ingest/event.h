/*
 * The canonical event model, schema version 1 (contract section 4):
 * validation that reports every error with its JSON path, normalisation
 * (defaults filled in), the business key, and the compact stored form.
 *
 * The event is parsed once (formats/json.h) and validated on the cJSON tree;
 * nothing here parses bytes again.
 */
#ifndef XD_EVENT_H
#define XD_EVENT_H

#include <cjson/cJSON.h>
#include <stddef.h>

enum xd_event_type {
    XD_EV_SHIPMENT_CONFIRMED,
    XD_EV_SHIPMENT_VOIDED,
    XD_EV_GOODS_RECEIVED,
    XD_EV_INVENTORY_ADJUSTED,
    XD_EV_INVENTORY_SNAPSHOT,
    XD_EV_DELIVERY_CONFIRMED,
    XD_EV__COUNT
};

/* "shipment.confirmed" ...; NULL for an out-of-range type. */
const char *xd_event_type_name(enum xd_event_type t);
/* Returns the type or -1 when name is not a known type. */
int xd_event_type_parse(const char *name);

/* One validation error: where (a JSON path) and what. */
struct xd_verr {
    char *path;    /* "events[3].data.lines[0].qty" (heap) */
    char *message; /* "must be greater than 0" (heap) */
};

/* A list of errors; init with {0}, free with xd_verrs_dispose(). */
struct xd_verrs {
    struct xd_verr *v;
    size_t n, cap;
};
int xd_verrs_add(struct xd_verrs *e, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void xd_verrs_dispose(struct xd_verrs *e);

/*
 * A validated, normalised event, ready for the store. Strings point into
 * `json` (valid while it lives) except `body`, `bkey` (heap, owned).
 */
struct xd_event {
    cJSON *json;             /* the event object (not owned; part of a request's tree) */
    enum xd_event_type type;
    const char *event_id;
    const char *occurred_at; /* as given, RFC 3339 */
    const char *source;
    char *bkey;              /* business key, "shipment:SHP-1" (heap) */
    char *body;              /* compact JSON of the normalised event (heap) */
    size_t body_len;
    unsigned char hash[32];  /* SHA-256 of body */
};

/*
 * Validates one event object. prefix is prepended to every path ("" for a
 * single event, "events[3]" in a batch). Every problem found is added to
 * errs. Returns 0 when valid, XD_ESCHEMA when any error was added.
 */
int xd_event_validate(const cJSON *ev, const char *prefix, struct xd_verrs *errs);

/*
 * Normalises a valid event in place (source defaults to default_source,
 * schema_version to 1, uom to "EA"), then fills out: type, ids, business key,
 * compact body and its hash. Call only after xd_event_validate() returned 0.
 * Returns 0 or XD_ENOMEM. Free with xd_event_dispose().
 */
int xd_event_prepare(cJSON *ev, const char *default_source, struct xd_event *out);
void xd_event_dispose(struct xd_event *ev);

#endif
