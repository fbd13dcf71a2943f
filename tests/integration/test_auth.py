"""Signed webhooks (X-Crossdock-Timestamp / X-Crossdock-Signature) and per-key
rate limits (429 with Retry-After), on the real binary over loopback.

The signature is HMAC-SHA256 with the key's secret over the timestamp, a
'.', and the raw body (contract section 3); a timestamp more than 300 s from
the hub's clock is refused.
"""
import hashlib
import hmac
import json
import time
import unittest

import xdtest
from xdtest import HubTest, event

CONFIG = """
auth:
  keys:
    - {id: wms-signed, secret_env: XD_AUTH_WMS, scopes: [events:write]}
    - {id: reader, secret_env: XD_AUTH_READER, scopes: [read]}
    - {id: slow, secret_env: XD_AUTH_SLOW, scopes: [events:write], rate_limit: 1}
"""
SECRETS = {"XD_AUTH_WMS": "s3cret-wms", "XD_AUTH_READER": "s3cret-reader",
           "XD_AUTH_SLOW": "s3cret-slow"}


def sign(secret, body, ts=None):
    ts = str(int(time.time()) if ts is None else ts)
    mac = hmac.new(secret.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()
    return {"X-Crossdock-Timestamp": ts, "X-Crossdock-Signature": "sha256=" + mac,
            "Content-Type": "application/json"}


class AuthTest(HubTest):
    @classmethod
    def setUpClass(cls):
        cls.hub = xdtest.Hub(config_extra=CONFIG, env=SECRETS).start()

    def post_signed(self, ev, secret, ts=None, body=None):
        raw = json.dumps(ev).encode()
        h = sign(secret, raw, ts)
        return self.hub.request("POST", "/v1/events", body=body if body is not None else raw,
                                headers=h)

    def assert_problem(self, st, hdrs, body, status):
        self.assertEqual(st, status, body)
        self.assertEqual(hdrs.get("content-type"), "application/problem+json")
        self.assertEqual(body["status"], status)

    def test_signed_request_is_accepted_and_source_is_the_key(self):
        ev = event(9001)
        del ev["source"]
        st, _, body = self.post_signed(ev, "s3cret-wms")
        self.assertEqual(st, 202, body)
        self.assertEqual(body["accepted"], [ev["event_id"]])
        st, _, got = self.hub.request("GET", f"/v1/events/{ev['event_id']}", key="s3cret-reader")
        self.assertEqual(st, 200)
        self.assertEqual(got["source"], "wms-signed")

    def test_signature_over_another_body_is_refused(self):
        ev = event(9002)
        other = json.dumps(event(9003)).encode()
        st, hdrs, body = self.post_signed(ev, "s3cret-wms", body=other)
        self.assert_problem(st, hdrs, body, 401)
        st, _, _ = self.hub.request("GET", "/v1/events/t-009003", key="s3cret-reader")
        self.assertEqual(st, 404, "nothing may be stored from a refused request")

    def test_wrong_secret_is_refused(self):
        st, hdrs, body = self.post_signed(event(9004), "not-a-key")
        self.assert_problem(st, hdrs, body, 401)

    def test_old_and_future_timestamps_are_refused(self):
        now = int(time.time())
        for ts in (now - 301 - 5, now + 301 + 5):
            st, hdrs, body = self.post_signed(event(9005), "s3cret-wms", ts=ts)
            self.assert_problem(st, hdrs, body, 401)
            self.assertIn("300 s", body["detail"])

    def test_missing_or_malformed_signature_parts(self):
        raw = json.dumps(event(9006)).encode()
        h = sign("s3cret-wms", raw)
        del h["X-Crossdock-Timestamp"]
        st, hdrs, body = self.hub.request("POST", "/v1/events", body=raw, headers=h)
        self.assert_problem(st, hdrs, body, 401)
        h = sign("s3cret-wms", raw)
        h["X-Crossdock-Signature"] = "md5=abc"
        st, hdrs, body = self.hub.request("POST", "/v1/events", body=raw, headers=h)
        self.assert_problem(st, hdrs, body, 401)

    def test_signed_with_a_key_lacking_the_scope_is_403(self):
        st, hdrs, body = self.post_signed(event(9007), "s3cret-reader")
        self.assert_problem(st, hdrs, body, 403)

    def test_rate_limit_answers_429_with_retry_after(self):
        # rate_limit 1/s with a burst of one: twenty requests in a row cannot all pass
        # unless each took over a second; the first always passes.
        answers = []
        conn = self.hub.conn()
        try:
            for i in range(20):
                answers.append(self.hub.post_events(event(9100 + i), key="s3cret-slow", conn=conn))
        finally:
            conn.close()
        self.assertEqual(answers[0][0], 202)
        limited = [a for a in answers if a[0] == 429]
        self.assertTrue(limited, [a[0] for a in answers])
        st, hdrs, body = limited[0]
        self.assert_problem(st, hdrs, body, 429)
        self.assertGreaterEqual(int(hdrs["retry-after"]), 1)
        # Another key is not limited by this one.
        self.assertEqual(self.post_signed(event(9200), "s3cret-wms")[0], 202)


if __name__ == "__main__":
    xdtest.main()
