/* Durations in the config: "500ms", "90s", "15m", "1h", "2d". */
#ifndef XD_DURATION_H
#define XD_DURATION_H

#include <stdint.h>

/* Parses s into milliseconds: 0, or XD_EINVAL (not a number and a unit, or beyond a year). */
int xd_duration_parse(const char *s, int64_t *ms);

#endif
