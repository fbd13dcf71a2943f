/*
 * The API key file parser (core/keyfile.h) as a table: each row is a file's
 * text and either the keys it gives or the problem named, with its line.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/buf.h"
#include "core/config.h"
#include "core/err.h"
#include "core/keyfile.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

/* A hashed secret is written as H and 64 hex digits (here: SHA-256 of "test"). */
#define H "sha256:"

static const struct good {
    const char *text;
    size_t n;
    const char *id0;
    unsigned scopes0;
    unsigned rate0;
    int secret0; /* the first key has its secret (not only the hash) */
} goods[] = {
    {"", 0, NULL, 0, 0, 0},
    {"# only a comment\n\n   \n\t# another\n", 0, NULL, 0, 0, 0},
    {"wms events:write 0123456789abcdef-key\n", 1, "wms", XD_SCOPE_EVENTS_WRITE, 0, 1},
    {"wms\tevents:write,read\t0123456789abcdef-key\trate_limit=25", 1, "wms",
     XD_SCOPE_EVENTS_WRITE | XD_SCOPE_READ, 25, 1},
    {"  a.b:c-d_e   admin   " H
     "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\r\n"
     "a.b:c-d_e ops 0123456789abcdef-key\n",
     2, "a.b:c-d_e", XD_SCOPE_ADMIN, 0, 0},
};

static const struct bad {
    const char *text;
    const char *problem; /* a substring of the one message, "f:LINE: ..." */
} bads[] = {
    {"wms events:write\n", "f:1: expected 'ID SCOPES SECRET [rate_limit=N]', found 2 fields"},
    {"\nwms events:write k0123456789abcdef rate_limit=1 extra\n", "f:2: expected 'ID"},
    {"wms write 0123456789abcdef-key\n", "f:1: scopes: must be events:write, read, ops or admin"},
    {"wms events:write, 0123456789abcdef-key\n", "f:1: scopes:"},
    {"w/s read 0123456789abcdef-key\n", "f:1: id: must be"},
    {"wms read short\n", "f:1: secret: shorter than 16 characters"},
    {"wms read sha256:abcd\n", "f:1: secret: sha256: must be followed by 64 hex digits"},
    {"wms read " H "zz86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\n",
     "f:1: secret: sha256: must be followed by 64 hex digits"},
    {"wms read 0123456789abcdef-key rate=5\n", "f:1: expected rate_limit=N"},
    {"wms read 0123456789abcdef-key rate_limit=-1\n", "f:1: expected rate_limit=N"},
    {"wms read 0123456789abcdef-key rate_limit=99999999999\n", "f:1: expected rate_limit=N"},
    {"wms read 0123456789abcdef\x01key\n", "f:1: contains control characters"},
};

static void test_good(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof goods / sizeof goods[0]; i++) {
        const struct good *g = &goods[i];
        struct xd_keyfile_entry *e = NULL;
        size_t n = 99;
        struct xd_buf errs;
        xd_buf_init(&errs);
        int rc = xd_keyfile_parse("f", g->text, strlen(g->text), &e, &n, &errs);
        if (rc != 0)
            fail_msg("row %zu: %s", i, xd_buf_str(&errs));
        assert_int_equal(n, g->n);
        if (n) {
            assert_string_equal(e[0].id, g->id0);
            assert_int_equal(e[0].scopes, g->scopes0);
            assert_int_equal(e[0].rate_limit, g->rate0);
            assert_int_equal(e[0].secret != NULL, g->secret0);
        }
        xd_keyfile_free(e, n);
        xd_buf_dispose(&errs);
    }
}

/* A plain secret and its sha256: line give the same hash: rotation between forms works. */
static void test_hash_of_plain_secret(void **state)
{
    (void)state;
    unsigned char d[32];
    unsigned int len = 0;
    const char *key = "0123456789abcdef-key";
    EVP_Digest(key, strlen(key), d, &len, EVP_sha256(), NULL);
    char text[200];
    int o = snprintf(text, sizeof text, "a read %s\nb read sha256:", key);
    for (int i = 0; i < 32; i++)
        o += snprintf(text + o, sizeof text - (size_t)o, "%02x", d[i]);
    struct xd_keyfile_entry *e = NULL;
    size_t n = 0;
    assert_int_equal(xd_keyfile_parse("f", text, strlen(text), &e, &n, NULL), 0);
    assert_int_equal(n, 2);
    assert_memory_equal(e[0].sha256, d, 32);
    assert_memory_equal(e[1].sha256, d, 32);
    assert_null(e[1].secret);
    xd_keyfile_free(e, n);
}

static void test_bad(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof bads / sizeof bads[0]; i++) {
        const struct bad *b = &bads[i];
        struct xd_keyfile_entry *e = (void *)1;
        size_t n = 99;
        struct xd_buf errs;
        xd_buf_init(&errs);
        int rc = xd_keyfile_parse("f", b->text, strlen(b->text), &e, &n, &errs);
        assert_int_equal(rc, XD_ECONFIG);
        assert_null(e);
        assert_int_equal(n, 0);
        if (!strstr(xd_buf_str(&errs), b->problem))
            fail_msg("row %zu: want '%s', got '%s'", i, b->problem, xd_buf_str(&errs));
        xd_buf_dispose(&errs);
    }
}

/* A NUL inside the file is named, never read past; every bad line is listed. */
static void test_nul_and_many(void **state)
{
    (void)state;
    static const char text[] = "a read 0123456789abcdef-key\nb\0c read x\nd\ne\n";
    struct xd_keyfile_entry *e = NULL;
    size_t n = 0;
    struct xd_buf errs;
    xd_buf_init(&errs);
    assert_int_equal(xd_keyfile_parse("f", text, sizeof text - 1, &e, &n, &errs), XD_ECONFIG);
    assert_non_null(strstr(xd_buf_str(&errs), "f:2: contains a NUL byte"));
    assert_non_null(strstr(xd_buf_str(&errs), "f:3: expected"));
    assert_non_null(strstr(xd_buf_str(&errs), "f:4: expected"));
    xd_buf_dispose(&errs);
}

static void test_missing_file(void **state)
{
    (void)state;
    struct xd_keyfile_entry *e = NULL;
    size_t n = 0;
    struct xd_buf errs;
    xd_buf_init(&errs);
    assert_int_equal(xd_keyfile_load("/nonexistent/keys", &e, &n, &errs, NULL), XD_EIO);
    assert_non_null(strstr(xd_buf_str(&errs), "/nonexistent/keys: cannot open"));
    xd_buf_dispose(&errs);
    xd_buf_init(&errs);
    assert_int_equal(xd_keyfile_load("/tmp", &e, &n, &errs, NULL), XD_EIO);
    assert_non_null(strstr(xd_buf_str(&errs), "not a regular file"));
    xd_buf_dispose(&errs);
}

int main(void)
{
    static const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good),         cmocka_unit_test(test_hash_of_plain_secret),
        cmocka_unit_test(test_bad),          cmocka_unit_test(test_nul_and_many),
        cmocka_unit_test(test_missing_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
