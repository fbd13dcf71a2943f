/* Xref entries across nodes (see xref_sync.h). */
#include "reconcile/xref_sync.h"
#include "core/err.h"
#include "core/log.h"
#include "store/holds.h"
#include "transform/xref.h"

#include <stdlib.h>
#include <string.h>

struct entry {
    char *table, *key, *value;
};

struct list {
    struct entry *v;
    size_t n, cap;
    int oom;
};

struct xd_xref_sync {
    struct list missing; /* API entries of this process the store lacked last run */
};

static void list_clear(struct list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->v[i].table);
        free(l->v[i].key);
        free(l->v[i].value);
    }
    free(l->v);
    memset(l, 0, sizeof *l);
}

static void list_add(struct list *l, const char *table, const char *key, const char *value)
{
    if (l->oom)
        return;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        struct entry *v = realloc(l->v, cap * sizeof *v);
        if (!v) {
            l->oom = 1;
            return;
        }
        l->v = v;
        l->cap = cap;
    }
    struct entry e = {strdup(table), strdup(key), strdup(value ? value : "")};
    if (!e.table || !e.key || !e.value) {
        free(e.table);
        free(e.key);
        free(e.value);
        l->oom = 1;
        return;
    }
    l->v[l->n++] = e;
}

static const struct entry *find(const struct list *l, const char *table, const char *key)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->v[i].key, key) == 0 && strcmp(l->v[i].table, table) == 0)
            return &l->v[i];
    return NULL;
}

static void mine(void *ctx, const char *table, const char *key, const char *value, int api)
{
    if (api)
        list_add(ctx, table, key, value);
}

static void stored(void *ctx, const char *table, const char *key, const char *value,
                   int64_t updated_ms)
{
    (void)updated_ms;
    list_add(ctx, table, key, value);
}

struct xd_xref_sync *xd_xref_sync_create(void)
{
    return calloc(1, sizeof(struct xd_xref_sync));
}

void xd_xref_sync_destroy(struct xd_xref_sync *x)
{
    if (!x)
        return;
    list_clear(&x->missing);
    free(x);
}

int xd_xref_sync_run(struct xd_xref_sync *x, struct xd_store *s)
{
    /* This process's entries first: one added after this look is not taken for a removal. */
    struct list have = {0}, want = {0}, missing = {0};
    xd_xref_each(mine, &have);
    int rc = have.oom ? XD_ENOMEM : xd_store_xref_list(s, NULL, stored, &want);
    if (rc >= 0 && want.oom)
        rc = XD_ENOMEM;
    if (rc < 0)
        goto out;
    rc = 0;
    for (size_t i = 0; i < want.n; i++) {
        const struct entry *e = &want.v[i];
        const struct entry *h = find(&have, e->table, e->key);
        if (h && strcmp(h->value, e->value) == 0)
            continue;
        if (xd_xref_set(e->table, e->key, e->value) == 0)
            xd_info("xref %s/%s: set on another node", e->table, e->key);
    }
    for (size_t i = 0; i < have.n; i++) {
        const struct entry *h = &have.v[i];
        if (find(&want, h->table, h->key))
            continue;
        if (!find(&x->missing, h->table, h->key)) {
            list_add(&missing, h->table, h->key, h->value); /* look again next run */
            continue;
        }
        if (xd_xref_unset(h->table, h->key))
            xd_info("xref %s/%s: removed on another node", h->table, h->key);
    }
    list_clear(&x->missing);
    x->missing = missing;
    memset(&missing, 0, sizeof missing);
out:
    list_clear(&have);
    list_clear(&want);
    list_clear(&missing);
    return rc;
}
