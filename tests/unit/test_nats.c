/*
 * Unit tests of the NATS pieces that need no server: the `sources` and
 * `type: nats` target config (values, defaults, every error at its place),
 * and the one function that classifies a publish (deliver/nats_target.h).
 * The cluster itself is exercised by tests/integration/test_nats*.py.
 */
#include "core/buf.h"
#include "core/config.h"
#include "deliver/nats_target.h"

#include <nats/nats.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static struct xd_config *parse(const char *yaml, struct xd_buf *errs)
{
    return xd_config_parse("t.yaml", yaml, strlen(yaml), errs);
}

static void test_source_values_and_defaults(void **state)
{
    (void)state;
    static const char yaml[] =
        "sources:\n"
        "  - {name: wms, type: nats, servers: [nats://a:4222, 'tls://b:4222'], stream: WMS,\n"
        "     subject: wms.events.>, durable: hub, batch: 64, fetch_wait_ms: 250,\n"
        "     ack_wait_ms: 5000}\n"
        "  - {name: second, type: nats, stream: OTHER}\n"
        "targets:\n"
        "  bus: {type: nats, subject: out.events, servers: [nats://a:4222]}\n"
        "  one: {type: nats, subject: out.x, url: nats://c:4222}\n";
    struct xd_buf errs;
    xd_buf_init(&errs);
    struct xd_config *cfg = parse(yaml, &errs);
    if (!cfg)
        fail_msg("%s", xd_buf_str(&errs));
    assert_int_equal(cfg->nsources, 2);
    const struct xd_source *s = &cfg->sources[0];
    assert_string_equal(s->name, "wms");
    assert_string_equal(s->type, "nats");
    assert_int_equal(s->nservers, 2);
    assert_string_equal(s->servers[1], "tls://b:4222");
    assert_string_equal(s->stream, "WMS");
    assert_string_equal(s->subject, "wms.events.>");
    assert_string_equal(s->durable, "hub");
    assert_int_equal(s->batch, 64);
    assert_int_equal(s->fetch_wait_ms, 250);
    assert_int_equal(s->ack_wait_ms, 5000);
    s = &cfg->sources[1];
    assert_int_equal(s->nservers, 0); /* the connection uses nats://127.0.0.1:4222 */
    assert_null(s->subject);
    assert_string_equal(s->durable, "crossdock");
    assert_int_equal(s->batch, 256);
    assert_int_equal(s->fetch_wait_ms, 1000);
    assert_int_equal(s->ack_wait_ms, 30000);
    const struct xd_target *t = xd_config_target(cfg, "bus");
    assert_non_null(t);
    assert_int_equal(t->nservers, 1);
    assert_string_equal(t->subject, "out.events");
    xd_config_destroy(cfg);
    xd_buf_dispose(&errs);
}

struct err_case {
    const char *name;
    const char *yaml;
    const char *expect[8];
};

static const struct err_case err_cases[] = {
    {"a source needs a name, a type and a stream",
     "sources:\n"
     "  - {servers: [nats://a:4222]}\n",
     {"t.yaml:2:5: sources[0]: missing required key 'name'",
      "t.yaml:2:5: sources[0]: missing required key 'type'",
      "t.yaml:2:5: sources[0]: missing required key 'stream'"}},
    {"bad source values",
     "sources:\n"
     "  - {name: 'a b', type: kafka, servers: [http://x], stream: W.MS, durable: 'x>',\n"
     "     subject: 'a..b', batch: 0}\n",
     {"t.yaml:2:12: sources[0].name: must use only letters, digits, '_', '-' and '.', not 'a b'",
      "t.yaml:2:25: sources[0].type: must be nats, not 'kafka'",
      "t.yaml:2:42: sources[0].servers[0]: must be a NATS server URL, nats://host:4222 or "
      "tls://host:4222, not 'http://x'",
      "t.yaml:2:61: sources[0].stream: must not contain '.', '*', '>' or blanks (a JetStream "
      "name), not 'W.MS'",
      "t.yaml:2:76: sources[0].durable: must not contain '.', '*', '>' or blanks (a JetStream "
      "name), not 'x>'",
      "t.yaml:3:15: sources[0].subject: must be a NATS subject like wms.events.> (no blanks, "
      "no empty token), not 'a..b'",
      "t.yaml:3:30: sources[0].batch: must be greater than 0"}},
    {"duplicate source names",
     "sources:\n"
     "  - {name: wms, type: nats, stream: A}\n"
     "  - {name: wms, type: nats, stream: B}\n",
     {"t.yaml:3:12: sources[1].name: duplicate source name 'wms' (first at line 2)"}},
    {"a nats target: url or servers, and only nats keys",
     "targets:\n"
     "  bus: {type: nats, subject: x, url: nats://a:4222, servers: [nats://b:4222],\n"
     "        bearer_env: T}\n"
     "  web: {type: http, url: 'http://x/', servers: [nats://b:4222]}\n",
     {"t.yaml:2:62: targets.bus.servers: give url or servers, not both",
      "t.yaml:3:21: targets.bus.bearer_env: does not apply to nats targets",
      "t.yaml:4:48: targets.web.servers: does not apply to http targets"}},
};

static void test_err_case(void **state)
{
    const struct err_case *c = *state;
    struct xd_buf errs, want;
    xd_buf_init(&errs);
    xd_buf_init(&want);
    struct xd_config *cfg = parse(c->yaml, &errs);
    int loaded = cfg != NULL;
    xd_config_destroy(cfg);
    for (size_t i = 0; i < 8 && c->expect[i]; i++)
        xd_buf_printf(&want, "%s\n", c->expect[i]);
    int same = !loaded && strcmp(xd_buf_str(&errs), xd_buf_str(&want)) == 0;
    if (!same)
        print_error("%s: got:\n%swant:\n%s", c->name, xd_buf_str(&errs), xd_buf_str(&want));
    xd_buf_dispose(&want);
    xd_buf_dispose(&errs);
    assert_true(same);
}

/* ---- classifying a publish ---- */

static const struct {
    int status, js_err;
    enum xd_outcome outcome;
    const char *cls;
} verdicts[] = {
    {NATS_OK, 0, XD_OUT_OK, "ok"},
    {NATS_TIMEOUT, 0, XD_OUT_RETRY, "timeout"},             /* leader election, slow quorum */
    {NATS_NO_RESPONDERS, 0, XD_OUT_RETRY, "no_responders"}, /* no stream (yet), no leader */
    {NATS_CONNECTION_CLOSED, 0, XD_OUT_RETRY, "connect"},
    {NATS_CONNECTION_DISCONNECTED, 0, XD_OUT_RETRY, "connect"},
    {NATS_NO_SERVER, 0, XD_OUT_RETRY, "connect"},
    {NATS_NOT_YET_CONNECTED, 0, XD_OUT_RETRY, "connect"},
    {NATS_NO_SERVER_SUPPORT, 0, XD_OUT_RETRY, "connect"}, /* headers, before connecting */
    {NATS_NO_MEMORY, 0, XD_OUT_RETRY, "nomem"},
    {NATS_MAX_PAYLOAD, 0, XD_OUT_FAIL, "too_large"},
    {NATS_INVALID_SUBJECT, 0, XD_OUT_FAIL, "request"},
    {NATS_NOT_PERMITTED, 0, XD_OUT_FAIL, "forbidden"},
    {NATS_ERR, JSStreamMessageExceedsMaximumErr, XD_OUT_FAIL, "too_large"},
    {NATS_ERR, JSBadRequestErr, XD_OUT_FAIL, "request"},
    {NATS_ERR, JSClusterNotAvailErr, XD_OUT_RETRY, "js_error"},
    {NATS_ERR, JSStreamStoreFailedErr, XD_OUT_RETRY, "js_error"}, /* a full stream */
    {NATS_ERR, JSStreamNotFoundErr, XD_OUT_RETRY, "js_error"},
    {NATS_ERR, 0, XD_OUT_RETRY, "nats"},
    {NATS_PROTOCOL_ERROR, 0, XD_OUT_RETRY, "nats"},
};

static void test_classify(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof verdicts / sizeof verdicts[0]; i++) {
        const char *cls = NULL;
        enum xd_outcome o = xd_nats_classify(verdicts[i].status, verdicts[i].js_err, &cls);
        if (o != verdicts[i].outcome || !cls || strcmp(cls, verdicts[i].cls) != 0)
            fail_msg("status %d, js error %d: got %s/%s, want %s/%s", verdicts[i].status,
                     verdicts[i].js_err, xd_outcome_name(o), cls ? cls : "(null)",
                     xd_outcome_name(verdicts[i].outcome), verdicts[i].cls);
    }
}

int main(void)
{
    static const struct CMUnitTest fixed[] = {
        cmocka_unit_test(test_source_values_and_defaults),
        cmocka_unit_test(test_classify),
    };
    enum { NFIXED = sizeof fixed / sizeof fixed[0], NERR = sizeof err_cases / sizeof err_cases[0] };
    static struct CMUnitTest tests[NFIXED + NERR];
    memcpy(tests, fixed, sizeof fixed);
    for (size_t i = 0; i < NERR; i++)
        tests[NFIXED + i] = (struct CMUnitTest){.name = err_cases[i].name,
                                                .test_func = test_err_case,
                                                .initial_state = (void *)&err_cases[i]};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
