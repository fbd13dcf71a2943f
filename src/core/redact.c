/*
 * Secret redaction (see redact.h). Each value is an immutable record (length
 * and bytes) that is never freed while the process runs, published through
 * an atomic pointer: a reader loads a slot once and reads a consistent
 * record, without a lock, whatever writers do meanwhile.
 *
 * Two lists: `fixed` for values registered with xd_redact_add() (keys,
 * static tokens: kept for the life of the process), and a ring for
 * xd_redact_add_rotating() (short-lived tokens such as OAuth2 access tokens:
 * the last XD_REDACT_RING are kept, an older one's slot is reused, and the
 * record it held moves to a retired list so it stays reachable).
 */
#include "core/redact.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct secret {
    struct secret *retired; /* link in the retired list, once replaced in the ring */
    size_t len;
    char s[];
};

static _Atomic(struct secret *) fixed[XD_REDACT_MAX];
static atomic_size_t nfixed;
static _Atomic(struct secret *) ring[XD_REDACT_RING];
static size_t ring_next;       /* next ring slot to fill (under add_mu) */
static struct secret *retired; /* replaced ring records (under add_mu) */
static pthread_mutex_t add_mu = PTHREAD_MUTEX_INITIALIZER;

static struct secret *make(const char *value, size_t n)
{
    struct secret *p = malloc(sizeof *p + n);
    if (!p)
        return NULL;
    p->retired = NULL;
    p->len = n;
    memcpy(p->s, value, n);
    return p;
}

/* Is value registered already? (under add_mu) */
static int known(const char *value, size_t n)
{
    size_t have = atomic_load_explicit(&nfixed, memory_order_relaxed);
    for (size_t i = 0; i < have; i++) {
        const struct secret *p = atomic_load_explicit(&fixed[i], memory_order_relaxed);
        if (p->len == n && memcmp(p->s, value, n) == 0)
            return 1;
    }
    for (size_t i = 0; i < XD_REDACT_RING; i++) {
        const struct secret *p = atomic_load_explicit(&ring[i], memory_order_relaxed);
        if (p && p->len == n && memcmp(p->s, value, n) == 0)
            return 1;
    }
    return 0;
}

void xd_redact_add(const char *secret)
{
    size_t n = secret ? strlen(secret) : 0;
    if (n < XD_REDACT_MIN)
        return;
    pthread_mutex_lock(&add_mu);
    size_t have = atomic_load_explicit(&nfixed, memory_order_relaxed);
    if (known(secret, n)) {
        pthread_mutex_unlock(&add_mu);
        return;
    }
    if (have == XD_REDACT_MAX) {
        pthread_mutex_unlock(&add_mu);
        fputs("crossdock: redaction list full: a secret will not be redacted from logs\n", stderr);
        return;
    }
    struct secret *p = make(secret, n);
    if (p) {
        atomic_store_explicit(&fixed[have], p, memory_order_release);
        atomic_store_explicit(&nfixed, have + 1, memory_order_release);
    }
    pthread_mutex_unlock(&add_mu);
}

void xd_redact_add_rotating(const char *secret)
{
    size_t n = secret ? strlen(secret) : 0;
    if (n < XD_REDACT_MIN)
        return;
    pthread_mutex_lock(&add_mu);
    struct secret *p = known(secret, n) ? NULL : make(secret, n);
    if (p) {
        struct secret *old = atomic_exchange_explicit(&ring[ring_next], p, memory_order_acq_rel);
        ring_next = (ring_next + 1) % XD_REDACT_RING;
        if (old) {
            old->retired = retired;
            retired = old;
        }
    }
    pthread_mutex_unlock(&add_mu);
}

void xd_redact_add_header(const char *name, const char *value)
{
    static const char *const words[] = {"authorization", "cookie", "key",       "token",
                                        "secret",        "auth",   "signature", "password"};
    if (!name || !value)
        return;
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++) {
        if (strcasestr(name, words[i])) {
            xd_redact_add(value);
            return;
        }
    }
}

/* Replaces every occurrence of p in s[0, *len); returns how many. */
static size_t scrub(char *s, size_t *len, const struct secret *p)
{
    size_t count = 0, at = 0, mark = sizeof XD_REDACT_MARK - 1;
    while (at + p->len <= *len) {
        char *hit = memmem(s + at, *len - at, p->s, p->len);
        if (!hit)
            break;
        size_t off = (size_t)(hit - s);
        memcpy(hit, XD_REDACT_MARK, mark);
        memmove(hit + mark, hit + p->len, *len - off - p->len);
        *len -= p->len - mark;
        at = off + mark;
        count++;
    }
    return count;
}

size_t xd_redact(char *s, size_t *len)
{
    if (!s)
        return 0;
    size_t count = 0, have = atomic_load_explicit(&nfixed, memory_order_acquire);
    for (size_t i = 0; i < have; i++)
        count += scrub(s, len, atomic_load_explicit(&fixed[i], memory_order_acquire));
    for (size_t i = 0; i < XD_REDACT_RING; i++) {
        const struct secret *p = atomic_load_explicit(&ring[i], memory_order_acquire);
        if (p)
            count += scrub(s, len, p);
    }
    return count;
}

size_t xd_redact_str(char *s)
{
    if (!s)
        return 0;
    size_t n = strlen(s);
    size_t count = xd_redact(s, &n);
    s[n] = '\0';
    return count;
}
