/*
 * The one place that turns an HTTP status or a transport error into OK,
 * RETRY or FAIL (see outcome.h). Statuses go through a small table of
 * ranges, transport errors through XD_XPORT_MAP; no switch forests.
 */
#include "deliver/outcome.h"

#include <stddef.h>

static const struct xport_row {
    const char *cls;
    enum xd_outcome out;
} xports[] = {
#define XD_XPORT_ROW(name, c, o) [XD_XPORT_##name] = {c, o},
    XD_XPORT_MAP(XD_XPORT_ROW)
#undef XD_XPORT_ROW
};

/*
 * Status ranges, first match wins. Single codes come before the range that
 * holds them. A status outside every row (below 100, above 999) is not a
 * valid answer: "http_other", RETRY.
 */
static const struct status_row {
    long lo, hi; /* inclusive */
    const char *cls;
    enum xd_outcome out;
} statuses[] = {
    {200, 299, "ok", XD_OUT_OK},
    {408, 408, "http_4xx", XD_OUT_RETRY}, /* Request Timeout */
    {425, 425, "http_4xx", XD_OUT_RETRY}, /* Too Early */
    {429, 429, "http_429", XD_OUT_RETRY}, /* Too Many Requests */
    {500, 599, "http_5xx", XD_OUT_RETRY},
    {100, 199, "http_1xx", XD_OUT_FAIL}, /* an interim answer as final one */
    {300, 399, "http_3xx", XD_OUT_FAIL}, /* redirects are not followed */
    {400, 499, "http_4xx", XD_OUT_FAIL},
    {600, 999, "http_other", XD_OUT_FAIL}, /* three digits, but no class HTTP defines */
};

static const struct status_row no_status = {0, 0, "http_other", XD_OUT_RETRY};

static const struct xport_row *xport_row(int transport_error)
{
    if (transport_error < 0 || transport_error >= XD_XPORT__COUNT)
        return &xports[XD_XPORT_OTHER];
    return &xports[transport_error];
}

static const struct status_row *status_row(long status)
{
    for (size_t i = 0; i < sizeof statuses / sizeof statuses[0]; i++)
        if (status >= statuses[i].lo && status <= statuses[i].hi)
            return &statuses[i];
    return &no_status;
}

enum xd_outcome xd_outcome_classify(long http_status, int transport_error)
{
    if (transport_error != XD_XPORT_NONE)
        return xport_row(transport_error)->out;
    return status_row(http_status)->out;
}

const char *xd_outcome_class(long http_status, int transport_error)
{
    if (transport_error != XD_XPORT_NONE)
        return xport_row(transport_error)->cls;
    return status_row(http_status)->cls;
}

const char *xd_outcome_name(enum xd_outcome o)
{
    static const char *const names[] = {
        [XD_OUT_OK] = "ok", [XD_OUT_RETRY] = "retry", [XD_OUT_FAIL] = "fail"};
    if ((unsigned)o >= sizeof names / sizeof names[0])
        return "?";
    return names[o];
}
