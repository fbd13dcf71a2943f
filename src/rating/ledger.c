/*
 * The in-memory ledger (ledger.h): an array of charges with two hash
 * indexes (charge id -> charge; warehouse + shipment_id -> its charges and
 * voids, chained by index). Open addressing with linear probing; slots hold
 * an index plus its hash, so growing never rehashes a string.
 */
#include "rating/ledger.h"

#include "core/buf.h"
#include "core/err.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define NONE SIZE_MAX

struct table {
    size_t *slot;   /* index + 1; 0 is empty */
    uint64_t *hash; /* the hash of the entry in the slot */
    size_t cap;     /* a power of two, or 0 */
    size_t n;
};

struct ship {
    char *warehouse;
    char *shipment_id;
    size_t first, last; /* its charges, chained through next[] */
    size_t first_void;  /* its voids, chained through vrec.next */
};

struct vrec {
    struct xd_void_info info;
    size_t next;
};

struct xd_memledger {
    struct xd_charges all; /* every charge, in the order recorded */
    size_t *next;          /* per charge: the next charge of the same shipment */
    size_t next_cap;
    struct table ids; /* charge_id -> index in all */
    struct ship *ships;
    size_t nships, ships_cap;
    struct table ship_ix; /* warehouse, shipment_id -> index in ships */
    struct vrec *voids;
    size_t nvoids, voids_cap;
    struct xd_charges scratch; /* xd_memledger_rate's output before recording */
    const struct xd_rate_conds *conds; /* for rules with `when`; borrowed */
};

/* ---- hashing and the table -------------------------------------------------- */

static uint64_t fnv(uint64_t h, const char *s)
{
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 0x100000001b3ULL;
    }
    return h;
}

static uint64_t hash_id(const char *id)
{
    return fnv(0xcbf29ce484222325ULL, id);
}

static uint64_t hash_ship(const char *warehouse, const char *shipment_id)
{
    uint64_t h = fnv(0xcbf29ce484222325ULL, warehouse);
    h ^= 0x1f;
    h *= 0x100000001b3ULL;
    return fnv(h, shipment_id);
}

typedef int eq_fn(const struct xd_memledger *m, size_t idx, const void *key);

static size_t table_get(const struct table *t, uint64_t h, eq_fn *eq, const struct xd_memledger *m,
                        const void *key)
{
    if (!t->cap)
        return NONE;
    for (size_t i = h & (t->cap - 1);; i = (i + 1) & (t->cap - 1)) {
        if (!t->slot[i])
            return NONE;
        if (t->hash[i] == h && eq(m, t->slot[i] - 1, key))
            return t->slot[i] - 1;
    }
}

static void table_place(struct table *t, uint64_t h, size_t idx)
{
    size_t i = h & (t->cap - 1);
    while (t->slot[i])
        i = (i + 1) & (t->cap - 1);
    t->slot[i] = idx + 1;
    t->hash[i] = h;
    t->n++;
}

/* Adds idx (not present) under h; grows at half full. 0 or XD_ENOMEM. */
static int table_put(struct table *t, uint64_t h, size_t idx)
{
    if ((t->n + 1) * 2 > t->cap) {
        struct table g = {.cap = t->cap ? t->cap * 2 : 64};
        g.slot = calloc(g.cap, sizeof *g.slot);
        g.hash = malloc(g.cap * sizeof *g.hash);
        if (!g.slot || !g.hash) {
            free(g.slot);
            free(g.hash);
            return XD_ENOMEM;
        }
        for (size_t i = 0; i < t->cap; i++)
            if (t->slot[i])
                table_place(&g, t->hash[i], t->slot[i] - 1);
        free(t->slot);
        free(t->hash);
        *t = g;
    }
    table_place(t, h, idx);
    return 0;
}

static void table_dispose(struct table *t)
{
    free(t->slot);
    free(t->hash);
}

static int eq_id(const struct xd_memledger *m, size_t idx, const void *key)
{
    return strcmp(m->all.v[idx].charge_id, key) == 0;
}

struct ship_key {
    const char *warehouse, *shipment_id;
};

static int eq_ship(const struct xd_memledger *m, size_t idx, const void *key)
{
    const struct ship_key *k = key;
    return strcmp(m->ships[idx].warehouse, k->warehouse) == 0 &&
           strcmp(m->ships[idx].shipment_id, k->shipment_id) == 0;
}

/* ---- the ledger -------------------------------------------------------------- */

struct xd_memledger *xd_memledger_create(void)
{
    struct xd_memledger *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    xd_charges_init(&m->all);
    xd_charges_init(&m->scratch);
    return m;
}

void xd_memledger_destroy(struct xd_memledger *m)
{
    if (!m)
        return;
    xd_charges_dispose(&m->all);
    xd_charges_dispose(&m->scratch);
    free(m->next);
    table_dispose(&m->ids);
    table_dispose(&m->ship_ix);
    for (size_t i = 0; i < m->nships; i++) {
        free(m->ships[i].warehouse);
        free(m->ships[i].shipment_id);
    }
    free(m->ships);
    free(m->voids);
    free(m);
}

const struct xd_charges *xd_memledger_charges(const struct xd_memledger *m)
{
    return &m->all;
}

static size_t ship_find(const struct xd_memledger *m, const char *warehouse,
                        const char *shipment_id)
{
    struct ship_key k = {warehouse, shipment_id};
    return table_get(&m->ship_ix, hash_ship(warehouse, shipment_id), eq_ship, m, &k);
}

/* The index of (warehouse, shipment_id) in ships, added when new; NONE when out of memory. */
static size_t ship_get(struct xd_memledger *m, const char *warehouse, const char *shipment_id)
{
    size_t i = ship_find(m, warehouse, shipment_id);
    if (i != NONE)
        return i;
    if (m->nships == m->ships_cap) {
        size_t cap = m->ships_cap ? m->ships_cap * 2 : 16;
        struct ship *v = realloc(m->ships, cap * sizeof *v);
        if (!v)
            return NONE;
        m->ships = v;
        m->ships_cap = cap;
    }
    struct ship *s = &m->ships[m->nships];
    s->warehouse = strdup(warehouse);
    s->shipment_id = strdup(shipment_id);
    s->first = s->last = s->first_void = NONE;
    if (!s->warehouse || !s->shipment_id ||
        table_put(&m->ship_ix, hash_ship(warehouse, shipment_id), m->nships) < 0) {
        free(s->warehouse);
        free(s->shipment_id);
        return NONE;
    }
    return m->nships++;
}

int xd_memledger_add(struct xd_memledger *m, const struct xd_charge *c)
{
    uint64_t h = hash_id(c->charge_id);
    if (table_get(&m->ids, h, eq_id, m, c->charge_id) != NONE)
        return 0;
    /* Charges of a shipment (and their reversals) are found by warehouse and shipment_id. */
    size_t ship = NONE;
    int shipment = (c->source == XD_EV_SHIPMENT_CONFIRMED || c->source == XD_EV_SHIPMENT_VOIDED) &&
                   c->warehouse && c->reference;
    if (shipment) {
        ship = ship_get(m, c->warehouse, c->reference);
        if (ship == NONE)
            return XD_ENOMEM;
    }
    if (m->all.n == m->next_cap) {
        size_t cap = m->next_cap ? m->next_cap * 2 : 64;
        size_t *v = realloc(m->next, cap * sizeof *v);
        if (!v)
            return XD_ENOMEM;
        m->next = v;
        m->next_cap = cap;
    }
    size_t idx = m->all.n;
    if (xd_charges_push(&m->all, c) < 0)
        return XD_ENOMEM;
    if (table_put(&m->ids, h, idx) < 0) {
        m->all.n--;
        return XD_ENOMEM;
    }
    m->next[idx] = NONE;
    if (shipment) {
        struct ship *s = &m->ships[ship];
        if (s->last == NONE)
            s->first = idx;
        else
            m->next[s->last] = idx;
        s->last = idx;
    }
    return 1;
}

int xd_memledger_note_event(struct xd_memledger *m, const cJSON *ev, enum xd_event_type type)
{
    if (type != XD_EV_SHIPMENT_VOIDED)
        return 0;
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(ev, "data");
    const cJSON *wh = cJSON_GetObjectItemCaseSensitive(data, "warehouse");
    const cJSON *sid = cJSON_GetObjectItemCaseSensitive(data, "shipment_id");
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(ev, "event_id");
    struct vrec r = {.next = NONE};
    long day;
    if (!cJSON_IsString(wh) || !cJSON_IsString(sid) || !cJSON_IsString(id) ||
        strlen(id->valuestring) > XD_EVENT_ID_MAX ||
        xd_rate_when(ev, type, &r.info.occurred_us, &day) < 0)
        return XD_EINVAL;
    strcpy(r.info.event_id, id->valuestring);
    xd_day_format(day, r.info.service_date);
    size_t ship = ship_get(m, wh->valuestring, sid->valuestring);
    if (ship == NONE)
        return XD_ENOMEM;
    for (size_t v = m->ships[ship].first_void; v != NONE; v = m->voids[v].next)
        if (strcmp(m->voids[v].info.event_id, r.info.event_id) == 0)
            return 0; /* the same void again */
    if (m->nvoids == m->voids_cap) {
        size_t cap = m->voids_cap ? m->voids_cap * 2 : 16;
        struct vrec *v = realloc(m->voids, cap * sizeof *v);
        if (!v)
            return XD_ENOMEM;
        m->voids = v;
        m->voids_cap = cap;
    }
    r.next = m->ships[ship].first_void;
    m->voids[m->nvoids] = r;
    m->ships[ship].first_void = m->nvoids++;
    return 0;
}

/* ---- the xd_ledger view --------------------------------------------------------- */

static int ml_each(void *ctx, const char *warehouse, const char *shipment_id,
                   xd_charge_visit_fn *fn, void *arg)
{
    struct xd_memledger *m = ctx;
    size_t s = ship_find(m, warehouse, shipment_id);
    if (s == NONE)
        return 0;
    for (size_t i = m->ships[s].first; i != NONE; i = m->next[i]) {
        int rc = fn(arg, &m->all.v[i]);
        if (rc)
            return rc;
    }
    return 0;
}

static int ml_has(void *ctx, const char *charge_id)
{
    struct xd_memledger *m = ctx;
    return table_get(&m->ids, hash_id(charge_id), eq_id, m, charge_id) != NONE;
}

static int ml_find_void(void *ctx, const char *warehouse, const char *shipment_id, int64_t since_us,
                        struct xd_void_info *out)
{
    struct xd_memledger *m = ctx;
    size_t s = ship_find(m, warehouse, shipment_id);
    const struct vrec *best = NULL;
    for (size_t v = s == NONE ? NONE : m->ships[s].first_void; v != NONE; v = m->voids[v].next) {
        const struct vrec *r = &m->voids[v];
        if (r->info.occurred_us >= since_us &&
            (!best || r->info.occurred_us < best->info.occurred_us ||
             (r->info.occurred_us == best->info.occurred_us &&
              strcmp(r->info.event_id, best->info.event_id) < 0)))
            best = r;
    }
    if (!best)
        return 0;
    *out = best->info;
    return 1;
}

static const struct xd_ledger_ops memledger_ops = {
    .each_for_shipment = ml_each,
    .has = ml_has,
    .find_void = ml_find_void,
};

struct xd_ledger xd_memledger_ledger(struct xd_memledger *m)
{
    struct xd_ledger l = {.ops = &memledger_ops, .ctx = m, .conds = m->conds};
    return l;
}

void xd_memledger_set_conds(struct xd_memledger *m, const struct xd_rate_conds *conds)
{
    m->conds = conds;
}

int xd_memledger_rate(struct xd_memledger *m, const struct xd_rating *r, const cJSON *ev,
                      enum xd_event_type type, struct xd_charges *fresh, struct xd_buf *why)
{
    struct xd_ledger l = xd_memledger_ledger(m);
    xd_charges_clear(&m->scratch);
    int rc = xd_rate_event(r, ev, type, &l, &m->scratch, why);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < m->scratch.n; i++) {
        rc = xd_memledger_add(m, &m->scratch.v[i]);
        if (rc < 0)
            return rc;
        if (rc == 1 && fresh && xd_charges_push(fresh, &m->scratch.v[i]) < 0)
            return XD_ENOMEM;
    }
    return xd_memledger_note_event(m, ev, type);
}
