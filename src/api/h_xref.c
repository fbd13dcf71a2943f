/*
 * Cross-reference entries over HTTP (docs/exceptions.md, master-data holds):
 *
 *   GET    /v1/xref                 the tables, with how many entries each has
 *   GET    /v1/xref/{table}         the table as jq sees it: the config's
 *                                   entries overlaid with those added here
 *   PUT    /v1/xref/{table}/{key}   body: the value (a JSON string, number, or
 *                                   {"value": ...}); durable, visible to every
 *                                   mapping at once, and releases the
 *                                   deliveries held for this entry
 *   DELETE /v1/xref/{table}/{key}   removes an entry added here
 *
 * The entry is set in the process's tables first and then written with the
 * release in one transaction, so a released delivery always maps with it.
 */
#include "api/http.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "formats/json.h"
#include "route/dispatch.h"
#include "store/holds.h"
#include "transform/xref.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NAME_MAX_LEN  128
#define VALUE_MAX_LEN 1024

/* Table and key from the URL: /v1/xref/TABLE[/KEY]. 0, or answers 404 itself. */
static int names(struct xd_req *r, char *table, char *key, int want_key)
{
    const char *p = r->url + strlen("/v1/xref/");
    const char *slash = strchr(p, '/');
    size_t tl = slash ? (size_t)(slash - p) : strlen(p);
    const char *k = slash ? slash + 1 : "";
    int ok = tl > 0 && tl <= NAME_MAX_LEN && (!want_key || (*k && strlen(k) <= NAME_MAX_LEN));
    for (size_t i = 0; ok && i < tl; i++)
        ok = (unsigned char)p[i] > ' ' && p[i] != 0x7f;
    for (const char *c = k; ok && *c; c++)
        ok = (unsigned char)*c >= ' ' && *c != 0x7f;
    if (!ok) {
        xd_http_problem(r, 404, "not-found", "Not Found",
                        "expected /v1/xref/TABLE/KEY (1-128 printable characters each)", NULL);
        return -1;
    }
    memcpy(table, p, tl);
    table[tl] = '\0';
    snprintf(key, NAME_MAX_LEN + 1, "%s", k);
    return 0;
}

struct table_ctx {
    const char *table;
    struct xd_buf *o;
    size_t n;
};

static void table_row(void *ctx, const char *table, const char *key, const char *value, int api)
{
    struct table_ctx *c = ctx;
    if (strcmp(table, c->table) != 0)
        return;
    xd_buf_puts(c->o, c->n++ ? ",{\"key\":" : "{\"key\":");
    xd_buf_json_str(c->o, key);
    xd_buf_puts(c->o, ",\"value\":");
    xd_buf_json_str(c->o, value);
    xd_buf_printf(c->o, ",\"source\":\"%s\"}", api ? "api" : "config");
}

void xd_h_xref_get(struct xd_req *r)
{
    char table[NAME_MAX_LEN + 1], key[NAME_MAX_LEN + 1];
    if (names(r, table, key, 0) < 0)
        return;
    if (xd_xref_version() == 0) {
        xd_http_problem(r, 503, "not-ready", "Service Unavailable", "xref tables not loaded", NULL);
        return;
    }
    struct xd_buf *o = &r->out;
    xd_buf_reset(o);
    xd_buf_puts(o, "{\"table\":");
    xd_buf_json_str(o, table);
    xd_buf_puts(o, ",\"entries\":[");
    struct table_ctx c = {.table = table, .o = o};
    xd_xref_each(table_row, &c); /* config first, then API: a later row for a key wins */
    xd_buf_puts(o, "]}");
    xd_http_reply_json(r, 200);
}

struct tables_ctx {
    struct {
        char name[NAME_MAX_LEN + 1];
        size_t config, api;
    } v[256];
    size_t n;
};

static void count_row(void *ctx, const char *table, const char *key, const char *value, int api)
{
    (void)key;
    (void)value;
    struct tables_ctx *c = ctx;
    size_t i = 0;
    while (i < c->n && strcmp(c->v[i].name, table) != 0)
        i++;
    if (i == c->n) {
        if (c->n == sizeof c->v / sizeof c->v[0])
            return;
        snprintf(c->v[i].name, sizeof c->v[i].name, "%s", table);
        c->v[i].config = c->v[i].api = 0;
        c->n++;
    }
    if (api)
        c->v[i].api++;
    else
        c->v[i].config++;
}

void xd_h_xref_tables(struct xd_req *r)
{
    if (xd_xref_version() == 0) {
        xd_http_problem(r, 503, "not-ready", "Service Unavailable", "xref tables not loaded", NULL);
        return;
    }
    struct tables_ctx *c = calloc(1, sizeof *c);
    if (!c) {
        xd_http_store_error(r, XD_ENOMEM);
        return;
    }
    xd_xref_each(count_row, c);
    struct xd_buf *o = &r->out;
    xd_buf_reset(o);
    xd_buf_puts(o, "{\"tables\":[");
    for (size_t i = 0; i < c->n; i++) {
        xd_buf_puts(o, i ? ",{\"table\":" : "{\"table\":");
        xd_buf_json_str(o, c->v[i].name);
        xd_buf_printf(o, ",\"config_entries\":%zu,\"api_entries\":%zu}", c->v[i].config,
                      c->v[i].api);
    }
    xd_buf_puts(o, "]}");
    free(c);
    xd_http_reply_json(r, 200);
}

/* The value from the body: a JSON string or number, or {"value": one of those}. */
static int body_value(struct xd_req *r, char *out, size_t cap)
{
    struct xd_json_limits lim = {.max_depth = 4, .max_string = VALUE_MAX_LEN};
    struct xd_json_error jerr;
    cJSON *body = NULL;
    int rc = -1;
    if (xd_json_parse(r->body.data ? r->body.data : "", r->body.len, &lim, &body, &jerr) < 0)
        return -1;
    const cJSON *v = body;
    if (cJSON_IsObject(body))
        v = cJSON_GetObjectItemCaseSensitive(body, "value");
    if (cJSON_IsString(v) && strlen(v->valuestring) < cap) {
        snprintf(out, cap, "%s", v->valuestring);
        rc = 0;
    } else if (cJSON_IsNumber(v) && r->body.len < cap) {
        struct xd_buf t;
        xd_buf_init(&t);
        if (xd_json_write(&t, v) == 0 && t.len < cap) {
            snprintf(out, cap, "%s", t.data);
            rc = 0;
        }
        xd_buf_dispose(&t);
    }
    cJSON_Delete(body);
    return rc;
}

void xd_h_xref_put(struct xd_req *r)
{
    char table[NAME_MAX_LEN + 1], key[NAME_MAX_LEN + 1], value[VALUE_MAX_LEN + 1];
    if (names(r, table, key, 1) < 0)
        return;
    if (body_value(r, value, sizeof value) < 0) {
        xd_http_problem(r, 400, "invalid", "Bad Request",
                        "expected the value: a JSON string or number, or {\"value\": ...} "
                        "(at most 1024 bytes)",
                        NULL);
        return;
    }
    if (xd_xref_version() == 0) {
        xd_http_problem(r, 503, "not-ready", "Service Unavailable", "xref tables not loaded", NULL);
        return;
    }
    int rc = xd_xref_set(table, key, value);
    int64_t released = 0;
    if (rc == 0)
        rc = xd_store_xref_put(r->srv->store, table, key, value, &released);
    if (rc < 0) {
        xd_xref_unset(table, key);
        xd_http_store_error(r, rc);
        return;
    }
    if (released && r->srv->dispatcher)
        xd_dispatch_nudge(r->srv->dispatcher);
    xd_info("xref %s/%s set by %s; %lld held delivery(ies) released", table, key,
            r->key ? r->key->id : "(no key)", (long long)released);
    struct xd_buf *o = &r->out;
    xd_buf_reset(o);
    xd_buf_puts(o, "{\"table\":");
    xd_buf_json_str(o, table);
    xd_buf_puts(o, ",\"key\":");
    xd_buf_json_str(o, key);
    xd_buf_puts(o, ",\"value\":");
    xd_buf_json_str(o, value);
    xd_buf_printf(o, ",\"released\":%lld}", (long long)released);
    xd_http_reply_json(r, 200);
}

void xd_h_xref_delete(struct xd_req *r)
{
    char table[NAME_MAX_LEN + 1], key[NAME_MAX_LEN + 1];
    if (names(r, table, key, 1) < 0)
        return;
    int rc = xd_store_xref_delete(r->srv->store, table, key);
    if (rc == XD_ENOTFOUND) {
        xd_http_problem(r, 404, "not-found", "Not Found",
                        "no entry of that table and key was added through the API", NULL);
        return;
    }
    if (rc < 0) {
        xd_http_store_error(r, rc);
        return;
    }
    xd_xref_unset(table, key);
    xd_buf_reset(&r->out);
    xd_buf_puts(&r->out, "{\"deleted\":true}");
    xd_http_reply_json(r, 200);
}
