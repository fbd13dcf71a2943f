/*
 * The audit log's hash chain (audit/chain.h): the canonical bytes and the
 * hash of an entry against vectors computed independently (Python's
 * hashlib over the documented encoding), the verifier against every kind of
 * tampering (edit, deletion, reordering, truncation with and without an
 * anchor), the store's append and read-back on a real SQLite file, and the
 * secret scrubber (core/redact.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "audit/chain.h"
#include "core/buf.h"
#include "core/config.h"
#include "core/err.h"
#include "core/redact.h"
#include "store/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- vectors ---- */

static const char *const canon1 =
    "crossdock-audit-v1\n1\n1764338591000\n8:ops-team\n16:exception.update\n"
    "16:/v1/exceptions/7\n20:{\"state\":\"resolved\"}\n";
static const char *const hash1 = "351638becc539d8a8a8d1b2054f11b46a89f6d8ed516b841b7a830a1ac9542c5";
static const char *const hash2 = "0a19df2ecb72162a4820523ce28c8ee46f71e910352ef2fbe185848f11453ba3";

static struct xd_audit_entry entry(int64_t seq, int64_t at, const char *actor, const char *action,
                                   const char *object, const char *detail)
{
    struct xd_audit_entry e;
    memset(&e, 0, sizeof e);
    e.seq = seq;
    e.at_ms = at;
    e.actor = (char *)actor;
    e.action = (char *)action;
    e.object = (char *)object;
    e.detail = (char *)detail;
    return e;
}

static void test_canonical_and_hash_vectors(void **state)
{
    (void)state;
    struct xd_audit_entry e = entry(1, 1764338591000, "ops-team", "exception.update",
                                    "/v1/exceptions/7", "{\"state\":\"resolved\"}");
    struct xd_buf b;
    xd_buf_init(&b);
    assert_int_equal(xd_audit_canonical(&e, &b), 0);
    assert_string_equal(xd_buf_str(&b), canon1);
    xd_buf_dispose(&b);

    char hex[65];
    assert_int_equal(xd_audit_hash(&e, e.hash), 0);
    xd_audit_hex(e.hash, hex);
    assert_string_equal(hex, hash1);

    struct xd_audit_entry e2 = entry(2, 1764338592000, "local:root", "config.load", "", "{}");
    memcpy(e2.prev, e.hash, sizeof e.hash);
    assert_int_equal(xd_audit_hash(&e2, e2.hash), 0);
    xd_audit_hex(e2.hash, hex);
    assert_string_equal(hex, hash2);

    unsigned char back[32];
    assert_int_equal(xd_audit_unhex(hash2, back), 0);
    assert_memory_equal(back, e2.hash, 32);
    assert_int_equal(xd_audit_unhex("abc", back), -1);
    assert_int_equal(
        xd_audit_unhex("zz19df2ecb72162a4820523ce28c8ee46f71e910352ef2fbe185848f11453ba3", back),
        -1);
}

/* Length prefixes: moving bytes from one field to the next changes the hash. */
static void test_fields_are_unambiguous(void **state)
{
    (void)state;
    struct xd_audit_entry a = entry(1, 5, "ab", "c", "", "{}");
    struct xd_audit_entry b = entry(1, 5, "a", "bc", "", "{}");
    assert_int_equal(xd_audit_hash(&a, a.hash), 0);
    assert_int_equal(xd_audit_hash(&b, b.hash), 0);
    assert_memory_not_equal(a.hash, b.hash, 32);
}

/* ---- the verifier ---- */

#define N 6
static char details[N][32];

/* A valid chain of N entries, seq 1..N. */
static void make_chain(struct xd_audit_entry *c)
{
    for (int i = 0; i < N; i++) {
        snprintf(details[i], sizeof details[i], "{\"n\":%d}", i + 1);
        c[i] =
            entry(i + 1, 1000 + i, "ops", "delivery.replay", "/v1/deliveries/1/replay", details[i]);
        if (i)
            memcpy(c[i].prev, c[i - 1].hash, 32);
        assert_int_equal(xd_audit_hash(&c[i], c[i].hash), 0);
    }
}

/* Feeds rows in the order given; returns the first bad seq (0: intact). */
static int64_t run(struct xd_audit_entry *rows, size_t n, struct xd_audit_verifier *v)
{
    for (size_t i = 0; i < n; i++)
        xd_audit_verify_next(v, &rows[i]);
    xd_audit_verify_end(v);
    return v->bad_seq;
}

static int64_t verify_rows(struct xd_audit_entry *rows, size_t n)
{
    struct xd_audit_verifier v;
    xd_audit_verify_init(&v);
    return run(rows, n, &v);
}

static void test_intact_chain(void **state)
{
    (void)state;
    struct xd_audit_entry c[N];
    make_chain(c);
    struct xd_audit_verifier v;
    xd_audit_verify_init(&v);
    assert_int_equal(run(c, N, &v), 0);
    assert_int_equal(v.n, N);
    assert_int_equal(v.last_seq, N);
    assert_memory_equal(v.last, c[N - 1].hash, 32);
    assert_int_equal(verify_rows(c, 0), 0); /* an empty log is intact */
}

static void test_edit_is_detected(void **state)
{
    (void)state;
    /* Each field of entry 3 edited in turn: entry 3 is named. */
    for (int field = 0; field < 6; field++) {
        struct xd_audit_entry c[N];
        make_chain(c);
        switch (field) {
        case 0:
            c[2].detail = "{\"n\":99}";
            break;
        case 1:
            c[2].actor = "someone-else";
            break;
        case 2:
            c[2].action = "exception.update";
            break;
        case 3:
            c[2].object = "/v1/deliveries/2/replay";
            break;
        case 4:
            c[2].at_ms += 1;
            break;
        case 5:
            c[2].hash[0] ^= 1;
            break;
        }
        struct xd_audit_verifier v;
        xd_audit_verify_init(&v);
        assert_int_equal(run(c, N, &v), 3);
        assert_non_null(strstr(v.why, "edited"));
    }
    /* Edited and re-hashed: the next entry no longer follows it. */
    struct xd_audit_entry c[N];
    make_chain(c);
    c[2].detail = "{\"n\":99}";
    xd_audit_hash(&c[2], c[2].hash);
    struct xd_audit_verifier v;
    xd_audit_verify_init(&v);
    assert_int_equal(run(c, N, &v), 4);
    assert_non_null(strstr(v.why, "does not follow entry 3"));
}

static void test_deletion_is_detected(void **state)
{
    (void)state;
    struct xd_audit_entry c[N], rows[N];
    make_chain(c);
    /* Entry 3 deleted: named as missing. */
    memcpy(rows, c, 2 * sizeof c[0]);
    memcpy(rows + 2, c + 3, (N - 3) * sizeof c[0]);
    struct xd_audit_verifier v;
    xd_audit_verify_init(&v);
    assert_int_equal(run(rows, N - 1, &v), 3);
    assert_non_null(strstr(v.why, "missing"));
    /* The first entry deleted. */
    assert_int_equal(verify_rows(c + 1, N - 1), 1);
    /* Deleted and the rest renumbered and re-hashed from there: the link breaks. */
    make_chain(c);
    memcpy(rows, c, 2 * sizeof c[0]);
    memcpy(rows + 2, c + 3, (N - 3) * sizeof c[0]);
    for (int i = 2; i < N - 1; i++) {
        rows[i].seq = i + 1;
        xd_audit_hash(&rows[i], rows[i].hash);
    }
    assert_int_equal(verify_rows(rows, N - 1), 3);
}

static void test_reordering_is_detected(void **state)
{
    (void)state;
    struct xd_audit_entry c[N];
    make_chain(c);
    /* Rows 2 and 3 swapped, each keeping its seq: seen as 3 then 2. */
    struct xd_audit_entry t = c[1];
    c[1] = c[2];
    c[2] = t;
    assert_int_equal(verify_rows(c, N), 2);
    /* Contents swapped, positions kept (seq rewritten): entry 2 is named. */
    make_chain(c);
    t = c[1];
    c[1] = c[2];
    c[2] = t;
    c[1].seq = 2;
    c[2].seq = 3;
    struct xd_audit_verifier v;
    xd_audit_verify_init(&v);
    assert_int_equal(run(c, N, &v), 2);
    assert_non_null(strstr(v.why, "does not follow entry 1"));
}

static void test_truncation_needs_an_anchor(void **state)
{
    (void)state;
    struct xd_audit_entry c[N];
    make_chain(c);
    /* Without an anchor, a chain cut short is still a valid chain. */
    assert_int_equal(verify_rows(c, N - 2), 0);
    /* With the head recorded before the cut, the cut is found. */
    struct xd_audit_verifier v;
    xd_audit_verify_init(&v);
    v.anchor_seq = N;
    memcpy(v.anchor, c[N - 1].hash, 32);
    assert_int_equal(run(c, N - 2, &v), N);
    assert_non_null(strstr(v.why, "removed from the end"));
    /* And the anchor passes on the whole chain. */
    xd_audit_verify_init(&v);
    v.anchor_seq = N;
    memcpy(v.anchor, c[N - 1].hash, 32);
    assert_int_equal(run(c, N, &v), 0);
    /* A chain rewritten whole (every hash recomputed) differs from the anchor. */
    c[0].detail = "{\"n\":0}";
    for (int i = 0; i < N; i++) {
        if (i)
            memcpy(c[i].prev, c[i - 1].hash, 32);
        xd_audit_hash(&c[i], c[i].hash);
    }
    assert_int_equal(verify_rows(c, N), 0); /* valid as a chain ... */
    xd_audit_verify_init(&v);
    v.anchor_seq = 2;
    struct xd_audit_entry orig[N];
    make_chain(orig);
    memcpy(v.anchor, orig[1].hash, 32);
    assert_int_equal(run(c, N, &v), 2); /* ... but not the one anchored */
}

/* ---- through the store ---- */

struct collect {
    struct xd_audit_verifier v;
    int n;
    char actors[8][32];
};

static void collect(void *ctx, struct xd_audit_entry *e)
{
    struct collect *c = ctx;
    if (c->n < 8)
        snprintf(c->actors[c->n], sizeof c->actors[0], "%s", e->actor);
    c->n++;
    xd_audit_verify_next(&c->v, e);
    xd_audit_entry_dispose(e);
}

static void test_store_append_and_read(void **state)
{
    (void)state;
    char dir[] = "/tmp/xd-audit-XXXXXX", path[64];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/a.db", dir);
    struct xd_config *cfg = xd_config_default();
    assert_non_null(cfg);
    free(cfg->store.path);
    cfg->store.path = strdup(path);
    struct xd_store *s = NULL;
    assert_int_equal(xd_store_open(cfg, &s, NULL), 0);

    struct xd_audit_entry head;
    assert_int_equal(xd_store_audit_head(s, &head), XD_ENOTFOUND);
    struct xd_audit_entry out[3];
    const char *actors[3] = {"ops", "local:root", "anonymous"};
    for (int i = 0; i < 3; i++) {
        memset(&out[i], 0, sizeof out[i]);
        assert_int_equal(
            xd_store_audit_append(s, actors[i], "delivery.replay", "/x", "{\"ok\":true}", &out[i]),
            0);
        assert_int_equal(out[i].seq, i + 1);
        if (i)
            assert_memory_equal(out[i].prev, out[i - 1].hash, 32);
    }
    assert_int_equal(xd_store_audit_append(s, "", "x", NULL, NULL, NULL), XD_EINVAL);
    assert_int_equal(xd_store_audit_head(s, &head), 0);
    assert_int_equal(head.seq, 3);
    assert_memory_equal(head.hash, out[2].hash, 32);

    struct collect c = {.n = 0};
    xd_audit_verify_init(&c.v);
    assert_int_equal(xd_store_list_audit(s, 0, 0, collect, &c), 3);
    assert_int_equal(xd_audit_verify_end(&c.v), 0);
    assert_string_equal(c.actors[1], "local:root");
    /* Paging. */
    struct collect p = {.n = 0};
    xd_audit_verify_init(&p.v);
    assert_int_equal(xd_store_list_audit(s, 1, 1, collect, &p), 1);
    assert_string_equal(p.actors[0], "local:root");

    xd_store_close(s);
    xd_config_destroy(cfg);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

/* ---- redaction ---- */

static void test_redact(void **state)
{
    (void)state;
    xd_redact_add("tok-SECRET-1");
    xd_redact_add("abc"); /* too short: not registered */
    xd_redact_add(NULL);
    xd_redact_add("tok-SECRET-1"); /* twice: once */
    char s[128] = "HTTP 401: bad token tok-SECRET-1 (tok-SECRET-1) abc";
    assert_int_equal(xd_redact_str(s), 2);
    assert_string_equal(s, "HTTP 401: bad token *** (***) abc");
    char t[] = "tok-SECRET-1";
    assert_int_equal(xd_redact_str(t), 1);
    assert_string_equal(t, "***");
    char u[] = "nothing here";
    assert_int_equal(xd_redact_str(u), 0);
    assert_string_equal(u, "nothing here");
    /* A buffer without NUL, by length. */
    char raw[] = {'x', 't', 'o', 'k', '-', 'S', 'E', 'C', 'R', 'E', 'T', '-', '1', 'y'};
    size_t n = sizeof raw;
    assert_int_equal(xd_redact(raw, &n), 1);
    assert_int_equal(n, 5);
    assert_memory_equal(raw, "x***y", 5);
    /* Header values are registered when the name says they carry a credential. */
    xd_redact_add_header("X-Api-Key", "hdr-value-1");
    xd_redact_add_header("X-Request-Source", "plain-value-1");
    char h[] = "hdr-value-1 plain-value-1";
    assert_int_equal(xd_redact_str(h), 1);
    assert_string_equal(h, "*** plain-value-1");
}

/* Rotating tokens: the most recent XD_REDACT_RING are scrubbed, older ones dropped. */
static void test_redact_rotating(void **state)
{
    (void)state;
    char tok[32], text[64];
    for (int i = 0; i < XD_REDACT_RING + 8; i++) {
        snprintf(tok, sizeof tok, "oauth-token-%03d", i);
        xd_redact_add_rotating(tok);
    }
    for (int i = 0; i < XD_REDACT_RING + 8; i++) {
        snprintf(text, sizeof text, "Bearer oauth-token-%03d.", i);
        size_t n = xd_redact_str(text);
        if (i < 8) {
            assert_int_equal(n, 0);
        } else {
            assert_int_equal(n, 1);
            assert_string_equal(text, "Bearer ***.");
        }
    }
    /* A fixed value is never dropped by rotation. */
    char t[] = "x tok-SECRET-1 y";
    assert_int_equal(xd_redact_str(t), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_canonical_and_hash_vectors),
        cmocka_unit_test(test_fields_are_unambiguous),
        cmocka_unit_test(test_intact_chain),
        cmocka_unit_test(test_edit_is_detected),
        cmocka_unit_test(test_deletion_is_detected),
        cmocka_unit_test(test_reordering_is_detected),
        cmocka_unit_test(test_truncation_needs_an_anchor),
        cmocka_unit_test(test_store_append_and_read),
        cmocka_unit_test(test_redact),
        cmocka_unit_test(test_redact_rotating),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
