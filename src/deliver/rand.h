/*
 * The default random source for backoff jitter and trace ids: a per-thread
 * xoshiro256** generator seeded once from getrandom(2). Not for secrets.
 * Functions that need randomness take a `uint64_t (*rnd)(void *ctx)` so
 * tests inject a fake; production passes xd_rand64 (ctx ignored).
 */
#ifndef XD_DELIVER_RAND_H
#define XD_DELIVER_RAND_H

#include <stdint.h>

/* 64 random bits from the calling thread's generator; ctx is unused. */
uint64_t xd_rand64(void *ctx);

#endif
