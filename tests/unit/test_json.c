/*
 * JSON input and output (formats/json.h).
 *
 * parse_cases[] is input bytes (with their length, so NULs and bad bytes can
 * be written) and the expected outcome: accepted, or the byte offset and
 * message of the first problem. Every input is copied into a buffer of
 * exactly its length, with no NUL after it, so AddressSanitizer catches any
 * read past the end. Then limits, output, and a differential run against
 * cJSON on random inputs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/err.h"
#include "formats/json.h"

struct pcase {
    const char *in;
    size_t len;      /* 0: strlen(in) (so the empty input is written as L("")) */
    size_t offset;   /* expected error offset */
    const char *msg; /* expected error message; NULL = accepted */
};

/* clang-format off */
/* An input whose length is its literal's, NULs and all. */
#define L(s) s, sizeof(s) - 1

#define OK(s)                {s, 0, 0, NULL}
#define BAD(s, off, m)       {s, 0, off, m}
#define BADL(s, off, m)      {L(s), off, m}
#define END(s)               {s, 0, sizeof(s) - 1, "unexpected end of input"}
#define CH(s, off, c)        {s, 0, off, "unexpected character '" c "'"}

static const struct pcase parse_cases[] = {
    /* empty */
    BADL("", 0, "empty body"),
    BAD(" \t\r\n ", 0, "empty body"),
    BAD("\xef\xbb\xbf", 0, "empty body"),
    /* values of every kind */
    OK("{}"),
    OK("[]"),
    OK(" { \"a\" : [ 1 , -2.5e+3 , true , false , null , \"x\" , { } , [ ] ] } "),
    OK("0"),
    OK("-0"),
    OK("\"top-level string\""),
    OK("true"),
    OK("\xef\xbb\xbf{\"bom\":1}"),
    /* syntax errors: offset of the first byte that cannot be */
    END("{"),
    END("["),
    END("[1,"),
    END("{\"a\""),
    END("{\"a\":"),
    END("{\"a\":1"),
    END("\"abc"),
    END("\"abc\\"),
    END("nul"),
    END("-"),
    END("1."),
    END("1e"),
    END("1e+"),
    CH("{\"a\":1,}", 7, "}"),
    CH("[1,]", 3, "]"),
    CH("[1 2]", 3, "2"),
    CH("{\"a\" 1}", 5, "1"),
    CH("{1:2}", 1, "1"),
    CH("{'a':1}", 1, "'"),
    CH("{\"a\":1]", 6, "]"),
    CH("[1}", 2, "}"),
    CH("nulx", 3, "x"),
    CH("True", 0, "T"),
    CH("[NaN]", 1, "N"),
    CH("[01]", 2, "1"),
    CH("[-01]", 3, "1"),
    CH("[1.]", 3, "]"),
    CH("[.5]", 1, "."),
    CH("[-.5]", 2, "."),
    CH("[+1]", 1, "+"),
    CH("[1e]", 3, "]"),
    CH("[0x10]", 2, "x"),
    CH("{} x", 3, "x"),
    CH("{}{}", 2, "{"),
    CH("[1]]", 3, "]"),
    BAD("{}\x01", 2, "unexpected byte 0x01"),
    BAD("\xc3\xa9", 0, "unexpected byte 0xc3"),
    BADL("[1,\0]", 3, "unexpected byte 0x00"),
    /* numbers */
    OK("[1e308, -1.7976931348623157e308, 1e-400, 4.9e-324, 123456789012345678901234567890]"),
    BAD("[1e400]", 1, "number out of range"),
    BAD("{\"qty\": -1e400}", 8, "number out of range"),
    BAD("[1.8e308]", 1, "number out of range"),
    BAD("[1E+309]", 1, "number out of range"),
    OK("[123456789012345678901234567890123456789012345678901234567890123]"),
    BAD("[1234567890123456789012345678901234567890123456789012345678901234]", 1,
        "number longer than 63 characters"),
    /* strings: UTF-8 */
    OK("\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf \xed\x9f\xbf \xee\x80\x80\""),
    BAD("\"\xff\"", 1, "invalid UTF-8"),
    BAD("\"ab\x80\"", 3, "invalid UTF-8"),
    BAD("\"\xc0\xaf\"", 1, "invalid UTF-8"),         /* overlong '/' */
    BAD("\"\xc1\xbf\"", 1, "invalid UTF-8"),         /* overlong */
    BAD("\"\xe0\x80\xaf\"", 1, "invalid UTF-8"),     /* overlong, 3 bytes */
    BAD("\"\xf0\x80\x80\xaf\"", 1, "invalid UTF-8"), /* overlong, 4 bytes */
    BAD("\"\xed\xa0\x80\"", 1, "invalid UTF-8"),     /* U+D800 encoded */
    BAD("\"\xed\xbf\xbf\"", 1, "invalid UTF-8"),     /* U+DFFF encoded */
    BAD("\"\xf4\x90\x80\x80\"", 1, "invalid UTF-8"), /* U+110000 */
    BAD("\"\xf5\x80\x80\x80\"", 1, "invalid UTF-8"),
    BAD("\"\xc3\"", 1, "invalid UTF-8"),           /* truncated by the quote */
    BAD("\"\xe2\x82\"", 1, "invalid UTF-8"),       /* truncated */
    BAD("\"\xf0\x9f\x98\"", 1, "invalid UTF-8"),   /* truncated */
    BAD("\"\xe2\x82", 1, "invalid UTF-8"),         /* truncated by the end of input */
    BAD("{\"k\xe9y\":1}", 3, "invalid UTF-8"),     /* Latin-1 in a key */
    /* strings: control characters and escapes */
    BAD("\"a\nb\"", 2, "control character 0x0a in string"),
    BAD("\"\tx\"", 1, "control character 0x09 in string"),
    BADL("\"a\0\"", 2, "control character 0x00 in string"),
    OK("\"\\\" \\\\ \\/ \\b \\f \\n \\r \\t \\u00e9 \\u20AC \\ud83d\\ude00 \\u001f\""),
    BAD("\"\\x\"", 1, "invalid escape in string"),
    BAD("\"\\'\"", 1, "invalid escape in string"),
    BAD("\"\\u12\"", 1, "invalid \\u escape"),
    BAD("\"\\u12g4\"", 1, "invalid \\u escape"),
    BAD("\"ab\\u0000\"", 3, "\\u0000 is not allowed in strings"),
    BAD("\"\\ud800\"", 1, "unpaired surrogate in \\u escape"),
    BAD("\"\\udc00\\ud800\"", 1, "unpaired surrogate in \\u escape"),
    BAD("\"x\\ud83d\\u0041\"", 2, "unpaired surrogate in \\u escape"),
    BAD("\"\\ud83d\\ud83d\"", 1, "unpaired surrogate in \\u escape"),
    BAD("\"\\ud83d\"", 1, "unpaired surrogate in \\u escape"),
};
/* clang-format on */

static void check_parse(const struct pcase *c, const struct xd_json_limits *lim)
{
    size_t len = c->len ? c->len : strlen(c->in);
    char *buf = malloc(len ? len : 1);
    struct xd_json_error err = {0};
    cJSON *root = (cJSON *)1;
    assert_non_null(buf);
    memcpy(buf, c->in, len);
    int rc = xd_json_parse(buf, len, lim, &root, &err);
    if (!c->msg) {
        if (rc != 0)
            fail_msg("input '%.*s' refused: @%zu %s", (int)len, c->in, err.offset, err.message);
        assert_non_null(root);
    } else {
        if (rc == 0)
            fail_msg("input '%.*s' accepted", (int)len, c->in);
        assert_int_equal(rc, XD_EPARSE);
        assert_null(root);
        if (err.offset != c->offset || strcmp(err.message, c->msg) != 0)
            fail_msg("input '%.*s': expected @%zu %s, got @%zu %s", (int)len, c->in, c->offset,
                     c->msg, err.offset, err.message);
        /* err may be NULL */
        assert_int_equal(xd_json_parse(buf, len, lim, &root, NULL), XD_EPARSE);
    }
    cJSON_Delete(root);
    free(buf);
}

static void test_parse_cases(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof parse_cases / sizeof parse_cases[0]; i++)
        check_parse(&parse_cases[i], NULL);
}

static void test_parse_tree(void **state)
{
    (void)state;
    static const char text[] = "{\"a\":[1.5,\"x\\u00e9\",true,null],\"b\":{\"c\":-2}}  \n";
    char *buf = malloc(sizeof text - 1);
    cJSON *root = NULL;
    memcpy(buf, text, sizeof text - 1);
    assert_int_equal(xd_json_parse(buf, sizeof text - 1, NULL, &root, NULL), 0);
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(root, "a");
    assert_int_equal(cJSON_GetArraySize(a), 4);
    assert_true(cJSON_GetArrayItem(a, 0)->valuedouble == 1.5);
    assert_string_equal(cJSON_GetArrayItem(a, 1)->valuestring, "x\xc3\xa9");
    assert_true(cJSON_IsTrue(cJSON_GetArrayItem(a, 2)));
    assert_true(cJSON_IsNull(cJSON_GetArrayItem(a, 3)));
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItem(root, "b"), "c");
    assert_true(c->valuedouble == -2);
    cJSON_Delete(root);
    free(buf);
}

/* n arrays nested in one another: "[[[...]]]". */
static struct pcase nested(size_t n, char *buf)
{
    memset(buf, '[', n);
    memset(buf + n, ']', n);
    return (struct pcase){buf, 2 * n, 0, NULL};
}

static void test_depth_limit(void **state)
{
    (void)state;
    static char buf[2 * 1100];
    struct xd_json_limits three = {.max_depth = 3}, huge = {.max_depth = 5000};
    struct pcase c;

    c = nested(64, buf);
    check_parse(&c, NULL);
    c = nested(65, buf);
    c.offset = 64, c.msg = "nesting deeper than 64";
    check_parse(&c, NULL);
    check_parse(&(struct pcase){"[{\"a\":[]}]", 0, 0, NULL}, &three);
    check_parse(&(struct pcase){"[{\"a\":[[]]}]", 0, 7, "nesting deeper than 3"}, &three);
    check_parse(&(struct pcase){"{\"a\":{\"b\":{\"c\":{}}}}", 0, 15, "nesting deeper than 3"},
                &three);
    /* cJSON's own limit is 1000; a larger one is cut to it. */
    c = nested(1000, buf);
    check_parse(&c, &huge);
    c = nested(1001, buf);
    c.offset = 1000, c.msg = "nesting deeper than 1000";
    check_parse(&c, &huge);
}

static void test_string_limit(void **state)
{
    (void)state;
    struct xd_json_limits four = {.max_string = 4};
    check_parse(&(struct pcase){"[\"abcd\"]", 0, 0, NULL}, &four);
    check_parse(&(struct pcase){"[\"abcde\"]", 0, 1, "string longer than 4 bytes"}, &four);
    check_parse(&(struct pcase){"{\"abcd\":\"\xc3\xa9\"}", 0, 0, NULL}, &four);
    check_parse(&(struct pcase){"{\"abcde\":1}", 0, 1, "string longer than 4 bytes"}, &four);
    check_parse(&(struct pcase){"[\"\\u00e9\"]", 0, 1, "string longer than 4 bytes"}, &four);

    /* the default is 65536 bytes */
    size_t n = 65536 + 2;
    char *big = malloc(n + 1);
    memset(big, 'a', n);
    big[0] = big[n - 1] = '"';
    check_parse(&(struct pcase){big, n, 0, NULL}, NULL);
    big[n - 1] = 'a';
    big[n] = '"';
    check_parse(&(struct pcase){big, n + 1, 0, "string longer than 65536 bytes"}, NULL);
    free(big);
}

/* Input through the writer: what comes out. */
static const struct {
    const char *in, *out;
} write_cases[] = {
    {" { \"a\" : [ 1 , 2 ] , \"b\" : { } , \"c\" : [ ] } ", "{\"a\":[1,2],\"b\":{},\"c\":[]}"},
    {"{\"z\":1,\"a\":2,\"m\":3}", "{\"z\":1,\"a\":2,\"m\":3}"},
    {"[0, -0, 1.0, 1e2, -12, 999999999999999, 1e15, 0.1, 0.30000000000000004, 18.4, 1e-7, 1.5e300]",
     "[0,0,1,100,-12,999999999999999,1e+15,0.1,0.30000000000000004,18.4,1e-07,1.5e+300]"},
    {"[true,false,null]", "[true,false,null]"},
    {"\"caf\\u00e9 \\\" \\\\ \\/ \\n \\t \\u001f \\ud83d\\ude00\"",
     "\"caf\xc3\xa9 \\\" \\\\ / \\n \\t \\u001f \xf0\x9f\x98\x80\""},
    {"{\"\\n\":\"\"}", "{\"\\n\":\"\"}"},
};

static void test_write(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof write_cases / sizeof write_cases[0]; i++) {
        cJSON *root = NULL, *again = NULL;
        struct xd_buf b, b2;
        xd_buf_init(&b);
        xd_buf_init(&b2);
        const char *in = write_cases[i].in;
        assert_int_equal(xd_json_parse(in, strlen(in), NULL, &root, NULL), 0);
        assert_int_equal(xd_json_write(&b, root), 0);
        assert_string_equal(xd_buf_str(&b), write_cases[i].out);
        /* the output reads back to the same output */
        assert_int_equal(xd_json_parse(b.data, b.len, NULL, &again, NULL), 0);
        assert_int_equal(xd_json_write(&b2, again), 0);
        assert_string_equal(xd_buf_str(&b2), xd_buf_str(&b));
        cJSON_Delete(again);
        cJSON_Delete(root);
        xd_buf_dispose(&b);
        xd_buf_dispose(&b2);
    }
}

static uint64_t xorshift(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* What the writer must print for d: %.15g when it reads back exactly, else %.17g. */
static void reference_number(char *out, size_t n, double d)
{
    snprintf(out, n, "%.15g", d);
    if (strtod(out, NULL) != d)
        snprintf(out, n, "%.17g", d);
}

/*
 * The writer's fast paths for integers and short decimals print exactly what
 * the printf way would, over decimals with up to 9 places, random bit
 * patterns and the edges of each path.
 */
static void test_write_numbers(void **state)
{
    (void)state;
    static const double edges[] = {
        1e-4,     9.9999e-5, 0.1,         0.2 + 0.1, 1.1,
        18.4,     -18.4,     999999999.5, 1e9 + 0.5, 123456.654321,
        1e15 - 1, 1e15,      1e15 + 2,    5e-324,    1.7976931348623157e308,
        1e-7};
    static const double pow10[] = {1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9};
    uint64_t seed = 42;
    char want[40];
    struct xd_buf b;
    xd_buf_init(&b);
    for (int i = 0; i < 400000; i++) {
        double d;
        if (i < (int)(sizeof edges / sizeof edges[0])) {
            d = edges[i];
        } else if (i % 2) {
            uint64_t r = xorshift(&seed);
            d = (double)(int64_t)(r % 2000000000000ull - 1000000000000ull) / pow10[r >> 60 & 7];
            d /= pow10[(r >> 56) % 3];
        } else {
            uint64_t bits = xorshift(&seed);
            memcpy(&d, &bits, sizeof d);
            if (!isfinite(d))
                continue;
        }
        if (d == 0)
            continue; /* -0 is written as 0 on purpose */
        cJSON *num = cJSON_CreateNumber(d);
        xd_buf_reset(&b);
        assert_int_equal(xd_json_write(&b, num), 0);
        reference_number(want, sizeof want, d);
        if (strcmp(xd_buf_str(&b), want) != 0)
            fail_msg("%.17g: wrote %s, expected %s", d, xd_buf_str(&b), want);
        cJSON_Delete(num);
    }
    xd_buf_dispose(&b);
}

/* Runs one input through xd_json_parse; 1 when accepted. */
static int differential_one(const char *in, size_t len)
{
    char *exact = malloc(len ? len : 1);
    cJSON *root = NULL;
    struct xd_json_error err;
    assert_non_null(exact);
    memcpy(exact, in, len);
    int rc = xd_json_parse(exact, len, NULL, &root, &err);
    /* XD_ENOMEM here would mean: the pass accepted what cJSON refused. */
    if (rc != 0 && rc != XD_EPARSE)
        fail_msg("'%.*s': %s", (int)len, in, xd_strerror(rc));
    if (rc < 0)
        assert_true(err.offset <= len);
    cJSON_Delete(root);
    free(exact);
    return rc == 0;
}

/*
 * Random inputs: whatever the pass accepts, cJSON must build the same way
 * (consuming all of it), and nothing may read out of bounds. Two generators:
 * short strings over JSON's alphabet, and small mutations (replace, delete,
 * duplicate a byte) of valid documents. Deterministic (fixed seed).
 */
static void test_differential(void **state)
{
    (void)state;
    static const char alphabet[] = "{}[]{}[],,::\"\"\"\\u0e1-+.eE tfnrlsa\xc3\xa9\x80\xed\xa0";
    static const char *const seeds[] = {
        "{\"a\":[1,-2.5e+3,true,false,null,\"x\\u00e9\\n\"],\"b\":{\"c\":{}}}",
        "[0,-0.0,1E9,\"\\ud83d\\ude00\",[],[[\"\xc3\xa9\"]]]",
        "{\"event_id\":\"e-1\",\"data\":{\"lines\":[{\"sku\":\"A\",\"qty\":12.5}]}}",
    };
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    unsigned accepted = 0, mutated_ok = 0;
    char buf[128];
    for (int iter = 0; iter < 200000; iter++) {
        size_t len = 1 + xorshift(&seed) % 24;
        for (size_t i = 0; i < len; i++)
            buf[i] = alphabet[xorshift(&seed) % (sizeof alphabet - 1)];
        accepted += (unsigned)differential_one(buf, len);
    }
    for (int iter = 0; iter < 200000; iter++) {
        const char *doc = seeds[iter % 3];
        size_t len = strlen(doc);
        memcpy(buf, doc, len);
        for (int m = 0; m < 1 + iter % 3; m++) {
            uint64_t r = xorshift(&seed);
            size_t at = r % len;
            char c = alphabet[(r >> 32) % (sizeof alphabet - 1)];
            if (r >> 62 == 0 && len > 1) { /* delete */
                memmove(buf + at, buf + at + 1, len - at - 1);
                len--;
            } else if (r >> 62 == 1 && len < sizeof buf) { /* duplicate */
                memmove(buf + at + 1, buf + at, len - at);
                len++;
            } else {
                buf[at] = c;
            }
        }
        mutated_ok += (unsigned)differential_one(buf, len);
    }
    /* The generators must produce valid documents for the check to mean anything. */
    assert_true(accepted > 100);
    assert_true(mutated_ok > 1000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_cases),  cmocka_unit_test(test_parse_tree),
        cmocka_unit_test(test_depth_limit),  cmocka_unit_test(test_string_limit),
        cmocka_unit_test(test_write),        cmocka_unit_test(test_write_numbers),
        cmocka_unit_test(test_differential),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
