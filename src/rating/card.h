/*
 * Rate cards in their runtime form. The config loader (core/config.c) keeps
 * a card's values as the strings of the YAML; xd_rating_compile() turns
 * every card of a config into this form once — decimals parsed, `per` a
 * basis from the table of contract 6.1, dates as day numbers, cards sorted
 * for lookup by customer and date — and refuses a card it could not rate
 * exactly, with every problem as `FILE:LINE:COL: path: message`.
 * `crossdock check` runs the same checks through xd_rating_check().
 *
 * Ownership: xd_rating_compile() returns a heap object that owns copies of
 * everything it needs (it does not point into the config); free it with
 * xd_rating_destroy(). It is never modified after compile, so threads may
 * share one.
 */
#ifndef XD_RATING_CARD_H
#define XD_RATING_CARD_H

#include "core/config.h"
#include "ingest/event.h"
#include "rating/money.h"

#include <cjson/cJSON.h>
#include <stddef.h>

struct xd_buf;

/* What a rule counts: `per` (contract 6.1). */
enum xd_basis {
    XD_PER_SHIPMENT,
    XD_PER_LINE,
    XD_PER_UNIT,
    XD_PER_PALLET,
    XD_PER_CARTON,
    XD_PER_KG,
    XD_PER_RECEIPT,
    XD_PER_ADJUSTMENT,
    XD_PER_PALLET_DAY,
    XD_PER_UNIT_DAY,
    XD_PER_FREIGHT,
    XD_PER__COUNT
};

/*
 * Sets *q to the quantity this basis counts in data (the event's "data"
 * object, validated): zero when the field is absent or zero (the rule then
 * charges nothing). Returns 0, or XD_ELIMIT / XD_EINVAL with the reason in
 * why (a quantity with too many digits).
 */
typedef int xd_quantity_fn(const cJSON *data, struct xd_dec *q, struct xd_buf *why);

struct xd_basis_def {
    const char *name;         /* "pallet_day": the `per` of the YAML */
    const char *unit;         /* "pallet_day": the charge's `unit` */
    unsigned events;          /* bit (1u << enum xd_event_type) for each type it applies to */
    xd_quantity_fn *quantity; /* NULL for freight (rate.c prices it from data.freight) */
};

/* Indexed by enum xd_basis (basis.c): the one place contract 6.1 is written down. */
extern const struct xd_basis_def xd_bases[XD_PER__COUNT];
/* The basis named name, or -1. */
int xd_basis_parse(const char *name);

/* A price band: a flat price is one open band. */
struct xd_band {
    struct xd_dec up_to; /* last unit of the band (inclusive); unset when open */
    int open;            /* the last band: no upper end */
    struct xd_dec price; /* per unit in the band */
};

struct xd_rule {
    char *code;            /* charge code, "PICK_UNIT" */
    enum xd_event_type on; /* event type rated */
    enum xd_basis per;     /* what is counted */
    struct xd_band *bands; /* at least one; bands[nbands - 1].open; none for freight */
    size_t nbands;
    int has_min;              /* min_amount given */
    struct xd_dec min_amount; /* at the currency's minor unit */
    struct xd_dec markup;     /* freight: percent, 0 when absent */
    char *when;               /* jq condition on the event, or NULL (see rate.h conds) */
    struct xd_config_pos pos; /* where the rule is in the YAML */
};

struct xd_card {
    char *customer;
    char currency[4]; /* ISO 4217 */
    int minor;        /* decimals of the currency's minor unit */
    long from_day;    /* effective_from as days since 1970-01-01 */
    char from[11];    /* effective_from, "YYYY-MM-DD" */
    int has_minimum_monthly;
    struct xd_dec minimum_monthly; /* at the minor unit; settled by billing close */
    struct xd_rule *rules;         /* in the order of the YAML */
    size_t nrules;
    struct xd_config_pos pos;
};

struct xd_rating {
    struct xd_card *cards; /* sorted by customer, then from_day */
    size_t ncards;
};

/*
 * Compiles cfg's rate cards. Returns 0 with *out set (also for a config with
 * no cards), XD_ECONFIG with one line per problem appended to errs (errs
 * may be NULL), or XD_ENOMEM. Checks beyond the loader's: unknown
 * currencies, negative prices, a `per` that does not apply to the rule's
 * event type, tiers that overlap or do not ascend, more decimals in
 * min_amount or minimum_monthly than the currency has, prices and quantities
 * beyond the exact range, two rules with the same code for one event type
 * (their charge ids would collide), and two cards for one customer and date.
 * `when` programs are compiled by transform/ (xd_transform_check).
 */
int xd_rating_compile(const struct xd_config *cfg, struct xd_rating **out, struct xd_buf *errs);
void xd_rating_destroy(struct xd_rating *r);

/* The checks of xd_rating_compile() alone, for `crossdock check`: 0 or XD_ECONFIG / XD_ENOMEM. */
int xd_rating_check(const struct xd_config *cfg, struct xd_buf *errs);

/*
 * The customer's card with the latest effective_from on or before day (days
 * since 1970-01-01); NULL when there is none. *any (may be NULL) is set to
 * whether the customer has a card at all, for the message.
 */
const struct xd_card *xd_rating_card(const struct xd_rating *r, const char *customer, long day,
                                     int *any);

/* "YYYY-MM-DD" (a real calendar day) -> days since 1970-01-01; 0 or XD_EINVAL. */
int xd_day_parse(const char *s, long *day);
/* Days since 1970-01-01 -> "YYYY-MM-DD" in out[11]. */
void xd_day_format(long day, char out[11]);

#endif
