/*
 * Internal to ingest/: the canonical event schema v1 as data. Each object of
 * an event (the envelope, data, a line, carrier, ...) is a spec: a list of
 * fields with a kind, whether it is required, a nested spec for objects and
 * arrays of objects, and the default that xd_event_prepare() fills in. The
 * kind decides the JSON type and the constraints (event.c has one checker
 * per kind). event_schema.c holds the tables; docs/events.md describes them.
 */
#ifndef XD_EVENT_SCHEMA_H
#define XD_EVENT_SCHEMA_H

#include "ingest/event.h"

/* What a field holds; each has one checker in event.c. */
enum xd_fkind {
    XD_FK_EVENT_ID, /* string, 1-128 of A-Za-z0-9._:- */
    XD_FK_TYPE,     /* string naming a known event type */
    XD_FK_TIME,     /* string, RFC 3339 date-time */
    XD_FK_DATE,     /* string, YYYY-MM-DD */
    XD_FK_CODE,     /* string, 1-128 characters: ids, codes */
    XD_FK_TEXT,     /* string, 0-1024 characters: free text */
    XD_FK_NTEXT,    /* string, 1-1024 characters: free text that must say something */
    XD_FK_QTY,      /* number, > 0 and <= 1e12 */
    XD_FK_DELTA,    /* number, non-zero, |x| <= 1e12 */
    XD_FK_COUNT,    /* number, >= 0 and <= 1e12 */
    XD_FK_LINE_NO,  /* number, integer 1..2^31-1 */
    XD_FK_VERSION,  /* number, must be 1 */
    XD_FK_MONEY,    /* string, decimal "-?D+(.D+)?", at most 18 digits */
    XD_FK_CURRENCY, /* string, 3 letters A-Z */
    XD_FK_OBJECT,   /* object, members per sub */
    XD_FK_OBJECTS,  /* array of 1..XD_EVENT_MAX_ITEMS objects, each per sub */
    XD_FK_TEXTS,    /* array of 0..XD_EVENT_MAX_ITEMS XD_FK_TEXT strings */
    XD_FK_DATA,     /* object, members per the spec of the event's type */
    XD_FK__COUNT
};

struct xd_spec;

struct xd_field {
    const char *name;
    unsigned char kind;        /* enum xd_fkind */
    unsigned char required;    /* absent (or null) is an error */
    const struct xd_spec *sub; /* XD_FK_OBJECT, XD_FK_OBJECTS: the members */
    const char *dflt;          /* string filled in by prepare when absent (uom "EA") */
};

/* The known members of one object. Unknown members are allowed and kept. */
struct xd_spec {
    const struct xd_field *fields;
    unsigned n; /* at most XD_SPEC_MAX_FIELDS */
};

#define XD_SPEC_MAX_FIELDS 32
#define XD_EVENT_MAX_ITEMS 10000

/* The business key: prefix ':' data.<part0> [':' data.<part1>]. */
struct xd_bkey_spec {
    const char *prefix;
    const char *parts[2]; /* second may be NULL */
};

extern const struct xd_spec xd_envelope_spec;
extern const struct xd_spec *const xd_data_specs[XD_EV__COUNT];
extern const struct xd_bkey_spec xd_bkey_specs[XD_EV__COUNT];

#endif
