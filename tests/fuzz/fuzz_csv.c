/*
 * libFuzzer target: bytes through the CSV reader (formats/csv.h). Any input
 * must give either events or errors, never a crash, a leak or undefined
 * behaviour, and the outcome must keep the reader's promises: on success an
 * array of events that each validate and prepare (ready for the store) and
 * no errors; on failure no events and at least one error, each naming its
 * row. The input's length picks the options and limits (none, --customer,
 * --warehouse, both; default or tiny limits), so one corpus covers them all.
 */
#include "core/err.h"
#include "formats/csv.h"
#include "ingest/event.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct xd_convert_opts opts[4] = {
        {0},
        {.customer = "ACME"},
        {.warehouse = "DC1"},
        {.customer = "ACME", .warehouse = "DC1"},
    };
    struct xd_csv_limits tiny = {.max_rows = 20, .max_cell = 32};
    cJSON *events = NULL;
    struct xd_verrs errs = {0};

    int rc = xd_csv_read_lim((const char *)data, size, &opts[size % 4],
                             size % 8 >= 4 ? &tiny : NULL, &events, &errs);
    if (rc == 0) {
        if (!cJSON_IsArray(events) || errs.n != 0)
            abort();
        for (cJSON *e = events->child; e; e = e->next) {
            struct xd_event out;
            if (xd_event_validate(e, "", &errs) != 0 || xd_event_prepare(e, "fuzz", &out) != 0)
                abort();
            xd_event_dispose(&out);
        }
    } else {
        if (events != NULL || (errs.n == 0 && rc != XD_ENOMEM))
            abort();
        for (size_t i = 0; i < errs.n; i++)
            if (rc != XD_ENOMEM && strncmp(errs.v[i].path, "row ", 4) != 0)
                abort();
    }
    cJSON_Delete(events);
    xd_verrs_dispose(&errs);
    return 0;
}
