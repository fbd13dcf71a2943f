/*
 * The canonical event schema v1 (contract section 4) as tables: what each
 * object of each event type may hold, what it must hold, and the defaults.
 * Changing the model means changing these tables, docs/events.md and the
 * cases in tests/unit/test_validate.c; the code in event.c stays as it is.
 */
#include "ingest/event_schema.h"

/* Tables read best one field a line, as written. */
/* clang-format off */
#define SPEC(arr) {arr, sizeof arr / sizeof arr[0]}

/* ---- the envelope, every type ---- */

static const struct xd_field envelope[] = {
    {"event_id", XD_FK_EVENT_ID, 1, NULL, NULL},
    {"type", XD_FK_TYPE, 1, NULL, NULL},
    {"occurred_at", XD_FK_TIME, 1, NULL, NULL},
    {"source", XD_FK_CODE, 0, NULL, NULL},
    {"schema_version", XD_FK_VERSION, 0, NULL, NULL},
    {"data", XD_FK_DATA, 1, NULL, NULL},
};
const struct xd_spec xd_envelope_spec = SPEC(envelope);

/* ---- shipment.confirmed ---- */

static const struct xd_field shipment_line[] = {
    {"sku", XD_FK_CODE, 1, NULL, NULL},
    {"qty", XD_FK_QTY, 1, NULL, NULL},
    {"line_no", XD_FK_LINE_NO, 0, NULL, NULL},
    {"uom", XD_FK_CODE, 0, NULL, "EA"},
    {"lot", XD_FK_CODE, 0, NULL, NULL},
    {"serials", XD_FK_TEXTS, 0, NULL, NULL},
};
static const struct xd_spec shipment_line_spec = SPEC(shipment_line);

static const struct xd_field carrier[] = {
    {"code", XD_FK_CODE, 0, NULL, NULL},
    {"service", XD_FK_CODE, 0, NULL, NULL},
    {"tracking", XD_FK_CODE, 0, NULL, NULL},
};
static const struct xd_spec carrier_spec = SPEC(carrier);

static const struct xd_field freight[] = {
    {"amount", XD_FK_MONEY, 1, NULL, NULL},
    {"currency", XD_FK_CURRENCY, 1, NULL, NULL},
};
static const struct xd_spec freight_spec = SPEC(freight);

static const struct xd_field ship_to[] = {
    {"name", XD_FK_TEXT, 0, NULL, NULL},
    {"city", XD_FK_TEXT, 0, NULL, NULL},
    {"region", XD_FK_TEXT, 0, NULL, NULL},
    {"postal_code", XD_FK_TEXT, 0, NULL, NULL},
    {"country", XD_FK_TEXT, 0, NULL, NULL},
};
static const struct xd_spec ship_to_spec = SPEC(ship_to);

static const struct xd_field shipment_confirmed[] = {
    {"warehouse", XD_FK_CODE, 1, NULL, NULL},
    {"shipment_id", XD_FK_CODE, 1, NULL, NULL},
    {"order_id", XD_FK_CODE, 1, NULL, NULL},
    {"customer", XD_FK_CODE, 1, NULL, NULL},
    {"lines", XD_FK_OBJECTS, 1, &shipment_line_spec, NULL},
    {"ship_date", XD_FK_DATE, 0, NULL, NULL},
    {"carrier", XD_FK_OBJECT, 0, &carrier_spec, NULL},
    {"packages", XD_FK_COUNT, 0, NULL, NULL},
    {"pallets", XD_FK_COUNT, 0, NULL, NULL},
    {"weight_kg", XD_FK_COUNT, 0, NULL, NULL},
    {"freight", XD_FK_OBJECT, 0, &freight_spec, NULL},
    {"ship_to", XD_FK_OBJECT, 0, &ship_to_spec, NULL},
};

/* ---- shipment.voided ---- */

static const struct xd_field shipment_voided[] = {
    {"warehouse", XD_FK_CODE, 1, NULL, NULL},
    {"shipment_id", XD_FK_CODE, 1, NULL, NULL},
    {"reason", XD_FK_NTEXT, 1, NULL, NULL},
};

/* ---- goods.received ---- */

static const struct xd_field receipt_line[] = {
    {"sku", XD_FK_CODE, 1, NULL, NULL},
    {"qty", XD_FK_QTY, 1, NULL, NULL},
    {"uom", XD_FK_CODE, 0, NULL, "EA"},
    {"lot", XD_FK_CODE, 0, NULL, NULL},
};
static const struct xd_spec receipt_line_spec = SPEC(receipt_line);

static const struct xd_field goods_received[] = {
    {"warehouse", XD_FK_CODE, 1, NULL, NULL},
    {"receipt_id", XD_FK_CODE, 1, NULL, NULL},
    {"customer", XD_FK_CODE, 1, NULL, NULL},
    {"lines", XD_FK_OBJECTS, 1, &receipt_line_spec, NULL},
    {"po_number", XD_FK_CODE, 0, NULL, NULL},
    {"supplier", XD_FK_CODE, 0, NULL, NULL},
    {"pallets", XD_FK_COUNT, 0, NULL, NULL},
    {"cartons", XD_FK_COUNT, 0, NULL, NULL},
};

/* ---- inventory.adjusted ---- */

static const struct xd_field inventory_adjusted[] = {
    {"warehouse", XD_FK_CODE, 1, NULL, NULL},
    {"adjustment_id", XD_FK_CODE, 1, NULL, NULL},
    {"customer", XD_FK_CODE, 1, NULL, NULL},
    {"sku", XD_FK_CODE, 1, NULL, NULL},
    {"qty_delta", XD_FK_DELTA, 1, NULL, NULL},
    {"reason_code", XD_FK_CODE, 1, NULL, NULL},
    {"uom", XD_FK_CODE, 0, NULL, "EA"},
    {"lot", XD_FK_CODE, 0, NULL, NULL},
};

/* ---- inventory.snapshot ---- */

static const struct xd_field snapshot_item[] = {
    {"sku", XD_FK_CODE, 1, NULL, NULL},
    {"qty", XD_FK_QTY, 1, NULL, NULL},
    {"pallets", XD_FK_COUNT, 0, NULL, NULL},
    {"uom", XD_FK_CODE, 0, NULL, "EA"},
};
static const struct xd_spec snapshot_item_spec = SPEC(snapshot_item);

static const struct xd_field inventory_snapshot[] = {
    {"warehouse", XD_FK_CODE, 1, NULL, NULL},
    {"customer", XD_FK_CODE, 1, NULL, NULL},
    {"as_of", XD_FK_DATE, 1, NULL, NULL},
    {"items", XD_FK_OBJECTS, 1, &snapshot_item_spec, NULL},
};

/* ---- delivery.confirmed ---- */

static const struct xd_field delivery_confirmed[] = {
    {"shipment_id", XD_FK_CODE, 1, NULL, NULL},
    {"delivered_at", XD_FK_TIME, 1, NULL, NULL},
    {"signed_by", XD_FK_TEXT, 0, NULL, NULL},
    {"warehouse", XD_FK_CODE, 0, NULL, NULL},
};

static const struct xd_spec shipment_confirmed_spec = SPEC(shipment_confirmed);
static const struct xd_spec shipment_voided_spec = SPEC(shipment_voided);
static const struct xd_spec goods_received_spec = SPEC(goods_received);
static const struct xd_spec inventory_adjusted_spec = SPEC(inventory_adjusted);
static const struct xd_spec inventory_snapshot_spec = SPEC(inventory_snapshot);
static const struct xd_spec delivery_confirmed_spec = SPEC(delivery_confirmed);

const struct xd_spec *const xd_data_specs[XD_EV__COUNT] = {
    [XD_EV_SHIPMENT_CONFIRMED] = &shipment_confirmed_spec,
    [XD_EV_SHIPMENT_VOIDED] = &shipment_voided_spec,
    [XD_EV_GOODS_RECEIVED] = &goods_received_spec,
    [XD_EV_INVENTORY_ADJUSTED] = &inventory_adjusted_spec,
    [XD_EV_INVENTORY_SNAPSHOT] = &inventory_snapshot_spec,
    [XD_EV_DELIVERY_CONFIRMED] = &delivery_confirmed_spec,
};

/* Contract section 6: deliveries keep order per business key. */
const struct xd_bkey_spec xd_bkey_specs[XD_EV__COUNT] = {
    [XD_EV_SHIPMENT_CONFIRMED] = {"shipment", {"shipment_id", NULL}},
    [XD_EV_SHIPMENT_VOIDED] = {"shipment", {"shipment_id", NULL}},
    [XD_EV_GOODS_RECEIVED] = {"receipt", {"receipt_id", NULL}},
    [XD_EV_INVENTORY_ADJUSTED] = {"adjustment", {"adjustment_id", NULL}},
    [XD_EV_INVENTORY_SNAPSHOT] = {"snapshot", {"customer", "as_of"}},
    [XD_EV_DELIVERY_CONFIRMED] = {"shipment", {"shipment_id", NULL}},
};
/* clang-format on */
