/* Wall-clock helpers: unix milliseconds and RFC 3339 text for them. */
#ifndef XD_CLOCK_H
#define XD_CLOCK_H

#include <stddef.h>
#include <stdint.h>

int64_t xd_now_ms(void);       /* CLOCK_REALTIME, unix ms */
int64_t xd_mono_ms(void);      /* CLOCK_MONOTONIC, ms: for timers and durations */
/* "2026-11-28T14:03:11.204Z" into out (n >= 32). */
void xd_iso_ms(char *out, size_t n, int64_t unix_ms);

/*
 * Parses "YYYY-MM-DD" (midnight UTC) or an RFC 3339 date-time into unix ms.
 * Returns 0, or -1 when s is neither.
 */
int xd_parse_time_ms(const char *s, int64_t *out);

#endif
