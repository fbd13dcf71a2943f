/*
 * CSV flat files to canonical events (contract section 8; docs/csv.md).
 *
 * libcsv splits the bytes into cells (RFC 4180, strict quoting); everything
 * else is here. The input is fed to libcsv one physical line at a time, so
 * that every record knows the file line it starts on: that line number is
 * the "row" of every message ("row 4, column qty: not a number"; the header
 * is row 1 when the file starts with it).
 *
 * The columns are a table (cols[] below): for each canonical column its
 * value kind and, per event type, where the value goes (envelope, data,
 * data.carrier, or one element of lines[]/items[]) and whether it is
 * required. The header is matched to the table once; each row is then
 * checked cell by cell, keyed by type + warehouse + document id, and merged
 * into its event, found through a hash table (first-appearance order is kept
 * in a separate list). Header-level values are held per event in "slots",
 * one per header-level column, so that disagreeing rows can be named and the
 * event can be written at the end in the table's order, whatever the order
 * of the rows. Events are then built, and validated with the same code as
 * POST /v1/events (any error it finds is mapped back to a row and column).
 *
 * A file is accepted whole or rejected whole: problems are collected, not
 * returned at the first, and are reported sorted by row.
 */
#include "formats/csv.h"
#include "core/err.h"
#include "formats/convert.h"
#include "formats/docid.h"
#include "ingest/event.h"

#include <csv.h>

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define MAX_CODE  128  /* characters of an id or code (the model's XD_FK_CODE) */
#define MAX_TEXT  1024 /* characters of free text (XD_FK_TEXT) */
#define MAX_QTY   1e12
#define MAX_NUM   63 /* characters of a number, as formats/json.c allows */
#define MAX_SHOWN 40 /* bytes of a cell quoted back in a message */

/* ---- the column table ---- */

/* What a cell holds; each kind has one check in convert_cell(). */
enum kind {
    K_TYPE,    /* an event type name */
    K_ID,      /* event id: 1-128 of A-Za-z0-9._:- */
    K_CODE,    /* 1-128 characters, no control characters */
    K_TEXT,    /* at most 1024 characters */
    K_TIME,    /* RFC 3339 date-time; a bare YYYY-MM-DD means 00:00:00Z */
    K_DATE,    /* YYYY-MM-DD */
    K_QTY,     /* number > 0, <= 1e12 */
    K_DELTA,   /* number != 0, |x| <= 1e12 */
    K_COUNT,   /* number >= 0, <= 1e12 */
    K_LINE_NO, /* integer 1..2^31-1 */
};

/* Where a column's value goes for one event type. */
enum scope {
    S_NONE,    /* not used by this type: a value is an error */
    S_TYPE,    /* the type column itself */
    S_ENV,     /* envelope member; must agree across the event's rows */
    S_DATA,    /* data member; must agree across the event's rows */
    S_CARRIER, /* data.carrier member; must agree */
    S_LINE,    /* member of this row's element of lines[] or items[] */
};

struct use {
    unsigned char scope; /* enum scope */
    unsigned char req;   /* required for this type */
};

struct coldef {
    const char *name; /* header name */
    unsigned char kind;
    const char *key; /* JSON member name; NULL = name */
    struct use use[XD_EV__COUNT];
};

/* Column ids; their order is the order of members in the events written. */
enum {
    C_EVENT_ID,
    C_TYPE,
    C_OCCURRED_AT,
    C_SOURCE,
    C_WAREHOUSE,
    C_SHIPMENT_ID,
    C_RECEIPT_ID,
    C_ADJUSTMENT_ID,
    C_ORDER_ID,
    C_PO_NUMBER,
    C_CUSTOMER,
    C_SUPPLIER,
    C_AS_OF,
    C_SHIP_DATE,
    C_REASON,
    C_DELIVERED_AT,
    C_SIGNED_BY,
    C_CARRIER_CODE,
    C_CARRIER_SERVICE,
    C_TRACKING,
    C_LINE_NO,
    C_SKU,
    C_QTY,
    C_QTY_DELTA,
    C_UOM,
    C_LOT,
    C_REASON_CODE,
    C_PACKAGES,
    C_PALLETS,
    C_CARTONS,
    C_WEIGHT_KG,
    C__COUNT,
    C_EXTRA = C__COUNT, /* an x_ column: text kept as a data member of that name */
};

#define SC XD_EV_SHIPMENT_CONFIRMED
#define SV XD_EV_SHIPMENT_VOIDED
#define GR XD_EV_GOODS_RECEIVED
#define IA XD_EV_INVENTORY_ADJUSTED
#define IS XD_EV_INVENTORY_SNAPSHOT
#define DC XD_EV_DELIVERY_CONFIRMED

/* clang-format off */
#define ALL(s, r) {[SC] = {s, r}, [SV] = {s, r}, [GR] = {s, r}, [IA] = {s, r}, [IS] = {s, r}, [DC] = {s, r}}
#define REQ(s) {s, 1}
#define OPT(s) {s, 0}

static const struct coldef cols[C__COUNT + 1] = {
    [C_EVENT_ID]      = {"event_id", K_ID, NULL, ALL(S_ENV, 0)},
    [C_TYPE]          = {"type", K_TYPE, NULL, ALL(S_TYPE, 1)},
    [C_OCCURRED_AT]   = {"occurred_at", K_TIME, NULL, ALL(S_ENV, 1)},
    [C_SOURCE]        = {"source", K_CODE, NULL, ALL(S_ENV, 0)},
    [C_WAREHOUSE]     = {"warehouse", K_CODE, NULL, {[SC] = REQ(S_DATA), [SV] = REQ(S_DATA),
                         [GR] = REQ(S_DATA), [IA] = REQ(S_DATA), [IS] = REQ(S_DATA), [DC] = OPT(S_DATA)}},
    [C_SHIPMENT_ID]   = {"shipment_id", K_CODE, NULL, {[SC] = REQ(S_DATA), [SV] = REQ(S_DATA), [DC] = REQ(S_DATA)}},
    [C_RECEIPT_ID]    = {"receipt_id", K_CODE, NULL, {[GR] = REQ(S_DATA)}},
    [C_ADJUSTMENT_ID] = {"adjustment_id", K_CODE, NULL, {[IA] = REQ(S_DATA)}},
    [C_ORDER_ID]      = {"order_id", K_CODE, NULL, {[SC] = REQ(S_DATA)}},
    [C_PO_NUMBER]     = {"po_number", K_CODE, NULL, {[GR] = OPT(S_DATA)}},
    [C_CUSTOMER]      = {"customer", K_CODE, NULL, {[SC] = REQ(S_DATA), [SV] = OPT(S_DATA),
                         [GR] = REQ(S_DATA), [IA] = REQ(S_DATA), [IS] = REQ(S_DATA), [DC] = OPT(S_DATA)}},
    [C_SUPPLIER]      = {"supplier", K_CODE, NULL, {[GR] = OPT(S_DATA)}},
    [C_AS_OF]         = {"as_of", K_DATE, NULL, {[IS] = REQ(S_DATA)}},
    [C_SHIP_DATE]     = {"ship_date", K_DATE, NULL, {[SC] = OPT(S_DATA)}},
    [C_REASON]        = {"reason", K_TEXT, NULL, {[SV] = REQ(S_DATA)}},
    [C_DELIVERED_AT]  = {"delivered_at", K_TIME, NULL, {[DC] = REQ(S_DATA)}},
    [C_SIGNED_BY]     = {"signed_by", K_TEXT, NULL, {[DC] = OPT(S_DATA)}},
    [C_CARRIER_CODE]  = {"carrier_code", K_CODE, "code", {[SC] = OPT(S_CARRIER)}},
    [C_CARRIER_SERVICE] = {"carrier_service", K_CODE, "service", {[SC] = OPT(S_CARRIER)}},
    [C_TRACKING]      = {"tracking", K_CODE, "tracking", {[SC] = OPT(S_CARRIER)}},
    [C_LINE_NO]       = {"line_no", K_LINE_NO, NULL, {[SC] = OPT(S_LINE), [IA] = OPT(S_DATA)}},
    [C_SKU]           = {"sku", K_CODE, NULL, {[SC] = REQ(S_LINE), [GR] = REQ(S_LINE), [IA] = REQ(S_DATA),
                         [IS] = REQ(S_LINE)}},
    [C_QTY]           = {"qty", K_QTY, NULL, {[SC] = REQ(S_LINE), [GR] = REQ(S_LINE), [IS] = REQ(S_LINE)}},
    [C_QTY_DELTA]     = {"qty_delta", K_DELTA, NULL, {[IA] = REQ(S_DATA)}},
    [C_UOM]           = {"uom", K_CODE, NULL, {[SC] = OPT(S_LINE), [GR] = OPT(S_LINE), [IA] = OPT(S_DATA),
                         [IS] = OPT(S_LINE)}},
    [C_LOT]           = {"lot", K_CODE, NULL, {[SC] = OPT(S_LINE), [GR] = OPT(S_LINE), [IA] = OPT(S_DATA)}},
    [C_REASON_CODE]   = {"reason_code", K_CODE, NULL, {[IA] = REQ(S_DATA)}},
    [C_PACKAGES]      = {"packages", K_COUNT, NULL, {[SC] = OPT(S_DATA)}},
    [C_PALLETS]       = {"pallets", K_COUNT, NULL, {[SC] = OPT(S_DATA), [GR] = OPT(S_DATA), [IS] = OPT(S_LINE)}},
    [C_CARTONS]       = {"cartons", K_COUNT, NULL, {[GR] = OPT(S_DATA)}},
    [C_WEIGHT_KG]     = {"weight_kg", K_COUNT, NULL, {[SC] = OPT(S_DATA)}},
    [C_EXTRA]         = {"x_", K_TEXT, NULL, ALL(S_DATA, 0)},
};

/*
 * Per type: the array each row adds an element to (NULL: rows carry no
 * lines), the columns that make the document id, and whether every row is
 * an event of its own (an adjustment: its id gets ":<line_no or position>").
 */
static const struct typeinfo {
    const char *lines;
    int doc[2];  /* columns; doc[1] = -1 when one */
    int per_row;
} types[XD_EV__COUNT] = {
    [SC] = {"lines", {C_SHIPMENT_ID, -1}, 0},
    [SV] = {NULL, {C_SHIPMENT_ID, -1}, 0},
    [GR] = {"lines", {C_RECEIPT_ID, -1}, 0},
    [IA] = {NULL, {C_ADJUSTMENT_ID, -1}, 1},
    [IS] = {"items", {C_CUSTOMER, C_AS_OF}, 0},
    [DC] = {NULL, {C_SHIPMENT_ID, -1}, 0},
};
/* clang-format on */

/* ---- storage ---- */

/* A bump allocator for keys and ids, freed at once. */
struct arena_blk {
    struct arena_blk *next;
    size_t used, cap;
    char data[];
};

/* A header-level value of one event, and the row that gave it. */
struct slot {
    cJSON *v;          /* string or number; NULL while absent */
    size_t row;        /* the row that gave v */
    unsigned char bad; /* some row had an invalid value here: don't also say "required" */
};

/* One event being assembled from its rows. */
struct group {
    int type;
    size_t first_row;
    const char *wh;  /* warehouse as keyed ("" when none), arena */
    const char *doc; /* document id part of the event id, arena */
    char *event_id;  /* final id, arena; set by finish_ids() */
    cJSON *lines;    /* lines[] or items[]; NULL for types without */
    size_t nlines;
    size_t *line_rows; /* row of each element of lines */
    size_t lines_cap;
    unsigned char too_many; /* "more than N lines" reported */
    unsigned char bad;      /* some row of it had an error */
    struct slot slots[];    /* one per header-level column of this type */
};

/* Open-addressing hash table entry: a key and what it names. */
struct ment {
    uint64_t h;
    const char *k; /* NULL: empty */
    size_t klen;
    struct group *g;
    size_t count; /* rows seen with this key (adjustment positions) */
};

struct map {
    struct ment *t;
    size_t cap, n; /* cap a power of two, n <= cap / 2 */
};

/* A file column, as matched from the header. */
struct fcol {
    int def;                /* C_*; C_EXTRA for x_; -1 ignored (unknown or duplicate) */
    char *name;             /* header text (heap) */
    char *disp;             /* how messages name it: the name, or its position (heap) */
    int slot[XD_EV__COUNT]; /* slot index per type; -1 not header-level */
};

/* One cell of the current record, in rb. */
struct cell {
    size_t off, len;
    unsigned char bad; /* reported already (bytes not UTF-8, too long...) */
};

/* One problem: sorted by row then discovery before they reach the caller. */
struct cerr {
    size_t row, seq;
    char *path, *msg;
};

struct reader {
    const struct xd_convert_opts *o;
    const char *opt_customer, *opt_warehouse; /* non-empty or NULL */
    size_t max_rows, max_cell;
    struct csv_parser p;
    uint64_t seed[2]; /* hash key */

    /* feeding */
    size_t line;            /* physical line being fed */
    size_t rec_line;        /* line the current record started on */
    size_t cell_line;       /* line the current cell started on (after the last one ended) */
    size_t nf;              /* cells so far in the current record */
    size_t extra_at;        /* 1-based position of a non-empty cell past the header, 0 none */
    struct xd_buf rb;       /* the current record's cells, each NUL-terminated */
    struct xd_buf key, doc; /* a row's hash key and document id, reused */
    struct cell *cells;

    /* header */
    int have_header;
    size_t header_row;
    struct cell *hcells;
    size_t nh, hcap;
    struct fcol *fc;
    size_t ncols;
    int defcol[C__COUNT]; /* file column of each canonical column, -1 absent */
    size_t nslots[XD_EV__COUNT];
    int *slot_col[XD_EV__COUNT]; /* file column of each slot */
    unsigned char type_seen[XD_EV__COUNT], type_blocked[XD_EV__COUNT];

    /* events */
    struct group **groups;
    size_t ng, gcap;
    struct map docs;
    struct arena_blk *arena;
    size_t nrows;

    /* problems */
    struct cerr *errs;
    size_t nerr, errcap, dropped, seq;
    int syntax; /* a problem with the bytes themselves: XD_EPARSE */
    int oom;
    int stop; /* stop reading (fatal problem) */
};

/*
 * The realloc libcsv grows its cell buffer with: refuses past the cell
 * limit (max_cell + 1 bytes), so a single huge cell cannot take all memory.
 * libcsv then fails with CSV_ENOMEM and a buffer of exactly the cap, which
 * tells it from a real OOM. libcsv passes no context, hence thread-local.
 */
static _Thread_local size_t tl_cell_cap;

static void *capped_realloc(void *p, size_t n)
{
    return n > tl_cell_cap ? NULL : realloc(p, n);
}

static void *arena_alloc(struct reader *r, size_t n)
{
    struct arena_blk *b = r->arena;
    n = (n + 7) & ~(size_t)7;
    if (!b || b->cap - b->used < n) {
        size_t cap = n > 65536 ? n : 65536;
        b = malloc(sizeof *b + cap);
        if (!b) {
            r->oom = 1;
            return NULL;
        }
        b->next = r->arena;
        b->used = 0;
        b->cap = cap;
        r->arena = b;
    }
    void *p = b->data + b->used;
    b->used += n;
    return p;
}

static char *arena_strndup(struct reader *r, const char *s, size_t n)
{
    char *d = arena_alloc(r, n + 1);
    if (!d)
        return NULL;
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

/* ---- hashing: SipHash-1-3 with a random key, so crafted keys cannot make
 * the table quadratic ---- */

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                                                   \
    do {                                                                                           \
        v0 += v1;                                                                                  \
        v1 = ROTL(v1, 13);                                                                         \
        v1 ^= v0;                                                                                  \
        v0 = ROTL(v0, 32);                                                                         \
        v2 += v3;                                                                                  \
        v3 = ROTL(v3, 16);                                                                         \
        v3 ^= v2;                                                                                  \
        v0 += v3;                                                                                  \
        v3 = ROTL(v3, 21);                                                                         \
        v3 ^= v0;                                                                                  \
        v2 += v1;                                                                                  \
        v1 = ROTL(v1, 17);                                                                         \
        v1 ^= v2;                                                                                  \
        v2 = ROTL(v2, 32);                                                                         \
    } while (0)

static uint64_t siphash13(const uint64_t key[2], const void *data, size_t len)
{
    const unsigned char *in = data;
    uint64_t v0 = 0x736f6d6570736575ULL ^ key[0], v1 = 0x646f72616e646f6dULL ^ key[1];
    uint64_t v2 = 0x6c7967656e657261ULL ^ key[0], v3 = 0x7465646279746573ULL ^ key[1];
    uint64_t b = (uint64_t)len << 56, m;
    size_t i;
    for (i = 0; i + 8 <= len; i += 8) {
        memcpy(&m, in + i, 8);
        v3 ^= m;
        SIPROUND;
        v0 ^= m;
    }
    for (size_t k = 0; i + k < len; k++)
        b |= (uint64_t)in[i + k] << (8 * k);
    v3 ^= b;
    SIPROUND;
    v0 ^= b;
    v2 ^= 0xff;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}

static int map_grow(struct map *m)
{
    size_t cap = m->cap ? m->cap * 2 : 64;
    struct ment *t = calloc(cap, sizeof *t);
    if (!t)
        return XD_ENOMEM;
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->t[i].k)
            continue;
        size_t j = m->t[i].h & (cap - 1);
        while (t[j].k)
            j = (j + 1) & (cap - 1);
        t[j] = m->t[i];
    }
    free(m->t);
    m->t = t;
    m->cap = cap;
    return 0;
}

/* The entry for key, added (key copied to the arena) when absent. NULL on OOM. */
static struct ment *map_get(struct reader *r, struct map *m, const char *k, size_t klen)
{
    if ((m->n + 1) * 2 > m->cap && map_grow(m) < 0) {
        r->oom = 1;
        return NULL;
    }
    uint64_t h = siphash13(r->seed, k, klen);
    size_t j = h & (m->cap - 1);
    for (; m->t[j].k; j = (j + 1) & (m->cap - 1))
        if (m->t[j].h == h && m->t[j].klen == klen && memcmp(m->t[j].k, k, klen) == 0)
            return &m->t[j];
    char *copy = arena_strndup(r, k, klen);
    if (!copy)
        return NULL;
    m->t[j] = (struct ment){.h = h, .k = copy, .klen = klen};
    m->n++;
    return &m->t[j];
}

/* ---- problems ---- */

static void add_err(struct reader *r, size_t row, const char *col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Records "row ROW[, column COL]: message". */
static void add_err(struct reader *r, size_t row, const char *col, const char *fmt, ...)
{
    char *path = NULL, *msg = NULL;
    va_list ap;
    if (r->nerr >= XD_VERRS_MAX) {
        r->dropped++;
        return;
    }
    if (r->nerr == r->errcap) {
        size_t cap = r->errcap ? r->errcap * 2 : 16;
        struct cerr *e = realloc(r->errs, cap * sizeof *e);
        if (!e)
            goto fail;
        r->errs = e;
        r->errcap = cap;
    }
    if ((col ? asprintf(&path, "row %zu, column %s", row, col) : asprintf(&path, "row %zu", row)) <
        0) {
        path = NULL;
        goto fail;
    }
    va_start(ap, fmt);
    int rc = vasprintf(&msg, fmt, ap);
    va_end(ap);
    if (rc < 0)
        goto fail;
    r->errs[r->nerr++] = (struct cerr){row, r->seq++, path, msg};
    return;
fail:
    free(path);
    r->oom = 1;
}

static int cerr_cmp(const void *a, const void *b)
{
    const struct cerr *x = a, *y = b;
    if (x->row != y->row)
        return x->row < y->row ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/*
 * Up to MAX_SHOWN bytes of s for a message, cut at a character boundary,
 * control characters shown as '?'. out must hold MAX_SHOWN + 4.
 */
static const char *shown(const char *s, char *out)
{
    size_t n = strnlen(s, MAX_SHOWN + 1), i;
    int cut = n > MAX_SHOWN;
    if (cut) {
        n = MAX_SHOWN;
        while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
            n--;
    }
    for (i = 0; i < n; i++)
        out[i] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
    memcpy(out + i, cut ? "..." : "", cut ? 4 : 1);
    return out;
}

/* ---- cell checks ---- */

/* 1 when s[0..n) is valid UTF-8 (no overlongs, surrogates or code points past U+10FFFF). */
static int utf8_valid(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t k;
        unsigned cp, min;
        if (c >= 0xc2 && c <= 0xdf) {
            k = 1, cp = c & 0x1f, min = 0x80;
        } else if (c >= 0xe0 && c <= 0xef) {
            k = 2, cp = c & 0x0f, min = 0x800;
        } else if (c >= 0xf0 && c <= 0xf4) {
            k = 3, cp = c & 0x07, min = 0x10000;
        } else {
            return 0;
        }
        if (n - i <= k)
            return 0;
        for (size_t j = 1; j <= k; j++) {
            if ((s[i + j] & 0xc0) != 0x80)
                return 0;
            cp = cp << 6 | (s[i + j] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        i += k + 1;
    }
    return 1;
}

/* Characters (code points) of valid UTF-8; *ctl set when any is a control character. */
static size_t utf8_chars(const char *s, int *ctl)
{
    size_t n = 0;
    *ctl = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if ((*p & 0xc0) != 0x80)
            n++;
        if (*p < 0x20 || *p == 0x7f)
            *ctl = 1;
    }
    return n;
}

/*
 * A number as the hub takes it from text: -?D+(.D+)?, nothing else (no
 * exponent, sign +, spaces, thousands separators). 0 and *d, or -1.
 */
static int parse_number(const char *s, size_t n, double *d)
{
    size_t i = 0;
    if (n == 0 || n > MAX_NUM)
        return -1;
    if (s[i] == '-')
        i++;
    if (i == n || s[i] < '0' || s[i] > '9')
        return -1;
    while (i < n && s[i] >= '0' && s[i] <= '9')
        i++;
    if (i < n && s[i] == '.') {
        i++;
        if (i == n || s[i] < '0' || s[i] > '9')
            return -1;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
    }
    if (i != n)
        return -1;
    *d = strtod(s, NULL); /* s is NUL-terminated at n; C locale */
    if (*d == 0)
        *d = 0; /* "-0" is 0 */
    return isfinite(*d) ? 0 : -1;
}

/* A checked cell value: a string or a number. */
struct val {
    int num;
    double d;
    const char *s;
    char buf[24]; /* a date-only time, expanded */
};

/*
 * One checker per kind: checks the text of a cell (s, n bytes, NUL-terminated)
 * and fills v. Returns NULL or the message, in the model's wording so that
 * CSV and JSON input read alike.
 */
typedef const char *check_fn(const char *s, size_t n, struct val *v);

static const char *chk_id(const char *s, size_t n, struct val *v)
{
    (void)n, (void)v;
    return xd_event_id_valid(s) ? NULL : "must be 1-128 characters of A-Za-z0-9._:-";
}

static const char *chk_code(const char *s, size_t n, struct val *v)
{
    int ctl;
    (void)n, (void)v;
    if (utf8_chars(s, &ctl) > MAX_CODE)
        return "must be 1-128 characters";
    return ctl ? "must not contain control characters" : NULL;
}

static const char *chk_text(const char *s, size_t n, struct val *v)
{
    int ctl;
    (void)n, (void)v;
    return utf8_chars(s, &ctl) > MAX_TEXT ? "must be at most 1024 characters" : NULL;
}

static const char *chk_time(const char *s, size_t n, struct val *v)
{
    if (n == 10 && xd_date_valid(s)) {
        snprintf(v->buf, sizeof v->buf, "%sT00:00:00Z", s);
        v->s = v->buf;
        return NULL;
    }
    return xd_datetime_valid(s) ? NULL : "must be an RFC 3339 date-time or a date YYYY-MM-DD";
}

static const char *chk_date(const char *s, size_t n, struct val *v)
{
    (void)n, (void)v;
    return xd_date_valid(s) ? NULL : "must be a date YYYY-MM-DD";
}

static const char *chk_number(const char *s, size_t n, struct val *v)
{
    if (parse_number(s, n, &v->d) < 0)
        return "not a number";
    v->num = 1;
    return NULL;
}

static const char *chk_qty(const char *s, size_t n, struct val *v)
{
    const char *m = chk_number(s, n, v);
    if (m)
        return m;
    if (v->d <= 0)
        return "must be greater than 0";
    return v->d > MAX_QTY ? "must be at most 1000000000000" : NULL;
}

static const char *chk_delta(const char *s, size_t n, struct val *v)
{
    const char *m = chk_number(s, n, v);
    if (m)
        return m;
    if (v->d == 0)
        return "must not be zero";
    return fabs(v->d) > MAX_QTY ? "must be between -1000000000000 and 1000000000000" : NULL;
}

static const char *chk_count(const char *s, size_t n, struct val *v)
{
    const char *m = chk_number(s, n, v);
    if (m)
        return m;
    if (v->d < 0)
        return "must not be negative";
    return v->d > MAX_QTY ? "must be at most 1000000000000" : NULL;
}

static const char *chk_line_no(const char *s, size_t n, struct val *v)
{
    const char *m = chk_number(s, n, v);
    if (m)
        return m;
    return memchr(s, '.', n) || v->d < 1 || v->d > INT32_MAX ? "must be a positive integer" : NULL;
}

/* K_TYPE has none: the type cell is looked up, not converted. */
static check_fn *const checks[] = {
    [K_ID] = chk_id,       [K_CODE] = chk_code,   [K_TEXT] = chk_text,
    [K_TIME] = chk_time,   [K_DATE] = chk_date,   [K_QTY] = chk_qty,
    [K_DELTA] = chk_delta, [K_COUNT] = chk_count, [K_LINE_NO] = chk_line_no,
};

static const char *convert_cell(int kind, const char *s, size_t n, struct val *v)
{
    v->num = 0;
    v->s = s;
    return checks[kind](s, n, v);
}

static cJSON *val_node(const struct val *v)
{
    return v->num ? cJSON_CreateNumber(v->d) : cJSON_CreateString(v->s);
}

/* 1 when the stored node holds the same value as v. */
static int val_same(const cJSON *node, const struct val *v)
{
    if (v->num)
        return cJSON_IsNumber(node) && node->valuedouble == v->d;
    return cJSON_IsString(node) && strcmp(node->valuestring, v->s) == 0;
}

/* ---- the header ---- */

static int def_lookup(const char *name)
{
    for (int d = 0; d < C__COUNT; d++)
        if (strcmp(cols[d].name, name) == 0)
            return d;
    return -1;
}

/* Printable names are shown as they are; others by their 1-based position. */
static char *display_name(const char *name, size_t len, size_t pos)
{
    char *d = NULL;
    int ok = len > 0 && len <= 64;
    for (size_t i = 0; ok && i < len; i++)
        ok = (unsigned char)name[i] >= 0x20 && name[i] != 0x7f;
    if (ok && utf8_valid((const unsigned char *)name, len))
        return strndup(name, len);
    if (asprintf(&d, "%zu", pos) < 0)
        return NULL;
    return d;
}

/*
 * Matches the header row to the table. Unknown names (but x_...) and
 * repeated ones are errors; their cells are then ignored. Trailing empty
 * names (a spreadsheet's trailing commas) are dropped.
 */
static void read_header(struct reader *r)
{
    size_t row = r->rec_line, n = r->nh;
    r->have_header = 1;
    r->header_row = row;
    while (n > 0 && r->hcells[n - 1].len == 0)
        n--;
    if (n > XD_CSV_MAX_COLUMNS) {
        char pos[24];
        snprintf(pos, sizeof pos, "%d", XD_CSV_MAX_COLUMNS + 1);
        add_err(r, row, pos, "more than %d columns", XD_CSV_MAX_COLUMNS);
        r->stop = 1;
        return;
    }
    r->fc = calloc(n ? n : 1, sizeof *r->fc);
    r->cells = calloc(n ? n : 1, sizeof *r->cells);
    if (!r->fc || !r->cells) {
        r->oom = r->stop = 1;
        return;
    }
    r->ncols = n;
    for (size_t c = 0; c < n; c++) {
        struct fcol *f = &r->fc[c];
        const char *name = r->rb.data ? r->rb.data + r->hcells[c].off : "";
        size_t len = r->hcells[c].len;
        f->def = -1;
        for (int t = 0; t < XD_EV__COUNT; t++)
            f->slot[t] = -1;
        f->name = strndup(name, len);
        f->disp = display_name(name, len, c + 1);
        if (!f->name || !f->disp) {
            r->oom = r->stop = 1;
            return;
        }
        if (r->hcells[c].bad)
            continue; /* bytes already reported */
        if (len == 0) {
            add_err(r, row, f->disp, "empty column name");
            continue;
        }
        int d = memchr(name, 0, len) ? -1 : def_lookup(f->name);
        if (d < 0 && len > 2 && strncmp(f->name, "x_", 2) == 0 && strlen(f->name) == len) {
            size_t k;
            for (k = 0; k < c; k++)
                if (r->fc[k].def == C_EXTRA && strcmp(r->fc[k].name, f->name) == 0)
                    break;
            if (k < c) {
                add_err(r, row, f->disp, "duplicate column (also column %zu)", k + 1);
                continue;
            }
            f->def = C_EXTRA;
            continue;
        }
        if (d < 0) {
            add_err(r, row, f->disp, "unknown column (extra data columns must start with x_)");
            continue;
        }
        if (r->defcol[d] >= 0) {
            add_err(r, row, f->disp, "duplicate column (also column %d)", r->defcol[d] + 1);
            continue;
        }
        r->defcol[d] = (int)c;
        f->def = d;
    }
    if (r->defcol[C_TYPE] < 0) {
        add_err(r, row, "type", "missing from the header");
        r->stop = 1;
        return;
    }
    /* Slots: the header-level columns of each type, in table order (x_ last). */
    for (int t = 0; t < XD_EV__COUNT; t++) {
        r->slot_col[t] = calloc(n ? n : 1, sizeof(int));
        if (!r->slot_col[t]) {
            r->oom = r->stop = 1;
            return;
        }
        for (int d = 0; d <= C__COUNT; d++) {
            int sc = cols[d].use[t].scope;
            if (sc != S_ENV && sc != S_DATA && sc != S_CARRIER)
                continue;
            for (size_t c = 0; c < n; c++) {
                if (r->fc[c].def != d)
                    continue;
                r->fc[c].slot[t] = (int)r->nslots[t];
                r->slot_col[t][r->nslots[t]++] = (int)c;
            }
        }
    }
}

/* ---- rows ---- */

static const char *col_name(const struct reader *r, int d)
{
    return r->defcol[d] >= 0 ? r->fc[r->defcol[d]].disp : cols[d].name;
}

/* The cell of canonical column d in the current row ("" when none), and its length. */
static const char *cell_of(const struct reader *r, int d, size_t *len)
{
    int c = r->defcol[d];
    if (c < 0 || r->cells[c].len == 0 || r->cells[c].bad) {
        *len = 0;
        return "";
    }
    *len = r->cells[c].len;
    return r->rb.data + r->cells[c].off;
}

/* First row of a type: are its required columns in the header? */
static void first_of_type(struct reader *r, int t, size_t row)
{
    r->type_seen[t] = 1;
    for (int d = 0; d < C__COUNT; d++) {
        if (!cols[d].use[t].req || r->defcol[d] >= 0)
            continue;
        if ((d == C_WAREHOUSE && r->opt_warehouse) || (d == C_CUSTOMER && r->opt_customer))
            continue;
        add_err(r, r->header_row, cols[d].name, "missing from the header (required by %s, row %zu)",
                xd_event_type_name(t), row);
        if (d == C_WAREHOUSE || d == types[t].doc[0] || d == types[t].doc[1])
            r->type_blocked[t] = 1; /* rows of this type cannot be grouped */
    }
}

/* The event of this row, created on its first row. NULL (reported) on OOM. */
static struct group *find_group(struct reader *r, int t, const char *wh, const char *doc,
                                size_t row, size_t line_no_len, const char *line_no)
{
    struct xd_buf k = r->key;
    struct group *g = NULL;
    xd_buf_reset(&k);
    xd_buf_putc(&k, (char)('0' + t));
    xd_buf_puts(&k, wh);
    xd_buf_putc(&k, '\x1f');
    xd_buf_puts(&k, doc);
    if (k.oom) {
        r->oom = 1;
        goto out;
    }
    struct ment *e = map_get(r, &r->docs, k.data, k.len);
    if (!e)
        goto out;
    e->count++;
    if (e->g && !types[t].per_row) {
        g = e->g;
        goto out;
    }
    g = calloc(1, sizeof *g + r->nslots[t] * sizeof g->slots[0]);
    if (!g) {
        r->oom = 1;
        goto out;
    }
    if (r->ng == r->gcap) {
        size_t cap = r->gcap ? r->gcap * 2 : 64;
        struct group **v = realloc(r->groups, cap * sizeof *v);
        if (!v) {
            r->oom = 1;
            goto fail;
        }
        r->groups = v;
        r->gcap = cap;
    }
    g->type = t;
    g->first_row = row;
    g->wh = arena_strndup(r, wh, strlen(wh));
    if (types[t].per_row) {
        /* an adjustment line: <adjustment_id>:<line_no, else its position> */
        char pos[24];
        if (!line_no_len)
            snprintf(pos, sizeof pos, "%zu", e->count);
        else
            snprintf(pos, sizeof pos, "%ld", strtol(line_no, NULL, 10));
        size_t dl = strlen(doc), pl = strlen(pos);
        char *d = arena_alloc(r, dl + pl + 2);
        if (d) {
            memcpy(d, doc, dl);
            d[dl] = ':';
            memcpy(d + dl + 1, pos, pl + 1);
        }
        g->doc = d;
    } else {
        g->doc = arena_strndup(r, doc, strlen(doc));
    }
    if (!g->wh || !g->doc)
        goto fail;
    if (types[t].lines) {
        g->lines = cJSON_CreateArray();
        if (!g->lines) {
            r->oom = 1;
            goto fail;
        }
    }
    r->groups[r->ng++] = g;
    e->g = g;
    goto out;
fail:
    free(g);
    g = NULL;
out:
    r->key = k;
    return g;
}

static int add_line_row(struct reader *r, struct group *g, size_t row)
{
    if (g->nlines == g->lines_cap) {
        size_t cap = g->lines_cap ? g->lines_cap * 2 : 4;
        size_t *v = realloc(g->line_rows, cap * sizeof *v);
        if (!v) {
            r->oom = 1;
            return XD_ENOMEM;
        }
        g->line_rows = v;
        g->lines_cap = cap;
    }
    g->line_rows[g->nlines++] = row;
    return 0;
}

/* The row's event type, or -1 (reported). */
static int row_type(struct reader *r, size_t row)
{
    char sh[MAX_SHOWN + 4];
    size_t len;
    if (r->cells[r->defcol[C_TYPE]].bad)
        return -1; /* its bytes were reported */
    const char *ts = cell_of(r, C_TYPE, &len);
    if (!len) {
        add_err(r, row, col_name(r, C_TYPE), "is required");
        return -1;
    }
    int t = xd_event_type_parse(ts);
    if (t < 0)
        add_err(r, row, col_name(r, C_TYPE), "unknown event type '%s'", shown(ts, sh));
    return t;
}

/*
 * Every cell of a row of type t: used by the type, valid for its kind
 * (vals[c] then holds the value and ok[c] is 1), and the line-level cells
 * the type requires present. Returns 1 when anything was wrong.
 */
static int check_cells(struct reader *r, int t, size_t row, struct val *vals, unsigned char *ok)
{
    int bad = 0;
    for (size_t c = 0; c < r->ncols; c++) {
        struct cell *ce = &r->cells[c];
        int d = r->fc[c].def;
        ok[c] = 0;
        if (d < 0 || d == C_TYPE || ce->len == 0)
            continue;
        if (ce->bad) {
            bad = 1;
            continue;
        }
        if (cols[d].use[t].scope == S_NONE) {
            add_err(r, row, r->fc[c].disp, "not used by %s", xd_event_type_name(t));
            bad = 1;
            continue;
        }
        const char *m = convert_cell(cols[d].kind, r->rb.data + ce->off, ce->len, &vals[c]);
        if (m) {
            add_err(r, row, r->fc[c].disp, "%s", m);
            ce->bad = 1;
            bad = 1;
            continue;
        }
        ok[c] = 1;
    }
    for (int d = 0; d < C__COUNT; d++) {
        int c = r->defcol[d];
        if (cols[d].use[t].scope != S_LINE || !cols[d].use[t].req || c < 0)
            continue;
        if (r->cells[c].len == 0) {
            add_err(r, row, r->fc[c].disp, "is required");
            bad = 1;
        } else if (!ok[c]) {
            bad = 1;
        }
    }
    return bad;
}

/*
 * The event of a row, from its key: type + warehouse + document id, the
 * options filling in an empty warehouse (and a snapshot's customer). NULL
 * when a key cell is missing or invalid (reported) or on OOM (r->oom).
 */
static struct group *row_group(struct reader *r, int t, size_t row, const unsigned char *ok)
{
    size_t whl, l0, l1 = 0, lnl;
    const char *wh = cell_of(r, C_WAREHOUSE, &whl);
    const char *d0 = cell_of(r, types[t].doc[0], &l0);
    const char *d1 = types[t].doc[1] >= 0 ? cell_of(r, types[t].doc[1], &l1) : "";
    const char *lno = cell_of(r, C_LINE_NO, &lnl);
    const int kc[3] = {C_WAREHOUSE, types[t].doc[0], types[t].doc[1]};
    int keyok = 1;

    if (!whl && r->opt_warehouse)
        wh = r->opt_warehouse;
    if (!l0 && types[t].doc[0] == C_CUSTOMER && r->opt_customer)
        d0 = r->opt_customer;
    for (int i = 0; i < 3; i++) {
        int d = kc[i], c = d >= 0 ? r->defcol[d] : -1;
        if (c < 0)
            continue; /* not in the header: reported on the type's first row */
        if (r->cells[c].len && !ok[c]) {
            keyok = 0; /* invalid: reported */
        } else if (!r->cells[c].len && cols[d].use[t].req) {
            if ((d == C_WAREHOUSE && r->opt_warehouse) || (d == C_CUSTOMER && r->opt_customer))
                continue;
            add_err(r, row, r->fc[c].disp, "is required");
            keyok = 0;
        }
    }
    if (!keyok)
        return NULL;
    struct xd_buf *doc = &r->doc;
    xd_buf_reset(doc);
    xd_buf_puts(doc, d0);
    if (types[t].doc[1] >= 0) {
        xd_buf_putc(doc, ':');
        xd_buf_puts(doc, d1);
    }
    struct group *g = doc->oom ? NULL : find_group(r, t, wh, xd_buf_str(doc), row, lnl, lno);
    if (!g)
        r->oom = r->stop = 1;
    return g;
}

/* Header-level values: the first row that gives one sets it, the others must agree. */
static void merge_values(struct reader *r, struct group *g, size_t row, const struct val *vals,
                         const unsigned char *ok)
{
    char sh[MAX_SHOWN + 4], sh2[MAX_SHOWN + 4];
    for (size_t c = 0; c < r->ncols; c++) {
        int si = r->fc[c].slot[g->type];
        if (si < 0 || r->cells[c].len == 0)
            continue;
        struct slot *s = &g->slots[si];
        if (!ok[c]) {
            s->bad = 1;
            continue;
        }
        if (!s->v) {
            s->v = val_node(&vals[c]);
            s->row = row;
            if (!s->v)
                r->oom = 1;
        } else if (!val_same(s->v, &vals[c])) {
            char prev[32];
            const char *was = s->v->valuestring;
            if (cJSON_IsNumber(s->v)) {
                snprintf(prev, sizeof prev, "%.15g", s->v->valuedouble);
                was = prev;
            }
            add_err(r, row, r->fc[c].disp, "'%s' differs from '%s' in row %zu of the same event",
                    shown(r->rb.data + r->cells[c].off, sh), shown(was, sh2), s->row);
            g->bad = 1;
        }
    }
}

/* The row's element of lines[] / items[]. */
static void add_line(struct reader *r, struct group *g, size_t row, const struct val *vals,
                     const unsigned char *ok)
{
    int t = g->type;
    if (g->nlines >= XD_CSV_MAX_LINES) {
        if (!g->too_many)
            add_err(r, row, col_name(r, types[t].doc[0]), "more than %d %s for one event",
                    XD_CSV_MAX_LINES, types[t].lines);
        g->too_many = 1;
        g->bad = 1;
        return;
    }
    cJSON *line = cJSON_CreateObject();
    if (!line || add_line_row(r, g, row) < 0) {
        cJSON_Delete(line);
        r->oom = 1;
        return;
    }
    cJSON_AddItemToArray(g->lines, line);
    for (int d = 0; d < C__COUNT; d++) {
        int c = r->defcol[d];
        if (cols[d].use[t].scope != S_LINE || c < 0 || !ok[c])
            continue;
        cJSON *v = val_node(&vals[c]);
        if (!v || !cJSON_AddItemToObject(line, cols[d].key ? cols[d].key : cols[d].name, v)) {
            cJSON_Delete(v);
            r->oom = 1;
            return;
        }
    }
}

/*
 * One data row: checks every cell, finds the row's event, merges its
 * header-level values and adds its line. Problems are recorded and the row
 * goes on being checked as far as it can, so that one pass reports them all;
 * a row with any problem adds no line.
 */
static void read_row(struct reader *r)
{
    size_t row = r->rec_line;
    struct val vals[XD_CSV_MAX_COLUMNS];
    unsigned char ok[XD_CSV_MAX_COLUMNS];
    int bad = 0;

    if (++r->nrows > r->max_rows) {
        add_err(r, row, NULL, "more than %zu rows", r->max_rows);
        r->stop = 1;
        return;
    }
    if (r->extra_at) {
        char pos[24];
        snprintf(pos, sizeof pos, "%zu", r->extra_at);
        add_err(r, row, pos, "cell past the last column of the header (%zu columns)", r->ncols);
        bad = 1;
    }
    int t = row_type(r, row);
    if (t < 0)
        return;
    if (!r->type_seen[t])
        first_of_type(r, t, row);
    bad |= check_cells(r, t, row, vals, ok);
    if (r->type_blocked[t])
        return;
    struct group *g = row_group(r, t, row, ok);
    if (!g)
        return;
    g->bad |= bad;
    merge_values(r, g, row, vals, ok);
    if (g->lines && !bad)
        add_line(r, g, row, vals, ok);
}

/* ---- libcsv callbacks ---- */

static void on_cell(void *s, size_t len, void *data)
{
    struct reader *r = data;
    size_t idx = r->nf++;
    struct cell *ce;
    r->cell_line = r->line;
    if (r->stop)
        return;
    if (!r->have_header) {
        if (idx >= XD_CSV_MAX_COLUMNS + 1) {
            if (len)
                r->extra_at = idx + 1; /* any cell past the limit: too many columns */
            return;
        }
        if (r->nh == r->hcap) {
            size_t cap = r->hcap ? r->hcap * 2 : 32;
            struct cell *v = realloc(r->hcells, cap * sizeof *v);
            if (!v) {
                r->oom = r->stop = 1;
                return;
            }
            r->hcells = v;
            r->hcap = cap;
        }
        ce = &r->hcells[r->nh++];
    } else if (idx < r->ncols) {
        ce = &r->cells[idx];
    } else {
        if (len && !r->extra_at)
            r->extra_at = idx + 1;
        return;
    }
    ce->off = r->rb.len;
    ce->len = len;
    ce->bad = 0;
    if ((len && xd_buf_append(&r->rb, s, len) < 0) || xd_buf_putc(&r->rb, '\0') < 0)
        r->oom = r->stop = 1;
}

/* Reports problems with a cell's bytes (before its meaning is looked at). */
static void check_bytes(struct reader *r, struct cell *ce, size_t pos, const char *disp)
{
    const char *s = r->rb.data + ce->off;
    char posbuf[24];
    if (!disp) {
        snprintf(posbuf, sizeof posbuf, "%zu", pos + 1);
        disp = posbuf;
    }
    if (ce->len > r->max_cell) {
        add_err(r, r->rec_line, disp, "cell longer than %zu bytes", r->max_cell);
    } else if (memchr(s, '\0', ce->len)) {
        add_err(r, r->rec_line, disp, "contains a NUL byte");
    } else if (!utf8_valid((const unsigned char *)s, ce->len)) {
        add_err(r, r->rec_line, disp, "invalid UTF-8");
    } else {
        return;
    }
    ce->bad = 1;
    r->syntax = 1;
}

static void reset_record(struct reader *r)
{
    r->nf = 0;
    r->extra_at = 0;
    xd_buf_reset(&r->rb);
    for (size_t c = 0; c < r->ncols; c++)
        r->cells[c].len = 0, r->cells[c].bad = 0;
    r->nh = 0;
}

static void on_row(int term, void *data)
{
    struct reader *r = data;
    (void)term;
    if (r->stop || r->nf == 0)
        goto out;
    if (!r->have_header) {
        int blank = r->extra_at == 0;
        for (size_t c = 0; c < r->nh && blank; c++)
            blank = r->hcells[c].len == 0;
        if (blank)
            goto out; /* a row of empty cells before the header: skipped like a blank line */
        if (r->extra_at) {
            char pos[24];
            snprintf(pos, sizeof pos, "%d", XD_CSV_MAX_COLUMNS + 1);
            add_err(r, r->rec_line, pos, "more than %d columns", XD_CSV_MAX_COLUMNS);
            r->stop = 1;
            goto out;
        }
        for (size_t c = 0; c < r->nh; c++)
            check_bytes(r, &r->hcells[c], c, NULL);
        read_header(r);
        goto out;
    }
    int blank = r->extra_at == 0;
    for (size_t c = 0; c < r->ncols && blank; c++)
        blank = r->cells[c].len == 0;
    if (blank)
        goto out; /* a row of empty cells (",,,"): skipped like a blank line */
    for (size_t c = 0; c < r->ncols; c++)
        if (r->cells[c].len && r->fc[c].def >= 0)
            check_bytes(r, &r->cells[c], c, r->fc[c].disp);
    read_row(r);
out:
    reset_record(r);
}

/* ---- feeding libcsv line by line ---- */

/* How a message names the idx-th cell of the current record (buf: 24 bytes). */
static const char *cell_name(const struct reader *r, size_t idx, char *buf)
{
    if (r->have_header && idx < r->ncols)
        return r->fc[idx].disp;
    snprintf(buf, 24, "%zu", idx + 1);
    return buf;
}

/*
 * Feeds buf to libcsv one physical line at a time (a line ends with LF, CRLF
 * or a lone CR), so that the line a record starts on is known: a record
 * starts on the current line when the parser is between records as the line
 * begins. A quoting error is reported at its line, and reading goes on from
 * the next line with a fresh record.
 */
static void feed(struct reader *r, const char *buf, size_t len)
{
    size_t pos = 0;
    r->line = 1;
    while (pos < len && !r->stop) {
        const char *nl = memchr(buf + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - buf) + 1 : len;
        const char *cr = memchr(buf + pos, '\r', end - pos);
        if (cr && !(nl && cr + 1 == nl))
            end = (size_t)(cr - buf) + 1; /* a lone CR ends a line too */
        if (r->nf == 0 && !r->p.quoted)
            r->rec_line = r->cell_line = r->line;
        size_t n = csv_parse(&r->p, buf + pos, end - pos, on_cell, on_row, r);
        if (n < end - pos) {
            int e = csv_error(&r->p);
            char posbuf[24];
            const char *col = cell_name(r, r->nf, posbuf);
            if (e == CSV_EPARSE) {
                add_err(r, r->line, col,
                        r->p.quoted ? "unexpected character after a closing quote"
                                    : "unexpected quote in an unquoted cell (quote the cell "
                                      "and double the quote)");
                r->syntax = 1;
                csv_fini(&r->p, NULL, NULL, NULL); /* drop the record, keep reading */
                reset_record(r);
                if (!r->have_header)
                    r->stop = 1; /* the next line is no header: reading on would only confuse */
            } else if (e == CSV_ETOOBIG || csv_get_buffer_size(&r->p) >= tl_cell_cap) {
                add_err(r, r->cell_line, col, "cell longer than %zu bytes", r->max_cell);
                r->syntax = 1;
                r->stop = 1;
            } else {
                r->oom = r->stop = 1;
            }
        }
        pos = end;
        r->line++;
    }
    if (r->stop)
        return;
    r->line = r->line > 1 ? r->line - 1 : 1;
    if (csv_fini(&r->p, on_cell, on_row, r) != 0) {
        char posbuf[24];
        add_err(r, r->cell_line, cell_name(r, r->nf, posbuf),
                "quoted cell not closed (missing closing quote)");
        r->syntax = 1;
    }
}

/* ---- events ---- */

/* id: characters outside A-Za-z0-9._:- become '_' (one per character). */
static const cJSON *slot_value(const struct reader *r, const struct group *g, int d)
{
    int c = r->defcol[d];
    int si = c >= 0 ? r->fc[c].slot[g->type] : -1;
    return si >= 0 ? g->slots[si].v : NULL;
}

/*
 * Event ids: the event_id column, else <type>:<warehouse>:<document id>
 * (contract section 7, formats/docid.h: the same rule as X12's). Two events
 * with the same id are an error.
 */
static void finish_ids(struct reader *r)
{
    struct map ids = {0};
    struct xd_buf b;
    xd_buf_init(&b);
    for (size_t i = 0; i < r->ng && !r->oom; i++) {
        struct group *g = r->groups[i];
        const cJSON *given = slot_value(r, g, C_EVENT_ID);
        int d = given ? C_EVENT_ID : types[g->type].doc[0];
        xd_buf_reset(&b);
        if (given) {
            xd_buf_puts(&b, given->valuestring);
        } else {
            xd_docid_part(&b, xd_event_type_name(g->type));
            xd_docid_part(&b, g->wh);
            xd_docid_part(&b, g->doc);
            xd_docid_finish(&b);
        }
        if (b.oom) {
            r->oom = 1;
            break;
        }
        g->event_id = arena_strndup(r, b.data, b.len);
        struct ment *e = map_get(r, &ids, b.data, b.len);
        if (!e || !g->event_id)
            break;
        if (e->g) {
            char sh[MAX_SHOWN + 4];
            int c = r->defcol[d];
            int si = c >= 0 ? r->fc[c].slot[g->type] : -1;
            size_t row = si >= 0 && g->slots[si].v ? g->slots[si].row : g->first_row;
            add_err(r, row, col_name(r, d), "%s '%s' is also the id of the event at row %zu",
                    given ? "event id" : "derived event id", shown(b.data, sh), e->g->first_row);
        } else {
            e->g = g;
        }
    }
    xd_buf_dispose(&b);
    free(ids.t);
}

/* Header-level values required by the type and given by none of the event's rows. */
static void check_required(struct reader *r, const struct group *g)
{
    int t = g->type;
    for (int d = 0; d < C__COUNT; d++) {
        int sc = cols[d].use[t].scope, c = r->defcol[d];
        if (!cols[d].use[t].req || (sc != S_ENV && sc != S_DATA) || c < 0)
            continue; /* absent columns were reported once, on the type's first row */
        if (d == C_WAREHOUSE || d == types[t].doc[0] || d == types[t].doc[1])
            continue; /* keys: checked on every row */
        if (d == C_CUSTOMER && r->opt_customer)
            continue;
        const struct slot *s = &g->slots[r->fc[c].slot[t]];
        if (!s->v && !s->bad)
            add_err(r, g->first_row, r->fc[c].disp, "is required");
    }
}

/* Adds name: v to obj (creating obj's "carrier" first when asked). Takes v. */
static int put(cJSON *obj, const char *name, cJSON *v)
{
    if (!v)
        return XD_ENOMEM;
    if (!cJSON_AddItemToObject(obj, name, v)) {
        cJSON_Delete(v);
        return XD_ENOMEM;
    }
    return 0;
}

/* The event object of a group, members in table order. Takes the slots' values. */
static cJSON *build_event(struct reader *r, struct group *g)
{
    int t = g->type;
    cJSON *ev = cJSON_CreateObject(), *data = cJSON_CreateObject(), *carrier = NULL;
    if (!ev || !data)
        goto fail;
    for (int d = 0; d < C__COUNT; d++) {
        int sc = cols[d].use[t].scope, c = r->defcol[d];
        int si = c >= 0 ? r->fc[c].slot[t] : -1;
        const char *key = cols[d].key ? cols[d].key : cols[d].name;
        cJSON *v = NULL;
        if (d == C_EVENT_ID) {
            if (put(ev, "event_id", cJSON_CreateString(g->event_id)) < 0)
                goto fail;
            continue;
        }
        if (d == C_TYPE) {
            if (put(ev, "type", cJSON_CreateString(xd_event_type_name(t))) < 0)
                goto fail;
            continue;
        }
        if (sc != S_ENV && sc != S_DATA && sc != S_CARRIER)
            continue;
        if (si >= 0 && g->slots[si].v) {
            v = g->slots[si].v;
            g->slots[si].v = NULL;
        } else if (d == C_WAREHOUSE && *g->wh) {
            v = cJSON_CreateString(g->wh);
            if (!v)
                goto fail;
        } else if (d == C_CUSTOMER && cols[d].use[t].req && r->opt_customer) {
            v = cJSON_CreateString(r->opt_customer);
            if (!v)
                goto fail;
        } else {
            continue;
        }
        if (sc == S_CARRIER && !carrier) {
            carrier = cJSON_CreateObject();
            if (put(data, "carrier", carrier) < 0) {
                cJSON_Delete(v);
                goto fail;
            }
        }
        if (put(sc == S_ENV ? ev : sc == S_CARRIER ? carrier : data, key, v) < 0)
            goto fail;
    }
    for (size_t k = 0; k < r->nslots[t]; k++) {
        int c = r->slot_col[t][k];
        if (r->fc[c].def != C_EXTRA || !g->slots[k].v)
            continue;
        cJSON *v = g->slots[k].v;
        g->slots[k].v = NULL;
        if (put(data, r->fc[c].name, v) < 0)
            goto fail;
    }
    if (g->lines) {
        cJSON *lines = g->lines;
        g->lines = NULL;
        if (put(data, types[t].lines, lines) < 0)
            goto fail;
    }
    cJSON *d = data;
    data = NULL;
    if (put(ev, "data", d) < 0)
        goto fail;
    return ev;
fail:
    r->oom = 1;
    cJSON_Delete(data);
    cJSON_Delete(ev);
    return NULL;
}

/*
 * Maps a validation error's JSON path back to a row and column: an element
 * of lines[] to its row, a header-level member to the row that gave it.
 */
static void map_verr(struct reader *r, const struct group *g, const struct xd_verr *e)
{
    const char *p = e->path;
    int t = g->type, d = -1;
    size_t row = g->first_row;
    char member[64] = "";
    if (strncmp(p, "data.", 5) == 0) {
        p += 5;
        const char *ln = types[t].lines;
        size_t n = ln ? strlen(ln) : 0;
        if (ln && strncmp(p, ln, n) == 0 && p[n] == '[') {
            size_t i = strtoul(p + n + 1, NULL, 10);
            if (i < g->nlines)
                row = g->line_rows[i];
            const char *m = strchr(p + n, '.');
            p = m ? m + 1 : types[t].lines;
        } else if (strncmp(p, "carrier.", 8) == 0) {
            p += 8;
            for (int k = 0; k < C__COUNT && d < 0; k++)
                if (cols[k].use[t].scope == S_CARRIER && strcmp(cols[k].key, p) == 0)
                    d = k;
        }
    }
    snprintf(member, sizeof member, "%s", p);
    for (int k = 0; k < C__COUNT && d < 0; k++)
        if (cols[k].use[t].scope != S_NONE && strcmp(cols[k].name, member) == 0)
            d = k;
    if (d >= 0) {
        int c = r->defcol[d];
        int si = c >= 0 ? r->fc[c].slot[t] : -1;
        if (si >= 0 && g->slots[si].row)
            row = g->slots[si].row;
    }
    add_err(r, row, d >= 0 ? col_name(r, d) : member, "%s", e->message);
}

/* ---- entry points ---- */

static void reader_dispose(struct reader *r)
{
    for (size_t i = 0; i < r->ng; i++) {
        struct group *g = r->groups[i];
        for (size_t k = 0; k < r->nslots[g->type]; k++)
            cJSON_Delete(g->slots[k].v);
        cJSON_Delete(g->lines);
        free(g->line_rows);
        free(g);
    }
    free(r->groups);
    for (size_t c = 0; c < r->ncols; c++) {
        free(r->fc[c].name);
        free(r->fc[c].disp);
    }
    free(r->fc);
    free(r->cells);
    free(r->hcells);
    for (int t = 0; t < XD_EV__COUNT; t++)
        free(r->slot_col[t]);
    free(r->docs.t);
    while (r->arena) {
        struct arena_blk *b = r->arena;
        r->arena = b->next;
        free(b);
    }
    for (size_t i = 0; i < r->nerr; i++) {
        free(r->errs[i].path);
        free(r->errs[i].msg);
    }
    free(r->errs);
    xd_buf_dispose(&r->rb);
    xd_buf_dispose(&r->key);
    xd_buf_dispose(&r->doc);
    csv_free(&r->p);
}

int xd_csv_read_lim(const char *buf, size_t len, const struct xd_convert_opts *o,
                    const struct xd_csv_limits *lim, cJSON **events, struct xd_verrs *errs)
{
    struct reader r = {0};
    cJSON *out = NULL;
    int rc = 0;

    *events = NULL;
    r.o = o;
    r.opt_customer = o && o->customer && *o->customer ? o->customer : NULL;
    r.opt_warehouse = o && o->warehouse && *o->warehouse ? o->warehouse : NULL;
    r.max_rows = lim && lim->max_rows ? lim->max_rows : XD_CSV_MAX_ROWS;
    r.max_cell = lim && lim->max_cell ? lim->max_cell : XD_CSV_MAX_CELL;
    for (int d = 0; d < C__COUNT; d++)
        r.defcol[d] = -1;
    if (getrandom(r.seed, sizeof r.seed, GRND_NONBLOCK) != (ssize_t)sizeof r.seed) {
        r.seed[0] = (uintptr_t)&r ^ 0x9e3779b97f4a7c15ULL;
        r.seed[1] = (uint64_t)len * 0xbf58476d1ce4e5b9ULL;
    }
    xd_buf_init(&r.rb);
    xd_buf_init(&r.key);
    xd_buf_init(&r.doc);
    csv_init(&r.p, CSV_STRICT | CSV_STRICT_FINI);
    csv_set_realloc_func(&r.p, capped_realloc);
    csv_set_blk_size(&r.p, 4096);
    tl_cell_cap = r.max_cell + 1;

    if (len >= 3 && memcmp(buf, "\xef\xbb\xbf", 3) == 0)
        buf += 3, len -= 3;
    feed(&r, buf, len);
    if (!r.have_header && !r.stop && !r.oom && r.nerr == 0) {
        add_err(&r, 1, NULL, "empty file: no header row");
        r.syntax = 1;
    }

    if (!r.oom && !r.stop) {
        for (size_t i = 0; i < r.ng; i++)
            check_required(&r, r.groups[i]);
        finish_ids(&r);
    }
    if (!r.oom && r.nerr == 0 && r.dropped == 0) {
        struct xd_verrs ve = {0};
        out = cJSON_CreateArray();
        if (!out)
            r.oom = 1;
        for (size_t i = 0; i < r.ng && !r.oom; i++) {
            struct group *g = r.groups[i];
            cJSON *ev = build_event(&r, g);
            if (!ev)
                break;
            cJSON_AddItemToArray(out, ev);
            if (xd_event_validate(ev, NULL, &ve) == XD_ENOMEM)
                r.oom = 1;
            for (size_t k = 0; k < ve.n; k++)
                map_verr(&r, g, &ve.v[k]);
            xd_verrs_dispose(&ve);
        }
    }

    if (r.oom) {
        rc = XD_ENOMEM;
        xd_verrs_add(errs, "", "out of memory");
    } else if (r.nerr || r.dropped) {
        rc = r.syntax ? XD_EPARSE : XD_ESCHEMA;
        qsort(r.errs, r.nerr, sizeof *r.errs, cerr_cmp);
        for (size_t i = 0; i < r.nerr; i++)
            if (xd_verrs_add(errs, r.errs[i].path, "%s", r.errs[i].msg) < 0)
                rc = XD_ENOMEM;
        errs->dropped += r.dropped;
    }
    if (rc < 0) {
        cJSON_Delete(out);
        out = NULL;
    }
    *events = out;
    reader_dispose(&r);
    return rc;
}

int xd_csv_read(const char *buf, size_t len, const struct xd_convert_opts *o, cJSON **events,
                struct xd_verrs *errs)
{
    return xd_csv_read_lim(buf, len, o, NULL, events, errs);
}
