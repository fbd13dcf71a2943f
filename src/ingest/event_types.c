/* Names of the canonical event types (see event.h). */
#include "ingest/event.h"

#include <string.h>

static const char *const type_names[XD_EV__COUNT] = {
    [XD_EV_SHIPMENT_CONFIRMED] = "shipment.confirmed",
    [XD_EV_SHIPMENT_VOIDED] = "shipment.voided",
    [XD_EV_GOODS_RECEIVED] = "goods.received",
    [XD_EV_INVENTORY_ADJUSTED] = "inventory.adjusted",
    [XD_EV_INVENTORY_SNAPSHOT] = "inventory.snapshot",
    [XD_EV_DELIVERY_CONFIRMED] = "delivery.confirmed",
};

const char *xd_event_type_name(enum xd_event_type t)
{
    if ((unsigned)t >= XD_EV__COUNT)
        return NULL;
    return type_names[t];
}

int xd_event_type_parse(const char *name)
{
    for (int i = 0; i < XD_EV__COUNT; i++)
        if (strcmp(type_names[i], name) == 0)
            return i;
    return -1;
}
