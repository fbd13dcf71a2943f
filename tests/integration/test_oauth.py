"""OAuth 2.0 client credentials for targets (targets.NAME.auth, type oauth2)
against the stand-in's token endpoint (tests/standin/standin.py: /oauth/token,
and a `bearer` rule that answers 401 without a valid token).

- One token is fetched for many deliveries (cached until shortly before it
  expires), sent as `Authorization: Bearer`.
- A revoked token: the target answers 401, the hub fetches a new token and
  the delivery succeeds on its next attempt.
- A short-lived token is renewed before it expires.
- A token endpoint that refuses the client: deliveries wait (pending, not
  dead-lettered) and flow once the endpoint accepts the client again; the
  client secret never appears in the log.
- client_auth: body sends the credentials as form fields instead of Basic.
"""
import base64
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import xdtest  # noqa: E402
from xdstandin import StandIn, poll  # noqa: E402
from xdtest import Hub  # noqa: E402

HANG_GUARD_S = 90
SECRET = "client-s3cret/with:odd&chars"


def oauth_target(name, standin, path, client_auth="basic", extra=""):
    return (f"  {name}:\n    type: http\n    url: {standin.url(path)}\n"
            f"    retry: {{max_attempts: 8, initial_backoff_ms: 50, max_backoff_ms: 500}}\n"
            f"    auth: {{type: oauth2, token_url: {standin.url('/oauth/token')}, "
            f"client_id: crossdock-hub, client_secret_env: XD_OAUTH_SECRET, scope: 'erp.write "
            f"erp.read', client_auth: {client_auth}}}\n{extra}")


class OAuthTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.standin = StandIn().start()

    @classmethod
    def tearDownClass(cls):
        cls.standin.stop()

    def setUp(self):
        self.standin.reset()
        self.standin.call("POST", "/_oauth/revoke")
        st, _ = self.standin.call("POST", "/_oauth", {"client_id": "crossdock-hub",
                                                      "client_secret": SECRET,
                                                      "expires_in": 3600})
        self.assertEqual(st, 200)
        self.hub = None

    def tearDown(self):
        if self.hub:
            rc = self.hub.stop()
            log = self.hub.read_log()
            self.hub.cleanup()
            self.assertEqual(rc, 0, log)
            self.assertFalse(xdtest.sanitizer_report(log), log)
            self.assertNotIn(SECRET, log, "the client secret is never logged")
            self.assertNotIn("tok-", log, "tokens are never logged")

    def start_hub(self, path, client_auth="basic"):
        extra = ("targets:\n" + oauth_target("erp", self.standin, path, client_auth) +
                 "routes:\n  - {name: r, on: [shipment.confirmed], steps: [{deliver: erp}]}\n")
        self.hub = Hub(config_extra=extra, env={"XD_OAUTH_SECRET": SECRET}).start()
        self.standin.rule(path=path, bearer=True)

    def tokens(self):
        return self.standin.requests("/oauth/token")

    def test_one_token_for_many_deliveries_and_401_refreshes(self):
        self.start_hub("/erp/oauth")
        n = 12
        st, _, body = self.hub.post_events({"events": [xdtest.event(i) for i in range(1, n + 1)]})
        self.assertEqual(st, 202, body)
        poll(f"{n} deliveries", lambda: len(self.standin.ok("/erp/oauth")) == n, HANG_GUARD_S)
        toks = self.tokens()
        self.assertEqual(len(toks), 1, "one token for every delivery")
        t = toks[0]
        self.assertEqual(t["status"], 200)
        self.assertEqual(t["body"]["grant_type"], "client_credentials")
        self.assertEqual(t["body"]["scope"], "erp.write erp.read")
        self.assertNotIn("client_id", t["body"], "client_auth basic: not in the form")
        basic = base64.b64decode(t["headers"]["authorization"][6:]).decode()
        self.assertEqual(basic, "crossdock-hub:client-s3cret%2Fwith%3Aodd%26chars")
        for r in self.standin.ok("/erp/oauth"):
            self.assertEqual(r["headers"]["authorization"], "Bearer tok-1")

        # The token is revoked at the server: 401, a new token, delivered.
        self.standin.call("POST", "/_oauth/revoke")
        st, _, body = self.hub.post_events(xdtest.event(100))
        self.assertEqual(st, 202, body)
        poll("the delivery after the revocation",
             lambda: len(self.standin.ok("/erp/oauth")) == n + 1, HANG_GUARD_S)
        reqs = self.standin.requests("/erp/oauth")
        refused = [r for r in reqs if r["status"] == 401]
        self.assertEqual(len(refused), 1, reqs[-3:])
        self.assertEqual(refused[0]["headers"]["authorization"], "Bearer tok-1")
        self.assertEqual(reqs[-1]["headers"]["authorization"], "Bearer tok-2")
        self.assertEqual(len(self.tokens()), 2, "one refresh")
        st, _, got = self.hub.get_event(xdtest.event(100)["event_id"])
        self.assertEqual(st, 200, got)
        st, _, dead = self.hub.request("GET", "/v1/deliveries?state=dead")
        self.assertEqual(dead["deliveries"], [])

    def test_short_lived_token_is_renewed_before_it_expires(self):
        self.standin.call("POST", "/_oauth", {"expires_in": 4})
        self.start_hub("/erp/short", client_auth="body")
        st, _, body = self.hub.post_events(xdtest.event(1))
        self.assertEqual(st, 202, body)
        poll("the first delivery", lambda: self.standin.ok("/erp/short"), HANG_GUARD_S)
        t = self.tokens()[0]
        self.assertEqual(t["body"]["client_id"], "crossdock-hub")  # client_auth: body
        self.assertNotIn("authorization", t["headers"])
        # Renewed at half the lifetime at the latest, whether deliveries come or not.
        poll("a renewed token", lambda: len(self.tokens()) >= 2, HANG_GUARD_S)
        st, _, body = self.hub.post_events(xdtest.event(2))
        self.assertEqual(st, 202, body)
        poll("the second delivery", lambda: len(self.standin.ok("/erp/short")) == 2, HANG_GUARD_S)

    def test_refused_client_waits_then_flows(self):
        self.standin.call("POST", "/_oauth", {"client_secret": "not-what-the-hub-has"})
        self.start_hub("/erp/refused")
        st, _, body = self.hub.post_events(xdtest.event(1))
        self.assertEqual(st, 202, body)
        poll("the refusal in the log",
             lambda: "no token from" in self.hub.read_log(), HANG_GUARD_S)
        self.assertIn("invalid_client", self.hub.read_log())
        self.assertEqual(self.standin.requests("/erp/refused"), [], "nothing sent without one")
        st, _, dead = self.hub.request("GET", "/v1/deliveries?state=dead")
        self.assertEqual(dead["deliveries"], [], "waiting for a token is not a failure")
        # The server accepts the client again: the delivery goes through.
        self.standin.call("POST", "/_oauth", {"client_secret": SECRET})
        poll("the delivery", lambda: self.standin.ok("/erp/refused"), HANG_GUARD_S)

    def test_config_errors(self):
        hub = Hub(config_extra=(
            "targets:\n  a:\n    type: http\n    url: http://127.0.0.1:1/x\n"
            "    bearer_env: X\n"
            "    auth: {type: oauth2, token_url: ftp://x/, client_id: c, client_secret_env: S}\n"
            "  b:\n    type: http\n    url: http://127.0.0.1:1/x\n"
            "    auth: {type: saml, client_id: c}\n"))
        try:
            rc, _, err = xdtest.run_cli("check", "-c", hub.config_path)
            self.assertEqual(rc, 2, err)
            self.assertIn("targets.a.auth: give bearer_env or auth, not both", err)
            self.assertIn("targets.a.auth.token_url: must start with https:// or http://", err)
            self.assertIn("targets.b.auth.type: must be oauth2, not 'saml'", err)
            self.assertIn("targets.b.auth: missing required key 'token_url'", err)
            self.assertIn("targets.b.auth: missing required key 'client_secret_env'", err)
            # A secret that is not in the environment stops `serve` at start.
            ok = Hub(config_extra="targets:\n" + oauth_target("erp", self.standin, "/erp/x"))
            try:
                rc, _, err = xdtest.run_cli("serve", "-c", ok.config_path)
                self.assertEqual(rc, 2, err)
                self.assertIn("targets.erp.auth.client_secret_env: XD_OAUTH_SECRET is not set",
                              err)
            finally:
                ok.cleanup()
        finally:
            hub.cleanup()


if __name__ == "__main__":
    xdtest.main()
