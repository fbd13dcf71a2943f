/*
 * The configuration: one YAML file (libyaml) loaded into typed structs.
 * Parsing is driven by tables of keys {key, type, default, offset, help}
 * (config.c), so that unknown keys, wrong types, defaults, `crossdock check`
 * and docs/config.md all come from one place.
 *
 * Ownership: xd_config_load() returns a heap object that owns every string
 * and array in it; xd_config_destroy() frees all of it. Nothing in the
 * config is modified after load; a reload builds a new one.
 */
#ifndef XD_CONFIG_H
#define XD_CONFIG_H

#include <stddef.h>
#include <stdint.h>

/* Position of a value in the YAML file, for FILE:LINE:COL messages. */
struct xd_config_pos {
    unsigned line; /* 1-based */
    unsigned col;  /* 1-based */
};

enum xd_scope {
    XD_SCOPE_EVENTS_WRITE = 1u << 0, /* events:write */
    XD_SCOPE_READ = 1u << 1,         /* read */
    XD_SCOPE_OPS = 1u << 2,          /* ops: replay, exceptions */
    XD_SCOPE_ADMIN = 1u << 3,        /* admin */
};

struct xd_key {
    char *id;         /* the key's name, recorded as an event's source */
    char *secret_env; /* environment variable holding the secret */
    char *secret;     /* the secret itself, read from the environment at load */
    unsigned scopes;  /* XD_SCOPE_* bits */
    struct xd_config_pos pos;
    unsigned rate_limit;             /* requests per second allowed, 0 = no limit (default) */
    unsigned char secret_sha256[32]; /* SHA-256 of secret (zero when unset), for the lookup */
};

/* One cross-reference table: xref.NAME = {key: value, ...}. */
struct xd_xref_entry {
    char *key;
    char *value;
};
struct xd_xref_table {
    char *name;
    struct xd_xref_entry *entries;
    size_t n;
    struct xd_config_pos pos;
};

struct xd_retry {
    unsigned max_attempts;       /* default 8 */
    unsigned initial_backoff_ms; /* default 200 */
    unsigned max_backoff_ms;     /* default 60000 */
};

struct xd_header {
    char *name;
    char *value;
};

/* targets.NAME.tls: how the target's certificate is checked (https:// URLs). */
struct xd_target_tls {
    char *ca_file; /* PEM bundle the target's certificate must chain to; NULL = the system's */
    int verify;    /* 1 (default); 0 only when written `verify: false`, warned about loudly */
    struct xd_config_pos verify_pos;
};

/* targets.NAME.auth: credentials the hub fetches for the target (deliver/oauth.c). */
struct xd_target_auth {
    char *type;              /* oauth2 */
    char *token_url;         /* the authorization server's token endpoint */
    char *client_id;
    char *client_secret_env; /* environment variable holding the client secret */
    char *scope;             /* optional, space-separated */
    char *audience;          /* optional; some servers (Auth0) want it */
    char *client_auth;       /* basic (default) | body: where the client credentials go */
    unsigned refresh_margin_s; /* a token is renewed this long before it expires, 60 */
};

struct xd_target {
    char *name;
    char *type;  /* http | file | nats */
    char *url;   /* http */
    char *path;  /* file: directory or file */
    char *format; /* file: csv | x12 | jsonl */
    char *subject; /* nats */
    char **servers; /* nats: server URLs (or url: one) */
    size_t nservers;
    unsigned timeout_ms; /* default 5000 */
    char *bearer_env;    /* bearer token from this environment variable */
    struct xd_header *headers;
    size_t nheaders;
    struct xd_retry retry;
    struct xd_target_tls tls;
    struct xd_target_auth auth; /* type NULL: none */
    char *ack; /* jq program run on a 2xx answer: {reference, quantity} for the ledger */
    struct xd_config_pos pos;
    struct xd_config_pos ack_pos;
};

struct xd_step {
    char *deliver; /* target name, or NULL */
    char *map;     /* jq program, or NULL */
    int rate;      /* rate: true */
    struct xd_config_pos pos;
    struct xd_config_pos map_pos;
    struct xd_config_pos deliver_pos;
};

/* A business SLA of a route: its events must reach target within `within` of their receipt. */
struct xd_sla {
    char *target; /* a target the route delivers to */
    char *within; /* a duration: "15m", "1h", "90s", "500ms" */
    struct xd_config_pos pos;
};

struct xd_route {
    char *name;
    char **on; /* event types */
    size_t non;
    char *filter; /* optional jq filter */
    struct xd_step *steps;
    size_t nsteps;
    struct xd_sla *sla; /* business SLA clocks (reconcile/watch.h) */
    size_t nsla;
    struct xd_config_pos pos;
    struct xd_config_pos filter_pos;
};

struct xd_tier {
    char *up_to; /* decimal string, NULL for the last band */
    char *price; /* decimal string */
    struct xd_config_pos pos;
};

struct xd_charge_rule {
    char *code;
    char *on;  /* event type */
    char *per; /* basis, contract 6.1 */
    char *price;
    char *min_amount;
    char *markup_percent;
    char *when; /* optional jq condition */
    struct xd_tier *tiers;
    size_t ntiers;
    struct xd_config_pos pos;
    struct xd_config_pos when_pos;
};

struct xd_rate_card {
    char *customer;
    char *currency;
    char *effective_from; /* YYYY-MM-DD */
    char *minimum_monthly;
    struct xd_charge_rule *charges;
    size_t ncharges;
    struct xd_config_pos pos;
};

/* An X12 trading partner: partners.ID, ID being the sender's ISA06 (trimmed). */
struct xd_partner {
    char *id;
    char *customer;  /* used when the document names no depositor (N1*DE) */
    char *warehouse; /* used when the document names no warehouse (N1*SF / N1*WH) */
    struct xd_config_pos pos;
};

/* The column names of an export file reconciliation reads (reconcile.*_export). */
struct xd_export_columns {
    char *type;      /* erp: shipment | receipt | adjustment (optional column) */
    char *document;  /* erp: the shipment, receipt or adjustment id */
    char *reference; /* erp: the ERP's own document number; billing: the charge's reference */
    char *sku;       /* erp: optional, quantities per SKU */
    char *quantity;  /* erp */
    char *charge_id; /* billing */
    char *amount;    /* billing */
    char *currency;  /* billing: optional */
};

/*
 * A watched folder (inbox[]): files dropped into path are ingested, then moved
 * to path/processed or path/rejected (ingest/inbox.h, docs/inbox.md).
 */
struct xd_inbox {
    char *name;         /* names the source in logs and exceptions */
    char *path;         /* the folder watched */
    char *format;       /* auto (default) | json | jsonl | csv | x12 */
    char *customer;     /* CSV and X12: for documents that name none */
    char *warehouse;    /* likewise */
    unsigned poll_ms;   /* how often the folder is listed, 1000 */
    unsigned settle_ms; /* unchanged this long = complete, 2000 */
    size_t max_file;    /* larger files are rejected unread, 64 MiB */
    struct xd_config_pos pos;
};

/* exceptions.owners[]: who owns a new exception; NULL fields match anything. */
struct xd_exc_owner {
    char *category, *warehouse, *customer;
    char *owner;
    struct xd_config_pos pos;
};

/* exceptions.alert: an HTTP target told about new exceptions. */
struct xd_exc_alert {
    char *target;   /* a target of type http */
    char *throttle; /* a duration: at most one message per category this often, "5m" */
};

struct xd_exceptions {
    struct xd_exc_owner *owners;
    size_t nowners;
    struct xd_exc_alert alert;
};

/*
 * An event stream read by the hub (sources[]): type nats is a durable pull
 * consumer on a JetStream stream (ingest/nats_source.h, docs/nats.md).
 */
struct xd_source {
    char *name;          /* names the source in logs, exceptions; default event source */
    char *type;          /* nats */
    char **servers;      /* server URLs, nats://host:4222 */
    size_t nservers;
    char *stream;        /* the JetStream stream */
    char *subject;       /* filter subject of the consumer, NULL: the whole stream */
    char *durable;       /* durable consumer name, created when missing */
    unsigned batch;      /* messages per fetch, 256 */
    unsigned fetch_wait_ms; /* longest wait of one fetch, 1000 */
    unsigned ack_wait_ms;   /* redelivery of an unacknowledged message, 30000 */
    struct xd_config_pos pos;
};

struct xd_config {
    char *path; /* file it was loaded from */

    struct {
        char *listen;       /* "127.0.0.1:8080" */
        size_t max_body;    /* 1048576 */
        size_t max_batch;   /* 1000 */
        unsigned max_depth; /* JSON nesting, 64 */
        size_t max_string;  /* longest JSON string in an event, 65536 */
        unsigned threads;   /* HTTP worker threads, 0 = number of cores */
        unsigned max_connections; /* 1024 */
        unsigned timeout_s; /* idle connection timeout, 30 */
        unsigned max_connections_per_ip; /* 0 = no limit */
        size_t max_header;  /* request line + headers, per connection, 32 KiB */
        struct {
            char *cert; /* PEM certificate chain: the listener speaks HTTPS */
            char *key;  /* PEM private key of cert */
        } tls;
    } server;

    struct {
        char *driver;     /* sqlite | postgres */
        char *path;       /* sqlite file, "./crossdock.db" */
        char *url;        /* postgres */
        char *synchronous; /* sqlite: full (default) | normal */
        unsigned busy_timeout_ms; /* 5000 */
        size_t page_cache_keep;   /* sqlite: newest bytes of the file left in the page cache */
        unsigned lease_ms;        /* postgres: a node's claim on a delivery, 30000 */
    } store;

    struct {
        char *level;  /* info */
        char *format; /* text | json */
    } log;

    struct {
        struct xd_key *keys;
        size_t nkeys;
        char *key_file; /* more keys, one a line, re-read on SIGHUP (api/keys.c) */
    } auth;

    struct xd_xref_table *xref;
    size_t nxref;
    struct xd_target *targets;
    size_t ntargets;
    struct xd_route *routes;
    size_t nroutes;
    struct xd_rate_card *rate_cards;
    size_t nrate_cards;
    struct xd_partner *partners;
    size_t npartners;
    struct xd_inbox *inbox;
    size_t ninbox;
    struct xd_exceptions exceptions; /* routing and alerts (docs/exceptions.md) */
    struct xd_source *sources;
    size_t nsources;

    struct {
        unsigned grace_s;         /* how long a posting or billing may take before it is a break */
        char *quantity_tolerance; /* decimal, "0" */
        char *amount_tolerance;   /* decimal, "0" */
        int exceptions;           /* open an exception per break (default true) */
        unsigned interval_s;      /* a running hub reports this often, 0 = never (default) */
        struct xd_export_columns erp_export, billing_export;
    } reconcile;
};

/*
 * Loads and validates path. On failure returns NULL and appends one line per
 * problem to errs, each "FILE:LINE:COL: message" (errs may be NULL).
 * A file that does not exist is an error. All problems are reported, not
 * just the first.
 */
struct xd_buf;
struct xd_config *xd_config_load(const char *path, struct xd_buf *errs);
/* The same from a string already in memory (name is used in messages). */
struct xd_config *xd_config_parse(const char *name, const char *text, size_t len,
                                  struct xd_buf *errs);
/* The defaults alone, as if loaded from an empty file. */
struct xd_config *xd_config_default(void);
void xd_config_destroy(struct xd_config *cfg);

/*
 * Lookups; NULL when absent. xd_config_key_by_secret() compares the SHA-256
 * of secret with every key's in constant time (no early exit); keys whose
 * environment variable was unset or empty never match.
 */
const struct xd_key *xd_config_key_by_secret(const struct xd_config *cfg, const char *secret,
                                             size_t len);
const struct xd_target *xd_config_target(const struct xd_config *cfg, const char *name);
/* xref.TABLE.KEY, the value's text ("1000"); NULL when the table or key is absent. */
const char *xd_config_xref(const struct xd_config *cfg, const char *table, const char *key);
/* partners.ID; NULL when absent. */
const struct xd_partner *xd_config_partner(const struct xd_config *cfg, const char *id);

/*
 * What a valid configuration does that weakens security (a target whose
 * certificate is not checked): fn(ctx, pos, message) once per warning, in
 * file order. `crossdock check`, `serve`, /readyz and /metrics all say it.
 */
typedef void xd_config_warn_fn(void *ctx, const struct xd_config_pos *pos, const char *msg);
void xd_config_warnings(const struct xd_config *cfg, xd_config_warn_fn *fn, void *ctx);

/* "events:write" -> XD_SCOPE_EVENTS_WRITE; 0 when unknown. */
unsigned xd_scope_parse(const char *name);
/* The name of one XD_SCOPE_* bit; NULL for anything else. */
const char *xd_scope_name(unsigned scope);

/*
 * Writes docs for every key (Markdown table rows) into out, one row a line:
 * | `key.path` | type | default | meaning |. Returns 0 or XD_ENOMEM.
 */
int xd_config_describe(struct xd_buf *out);

#endif
