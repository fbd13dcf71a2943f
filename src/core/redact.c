/*
 * Secret redaction (see redact.h). The list is append-only: a writer fills
 * a slot, then publishes the new count with a release store; a reader loads
 * the count with acquire and reads only published slots, so scrubbing needs
 * no lock.
 */
#include "core/redact.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static char *values[XD_REDACT_MAX];
static size_t lens[XD_REDACT_MAX];
static atomic_size_t nvalues;
static pthread_mutex_t add_mu = PTHREAD_MUTEX_INITIALIZER;

void xd_redact_add(const char *secret)
{
    if (!secret)
        return;
    size_t n = strlen(secret);
    if (n < XD_REDACT_MIN)
        return;
    pthread_mutex_lock(&add_mu);
    size_t have = atomic_load_explicit(&nvalues, memory_order_relaxed);
    for (size_t i = 0; i < have; i++) {
        if (lens[i] == n && memcmp(values[i], secret, n) == 0) {
            pthread_mutex_unlock(&add_mu);
            return;
        }
    }
    if (have == XD_REDACT_MAX) {
        pthread_mutex_unlock(&add_mu);
        fputs("crossdock: redaction list full: a secret will not be redacted from logs\n", stderr);
        return;
    }
    values[have] = strdup(secret);
    if (values[have]) {
        lens[have] = n;
        atomic_store_explicit(&nvalues, have + 1, memory_order_release);
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

size_t xd_redact(char *s, size_t *len)
{
    size_t have = atomic_load_explicit(&nvalues, memory_order_acquire);
    size_t count = 0, mark = sizeof XD_REDACT_MARK - 1;
    if (!s)
        return 0;
    for (size_t i = 0; i < have; i++) {
        size_t vl = lens[i], at = 0;
        while (at + vl <= *len) {
            char *hit = memmem(s + at, *len - at, values[i], vl);
            if (!hit)
                break;
            size_t off = (size_t)(hit - s);
            memcpy(hit, XD_REDACT_MARK, mark);
            memmove(hit + mark, hit + vl, *len - off - vl);
            *len -= vl - mark;
            at = off + mark;
            count++;
        }
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
