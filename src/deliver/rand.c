/*
 * xoshiro256** (Blackman and Vigna), one state per thread, seeded from
 * getrandom(2) on first use; when that fails, from the clock, the thread
 * and a counter through splitmix64 (jitter only needs to differ between
 * processes, not to be unpredictable).
 */
#include "deliver/rand.h"

#include <stdatomic.h>
#include <sys/random.h>
#include <sys/types.h>
#include <time.h>

static _Thread_local uint64_t st[4];
static _Thread_local int seeded;

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

static void seed(void)
{
    static atomic_uint_fast64_t counter;
    if (getrandom(st, sizeof st, GRND_NONBLOCK) != (ssize_t)sizeof st) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t x = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
        x ^= (uint64_t)(uintptr_t)&st ^ (atomic_fetch_add(&counter, 1) << 32);
        for (int i = 0; i < 4; i++)
            st[i] = splitmix64(&x);
    }
    if ((st[0] | st[1] | st[2] | st[3]) == 0) /* the one state xoshiro cannot leave */
        st[0] = 1;
    seeded = 1;
}

static inline uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

uint64_t xd_rand64(void *ctx)
{
    (void)ctx;
    if (!seeded)
        seed();
    uint64_t r = rotl(st[1] * 5, 7) * 9;
    uint64_t t = st[1] << 17;
    st[2] ^= st[0];
    st[3] ^= st[1];
    st[1] ^= st[2];
    st[0] ^= st[3];
    st[2] ^= t;
    st[3] = rotl(st[3], 45);
    return r;
}
