/* The process's cross-reference tables (see xref.h). */
#include "transform/xref.h"
#include "core/config.h"
#include "core/err.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

struct entry {
    char *table, *key, *value;
};

struct set {
    struct entry *v;
    size_t n, cap;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct set base, over;    /* the config's; the API's */
static _Atomic uint64_t version; /* 0: inactive */
static uint64_t counter;         /* guarded by mu: the next version */

static void set_clear(struct set *s)
{
    for (size_t i = 0; i < s->n; i++) {
        free(s->v[i].table);
        free(s->v[i].key);
        free(s->v[i].value);
    }
    free(s->v);
    memset(s, 0, sizeof *s);
}

static struct entry *find(struct set *s, const char *table, const char *key)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->v[i].key, key) == 0 && strcmp(s->v[i].table, table) == 0)
            return &s->v[i];
    return NULL;
}

static int set_put(struct set *s, const char *table, const char *key, const char *value)
{
    struct entry *e = find(s, table, key);
    char *v = strdup(value ? value : "");
    if (!v)
        return XD_ENOMEM;
    if (e) {
        free(e->value);
        e->value = v;
        return 0;
    }
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        struct entry *nv = realloc(s->v, cap * sizeof *nv);
        if (!nv) {
            free(v);
            return XD_ENOMEM;
        }
        s->v = nv;
        s->cap = cap;
    }
    e = &s->v[s->n];
    e->table = strdup(table);
    e->key = strdup(key);
    e->value = v;
    if (!e->table || !e->key) {
        free(e->table);
        free(e->key);
        free(v);
        return XD_ENOMEM;
    }
    s->n++;
    return 0;
}

static void bump(void)
{
    atomic_store(&version, ++counter);
}

int xd_xref_use_config(const struct xd_config *cfg)
{
    struct set fresh = {0};
    for (size_t i = 0; cfg && i < cfg->nxref; i++) {
        const struct xd_xref_table *t = &cfg->xref[i];
        for (size_t j = 0; j < t->n; j++) {
            if (!t->entries[j].key)
                continue;
            if (set_put(&fresh, t->name ? t->name : "", t->entries[j].key, t->entries[j].value) <
                0) {
                set_clear(&fresh);
                return XD_ENOMEM;
            }
        }
    }
    pthread_mutex_lock(&mu);
    set_clear(&base);
    base = fresh;
    bump();
    pthread_mutex_unlock(&mu);
    return 0;
}

int xd_xref_set(const char *table, const char *key, const char *value)
{
    if (!table || !key || !value)
        return XD_EINVAL;
    pthread_mutex_lock(&mu);
    int rc = set_put(&over, table, key, value);
    if (rc == 0)
        bump();
    pthread_mutex_unlock(&mu);
    return rc;
}

int xd_xref_unset(const char *table, const char *key)
{
    pthread_mutex_lock(&mu);
    struct entry *e = find(&over, table, key);
    if (e) {
        free(e->table);
        free(e->key);
        free(e->value);
        *e = over.v[--over.n];
        bump();
    }
    pthread_mutex_unlock(&mu);
    return e != NULL;
}

int xd_xref_has(const char *table, const char *key)
{
    pthread_mutex_lock(&mu);
    int has = find(&over, table, key) || find(&base, table, key);
    pthread_mutex_unlock(&mu);
    return has;
}

uint64_t xd_xref_version(void)
{
    return atomic_load_explicit(&version, memory_order_acquire);
}

void xd_xref_each(void (*cb)(void *ctx, const char *table, const char *key, const char *value,
                             int api),
                  void *ctx)
{
    pthread_mutex_lock(&mu);
    for (size_t i = 0; i < base.n; i++)
        cb(ctx, base.v[i].table, base.v[i].key, base.v[i].value, 0);
    for (size_t i = 0; i < over.n; i++)
        cb(ctx, over.v[i].table, over.v[i].key, over.v[i].value, 1);
    pthread_mutex_unlock(&mu);
}

void xd_xref_reset(void)
{
    pthread_mutex_lock(&mu);
    set_clear(&base);
    set_clear(&over);
    atomic_store(&version, 0);
    pthread_mutex_unlock(&mu);
}
