/*
 * The X12 reader (formats/convert.h, xd_x12_read), driven by the fixtures
 * in tests/data/x12 (directory from XD_TEST_DATA). Each NAME.x12 is one
 * cmocka test, compared exactly with what sits beside it:
 *
 *   NAME.events.jsonl  the events, one a line (compared as JSON: each line
 *                      is parsed and printed again with xd_json_write);
 *                      absent = no events
 *   NAME.997           the acknowledgment, byte for byte; absent = none
 *   NAME.error         first line the return code (XD_ESCHEMA, XD_EPARSE),
 *                      then every error as "path: message"; absent = 0
 *   NAME.opts          optional, key=value lines: customer, warehouse,
 *                      partner=ISA06,CUSTOMER,WAREHOUSE, ack_control, ack_time
 *
 * Every event produced must pass xd_event_validate() and prepare. Each
 * input is also read cut short at every length, in a buffer of exactly
 * that length, so AddressSanitizer sees any read past the end. Then the
 * cases that need more than one file: a re-sent document gives the same
 * events, the 997 writer's counter and clock, and running out of memory.
 *
 * XD_X12_REGEN=1 writes the expected files from what the reader produces,
 * for a new fixture; read what it wrote before committing it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/err.h"
#include "formats/convert.h"
#include "formats/json.h"
#include "ingest/event.h"

#define MAX_FIXTURES 256
#define MAX_PARTNERS 4

static const char *data_dir(void)
{
    const char *d = getenv("XD_TEST_DATA");
    return d ? d : "tests/data";
}

/* The file's bytes, or NULL when it does not exist. */
static char *slurp(const char *name, const char *ext, size_t *len)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/x12/%s%s", data_dir(), name, ext);
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    struct xd_buf b;
    char chunk[4096];
    size_t n;
    xd_buf_init(&b);
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        xd_buf_append(&b, chunk, n);
    fclose(f);
    if (len)
        *len = b.len;
    return xd_buf_steal(&b);
}

static void spill(const char *name, const char *ext, const char *text, size_t len)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/x12/%s%s", data_dir(), name, ext);
    if (!text) {
        remove(path);
        return;
    }
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fwrite(text, 1, len, f);
    fclose(f);
}

/* ---- options ---- */

struct opts {
    struct xd_convert_opts o;
    struct xd_partner partners[MAX_PARTNERS];
    unsigned long counter;
    char *text; /* the .opts file, cut in place */
};

static void opts_load(struct opts *op, const char *name)
{
    memset(op, 0, sizeof *op);
    op->text = slurp(name, ".opts", NULL);
    for (char *line = op->text, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        else
            next = line + strlen(line);
        char *v = strchr(line, '=');
        if (!v)
            continue;
        *v++ = '\0';
        if (strcmp(line, "customer") == 0) {
            op->o.customer = v;
        } else if (strcmp(line, "warehouse") == 0) {
            op->o.warehouse = v;
        } else if (strcmp(line, "ack_control") == 0) {
            op->counter = strtoul(v, NULL, 10);
            op->o.ack_control = &op->counter;
        } else if (strcmp(line, "ack_time") == 0) {
            op->o.ack_time = strtoll(v, NULL, 10);
        } else if (strcmp(line, "partner") == 0 && op->o.npartners < MAX_PARTNERS) {
            struct xd_partner *p = &op->partners[op->o.npartners++];
            p->id = strsep(&v, ",");
            p->customer = strsep(&v, ",");
            p->warehouse = v;
            op->o.partners = op->partners;
        } else {
            fail_msg("%s.opts: unknown option '%s'", name, line);
        }
    }
}

/* ---- one read ---- */

struct result {
    int rc;
    struct xd_buf events; /* compact JSON, one a line */
    struct xd_buf errors; /* the rc name, then "path: message" lines */
    struct xd_buf ack;
};

static void result_dispose(struct result *r)
{
    xd_buf_dispose(&r->events);
    xd_buf_dispose(&r->errors);
    xd_buf_dispose(&r->ack);
}

/* Every event is a valid canonical event that prepares. */
static void check_events(const cJSON *evs)
{
    for (const cJSON *e = evs ? evs->child : NULL; e; e = e->next) {
        struct xd_verrs errs = {0};
        struct xd_event out;
        int rc = xd_event_validate(e, NULL, &errs);
        if (rc != 0)
            fail_msg("invalid event: %s: %s", errs.n ? errs.v[0].path : "",
                     errs.n ? errs.v[0].message : "");
        cJSON *copy = cJSON_Duplicate(e, 1);
        assert_int_equal(xd_event_prepare(copy, "test", &out), 0);
        xd_event_dispose(&out);
        cJSON_Delete(copy);
        xd_verrs_dispose(&errs);
    }
}

/* Reads len bytes of text from a buffer of exactly that size. */
static void run(const char *text, size_t len, const struct xd_convert_opts *o, struct result *r)
{
    char *exact = malloc(len ? len : 1);
    cJSON *evs = NULL;
    struct xd_verrs errs = {0};
    assert_non_null(exact);
    memcpy(exact, text, len);
    memset(r, 0, sizeof *r);
    r->rc = xd_x12_read(exact, len, o, &evs, &errs, &r->ack);
    check_events(evs);
    for (const cJSON *e = evs ? evs->child : NULL; e; e = e->next) {
        assert_int_equal(xd_json_write(&r->events, e), 0);
        xd_buf_putc(&r->events, '\n');
    }
    if (r->rc)
        xd_buf_printf(&r->errors, "%s\n", xd_errname(r->rc));
    for (size_t i = 0; i < errs.n; i++)
        xd_buf_printf(&r->errors, "%s: %s\n", errs.v[i].path, errs.v[i].message);
    /* the promises of convert.h */
    if (r->rc == 0)
        assert_int_equal(errs.n, 0);
    if (r->rc == XD_ESCHEMA || r->rc == XD_EPARSE)
        assert_true(errs.n > 0);
    if (r->rc == XD_EPARSE)
        assert_null(evs);
    else
        assert_non_null(evs);
    cJSON_Delete(evs);
    xd_verrs_dispose(&errs);
    free(exact);
}

/* Expected events: each line parsed and printed again, so spacing does not matter. */
static char *canonical_lines(const char *text, const char *name)
{
    struct xd_buf b;
    xd_buf_init(&b);
    for (const char *p = text; p && *p;) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        if (n) {
            cJSON *j = NULL;
            struct xd_json_error err;
            if (xd_json_parse(p, n, NULL, &j, &err) != 0)
                fail_msg("%s.events.jsonl: @%zu: %s", name, err.offset, err.message);
            xd_json_write(&b, j);
            xd_buf_putc(&b, '\n');
            cJSON_Delete(j);
        }
        p = nl ? nl + 1 : NULL;
    }
    return xd_buf_steal(&b);
}

static void expect_text(const char *name, const char *what, const char *want, const char *got)
{
    if (strcmp(want, got) != 0) {
        print_error("%s%s differs\n--- expected\n%s--- got\n%s", name, what, want, got);
        fail();
    }
}

static void test_fixture(void **state)
{
    const char *name = *state;
    size_t len;
    char *input = slurp(name, ".x12", &len);
    struct opts op;
    struct result r;
    assert_non_null(input);
    opts_load(&op, name);
    run(input, len, &op.o, &r);

    if (getenv("XD_X12_REGEN")) {
        spill(name, ".events.jsonl", r.events.len ? r.events.data : NULL, r.events.len);
        spill(name, ".997", r.ack.len ? r.ack.data : NULL, r.ack.len);
        spill(name, ".error", r.errors.len ? r.errors.data : NULL, r.errors.len);
    } else {
        char *ev = slurp(name, ".events.jsonl", NULL);
        char *ack = slurp(name, ".997", NULL);
        char *err = slurp(name, ".error", NULL);
        char *want = canonical_lines(ev, name);
        expect_text(name, ".error", err ? err : "", xd_buf_str(&r.errors));
        expect_text(name, ".events.jsonl", want, xd_buf_str(&r.events));
        expect_text(name, ".997", ack ? ack : "", xd_buf_str(&r.ack));
        free(want);
        free(ev);
        free(ack);
        free(err);
    }
    result_dispose(&r);

    /* cut short anywhere: errors or events, never a crash, a leak or an invalid event */
    for (size_t n = 0; n < len; n++) {
        op.counter = 1;
        run(input, n, &op.o, &r);
        result_dispose(&r);
    }
    free(op.text);
    free(input);
}

/* ---- cases across files ---- */

static void read_file_events(const char *name, const struct xd_convert_opts *o, struct result *r)
{
    size_t len;
    char *input = slurp(name, ".x12", &len);
    assert_non_null(input);
    run(input, len, o, r);
    free(input);
}

/*
 * A document sent again under new control numbers gives the same events
 * (same ids, same bodies and hashes): the store sees duplicates.
 */
static void test_resent_is_duplicate(void **state)
{
    (void)state;
    struct result a, b;
    read_file_events("945_basic", NULL, &a);
    read_file_events("945_resent", NULL, &b);
    assert_int_equal(a.rc, 0);
    assert_int_equal(b.rc, 0);
    assert_true(a.events.len > 0);
    assert_string_equal(xd_buf_str(&a.events), xd_buf_str(&b.events));
    assert_string_not_equal(xd_buf_str(&a.ack), xd_buf_str(&b.ack));

    cJSON *ea = NULL, *eb = NULL;
    struct xd_event pa, pb;
    assert_int_equal(xd_json_parse(a.events.data, a.events.len, NULL, &ea, NULL), 0);
    assert_int_equal(xd_json_parse(b.events.data, b.events.len, NULL, &eb, NULL), 0);
    assert_int_equal(xd_event_prepare(ea, "x12", &pa), 0);
    assert_int_equal(xd_event_prepare(eb, "x12", &pb), 0);
    assert_string_equal(pa.event_id, pb.event_id);
    assert_memory_equal(pa.hash, pb.hash, sizeof pa.hash);
    xd_event_dispose(&pa);
    xd_event_dispose(&pb);
    cJSON_Delete(ea);
    cJSON_Delete(eb);
    result_dispose(&a);
    result_dispose(&b);
}

/* The counter gives each 997 its own control number and moves on; the clock dates it. */
static void test_ack_counter_and_clock(void **state)
{
    (void)state;
    unsigned long counter = 999999999;
    struct xd_convert_opts o = {.ack_control = &counter,
                                .ack_time = 1796083200}; /* 2026-12-01T00:00:00Z */
    struct result r;
    read_file_events("two_interchanges", &o, &r);
    assert_int_equal(r.rc, 0);
    assert_int_equal(counter, 2);
    const char *ack = xd_buf_str(&r.ack);
    assert_non_null(strstr(ack, "*261201*0000*U*00401*999999999*0*P*>~"));
    assert_non_null(strstr(ack, "GS*FA*CROSSDOCK*WMS1*20261201*0000*999999999*X*004010~"));
    assert_non_null(strstr(ack, "IEA*1*999999999~"));
    /* the second interchange has its own delimiters, and so has its 997 */
    assert_non_null(strstr(ack, "^261201^0000^U^00401^000000001^0^P^:!"));
    assert_non_null(strstr(ack, "IEA^1^000000001!"));
    result_dispose(&r);
}

/* No options at all, no ack buffer: the reader still works. */
static void test_null_opts_no_ack(void **state)
{
    (void)state;
    size_t len;
    char *input = slurp("945_basic", ".x12", &len);
    cJSON *evs = NULL;
    struct xd_verrs errs = {0};
    assert_non_null(input);
    assert_int_equal(xd_x12_read(input, len, NULL, &evs, &errs, NULL), 0);
    assert_int_equal(cJSON_GetArraySize(evs), 1);
    cJSON_Delete(evs);
    xd_verrs_dispose(&errs);
    free(input);
}

/* The ack buffer is appended to, never reset. */
static void test_ack_appends(void **state)
{
    (void)state;
    size_t len;
    char *input = slurp("945_basic", ".x12", &len);
    cJSON *evs = NULL;
    struct xd_verrs errs = {0};
    struct xd_buf ack;
    xd_buf_init(&ack);
    xd_buf_puts(&ack, "before\n");
    assert_int_equal(xd_x12_read(input, len, NULL, &evs, &errs, &ack), 0);
    assert_int_equal(strncmp(xd_buf_str(&ack), "before\nISA*00*", 14), 0);
    cJSON_Delete(evs);
    xd_buf_dispose(&ack);
    free(input);
}

/* ---- out of memory: cJSON's allocations fail one after another ---- */

static long alloc_left; /* allocations that still succeed; < 0: all do */

static void *failing_malloc(size_t n)
{
    if (alloc_left == 0)
        return NULL;
    if (alloc_left > 0)
        alloc_left--;
    return malloc(n);
}

/*
 * Every cJSON allocation the reader makes is made to fail in turn: the
 * result is XD_ENOMEM with no events and the ack buffer as it was, or (for
 * a failure the reader does not reach) the normal result; never a leak.
 */
static void test_out_of_memory(void **state)
{
    (void)state;
    static const char *const names[] = {"945_basic", "947_adjust", "ge02_mismatch"};
    cJSON_Hooks hooks = {failing_malloc, free};
    cJSON_InitHooks(&hooks);
    for (size_t f = 0; f < sizeof names / sizeof names[0]; f++) {
        size_t len;
        char *input = slurp(names[f], ".x12", &len);
        assert_non_null(input);
        for (long k = 0;; k++) {
            cJSON *evs = NULL;
            struct xd_verrs errs = {0};
            struct xd_buf ack;
            xd_buf_init(&ack);
            xd_buf_puts(&ack, "kept");
            alloc_left = k;
            int rc = xd_x12_read(input, len, NULL, &evs, &errs, &ack);
            int reached = alloc_left == 0;
            alloc_left = -1;
            if (rc == XD_ENOMEM) {
                assert_null(evs);
                assert_string_equal(xd_buf_str(&ack), "kept");
            }
            cJSON_Delete(evs);
            xd_verrs_dispose(&errs);
            xd_buf_dispose(&ack);
            if (!reached && rc != XD_ENOMEM)
                break; /* every allocation of this input has been failed once */
        }
        free(input);
    }
    cJSON_InitHooks(NULL);
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

int main(void)
{
    static const struct CMUnitTest fixed[] = {
        cmocka_unit_test(test_resent_is_duplicate), cmocka_unit_test(test_ack_counter_and_clock),
        cmocka_unit_test(test_null_opts_no_ack),    cmocka_unit_test(test_ack_appends),
        cmocka_unit_test(test_out_of_memory),
    };
    static struct CMUnitTest tests[MAX_FIXTURES + sizeof fixed / sizeof fixed[0]];
    static char names[MAX_FIXTURES][128];
    char dir[1024];
    struct dirent **ents;
    size_t n = 0;
    snprintf(dir, sizeof dir, "%s/x12", data_dir());
    int ndir = scandir(dir, &ents, NULL, by_name);
    if (ndir < 0) {
        fprintf(stderr, "cannot read %s (set XD_TEST_DATA)\n", dir);
        return 1;
    }
    for (int i = 0; i < ndir; i++) {
        const char *d = ents[i]->d_name;
        size_t len = strlen(d);
        if (len > 4 && len < sizeof names[0] + 4 && strcmp(d + len - 4, ".x12") == 0 &&
            n < MAX_FIXTURES) {
            memcpy(names[n], d, len - 4);
            names[n][len - 4] = '\0';
            tests[n] = (struct CMUnitTest){
                .name = names[n], .test_func = test_fixture, .initial_state = names[n]};
            n++;
        }
        free(ents[i]);
    }
    free(ents);
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        tests[n++] = fixed[i];
    return _cmocka_run_group_tests("x12", tests, n, NULL, NULL);
}
