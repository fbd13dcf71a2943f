"""Routing and delivery end to end: the real hub delivering to the real
stand-in (tests/standin/standin.py) over loopback HTTP.

Each test starts its own hub with the routes and targets it needs; one
stand-in process serves every test of a class, each test on its own paths.
The stand-in records every request (path, headers, body, status), and
`POST /_rules` makes it answer 503/400, hang up, or delay. Nothing here
asserts on speed: every wait is a poll with a generous hang guard.

Covered (contract sections 3 and 6, docs/routes.md, docs/targets.md):

- retries: 3 x 503 then 200 is one accepted delivery with ONE Idempotency-Key
  across all attempts, and the timeline shows every attempt; a 429's
  Retry-After is a floor on the next attempt, capped by max_backoff_ms;
- dead letters: a 400 dead-letters with the target's answer; list, show
  (mapped payload, event, attempts_log), replay one, 409 for a non-dead one,
  bulk replay by target; the same through `crossdock dlq list/show/replay`
  on the store of the running hub; a dead letter holds its key and opens an
  exception, settled once it is delivered; reading needs `read`, replaying
  `ops`, and the timeline says who replayed;
- circuit breaker: three targets down for 30 s (connection refused, hang-up
  without an answer, 503 on everything) see a handful of attempts, not
  hundreds, nothing is dead-lettered, a healthy target flows meanwhile, and
  everything is delivered once they are back; the half-open breaker's probe
  slot comes back when the delivery holding it ends without a request;
- order per business key under retries while other keys flow;
- a jq runtime error dead-letters with the message, the route and the step;
  a missing xref entry holds the delivery (test_holds.py has the rest);
- a route filter that says no skips the route; step 2 only after step 1;
- $xref / xref() in a mapping, the documented Idempotency-Key derivation,
  traceparent, Content-Type, custom headers and bearer_env on the wire.
"""
import datetime
import json
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import xdtest  # noqa: E402
from xdstandin import StandIn, check_delivery_headers, poll, TRACEPARENT_RE  # noqa: E402
from xdtest import Hub, run_cli  # noqa: E402

HANG_GUARD_S = 90  # a hang guard only, never an assertion on speed

# Event ids are delivered inside every mapped body, so the stand-in's records
# can be told apart by event.
MAP_ID = "'{event: .event_id, type: .type, shipment: .data.shipment_id}'"


def ship(eid, shipment, warehouse="DC1", sku="SKU-1", customer="ACME", **data):
    e = xdtest.event(1)
    e["event_id"] = eid
    e["data"].update({"warehouse": warehouse, "shipment_id": shipment, "order_id": "ORD-" + eid,
                      "customer": customer,
                      "lines": [{"sku": sku, "qty": 3}, {"sku": "SKU-2", "qty": 1.5}]})
    e["data"].update(data)
    return e


def void(eid, shipment, warehouse="DC1"):
    return {"event_id": eid, "type": "shipment.voided", "occurred_at": "2026-11-28T15:00:00Z",
            "source": "wms-test",
            "data": {"warehouse": warehouse, "shipment_id": shipment, "reason": "test void"}}


def receipt(eid):
    return {"event_id": eid, "type": "goods.received", "occurred_at": "2026-11-28T15:00:00Z",
            "source": "wms-test",
            "data": {"warehouse": "DC1", "receipt_id": "RCV-" + eid, "customer": "ACME",
                     "lines": [{"sku": "SKU-1", "qty": 5}]}}


def target(name, url, max_attempts=8, initial=50, max_backoff=200, timeout_ms=5000, extra=""):
    return (f"  {name}:\n    type: http\n    url: {url}\n    timeout_ms: {timeout_ms}\n"
            f"    retry: {{max_attempts: {max_attempts}, initial_backoff_ms: {initial}, "
            f"max_backoff_ms: {max_backoff}}}\n{extra}")


def route(name, on, steps, filter=None):
    s = f"  - name: {name}\n    on: [{', '.join(on)}]\n"
    if filter:
        s += f"    filter: {filter}\n"
    s += "    steps:\n"
    for tgt, m in steps:
        s += f"      - deliver: {tgt}\n"
        if m:
            s += f"        map: {m}\n"
    return s


def time_ms(text):
    """Unix milliseconds of the hub's timestamps ("2026-11-28T05:55:05.421Z")."""
    t = datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ")
    return t.replace(tzinfo=datetime.timezone.utc).timestamp() * 1000


def by_event(reqs):
    """{event id (from the mapped body): [request, ...] in arrival order}"""
    out = {}
    for r in sorted(reqs, key=lambda r: r["n"]):
        out.setdefault(r["body"]["event"], []).append(r)
    return out


class RoutingTest(unittest.TestCase):
    """One stand-in for the class, one hub per test."""

    @classmethod
    def setUpClass(cls):
        cls.standin = StandIn().start()

    @classmethod
    def tearDownClass(cls):
        cls.standin.stop()

    def start_hub(self, config_extra, env=None, keys=None):
        hub = Hub(config_extra=config_extra, env=env, keys=keys)
        self.addCleanup(self.stop_hub, hub)
        return hub.start(timeout=HANG_GUARD_S)

    def stop_hub(self, hub):
        rc = hub.stop()
        log = hub.read_log()
        hub.cleanup()
        self.assertFalse(xdtest.sanitizer_report(log), "sanitizer report:\n" + log)
        self.assertEqual(rc, 0, "crossdock serve did not stop cleanly on SIGTERM:\n" + log)

    # -- helpers -----------------------------------------------------------------

    def get_event(self, hub, eid):
        st, _, body = hub.get_event(eid)
        self.assertEqual(st, 200, body)
        return body

    def wait_states(self, hub, eids, states=("delivered",), what=None):
        """Polls until every event is in one of states; returns {eid: event JSON}."""
        got = {}

        def check():
            for eid in eids:
                if eid not in got:
                    body = self.get_event(hub, eid)
                    if body["state"] in states:
                        got[eid] = body
            return len(got) == len(eids)
        poll(what or f"{len(eids)} event(s) to reach {states}", check, HANG_GUARD_S)
        return got

    def deliveries(self, hub, **q):
        qs = "&".join(f"{k}={v}" for k, v in q.items())
        st, _, body = hub.request("GET", "/v1/deliveries?" + qs)
        self.assertEqual(st, 200, body)
        return body["deliveries"]

    def delivery_of(self, hub, eid, step=0):
        d = [d for d in self.get_event(hub, eid)["deliveries"] if d["step"] == step]
        self.assertEqual(len(d), 1, f"{eid}: deliveries of step {step}: {d}")
        return d[0]

    def post(self, hub, events):
        st, _, body = hub.post_events({"events": events} if isinstance(events, list) else events)
        self.assertEqual(st, 202, body)
        return body

    @staticmethod
    def attempts(timeline):
        return [t for t in timeline if "delivery_id" in t and t.get("outcome") != "replayed"]

    # -- retries -----------------------------------------------------------------

    def test_retry_503_three_times_then_200_one_idempotency_key(self):
        s = self.standin
        path = "/retry/erp"
        hub = self.start_hub("targets:\n" + target("erp", s.url(path), max_attempts=8) +
                             "routes:\n" + route("retrying", ["shipment.confirmed"],
                                                 [("erp", MAP_ID)]))
        eids = ["retry-1", "retry-2", "retry-3"]
        for eid in eids:  # each event: its first three requests get 503
            s.rule(path=path, status=503, count=3, match=f'"{eid}"')
        self.post(hub, [ship(eid, "SHP-" + eid) for eid in eids])
        got = self.wait_states(hub, eids)

        reqs = s.requests(path)
        check_delivery_headers(self, reqs)
        per = by_event(reqs)
        self.assertEqual(sorted(per), eids)
        keys = set()
        for eid in eids:
            rs = per[eid]
            self.assertEqual([r["status"] for r in rs], [503, 503, 503, 200],
                             f"{eid}: the stand-in saw {[r['status'] for r in rs]}")
            k = {r["headers"]["idempotency-key"] for r in rs}
            self.assertEqual(len(k), 1, f"{eid}: Idempotency-Key changed across retries: {k}")
            keys |= k
            # All attempts of one event share the event's trace; each has its own span.
            traces = {TRACEPARENT_RE.match(r["headers"]["traceparent"]).group(1) for r in rs}
            spans = {TRACEPARENT_RE.match(r["headers"]["traceparent"]).group(2) for r in rs}
            self.assertEqual(len(traces), 1, f"{eid}: {traces}")
            self.assertEqual(len(spans), len(rs), f"{eid}: span ids reused: {spans}")

            ev = got[eid]
            self.assertEqual(ev["state"], "delivered")
            self.assertEqual(len(ev["deliveries"]), 1, ev)
            d = ev["deliveries"][0]
            self.assertEqual((d["target"], d["route"], d["step"], d["state"], d["attempts"]),
                             ("erp", "retrying", 0, "done", 4), d)
            att = self.attempts(ev["timeline"])
            self.assertEqual([a["outcome"] for a in att], ["retry", "retry", "retry", "ok"], att)
            self.assertEqual([a.get("status") for a in att], [503, 503, 503, 200], att)
            for a in att:
                self.assertEqual(a["delivery_id"], d["id"])
                self.assertIn("at", a)
                self.assertIn("latency_ms", a)
            for a in att[:3]:
                self.assertIn("503", a.get("error", ""), a)
                self.assertIn("told to answer 503", a["error"], a)  # the target's answer
            self.assertNotIn("error", att[3], att[3])
        self.assertEqual(len(keys), len(eids), "two deliveries share an Idempotency-Key")
        self.assertEqual(self.deliveries(hub, state="dead"), [])

    def test_retry_after_sets_the_next_attempt_up_to_max_backoff(self):
        """A 429's Retry-After is a floor on the wait, capped by max_backoff_ms (read
        from the scheduled next attempt, not measured)."""
        s = self.standin
        short, long = "/after/short", "/after/long"
        hub = self.start_hub(
            "targets:\n" + target("short", s.url(short), initial=50, max_backoff=4000) +
            target("long", s.url(long), initial=50, max_backoff=600000) +
            "routes:\n" + route("to-short", ["goods.received"], [("short", "'{event: .event_id}'")]) +
            route("to-long", ["goods.received"], [("long", "'{event: .event_id}'")]))
        s.rule(path=short, status=429, retry_after="120", count=1)
        s.rule(path=long, status=429, retry_after="120", count=1)
        self.post(hub, receipt("after-1"))

        def scheduled():
            ds = self.get_event(hub, "after-1")["deliveries"]
            return ds if all(d["attempts"] == 1 for d in ds) else None
        ds = {d["target"]: d for d in poll("both 429s to be recorded", scheduled, HANG_GUARD_S)}
        for t in ("short", "long"):
            self.assertEqual(ds[t]["state"], "pending", ds[t])
            self.assertEqual(ds[t]["error_class"], "http_429", ds[t])
        wait_long = time_ms(ds["long"]["next_attempt_at"]) - time_ms(ds["long"]["updated_at"])
        wait_short = time_ms(ds["short"]["next_attempt_at"]) - time_ms(ds["short"]["updated_at"])
        self.assertGreaterEqual(wait_long, 119000, ds["long"])   # Retry-After honoured
        self.assertLessEqual(wait_short, 4000, ds["short"])      # capped by max_backoff_ms
        self.post(hub, receipt("after-2"))  # not held up: another key
        self.wait_states(hub, ["after-2"])
        self.assertEqual(self.get_event(hub, "after-1")["state"], "processing")

    # -- dead letters --------------------------------------------------------------

    def test_400_dead_letters_replay_and_cli(self):
        s = self.standin
        path = "/dlq/erp"
        m = "'{event: .event_id, type: .type, shipment: .data.shipment_id, skus: [.data.lines[]?.sku]}'"
        hub = self.start_hub("targets:\n" + target("erp", s.url(path)) +
                             "routes:\n" + route("dlq", ["shipment.confirmed", "shipment.voided"],
                                                 [("erp", m)]))
        cfg = hub.config_path
        s.rule(path=path, status=400, match="SKU-BAD", error="unknown material SKU-BAD")
        bad = [ship(f"dlq-b{i}", f"SHP-DLQ-B{i}", sku="SKU-BAD") for i in range(1, 5)]
        good = [ship(f"dlq-g{i}", f"SHP-DLQ-G{i}") for i in range(1, 3)]
        held = void("dlq-v1", "SHP-DLQ-B1")  # same key as dlq-b1: must wait behind it
        self.post(hub, bad + [held] + good)
        self.wait_states(hub, [e["event_id"] for e in bad], ("dead_lettered",))
        self.wait_states(hub, [e["event_id"] for e in good])

        # The list: every 400, with the status and the stand-in's answer.
        dead = self.deliveries(hub, state="dead")
        self.assertEqual(sorted(d["event_id"] for d in dead), [e["event_id"] for e in bad])
        for d in dead:
            self.assertEqual((d["target"], d["route"], d["step"], d["state"], d["attempts"]),
                             ("erp", "dlq", 0, "dead", 1), d)
            self.assertIn("400", d["last_error"], d)
            self.assertIn("unknown material SKU-BAD", d["last_error"], d)
            self.assertEqual(d.get("error_class"), "http_4xx", d)
        self.assertEqual(len(self.deliveries(hub, state="dead", target="erp")), len(bad))
        self.assertEqual(self.deliveries(hub, state="dead", target="billing"), [])
        self.assertEqual(len(self.deliveries(hub, state="dead", error_class="http_4xx")), len(bad))
        self.assertEqual(self.deliveries(hub, state="dead", error_class="jq"), [])
        st, _, page = hub.request("GET", "/v1/deliveries?state=dead&limit=2")
        self.assertEqual(len(page["deliveries"]), 2)
        st, _, rest = hub.request("GET", f"/v1/deliveries?state=dead&limit=2"
                                         f"&after={page['next_after']}")
        self.assertEqual([d["id"] for d in page["deliveries"] + rest["deliveries"]],
                         [d["id"] for d in dead], "paging by next_after")

        # Each 4xx dead letter opened an exception.
        def open_exceptions():
            st, _, body = hub.request("GET", "/v1/exceptions?state=open")
            self.assertEqual(st, 200, body)
            return {x["event_id"]: x for x in body["exceptions"]}
        exc = open_exceptions()
        self.assertEqual(sorted(exc), [e["event_id"] for e in bad])
        for x in exc.values():
            self.assertEqual(x["target"], "erp", x)
            self.assertIn("unknown material SKU-BAD", x["reason"] or "", x)

        # A dead letter holds its key: the void never went, its event is still processing.
        self.assertEqual(self.get_event(hub, "dlq-v1")["state"], "processing")
        self.assertNotIn("dlq-v1", by_event(s.requests(path)))

        # One, in full: the mapped payload it sent, the original event, its attempts.
        ids = {d["event_id"]: d["id"] for d in dead}
        st, _, one = hub.request("GET", f"/v1/deliveries/{ids['dlq-b1']}")
        self.assertEqual(st, 200, one)
        sent = by_event(s.requests(path))["dlq-b1"]
        self.assertEqual(len(sent), 1)
        self.assertEqual(json.loads(one["payload"]),
                         {"event": "dlq-b1", "type": "shipment.confirmed",
                          "shipment": "SHP-DLQ-B1", "skus": ["SKU-BAD", "SKU-2"]})
        self.assertEqual(json.loads(one["payload"]), sent[0]["body"])
        self.assertIsNone(xdtest.matches(bad[0], one["event"]), one["event"])
        self.assertEqual(len(one["attempts_log"]), 1, one)
        a = one["attempts_log"][0]
        self.assertEqual((a["status"], a["outcome"]), (400, "fail"), a)
        self.assertIn("unknown material SKU-BAD", a["error"])
        st, _, _ = hub.request("GET", "/v1/deliveries/999999")
        self.assertEqual(st, 404)

        # Replay needs a dead delivery: a done one is 409, an unknown one 404.
        done_id = self.delivery_of(hub, "dlq-g1")["id"]
        st, h, body = hub.request("POST", f"/v1/deliveries/{done_id}/replay")
        self.assertEqual(st, 409, body)
        self.assertTrue(h.get("content-type", "").startswith("application/problem+json"))
        st, _, body = hub.request("POST", "/v1/deliveries/999999/replay")
        self.assertEqual(st, 404, body)

        # The fix, then a replay: delivered, with the key it had, and the void follows it.
        s.clear_rules()
        st, _, body = hub.request("POST", f"/v1/deliveries/{ids['dlq-b1']}/replay")
        self.assertEqual((st, body), (200, {"replayed": [ids["dlq-b1"]]}))
        ev = self.wait_states(hub, ["dlq-b1", "dlq-v1"])["dlq-b1"]
        self.assertTrue(any(t.get("outcome") == "replayed" for t in ev["timeline"]), ev["timeline"])
        self.assertEqual(self.delivery_of(hub, "dlq-b1")["state"], "done")
        per = by_event(s.requests(path))
        self.assertEqual([r["status"] for r in per["dlq-b1"]], [400, 200])
        self.assertEqual(len({r["headers"]["idempotency-key"] for r in per["dlq-b1"]}), 1,
                         "a replay must keep the Idempotency-Key")
        self.assertEqual([r["status"] for r in per["dlq-v1"]], [200])
        self.assertGreater(per["dlq-v1"][0]["n"], per["dlq-b1"][1]["n"],
                           "the void overtook the confirmation it voids")
        st, _, body = hub.request("POST", f"/v1/deliveries/{ids['dlq-b1']}/replay")
        self.assertEqual(st, 409, "replaying a delivered dead letter again")

        # The CLI, on the store of the running hub.
        rc, out, err = run_cli("dlq", "list", "-c", cfg, env=hub.env)
        self.assertEqual(rc, 0, err)
        for e in bad[1:]:
            self.assertIn(e["event_id"], out)
            self.assertIn(str(ids[e["event_id"]]), out)
        self.assertNotIn("dlq-b1", out)
        self.assertIn("400", out)
        rc, out, err = run_cli("dlq", "list", "--target", "nope", "-c", cfg, env=hub.env)
        self.assertEqual(rc, 0, err)
        self.assertNotIn("dlq-b", out)
        rc, out, err = run_cli("dlq", "show", str(ids["dlq-b2"]), "-c", cfg, env=hub.env)
        self.assertEqual(rc, 0, err)
        shown = json.loads(out)
        self.assertEqual((shown["id"], shown["event_id"], shown["state"]),
                         (ids["dlq-b2"], "dlq-b2", "dead"))
        self.assertEqual(json.loads(shown["payload"])["event"], "dlq-b2")
        self.assertIsNone(xdtest.matches(bad[1], shown["event"]))
        self.assertEqual([a["status"] for a in shown["attempts_log"]], [400])
        rc, _, err = run_cli("dlq", "show", "999999", "-c", cfg, env=hub.env)
        self.assertEqual(rc, 2, err)
        rc, out, err = run_cli("dlq", "replay", str(ids["dlq-b2"]), "-c", cfg, env=hub.env)
        self.assertEqual(rc, 0, err)
        self.assertIn("1 delivery", out)
        self.wait_states(hub, ["dlq-b2"], what="the hub to deliver what `dlq replay` put back")
        rc, _, err = run_cli("dlq", "replay", str(ids["dlq-b2"]), "-c", cfg, env=hub.env)
        self.assertEqual(rc, 2, "replaying a delivery that is not dead: " + err)

        # Bulk replay through the API: every dead letter of the target.
        st, _, body = hub.request("POST", "/v1/deliveries/replay", body={"target": "nope"})
        self.assertEqual((st, body), (200, {"replayed": 0}))
        st, _, body = hub.request("POST", "/v1/deliveries/replay", body={"target": "erp"})
        self.assertEqual((st, body), (200, {"replayed": 2}))
        self.wait_states(hub, ["dlq-b3", "dlq-b4"])
        st, _, body = hub.request("POST", "/v1/deliveries/replay", body={"target": "erp"})
        self.assertEqual((st, body), (200, {"replayed": 0}))

        # Bulk replay through the CLI.
        s.rule(path=path, status=400, match="SKU-BAD", error="unknown material SKU-BAD")
        more = [ship(f"dlq-c{i}", f"SHP-DLQ-C{i}", sku="SKU-BAD") for i in range(1, 4)]
        self.post(hub, more)
        self.wait_states(hub, [e["event_id"] for e in more], ("dead_lettered",))
        s.clear_rules()
        rc, out, err = run_cli("dlq", "replay", "--all", "--target", "erp", "-c", cfg, env=hub.env)
        self.assertEqual(rc, 0, err)
        self.assertIn("3 delivery", out)
        self.wait_states(hub, [e["event_id"] for e in more])
        rc, out, err = run_cli("dlq", "list", "-c", cfg, env=hub.env)
        self.assertEqual(rc, 0, err)
        self.assertIn("no dead letters", out)
        self.assertEqual(self.deliveries(hub, state="dead"), [])
        self.assertEqual(open_exceptions(), {}, "delivered after a replay, yet still open")

        # Every event reached the target with a 2xx, every copy under one key.
        per = by_event(s.requests(path))
        everything = bad + good + more + [held]
        self.assertEqual(sorted(per), sorted(e["event_id"] for e in everything))
        for eid, rs in per.items():
            self.assertTrue(any(r["status"] == 200 for r in rs), f"{eid}: {rs}")
            self.assertEqual(len({r["headers"]["idempotency-key"] for r in rs}), 1, eid)
        check_delivery_headers(self, s.requests(path))

    def test_dlq_scopes_and_who_replayed(self):
        """Reading dead letters needs `read`, replaying needs `ops`; the timeline names
        who replayed."""
        s = self.standin
        path = "/scopes/erp"
        keys = {"wms": ("k-wms", ["events:write"]), "viewer": ("k-viewer", ["read"]),
                "operator": ("k-operator", ["ops", "read"])}
        hub = self.start_hub("targets:\n" + target("erp", s.url(path)) +
                             "routes:\n" + route("scoped", ["shipment.confirmed"],
                                                 [("erp", MAP_ID)]), keys=keys)
        s.rule(path=path, status=422, error="order unknown")
        st, _, body = hub.post_events(ship("scope-1", "SHP-SC-1"), key="k-wms")
        self.assertEqual(st, 202, body)

        def dead():
            st, _, body = hub.request("GET", "/v1/deliveries?state=dead", key="k-viewer")
            self.assertEqual(st, 200, body)
            return body["deliveries"]
        d = poll("the 422 to be dead-lettered", dead, HANG_GUARD_S)[0]
        self.assertIn("422", d["last_error"])
        self.assertIn("order unknown", d["last_error"])
        st, _, _ = hub.request("GET", "/v1/deliveries?state=dead")
        self.assertEqual(st, 401)
        st, _, _ = hub.request("GET", "/v1/deliveries?state=dead", key="k-wms")
        self.assertEqual(st, 403)
        st, _, _ = hub.request("GET", f"/v1/deliveries/{d['id']}", key="k-wms")
        self.assertEqual(st, 403)
        for k in (None, "k-wms", "k-viewer"):
            st, _, _ = hub.request("POST", f"/v1/deliveries/{d['id']}/replay", key=k)
            self.assertEqual(st, 401 if k is None else 403, k)
            st, _, _ = hub.request("POST", "/v1/deliveries/replay", body={"target": "erp"}, key=k)
            self.assertEqual(st, 401 if k is None else 403, k)
        self.assertEqual(dead()[0]["id"], d["id"], "a refused replay changed something")
        st, _, body = hub.request("POST", "/v1/deliveries/replay", body=b"{not json",
                                  headers={"Content-Type": "application/json"}, key="k-operator")
        self.assertEqual(st, 400, body)
        st, _, body = hub.request("POST", "/v1/deliveries/replay", body={"from": "yesterday"},
                                  key="k-operator")
        self.assertEqual(st, 400, body)

        s.clear_rules()
        st, _, body = hub.request("POST", f"/v1/deliveries/{d['id']}/replay", key="k-operator")
        self.assertEqual((st, body), (200, {"replayed": [d["id"]]}))

        def delivered():
            st, _, body = hub.get_event("scope-1", key="k-viewer")
            return body if body["state"] == "delivered" else None
        ev = poll("the replayed delivery", delivered, HANG_GUARD_S)
        replayed = [t for t in ev["timeline"] if t.get("outcome") == "replayed"]
        self.assertEqual(len(replayed), 1, ev["timeline"])
        self.assertIn("operator", replayed[0].get("error", "") + replayed[0].get("detail", ""))
        self.assertEqual([r["status"] for r in s.requests(path)], [422, 200])

    # -- order per key -------------------------------------------------------------

    def test_order_per_key_holds_under_retries_while_other_keys_flow(self):
        s = self.standin
        path = "/order/erp"
        hub = self.start_hub("targets:\n" + target("erp", s.url(path), max_attempts=40,
                                                   initial=50, max_backoff=400) +
                             "routes:\n" + route("ordered", ["shipment.confirmed",
                                                             "shipment.voided"], [("erp", MAP_ID)]))
        keys = {k: f"SHP-ORD-{k}" for k in "ABCD"}

        def ev(k, i):
            eid = f"ord-{k}-{i}"
            return ship(eid, keys[k]) if i % 2 else void(eid, keys[k])

        # A's head fails until told otherwise; D's first and third fail twice each.
        s.rule(path=path, status=503, match='"ord-A-1"')
        s.rule(path=path, status=503, count=2, match='"ord-D-1"')
        s.rule(path=path, status=503, count=2, match='"ord-D-3"')
        intake = ["A1", "B1", "D1", "A2", "C1", "D2", "A3", "B2", "D3", "C2", "A4", "D4", "B3"]
        events = [ev(x[0], int(x[1])) for x in intake]
        # Intake order is commit order: one request at a time, some of them batches.
        self.post(hub, events[0])
        self.post(hub, events[1:4])
        for e in events[4:8]:
            self.post(hub, e)
        self.post(hub, events[8:])
        order = {k: [e["event_id"] for e in events if e["data"]["shipment_id"] == keys[k]]
                 for k in keys}

        # B and C are delivered while A is still retrying its head.
        self.wait_states(hub, order["B"] + order["C"], what="keys B and C to flow past A")
        def a1_retried():
            ev = self.get_event(hub, "ord-A-1")
            return ev if ev["deliveries"][0]["attempts"] >= 2 else None
        a1 = poll("A's head to have been refused twice (as the hub recorded it)", a1_retried,
                  HANG_GUARD_S)
        self.assertEqual(a1["state"], "processing")
        self.assertEqual(a1["deliveries"][0]["state"], "pending")
        per = by_event(s.requests(path))
        self.assertGreaterEqual(len(per["ord-A-1"]), 2)
        self.assertEqual({r["status"] for r in per["ord-A-1"]}, {503}, "A's head got through")
        for eid in order["A"][1:]:
            self.assertNotIn(eid, per, f"{eid} went while the head of its key was retrying")

        s.clear_rules()
        self.wait_states(hub, [e["event_id"] for e in events])
        reqs = s.requests(path)
        check_delivery_headers(self, reqs)
        per = by_event(reqs)
        self.assertGreaterEqual(len(per["ord-A-1"]), 3, "A's head: refused twice, then accepted")
        for k, eids in order.items():
            firsts = sorted(eids, key=lambda eid: per[eid][0]["n"])
            self.assertEqual(firsts, eids, f"key {k}: the target received {firsts}, "
                             f"intake order was {eids}")
            for prev, cur in zip(eids, eids[1:]):
                ok_prev = [r for r in per[prev] if r["status"] == 200]
                self.assertTrue(ok_prev, f"{prev}: {per[prev]}")
                self.assertGreater(per[cur][0]["n"], ok_prev[0]["n"],
                                   f"key {k}: {cur} was sent before {prev} got its 200")
            # No request of the key ever goes back to an earlier event (a copy sent
            # again after a timeout included).
            seq = [eids.index(r["body"]["event"]) for r in reqs if r["body"]["event"] in eids]
            self.assertEqual(seq, sorted(seq), f"key {k}: {seq}")
            for eid in eids:
                self.assertEqual([r["status"] for r in per[eid]][-1], 200, eid)
                self.assertEqual(len({r["headers"]["idempotency-key"] for r in per[eid]}), 1, eid)

    # -- jq and xref failures ------------------------------------------------------

    def test_jq_runtime_error_dead_letters_with_message_route_and_step(self):
        s = self.standin
        path = "/jq/erp"
        m = "'{event: .event_id, sku: (.data.lines[0].sku | tonumber)}'"
        hub = self.start_hub("targets:\n" + target("erp", s.url(path)) +
                             "routes:\n" + route("numeric-skus", ["shipment.confirmed"],
                                                 [("erp", m)]))
        self.post(hub, [ship("jq-bad", "SHP-JQ-1", sku="WIDGET"),
                        ship("jq-good", "SHP-JQ-2", sku="12345")])
        self.wait_states(hub, ["jq-bad"], ("dead_lettered",))
        self.wait_states(hub, ["jq-good"])
        dead = self.deliveries(hub, state="dead")
        self.assertEqual([d["event_id"] for d in dead], ["jq-bad"])
        err = dead[0]["last_error"]
        self.assertIn("jq", err)
        self.assertIn("Invalid numeric literal", err)   # jq 1.6's own words
        self.assertIn("while parsing 'WIDGET'", err)
        self.assertIn("numeric-skus", err)              # the route
        self.assertIn("step 0", err)                    # the step
        self.assertEqual(dead[0].get("error_class"), "jq", dead[0])
        self.assertEqual(self.deliveries(hub, state="dead", error_class="jq")[0]["id"], dead[0]["id"])
        ev = self.get_event(hub, "jq-bad")
        errs = [t.get("error", "") for t in self.attempts(ev["timeline"])]
        self.assertTrue(any("while parsing 'WIDGET'" in e for e in errs), ev["timeline"])
        reqs = s.requests(path)
        self.assertEqual([r["body"] for r in reqs], [{"event": "jq-good", "sku": 12345}],
                         "a delivery whose mapping failed reached the target")

    def test_half_open_probe_that_never_reaches_the_target_is_not_lost(self):
        """The breaker's one probe slot, handed to a delivery that ends before any
        request (its filter says no, its mapping fails), must come back: otherwise the
        breaker stays half-open with a probe "in flight" forever and the target gets
        nothing again until the hub restarts."""
        s = self.standin
        path = "/probe/erp"
        m = "'{event: .event_id, sku: (.data.lines[0].sku | tonumber)}'"
        hub = self.start_hub("targets:\n" + target("erp", s.url(path), max_attempts=1) +
                             "routes:\n" + route("probe", ["shipment.confirmed"], [("erp", m)],
                                                 filter="'.data.warehouse != \"DC9\"'"))
        # Five 503s (one attempt each: dead at once) open the breaker.
        s.rule(path=path, status=503)
        tripped = [ship(f"probe-t{i}", f"SHP-PR-T{i}", sku="1") for i in range(5)]
        self.post(hub, tripped)
        self.wait_states(hub, [e["event_id"] for e in tripped], ("dead_lettered",))
        # While it is open: first in line a filtered event and a mapping error, then
        # two good ones. The target is fixed; the probe after the cool-down goes to
        # the first in line.
        self.post(hub, [ship("probe-skip", "SHP-PR-S", warehouse="DC9", sku="2"),
                        ship("probe-jq", "SHP-PR-J", sku="WIDGET"),
                        ship("probe-ok1", "SHP-PR-1", sku="3"),
                        ship("probe-ok2", "SHP-PR-2", sku="4")])
        s.clear_rules()
        self.wait_states(hub, ["probe-ok1", "probe-ok2"],
                         what="the good deliveries after the breaker's cool-down")
        self.assertEqual(self.delivery_of(hub, "probe-skip")["state"], "skipped")
        self.assertEqual(self.delivery_of(hub, "probe-jq")["state"], "dead")
        self.assertEqual(sorted(r["body"]["event"] for r in s.ok(path)), ["probe-ok1", "probe-ok2"])

    # -- filter and steps ------------------------------------------------------------

    def test_filter_skips_and_second_step_waits_for_the_first(self):
        s = self.standin
        erp, billing = "/steps/erp", "/steps/billing"
        hub = self.start_hub(
            "targets:\n" + target("erp", s.url(erp), max_attempts=50, max_backoff=300) +
            target("billing", s.url(billing)) +
            "routes:\n" + route("two-step", ["shipment.confirmed"],
                                [("erp", "'{event: .event_id, to: \"erp\"}'"),
                                 ("billing", "'{event: .event_id, to: \"billing\", "
                                             "customer: .data.customer}'")],
                                filter="'.data.warehouse != \"DC9\"'"))
        s.rule(path=erp, status=503, match='"steps-1"')
        self.post(hub, [ship("steps-skip", "SHP-ST-0", warehouse="DC9"),
                        ship("steps-1", "SHP-ST-1")])

        # The filter said no: the route is skipped, the event is done, nothing was sent.
        ev = self.wait_states(hub, ["steps-skip"])["steps-skip"]
        self.assertEqual([(d["step"], d["state"]) for d in ev["deliveries"]], [(0, "skipped")])

        # While the ERP refuses, billing gets nothing and has no delivery yet.
        poll("the ERP to refuse steps-1 three times",
             lambda: len(s.requests(erp)) >= 3, HANG_GUARD_S)
        self.assertEqual(s.requests(billing), [])
        ev = self.get_event(hub, "steps-1")
        self.assertEqual(ev["state"], "processing")
        self.assertEqual([(d["step"], d["target"], d["state"]) for d in ev["deliveries"]],
                         [(0, "erp", "pending")])

        s.clear_rules()
        ev = self.wait_states(hub, ["steps-1"])["steps-1"]
        self.assertEqual([(d["step"], d["target"], d["state"]) for d in ev["deliveries"]],
                         [(0, "erp", "done"), (1, "billing", "done")])
        e_reqs, b_reqs = s.requests(erp), s.requests(billing)
        self.assertEqual({r["body"]["event"] for r in e_reqs + b_reqs}, {"steps-1"},
                         "the filtered event was sent")
        self.assertEqual(e_reqs[-1]["status"], 200)
        self.assertEqual([r["body"] for r in b_reqs],
                         [{"event": "steps-1", "to": "billing", "customer": "ACME"}])
        self.assertGreater(b_reqs[0]["n"], e_reqs[-1]["n"], "billing before the ERP accepted")
        # Both steps carry the event's trace, each its own Idempotency-Key.
        tp = lambda r: TRACEPARENT_RE.match(r["headers"]["traceparent"]).group(1)  # noqa: E731
        self.assertEqual({tp(r) for r in e_reqs + b_reqs}, {tp(e_reqs[0])})
        self.assertNotEqual(e_reqs[0]["headers"]["idempotency-key"],
                            b_reqs[0]["headers"]["idempotency-key"])
        check_delivery_headers(self, e_reqs + b_reqs)

    # -- mapping, xref and headers -------------------------------------------------

    def test_mapping_xref_and_headers_on_the_wire(self):
        s = self.standin
        path = "/map/erp"
        m = ("'{delivery: .data.shipment_id, plant: xref(\"plant\"; .data.warehouse), "
             "account: $xref.account[.data.customer], "
             "items: [.data.lines[] | {material: .sku, quantity: .qty}]}'")
        hub = self.start_hub(
            'xref:\n  plant: {DC1: "1000", DC2: "2000"}\n  account: {ACME: "ACC-0042"}\n'
            "targets:\n" + target("erp", s.url(path), extra=(
                "    bearer_env: XD_TEST_ERP_TOKEN\n"
                '    headers: {X-Plant: "1000", X-Source: crossdock}\n')) +
            "routes:\n" + route("shipments", ["shipment.confirmed"], [("erp", m)]),
            env={"XD_TEST_ERP_TOKEN": "s3cret-t0ken"})
        self.post(hub, [ship("evt-0001", "SHP-1001"),
                        ship("map-2", "SHP-1002", warehouse="DC2", customer="GLOBEX"),
                        ship("map-9", "SHP-1009", warehouse="DC9")])
        self.wait_states(hub, ["evt-0001", "map-2"])
        # Both store drivers keep master-data holds.
        self.wait_states(hub, ["map-9"], ("awaiting_master_data",))

        reqs = s.requests(path)
        check_delivery_headers(self, reqs)
        bodies = {r["body"]["delivery"]: r for r in reqs}
        self.assertEqual(sorted(bodies), ["SHP-1001", "SHP-1002"])
        self.assertEqual(bodies["SHP-1001"]["body"], {
            "delivery": "SHP-1001", "plant": "1000", "account": "ACC-0042",
            "items": [{"material": "SKU-1", "quantity": 3}, {"material": "SKU-2", "quantity": 1.5}]})
        self.assertEqual(bodies["SHP-1002"]["body"]["plant"], "2000")
        self.assertIsNone(bodies["SHP-1002"]["body"]["account"])  # $xref: missing is null
        # The documented derivation (docs/targets.md): event evt-0001, route
        # shipments, step 0, target erp.
        self.assertEqual(bodies["SHP-1001"]["headers"]["idempotency-key"],
                         "37607621-c1ab-8827-a036-1a3b6c4f1171")
        for r in reqs:
            h = r["headers"]
            self.assertEqual(h.get("authorization"), "Bearer s3cret-t0ken")
            self.assertEqual(h.get("x-plant"), "1000")
            self.assertEqual(h.get("x-source"), "crossdock")
            self.assertTrue(h.get("user-agent", "").startswith("crossdock/"), h)
            self.assertNotIn("expect", h)
        self.assertNotIn("s3cret-t0ken", hub.read_log(), "the bearer token was logged")

        # xref() on a missing entry: held for the entry, with the documented message.
        self.assertEqual(self.deliveries(hub, state="dead"), [])
        waiting = self.deliveries(hub, state="held")
        self.assertEqual([d["event_id"] for d in waiting], ["map-9"])
        self.assertIn("xref plant: no entry for DC9", waiting[0]["last_error"])
        self.assertEqual(waiting[0]["route"], "shipments")


class CircuitTest(unittest.TestCase):
    """Targets down for 30 s: the breaker keeps the hub from hammering them."""

    OUTAGE_S = 30
    N = 20            # events posted during the outage, each to every target
    HANDFUL = 60      # without a breaker: ~N x 15 attempts per target in 30 s

    def setUp(self):
        self.s1 = StandIn().start()          # answers 503 / hangs up on two of its paths
        self.s2 = StandIn().start()          # stopped for the outage: connection refused
        self.addCleanup(self.s1.stop)
        self.addCleanup(self.s2.stop)

    def test_circuit_opens_probes_and_everything_flows_after_recovery(self):
        s1, s2 = self.s1, self.s2
        retry = dict(max_attempts=50, initial=100, max_backoff=2000, timeout_ms=10000)
        cfg = ("targets:\n" +
               target("refused", s2.url("/down/refused"), **retry) +
               target("hangup", s1.url("/down/hangup"), **retry) +
               target("unavail", s1.url("/down/503"), **retry) +
               target("healthy", s1.url("/down/ok"), **retry) +
               "routes:\n" +
               "".join(route(f"to-{t}", ["goods.received"], [(t, "'{event: .event_id}'")])
                       for t in ("refused", "hangup", "unavail", "healthy")))
        hub = Hub(config_extra=cfg).start(timeout=HANG_GUARD_S)

        def stop_hub():
            rc = hub.stop()
            log = hub.read_log()
            hub.cleanup()
            self.assertFalse(xdtest.sanitizer_report(log), "sanitizer report:\n" + log)
            self.assertEqual(rc, 0, "no clean stop on SIGTERM:\n" + log)
        self.addCleanup(stop_hub)

        def state(eid):
            st, _, body = hub.get_event(eid)
            self.assertEqual(st, 200, body)
            return body["state"]

        # Warm up: every target takes one event (connections established).
        st, _, body = hub.post_events(receipt("cb-warm"))
        self.assertEqual(st, 202, body)
        poll("the warm-up event", lambda: state("cb-warm") == "delivered", HANG_GUARD_S)

        # The outage: one stand-in gone, the other hangs up on one path and 503s another.
        s2.stop()
        s1.rule(path="/down/hangup", down=True)
        s1.rule(path="/down/503", status=503, error="maintenance")
        began = time.monotonic()
        eids = [f"cb-{i:02d}" for i in range(self.N)]
        st, _, body = hub.post_events({"events": [receipt(e) for e in eids]})
        self.assertEqual(st, 202, body)

        # A healthy target is not held up by the three that are down.
        poll("the healthy target to get every event during the outage",
             lambda: {r["body"]["event"] for r in s1.ok("/down/ok")} >= set(eids), HANG_GUARD_S)

        while time.monotonic() - began < self.OUTAGE_S:
            time.sleep(0.5)

        # Nothing was lost or dead-lettered because a target was down.
        st, _, body = hub.request("GET", "/v1/deliveries?state=dead")
        self.assertEqual(body["deliveries"], [], "dead-lettered because a target was down")
        tried = {}
        for t in ("refused", "hangup", "unavail"):
            st, _, body = hub.request("GET", f"/v1/deliveries?state=pending&target={t}&limit=1000")
            self.assertEqual(st, 200, body)
            pend = body["deliveries"]
            self.assertEqual(sorted(d["event_id"] for d in pend), eids, t)
            tried[t] = sum(d["attempts"] for d in pend)
        refused_503 = [r for r in s1.requests("/down/503") if r["status"] == 503]
        print(f"\ncircuit: attempts during a {self.OUTAGE_S} s outage with {self.N} deliveries "
              f"per target: {tried} (hub's count); the 503 stand-in saw {len(refused_503)}",
              file=sys.stderr)
        for t, n in tried.items():
            self.assertGreater(n, 0, t)
            self.assertLessEqual(n, self.HANDFUL, f"{t}: {n} attempts during the outage: "
                                 "the circuit did not open")
        self.assertLessEqual(abs(len(refused_503) - tried["unavail"]), 2,
                             "the hub's attempt count and the stand-in's disagree")
        self.assertLessEqual(len(refused_503), self.HANDFUL)
        # Probed while open: attempts went on after the first burst (the first probe
        # goes 5 s after the breaker opens), but only a few.
        at = sorted(r["at"] for r in refused_503)
        self.assertGreaterEqual(at[-1] - at[0], 4.0, "no probe during the outage")

        # Back up: the stand-in on the same port, the rules gone. The next probe
        # closes each breaker and everything flows.
        s2.start()
        s1.clear_rules()
        poll("every event to be delivered after recovery",
             lambda: all(state(e) == "delivered" for e in eids), 120)
        for t, (s, p) in {"refused": (s2, "/down/refused"), "hangup": (s1, "/down/hangup"),
                          "unavail": (s1, "/down/503"), "healthy": (s1, "/down/ok")}.items():
            got = sorted(r["body"]["event"] for r in s.ok(p))
            want = eids if t == "refused" else sorted(eids + ["cb-warm"])
            self.assertEqual(sorted(set(got)), want, t)
            # At least once: a copy sent again (an answer that came after the timeout)
            # carries the same key.
            for e in want:
                keys = {r["headers"]["idempotency-key"] for r in s.requests(p)
                        if r["body"]["event"] == e}
                self.assertEqual(len(keys), 1, f"{t} {e}: {keys}")
            check_delivery_headers(self, s.requests(p))
        st, _, body = hub.request("GET", "/v1/deliveries?state=dead")
        self.assertEqual(body["deliveries"], [])


if __name__ == "__main__":
    xdtest.main()
