/*
 * Intake (see intake.h): parse once, validate every event, prepare the valid
 * ones. A body with any invalid event yields no events at all, so callers
 * can never store half a batch.
 */
#include "ingest/intake.h"
#include "core/buf.h"
#include "core/err.h"
#include "formats/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* First arena chunk per body byte: a parsed event takes about 7 times its text. */
#define ARENA_PER_BYTE 8

void xd_intake_init(struct xd_intake *in, const struct xd_intake_limits *lim,
                    const char *default_source)
{
    memset(in, 0, sizeof *in);
    in->lim = *lim;
    in->default_source = default_source;
    xd_json_arena_init(&in->arena, 0);
}

void xd_intake_dispose(struct xd_intake *in)
{
    for (size_t i = 0; i < in->n; i++)
        xd_event_dispose(&in->events[i]);
    free(in->events);
    /*
     * Trees parsed by xd_intake_add_body() were built and changed only while
     * the arena was entered: the arena holds all of them (no walk needed).
     */
    for (size_t i = 0; i < in->nroots && (in->heap_trees || !xd_json_hooks_active()); i++)
        xd_json_delete(in->roots[i]);
    free(in->roots);
    xd_json_arena_dispose(&in->arena); /* after the trees that may live in it */
    xd_verrs_dispose(&in->errs);
    memset(in, 0, sizeof *in);
}

static void set_status(struct xd_intake *in, int status)
{
    if (in->status == 0 || (in->status != 400 && status == 400))
        in->status = status;
}

static int keep_root(struct xd_intake *in, cJSON *root)
{
    if (in->nroots == in->roots_cap) {
        size_t cap = in->roots_cap ? in->roots_cap * 2 : 4;
        cJSON **r = realloc(in->roots, cap * sizeof *r);
        if (!r)
            return XD_ENOMEM;
        in->roots = r;
        in->roots_cap = cap;
    }
    in->roots[in->nroots++] = root;
    return 0;
}

static int push_event(struct xd_intake *in, cJSON *ev)
{
    if (in->n == in->cap) {
        size_t cap = in->cap ? in->cap * 2 : 8;
        struct xd_event *e = realloc(in->events, cap * sizeof *e);
        if (!e)
            return XD_ENOMEM;
        in->events = e;
        in->cap = cap;
    }
    int rc = xd_event_prepare(ev, in->default_source, &in->events[in->n]);
    if (rc < 0)
        return rc;
    in->n++;
    return 0;
}

/* Validates the events of items (an array), each with path "<name>[i]". */
static int validate_array(struct xd_intake *in, const cJSON *items, const char *name)
{
    char path[96];
    int i = 0, bad = 0;
    const cJSON *ev;
    cJSON_ArrayForEach(ev, items)
    {
        snprintf(path, sizeof path, "%s[%d]", name, i++);
        if (xd_event_validate(ev, path, &in->errs) < 0)
            bad = 1;
    }
    return bad ? XD_ESCHEMA : 0;
}

static int add_tree(struct xd_intake *in, cJSON *root);
static int parse_failed(struct xd_intake *in, int rc, const struct xd_json_error *jerr);

/*
 * The trees parsed here and the defaults xd_event_prepare() adds to them are
 * allocated in the intake's arena (formats/json.h), freed all at once by
 * xd_intake_dispose().
 */
int xd_intake_add_body(struct xd_intake *in, const char *body, size_t len)
{
    struct xd_json_limits jl = {.max_depth = in->lim.max_depth, .max_string = in->lim.max_string};
    struct xd_json_error jerr;
    cJSON *root = NULL;

    if (!in->arena.chunks)
        in->arena.hint = len * ARENA_PER_BYTE;
    struct xd_json_arena *prev = xd_json_arena_enter(&in->arena);
    int rc = xd_json_parse(body, len, &jl, &root, &jerr);
    if (rc == 0)
        rc = add_tree(in, root);
    else
        rc = parse_failed(in, rc, &jerr);
    xd_json_arena_enter(prev);
    return rc;
}

int xd_intake_add_tree(struct xd_intake *in, cJSON *root)
{
    in->heap_trees = 1;
    struct xd_json_arena *prev = xd_json_arena_enter(&in->arena);
    int rc = add_tree(in, root);
    xd_json_arena_enter(prev);
    return rc;
}

/* Records a body that xd_json_parse() refused. */
static int parse_failed(struct xd_intake *in, int rc, const struct xd_json_error *jerr)
{
    if (rc == XD_ENOMEM)
        return rc;
    xd_verrs_add(&in->errs, "", "malformed JSON at byte %zu: %s", jerr->offset, jerr->message);
    if (!in->has_offset) {
        in->has_offset = 1;
        in->offset = jerr->offset;
    }
    set_status(in, 400);
    return XD_EPARSE;
}

static int add_tree(struct xd_intake *in, cJSON *root)
{
    int rc = keep_root(in, root);
    if (rc < 0) {
        cJSON_Delete(root);
        return rc;
    }

    /* Which shape: a batch object, an array, or one event. */
    const cJSON *items = NULL;
    const char *name = "";
    if (cJSON_IsArray(root)) {
        items = root;
    } else if (cJSON_IsObject(root) && !cJSON_GetObjectItemCaseSensitive(root, "event_id") &&
               !cJSON_GetObjectItemCaseSensitive(root, "type") &&
               cJSON_GetObjectItemCaseSensitive(root, "events")) {
        items = cJSON_GetObjectItemCaseSensitive(root, "events");
        name = "events";
        if (!cJSON_IsArray(items)) {
            xd_verrs_add(&in->errs, "events", "must be an array");
            set_status(in, 400);
            return XD_ESCHEMA;
        }
    }

    size_t before = in->n;
    if (items) {
        size_t count = (size_t)cJSON_GetArraySize(items);
        if (count == 0) {
            xd_verrs_add(&in->errs, *name ? name : "", "batch is empty");
            set_status(in, 400);
            return XD_ESCHEMA;
        }
        if (in->n + count > in->lim.max_batch) {
            xd_verrs_add(&in->errs, *name ? name : "", "batch of %zu events exceeds max_batch %zu",
                         in->n + count, in->lim.max_batch);
            set_status(in, 413);
            return XD_ETOOBIG;
        }
        rc = validate_array(in, items, name);
        if (rc < 0) {
            set_status(in, 400);
            return rc;
        }
        if (in->errs.n)
            return XD_ESCHEMA; /* an earlier document was bad: prepare nothing */
        cJSON *ev;
        cJSON_ArrayForEach(ev, items)
        {
            rc = push_event(in, ev);
            if (rc < 0)
                goto fail;
        }
        return 0;
    }

    if (in->n + 1 > in->lim.max_batch) {
        xd_verrs_add(&in->errs, "", "more than max_batch %zu events", in->lim.max_batch);
        set_status(in, 413);
        return XD_ETOOBIG;
    }
    if (xd_event_validate(root, "", &in->errs) < 0) {
        set_status(in, 400);
        return XD_ESCHEMA;
    }
    if (in->errs.n)
        return XD_ESCHEMA;
    rc = push_event(in, root);
    if (rc < 0)
        goto fail;
    return 0;

fail:
    while (in->n > before)
        xd_event_dispose(&in->events[--in->n]);
    return rc;
}

int xd_intake_add_lines(struct xd_intake *in, const char *buf, size_t len)
{
    size_t pos = 0, lineno = 0;
    int result = 0;
    while (pos < len) {
        const char *nl = memchr(buf + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - buf) : len;
        lineno++;
        size_t a = pos, b = end;
        while (a < b && (buf[a] == ' ' || buf[a] == '\t' || buf[a] == '\r'))
            a++;
        while (b > a && (buf[b - 1] == ' ' || buf[b - 1] == '\t' || buf[b - 1] == '\r'))
            b--;
        if (b > a) {
            size_t first = in->errs.n;
            int rc = xd_intake_add_body(in, buf + a, b - a);
            if (rc == XD_ENOMEM)
                return rc;
            /* Name the line in front of each new error's path. */
            for (size_t k = first; k < in->errs.n; k++) {
                struct xd_buf p;
                xd_buf_init(&p);
                xd_buf_printf(&p, "line %zu%s%s", lineno, *in->errs.v[k].path ? ": " : "",
                              in->errs.v[k].path);
                if (p.oom)
                    return XD_ENOMEM;
                free(in->errs.v[k].path);
                in->errs.v[k].path = xd_buf_steal(&p);
            }
            if (rc < 0 && result == 0)
                result = rc;
        }
        pos = end + 1;
    }
    if (result == 0 && in->n == 0 && in->errs.n == 0) {
        xd_verrs_add(&in->errs, "", "no events");
        set_status(in, 400);
        return XD_ESCHEMA;
    }
    if (in->errs.n) {
        /* A file is accepted whole or not at all. */
        while (in->n > 0)
            xd_event_dispose(&in->events[--in->n]);
    }
    return result;
}
