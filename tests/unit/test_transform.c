/*
 * jq transforms (transform/transform.h).
 *
 * map_cases[] is data: a program, an input event (JSON text), and either the
 * exact output text or the return code and error message expected. Then
 * filters, compile errors (captured, never printed), the round trip of every
 * fixture event through `.`, numbers against xd_json_write(), deep input and
 * output, the cJSON output form, xd_transform_check() positions (a config
 * built by hand and one loaded from YAML), and two threads each with their
 * own program. Runs leak-checked under ASan in the sanitizer build.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "core/buf.h"
#include "core/config.h"
#include "core/err.h"
#include "formats/json.h"
#include "transform/transform.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The contract's shipment.confirmed, compact (about 550 bytes in the bench's form). */
static const char shipment[] =
    "{\"event_id\":\"wms1-000123\",\"type\":\"shipment.confirmed\","
    "\"occurred_at\":\"2026-11-28T14:03:11Z\",\"source\":\"wms-dc1\",\"data\":{"
    "\"warehouse\":\"DC1\",\"shipment_id\":\"SHP-1001\",\"order_id\":\"SO-88121\","
    "\"customer\":\"ACME\",\"lines\":[{\"line_no\":1,\"sku\":\"WID-100\",\"qty\":12},"
    "{\"line_no\":2,\"sku\":\"WID-200\",\"qty\":3,\"uom\":\"CS\"}],\"weight_kg\":18.4}}";

static const char contract_map[] =
    "{delivery: .data.shipment_id, plant: $xref.plant[.data.warehouse], items: "
    "[.data.lines[] | {material: .sku, quantity: .qty}]}";

/* The contract's xref tables, built by hand (no YAML needed). */
static struct xd_xref_entry plant_entries[] = {{"DC1", "1000"}, {"DC2", "2000"}};
static struct xd_xref_entry account_entries[] = {{"ACME", "ACC-0042"}, {"42", "answer"}};
static struct xd_xref_table xref_tables[] = {
    {.name = "plant", .entries = plant_entries, .n = 2},
    {.name = "account", .entries = account_entries, .n = 2},
};
static const struct xd_config xref_cfg = {.path = "t.yaml", .xref = xref_tables, .nxref = 2};

#define SHIP NULL /* input: the shipment above */

struct map_case {
    const char *name;
    const char *program;
    const char *input; /* JSON text, SHIP for the shipment */
    int rc;            /* expected return */
    const char *want;  /* output when rc == 0, else the exact error message */
};

static const struct map_case map_cases[] = {
    {"contract example map", contract_map, SHIP, 0,
     "{\"delivery\":\"SHP-1001\",\"plant\":\"1000\",\"items\":[{\"material\":\"WID-100\","
     "\"quantity\":12},{\"material\":\"WID-200\",\"quantity\":3}]}"},
    {"identity keeps key order", ".", "{\"b\":1,\"a\":[true,false,null],\"c\":{}}", 0,
     "{\"b\":1,\"a\":[true,false,null],\"c\":{}}"},
    {"object construction order", "{z: 1, a: 2, m: 3}", "{}", 0, "{\"z\":1,\"a\":2,\"m\":3}"},
    {"deleted and re-added key", ".b = 2 | del(.a) | .a = 3", "{\"a\":1}", 0, "{\"b\":2,\"a\":3}"},
    /* strings */
    {"string ascii", ".s", "{\"s\":\"SHP-1001\"}", 0, "\"SHP-1001\""},
    {"string escapes", ".s", "{\"s\":\"q\\\" b\\\\ n\\n t\\t r\\r c\\u0001 s/\"}", 0,
     "\"q\\\" b\\\\ n\\n t\\t r\\r c\\u0001 s/\""},
    {"string unicode", ".s", "{\"s\":\"\\u00e9 \\u4e2d \\ud83d\\ude00 \xc3\xa9\"}", 0,
     "\"\xc3\xa9 \xe4\xb8\xad \xf0\x9f\x98\x80 \xc3\xa9\""},
    {"unicode length in codepoints", ".s | length", "{\"s\":\"\xc3\xa9\xe4\xb8\xad\"}", 0, "2"},
    {"string built by jq", "\"\\(.a)-\\(.b)\"", "{\"a\":\"x\",\"b\":2}", 0, "\"x-2\""},
    {"NUL made by jq", "\"a\\u0000b\"", "{}", 0, "\"a\\u0000b\""},
    {"DEL and controls", "[127,31,10]|implode", "{}", 0, "\"\x7f\\u001f\\n\""},
    {"unicode key", "{\"cl\xc3\xa9\": .a}", "{\"a\":1}", 0, "{\"cl\xc3\xa9\":1}"},
    {"empty key", ".[\"\"]", "{\"\":5}", 0, "5"},
    /* numbers keep their value */
    {"integer", ".n", "{\"n\":12}", 0, "12"},
    {"one and a half", ".n", "{\"n\":1.5}", 0, "1.5"},
    {"one tenth", ".n", "{\"n\":0.1}", 0, "0.1"},
    {"1e12 in digits", ".n", "{\"n\":1e12}", 0, "1000000000000"},
    {"negative decimal", ".n", "{\"n\":-18.4}", 0, "-18.4"},
    {"small", ".n", "{\"n\":0.00001}", 0, "1e-05"},
    {"huge", ".n", "{\"n\":1.5e300}", 0, "1.5e+300"},
    {"integer beyond 2^53", ".n", "{\"n\":9007199254740993}", 0, "9007199254740992"},
    {"arithmetic", ".a + .b", "{\"a\":0.1,\"b\":0.2}", 0, "0.30000000000000004"},
    {"quantity sum", "[.data.lines[].qty] | add", SHIP, 0, "15"},
    {"integer division", "7 / 2", "{}", 0, "3.5"},
    {"negative zero", "-0", "{}", 0, "0"},
    {"infinite prints null", "[infinite, -infinite, nan]", "{}", 0, "[null,null,null]"},
    {"tonumber", ".s | tonumber", "{\"s\":\"24.50\"}", 0, "24.5"},
    /* $xref and xref() */
    {"xref plain miss is null", "$xref.plant[.data.warehouse]",
     "{\"data\":{\"warehouse\":\"DC9\"}}", 0, "null"},
    {"xref plain miss with //", "$xref.plant[.data.warehouse] // \"none\"",
     "{\"data\":{\"warehouse\":\"DC9\"}}", 0, "\"none\""},
    {"xref unknown table", "$xref.nope.x", "{}", 0, "null"},
    {"xref plain with null key", "$xref.plant[.data.warehouse]", "{}", XD_EINVAL,
     "Cannot index object with null"},
    {"xref tables", "$xref | keys_unsorted", "{}", 0, "[\"plant\",\"account\"]"},
    {"xref() hit", "xref(\"plant\"; .data.warehouse)", SHIP, 0, "\"1000\""},
    {"xref() number key", "xref(\"account\"; 42)", "{}", 0, "\"answer\""},
    {"xref() miss", "xref(\"plant\"; .data.warehouse)", "{\"data\":{\"warehouse\":\"DC9\"}}",
     XD_EINVAL, "xref plant: no entry for DC9"},
    {"xref() miss on null key", "xref(\"plant\"; .nope)", "{}", XD_EINVAL,
     "xref plant: no entry for null"},
    {"xref() unknown table", "xref(\"nope\"; \"x\")", "{}", XD_EINVAL, "xref nope: no entry for x"},
    {"xref() miss caught", "try xref(\"plant\"; \"DC9\") catch \"held\"", "{}", 0, "\"held\""},
    /* outputs */
    {"first of several outputs", ".a[]", "{\"a\":[1,2,3]}", 0, "1"},
    {"first output before an error", "1, error(\"late\")", "{}", 0, "1"},
    {"no output", "empty", "{}", XD_ENOTFOUND, "mapping produced no output"},
    {"select false", "select(.type == \"x\")", SHIP, XD_ENOTFOUND, "mapping produced no output"},
    {"error(null) is no output in jq 1.6", "error(null)", "{}", XD_ENOTFOUND,
     "mapping produced no output"},
    {"halt is no output", "halt", "{}", XD_ENOTFOUND, "mapping produced no output"},
    /* runtime errors */
    {"index a number", ".x.y", "{\"x\":3}", XD_EINVAL, "Cannot index number with string \"y\""},
    {"iterate null", ".nope[] | .a", "{}", XD_EINVAL, "Cannot iterate over null (null)"},
    {"add string and number", ".a + 1", "{\"a\":\"x\"}", XD_EINVAL,
     "string (\"x\") and number (1) cannot be added"},
    {"error string", "error(\"bad \\(.a)\")", "{\"a\":1}", XD_EINVAL, "bad 1"},
    {"error object", "error({code: 7})", "{}", XD_EINVAL, "error (not a string): {\"code\":7}"},
    {"error before output", "error(\"first\"), 1", "{}", XD_EINVAL, "first"},
    {"halt_error string", "\"bye\\n\" | halt_error", "{}", XD_EINVAL, "bye"},
    {"halt_error object", "{a: 1} | halt_error(3)", "{}", XD_EINVAL,
     "error (not a string): {\"a\":1}"},
    {"fromjson of bad text", ".s | fromjson", "{\"s\":\"[1,\"}", XD_EINVAL,
     "Unfinished JSON term at EOF at line 1, column 3 (while parsing '[1,')"},
    /* what the prelude closes off */
    {"env is empty", "env", "{}", 0, "{}"},
    {"$ENV is empty", "$ENV", "{}", 0, "{}"},
    {"input refused", "input", "{}", XD_EINVAL, "input is not available in a mapping"},
    {"inputs empty", "[inputs]", "{}", 0, "[]"},
    {"debug passes through", "debug | .a", "{\"a\":1}", 0, "1"},
    {"stderr passes through", "stderr | .a", "{\"a\":1}", 0, "1"},
    {"get_search_list", "get_search_list", "{}", 0, "[]"},
    {"modulemeta refused", "\"x\" | modulemeta", "{}", XD_EINVAL,
     "modules are not available in a mapping"},
    {"todate of a huge number", ".t | todate", "{\"t\":1e20}", XD_EINVAL,
     "errror converting number of seconds since epoch to datetime"},
    {"todate", ".t | todate", "{\"t\":1764338591}", 0, "\"2025-11-28T14:03:11Z\""},
    {"strftime of an array", "[2026,10,28,14,3,11,0,0] | strftime(\"%Y-%m-%d\")", "{}", 0,
     "\"2026-11-28\""},
    {"fromdate", ".occurred_at | fromdate", SHIP, 0, "1795874591"},
    {"indices of empty string", ".s | indices(\"\")", "{\"s\":\"abc\"}", 0, "[]"},
    {"index of empty string", ".s | index(\"\")", "{\"s\":\"abc\"}", 0, "null"},
    {"indices of a string", ".s | indices(\"b\")", "{\"s\":\"abcb\"}", 0, "[1,3]"},
    {"rindex", ".s | rindex(\"b\")", "{\"s\":\"abcb\"}", 0, "3"},
    {"indices in an array", ".a | indices(2)", "{\"a\":[1,2,2]}", 0, "[1,2]"},
    {"$__loc__ works", "$__loc__ | .file", "{}", 0, "\"<top-level>\""},
    {"trailing comment", ".a # the end", "{\"a\":1}", 0, "1"},
    {"defs in the program", "def twice(f): f | f; .a | twice(. * 2)", "{\"a\":3}", 0, "12"},
    {"multi-line program", "{\n  a: .a,\n  b: (.a + 1)\n}\n", "{\"a\":1}", 0, "{\"a\":1,\"b\":2}"},
    {"reduce", "reduce .data.lines[] as $l (0; . + $l.qty)", SHIP, 0, "15"},
};

static cJSON *parse_json(const char *text)
{
    cJSON *tree = NULL;
    struct xd_json_error jerr;
    int rc = xd_json_parse(text, strlen(text), NULL, &tree, &jerr);
    if (rc != 0)
        fail_msg("bad test input (%s at %zu): %s", jerr.message, jerr.offset, text);
    return tree;
}

static void test_map_case(void **state)
{
    const struct map_case *c = *state;
    struct xd_jq *p = NULL;
    struct xd_buf out, err;
    xd_buf_init(&out);
    xd_buf_init(&err);
    int rc = xd_jq_compile(c->program, &xref_cfg, &p, &err);
    if (rc != 0)
        fail_msg("%s: does not compile: %s", c->name, xd_buf_str(&err));
    cJSON *in = parse_json(c->input ? c->input : shipment);
    xd_buf_puts(&out, "kept|"); /* out is appended to, never replaced */
    rc = xd_jq_map(p, in, &out, &err);
    if (rc != c->rc)
        fail_msg("%s: rc %d (%s), want %d; out %s", c->name, rc, xd_buf_str(&err), c->rc,
                 xd_buf_str(&out));
    if (rc == 0) {
        assert_string_equal(xd_buf_str(&err), "");
        assert_string_equal(xd_buf_str(&out) + 5, c->want);
    } else {
        assert_string_equal(xd_buf_str(&out), "kept|");
        assert_string_equal(xd_buf_str(&err), c->want);
    }
    /* the same program again, on the same input: the state was reset */
    xd_buf_reset(&out);
    xd_buf_reset(&err);
    assert_int_equal(xd_jq_map(p, in, &out, &err), c->rc);
    assert_string_equal(rc == 0 ? xd_buf_str(&out) : xd_buf_str(&err), c->want);
    cJSON_Delete(in);
    xd_jq_destroy(p);
    xd_buf_dispose(&out);
    xd_buf_dispose(&err);
}

/* One map, one input; returns the output (static buffer) or fails. */
static const char *map1(const char *program, const char *input)
{
    static char result[1 << 16];
    struct xd_jq *p = NULL;
    struct xd_buf out, err;
    xd_buf_init(&out);
    xd_buf_init(&err);
    if (xd_jq_compile(program, &xref_cfg, &p, &err) != 0)
        fail_msg("%s: %s", program, xd_buf_str(&err));
    if (xd_jq_map_text(p, input, strlen(input), &out, &err) != 0)
        fail_msg("%s: %s", program, xd_buf_str(&err));
    snprintf(result, sizeof result, "%s", xd_buf_str(&out));
    xd_jq_destroy(p);
    xd_buf_dispose(&out);
    xd_buf_dispose(&err);
    return result;
}

/* Every number comes out as xd_json_write() prints it, and reads back as the same double. */
static void test_numbers_like_json_write(void **state)
{
    (void)state;
    static const char *nums[] = {
        "0",
        "12",
        "-7",
        "1.5",
        "0.1",
        "1e12",
        "1e15",
        "1e16",
        "1e17",
        "123456789012345678",
        "3.0e-5",
        "18.4",
        "0.05",
        "99.99",
        "1e-7",
        "2.2250738585072014e-308",
        "1.7976931348623157e308",
        "4.35",
        "1234567.891",
        "-0.000123",
        "5e-324",
        "0.30000000000000004",
    };
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) {
        char in[128];
        snprintf(in, sizeof in, "[%s]", nums[i]);
        cJSON *tree = parse_json(in);
        struct xd_buf want;
        xd_buf_init(&want);
        xd_json_write(&want, tree);
        const char *got = map1(".", in);
        if (strcmp(got, xd_buf_str(&want)) != 0)
            fail_msg("%s: got %s, xd_json_write %s", nums[i], got, xd_buf_str(&want));
        cJSON *back = parse_json(got);
        assert_true(cJSON_GetArrayItem(back, 0)->valuedouble ==
                    cJSON_GetArrayItem(tree, 0)->valuedouble);
        cJSON_Delete(back);
        cJSON_Delete(tree);
        xd_buf_dispose(&want);
    }
}

/* Every fixture event goes through `.` unchanged (as xd_json_write prints it). */
static void test_fixture_round_trip(void **state)
{
    (void)state;
    static const char *files[] = {"shipment.confirmed", "shipment.voided",    "goods.received",
                                  "inventory.adjusted", "inventory.snapshot", "delivery.confirmed"};
    const char *dir = getenv("XD_TEST_DATA");
    if (!dir)
        dir = "tests/data";
    struct xd_jq *p = NULL;
    assert_int_equal(xd_jq_compile(".", NULL, &p, NULL), 0);
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/events/%s.json", dir, files[i]);
        FILE *f = fopen(path, "rb");
        if (!f)
            fail_msg("cannot open %s (set XD_TEST_DATA)", path);
        struct xd_buf text, want, got, err;
        xd_buf_init(&text);
        xd_buf_init(&want);
        xd_buf_init(&got);
        xd_buf_init(&err);
        char chunk[4096];
        size_t n;
        while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
            xd_buf_append(&text, chunk, n);
        fclose(f);
        cJSON *tree = parse_json(xd_buf_str(&text));
        xd_json_write(&want, tree);
        assert_int_equal(xd_jq_map(p, tree, &got, &err), 0);
        assert_string_equal(xd_buf_str(&got), xd_buf_str(&want));
        cJSON_Delete(tree);
        xd_buf_dispose(&text);
        xd_buf_dispose(&want);
        xd_buf_dispose(&got);
        xd_buf_dispose(&err);
    }
    xd_jq_destroy(p);
}

/* More keys than the key cache holds, and long keys: all still right. */
static void test_many_keys(void **state)
{
    (void)state;
    struct xd_buf in;
    xd_buf_init(&in);
    xd_buf_putc(&in, '{');
    for (int i = 0; i < 600; i++)
        xd_buf_printf(&in, "%s\"k%d%s\":%d", i ? "," : "", i,
                      i % 7 ? "" : "-a-rather-long-key-name-beyond-the-cache-limit-of-64-bytes", i);
    xd_buf_putc(&in, '}');
    struct xd_jq *p = NULL;
    struct xd_buf out;
    xd_buf_init(&out);
    assert_int_equal(xd_jq_compile(".", NULL, &p, NULL), 0);
    for (int round = 0; round < 3; round++) { /* later rounds hit the cache */
        cJSON *tree = parse_json(xd_buf_str(&in));
        xd_buf_reset(&out);
        assert_int_equal(xd_jq_map(p, tree, &out, NULL), 0);
        assert_string_equal(xd_buf_str(&out), xd_buf_str(&in));
        cJSON_Delete(tree);
    }
    assert_string_equal(map1("[.[]] | add", xd_buf_str(&in)), "179700");
    xd_jq_destroy(p);
    xd_buf_dispose(&out);
    xd_buf_dispose(&in);
}

/* Input as deep as the parser allows; output deeper than 1000 is refused, not a crash. */
static void test_deep(void **state)
{
    (void)state;
    struct xd_buf in, out, err;
    xd_buf_init(&in);
    xd_buf_init(&out);
    xd_buf_init(&err);
    for (int i = 0; i < 32; i++) /* depth 64, the parser's default limit */
        xd_buf_puts(&in, "{\"a\":[");
    xd_buf_puts(&in, "1");
    for (int i = 0; i < 32; i++)
        xd_buf_puts(&in, "]}");
    assert_string_equal(map1(".", xd_buf_str(&in)), xd_buf_str(&in));
    assert_string_equal(map1("[paths] | length", xd_buf_str(&in)), "64");

    struct xd_jq *p = NULL;
    assert_int_equal(xd_jq_compile("reduce range(1200) as $i (0; [.])", NULL, &p, &err), 0);
    cJSON *tree = parse_json("{}");
    xd_buf_puts(&out, "kept");
    assert_int_equal(xd_jq_map(p, tree, &out, &err), XD_ELIMIT);
    assert_string_equal(xd_buf_str(&out), "kept");
    assert_string_equal(xd_buf_str(&err), "mapping output nested deeper than 1000");
    cJSON *j = NULL;
    assert_int_equal(xd_jq_map_json(p, tree, &j, NULL), XD_ELIMIT);
    assert_null(j);
    xd_jq_destroy(p);
    assert_int_equal(xd_jq_compile("reduce range(900) as $i (0; [.]) | flatten", NULL, &p, &err),
                     0);
    xd_buf_reset(&out);
    assert_int_equal(xd_jq_map(p, tree, &out, &err), 0);
    assert_string_equal(xd_buf_str(&out), "[0]");
    cJSON_Delete(tree);
    xd_jq_destroy(p);
    xd_buf_dispose(&in);
    xd_buf_dispose(&out);
    xd_buf_dispose(&err);
}

struct filter_case {
    const char *program;
    const char *input;
    int rc;
    int truthy;
};

static const struct filter_case filter_cases[] = {
    {".type == \"shipment.confirmed\"", SHIP, 0, 1},
    {".type == \"goods.received\"", SHIP, 0, 0},
    {".data.customer | IN(\"ACME\", \"GLOBEX\")", SHIP, 0, 1},
    {"$xref.plant[.data.warehouse] != null", SHIP, 0, 1},
    {"empty", SHIP, 0, 0},
    {"null", SHIP, 0, 0},
    {"false, true", SHIP, 0, 0},
    {"true, false", SHIP, 0, 1},
    {"0", SHIP, 0, 1}, /* jq: only false and null are falsy */
    {"\"\"", SHIP, 0, 1},
    {".data.lines | length > 1", SHIP, 0, 1},
    {".data.weight_kg > 20", SHIP, 0, 0},
    {".data.x.y.z", SHIP, 0, 0},
    {".type.x", SHIP, XD_EINVAL, 0},
};

static void test_filters(void **state)
{
    (void)state;
    cJSON *in = parse_json(shipment);
    for (size_t i = 0; i < sizeof filter_cases / sizeof filter_cases[0]; i++) {
        const struct filter_case *c = &filter_cases[i];
        struct xd_jq *p = NULL;
        struct xd_buf err;
        xd_buf_init(&err);
        assert_int_equal(xd_jq_compile(c->program, &xref_cfg, &p, &err), 0);
        int truthy = 7;
        int rc = xd_jq_test(p, in, &truthy, &err);
        if (rc != c->rc || truthy != c->truthy)
            fail_msg("%s: rc %d truthy %d (%s), want %d %d", c->program, rc, truthy,
                     xd_buf_str(&err), c->rc, c->truthy);
        if (rc)
            assert_string_equal(xd_buf_str(&err), "Cannot index string with string \"x\"");
        xd_jq_destroy(p);
        xd_buf_dispose(&err);
    }
    cJSON_Delete(in);
}

struct compile_case {
    const char *program;
    const char *message; /* exact */
};

static const struct compile_case compile_cases[] = {
    {".a | ]", "syntax error, unexpected INVALID_CHARACTER"},
    {"{delivery: .data.shipment_id", "syntax error, unexpected $end, expecting '}'"},
    {"foo(1)", "foo/1 is not defined"},
    {"$nope", "$nope is not defined"},
    {".a | xref(\"plant\")", "xref/1 is not defined"},
    {"", "empty program"},
    {" \n\t", "empty program"},
    {".a\n| foo\n", "foo/0 is not defined (program line 2)"},
    {"import \"m\" as m; .", "syntax error, unexpected import"},
    {"include \"m\"; .", "syntax error, unexpected include"},
    {".a | foo | bar", "foo/0 is not defined; bar/0 is not defined"},
};

/* Runs f with stderr sent to a temporary file; returns what was written there. */
static void capture_stderr(void (*f)(void *), void *arg, char *got, size_t cap)
{
    char path[] = "/tmp/xd_test_transform_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    fflush(stderr);
    int saved = dup(2);
    dup2(fd, 2);
    f(arg);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    ssize_t n = pread(fd, got, cap - 1, 0);
    got[n > 0 ? n : 0] = '\0';
    close(fd);
    unlink(path);
}

/* Compiles every bad program; the first mismatch goes to arg (a 1024-byte buffer). */
static void compile_all_bad(void *arg)
{
    char *failure = arg;
    for (size_t i = 0; i < sizeof compile_cases / sizeof compile_cases[0]; i++) {
        const struct compile_case *c = &compile_cases[i];
        struct xd_jq *p = (struct xd_jq *)&p; /* must be reset to NULL */
        struct xd_buf err;
        xd_buf_init(&err);
        int rc = xd_jq_compile(c->program, &xref_cfg, &p, &err);
        if (!*failure && (rc != XD_EPARSE || p != NULL || strcmp(xd_buf_str(&err), c->message)))
            snprintf(failure, 1024, "%s: rc %d, message '%s', want '%s'", c->program, rc,
                     xd_buf_str(&err), c->message);
        xd_buf_dispose(&err);
    }
}

static void test_compile_errors(void **state)
{
    (void)state;
    char printed[4096], failure[1024] = "";
    capture_stderr(compile_all_bad, failure, printed, sizeof printed);
    if (*failure)
        fail_msg("%s", failure);
    assert_string_equal(printed, ""); /* nothing printed by jq */
    struct xd_jq *p = NULL;
    assert_int_equal(xd_jq_compile(NULL, NULL, &p, NULL), XD_EINVAL);
    assert_int_equal(xd_jq_compile("foo", NULL, &p, NULL), XD_EPARSE); /* err may be NULL */
    assert_null(p);
    xd_jq_destroy(NULL);
}

static void test_xref_miss_parse(void **state)
{
    (void)state;
    const char *t, *k;
    size_t tl, kl;
    assert_int_equal(xd_jq_xref_miss("xref plant: no entry for DC9", &t, &tl, &k, &kl), 1);
    assert_int_equal(tl, 5);
    assert_memory_equal(t, "plant", 5);
    assert_int_equal(kl, 3);
    assert_string_equal(k, "DC9");
    assert_int_equal(xd_jq_xref_miss("xref account: no entry for ", NULL, NULL, &k, &kl), 1);
    assert_int_equal(kl, 0);
    assert_int_equal(xd_jq_xref_miss("xref : no entry for x", NULL, NULL, NULL, NULL), 0);
    assert_int_equal(xd_jq_xref_miss("Cannot index number with \"y\"", NULL, NULL, NULL, NULL), 0);
    assert_int_equal(xd_jq_xref_miss(NULL, NULL, NULL, NULL, NULL), 0);

    /* what xref() raises is what xd_jq_xref_miss() reads */
    struct xd_jq *p = NULL;
    struct xd_buf out, err;
    xd_buf_init(&out);
    xd_buf_init(&err);
    assert_int_equal(
        xd_jq_compile("{plant: xref(\"plant\"; .data.warehouse)}", &xref_cfg, &p, &err), 0);
    cJSON *in = parse_json("{\"data\":{\"warehouse\":\"DC 7/\xc3\xa9\"}}");
    assert_int_equal(xd_jq_map(p, in, &out, &err), XD_EINVAL);
    assert_int_equal(xd_jq_xref_miss(xd_buf_str(&err), &t, &tl, &k, &kl), 1);
    assert_memory_equal(t, "plant", tl);
    assert_string_equal(k, "DC 7/\xc3\xa9");
    cJSON_Delete(in);
    xd_jq_destroy(p);
    xd_buf_dispose(&out);
    xd_buf_dispose(&err);
}

/* The cJSON form of the output, and the text-input form. */
static void test_map_json_and_text(void **state)
{
    (void)state;
    struct xd_jq *p = NULL;
    struct xd_buf out, err;
    xd_buf_init(&out);
    xd_buf_init(&err);
    assert_int_equal(xd_jq_compile(contract_map, &xref_cfg, &p, &err), 0);
    cJSON *in = parse_json(shipment);
    cJSON *j = NULL;
    assert_int_equal(xd_jq_map_json(p, in, &j, &err), 0);
    xd_json_write(&out, j);
    assert_string_equal(xd_buf_str(&out), map1(contract_map, shipment));
    assert_string_equal(cJSON_GetObjectItem(j, "plant")->valuestring, "1000");
    cJSON_Delete(j);

    cJSON *bad = parse_json("{\"data\":3}");
    j = (cJSON *)&j;
    assert_int_equal(xd_jq_map_json(p, bad, &j, &err), XD_EINVAL);
    assert_null(j);
    assert_string_equal(xd_buf_str(&err), "Cannot index number with string \"shipment_id\"");
    cJSON_Delete(bad);

    xd_buf_reset(&out);
    xd_buf_reset(&err);
    assert_int_equal(xd_jq_map_text(p, "{\"data\":", 8, &out, &err), XD_EPARSE);
    assert_string_equal(xd_buf_str(&out), "");
    assert_true(strncmp(xd_buf_str(&err), "input: byte ", 12) == 0);
    xd_jq_destroy(p);

    assert_int_equal(xd_jq_compile("empty", NULL, &p, NULL), 0);
    xd_buf_reset(&err);
    assert_int_equal(xd_jq_map_json(p, in, &j, &err), XD_ENOTFOUND);
    assert_string_equal(xd_buf_str(&err), "mapping produced no output");
    xd_jq_destroy(p);
    cJSON_Delete(in);
    xd_buf_dispose(&out);
    xd_buf_dispose(&err);
}

/* One converted input through a filter and two maps, as a router would; freed in any order. */
static void test_input_shared(void **state)
{
    (void)state;
    struct xd_jq *f = NULL, *m1 = NULL, *m2 = NULL;
    struct xd_buf out, err;
    xd_buf_init(&out);
    xd_buf_init(&err);
    assert_int_equal(xd_jq_compile(".data.customer == \"ACME\"", &xref_cfg, &f, &err), 0);
    assert_int_equal(xd_jq_compile(contract_map, &xref_cfg, &m1, &err), 0);
    assert_int_equal(xd_jq_compile(".data.lines[0].sku", &xref_cfg, &m2, &err), 0);
    cJSON *ev = parse_json(shipment);
    for (int round = 0; round < 3; round++) {
        struct xd_jq_input *in = NULL;
        int truthy = 0;
        assert_int_equal(xd_jq_input_create(round == 1 ? NULL : f, ev, &in), 0);
        assert_int_equal(xd_jq_test_input(f, in, &truthy, &err), 0);
        assert_int_equal(truthy, 1);
        xd_buf_reset(&out);
        assert_int_equal(xd_jq_map_input(m1, in, &out, &err), 0);
        assert_string_equal(xd_buf_str(&out), map_cases[0].want);
        xd_buf_reset(&out);
        assert_int_equal(xd_jq_map_input(m2, in, &out, &err), 0);
        assert_string_equal(xd_buf_str(&out), "\"WID-100\"");
        xd_buf_reset(&out);
        assert_int_equal(xd_jq_map_input(m1, in, &out, &err), 0); /* again: input unchanged */
        assert_string_equal(xd_buf_str(&out), map_cases[0].want);
        xd_jq_input_destroy(in); /* before the programs, which still hold their last input */
    }
    struct xd_jq_input *in = NULL;
    cJSON *bad = parse_json("{\"data\":{\"customer\":\"ACME\",\"lines\":7}}");
    assert_int_equal(xd_jq_input_create(m1, bad, &in), 0);
    assert_int_equal(xd_jq_map_input(m1, in, &out, &err), XD_EINVAL);
    assert_string_equal(xd_buf_str(&err), "Cannot index object with null"); /* no warehouse */
    xd_jq_destroy(f); /* programs first, input after */
    xd_jq_destroy(m1);
    xd_jq_destroy(m2);
    xd_jq_input_destroy(in);
    xd_jq_input_destroy(NULL);
    assert_int_equal(xd_jq_input_create(NULL, NULL, &in), XD_EINVAL);
    cJSON_Delete(bad);
    cJSON_Delete(ev);
    xd_buf_dispose(&out);
    xd_buf_dispose(&err);
}

/* A long runtime error message is cut, on a UTF-8 boundary. */
static void test_long_error(void **state)
{
    (void)state;
    struct xd_jq *p = NULL;
    struct xd_buf out, err;
    xd_buf_init(&out);
    xd_buf_init(&err);
    assert_int_equal(xd_jq_compile("error(\"\xc3\xa9\" * 5000)", NULL, &p, &err), 0);
    cJSON *in = parse_json("{}");
    assert_int_equal(xd_jq_map(p, in, &out, &err), XD_EINVAL);
    assert_true(err.len <= 2048);
    assert_true(err.len > 2000);
    assert_string_equal(xd_buf_str(&err) + err.len - 3, "...");
    assert_true(((unsigned char)err.data[err.len - 4] & 0xc0) != 0xc0); /* no cut sequence */
    assert_int_equal((err.len - 3) % 2, 0);
    cJSON_Delete(in);
    xd_jq_destroy(p);
    xd_buf_dispose(&out);
    xd_buf_dispose(&err);
}

/* ---- xd_transform_check ---- */

static void test_check_by_hand(void **state)
{
    (void)state;
    struct xd_step steps1[] = {
        {.deliver = "erp", .map = (char *)contract_map, .map_pos = {23, 14}},
        {.rate = 1},
        {.deliver = "billing", .map = "{amount: .amount | foo}", .map_pos = {25, 14}},
    };
    struct xd_step steps2[] = {
        {.deliver = "wms",
         .map = "{\n  a: .a,\n  b: (.b | ]\n}\n",
         .map_pos = {31, 14},
         .pos = {30, 9}},
    };
    struct xd_route routes[] = {
        {.name = "shipments",
         .filter = ".data.customer == \"ACME\"",
         .filter_pos = {20, 13},
         .steps = steps1,
         .nsteps = 3},
        {.name = "receipts",
         .filter = ".data.customer ==",
         .filter_pos = {28, 13},
         .steps = steps2,
         .nsteps = 1},
    };
    struct xd_charge_rule charges[] = {
        {.code = "PICK_UNIT", .when = ".data.lines | length > 0", .when_pos = {40, 60}},
        {.code = "FREIGHT"},
        {.code = "X", .when = "$nope", .when_pos = {42, 60}},
    };
    struct xd_rate_card cards[] = {{.customer = "ACME", .charges = charges, .ncharges = 3}};
    struct xd_config cfg = {.path = "crossdock.yaml",
                            .xref = xref_tables,
                            .nxref = 2,
                            .routes = routes,
                            .nroutes = 2,
                            .rate_cards = cards,
                            .nrate_cards = 1};
    struct xd_buf errs;
    xd_buf_init(&errs);
    assert_int_equal(xd_transform_check(&cfg, &errs), 4);
    assert_string_equal(
        xd_buf_str(&errs),
        "crossdock.yaml:25:14: routes[shipments].steps[2].map: foo/0 is not defined\n"
        "crossdock.yaml:28:13: routes[receipts].filter: syntax error, unexpected $end\n"
        "crossdock.yaml:31:14: routes[receipts].steps[0].map: syntax error, unexpected "
        "INVALID_CHARACTER (program line 3)\n"
        "crossdock.yaml:42:60: rate_cards[0].charges[2].when: $nope is not defined\n");

    /* all good: 0 and nothing written */
    routes[1].nsteps = 0;
    routes[1].filter = NULL;
    steps1[2].map = "{amount: .amount}";
    charges[2].when = NULL;
    xd_buf_reset(&errs);
    assert_int_equal(xd_transform_check(&cfg, &errs), 0);
    assert_string_equal(xd_buf_str(&errs), "");
    xd_buf_dispose(&errs);
}

/* The positions the config loader records lead to the program in the YAML text. */
static void test_check_from_yaml(void **state)
{
    (void)state;
    static const char yaml[] = "xref:\n"
                               "  plant: {DC1: \"1000\"}\n"
                               "targets:\n"
                               "  erp: {type: http, url: \"http://127.0.0.1:18080/erp\"}\n"
                               "routes:\n"
                               "  - name: shipments\n"
                               "    on: [shipment.confirmed]\n"
                               "    filter: '.data.customer =='\n"
                               "    steps:\n"
                               "      - deliver: erp\n"
                               "        map: '{plant: $xref.plant[.data.warehouse], x: nope}'\n";
    struct xd_buf errs;
    xd_buf_init(&errs);
    struct xd_config *cfg = xd_config_parse("t.yaml", yaml, strlen(yaml), &errs);
    if (!cfg)
        fail_msg("config: %s", xd_buf_str(&errs));
    assert_int_equal(xd_transform_check(cfg, &errs), 2);
    /* each line names a position whose text starts the program (after any quote) */
    const char *l = xd_buf_str(&errs);
    for (int i = 0; i < 2; i++) {
        unsigned line, col;
        assert_int_equal(sscanf(l, "t.yaml:%u:%u:", &line, &col), 2);
        const char *s = yaml;
        for (unsigned n = 1; n < line; n++)
            s = strchr(s, '\n') + 1;
        s += col - 1;
        if (*s == '\'')
            s++;
        assert_true(strncmp(s, i == 0 ? ".data.customer" : "{plant:", i == 0 ? 14 : 7) == 0);
        l = strchr(l, '\n') + 1;
    }
    assert_non_null(strstr(xd_buf_str(&errs), ": routes[shipments].filter: syntax error"));
    assert_non_null(
        strstr(xd_buf_str(&errs), ": routes[shipments].steps[0].map: nope/0 is not defined\n"));
    xd_config_destroy(cfg);
    xd_buf_dispose(&errs);
}

/* ---- threads: each its own program, run side by side ---- */

struct worker {
    const char *want;
    int failures;
};

static void *work(void *arg)
{
    struct worker *w = arg;
    struct xd_jq *p = NULL;
    struct xd_buf out;
    xd_buf_init(&out);
    if (xd_jq_compile(contract_map, &xref_cfg, &p, NULL) != 0) {
        w->failures++;
        return NULL;
    }
    cJSON *in = NULL;
    xd_json_parse(shipment, strlen(shipment), NULL, &in, NULL);
    for (int i = 0; i < 2000; i++) {
        xd_buf_reset(&out);
        if (xd_jq_map(p, in, &out, NULL) != 0 || strcmp(xd_buf_str(&out), w->want) != 0)
            w->failures++;
    }
    cJSON_Delete(in);
    xd_jq_destroy(p);
    xd_buf_dispose(&out);
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    char want[1024];
    snprintf(want, sizeof want, "%s", map1(contract_map, shipment));
    struct worker w[4];
    pthread_t t[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (struct worker){.want = want};
        assert_int_equal(pthread_create(&t[i], NULL, work, &w[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(w[i].failures, 0);
    }
}

int main(void)
{
    static const struct CMUnitTest fixed[] = {
        cmocka_unit_test(test_numbers_like_json_write),
        cmocka_unit_test(test_fixture_round_trip),
        cmocka_unit_test(test_many_keys),
        cmocka_unit_test(test_deep),
        cmocka_unit_test(test_filters),
        cmocka_unit_test(test_compile_errors),
        cmocka_unit_test(test_xref_miss_parse),
        cmocka_unit_test(test_map_json_and_text),
        cmocka_unit_test(test_input_shared),
        cmocka_unit_test(test_long_error),
        cmocka_unit_test(test_check_by_hand),
        cmocka_unit_test(test_check_from_yaml),
        cmocka_unit_test(test_threads),
    };
    enum { NFIXED = sizeof fixed / sizeof fixed[0], NMAP = sizeof map_cases / sizeof map_cases[0] };
    static struct CMUnitTest tests[NFIXED + NMAP];
    for (size_t i = 0; i < NMAP; i++)
        tests[i] = (struct CMUnitTest){.name = map_cases[i].name,
                                       .test_func = test_map_case,
                                       .initial_state = (void *)&map_cases[i]};
    memcpy(tests + NMAP, fixed, sizeof fixed);
    return cmocka_run_group_tests_name("transform", tests, NULL, NULL);
}
