/*
 * CSV flat files (formats/csv.h, contract section 8).
 *
 * Most cases are data: every tests/data/csv/NAME.csv is read (with the
 * --customer/--warehouse of NAME.opts, "key=value" lines, when present) and
 * must give exactly the events of NAME.events.jsonl (one per line, compared
 * as the compact JSON the hub writes, so member order counts) or exactly the
 * error lines of NAME.errors ("row 4, column qty: not a number"). The input
 * is copied into a buffer of exactly its length, with no NUL after it, so
 * AddressSanitizer catches any read past the end. The data directory is
 * $XD_TEST_DATA/csv (tests/data/csv by default).
 *
 * The fixed tests below cover what files cannot say well: the limits, the
 * error cap, many rows, and the validation backstop.
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
#include <time.h>

#include "core/buf.h"
#include "core/err.h"
#include "formats/csv.h"
#include "formats/json.h"
#include "ingest/event.h"

static const char *data_dir(void)
{
    const char *d = getenv("XD_TEST_DATA");
    return d && *d ? d : "tests/data";
}

/* The bytes of csv/NAME, or NULL when there is no such file. */
static char *read_file(const char *name, size_t *len)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/csv/%s", data_dir(), name);
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    struct xd_buf b;
    char chunk[65536];
    size_t n;
    xd_buf_init(&b);
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        assert_int_equal(xd_buf_append(&b, chunk, n), 0);
    fclose(f);
    *len = b.len;
    if (!b.data)
        return strdup("");
    return xd_buf_steal(&b);
}

/* A copy of s[0..n) in a buffer of exactly n bytes (at least 1 allocated). */
static char *exact(const char *s, size_t n)
{
    char *p = malloc(n ? n : 1);
    assert_non_null(p);
    memcpy(p, s, n);
    return p;
}

/* Events as compact JSON lines, or errors as "path: message" lines. */
static void render(int rc, const cJSON *events, const struct xd_verrs *errs, struct xd_buf *out)
{
    if (rc == 0) {
        for (const cJSON *e = events->child; e; e = e->next) {
            assert_int_equal(xd_json_write(out, e), 0);
            xd_buf_putc(out, '\n');
        }
        return;
    }
    for (size_t i = 0; i < errs->n; i++)
        xd_buf_printf(out, "%s: %s\n", errs->v[i].path, errs->v[i].message);
}

/* Reads csv text through xd_csv_read_lim and renders the outcome. */
static int run(const char *text, size_t len, const struct xd_convert_opts *o,
               const struct xd_csv_limits *lim, struct xd_buf *out)
{
    char *in = exact(text, len);
    cJSON *events = (cJSON *)1; /* must be overwritten */
    struct xd_verrs errs = {0};
    int rc = xd_csv_read_lim(in, len, o, lim, &events, &errs);
    if (rc == 0) {
        assert_non_null(events);
        assert_int_equal(errs.n, 0);
    } else {
        assert_null(events);
        assert_true(errs.n > 0);
        assert_true(rc == XD_EPARSE || rc == XD_ESCHEMA);
    }
    render(rc, events, &errs, out);
    cJSON_Delete(events);
    xd_verrs_dispose(&errs);
    free(in);
    return rc;
}

/* ---- the fixtures ---- */

struct fixture {
    char name[256]; /* NAME, without .csv */
};

static struct fixture *fixtures;
static size_t nfixtures;

static int name_cmp(const void *a, const void *b)
{
    return strcmp(((const struct fixture *)a)->name, ((const struct fixture *)b)->name);
}

static void list_fixtures(void)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/csv", data_dir());
    DIR *d = opendir(path);
    if (!d) {
        fprintf(stderr, "test_csv: cannot open %s (set XD_TEST_DATA)\n", path);
        exit(1);
    }
    struct dirent *e;
    size_t cap = 0;
    while ((e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        if (n < 5 || n - 4 >= sizeof fixtures[0].name || strcmp(e->d_name + n - 4, ".csv") != 0)
            continue;
        if (nfixtures == cap) {
            cap = cap ? cap * 2 : 64;
            fixtures = realloc(fixtures, cap * sizeof *fixtures);
            if (!fixtures)
                exit(1);
        }
        snprintf(fixtures[nfixtures].name, sizeof fixtures[0].name, "%.*s", (int)(n - 4),
                 e->d_name);
        nfixtures++;
    }
    closedir(d);
    qsort(fixtures, nfixtures, sizeof *fixtures, name_cmp);
}

/* NAME.opts: "customer=..." and "warehouse=..." lines. */
static void read_opts(const char *name, struct xd_convert_opts *o, char **text)
{
    char file[300];
    size_t len;
    snprintf(file, sizeof file, "%s.opts", name);
    *text = read_file(file, &len);
    memset(o, 0, sizeof *o);
    if (!*text)
        return;
    for (char *line = strtok(*text, "\n"); line; line = strtok(NULL, "\n")) {
        if (strncmp(line, "customer=", 9) == 0)
            o->customer = line + 9;
        else if (strncmp(line, "warehouse=", 10) == 0)
            o->warehouse = line + 10;
        else
            fail_msg("%s.opts: unknown line '%s'", name, line);
    }
}

/* Expected events, rewritten by the same writer (whitespace does not matter, order does). */
static void expected_events(const char *text, size_t len, struct xd_buf *out)
{
    size_t i = 0;
    while (i < len) {
        const char *nl = memchr(text + i, '\n', len - i);
        size_t end = nl ? (size_t)(nl - text) : len;
        if (end > i) {
            cJSON *ev = NULL;
            struct xd_json_error je;
            if (xd_json_parse(text + i, end - i, NULL, &ev, &je) != 0)
                fail_msg("expected events: bad JSON at offset %zu: %s", i + je.offset, je.message);
            assert_int_equal(xd_json_write(out, ev), 0);
            xd_buf_putc(out, '\n');
            cJSON_Delete(ev);
        }
        i = end + 1;
    }
}

/* Every accepted event also prepares (defaults, business key, body): it is ready to store. */
static void prepare_all(const char *csv, size_t len, const struct xd_convert_opts *o)
{
    cJSON *events = NULL;
    struct xd_verrs errs = {0};
    assert_int_equal(xd_csv_read(csv, len, o, &events, &errs), 0);
    for (cJSON *e = events->child; e; e = e->next) {
        struct xd_event out;
        assert_int_equal(xd_event_validate(e, "", &errs), 0);
        assert_int_equal(xd_event_prepare(e, "csv", &out), 0);
        xd_event_dispose(&out);
    }
    cJSON_Delete(events);
}

static void test_fixture(void **state)
{
    const struct fixture *fx = *state;
    char file[300], *opts_text = NULL;
    size_t len, elen;
    struct xd_convert_opts o;
    struct xd_buf got, again, want;

    snprintf(file, sizeof file, "%s.csv", fx->name);
    char *csv = read_file(file, &len);
    assert_non_null(csv);
    read_opts(fx->name, &o, &opts_text);
    xd_buf_init(&got);
    xd_buf_init(&again);
    xd_buf_init(&want);

    int rc = run(csv, len, &o, NULL, &got);
    run(csv, len, &o, NULL, &again); /* the same input always gives the same output */
    assert_string_equal(xd_buf_str(&again), xd_buf_str(&got));

    snprintf(file, sizeof file, "%s.events.jsonl", fx->name);
    char *exp = read_file(file, &elen);
    snprintf(file, sizeof file, "%s.errors", fx->name);
    char *experr = read_file(file, &elen);
    if (exp && experr)
        fail_msg("%s: both .events.jsonl and .errors", fx->name);
    if (exp) {
        expected_events(exp, strlen(exp), &want);
        if (rc != 0 || strcmp(xd_buf_str(&got), xd_buf_str(&want)) != 0) {
            fprintf(stderr, "%s: expected events:\n%s-- got:\n%s", fx->name, xd_buf_str(&want),
                    xd_buf_str(&got));
            fail();
        }
        prepare_all(csv, len, &o);
    } else if (experr) {
        if (rc == 0 || strcmp(xd_buf_str(&got), experr) != 0) {
            fprintf(stderr, "%s: expected errors:\n%s-- got:\n%s", fx->name, experr,
                    xd_buf_str(&got));
            fail();
        }
    } else {
        fprintf(stderr, "%s: no .events.jsonl or .errors; got:\n%s", fx->name, xd_buf_str(&got));
        fail();
    }
    free(exp);
    free(experr);
    free(opts_text);
    free(csv);
    xd_buf_dispose(&got);
    xd_buf_dispose(&again);
    xd_buf_dispose(&want);
}

/* ---- fixed tests ---- */

static const char ship_header[] =
    "type,warehouse,customer,occurred_at,shipment_id,order_id,sku,qty\n";

/* A file of the header and n generated rows (row i of shipment i / per). */
static char *ship_rows(size_t n, size_t per, size_t *len)
{
    struct xd_buf b;
    xd_buf_init(&b);
    xd_buf_puts(&b, ship_header);
    for (size_t i = 0; i < n; i++)
        xd_buf_printf(
            &b, "shipment.confirmed,DC1,ACME,2026-11-28T14:00:00Z,SHP-%zu,SO-%zu,SKU-%zu,%zu\n",
            i / per, i / per, i % 97, i % 13 + 1);
    assert_int_equal(b.oom, 0);
    *len = b.len;
    return xd_buf_steal(&b);
}

static void expect(const char *csv, const struct xd_convert_opts *o,
                   const struct xd_csv_limits *lim, int want_rc, const char *want)
{
    struct xd_buf out;
    xd_buf_init(&out);
    int rc = run(csv, strlen(csv), o, lim, &out);
    if (rc != want_rc || (want && strcmp(xd_buf_str(&out), want) != 0)) {
        fprintf(stderr, "input:\n%s\nrc %d (want %d), got:\n%s", csv, rc, want_rc,
                xd_buf_str(&out));
        fail();
    }
    xd_buf_dispose(&out);
}

static void test_row_limit(void **state)
{
    (void)state;
    struct xd_csv_limits lim = {.max_rows = 3};
    size_t len;
    char *csv = ship_rows(3, 1, &len);
    expect(csv, NULL, &lim, 0, NULL);
    free(csv);
    /* blank lines are no rows */
    expect("type,warehouse\n\n\n\n\n", NULL, &lim, 0, "");
    csv = ship_rows(4, 1, &len);
    expect(csv, NULL, &lim, XD_ESCHEMA, "row 5: more than 3 rows\n");
    free(csv);
}

static void test_cell_limit(void **state)
{
    (void)state;
    struct xd_csv_limits lim = {.max_cell = 16}; /* the header's names fit */
    const char *hdr = "type,warehouse,occurred_at,shipment_id,reason\n";
    char csv[512];
    snprintf(csv, sizeof csv, "%sshipment.voided,DC1,2026-11-28,SHP-1,1234567890123456\n", hdr);
    expect(csv, NULL, &lim, 0, NULL);
    snprintf(csv, sizeof csv, "%sshipment.voided,DC1,2026-11-28,SHP-1,12345678901234567\n", hdr);
    expect(csv, NULL, &lim, XD_EPARSE, "row 2, column reason: cell longer than 16 bytes\n");
    /* at the very end of the input, with no line end after it */
    snprintf(csv, sizeof csv, "%sshipment.voided,DC1,2026-11-28,SHP-1,12345678901234567", hdr);
    expect(csv, NULL, &lim, XD_EPARSE, "row 2, column reason: cell longer than 16 bytes\n");
    /* a quoted cell over many lines: named by the line it starts on; reading stops there */
    snprintf(csv, sizeof csv,
             "%sshipment.voided,DC1,2026-11-28,SHP-1,\"a\nb\nc\nd\ne\nf\ng\nh\ni\"\nbad\n", hdr);
    expect(csv, NULL, &lim, XD_EPARSE, "row 2, column reason: cell longer than 16 bytes\n");
}

static void test_lines_limit(void **state)
{
    (void)state;
    size_t len;
    char *csv = ship_rows(XD_CSV_MAX_LINES, XD_CSV_MAX_LINES, &len);
    expect(csv, NULL, NULL, 0, NULL);
    free(csv);
    csv = ship_rows(XD_CSV_MAX_LINES + 2, XD_CSV_MAX_LINES + 2, &len);
    expect(csv, NULL, NULL, XD_ESCHEMA,
           "row 10002, column shipment_id: more than 10000 lines for one event\n");
    free(csv);
}

static void test_error_cap(void **state)
{
    (void)state;
    struct xd_buf b;
    cJSON *events;
    struct xd_verrs errs = {0};
    xd_buf_init(&b);
    xd_buf_puts(&b, ship_header);
    for (int i = 0; i < XD_VERRS_MAX + 500; i++)
        xd_buf_printf(&b, "shipment.confirmed,DC1,ACME,2026-11-28T14:00:00Z,S%d,SO,A,x\n", i);
    assert_int_equal(xd_csv_read(b.data, b.len, NULL, &events, &errs), XD_ESCHEMA);
    assert_null(events);
    assert_int_equal(errs.n, XD_VERRS_MAX);
    assert_int_equal(errs.dropped, 500);
    assert_string_equal(errs.v[0].path, "row 2, column qty");
    assert_string_equal(errs.v[XD_VERRS_MAX - 1].path, "row 10001, column qty");
    xd_verrs_dispose(&errs);
    xd_buf_dispose(&b);
}

/*
 * Many rows, interleaved: 40,000 shipments of 5 lines each, every shipment's
 * rows 40,000 rows apart. Grouping goes through a hash table, so this takes
 * about as long as reading the rows in order.
 */
static void test_many_rows(void **state)
{
    (void)state;
    const size_t nship = 40000, per = 5;
    struct xd_buf b;
    cJSON *events;
    struct xd_verrs errs = {0};
    xd_buf_init(&b);
    xd_buf_puts(&b, ship_header);
    for (size_t k = 0; k < per; k++)
        for (size_t s = 0; s < nship; s++)
            xd_buf_printf(&b,
                          "shipment.confirmed,DC1,ACME,2026-11-28T14:00:00Z,SHP-%zu,SO-%zu,"
                          "SKU-%zu,%zu\n",
                          s, s, k, k + 1);
    clock_t t0 = clock();
    assert_int_equal(xd_csv_read(b.data, b.len, NULL, &events, &errs), 0);
    double secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
    assert_int_equal(cJSON_GetArraySize(events), nship);
    /* first-appearance order, each with its lines in row order */
    size_t s = 0;
    for (cJSON *e = events->child; e; e = e->next, s++) {
        char id[64];
        snprintf(id, sizeof id, "shipment.confirmed:DC1:SHP-%zu", s);
        assert_string_equal(cJSON_GetObjectItem(e, "event_id")->valuestring, id);
        cJSON *lines = cJSON_GetObjectItem(cJSON_GetObjectItem(e, "data"), "lines");
        assert_int_equal(cJSON_GetArraySize(lines), per);
        assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(lines, 4), "sku")->valuestring,
                            "SKU-4");
    }
    fprintf(stderr, "  %zu rows, %zu events in %.2f s (CPU)\n", nship * per, nship, secs);
    assert_true(secs < 30); /* quadratic grouping would take minutes here */
    cJSON_Delete(events);
    xd_buf_dispose(&b);
}

/* Values that only the event validation can catch are mapped back to a row and column. */
static void test_validation_backstop(void **state)
{
    (void)state;
    char wh[201];
    memset(wh, 'W', 200);
    wh[200] = '\0';
    struct xd_convert_opts o = {.warehouse = wh};
    expect("type,customer,occurred_at,receipt_id,sku,qty\n"
           "goods.received,ACME,2026-11-28T08:00:00Z,R1,A,1\n"
           "goods.received,ACME,2026-11-28T08:00:00Z,R2,A,1\n",
           &o, NULL, XD_ESCHEMA,
           "row 2, column warehouse: must be 1-128 characters\n"
           "row 3, column warehouse: must be 1-128 characters\n");
}

/* Options only fill in; an empty option is no option. */
static void test_options(void **state)
{
    (void)state;
    const char *csv = "type,occurred_at,receipt_id,sku,qty\n"
                      "goods.received,2026-11-28T08:00:00Z,R1,A,1\n";
    struct xd_convert_opts empty = {.customer = "", .warehouse = ""};
    const char *want = "row 1, column warehouse: missing from the header (required by "
                       "goods.received, row 2)\n"
                       "row 1, column customer: missing from the header (required by "
                       "goods.received, row 2)\n";
    expect(csv, NULL, NULL, XD_ESCHEMA, want);
    expect(csv, &empty, NULL, XD_ESCHEMA, want);
    struct xd_convert_opts o = {.customer = "ACME", .warehouse = "DC1"};
    expect(csv, &o, NULL, 0,
           "{\"event_id\":\"goods.received:DC1:R1\",\"type\":\"goods.received\",\"occurred_at\":"
           "\"2026-11-28T08:00:00Z\",\"data\":{\"warehouse\":\"DC1\",\"receipt_id\":\"R1\","
           "\"customer\":\"ACME\",\"lines\":[{\"sku\":\"A\",\"qty\":1}]}}\n");
}

/* Which code: bytes that are no CSV (or no UTF-8) are XD_EPARSE; the rest XD_ESCHEMA. */
static void test_codes(void **state)
{
    (void)state;
    static const struct {
        const char *csv;
        int rc;
    } t[] = {
        {"", XD_EPARSE},
        {"\xef\xbb\xbf", XD_EPARSE},
        {"type\nx\"y\n", XD_EPARSE},
        {"type\n\"x\n", XD_EPARSE},
        {"type\n\xff\n", XD_EPARSE},
        {"type\nx\n", XD_ESCHEMA},
        {"sku\n", XD_ESCHEMA},
        {"type\n", 0},
        {"type", 0},
        {"\"type\"", 0},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        expect(t[i].csv, NULL, NULL, t[i].rc, NULL);
}

/* A quoting error in the header stops reading: the next line is no header. */
static void test_header_syntax(void **state)
{
    (void)state;
    expect("type,ware\"house\nshipment.voided,DC1\n", NULL, NULL, XD_EPARSE,
           "row 1, column 2: unexpected quote in an unquoted cell (quote the cell and double the "
           "quote)\n");
    char many[4096] = "type";
    for (int i = 0; i < XD_CSV_MAX_COLUMNS; i++)
        snprintf(many + strlen(many), sizeof many - strlen(many), ",x_%d", i);
    strcat(many, "\n");
    expect(many, NULL, NULL, XD_ESCHEMA, "row 1, column 257: more than 256 columns\n");
}

int main(void)
{
    static const struct CMUnitTest fixed[] = {
        cmocka_unit_test(test_row_limit),     cmocka_unit_test(test_cell_limit),
        cmocka_unit_test(test_lines_limit),   cmocka_unit_test(test_error_cap),
        cmocka_unit_test(test_many_rows),     cmocka_unit_test(test_validation_backstop),
        cmocka_unit_test(test_options),       cmocka_unit_test(test_codes),
        cmocka_unit_test(test_header_syntax),
    };
    size_t nfixed = sizeof fixed / sizeof fixed[0];
    list_fixtures();
    if (nfixtures == 0) {
        fprintf(stderr, "test_csv: no fixtures in %s/csv\n", data_dir());
        return 1;
    }
    struct CMUnitTest *tests = calloc(nfixtures + nfixed, sizeof *tests);
    if (!tests)
        return 1;
    for (size_t i = 0; i < nfixtures; i++) {
        tests[i].name = fixtures[i].name;
        tests[i].test_func = test_fixture;
        tests[i].initial_state = &fixtures[i];
    }
    memcpy(tests + nfixtures, fixed, sizeof fixed);
    int rc = _cmocka_run_group_tests("csv", tests, nfixtures + nfixed, NULL, NULL);
    free(tests);
    free(fixtures);
    return rc;
}
