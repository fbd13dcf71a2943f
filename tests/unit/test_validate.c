/*
 * Canonical event validation and preparation (ingest/event.h).
 *
 * The cases[] table is the heart of it: each case is an event as JSON text
 * (single quotes stand for double quotes, to keep the table readable) and
 * the exact list of "path: message" errors expected, in order. An input that
 * does not parse is expected as "@OFFSET: message". Each case is its own
 * cmocka test. Then preparation: defaults, business keys, body and hash.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/sha.h>

#include "core/buf.h"
#include "core/err.h"
#include "formats/json.h"
#include "ingest/event.h"
#include "ingest/event_schema.h"

#define MAX_ERRS 8

struct vcase {
    const char *name;
    const char *prefix; /* NULL: "" */
    const char *json;
    const char *errs[MAX_ERRS]; /* expected, in order; empty = valid */
};

/* clang-format off */
/* ---- building blocks for the table ---- */

#define AT0 "'2026-11-28T14:03:11Z'"
#define EV(type, data) "{'event_id':'e-1','type':'" type "','occurred_at':" AT0 ",'data':" data "}"

#define VOID_OK "{'warehouse':'DC1','shipment_id':'S1','reason':'damaged'}"
#define WITH_ID(id) "{'event_id':" id ",'type':'shipment.voided','occurred_at':" AT0 ",'data':" VOID_OK "}"
#define WITH_AT(t)                                                                                 \
    "{'event_id':'e-1','type':'shipment.voided','occurred_at':'" t "','data':" VOID_OK "}"
#define WITH_EXTRA(x)                                                                              \
    "{'event_id':'e-1','type':'shipment.voided','occurred_at':" AT0 x ",'data':" VOID_OK "}"
#define VOIDED(data) EV("shipment.voided", data)

#define SHIP_HEAD "'warehouse':'DC1','shipment_id':'S1','order_id':'O1','customer':'ACME'"
#define LINE1     "[{'sku':'A','qty':1}]"
#define SHIP(lines, rest) EV("shipment.confirmed", "{" SHIP_HEAD ",'lines':" lines rest "}")
#define SHIP_LINE(line) SHIP("[" line "]", "")

#define RCV_HEAD "'warehouse':'DC1','receipt_id':'R1','customer':'ACME'"
#define RCV(lines, rest) EV("goods.received", "{" RCV_HEAD ",'lines':" lines rest "}")

#define ADJ_HEAD "'warehouse':'DC1','adjustment_id':'A1','customer':'ACME','sku':'X','reason_code':'DMG'"
#define ADJ(rest) EV("inventory.adjusted", "{" ADJ_HEAD rest "}")

#define SNAP_HEAD "'warehouse':'DC1','customer':'ACME'"
#define SNAP(as_of, items) EV("inventory.snapshot", "{" SNAP_HEAD ",'as_of':'" as_of "','items':" items "}")

#define DLV(rest) EV("delivery.confirmed", "{'shipment_id':'S1','delivered_at':'2026-11-30T10:11:58-06:00'" rest "}")

#define S16   "AAAAAAAAAAAAAAAA"
#define S128  S16 S16 S16 S16 S16 S16 S16 S16
#define S1024 S128 S128 S128 S128 S128 S128 S128 S128
#define E16   "éééééééééééééééé"
#define E128  E16 E16 E16 E16 E16 E16 E16 E16

#define RANGE_MSG "must be 1-128 characters"
#define ID_MSG    "event_id: must be 1-128 characters of A-Za-z0-9._:-"
#define TIME_MSG  "occurred_at: must be an RFC 3339 date-time"

static const struct vcase cases[] = {
    /* ---- the envelope ---- */
    {"minimal voided event", NULL, VOIDED(VOID_OK), {0}},
    {"event is an array", NULL, "[1]", {": must be an object"}},
    {"event is a string", NULL, "'x'", {": must be an object"}},
    {"event in a batch is not an object", "events[3]", "null", {"events[3]: must be an object"}},
    {"empty object",
     NULL,
     "{}",
     {"event_id: is required", "type: is required", "occurred_at: is required",
      "data: is required"}},
    {"event_id empty", NULL, WITH_ID("''"), {ID_MSG}},
    {"event_id with a space", NULL, WITH_ID("'a b'"), {ID_MSG}},
    {"event_id with a slash", NULL, WITH_ID("'a/b'"), {ID_MSG}},
    {"event_id 128 characters", NULL, WITH_ID("'" S128 "'"), {0}},
    {"event_id 129 characters", NULL, WITH_ID("'" S128 "x'"), {ID_MSG}},
    {"event_id every allowed character", NULL, WITH_ID("'AZaz09._:-'"), {0}},
    {"event_id a number", NULL, WITH_ID("42"), {"event_id: must be a string"}},
    {"event_id null", NULL, WITH_ID("null"), {"event_id: is required"}},
    {"unknown type, data not checked",
     NULL,
     EV("foo.bar", "{}"),
     {"type: unknown event type 'foo.bar'"}},
    {"type a number",
     NULL,
     "{'event_id':'e-1','type':7,'occurred_at':" AT0 ",'data':{}}",
     {"type: must be a string"}},
    {"long unknown type is cut",
     NULL,
     EV(S128, "{}"),
     {"type: unknown event type '" S16 S16 S16 S16 "...'"}},
    {"unknown type and data not an object",
     NULL,
     "{'event_id':'e-1','type':'x','occurred_at':" AT0 ",'data':5}",
     {"type: unknown event type 'x'", "data: must be an object"}},
    {"occurred_at date only", NULL, WITH_AT("2026-11-28"), {TIME_MSG}},
    {"occurred_at with a space", NULL, WITH_AT("2026-11-28 14:03:11Z"), {TIME_MSG}},
    {"occurred_at lower-case t", NULL, WITH_AT("2026-11-28t14:03:11Z"), {TIME_MSG}},
    {"occurred_at without zone", NULL, WITH_AT("2026-11-28T14:03:11"), {TIME_MSG}},
    {"occurred_at offset without colon", NULL, WITH_AT("2026-11-28T14:03:11+0100"), {TIME_MSG}},
    {"occurred_at offset hour 24", NULL, WITH_AT("2026-11-28T14:03:11+24:00"), {TIME_MSG}},
    {"occurred_at February 30", NULL, WITH_AT("2026-02-30T00:00:00Z"), {TIME_MSG}},
    {"occurred_at February 29, not a leap year", NULL, WITH_AT("2023-02-29T00:00:00Z"), {TIME_MSG}},
    {"occurred_at February 29, 1900", NULL, WITH_AT("1900-02-29T00:00:00Z"), {TIME_MSG}},
    {"occurred_at February 29, 2000", NULL, WITH_AT("2000-02-29T00:00:00Z"), {0}},
    {"occurred_at month 13", NULL, WITH_AT("2026-13-01T00:00:00Z"), {TIME_MSG}},
    {"occurred_at hour 24", NULL, WITH_AT("2026-11-28T24:00:00Z"), {TIME_MSG}},
    {"occurred_at minute 60", NULL, WITH_AT("2026-11-28T14:60:00Z"), {TIME_MSG}},
    {"occurred_at second 61", NULL, WITH_AT("2026-11-28T14:03:61Z"), {TIME_MSG}},
    {"occurred_at leap second and offset", NULL, WITH_AT("2016-12-31T23:59:60.5+05:30"), {0}},
    {"occurred_at empty fraction", NULL, WITH_AT("2026-11-28T14:03:11.Z"), {TIME_MSG}},
    {"occurred_at nanoseconds", NULL, WITH_AT("2026-11-28T14:03:11.123456789-00:00"), {0}},
    {"occurred_at 10 fraction digits", NULL, WITH_AT("2026-11-28T14:03:11.1234567890Z"), {TIME_MSG}},
    {"occurred_at trailing text", NULL, WITH_AT("2026-11-28T14:03:11Zx"), {TIME_MSG}},
    {"occurred_at year 0", NULL, WITH_AT("0000-01-01T00:00:00Z"), {TIME_MSG}},
    {"occurred_at a number",
     NULL,
     "{'event_id':'e-1','type':'shipment.voided','occurred_at':1764338591,'data':" VOID_OK "}",
     {"occurred_at: must be a string"}},
    {"source empty", NULL, WITH_EXTRA(",'source':''"), {"source: " RANGE_MSG}},
    {"source a number", NULL, WITH_EXTRA(",'source':1"), {"source: must be a string"}},
    {"source null is absent", NULL, WITH_EXTRA(",'source':null"), {0}},
    {"schema_version 1", NULL, WITH_EXTRA(",'schema_version':1"), {0}},
    {"schema_version 2",
     NULL,
     WITH_EXTRA(",'schema_version':2"),
     {"schema_version: unsupported schema_version 2"}},
    {"schema_version 1.5",
     NULL,
     WITH_EXTRA(",'schema_version':1.5"),
     {"schema_version: unsupported schema_version 1.5"}},
    {"schema_version a string",
     NULL,
     WITH_EXTRA(",'schema_version':'1'"),
     {"schema_version: must be a number"}},
    {"unknown fields are kept",
     NULL,
     WITH_EXTRA(",'trace':{'id':[1,2]},'x':null"),
     {0}},
    {"duplicate envelope key", NULL, WITH_EXTRA(",'type':'shipment.voided'"), {"type: duplicate key"}},
    {"data missing",
     NULL,
     "{'event_id':'e-1','type':'shipment.voided','occurred_at':" AT0 "}",
     {"data: is required"}},
    {"data an array", NULL, VOIDED("[]"), {"data: must be an object"}},
    {"data null", NULL, VOIDED("null"), {"data: is required"}},
    {"number beyond a double does not parse", NULL, WITH_EXTRA(",'x':1e400"), {"@84: number out of range"}},

    /* ---- shipment.confirmed ---- */
    {"shipment minimal", NULL, SHIP(LINE1, ""), {0}},
    {"shipment all optional fields",
     NULL,
     SHIP("[{'line_no':1,'sku':'A','qty':1.5,'uom':'KG','lot':'L1','serials':['s1','s2']}]",
          ",'ship_date':'2026-11-28','carrier':{'code':'UPS','service':'GND','tracking':'1Z'},"
          "'packages':0,'pallets':1,'weight_kg':12.25,'freight':{'amount':'-3.10','currency':'EUR'},"
          "'ship_to':{'name':'','city':'Springfield','region':'IL','postal_code':'62701','country':'US'},"
          "'custom':{'anything':true}"),
     {0}},
    {"shipment data empty",
     NULL,
     EV("shipment.confirmed", "{}"),
     {"data.warehouse: is required", "data.shipment_id: is required", "data.order_id: is required",
      "data.customer: is required", "data.lines: is required"}},
    {"shipment lines empty", NULL, SHIP("[]", ""), {"data.lines: must not be empty"}},
    {"shipment lines an object", NULL, SHIP("{}", ""), {"data.lines: must be an array"}},
    {"shipment lines null", NULL, SHIP("null", ""), {"data.lines: is required"}},
    {"shipment line not an object",
     NULL,
     SHIP("[{'sku':'A','qty':1},1]", ""),
     {"data.lines[1]: must be an object"}},
    {"shipment line empty",
     NULL,
     SHIP_LINE("{}"),
     {"data.lines[0].sku: is required", "data.lines[0].qty: is required"}},
    {"shipment qty zero", NULL, SHIP_LINE("{'sku':'A','qty':0}"), {"data.lines[0].qty: must be greater than 0"}},
    {"shipment qty negative", NULL, SHIP_LINE("{'sku':'A','qty':-1}"), {"data.lines[0].qty: must be greater than 0"}},
    {"shipment qty 10^12", NULL, SHIP_LINE("{'sku':'A','qty':1e12}"), {0}},
    {"shipment qty over 10^12",
     NULL,
     SHIP_LINE("{'sku':'A','qty':1000000000001}"),
     {"data.lines[0].qty: must be at most 1000000000000"}},
    {"shipment qty 1e300",
     NULL,
     SHIP_LINE("{'sku':'A','qty':1e300}"),
     {"data.lines[0].qty: must be at most 1000000000000"}},
    {"shipment qty 1e400 does not parse", NULL, SHIP_LINE("{'sku':'A','qty':1e400}"), {"@188: number out of range"}},
    {"shipment qty a string", NULL, SHIP_LINE("{'sku':'A','qty':'5'}"), {"data.lines[0].qty: must be a number"}},
    {"shipment qty true", NULL, SHIP_LINE("{'sku':'A','qty':true}"), {"data.lines[0].qty: must be a number"}},
    {"shipment qty null", NULL, SHIP_LINE("{'sku':'A','qty':null}"), {"data.lines[0].qty: is required"}},
    {"shipment qty repeated", NULL, SHIP_LINE("{'sku':'A','qty':1,'qty':-5}"), {"data.lines[0].qty: duplicate key"}},
    {"shipment line_no zero",
     NULL,
     SHIP_LINE("{'sku':'A','qty':1,'line_no':0}"),
     {"data.lines[0].line_no: must be a positive integer"}},
    {"shipment line_no fractional",
     NULL,
     SHIP_LINE("{'sku':'A','qty':1,'line_no':1.5}"),
     {"data.lines[0].line_no: must be a positive integer"}},
    {"shipment line_no a string",
     NULL,
     SHIP_LINE("{'sku':'A','qty':1,'line_no':'1'}"),
     {"data.lines[0].line_no: must be a number"}},
    {"shipment uom empty", NULL, SHIP_LINE("{'sku':'A','qty':1,'uom':''}"), {"data.lines[0].uom: " RANGE_MSG}},
    {"shipment lot a number", NULL, SHIP_LINE("{'sku':'A','qty':1,'lot':7}"), {"data.lines[0].lot: must be a string"}},
    {"shipment sku 128 characters", NULL, SHIP_LINE("{'sku':'" S128 "','qty':1}"), {0}},
    {"shipment sku 129 characters", NULL, SHIP_LINE("{'sku':'" S128 "B','qty':1}"), {"data.lines[0].sku: " RANGE_MSG}},
    {"shipment sku 128 two-byte characters", NULL, SHIP_LINE("{'sku':'" E128 "','qty':1}"), {0}},
    {"shipment sku 129 two-byte characters", NULL, SHIP_LINE("{'sku':'" E128 "é','qty':1}"), {"data.lines[0].sku: " RANGE_MSG}},
    {"shipment sku with a newline",
     NULL,
     SHIP_LINE("{'sku':'A\\nB','qty':1}"),
     {"data.lines[0].sku: must not contain control characters"}},
    {"shipment serials not an array",
     NULL,
     SHIP_LINE("{'sku':'A','qty':1,'serials':'S1'}"),
     {"data.lines[0].serials: must be an array"}},
    {"shipment serial a number",
     NULL,
     SHIP_LINE("{'sku':'A','qty':1,'serials':['S1',2]}"),
     {"data.lines[0].serials[1]: must be a string"}},
    {"shipment serial 1025 characters",
     NULL,
     SHIP_LINE("{'sku':'A','qty':1,'serials':['" S1024 "x']}"),
     {"data.lines[0].serials[0]: must be at most 1024 characters"}},
    {"shipment serials empty", NULL, SHIP_LINE("{'sku':'A','qty':1,'serials':[]}"), {0}},
    {"shipment errors on several lines, in order",
     NULL,
     SHIP("[{'sku':'A','qty':0},{'sku':'B','qty':1},{'qty':2,'uom':5}]", ",'pallets':-1"),
     {"data.lines[0].qty: must be greater than 0", "data.lines[2].sku: is required",
      "data.lines[2].uom: must be a string", "data.pallets: must not be negative"}},
    {"shipment error in a batch",
     "events[3]",
     SHIP_LINE("{'sku':'A','qty':0}"),
     {"events[3].data.lines[0].qty: must be greater than 0"}},
    {"shipment ship_date month 13", NULL, SHIP(LINE1, ",'ship_date':'2026-13-01'"), {"data.ship_date: must be a date YYYY-MM-DD"}},
    {"shipment ship_date one-digit month", NULL, SHIP(LINE1, ",'ship_date':'2026-1-01'"), {"data.ship_date: must be a date YYYY-MM-DD"}},
    {"shipment carrier a string", NULL, SHIP(LINE1, ",'carrier':'UPS'"), {"data.carrier: must be an object"}},
    {"shipment carrier code empty", NULL, SHIP(LINE1, ",'carrier':{'code':''}"), {"data.carrier.code: " RANGE_MSG}},
    {"shipment carrier empty object", NULL, SHIP(LINE1, ",'carrier':{}"), {0}},
    {"shipment packages negative", NULL, SHIP(LINE1, ",'packages':-1"), {"data.packages: must not be negative"}},
    {"shipment pallets a string", NULL, SHIP(LINE1, ",'pallets':'2'"), {"data.pallets: must be a number"}},
    {"shipment weight_kg over 10^12",
     NULL,
     SHIP(LINE1, ",'weight_kg':1e13"),
     {"data.weight_kg: must be at most 1000000000000"}},
    {"shipment freight amount a number",
     NULL,
     SHIP(LINE1, ",'freight':{'amount':12.5,'currency':'USD'}"),
     {"data.freight.amount: must be a string"}},
    {"shipment freight bad amount and currency",
     NULL,
     SHIP(LINE1, ",'freight':{'amount':'12.','currency':'usd'}"),
     {"data.freight.amount: must be a decimal string such as \"12.50\"",
      "data.freight.currency: must be 3 uppercase letters (ISO 4217)"}},
    {"shipment freight amount with a comma",
     NULL,
     SHIP(LINE1, ",'freight':{'amount':'1,50','currency':'EUR'}"),
     {"data.freight.amount: must be a decimal string such as \"12.50\""}},
    {"shipment freight amount 19 digits",
     NULL,
     SHIP(LINE1, ",'freight':{'amount':'12345678901234567.89','currency':'EUR'}"),
     {"data.freight.amount: must have at most 18 digits"}},
    {"shipment freight empty",
     NULL,
     SHIP(LINE1, ",'freight':{}"),
     {"data.freight.amount: is required", "data.freight.currency: is required"}},
    {"shipment ship_to name 1025 characters",
     NULL,
     SHIP(LINE1, ",'ship_to':{'name':'" S1024 "x'}"),
     {"data.ship_to.name: must be at most 1024 characters"}},
    {"shipment ship_to country a number", NULL, SHIP(LINE1, ",'ship_to':{'country':1}"), {"data.ship_to.country: must be a string"}},
    {"shipment warehouse 129 characters",
     NULL,
     EV("shipment.confirmed", "{'warehouse':'" S128 "x','shipment_id':'S1','order_id':'O1','customer':'C','lines':" LINE1 "}"),
     {"data.warehouse: " RANGE_MSG}},

    /* ---- shipment.voided ---- */
    {"voided reason empty",
     NULL,
     VOIDED("{'warehouse':'DC1','shipment_id':'S1','reason':''}"),
     {"data.reason: must not be empty"}},
    {"voided reason 1025 characters",
     NULL,
     VOIDED("{'warehouse':'DC1','shipment_id':'S1','reason':'" S1024 "x'}"),
     {"data.reason: must be at most 1024 characters"}},
    {"voided reason with a newline",
     NULL,
     VOIDED("{'warehouse':'DC1','shipment_id':'S1','reason':'line 1\\nline 2'}"),
     {0}},
    {"voided everything missing",
     NULL,
     VOIDED("{'shipment':'S1'}"),
     {"data.warehouse: is required", "data.shipment_id: is required", "data.reason: is required"}},
    {"voided shipment_id a number",
     NULL,
     VOIDED("{'warehouse':'DC1','shipment_id':1001,'reason':'x'}"),
     {"data.shipment_id: must be a string"}},

    /* ---- goods.received ---- */
    {"receipt minimal", NULL, RCV(LINE1, ""), {0}},
    {"receipt all optional fields",
     NULL,
     RCV("[{'sku':'A','qty':480,'uom':'EA','lot':'L1'}]",
         ",'po_number':'PO-1','supplier':'WIDGETCO','pallets':4,'cartons':96"),
     {0}},
    {"receipt ids missing",
     NULL,
     EV("goods.received", "{'warehouse':'DC1','lines':" LINE1 "}"),
     {"data.receipt_id: is required", "data.customer: is required"}},
    {"receipt qty zero on the second line",
     NULL,
     RCV("[{'sku':'A','qty':1},{'sku':'B','qty':0}]", ""),
     {"data.lines[1].qty: must be greater than 0"}},
    {"receipt cartons negative", NULL, RCV(LINE1, ",'cartons':-3"), {"data.cartons: must not be negative"}},
    {"receipt po_number empty", NULL, RCV(LINE1, ",'po_number':''"), {"data.po_number: " RANGE_MSG}},
    {"receipt supplier a number", NULL, RCV(LINE1, ",'supplier':7"), {"data.supplier: must be a string"}},
    {"receipt line uom a number",
     NULL,
     RCV("[{'sku':'A','qty':1},{'sku':'B','qty':1,'uom':5}]", ""),
     {"data.lines[1].uom: must be a string"}},
    {"receipt lines empty", NULL, RCV("[]", ""), {"data.lines: must not be empty"}},

    /* ---- inventory.adjusted ---- */
    {"adjustment negative delta", NULL, ADJ(",'qty_delta':-2,'uom':'EA','lot':'L1'"), {0}},
    {"adjustment delta zero", NULL, ADJ(",'qty_delta':0"), {"data.qty_delta: must not be zero"}},
    {"adjustment delta -1e13",
     NULL,
     ADJ(",'qty_delta':-1e13"),
     {"data.qty_delta: must be between -1000000000000 and 1000000000000"}},
    {"adjustment delta a string", NULL, ADJ(",'qty_delta':'3'"), {"data.qty_delta: must be a number"}},
    {"adjustment fields missing",
     NULL,
     EV("inventory.adjusted", "{'warehouse':'DC1','adjustment_id':'A1','customer':'ACME','qty_delta':1}"),
     {"data.sku: is required", "data.reason_code: is required"}},
    {"adjustment delta missing", NULL, ADJ(""), {"data.qty_delta: is required"}},
    {"adjustment uom empty", NULL, ADJ(",'qty_delta':1,'uom':''"), {"data.uom: " RANGE_MSG}},

    /* ---- inventory.snapshot ---- */
    {"snapshot minimal", NULL, SNAP("2026-11-28", "[{'sku':'A','qty':3,'pallets':0.5,'uom':'EA'}]"), {0}},
    {"snapshot as_of November 31",
     NULL,
     SNAP("2026-11-31", LINE1),
     {"data.as_of: must be a date YYYY-MM-DD"}},
    {"snapshot as_of a date-time",
     NULL,
     SNAP("2026-11-28T00:00:00Z", LINE1),
     {"data.as_of: must be a date YYYY-MM-DD"}},
    {"snapshot items empty", NULL, SNAP("2026-11-28", "[]"), {"data.items: must not be empty"}},
    {"snapshot item pallets negative",
     NULL,
     SNAP("2026-11-28", "[{'sku':'A','qty':1,'pallets':-1}]"),
     {"data.items[0].pallets: must not be negative"}},
    {"snapshot item qty zero",
     NULL,
     SNAP("2026-11-28", "[{'sku':'A','qty':0}]"),
     {"data.items[0].qty: must be greater than 0"}},
    {"snapshot item a string", NULL, SNAP("2026-11-28", "['A']"), {"data.items[0]: must be an object"}},
    {"snapshot items missing",
     NULL,
     EV("inventory.snapshot", "{'warehouse':'DC1','customer':'ACME','as_of':'2026-11-28'}"),
     {"data.items: is required"}},

    /* ---- delivery.confirmed ---- */
    {"delivery minimal", NULL, DLV(""), {0}},
    {"delivery with signature and warehouse", NULL, DLV(",'signed_by':'J. SMITH','warehouse':'DC1'"), {0}},
    {"delivery empty signature", NULL, DLV(",'signed_by':''"), {0}},
    {"delivery signature 1025 characters",
     NULL,
     DLV(",'signed_by':'" S1024 "x'"),
     {"data.signed_by: must be at most 1024 characters"}},
    {"delivery warehouse empty", NULL, DLV(",'warehouse':''"), {"data.warehouse: " RANGE_MSG}},
    {"delivery delivered_at not a date-time",
     NULL,
     EV("delivery.confirmed", "{'shipment_id':'S1','delivered_at':'yesterday'}"),
     {"data.delivered_at: must be an RFC 3339 date-time"}},
    {"delivery fields missing",
     NULL,
     EV("delivery.confirmed", "{'signed_by':'x'}"),
     {"data.shipment_id: is required", "data.delivered_at: is required"}},
};
/* clang-format on */

#define NCASES (sizeof cases / sizeof cases[0])

/* The table's JSON with ' turned into ". Caller frees. */
static char *dq(const char *s)
{
    char *t = strdup(s);
    assert_non_null(t);
    for (char *p = t; *p; p++)
        if (*p == '\'')
            *p = '"';
    return t;
}

/* Parses and validates a case's text; returns the errors as "path: message" lines. */
static char *run_case(const char *json_sq, const char *prefix)
{
    struct xd_buf out;
    struct xd_json_error jerr;
    struct xd_verrs errs = {0};
    cJSON *ev = NULL;
    char *json = dq(json_sq);
    int rc;

    xd_buf_init(&out);
    rc = xd_json_parse(json, strlen(json), NULL, &ev, &jerr);
    if (rc < 0) {
        xd_buf_printf(&out, "@%zu: %s\n", jerr.offset, jerr.message);
        goto done;
    }
    rc = xd_event_validate(ev, prefix, &errs);
    assert_int_equal(rc, errs.n ? XD_ESCHEMA : 0);
    for (size_t i = 0; i < errs.n; i++)
        xd_buf_printf(&out, "%s: %s\n", errs.v[i].path, errs.v[i].message);
done:
    xd_verrs_dispose(&errs);
    cJSON_Delete(ev);
    free(json);
    return xd_buf_steal(&out);
}

static void test_case(void **state)
{
    const struct vcase *c = *state;
    struct xd_buf want;
    xd_buf_init(&want);
    xd_buf_puts(&want, "");
    for (int i = 0; i < MAX_ERRS && c->errs[i]; i++)
        xd_buf_printf(&want, "%s\n", c->errs[i]);
    char *got = run_case(c->json, c->prefix);
    if (strcmp(got, xd_buf_str(&want)) != 0)
        print_error("case '%s'\n--- expected\n%s--- got\n%s", c->name, xd_buf_str(&want), got);
    int same = strcmp(got, xd_buf_str(&want)) == 0;
    free(got);
    xd_buf_dispose(&want);
    assert_true(same);
}

/* ---- things a table of texts cannot say well ---- */

/* Events with n lines: exactly XD_EVENT_MAX_ITEMS (10000) pass, one more does not. */
static char *ship_with_lines(size_t n)
{
    struct xd_buf b;
    xd_buf_init(&b);
    xd_buf_puts(&b, "{\"event_id\":\"e-1\",\"type\":\"shipment.confirmed\",\"occurred_at\":"
                    "\"2026-11-28T14:03:11Z\",\"data\":{\"warehouse\":\"DC1\",\"shipment_id\":"
                    "\"S1\",\"order_id\":\"O1\",\"customer\":\"C\",\"lines\":[");
    for (size_t i = 0; i < n; i++)
        xd_buf_printf(&b, "%s{\"sku\":\"A\",\"qty\":%zu}", i ? "," : "", i + 1);
    xd_buf_puts(&b, "]}}");
    assert_false(b.oom);
    return xd_buf_steal(&b);
}

static void test_lines_limit(void **state)
{
    (void)state;
    static const struct {
        size_t n;
        const char *want;
    } t[] = {{10000, ""}, {10001, "data.lines: must have at most 10000 elements\n"}};
    for (size_t i = 0; i < 2; i++) {
        char *json = ship_with_lines(t[i].n);
        char *got = run_case(json, NULL);
        assert_string_equal(got, t[i].want);
        free(got);
        free(json);
    }
}

/* A batch: one list, many prefixes; each call says whether it added errors. */
static void test_batch_prefixes(void **state)
{
    (void)state;
    struct xd_verrs errs = {0};
    char *a = dq(SHIP_LINE("{'sku':'A','qty':0}"));
    char *b = dq(VOIDED(VOID_OK));
    cJSON *ea = cJSON_Parse(a), *eb = cJSON_Parse(b);
    assert_int_equal(xd_event_validate(ea, "events[0]", &errs), XD_ESCHEMA);
    assert_int_equal(xd_event_validate(eb, "events[1]", &errs), 0);
    assert_int_equal(xd_event_validate(ea, "events[2]", &errs), XD_ESCHEMA);
    assert_int_equal(errs.n, 2);
    assert_string_equal(errs.v[0].path, "events[0].data.lines[0].qty");
    assert_string_equal(errs.v[1].path, "events[2].data.lines[0].qty");
    assert_string_equal(errs.v[1].message, "must be greater than 0");
    xd_verrs_dispose(&errs);
    cJSON_Delete(ea);
    cJSON_Delete(eb);
    free(a);
    free(b);
}

static void test_verrs_cap(void **state)
{
    (void)state;
    struct xd_verrs errs = {0};
    for (int i = 0; i < XD_VERRS_MAX + 5; i++)
        assert_int_equal(xd_verrs_add(&errs, "events[1]", "error %d", i), 0);
    assert_int_equal(errs.n, XD_VERRS_MAX);
    assert_int_equal(errs.dropped, 5);
    assert_string_equal(errs.v[XD_VERRS_MAX - 1].message, "error 9999");
    xd_verrs_dispose(&errs);
    assert_int_equal(errs.n, 0);
}

/* The tables themselves: sizes within what check_object() can track, nested specs present. */
static void check_spec(const struct xd_spec *s)
{
    assert_true(s->n > 0 && s->n <= XD_SPEC_MAX_FIELDS);
    for (unsigned i = 0; i < s->n; i++) {
        const struct xd_field *f = &s->fields[i];
        assert_true(f->kind < XD_FK__COUNT);
        for (unsigned j = 0; j < i; j++)
            assert_string_not_equal(f->name, s->fields[j].name);
        if (f->kind == XD_FK_OBJECT || f->kind == XD_FK_OBJECTS)
            check_spec(f->sub);
        else
            assert_null(f->sub);
    }
}

static void test_schema_tables(void **state)
{
    (void)state;
    check_spec(&xd_envelope_spec);
    for (int t = 0; t < XD_EV__COUNT; t++) {
        check_spec(xd_data_specs[t]);
        assert_non_null(xd_bkey_specs[t].prefix);
        assert_non_null(xd_bkey_specs[t].parts[0]);
    }
}

static void test_value_formats(void **state)
{
    (void)state;
    assert_true(xd_event_id_valid("a"));
    assert_false(xd_event_id_valid(""));
    assert_true(xd_date_valid("2024-02-29"));
    assert_false(xd_date_valid("2024-02-29 "));
    assert_false(xd_date_valid("2024-02-2"));
    assert_true(xd_datetime_valid("2026-11-28T14:03:11+14:00"));
    assert_false(xd_datetime_valid("2026-11-28T14:03:11+14:0"));
    assert_false(xd_datetime_valid("2026-11-28T14:03:11+14:000"));
    assert_false(xd_datetime_valid(""));
}

/* ---- preparation ---- */

static cJSON *parse_sq(const char *json_sq)
{
    char *json = dq(json_sq);
    cJSON *ev = NULL;
    struct xd_verrs errs = {0};
    assert_int_equal(xd_json_parse(json, strlen(json), NULL, &ev, NULL), 0);
    assert_int_equal(xd_event_validate(ev, "", &errs), 0);
    free(json);
    return ev;
}

/* clang-format off */
/* Defaults per type: what goes in, what body comes out (source "wms-dc1"). */
static const struct {
    const char *in, *body, *bkey;
} normalised[] = {
    {SHIP("[{'sku':'A','qty':1},{'sku':'B','qty':2.5,'uom':'CS'},{'sku':'C','qty':3,'uom':null}]", ""),
     "{'event_id':'e-1','type':'shipment.confirmed','occurred_at':'2026-11-28T14:03:11Z','data':{"
     "'warehouse':'DC1','shipment_id':'S1','order_id':'O1','customer':'ACME','lines':["
     "{'sku':'A','qty':1,'uom':'EA'},{'sku':'B','qty':2.5,'uom':'CS'},{'sku':'C','qty':3,'uom':'EA'}]},"
     "'source':'wms-dc1','schema_version':1}",
     "shipment:S1"},
    {VOIDED(VOID_OK),
     "{'event_id':'e-1','type':'shipment.voided','occurred_at':'2026-11-28T14:03:11Z','data':"
     "{'warehouse':'DC1','shipment_id':'S1','reason':'damaged'},'source':'wms-dc1','schema_version':1}",
     "shipment:S1"},
    {RCV("[{'sku':'A','qty':480}]", ""),
     "{'event_id':'e-1','type':'goods.received','occurred_at':'2026-11-28T14:03:11Z','data':{"
     "'warehouse':'DC1','receipt_id':'R1','customer':'ACME','lines':[{'sku':'A','qty':480,'uom':'EA'}]},"
     "'source':'wms-dc1','schema_version':1}",
     "receipt:R1"},
    {ADJ(",'qty_delta':-2"),
     "{'event_id':'e-1','type':'inventory.adjusted','occurred_at':'2026-11-28T14:03:11Z','data':{"
     "'warehouse':'DC1','adjustment_id':'A1','customer':'ACME','sku':'X','reason_code':'DMG',"
     "'qty_delta':-2,'uom':'EA'},'source':'wms-dc1','schema_version':1}",
     "adjustment:A1"},
    {SNAP("2026-11-28", "[{'sku':'A','qty':3,'pallets':0.5}]"),
     "{'event_id':'e-1','type':'inventory.snapshot','occurred_at':'2026-11-28T14:03:11Z','data':{"
     "'warehouse':'DC1','customer':'ACME','as_of':'2026-11-28','items':[{'sku':'A','qty':3,"
     "'pallets':0.5,'uom':'EA'}]},'source':'wms-dc1','schema_version':1}",
     "snapshot:ACME:2026-11-28"},
    {"{'source':null,'schema_version':1,'event_id':'d-1','type':'delivery.confirmed',"
     "'occurred_at':'2026-11-30T10:12:09-06:00','data':{'shipment_id':'S9','delivered_at':"
     "'2026-11-30T10:11:58-06:00','x':[1e2,0.1,-0.0,1e-7,123456789012345678]}}",
     "{'source':'wms-dc1','schema_version':1,'event_id':'d-1','type':'delivery.confirmed',"
     "'occurred_at':'2026-11-30T10:12:09-06:00','data':{'shipment_id':'S9','delivered_at':"
     "'2026-11-30T10:11:58-06:00','x':[100,0.1,0,1e-07,1.2345678901234568e+17]}}",
     "shipment:S9"},
};
/* clang-format on */

static void test_prepare_normalises(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof normalised / sizeof normalised[0]; i++) {
        cJSON *ev = parse_sq(normalised[i].in);
        struct xd_event out;
        char *want = dq(normalised[i].body);
        unsigned char h[32];
        assert_int_equal(xd_event_prepare(ev, "wms-dc1", &out), 0);
        assert_string_equal(out.body, want);
        assert_int_equal(out.body_len, strlen(want));
        assert_string_equal(out.bkey, normalised[i].bkey);
        assert_string_equal(out.source, "wms-dc1");
        assert_ptr_equal(out.json, ev);
        SHA256((const unsigned char *)want, strlen(want), h);
        assert_memory_equal(out.hash, h, 32);
        xd_event_dispose(&out);
        free(want);
        cJSON_Delete(ev);
    }
}

static void test_prepare_source(void **state)
{
    (void)state;
    static const struct {
        const char *extra, *dflt, *want;
    } t[] = {
        {"", NULL, "unknown"},
        {"", "key-1", "key-1"},
        {",'source':null", "key-1", "key-1"},
        {",'source':'wms-dc9'", "key-1", "wms-dc9"},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        char buf[512];
        snprintf(buf, sizeof buf, WITH_EXTRA("%s"), t[i].extra);
        cJSON *ev = parse_sq(buf);
        struct xd_event out;
        assert_int_equal(xd_event_prepare(ev, t[i].dflt, &out), 0);
        assert_string_equal(out.source, t[i].want);
        assert_string_equal(out.event_id, "e-1");
        assert_string_equal(out.occurred_at, "2026-11-28T14:03:11Z");
        assert_int_equal(out.type, XD_EV_SHIPMENT_VOIDED);
        xd_event_dispose(&out);
        cJSON_Delete(ev);
    }
}

/*
 * The same content, however spaced or escaped, gives the same body and hash.
 * Explicit defaults are other bytes (the keys sit elsewhere), and so is
 * other content.
 */
static void test_prepare_hash_stable(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        int same; /* same hash as the first */
    } t[] = {
        {"{\"event_id\":\"e-1\",\"type\":\"shipment.voided\",\"occurred_at\":\"2026-11-28T14:03:"
         "11Z\","
         "\"data\":{\"warehouse\":\"DC1\",\"shipment_id\":\"S1\",\"reason\":\"caf\\u00e9\",\"n\":1."
         "50}}",
         1},
        {"\n{ \"event_id\" : \"e-1\",\r\n\t\"type\": \"shipment.voided\", \"occurred_at\": "
         "\"2026-11-28T14:03:11Z\",\n  \"data\": {\n    \"warehouse\": \"DC1\",\n    "
         "\"shipment_id\": "
         "\"S1\",\n    \"reason\": \"café\", \"n\": 15e-1\n  }\n}\n",
         1},
        {"{\"event_id\":\"e-1\",\"type\":\"shipment.voided\",\"occurred_at\":\"2026-11-28T14:03:"
         "11Z\","
         "\"source\":\"unknown\",\"schema_version\":1,\"data\":{\"warehouse\":\"DC1\",\"shipment_"
         "id\":"
         "\"S1\",\"reason\":\"café\",\"n\":1.5}}",
         0},
        {"{\"event_id\":\"e-1\",\"type\":\"shipment.voided\",\"occurred_at\":\"2026-11-28T14:03:"
         "11Z\","
         "\"data\":{\"warehouse\":\"DC1\",\"shipment_id\":\"S1\",\"reason\":\"cafe\",\"n\":1.5}}",
         0},
    };
    unsigned char first[32];
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        cJSON *ev = NULL;
        struct xd_verrs errs = {0};
        struct xd_event out;
        assert_int_equal(xd_json_parse(t[i].text, strlen(t[i].text), NULL, &ev, NULL), 0);
        assert_int_equal(xd_event_validate(ev, NULL, &errs), 0);
        assert_int_equal(xd_event_prepare(ev, NULL, &out), 0);
        if (i == 0)
            memcpy(first, out.hash, 32);
        else if (t[i].same)
            assert_memory_equal(out.hash, first, 32);
        else
            assert_memory_not_equal(out.hash, first, 32);
        xd_event_dispose(&out);
        cJSON_Delete(ev);
    }
}

static void test_prepare_not_validated(void **state)
{
    (void)state;
    static const char *const bad[] = {"{}", "{\"type\":\"x\",\"data\":{}}",
                                      "{\"type\":\"shipment.voided\",\"data\":[]}"};
    for (size_t i = 0; i < 3; i++) {
        cJSON *ev = cJSON_Parse(bad[i]);
        struct xd_event out;
        assert_int_equal(xd_event_prepare(ev, NULL, &out), XD_EINVAL);
        assert_null(out.body);
        assert_null(out.bkey);
        xd_event_dispose(&out);
        cJSON_Delete(ev);
    }
}

/* ---- the sample events in tests/data/events ---- */

static char *read_data(const char *name, size_t *len)
{
    const char *dir = getenv("XD_TEST_DATA");
    char path[1024];
    snprintf(path, sizeof path, "%s/events/%s", dir ? dir : "tests/data", name);
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot open %s (set XD_TEST_DATA)", path);
    struct xd_buf b;
    char chunk[4096];
    size_t n;
    xd_buf_init(&b);
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        xd_buf_append(&b, chunk, n);
    fclose(f);
    *len = b.len;
    return xd_buf_steal(&b);
}

static void test_sample_events(void **state)
{
    (void)state;
    static const struct {
        const char *file, *bkey, *event_id;
        enum xd_event_type type;
    } t[] = {
        {"shipment.confirmed.json", "shipment:SHP-1001", "wms1-000123", XD_EV_SHIPMENT_CONFIRMED},
        {"shipment.voided.json", "shipment:SHP-1001", "wms1-000124", XD_EV_SHIPMENT_VOIDED},
        {"goods.received.json", "receipt:RCV-5001", "wms1-000125", XD_EV_GOODS_RECEIVED},
        {"inventory.adjusted.json", "adjustment:ADJ-301", "wms1-000126", XD_EV_INVENTORY_ADJUSTED},
        {"inventory.snapshot.json", "snapshot:ACME:2026-11-28", "wms1-000127",
         XD_EV_INVENTORY_SNAPSHOT},
        {"delivery.confirmed.json", "shipment:SHP-1001", "carrier-ups-77781",
         XD_EV_DELIVERY_CONFIRMED},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        size_t len;
        char *text = read_data(t[i].file, &len);
        cJSON *ev = NULL, *again = NULL;
        struct xd_verrs errs = {0};
        struct xd_event out;
        assert_int_equal(xd_json_parse(text, len, NULL, &ev, NULL), 0);
        assert_int_equal(xd_event_validate(ev, "", &errs), 0);
        assert_int_equal(xd_event_prepare(ev, "default", &out), 0);
        assert_string_equal(out.bkey, t[i].bkey);
        assert_string_equal(out.event_id, t[i].event_id);
        assert_int_equal(out.type, t[i].type);
        /* The stored body is itself a valid event that prepares to the same bytes. */
        struct xd_event out2;
        assert_int_equal(xd_json_parse(out.body, out.body_len, NULL, &again, NULL), 0);
        assert_int_equal(xd_event_validate(again, "", &errs), 0);
        assert_int_equal(xd_event_prepare(again, "other", &out2), 0);
        assert_string_equal(out2.body, out.body);
        assert_memory_equal(out2.hash, out.hash, 32);
        xd_event_dispose(&out2);
        xd_event_dispose(&out);
        cJSON_Delete(again);
        cJSON_Delete(ev);
        free(text);
    }
}

int main(void)
{
    static const struct CMUnitTest fixed[] = {
        cmocka_unit_test(test_lines_limit),
        cmocka_unit_test(test_batch_prefixes),
        cmocka_unit_test(test_verrs_cap),
        cmocka_unit_test(test_value_formats),
        cmocka_unit_test(test_schema_tables),
        cmocka_unit_test(test_prepare_normalises),
        cmocka_unit_test(test_prepare_source),
        cmocka_unit_test(test_prepare_hash_stable),
        cmocka_unit_test(test_prepare_not_validated),
        cmocka_unit_test(test_sample_events),
    };
    size_t nfixed = sizeof fixed / sizeof fixed[0];
    struct CMUnitTest *tests = calloc(NCASES + nfixed, sizeof *tests);
    if (!tests)
        return 1;
    for (size_t i = 0; i < NCASES; i++) {
        tests[i].name = cases[i].name;
        tests[i].test_func = test_case;
        tests[i].initial_state = (void *)&cases[i];
    }
    memcpy(tests + NCASES, fixed, sizeof fixed);
    int rc = _cmocka_run_group_tests("validate", tests, NCASES + nfixed, NULL, NULL);
    free(tests);
    return rc;
}
