/*
 * What `per` means (contract 6.1) as one table: for each basis, its name in
 * the YAML, the unit its charges carry, the event types it applies to, and
 * the function that counts its quantity in an event's data. The card checks
 * (card.c) and the rating (rate.c) both read it; a new basis is a new row.
 *
 * Numbers in events are doubles (cJSON); each is turned into its exact
 * decimal with xd_dec_from_double() before anything is added, so a sum of
 * quantities is exact.
 */
#include "rating/card.h"

#include "core/buf.h"
#include "core/err.h"

#include <string.h>

#define EV(t) (1u << (t))

/* obj[name] as an exact decimal; zero when absent or not a number. */
static int number_at(const cJSON *obj, const char *name, struct xd_dec *q, double *raw)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    *q = xd_dec_int(0);
    if (!cJSON_IsNumber(v))
        return 0;
    *raw = v->valuedouble;
    return xd_dec_from_double(v->valuedouble, q);
}

static int field(const cJSON *data, const char *name, struct xd_dec *q, struct xd_buf *why)
{
    double raw = 0;
    int rc = number_at(data, name, q, &raw);
    if (rc < 0)
        xd_buf_printf(why, "data.%s: %.17g is beyond the exact decimal range (36 digits)", name,
                      raw);
    return rc;
}

/* The sum of items[].name over the array data[array]; zero when none has it. */
static int sum_of(const cJSON *data, const char *array, const char *name, struct xd_dec *q,
                  struct xd_buf *why)
{
    const cJSON *items = cJSON_GetObjectItemCaseSensitive(data, array);
    const cJSON *it;
    struct xd_dec sum = xd_dec_int(0);
    size_t i = 0;
    cJSON_ArrayForEach(it, items)
    {
        struct xd_dec x;
        double raw = 0;
        int rc = number_at(it, name, &x, &raw);
        if (rc < 0) {
            xd_buf_printf(why,
                          "data.%s[%zu].%s: %.17g is beyond the exact decimal range (36 digits)",
                          array, i, name, raw);
            return rc;
        }
        rc = xd_dec_add(sum, x, &sum);
        if (rc < 0) {
            xd_buf_printf(why, "data.%s: the sum of %s is beyond the exact decimal range", array,
                          name);
            return rc;
        }
        i++;
    }
    *q = sum;
    return 0;
}

static int q_one(const cJSON *data, struct xd_dec *q, struct xd_buf *why)
{
    (void)data, (void)why;
    *q = xd_dec_int(1);
    return 0;
}

static int q_lines(const cJSON *data, struct xd_dec *q, struct xd_buf *why)
{
    (void)why;
    const cJSON *lines = cJSON_GetObjectItemCaseSensitive(data, "lines");
    *q = xd_dec_int(cJSON_IsArray(lines) ? cJSON_GetArraySize(lines) : 0);
    return 0;
}

static int q_units(const cJSON *data, struct xd_dec *q, struct xd_buf *why)
{
    return sum_of(data, "lines", "qty", q, why);
}

static int q_pallets(const cJSON *data, struct xd_dec *q, struct xd_buf *why)
{
    return field(data, "pallets", q, why);
}

static int q_cartons(const cJSON *data, struct xd_dec *q, struct xd_buf *why)
{
    return field(data, "cartons", q, why);
}

static int q_kg(const cJSON *data, struct xd_dec *q, struct xd_buf *why)
{
    return field(data, "weight_kg", q, why);
}

static int q_pallet_days(const cJSON *data, struct xd_dec *q, struct xd_buf *why)
{
    return sum_of(data, "items", "pallets", q, why); /* one snapshot is one day */
}

static int q_unit_days(const cJSON *data, struct xd_dec *q, struct xd_buf *why)
{
    return sum_of(data, "items", "qty", q, why);
}

/* clang-format off */
const struct xd_basis_def xd_bases[XD_PER__COUNT] = {
    [XD_PER_SHIPMENT]   = {"shipment",   "shipment",   EV(XD_EV_SHIPMENT_CONFIRMED), q_one},
    [XD_PER_LINE]       = {"line",       "line",       EV(XD_EV_SHIPMENT_CONFIRMED) | EV(XD_EV_GOODS_RECEIVED), q_lines},
    [XD_PER_UNIT]       = {"unit",       "unit",       EV(XD_EV_SHIPMENT_CONFIRMED) | EV(XD_EV_GOODS_RECEIVED), q_units},
    [XD_PER_PALLET]     = {"pallet",     "pallet",     EV(XD_EV_SHIPMENT_CONFIRMED) | EV(XD_EV_GOODS_RECEIVED), q_pallets},
    [XD_PER_CARTON]     = {"carton",     "carton",     EV(XD_EV_GOODS_RECEIVED), q_cartons},
    [XD_PER_KG]         = {"kg",         "kg",         EV(XD_EV_SHIPMENT_CONFIRMED), q_kg},
    [XD_PER_RECEIPT]    = {"receipt",    "receipt",    EV(XD_EV_GOODS_RECEIVED), q_one},
    [XD_PER_ADJUSTMENT] = {"adjustment", "adjustment", EV(XD_EV_INVENTORY_ADJUSTED), q_one},
    [XD_PER_PALLET_DAY] = {"pallet_day", "pallet_day", EV(XD_EV_INVENTORY_SNAPSHOT), q_pallet_days},
    [XD_PER_UNIT_DAY]   = {"unit_day",   "unit_day",   EV(XD_EV_INVENTORY_SNAPSHOT), q_unit_days},
    [XD_PER_FREIGHT]    = {"freight",    "shipment",   EV(XD_EV_SHIPMENT_CONFIRMED), NULL},
};
/* clang-format on */

int xd_basis_parse(const char *name)
{
    for (int i = 0; i < XD_PER__COUNT; i++)
        if (strcmp(xd_bases[i].name, name) == 0)
            return i;
    return -1;
}
