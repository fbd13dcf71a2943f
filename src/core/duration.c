/* Durations in the config (see duration.h). */
#include "core/duration.h"
#include "core/err.h"

#include <string.h>

int xd_duration_parse(const char *s, int64_t *ms)
{
    static const struct {
        const char *unit;
        int64_t ms;
    } units[] = {{"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000}};
    int64_t n = 0;
    const char *p = s;
    if (!s || *p < '0' || *p > '9')
        return XD_EINVAL;
    for (; *p >= '0' && *p <= '9'; p++) {
        n = n * 10 + (*p - '0');
        if (n > 366LL * 86400000)
            return XD_EINVAL;
    }
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (strcmp(p, units[i].unit) == 0) {
            if (n * units[i].ms > 366LL * 86400000)
                return XD_EINVAL;
            *ms = n * units[i].ms;
            return 0;
        }
    }
    return XD_EINVAL;
}
