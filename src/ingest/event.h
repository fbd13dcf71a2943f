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

/*
 * A list of errors; init with {0}, free with xd_verrs_dispose(). At most
 * XD_VERRS_MAX are kept (a 1 MiB batch could otherwise hold a million);
 * further ones are only counted in `dropped`.
 */
#define XD_VERRS_MAX 10000
struct xd_verrs {
    struct xd_verr *v;
    size_t n, cap;
    size_t dropped; /* errors past XD_VERRS_MAX, counted but not kept */
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
    const char *traceparent; /* W3C traceparent it arrived with, or NULL (not owned) */
};

/*
 * Validates one event object. prefix is prepended to every path ("" for a
 * single event, "events[3]" in a batch; NULL is ""). Every problem found is
 * added to errs, in the order of the schema's fields (docs/events.md lists
 * the messages). A null member counts as absent; unknown members are
 * allowed. Returns 0 when valid, XD_ESCHEMA when any error was added,
 * XD_ENOMEM when an error could not be recorded.
 */
int xd_event_validate(const cJSON *ev, const char *prefix, struct xd_verrs *errs);

/*
 * Normalises a valid event in place (source defaults to default_source, or
 * "unknown" when that is NULL; schema_version to 1; uom to "EA"; a default
 * replaces a null and is otherwise appended as the object's last member),
 * then fills out: type, ids, business key, compact body (xd_json_write: key
 * order kept, so the same content gives the same body and hash whatever its
 * whitespace) and its SHA-256. Call only after xd_event_validate() returned
 * 0. Returns 0, XD_ENOMEM, or XD_EINVAL for an event with no known type or
 * no data object; on failure out holds nothing to free. Free with
 * xd_event_dispose().
 */
int xd_event_prepare(cJSON *ev, const char *default_source, struct xd_event *out);
void xd_event_dispose(struct xd_event *ev);

/* Value formats of the model, for converters that build events (1 = valid). */
int xd_event_id_valid(const char *s); /* 1-128 characters of A-Za-z0-9._:- */
int xd_date_valid(const char *s);     /* YYYY-MM-DD, a real calendar day */
/* RFC 3339: YYYY-MM-DDTHH:MM:SS[.1-9 digits](Z|+HH:MM|-HH:MM), upper-case T and Z. */
int xd_datetime_valid(const char *s);

#endif
