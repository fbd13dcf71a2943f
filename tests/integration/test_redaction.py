"""No secret leaves the hub: API key secrets (bearer and HMAC), a target's
bearer token from the environment and a credential header from the config
are configured, every error path is exercised (wrong keys, wrong scopes, bad
signatures, a target that refuses and echoes our credentials back, a target
that is down, dead letters, exceptions, a replay), and then everything the
hub says is searched for the secret values: its answers (including /metrics,
/v1/deliveries, /v1/events/{id}, /v1/exceptions, /v1/audit), its log on
stderr, and the output of `crossdock check`, `dlq` and `audit verify`.

The echoing target is the interesting one: a target's answer is kept as a
dead letter's error, so without redaction a target that quotes the request
(as many do in their 401s) would put the hub's token in /v1/deliveries for
every `read` key to see.
"""
import hashlib
import hmac
import json
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import xdtest  # noqa: E402
from xdstandin import StandIn, poll  # noqa: E402
from xdtest import Hub, run_cli  # noqa: E402

HANG_GUARD_S = 90
ENV = {"XD_RED_WMS": "wms-Secret-7f3a9c", "XD_RED_OPS": "ops-Secret-51be02",
       "XD_RED_READ": "read-Secret-c0ffee", "XD_RED_ERP_TOKEN": "erp-Token-9d8e7f"}
HEADER_SECRET = "hdr-ApiKey-4242aa"
SECRETS = list(ENV.values()) + [HEADER_SECRET]
KEY = {"wms": ENV["XD_RED_WMS"], "ops": ENV["XD_RED_OPS"], "read": ENV["XD_RED_READ"]}


def ship(eid):
    e = xdtest.event(1)
    e["event_id"] = eid
    e["data"]["shipment_id"] = "SHP-" + eid
    return e


def receipt(eid):
    return {"event_id": eid, "type": "goods.received", "occurred_at": "2026-11-28T15:00:00Z",
            "data": {"warehouse": "DC1", "receipt_id": "RCV-" + eid, "customer": "ACME",
                     "lines": [{"sku": "SKU-1", "qty": 5}]}}


def signed(secret, body, ts=None):
    ts = str(int(time.time()) if ts is None else ts)
    mac = hmac.new(secret.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()
    return {"X-Crossdock-Timestamp": ts, "X-Crossdock-Signature": "sha256=" + mac,
            "Content-Type": "application/json"}


class RedactionTest(unittest.TestCase):
    def setUp(self):
        self.standin = StandIn().start()
        self.addCleanup(self.standin.stop)
        self.seen = []  # everything the hub said, to search at the end

    def keep(self, what, text):
        self.seen.append((what, text if isinstance(text, str) else json.dumps(text)))

    def call(self, method, path, key=None, body=None, headers=None):
        st, h, data = self.hub.request(method, path, body=body, headers=headers,
                                       key=key and KEY[key])
        self.keep(f"{method} {path} -> {st}", data if not isinstance(data, bytes)
                  else data.decode(errors="replace"))
        self.keep(f"{method} {path} headers", json.dumps(h))
        return st, data

    def test_no_secret_in_answers_logs_or_commands(self):
        s = self.standin
        down = xdtest.free_port()
        # The ERP refuses with a 401 that quotes what it was sent.
        s.rule(path="/red/erp", status=401,
               error=f"invalid token {ENV['XD_RED_ERP_TOKEN']} for key {HEADER_SECRET}")
        extra = f"""
auth:
  keys:
    - {{id: wms, secret_env: XD_RED_WMS, scopes: [events:write]}}
    - {{id: ops, secret_env: XD_RED_OPS, scopes: [ops, read]}}
    - {{id: reader, secret_env: XD_RED_READ, scopes: [read]}}
targets:
  erp:
    type: http
    url: {s.url('/red/erp')}
    bearer_env: XD_RED_ERP_TOKEN
    headers: {{X-Api-Key: {HEADER_SECRET}}}
  down:
    type: http
    url: http://127.0.0.1:{down}/never
    bearer_env: XD_RED_ERP_TOKEN
    retry: {{max_attempts: 2, initial_backoff_ms: 50, max_backoff_ms: 100}}
routes:
  - name: to-erp
    on: [shipment.confirmed]
    steps:
      - deliver: erp
  - name: to-down
    on: [goods.received]
    steps:
      - deliver: down
"""
        self.hub = hub = Hub(config_extra=extra, env=ENV)
        self.addCleanup(hub.cleanup)
        hub.start(timeout=HANG_GUARD_S)

        # Intake: signed, bearer, and every way of getting it wrong.
        raw = json.dumps(ship("red-1")).encode()
        st, _ = self.call("POST", "/v1/events", body=raw, headers=signed(ENV["XD_RED_WMS"], raw))
        self.assertEqual(st, 202)
        st, _ = self.call("POST", "/v1/events", "wms", body=receipt("red-2"))
        self.assertEqual(st, 202)
        for key, want in (("read", 403), ("ops", 403)):
            st, _ = self.call("POST", "/v1/events", key, body=ship("red-x"))
            self.assertEqual(st, want)
        for bad in (ENV["XD_RED_WMS"] + "x", "x" + ENV["XD_RED_OPS"], ENV["XD_RED_ERP_TOKEN"]):
            st, _ = self.call("POST", "/v1/events", body=ship("red-y"),
                              headers={"Authorization": "Bearer " + bad})
            self.assertEqual(st, 401)
        raw = json.dumps(ship("red-z")).encode()
        for hdrs in (signed(ENV["XD_RED_READ"] + "!", raw), signed(ENV["XD_RED_WMS"], raw, ts=1),
                     signed(ENV["XD_RED_WMS"], b"other body")):
            st, _ = self.call("POST", "/v1/events", body=raw, headers=hdrs)
            self.assertEqual(st, 401)
        st, _ = self.call("GET", "/v1/audit", "read")
        self.assertEqual(st, 403)

        # Both deliveries end dead: the echoing 401, and the target that is down.
        def dead():
            st, _, body = self.hub.request("GET", "/v1/deliveries?state=dead", key=KEY["read"])
            return body["deliveries"] if len(body["deliveries"]) == 2 else None
        dl = poll("two dead letters", dead, HANG_GUARD_S)
        erp = [d for d in dl if d["target"] == "erp"][0]
        # The echo happened and was scrubbed: the rest of the answer is kept.
        self.assertIn("invalid token *** for key ***", erp["last_error"], erp)
        # What the ERP got carried the real credentials.
        got = s.requests("/red/erp")[0]["headers"]
        self.assertEqual(got["authorization"], "Bearer " + ENV["XD_RED_ERP_TOKEN"])
        self.assertEqual(got["x-api-key"], HEADER_SECRET)

        # Operator actions and every read.
        st, _ = self.call("POST", f"/v1/deliveries/{erp['id']}/replay", "ops")
        self.assertEqual(st, 200)
        poll("the replay to dead-letter again", dead, HANG_GUARD_S)
        st, exc = self.call("GET", "/v1/exceptions", "read")
        self.assertEqual(st, 200)
        self.assertTrue(exc["exceptions"])
        st, _ = self.call("PATCH", f"/v1/exceptions/{exc['exceptions'][0]['id']}", "ops",
                          body={"state": "acknowledged", "owner": "sec-team"})
        self.assertEqual(st, 200)
        for path in ("/v1/deliveries?state=dead", "/v1/deliveries?state=pending",
                     f"/v1/deliveries/{dl[0]['id']}", f"/v1/deliveries/{dl[1]['id']}",
                     "/v1/events/red-1", "/v1/events/red-2", "/v1/exceptions?state=open",
                     "/v1/charges", "/metrics", "/v1/reconciliation",
                     # what the dashboard reads, and the page itself
                     "/v1/stats", "/v1/kpis", "/v1/deliveries/count?state=dead", "/v1/ledger",
                     "/ui"):
            self.call("GET", path, "read")
        for path in ("/v1/audit", "/readyz", "/healthz", "/v1/nothing"):
            self.call("GET", path, "ops")

        # The command line, on the same config and store.
        cfg = hub.config_path
        for args in (("check", "-c", cfg), ("dlq", "list", "-c", cfg),
                     ("dlq", "show", "-c", cfg, str(erp["id"])), ("audit", "verify", "-c", cfg)):
            rc, out, err = run_cli(*args, env=ENV)
            self.keep(" ".join(args[:2]), out + err)
        # check on a broken config that names the same secrets' variables.
        bad = os.path.join(hub.dir, "bad.yaml")
        with open(cfg) as f:
            text = f.read()
        with open(bad, "w") as f:
            f.write(text.replace("scopes: [ops, read]", "scopes: [ops, root]")
                    .replace("X-Api-Key: ", "X-Api-Key: \"\\n") + "\nbogus: 1\n")
        rc, out, err = run_cli("check", "-c", bad, env=ENV)
        self.assertEqual(rc, 2, out + err)
        self.keep("check bad.yaml", out + err)
        # serve refusing to start (a key's variable unset) says which variable, not values.
        env = dict(ENV)
        del env["XD_RED_OPS"]
        rc, out, err = run_cli("serve", "-c", cfg, env=env, timeout=60)
        self.assertEqual(rc, 2, out + err)
        self.keep("serve without XD_RED_OPS", out + err)

        self.assertEqual(hub.stop(), 0)
        log = hub.read_log()
        self.assertIn("dead-lettered", log)
        self.keep("serve log", log)

        for what, text in self.seen:
            for secret in SECRETS:
                self.assertNotIn(secret, text, f"{what} leaks a secret:\n{text[:2000]}")


if __name__ == "__main__":
    unittest.main()
