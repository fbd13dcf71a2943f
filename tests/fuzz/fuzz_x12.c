/*
 * libFuzzer target: any bytes through the X12 reader (formats/convert.h)
 * with a 997 requested. Besides no crash, no leak and no undefined
 * behaviour, it checks the reader's promises: every event it returns is a
 * valid canonical event, a rejection always comes with an error, and the
 * 997 it writes reads back as X12 without a single problem (the reader
 * takes 997s in and leaves them unacknowledged).
 */
#include "core/buf.h"
#include "core/err.h"
#include "formats/convert.h"
#include "ingest/event.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static void check(int cond, const char *what)
{
    if (!cond) {
        fprintf(stderr, "fuzz_x12: %s\n", what);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* the first byte picks the options, so partners and defaults get exercised too */
    static const struct xd_partner partners[] = {{.id = "WMS1", .customer = "ACME", .warehouse = "DC1"},
                                                      {.id = "WMS9", .warehouse = "DC9"}};
    struct xd_convert_opts o = {0};
    if (size && (data[0] & 1)) {
        o.partners = partners;
        o.npartners = 2;
    }
    if (size && (data[0] & 2)) {
        o.customer = "FUZZ";
        o.warehouse = "FZ1";
    }
    cJSON *evs = NULL;
    struct xd_verrs errs = {0};
    struct xd_buf ack;
    xd_buf_init(&ack);
    int rc = xd_x12_read((const char *)data, size, &o, &evs, &errs, &ack);
    check(rc == 0 || rc == XD_ESCHEMA || rc == XD_EPARSE || rc == XD_ENOMEM, "unexpected rc");
    check(rc == 0 ? errs.n == 0 : rc == XD_ENOMEM || errs.n > 0, "errors do not match rc");
    check((evs != NULL) == (rc == 0 || rc == XD_ESCHEMA), "events do not match rc");
    for (const cJSON *e = evs ? evs->child : NULL; e; e = e->next) {
        struct xd_verrs v = {0};
        check(xd_event_validate(e, NULL, &v) == 0, "an event is not valid");
        xd_verrs_dispose(&v);
    }
    cJSON_Delete(evs);
    xd_verrs_dispose(&errs);

    if (ack.len) { /* our own 997 reads back clean */
        cJSON *again = NULL;
        struct xd_verrs e2 = {0};
        int rc2 = xd_x12_read(ack.data, ack.len, NULL, &again, &e2, NULL);
        if (rc2 != 0 && rc2 != XD_ENOMEM) {
            fprintf(stderr, "997 does not read back: %s: %s\n%s\n", e2.n ? e2.v[0].path : "",
                    e2.n ? e2.v[0].message : "", ack.data);
            abort();
        }
        check(!again || cJSON_GetArraySize(again) == 0, "a 997 gave events");
        cJSON_Delete(again);
        xd_verrs_dispose(&e2);
    }
    xd_buf_dispose(&ack);
    return 0;
}
