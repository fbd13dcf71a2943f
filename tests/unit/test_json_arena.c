/*
 * cJSON arenas (formats/json.h) as intake uses them: with the hooks
 * installed, trees parsed into an intake's arena, defaults added to them and
 * to trees from the heap, big strings, many chunks, errors. Each event's
 * normalised body and hash must be exactly those of the same event parsed
 * and prepared on the heap. Under AddressSanitizer this also shows that
 * nothing leaks and nothing is freed twice or by the wrong allocator.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/err.h"
#include "formats/json.h"
#include "ingest/intake.h"

static const char event_fmt[] =
    "{\"event_id\":\"e-%d\",\"type\":\"shipment.confirmed\",\"occurred_at\":"
    "\"2026-11-28T14:03:11Z\",\"data\":{\"warehouse\":\"DC1\",\"shipment_id\":\"SHP-%d\",\"order_id\":\"SO-%d\","
    "\"customer\":\"caf\\u00e9 \\\"q\\\"\",\"carrier\":{\"code\":\"UPSN\"},"
    "\"lines\":[{\"sku\":\"A\",\"qty\":1.5},{\"sku\":\"B\",\"qty\":2,\"uom\":null}],"
    "\"weight_kg\":18.4,\"extra\":[true,false,null,1e2,\"%s\"]}}";

static const struct xd_intake_limits limits = {.max_batch = 10000, .max_depth = 64,
                                               .max_string = 8 << 20};

/* One event's text, with extra in an unknown member; free() it. */
static char *event_text(int i, const char *extra)
{
    char *s = NULL;
    assert_true(asprintf(&s, event_fmt, i, i, i, extra) > 0);
    return s;
}

/* The body and hash the same event gets on the heap, with no arena. */
static void heap_prepare(const char *text, struct xd_event *out)
{
    cJSON *root = NULL;
    struct xd_json_error jerr;
    struct xd_json_limits jl = {.max_depth = limits.max_depth, .max_string = limits.max_string};
    assert_int_equal(xd_json_parse(text, strlen(text), &jl, &root, &jerr), 0);
    assert_int_equal(xd_event_prepare(root, "src", out), 0);
    /* The body is the event's own copy: the tree can go first. */
    cJSON_Delete(root);
}

static void assert_same_as_heap(const struct xd_event *ev, const char *text)
{
    struct xd_event h;
    heap_prepare(text, &h);
    assert_int_equal(ev->body_len, h.body_len);
    assert_memory_equal(ev->body, h.body, h.body_len);
    assert_memory_equal(ev->hash, h.hash, sizeof h.hash);
    xd_event_dispose(&h);
}

static void test_single_event(void **state)
{
    (void)state;
    char *text = event_text(1, "one");
    struct xd_intake in;
    xd_intake_init(&in, &limits, "src");
    assert_int_equal(xd_intake_add_body(&in, text, strlen(text)), 0);
    assert_int_equal(in.n, 1);
    assert_non_null(in.arena.chunks);
    assert_non_null(strstr(in.events[0].body, "\"uom\":\"EA\""));
    assert_non_null(strstr(in.events[0].body, "\"source\":\"src\",\"schema_version\":1"));
    assert_same_as_heap(&in.events[0], text);
    xd_intake_dispose(&in);
    free(text);
}

/* A batch with one string bigger than the largest chunk: a chunk of its own. */
static void test_batch_many_chunks(void **state)
{
    (void)state;
    struct xd_buf b;
    size_t big_len = 5000000;
    char *big = malloc(big_len + 1);
    assert_non_null(big);
    memset(big, 'z', big_len);
    big[big_len] = '\0';
    xd_buf_init(&b);
    xd_buf_puts(&b, "{\"events\":[");
    for (int i = 0; i < 500; i++) {
        char *t = event_text(i, i == 250 ? big : "x");
        if (i)
            xd_buf_putc(&b, ',');
        xd_buf_puts(&b, t);
        free(t);
    }
    xd_buf_puts(&b, "]}");
    assert_false(b.oom);

    struct xd_intake in;
    xd_intake_init(&in, &limits, "src");
    assert_int_equal(xd_intake_add_body(&in, b.data, b.len), 0);
    assert_int_equal(in.n, 500);
    size_t chunks = 0;
    for (struct xd_json_chunk *c = in.arena.chunks; c; c = c->next)
        chunks++;
    assert_true(chunks >= 2);
    for (int i = 0; i < 500; i += 50) {
        char *t = event_text(i, i == 250 ? big : "x");
        assert_same_as_heap(&in.events[i], t);
        free(t);
    }
    xd_intake_dispose(&in);
    xd_buf_dispose(&b);
    free(big);
}

/* A converter's tree comes from the heap; the defaults added to it from the arena. */
static void test_heap_tree_gets_arena_defaults(void **state)
{
    (void)state;
    char *text = event_text(7, "tree");
    cJSON *root = cJSON_Parse(text); /* outside any arena */
    assert_non_null(root);
    struct xd_intake in;
    xd_intake_init(&in, &limits, "src");
    assert_int_equal(xd_intake_add_tree(&in, root), 0);
    assert_int_equal(in.n, 1);
    assert_non_null(in.arena.chunks);
    assert_same_as_heap(&in.events[0], text);
    xd_intake_dispose(&in);
    free(text);
}

/*
 * Takes this thread's spare chunk (json.h), if it has one, into an arena
 * and frees it directly: the thread has no spare afterwards. Returns the
 * chunk that arena started in.
 */
static uintptr_t drop_spare(void)
{
    struct xd_json_arena a;
    xd_json_arena_init(&a, 0);
    struct xd_json_arena *prev = xd_json_arena_enter(&a);
    cJSON *tiny = cJSON_CreateNull();
    xd_json_arena_enter(prev);
    assert_non_null(tiny);
    struct xd_json_chunk *c = a.chunks;
    assert_non_null(c);
    assert_null(c->next);
    uintptr_t addr = (uintptr_t)c;
    free(c);
    return addr;
}

/* JSON lines: one arena for every line, growing chunk by chunk. */
static void test_lines_grow(void **state)
{
    (void)state;
    (void)drop_spare();
    struct xd_buf b;
    xd_buf_init(&b);
    for (int i = 0; i < 300; i++) {
        char *t = event_text(i, "line");
        xd_buf_printf(&b, "%s\n", t);
        free(t);
    }
    struct xd_intake in;
    xd_intake_init(&in, &limits, "src");
    assert_int_equal(xd_intake_add_lines(&in, b.data, b.len), 0);
    assert_int_equal(in.n, 300);
    size_t chunks = 0;
    for (struct xd_json_chunk *c = in.arena.chunks; c; c = c->next)
        chunks++;
    assert_true(chunks >= 3);
    for (int i = 0; i < 300; i += 37) {
        char *t = event_text(i, "line");
        assert_same_as_heap(&in.events[i], t);
        free(t);
    }
    xd_intake_dispose(&in);
    xd_buf_dispose(&b);
}

/*
 * The thread keeps the biggest chunk (up to 1 MiB) of an arena it disposed
 * and the next arena starts in it; bigger chunks go back to malloc.
 */
static void test_spare_chunk(void **state)
{
    (void)state;
    (void)drop_spare();
    char *text = event_text(3, "spare");
    struct xd_intake in;
    xd_intake_init(&in, &limits, "src");
    assert_int_equal(xd_intake_add_body(&in, text, strlen(text)), 0);
    struct xd_json_chunk *first = in.arena.chunks;
    assert_non_null(first);
    xd_intake_dispose(&in);

    xd_intake_init(&in, &limits, "src");
    assert_int_equal(xd_intake_add_body(&in, text, strlen(text)), 0);
    assert_ptr_equal(in.arena.chunks, first); /* the same memory, not a fresh malloc */
    assert_null(in.arena.chunks->next);
    assert_same_as_heap(&in.events[0], text);
    xd_intake_dispose(&in);
    free(text);

    /* A chunk over 1 MiB (a 5 MiB string has one of its own) is not kept. */
    struct xd_json_arena a;
    xd_json_arena_init(&a, 0);
    char *big = malloc(5u << 20);
    assert_non_null(big);
    memset(big, 'x', (5u << 20) - 1);
    big[(5u << 20) - 1] = '\0';
    struct xd_json_arena *prev = xd_json_arena_enter(&a);
    cJSON *s = cJSON_CreateString(big);
    xd_json_arena_enter(prev);
    free(big);
    assert_non_null(s);
    size_t nchunks = 0;
    for (struct xd_json_chunk *c = a.chunks; c; c = c->next)
        nchunks++;
    assert_int_equal(nchunks, 2); /* the spare (first) and the string's own */
    assert_ptr_equal(a.chunks, first);
    xd_json_arena_dispose(&a);
    assert_true(drop_spare() == (uintptr_t)first); /* the spare is `first` again, not the big one */
}

/* JSON lines with errors on some: nothing kept. */
static void test_lines_and_errors(void **state)
{
    (void)state;
    char *a = event_text(1, "a"), *c = event_text(3, "c");
    struct xd_buf b;
    xd_buf_init(&b);
    xd_buf_printf(&b, "%s\n{\"event_id\": [}\n%s\n{\"type\":\"nope\"}\n", a, c);
    struct xd_intake in;
    xd_intake_init(&in, &limits, "src");
    assert_true(xd_intake_add_lines(&in, b.data, b.len) < 0);
    assert_int_equal(in.n, 0);
    assert_true(in.errs.n >= 2);
    assert_true(in.has_offset);
    xd_intake_dispose(&in);
    xd_buf_dispose(&b);
    free(a);
    free(c);
}

/*
 * The spliced writer: events written in every mix of forms (compact or not,
 * escapes, numbers as the writer prints them or not, defaults present,
 * absent or null, unknown members) get, through the arena and its spans,
 * exactly the body the plain writer gives on the heap.
 */
static void test_spliced_bodies(void **state)
{
    (void)state;
    static const char *const ws[] = {"", " ", "\n  "};
    static const char *const qtys[] = {"12", "4.5", "4.50", "1e2", "7", "0.1", "1.0", "123456789012"};
    static const char *const uoms[] = {"", ",\"uom\":\"CS\"", ",\"uom\":null", ",\"uom\":\"E\\u0041\""};
    static const char *const srcs[] = {"", "\"source\":\"wms\",", "\"source\":null,",
                                       "\"source\":\"w\\/s\","};
    static const char *const vers[] = {"", ",\"schema_version\":1", ",\"schema_version\":1.0"};
    static const char *const extras[] = {"", ",\"x\":{\"a\":[1,2.5,-0,1E2,0.5e-3,{\"b\":null}],\"c\":\"d\"}",
                                         ",\"x\":[]", ",\"x\":{\"q\":\"\\\"\"}"};
    unsigned iter = 0;
    for (unsigned w = 0; w < 3; w++)
        for (unsigned q = 0; q < 8; q++)
            for (unsigned u = 0; u < 4; u++)
                for (unsigned so = 0; so < 4; so++)
                    for (unsigned v = 0; v < 3; v++)
                        for (unsigned x = 0; x < 4; x++, iter++) {
                            const char *sp = ws[(w + iter) % 3];
                            char *t = NULL;
                            assert_true(
                                asprintf(&t,
                                         "{%s\"event_id\":\"s-%u\",%s%s\"type\":\"shipment.confirmed\","
                                         "\"occurred_at\":\"2026-11-28T14:03:11Z\",\"data\":{%s\"warehouse\""
                                         ":\"DC1\",\"shipment_id\":\"S\",\"order_id\":\"O\",\"customer\":"
                                         "\"C\",\"carrier\":{\"code\":\"U\"},\"lines\":[{\"sku\":\"A\","
                                         "\"qty\":%s%s},{\"sku\":\"B\",\"qty\":2,\"uom\":\"EA\"}%s]%s}%s}",
                                         ws[w], iter, sp, srcs[so], sp, qtys[q], uoms[u], sp,
                                         extras[x], vers[v]) > 0);
                            struct xd_intake in;
                            xd_intake_init(&in, &limits, "src");
                            if (xd_intake_add_body(&in, t, strlen(t)) != 0)
                                fail_msg("refused: %s", t);
                            assert_same_as_heap(&in.events[0], t);
                            xd_intake_dispose(&in);
                            free(t);
                        }
}

/* What cJSON allocates for callers (printing) is freed by cJSON_free in or out of an arena. */
static void test_print_and_free(void **state)
{
    (void)state;
    struct xd_json_arena arena;
    xd_json_arena_init(&arena, 0);
    struct xd_json_arena *prev = xd_json_arena_enter(&arena);
    assert_null(prev);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "k", "v");
    char *s = cJSON_PrintUnformatted(o);
    assert_string_equal(s, "{\"k\":\"v\"}");
    cJSON_free(s);
    cJSON_Delete(o);
    assert_ptr_equal(xd_json_arena_enter(prev), &arena);
    xd_json_arena_dispose(&arena);

    o = cJSON_CreateArray(); /* the heap again */
    cJSON_AddItemToArray(o, cJSON_CreateString("w"));
    s = cJSON_PrintUnformatted(o);
    assert_string_equal(s, "[\"w\"]");
    cJSON_free(s);
    cJSON_Delete(o);
}

int main(void)
{
    xd_json_hooks_install();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_single_event),
        cmocka_unit_test(test_batch_many_chunks),
        cmocka_unit_test(test_heap_tree_gets_arena_defaults),
        cmocka_unit_test(test_lines_grow),
        cmocka_unit_test(test_spare_chunk),
        cmocka_unit_test(test_lines_and_errors),
        cmocka_unit_test(test_spliced_bodies),
        cmocka_unit_test(test_print_and_free),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
