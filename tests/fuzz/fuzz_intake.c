/*
 * libFuzzer target: a request body through the whole intake path (JSON
 * parse with limits, validation of every event, normalisation). Any input
 * must give either prepared events or errors, never a crash or a leak.
 */
#include "ingest/intake.h"

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct xd_intake_limits lim = {.max_batch = 1000, .max_depth = 64, .max_string = 65536};
    struct xd_intake in;
    xd_intake_init(&in, &lim, "fuzz");
    xd_intake_add_body(&in, (const char *)data, size);
    xd_intake_dispose(&in);
    xd_intake_init(&in, &lim, "fuzz");
    xd_intake_add_lines(&in, (const char *)data, size);
    xd_intake_dispose(&in);
    return 0;
}
