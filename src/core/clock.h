/* Wall-clock helpers: unix milliseconds and RFC 3339 text for them. */
#ifndef XD_CLOCK_H
#define XD_CLOCK_H

#include <stddef.h>
#include <stdint.h>

int64_t xd_now_ms(void);       /* CLOCK_REALTIME, unix ms */
int64_t xd_mono_ms(void);      /* CLOCK_MONOTONIC, ms: for timers and durations */
/* "2026-11-28T14:03:11.204Z" into out (n >= 32). */
void xd_iso_ms(char *out, size_t n, int64_t unix_ms);

#endif
