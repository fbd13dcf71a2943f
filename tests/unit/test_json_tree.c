/*
 * The tree xd_json_parse() builds (formats/json.h) against the one cJSON
 * builds from the same bytes: node by node, the same type, key, string,
 * valueint and bit-identical valuedouble, the same sibling links (including
 * cJSON's first-child prev pointing at the last child). Hand-picked numbers
 * and escapes first, then every document the random generators of
 * test_json.c produce that the parser accepts; then running out of memory
 * at every allocation in turn.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "formats/json.h"

static void same_tree(const cJSON *a, const cJSON *b, const char *in, size_t len)
{
    if (!a || !b) {
        if (a != b)
            fail_msg("'%.*s': one tree has a node the other lacks", (int)len, in);
        return;
    }
    if (a->type != b->type || a->valueint != b->valueint ||
        memcmp(&a->valuedouble, &b->valuedouble, sizeof a->valuedouble) != 0 ||
        !a->valuestring != !b->valuestring ||
        (a->valuestring && strcmp(a->valuestring, b->valuestring) != 0) ||
        !a->string != !b->string || (a->string && strcmp(a->string, b->string) != 0))
        fail_msg("'%.*s': nodes differ (type %d/%d, number %.17g/%.17g, string '%s'/'%s', "
                 "key '%s'/'%s')",
                 (int)len, in, a->type, b->type, a->valuedouble, b->valuedouble,
                 a->valuestring ? a->valuestring : "-", b->valuestring ? b->valuestring : "-",
                 a->string ? a->string : "-", b->string ? b->string : "-");
    const cJSON *ca = a->child, *cb = b->child;
    if (ca && (!cb || (ca->prev == ca) != (cb->prev == cb)))
        fail_msg("'%.*s': first child's prev differs", (int)len, in);
    for (; ca || cb; ca = ca ? ca->next : NULL, cb = cb ? cb->next : NULL) {
        same_tree(ca, cb, in, len);
        if (ca && cb && ca->next && ca->next->prev != ca)
            fail_msg("'%.*s': prev link broken", (int)len, in);
        if (ca && !ca->next && a->child->prev != ca)
            fail_msg("'%.*s': first child's prev is not the last child", (int)len, in);
    }
}

/* 1 when xd_json_parse accepted in (and then the trees were compared). */
static int compare_one(const char *in, size_t len)
{
    char *exact = malloc(len ? len : 1); /* no NUL after it: ASan sees over-reads */
    cJSON *ours = NULL;
    struct xd_json_error err;
    assert_non_null(exact);
    memcpy(exact, in, len);
    int rc = xd_json_parse(exact, len, NULL, &ours, &err);
    if (rc != 0 && rc != XD_EPARSE)
        fail_msg("'%.*s': %s", (int)len, in, xd_strerror(rc));
    if (rc == 0) {
        const char *end = NULL;
        cJSON *theirs = cJSON_ParseWithLengthOpts(exact, len, &end, 0);
        if (!theirs)
            fail_msg("'%.*s': cJSON refused what we accepted", (int)len, in);
        same_tree(ours, theirs, in, len);
        cJSON_Delete(theirs);
    }
    cJSON_Delete(ours);
    free(exact);
    return rc == 0;
}

static void test_hand_cases(void **state)
{
    (void)state;
    static const char *const cases[] = {
        "0", "-0", "-0.0", "1", "-1", "12", "4.5", "18.4", "0.1", "0.05", "100.25",
        "0.30000000000000004", "123456789012345", "1234567890123456", "12345678901234567890",
        "9007199254740993", "1234567890.12345", "0.0000000000000000000001",
        "0.00000000000000000000001", "1.00000000000000000000000", "1e2", "1E-3", "-2.5e+3",
        "1.7976931348623157e308", "5e-324", "2147483647", "2147483648", "-2147483648",
        "-2147483649", "3000000000.5", "0.000001", "999999999999999", "99999999999999.99",
        "\"\"", "\"plain\"", "\"a\\/b\\\\c\\\"d\"", "\"\\b\\f\\n\\r\\t\"", "\"caf\\u00e9\"",
        "\"\\u20ac \\u0041\\u07ff\\u0800\\uffff\"", "\"\\ud83d\\ude00 \\udbff\\udfff\"",
        "\"\xc3\xa9t\xc3\xa9 \xe2\x98\x83 \xf0\x9f\x98\x80\"", "true", "false", "null", "[]",
        "{}", " [ ] ", "[1]", "[1,2,3]", "{\"a\":1}", "{\"\":\"\",\"a\\u0062\":[{}]}",
        "\xef\xbb\xbf{\"bom\":true}", " \t\r\n{ \"a\" : [ 1 , { \"b\" : null } ] } \n",
        "[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]",
        "{\"event_id\":\"e-1\",\"data\":{\"lines\":[{\"sku\":\"A\",\"qty\":12.5}]}}",
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        if (!compare_one(cases[i], strlen(cases[i])))
            fail_msg("'%s' was refused", cases[i]);
}

static uint64_t xorshift(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Random documents over JSON's alphabet and mutations of valid ones (as test_json.c). */
static void test_random(void **state)
{
    (void)state;
    static const char alphabet[] = "{}[]{}[],,::\"\"\"\\u0e1-+.eE tfnrlsa\xc3\xa9\x80\xed\xa0";
    static const char *const seeds[] = {
        "{\"a\":[1,-2.5e+3,true,false,null,\"x\\u00e9\\n\"],\"b\":{\"c\":{}}}",
        "[0,-0.0,1E9,\"\\ud83d\\ude00\",[],[[\"\xc3\xa9\"]]]",
        "{\"event_id\":\"e-1\",\"data\":{\"lines\":[{\"sku\":\"A\",\"qty\":12.5}]}}",
        "[0.1,22.75,1e-7,123456.789,-0.5,\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"]",
    };
    uint64_t seed = 0x2545f4914f6cdd1dull;
    unsigned accepted = 0, mutated_ok = 0;
    char buf[128];
    for (int iter = 0; iter < 100000; iter++) {
        size_t len = 1 + xorshift(&seed) % 24;
        for (size_t i = 0; i < len; i++)
            buf[i] = alphabet[xorshift(&seed) % (sizeof alphabet - 1)];
        accepted += (unsigned)compare_one(buf, len);
    }
    for (int iter = 0; iter < 200000; iter++) {
        const char *doc = seeds[iter % 4];
        size_t len = strlen(doc);
        memcpy(buf, doc, len);
        for (int m = 0; m < 1 + iter % 3; m++) {
            uint64_t r = xorshift(&seed);
            size_t at = r % len;
            char c = alphabet[(r >> 32) % (sizeof alphabet - 1)];
            if (r >> 62 == 0 && len > 1) {
                memmove(buf + at, buf + at + 1, len - at - 1);
                len--;
            } else if (r >> 62 == 1 && len < sizeof buf) {
                memmove(buf + at + 1, buf + at, len - at);
                len++;
            } else {
                buf[at] = c;
            }
        }
        mutated_ok += (unsigned)compare_one(buf, len);
    }
    assert_true(accepted > 100);
    assert_true(mutated_ok > 1000);
}

/* Random numbers of every shape the fast path takes or leaves to strtod(). */
static void test_random_numbers(void **state)
{
    (void)state;
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    char buf[64];
    for (int iter = 0; iter < 200000; iter++) {
        uint64_t r = xorshift(&seed);
        int intd = 1 + (int)(r % 18), fracd = (int)((r >> 8) % 25), exp = (r >> 16) % 4 == 0;
        size_t n = 0;
        if (r >> 63)
            buf[n++] = '-';
        for (int i = 0; i < intd; i++) {
            char d = (char)('0' + xorshift(&seed) % 10);
            buf[n++] = i == 0 && intd > 1 && d == '0' ? '1' : d;
        }
        if (fracd) {
            buf[n++] = '.';
            for (int i = 0; i < fracd; i++)
                buf[n++] = (char)('0' + xorshift(&seed) % 10);
        }
        if (exp)
            n += (size_t)snprintf(buf + n, sizeof buf - n, "e%d", (int)(xorshift(&seed) % 40) - 20);
        if (!compare_one(buf, n))
            fail_msg("'%.*s' was refused", (int)n, buf);
    }
}

/* Allocations that fail after a countdown (cJSON's hooks, as test_x12.c does). */
static int allocs_left;

static void *failing_malloc(size_t n)
{
    if (allocs_left == 0)
        return NULL;
    allocs_left--;
    return malloc(n);
}

/*
 * Out of memory at every allocation in turn: XD_ENOMEM, "out of memory",
 * nothing returned and (under LeakSanitizer) nothing leaked, until there is
 * enough and the tree is cJSON's. A syntax error after the part built so
 * far still deletes that part.
 */
static void test_out_of_memory(void **state)
{
    (void)state;
    static const char doc[] = "{\"a\":[1,\"x\\n\",{\"b\":null}],\"c\":true,\"d\":\"caf\u00e9\"}";
    cJSON_Hooks hooks = {.malloc_fn = failing_malloc, .free_fn = free};
    int ok = 0;
    cJSON_InitHooks(&hooks);
    for (int k = 0; k < 100 && !ok; k++) {
        cJSON *root = (cJSON *)1;
        struct xd_json_error err;
        allocs_left = k;
        int rc = xd_json_parse(doc, sizeof doc - 1, NULL, &root, &err);
        if (rc == 0) {
            ok = 1;
            cJSON_Delete(root);
            break;
        }
        assert_int_equal(rc, XD_ENOMEM);
        assert_string_equal(err.message, "out of memory");
        assert_null(root);
    }
    allocs_left = 1000;
    cJSON *root = (cJSON *)1;
    struct xd_json_error err;
    static const char bad[] = "{\"a\":[1,\"x\",{\"b\":null}],\"c\":tru}";
    assert_int_equal(xd_json_parse(bad, sizeof bad - 1, NULL, &root, &err), XD_EPARSE);
    assert_null(root);
    cJSON_InitHooks(NULL);
    assert_true(ok);
    assert_true(compare_one(doc, sizeof doc - 1));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hand_cases),
        cmocka_unit_test(test_random),
        cmocka_unit_test(test_random_numbers),
        cmocka_unit_test(test_out_of_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
