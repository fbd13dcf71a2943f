/*
 * The simulated WMS: one day of a 3PL's activity, posted to the hub the way
 * a warehouse system would, from its own thread.
 *
 * The day is generated up front from a seed, so the same seed and event
 * count always give the same events and therefore the same charges: three
 * warehouses (DC1-DC3) working for three customers (ACME, GLOBEX, INITECH);
 * shipments with 1-5 lines, carriers, parcels, weights and (for ACME)
 * freight; a few voids of earlier shipments; receipts with pallets and
 * cartons; and an inventory snapshot per warehouse and customer at the end
 * of the day. One shipment carries the SKU the reference ERP refuses, so the
 * day has one dead letter on purpose.
 *
 * Posting: consecutive events go as {"events": [...]} batches of 5-40 or one
 * at a time to POST /v1/events, spread over opts.duration_ms. Three blocks
 * of the day go as files instead, dropped into the hub's watched inbox the
 * way a partner does it (written as NAME.tmp, then renamed to NAME; see
 * docs/inbox.md): the receipts of a night shift as one CSV batch (contract
 * section 8), a few receipts as one X12 944 and a few shipments as one X12
 * 945 interchange (section 7); the hub derives their event ids from the
 * documents. Like a real WMS it also sends some things twice (a re-sent
 * event, once a whole batch as after a lost answer, and the 945 again under
 * new control numbers, as partners do, dropped once the first is processed):
 * the hub must take those as duplicates. 429, 503 and transport errors are
 * retried after a pause; any other refusal is counted as rejected (it should
 * not happen: everything generated is valid). At the end the thread waits
 * (bounded) until every dropped file is in the inbox's processed/ (or
 * rejected/), marks the events of processed files as acknowledged and reads
 * the 997s written back beside the X12 files.
 */
#include "demo/demo_int.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/err.h"
#include "ingest/event.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define BATCH_MIN    5
#define BATCH_MAX    40
#define POST_TRIES   10    /* attempts of one POST on 429/503/transport errors */
#define FILE_WAIT_MS 30000 /* most we wait for the inbox to process the dropped files */

static const char *const WAREHOUSES[] = {"DC1", "DC2", "DC3"};
#define NWH 3

/* A customer: its share of the work, its SKUs, and the currency its freight is billed in. */
struct customer {
    const char *name;
    unsigned share; /* percent of shipments and receipts */
    const char *sku_prefix;
    unsigned nskus;
    const char *currency;
    unsigned freight; /* percent of its shipments that carry freight */
};
static const struct customer CUSTOMERS[] = {
    {"ACME", 45, "ACM-", 40, "USD", 50},
    {"GLOBEX", 35, "GX-", 30, "EUR", 0},
    {"INITECH", 20, "INI-", 25, "GBP", 0},
};
#define NCUST 3

static const struct {
    const char *code, *service, *track_prefix;
} CARRIERS[] = {
    {"UPS", "GROUND", "1Z"},    {"FEDEX", "2DAY", "7489"}, {"DHL", "EXPRESS", "JD01"},
    {"USPS", "PRIORITY", "94"}, {"XPO", "LTL", "XPO"},
};
#define NCARRIERS (sizeof CARRIERS / sizeof CARRIERS[0])

static const struct {
    const char *city, *region, *country;
} CITIES[] = {
    {"Columbus", "OH", "US"}, {"Reno", "NV", "US"},      {"Atlanta", "GA", "US"},
    {"Dallas", "TX", "US"},   {"Toronto", "ON", "CA"},   {"Chicago", "IL", "US"},
    {"Denver", "CO", "US"},   {"Allentown", "PA", "US"},
};
#define NCITIES (sizeof CITIES / sizeof CITIES[0])

static const char *const SUPPLIERS[] = {"Shenzhen Brightway", "Ohio Valley Plastics",
                                        "Nordic Fibre AB", "Monterrey Metalworks",
                                        "Pacific Packaging"};
static const char *const VOID_REASONS[] = {"customer cancelled", "address could not be verified",
                                           "duplicate order", "carrier refused pickup"};

/* A file the WMS drops: the events [from, to) of the day. */
struct file_doc {
    int channel; /* XD_WMS_CSV, XD_WMS_X12 or XD_WMS_X944 */
    size_t from, to;
    char *text;  /* the document */
    char *again; /* sent once more afterwards (the 945 under new control numbers), or NULL */
};

struct xd_wms {
    struct xd_wms_opts o;
    char *url, *tag, *day, *bad_sku;
    struct xd_wms_event *ev;
    size_t n;
    struct file_doc files[3];
    size_t nfiles;
    char *inbox;
    pthread_t thread;
    int started;
    pthread_mutex_t mu; /* guards p, stop and ev[].acked while the thread runs */
    struct xd_wms_progress p;
    int stop;
    uint64_t rng;
};

/* ---- a small deterministic random source (splitmix64) ---- */

static uint64_t next64(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform in [lo, hi]. */
static unsigned between(uint64_t *s, unsigned lo, unsigned hi)
{
    return lo + (unsigned)(next64(s) % (uint64_t)(hi - lo + 1));
}

static int chance(uint64_t *s, unsigned percent)
{
    return between(s, 1, 100) <= percent;
}

static const struct customer *pick_customer(uint64_t *s)
{
    unsigned r = between(s, 1, 100), acc = 0;
    for (size_t i = 0; i < NCUST; i++) {
        acc += CUSTOMERS[i].share;
        if (r <= acc)
            return &CUSTOMERS[i];
    }
    return &CUSTOMERS[NCUST - 1];
}

static void sku(char *out, size_t cap, const struct customer *c, unsigned i)
{
    snprintf(out, cap, "%s%04u", c->sku_prefix, 1001 + i % c->nskus);
}

/* ---- generating the day ---- */

/* occurred_at for second-of-day sec. */
static void stamp(const struct xd_wms *w, unsigned sec, char *out, size_t cap)
{
    snprintf(out, cap, "%sT%02u:%02u:%02uZ", w->day, sec / 3600, sec / 60 % 60, sec % 60);
}

/* Starts an event: envelope and an empty data object (returned). */
static cJSON *envelope(struct xd_wms *w, size_t i, const char *type, unsigned sec, const char *wh,
                       cJSON **root)
{
    char id[64], at[32], src[32];
    snprintf(id, sizeof id, "wms-%s-%06zu", w->tag, i + 1);
    stamp(w, sec, at, sizeof at);
    snprintf(src, sizeof src, "wms-%s", wh);
    for (char *p = src; *p; p++)
        *p = (char)(*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p);
    *root = cJSON_CreateObject();
    cJSON_AddStringToObject(*root, "event_id", id);
    cJSON_AddStringToObject(*root, "type", type);
    cJSON_AddStringToObject(*root, "occurred_at", at);
    cJSON_AddStringToObject(*root, "source", src);
    cJSON_AddNumberToObject(*root, "schema_version", 1);
    cJSON *data = cJSON_AddObjectToObject(*root, "data");
    cJSON_AddStringToObject(data, "warehouse", wh);
    return data;
}

/* Records event i from its tree (which it deletes). 0 or XD_ENOMEM. */
static int keep(struct xd_wms *w, size_t i, cJSON *root, int type, const char *wh, const char *cust,
                const char *doc, int bad)
{
    struct xd_wms_event *e = &w->ev[i];
    e->channel = XD_WMS_JSON;
    e->json = cJSON_PrintUnformatted(root);
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(root, "event_id");
    e->event_id = strdup(id->valuestring);
    cJSON_Delete(root);
    if (!e->json || !e->event_id)
        return XD_ENOMEM;
    e->type = type;
    snprintf(e->warehouse, sizeof e->warehouse, "%s", wh);
    snprintf(e->customer, sizeof e->customer, "%s", cust);
    snprintf(e->doc, sizeof e->doc, "%s", doc);
    e->planned_bad = bad;
    return 0;
}

static int gen_shipment(struct xd_wms *w, size_t i, unsigned sec, int bad)
{
    uint64_t *s = &w->rng;
    const struct customer *c = bad ? &CUSTOMERS[1] : pick_customer(s);
    const char *wh = bad ? "DC2" : WAREHOUSES[between(s, 0, NWH - 1)];
    char doc[48], buf[64];
    snprintf(doc, sizeof doc, "SHP-%s-%05zu", w->tag, i + 1);
    cJSON *root, *d = envelope(w, i, "shipment.confirmed", sec, wh, &root);
    cJSON_AddStringToObject(d, "shipment_id", doc);
    snprintf(buf, sizeof buf, "SO-%s-%05u", w->tag, between(s, 10000, 99999));
    cJSON_AddStringToObject(d, "order_id", buf);
    cJSON_AddStringToObject(d, "customer", c->name);
    cJSON_AddStringToObject(d, "ship_date", w->day);
    size_t k = between(s, 0, NCARRIERS - 1);
    cJSON *car = cJSON_AddObjectToObject(d, "carrier");
    cJSON_AddStringToObject(car, "code", CARRIERS[k].code);
    cJSON_AddStringToObject(car, "service", CARRIERS[k].service);
    snprintf(buf, sizeof buf, "%s%010llu", CARRIERS[k].track_prefix,
             (unsigned long long)(next64(s) % 10000000000ull));
    cJSON_AddStringToObject(car, "tracking", buf);
    unsigned nlines = between(s, 1, 5), units = 0, grams = 0;
    cJSON *lines = cJSON_AddArrayToObject(d, "lines");
    unsigned first = between(s, 0, c->nskus - 1);
    for (unsigned l = 0; l < nlines; l++) {
        cJSON *line = cJSON_CreateObject();
        cJSON_AddNumberToObject(line, "line_no", l + 1);
        if (bad && l == 0)
            snprintf(buf, sizeof buf, "%s", w->bad_sku);
        else
            sku(buf, sizeof buf, c, first + l * 7);
        cJSON_AddStringToObject(line, "sku", buf);
        unsigned r = between(s, 1, 100);
        unsigned qty = r <= 70   ? between(s, 1, 12)
                       : r <= 95 ? between(s, 12, 60)
                                 : between(s, 80, 260);
        cJSON_AddNumberToObject(line, "qty", qty);
        cJSON_AddItemToArray(lines, line);
        units += qty;
        grams += qty * between(s, 150, 3200);
    }
    cJSON_AddNumberToObject(d, "packages", 1 + units / 12);
    if (units > 150)
        cJSON_AddNumberToObject(d, "pallets", 1 + units / 300);
    cJSON_AddNumberToObject(d, "weight_kg", (double)((grams + 50) / 100) / 10.0);
    if (chance(s, c->freight)) {
        cJSON *f = cJSON_AddObjectToObject(d, "freight");
        snprintf(buf, sizeof buf, "%u.%02u", between(s, 8, 140), between(s, 0, 99));
        cJSON_AddStringToObject(f, "amount", buf);
        cJSON_AddStringToObject(f, "currency", c->currency);
    }
    size_t city = between(s, 0, NCITIES - 1);
    cJSON *to = cJSON_AddObjectToObject(d, "ship_to");
    snprintf(buf, sizeof buf, "Store %u", between(s, 100, 999));
    cJSON_AddStringToObject(to, "name", buf);
    cJSON_AddStringToObject(to, "city", CITIES[city].city);
    cJSON_AddStringToObject(to, "region", CITIES[city].region);
    cJSON_AddStringToObject(to, "country", CITIES[city].country);
    return keep(w, i, root, XD_EV_SHIPMENT_CONFIRMED, wh, c->name, doc, bad);
}

static int gen_void(struct xd_wms *w, size_t i, unsigned sec, const struct xd_wms_event *ship)
{
    cJSON *root, *d = envelope(w, i, "shipment.voided", sec, ship->warehouse, &root);
    cJSON_AddStringToObject(d, "shipment_id", ship->doc);
    cJSON_AddStringToObject(d, "reason", VOID_REASONS[between(&w->rng, 0, 3)]);
    return keep(w, i, root, XD_EV_SHIPMENT_VOIDED, ship->warehouse, ship->customer, ship->doc, 0);
}

/* only: the customer to use (the 944's receipts), or NULL to pick one. */
static int gen_receipt(struct xd_wms *w, size_t i, unsigned sec, const struct customer *only)
{
    uint64_t *s = &w->rng;
    const struct customer *c = pick_customer(s);
    if (only)
        c = only;
    const char *wh = WAREHOUSES[between(s, 0, NWH - 1)];
    char doc[48], buf[64];
    snprintf(doc, sizeof doc, "RCV-%s-%05zu", w->tag, i + 1);
    cJSON *root, *d = envelope(w, i, "goods.received", sec, wh, &root);
    cJSON_AddStringToObject(d, "receipt_id", doc);
    cJSON_AddStringToObject(d, "customer", c->name);
    snprintf(buf, sizeof buf, "PO-%06u", between(s, 100000, 999999));
    cJSON_AddStringToObject(d, "po_number", buf);
    cJSON_AddStringToObject(d, "supplier", SUPPLIERS[between(s, 0, 4)]);
    cJSON_AddNumberToObject(d, "pallets", between(s, 1, 8));
    cJSON_AddNumberToObject(d, "cartons", between(s, 6, 120));
    unsigned nlines = between(s, 1, 4);
    cJSON *lines = cJSON_AddArrayToObject(d, "lines");
    unsigned first = between(s, 0, c->nskus - 1);
    for (unsigned l = 0; l < nlines; l++) {
        cJSON *line = cJSON_CreateObject();
        sku(buf, sizeof buf, c, first + l * 3);
        cJSON_AddStringToObject(line, "sku", buf);
        cJSON_AddNumberToObject(line, "qty", 24 * between(s, 1, 20));
        snprintf(buf, sizeof buf, "L%.2s%.2s-%02u", w->day + 5, w->day + 8, between(s, 1, 40));
        cJSON_AddStringToObject(line, "lot", buf);
        cJSON_AddItemToArray(lines, line);
    }
    return keep(w, i, root, XD_EV_GOODS_RECEIVED, wh, c->name, doc, 0);
}

static int gen_snapshot(struct xd_wms *w, size_t i, unsigned sec, const char *wh,
                        const struct customer *c)
{
    uint64_t *s = &w->rng;
    char buf[64];
    cJSON *root, *d = envelope(w, i, "inventory.snapshot", sec, wh, &root);
    cJSON_AddStringToObject(d, "customer", c->name);
    cJSON_AddStringToObject(d, "as_of", w->day);
    cJSON *items = cJSON_AddArrayToObject(d, "items");
    unsigned n = between(s, 3, 8), first = between(s, 0, c->nskus - 1);
    for (unsigned k = 0; k < n; k++) {
        cJSON *it = cJSON_CreateObject();
        sku(buf, sizeof buf, c, first + k * 5);
        cJSON_AddStringToObject(it, "sku", buf);
        cJSON_AddNumberToObject(it, "qty", between(s, 20, 2400));
        cJSON_AddNumberToObject(it, "pallets", between(s, 1, 14));
        cJSON_AddItemToArray(items, it);
    }
    return keep(w, i, root, XD_EV_INVENTORY_SNAPSHOT, wh, c->name, "", 0);
}

/* ---- the files ---- */

static long long num(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? (long long)v->valuedouble : 0;
}

static const char *str(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : "";
}

/* A CSV cell: quoted when it holds a comma, a quote or a line break (RFC 4180). */
static void csv_cell(struct xd_buf *b, const char *s, int last)
{
    if (strpbrk(s, ",\"\r\n")) {
        xd_buf_putc(b, '"');
        for (; *s; s++) {
            if (*s == '"')
                xd_buf_putc(b, '"');
            xd_buf_putc(b, *s);
        }
        xd_buf_putc(b, '"');
    } else {
        xd_buf_puts(b, s);
    }
    xd_buf_puts(b, last ? "\r\n" : ",");
}

/* The receipts of events [from, to) as one CSV file: a row per line. */
static void write_csv(struct xd_buf *b, cJSON *const *ev, size_t n)
{
    xd_buf_puts(b, "type,warehouse,customer,occurred_at,receipt_id,po_number,supplier,pallets,"
                   "cartons,sku,qty,lot\r\n");
    for (size_t i = 0; i < n; i++) {
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(ev[i], "data"), *line;
        cJSON_ArrayForEach(line, cJSON_GetObjectItemCaseSensitive(d, "lines"))
        {
            char pallets[24], cartons[24], qty[24];
            snprintf(pallets, sizeof pallets, "%lld", num(d, "pallets"));
            snprintf(cartons, sizeof cartons, "%lld", num(d, "cartons"));
            snprintf(qty, sizeof qty, "%lld", num(line, "qty"));
            csv_cell(b, str(ev[i], "type"), 0);
            csv_cell(b, str(d, "warehouse"), 0);
            csv_cell(b, str(d, "customer"), 0);
            csv_cell(b, str(ev[i], "occurred_at"), 0);
            csv_cell(b, str(d, "receipt_id"), 0);
            csv_cell(b, str(d, "po_number"), 0);
            csv_cell(b, str(d, "supplier"), 0);
            csv_cell(b, pallets, 0);
            csv_cell(b, cartons, 0);
            csv_cell(b, str(line, "sku"), 0);
            csv_cell(b, qty, 0);
            csv_cell(b, str(line, "lot"), 1);
        }
    }
}

/*
 * The shipments of events [from, to) as one X12 945 interchange, one
 * transaction set each, with control number ctl (ISA13 and GS06).
 */
static void write_945(struct xd_buf *b, const struct xd_wms *w, cJSON *const *ev, size_t n,
                      unsigned ctl)
{
    char date[9];
    snprintf(date, sizeof date, "%.4s%.2s%.2s", w->day, w->day + 5, w->day + 8);
    xd_buf_printf(b,
                  "ISA*00*          *00*          *ZZ*%-15s*ZZ*%-15s*%s*2200*U*00401*%09u*0*P*>~\n",
                  "WMS3PL", "CROSSDOCK", date + 2, ctl);
    xd_buf_printf(b, "GS*SW*WMS3PL*CROSSDOCK*%s*2200*%u*X*004010~\n", date, ctl);
    for (size_t i = 0; i < n; i++) {
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(ev[i], "data"), *line;
        const cJSON *car = cJSON_GetObjectItemCaseSensitive(d, "carrier");
        const cJSON *wt = cJSON_GetObjectItemCaseSensitive(d, "weight_kg");
        unsigned segs = 0;
        long long units = 0;
        xd_buf_printf(b, "ST*945*%04zu~\n", i + 1), segs++;
        xd_buf_printf(b, "W06*F*%s*%s*%s***%s~\n", str(d, "order_id"), date, str(d, "shipment_id"),
                      str(car, "tracking")),
            segs++;
        xd_buf_printf(b, "N1*DE*%s*9*%s~\n", str(d, "customer"), str(d, "customer")), segs++;
        xd_buf_printf(b, "N1*SF*%s*9*%s~\n", str(d, "warehouse"), str(d, "warehouse")), segs++;
        xd_buf_printf(b, "W27*M*%s*%s*PP~\n", str(car, "code"), str(car, "service")), segs++;
        cJSON_ArrayForEach(line, cJSON_GetObjectItemCaseSensitive(d, "lines"))
        {
            long long q = num(line, "qty");
            units += q;
            xd_buf_printf(b, "LX*%lld~\n", num(line, "line_no")), segs++;
            xd_buf_printf(b, "W12*CC*%lld*%lld*0*EA**VN*%s~\n", q, q, str(line, "sku")), segs++;
        }
        xd_buf_printf(b, "W03*%lld*%.1f*KG~\n", units, cJSON_IsNumber(wt) ? wt->valuedouble : 0.0),
            segs++;
        xd_buf_printf(b, "SE*%u*%04zu~\n", segs + 1, i + 1);
    }
    xd_buf_printf(b, "GE*%zu*%u~\n", n, ctl);
    xd_buf_printf(b, "IEA*1*%09u~\n", ctl);
}

/*
 * The receipts of events [from, to) as one X12 944 interchange, one
 * transaction set each, with control number ctl (docs/x12.md, "Mapping").
 */
static void write_944(struct xd_buf *b, const struct xd_wms *w, cJSON *const *ev, size_t n,
                      unsigned ctl)
{
    char date[9];
    snprintf(date, sizeof date, "%.4s%.2s%.2s", w->day, w->day + 5, w->day + 8);
    xd_buf_printf(b,
                  "ISA*00*          *00*          *ZZ*%-15s*ZZ*%-15s*%s*2200*U*00401*%09u*0*P*>~\n",
                  "WMS3PL", "CROSSDOCK", date + 2, ctl);
    xd_buf_printf(b, "GS*RE*WMS3PL*CROSSDOCK*%s*2200*%u*X*004010~\n", date, ctl);
    for (size_t i = 0; i < n; i++) {
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(ev[i], "data"), *line;
        unsigned segs = 0, lx = 0;
        long long units = 0;
        xd_buf_printf(b, "ST*944*%04zu~\n", i + 1), segs++;
        xd_buf_printf(b, "W17*F*%s*%s*%s~\n", date, str(d, "receipt_id"), str(d, "po_number")),
            segs++;
        xd_buf_printf(b, "N1*DE*%s*9*%s~\n", str(d, "customer"), str(d, "customer")), segs++;
        xd_buf_printf(b, "N1*WH*%s*9*%s~\n", str(d, "warehouse"), str(d, "warehouse")), segs++;
        cJSON_ArrayForEach(line, cJSON_GetObjectItemCaseSensitive(d, "lines"))
        {
            long long q = num(line, "qty");
            units += q;
            xd_buf_printf(b, "LX*%u~\n", ++lx), segs++;
            xd_buf_printf(b, "W07*%lld*EA**VN*%s***%s~\n", q, str(line, "sku"), str(line, "lot")),
                segs++;
        }
        xd_buf_printf(b, "W14*%lld~\n", units), segs++;
        xd_buf_printf(b, "SE*%u*%04zu~\n", segs + 1, i + 1);
    }
    xd_buf_printf(b, "GE*%zu*%u~\n", n, ctl);
    xd_buf_printf(b, "IEA*1*%09u~\n", ctl);
}

/*
 * Turns events [from, to), generated as JSON, into one file of the channel:
 * the document is written from their trees, and each event takes the id the
 * hub derives for it (`<type>:<warehouse>:<document id>`, contract 7).
 */
static int make_file(struct xd_wms *w, int channel, size_t from, size_t to)
{
    struct file_doc *f = &w->files[w->nfiles];
    cJSON **trees = calloc(to - from, sizeof *trees);
    struct xd_buf b, again;
    xd_buf_init(&b);
    xd_buf_init(&again);
    int rc = trees ? 0 : XD_ENOMEM;
    for (size_t i = from; rc == 0 && i < to; i++)
        if (!(trees[i - from] = cJSON_Parse(w->ev[i].json)))
            rc = XD_ENOMEM;
    if (rc == 0 && channel == XD_WMS_CSV) {
        write_csv(&b, trees, to - from);
    } else if (rc == 0 && channel == XD_WMS_X944) {
        write_944(&b, w, trees, to - from, 103);
    } else if (rc == 0) {
        write_945(&b, w, trees, to - from, 101);
        write_945(&again, w, trees, to - from, 102);
    }
    for (size_t i = from; rc == 0 && i < to; i++) {
        struct xd_wms_event *e = &w->ev[i];
        char id[128];
        snprintf(id, sizeof id, "%s:%s:%s", xd_event_type_name((enum xd_event_type)e->type),
                 e->warehouse, e->doc);
        free(e->event_id);
        cJSON_free(e->json);
        e->json = NULL;
        e->event_id = strdup(id);
        e->channel = channel;
        if (!e->event_id)
            rc = XD_ENOMEM;
    }
    for (size_t i = 0; trees && i < to - from; i++)
        cJSON_Delete(trees[i]);
    free(trees);
    if (rc == 0 && (b.oom || again.oom))
        rc = XD_ENOMEM;
    if (rc < 0) {
        xd_buf_dispose(&b);
        xd_buf_dispose(&again);
        return rc;
    }
    *f = (struct file_doc){.channel = channel,
                           .from = from,
                           .to = to,
                           .text = xd_buf_steal(&b),
                           .again = again.len ? xd_buf_steal(&again) : NULL};
    xd_buf_dispose(&again);
    w->nfiles++;
    return 0;
}

/*
 * The day: the flow of shipments, voids and receipts from 06:00 to 21:00,
 * then the snapshots at 22:00. The shipment at the middle of the flow is
 * the planned bad one; voids pick an earlier shipment not voided before
 * (never the bad one: its dead letter holds its key).
 */
static int generate(struct xd_wms *w)
{
    size_t n = w->o.events;
    size_t snaps = n >= 60 ? NWH * NCUST : n >= 20 ? NCUST : 0;
    size_t flow = n - snaps;
    size_t bad = w->o.bad_sku ? flow / 2 : (size_t)-1;
    /* The file blocks: receipts for the CSV at 60% of the flow, shipments for the 945 at 80%. */
    size_t csv_at = flow * 6 / 10, csv_n = n >= 60 ? 5 : n >= 20 ? 2 : 0;
    size_t x12_at = flow * 8 / 10, x12_n = n >= 60 ? 3 : n >= 20 ? 1 : 0;
    /* Receipts for the 944 at 70% (after the CSV's), all INITECH's: a 944 carries lines, not
       pallets or cartons, and INITECH's card charges receipts per line. */
    size_t x944_at = flow * 7 / 10, x944_n = n >= 60 ? 2 : n >= 20 ? 1 : 0;
    if (x944_at < csv_at + csv_n)
        x944_at = csv_at + csv_n;
    if (x944_at + x944_n > x12_at)
        x944_n = x944_at < x12_at ? x12_at - x944_at : 0;
    size_t *voidable = calloc(flow ? flow : 1, sizeof *voidable); /* shipments not voided yet */
    size_t nvoidable = 0;
    if (!voidable)
        return XD_ENOMEM;
    int rc = 0;
    for (size_t i = 0; i < flow && rc == 0; i++) {
        unsigned sec = 6 * 3600 + (unsigned)(i * 15 * 3600 / (flow ? flow : 1));
        unsigned r = between(&w->rng, 1, 100);
        if (i == bad) {
            rc = gen_shipment(w, i, sec, 1);
        } else if (i >= csv_at && i < csv_at + csv_n) {
            rc = gen_receipt(w, i, sec, NULL);
        } else if (i >= x944_at && i < x944_at + x944_n) {
            rc = gen_receipt(w, i, sec, &CUSTOMERS[2]);
        } else if (i >= x12_at && i < x12_at + x12_n) {
            rc = gen_shipment(w, i, sec, 0);
            voidable[nvoidable++] = i;
        } else if (r <= 4 && nvoidable > 0) {
            size_t k = between(&w->rng, 0, (unsigned)nvoidable - 1);
            rc = gen_void(w, i, sec, &w->ev[voidable[k]]);
            voidable[k] = voidable[--nvoidable];
        } else if (r <= 66) {
            rc = gen_shipment(w, i, sec, 0);
            voidable[nvoidable++] = i;
        } else {
            rc = gen_receipt(w, i, sec, NULL);
        }
    }
    for (size_t k = 0; k < snaps && rc == 0; k++)
        rc = gen_snapshot(w, flow + k, 22 * 3600 + (unsigned)k * 60, WAREHOUSES[k % NWH],
                          &CUSTOMERS[k / NWH % NCUST]);
    free(voidable);
    if (rc == 0 && csv_n)
        rc = make_file(w, XD_WMS_CSV, csv_at, csv_at + csv_n);
    if (rc == 0 && x944_n)
        rc = make_file(w, XD_WMS_X944, x944_at, x944_at + x944_n);
    if (rc == 0 && x12_n)
        rc = make_file(w, XD_WMS_X12, x12_at, x12_at + x12_n);
    return rc;
}

int xd_wms_create(const struct xd_wms_opts *o, struct xd_wms **out, struct xd_buf *err)
{
    *out = NULL;
    struct xd_wms *w = calloc(1, sizeof *w);
    if (!w)
        return XD_ENOMEM;
    w->o = *o;
    w->url = strdup(o->url);
    w->tag = strdup(o->tag);
    w->day = strdup(o->day);
    w->bad_sku = o->bad_sku ? strdup(o->bad_sku) : NULL;
    w->inbox = strdup(o->inbox ? o->inbox : ".");
    w->n = o->events;
    w->ev = calloc(w->n ? w->n : 1, sizeof *w->ev);
    w->rng = o->seed;
    pthread_mutex_init(&w->mu, NULL);
    w->p.total = (unsigned)w->n;
    int rc = XD_ENOMEM;
    if (!w->url || !w->tag || !w->day || (o->bad_sku && !w->bad_sku) || !w->ev || !w->inbox)
        goto fail;
    rc = generate(w);
    if (rc < 0)
        goto fail;
    *out = w;
    return 0;
fail:
    if (err)
        xd_buf_printf(err, "wms: cannot generate the day: %s", xd_strerror(rc));
    xd_wms_destroy(w);
    return rc;
}

/* ---- posting ---- */

static size_t on_body(char *p, size_t size, size_t n, void *ctx)
{
    return xd_buf_append(ctx, p, size * n) == 0 ? size * n : 0;
}

static int stopping(struct xd_wms *w)
{
    pthread_mutex_lock(&w->mu);
    int s = w->stop;
    pthread_mutex_unlock(&w->mu);
    return s;
}

/* Sleeps until mono time until_ms, waking early when asked to stop. 0, or -1 when stopping. */
static int sleep_until(struct xd_wms *w, int64_t until_ms)
{
    for (;;) {
        if (stopping(w))
            return -1;
        int64_t left = until_ms - xd_mono_ms();
        if (left <= 0)
            return 0;
        if (left > 50)
            left = 50;
        struct timespec ts = {0, (long)left * 1000000L};
        nanosleep(&ts, NULL);
    }
}

/* Marks the ids of a 202 answer's list as acknowledged; returns how many there were. */
static unsigned ack(struct xd_wms *w, const cJSON *list)
{
    unsigned n = 0;
    const cJSON *id;
    cJSON_ArrayForEach(id, list)
    {
        n++;
        if (!cJSON_IsString(id))
            continue;
        const char *dash = strrchr(id->valuestring, '-');
        size_t i = dash ? strtoul(dash + 1, NULL, 10) : 0;
        if (i >= 1 && i <= w->n && strcmp(w->ev[i - 1].event_id, id->valuestring) == 0)
            w->ev[i - 1].acked = 1;
    }
    return n;
}

/*
 * POSTs body (nevents events) and books the answer. A 429, a 503 or a
 * transport error is tried again after a pause (Retry-After when given),
 * up to POST_TRIES times.
 */
/* Where a POST goes and what it carries. */
struct dest {
    const char *url;
    struct curl_slist *headers; /* Content-Type and no Expect: 100-continue */
    const char *what;           /* for messages: "POST /v1/events" */
};

/* batch: 1 a JSON batch, 0 a single event. */
static void post(struct xd_wms *w, CURL *h, const struct dest *to, const char *body,
                 unsigned nevents, int batch, cJSON **answer)
{
    struct xd_buf ans;
    xd_buf_init(&ans);
    curl_easy_setopt(h, CURLOPT_URL, to->url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, to->headers);
    for (unsigned attempt = 1;; attempt++) {
        xd_buf_reset(&ans);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
        curl_easy_setopt(h, CURLOPT_WRITEDATA, &ans);
        CURLcode cc = curl_easy_perform(h);
        long status = 0;
        curl_off_t retry_after = 0;
        if (cc == CURLE_OK) {
            curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
            curl_easy_getinfo(h, CURLINFO_RETRY_AFTER, &retry_after);
        }
        int again = cc != CURLE_OK || status == 429 || status == 503;
        if (again && attempt < POST_TRIES && !stopping(w)) {
            pthread_mutex_lock(&w->mu);
            w->p.retried++;
            pthread_mutex_unlock(&w->mu);
            int64_t wait =
                retry_after > 0 ? retry_after * 1000 : 100LL << (attempt < 5 ? attempt : 5);
            sleep_until(w, xd_mono_ms() + wait);
            continue;
        }
        cJSON *doc = status == 202 ? cJSON_Parse(xd_buf_str(&ans)) : NULL;
        pthread_mutex_lock(&w->mu);
        if (cc == CURLE_OK)
            w->p.requests++;
        if (batch == 1)
            w->p.batches++;
        if (doc) {
            w->p.accepted += ack(w, cJSON_GetObjectItemCaseSensitive(doc, "accepted"));
            w->p.duplicates += ack(w, cJSON_GetObjectItemCaseSensitive(doc, "duplicates"));
        } else {
            w->p.rejected += nevents;
            if (cc != CURLE_OK)
                snprintf(w->p.last_error, sizeof w->p.last_error, "%s: %s", to->what,
                         curl_easy_strerror(cc));
            else
                snprintf(w->p.last_error, sizeof w->p.last_error, "%s: HTTP %ld: %.150s", to->what,
                         status, xd_buf_str(&ans));
        }
        pthread_mutex_unlock(&w->mu);
        if (answer)
            *answer = doc;
        else
            cJSON_Delete(doc);
        break;
    }
    xd_buf_dispose(&ans);
}

/* Posts JSON events [from, to) as one request: the event itself when alone, else a batch. */
static void post_range(struct xd_wms *w, CURL *h, const struct dest *d, size_t from, size_t to)
{
    if (to - from == 1) {
        post(w, h, d, w->ev[from].json, 1, 0, NULL);
        return;
    }
    struct xd_buf b;
    xd_buf_init(&b);
    xd_buf_puts(&b, "{\"events\":[");
    for (size_t i = from; i < to; i++) {
        if (i > from)
            xd_buf_putc(&b, ',');
        xd_buf_puts(&b, w->ev[i].json);
    }
    xd_buf_puts(&b, "]}");
    if (!b.oom)
        post(w, h, d, b.data, (unsigned)(to - from), 1, NULL);
    xd_buf_dispose(&b);
}

/* ---- dropping files into the inbox ---- */

/* A file dropped into the inbox, followed until it reaches processed/ or rejected/. */
struct drop {
    const struct file_doc *f;
    char name[96]; /* in the inbox */
    int resend;    /* the 945 again: every event a duplicate */
    int state;     /* 0 waiting, 1 processed, 2 rejected */
};

static void fail_note(struct xd_wms *w, const char *fmt, const char *a, const char *b)
    __attribute__((format(printf, 2, 0)));
static void fail_note(struct xd_wms *w, const char *fmt, const char *a, const char *b)
{
    pthread_mutex_lock(&w->mu);
    snprintf(w->p.last_error, sizeof w->p.last_error, fmt, a, b);
    pthread_mutex_unlock(&w->mu);
}

/*
 * Drops text into the inbox as a partner does: written as NAME.tmp in the
 * folder (ignored by the hub), then renamed to NAME, which the hub takes at
 * its next poll. 0, or -1 with last_error set.
 */
static int drop_file(struct xd_wms *w, const char *name, const char *text)
{
    char tmp[4096], path[4096];
    if (snprintf(path, sizeof path, "%s/%s", w->inbox, name) >= (int)sizeof path ||
        snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp) {
        fail_note(w, "inbox: %.80s/%.80s: path too long", w->inbox, name);
        return -1;
    }
    FILE *fp = fopen(tmp, "wb");
    size_t len = strlen(text);
    int ok = fp && fwrite(text, 1, len, fp) == len;
    if (fp && fclose(fp) != 0)
        ok = 0;
    if (!ok || rename(tmp, path) != 0) {
        fail_note(w, "inbox: cannot drop %.120s: %s", path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    pthread_mutex_lock(&w->mu);
    w->p.files++;
    pthread_mutex_unlock(&w->mu);
    return 0;
}

static int exists(const char *inbox, const char *sub, const char *name, const char *ext)
{
    char p[4096];
    struct stat st;
    return snprintf(p, sizeof p, "%s/%s/%s%s", inbox, sub, name, ext) < (int)sizeof p &&
           stat(p, &st) == 0;
}

/* The AK9 segment of processed/NAME.997 into out ("" when there is none). */
static void read_ak9(const struct xd_wms *w, const char *name, char *out, size_t cap)
{
    char p[4096], text[4096];
    out[0] = '\0';
    if (snprintf(p, sizeof p, "%s/processed/%s.997", w->inbox, name) >= (int)sizeof p)
        return;
    FILE *fp = fopen(p, "rb");
    if (!fp)
        return;
    size_t n = fread(text, 1, sizeof text - 1, fp);
    fclose(fp);
    text[n] = '\0';
    const char *ak9 = strstr(text, "AK9*");
    if (ak9)
        snprintf(out, cap, "%.*s", (int)strcspn(ak9, "~\r\n"), ak9);
}

/*
 * Waits until every drop in [0, n) is in processed/ or rejected/, at most
 * until deadline (mono ms) or until asked to stop, and books each: the
 * events of a processed file are acknowledged (accepted, or duplicates for
 * a re-send), its 997 read; those of a rejected one are counted as refused.
 * 1 when all are done.
 */
static int await_drops(struct xd_wms *w, struct drop *d, size_t n, int64_t deadline)
{
    for (;;) {
        size_t left = 0;
        for (size_t k = 0; k < n; k++) {
            if (d[k].state)
                continue;
            const struct file_doc *f = d[k].f;
            unsigned cnt = (unsigned)(f->to - f->from);
            /* The side files come first, the file itself is renamed in last. */
            if (exists(w->inbox, "processed", d[k].name, "")) {
                char ak9[48] = "";
                if (f->channel != XD_WMS_CSV)
                    read_ak9(w, d[k].name, ak9, sizeof ak9);
                d[k].state = 1;
                pthread_mutex_lock(&w->mu);
                w->p.files_processed++;
                for (size_t i = f->from; i < f->to; i++)
                    w->ev[i].acked = 1;
                if (d[k].resend) {
                    w->p.files_resent++;
                    w->p.duplicates += cnt;
                } else {
                    w->p.accepted += cnt;
                }
                if (ak9[0]) {
                    w->p.acks++;
                    w->p.acks_accepted += strncmp(ak9, "AK9*A*", 6) == 0;
                    if (f->channel == XD_WMS_X12 && !w->p.x12_ack[0])
                        snprintf(w->p.x12_ack, sizeof w->p.x12_ack, "%s", ak9);
                }
                pthread_mutex_unlock(&w->mu);
            } else if (exists(w->inbox, "rejected", d[k].name, "")) {
                d[k].state = 2;
                pthread_mutex_lock(&w->mu);
                w->p.files_rejected++;
                w->p.rejected += cnt;
                snprintf(w->p.last_error, sizeof w->p.last_error,
                         "inbox: %.60s was rejected (see rejected/%.60s.errors)", d[k].name,
                         d[k].name);
                pthread_mutex_unlock(&w->mu);
            } else {
                left++;
            }
        }
        if (left == 0)
            return 1;
        if (xd_mono_ms() >= deadline || sleep_until(w, xd_mono_ms() + 100) < 0) {
            for (size_t k = 0; k < n; k++)
                if (!d[k].state) {
                    fail_note(w, "inbox: %.90s: not in processed/ or rejected/ in time%s",
                              d[k].name, "");
                    break;
                }
            return 0;
        }
    }
}

static const struct file_doc *file_at(const struct xd_wms *w, size_t i)
{
    for (size_t k = 0; k < w->nfiles; k++)
        if (w->files[k].from == i)
            return &w->files[k];
    return NULL;
}

static void *run(void *arg)
{
    struct xd_wms *w = arg;
    CURL *h = curl_easy_init();
    char events_url[256];
    snprintf(events_url, sizeof events_url, "%s/v1/events", w->url);
    struct dest json = {events_url, NULL, "POST /v1/events"};
    json.headers =
        curl_slist_append(curl_slist_append(NULL, "Expect:"), "Content-Type: application/json");
    struct drop drops[4];
    size_t ndrops = 0;
    if (!h || !json.headers) {
        pthread_mutex_lock(&w->mu);
        snprintf(w->p.last_error, sizeof w->p.last_error, "wms: out of memory");
        pthread_mutex_unlock(&w->mu);
        goto out;
    }
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 30000L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);

    uint64_t rng = w->o.seed ^ 0x5eedull; /* posting choices: apart from the day's own */
    int64_t start = xd_mono_ms();
    int resent_batch = 0;
    for (size_t i = 0; i < w->n;) {
        if (sleep_until(w, start + (int64_t)w->o.duration_ms * (int64_t)i / (int64_t)w->n) < 0)
            break;
        const struct file_doc *f = file_at(w, i);
        if (f) {
            unsigned k = (unsigned)(f->to - f->from);
            struct drop *d = &drops[ndrops];
            *d = (struct drop){.f = f};
            snprintf(d->name, sizeof d->name, "%s-%s%s",
                     f->channel == XD_WMS_X12 ? "shipments" : "receipts", w->tag,
                     f->channel == XD_WMS_CSV    ? ".csv"
                     : f->channel == XD_WMS_X944 ? ".944.x12"
                                                 : ".945.x12");
            if (drop_file(w, d->name, f->text) == 0) {
                ndrops++;
                pthread_mutex_lock(&w->mu);
                w->p.posted += k;
                *(f->channel == XD_WMS_CSV    ? &w->p.csv_events
                  : f->channel == XD_WMS_X944 ? &w->p.x944_events
                                              : &w->p.x12_events) += k;
                pthread_mutex_unlock(&w->mu);
            }
            i = f->to;
            continue;
        }
        size_t k = chance(&rng, 25) ? 1 : between(&rng, BATCH_MIN, BATCH_MAX);
        for (size_t j = 1; j < k; j++) { /* a batch stops where a file starts */
            if (i + j >= w->n || w->ev[i + j].channel != XD_WMS_JSON) {
                k = j;
                break;
            }
        }
        post_range(w, h, &json, i, i + k);
        pthread_mutex_lock(&w->mu);
        w->p.posted += (unsigned)k;
        pthread_mutex_unlock(&w->mu);
        if (!resent_batch && k > 1 && (i + k) * 10 > w->n * 7) {
            /* The answer "lost" on the way back: the WMS sends the whole batch again. */
            post_range(w, h, &json, i, i + k);
            pthread_mutex_lock(&w->mu);
            w->p.resent += (unsigned)k;
            pthread_mutex_unlock(&w->mu);
            resent_batch = 1;
        }
        i += k;
        size_t j = between(&rng, 0, (unsigned)i - 1);
        if (chance(&rng, 4) && w->ev[j].channel == XD_WMS_JSON) {
            /* Someone pressing "send again" on an event sent earlier. */
            post_range(w, h, &json, j, j + 1);
            pthread_mutex_lock(&w->mu);
            w->p.resent++;
            pthread_mutex_unlock(&w->mu);
        }
    }
    /*
     * The files: wait for those dropped to be processed, then the partner
     * sends the 945 again under new control numbers (after the first, so
     * that it is the one that comes out as duplicates), and wait for it.
     */
    if (ndrops && !stopping(w)) {
        int64_t deadline = xd_mono_ms() + FILE_WAIT_MS;
        size_t first = ndrops;
        if (await_drops(w, drops, first, deadline)) {
            for (size_t k = 0; k < first; k++) {
                const struct file_doc *f = drops[k].f;
                if (!f->again || drops[k].state != 1 || ndrops >= sizeof drops / sizeof *drops)
                    continue;
                struct drop *d = &drops[ndrops];
                *d = (struct drop){.f = f, .resend = 1};
                snprintf(d->name, sizeof d->name, "shipments-%s-again.945.x12", w->tag);
                if (drop_file(w, d->name, f->again) == 0) {
                    ndrops++;
                    pthread_mutex_lock(&w->mu);
                    w->p.resent += (unsigned)(f->to - f->from);
                    pthread_mutex_unlock(&w->mu);
                }
            }
            await_drops(w, drops + first, ndrops - first, deadline);
        }
    }
out:
    curl_slist_free_all(json.headers);
    curl_easy_cleanup(h);
    pthread_mutex_lock(&w->mu);
    w->p.done = 1;
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

int xd_wms_start(struct xd_wms *w, struct xd_buf *err)
{
    if (pthread_create(&w->thread, NULL, run, w) != 0) {
        if (err)
            xd_buf_puts(err, "wms: cannot start its thread");
        return XD_ENOMEM;
    }
    w->started = 1;
    return 0;
}

void xd_wms_stop(struct xd_wms *w)
{
    if (!w || !w->started)
        return;
    pthread_mutex_lock(&w->mu);
    w->stop = 1;
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);
    w->started = 0;
}

void xd_wms_progress(struct xd_wms *w, struct xd_wms_progress *out)
{
    pthread_mutex_lock(&w->mu);
    *out = w->p;
    pthread_mutex_unlock(&w->mu);
}

const struct xd_wms_event *xd_wms_events(const struct xd_wms *w, size_t *n)
{
    *n = w->n;
    return w->ev;
}

void xd_wms_destroy(struct xd_wms *w)
{
    if (!w)
        return;
    xd_wms_stop(w);
    for (size_t i = 0; w->ev && i < w->n; i++) {
        free(w->ev[i].event_id);
        cJSON_free(w->ev[i].json);
    }
    free(w->ev);
    for (size_t k = 0; k < w->nfiles; k++) {
        free(w->files[k].text);
        free(w->files[k].again);
    }
    free(w->url);
    free(w->tag);
    free(w->day);
    free(w->bad_sku);
    free(w->inbox);
    pthread_mutex_destroy(&w->mu);
    free(w);
}
