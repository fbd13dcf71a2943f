"""Master-data holds, exception routing and alerts, end to end: the real hub
delivering to the real stand-in (tests/standin/standin.py), which also plays
the chat webhook of exceptions.alert.

Covered (docs/exceptions.md):

- events whose mapping needs an xref entry that does not exist yet (a new
  SKU) wait, held (`awaiting_master_data`, `GET /v1/deliveries?state=held`,
  `crossdock_held_deliveries`), never dead-lettered and never sent; a later
  event of the same business key waits behind them while other keys flow;
- one master_data exception per missing entry (not per event), its owner
  from exceptions.owners (first match by category and warehouse), and one
  chat alert for it;
- a restart keeps the hold; `PUT /v1/xref/{table}/{key}` (ops scope; read
  is refused) releases them: each is delivered exactly once, in order per
  key, with its own Idempotency-Key, mapped with the new entry; the
  exception resolves itself; a restart keeps the entry (GET shows it, a new
  event maps with it at once);
- a config reload (SIGHUP, POST /v1/admin/reload) that adds an entry
  releases what waited for it;
- alerts: one message per exception, at most one per category per throttle
  period, the rest as one summary.
"""
import os
import signal
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import xdtest  # noqa: E402
from xdstandin import StandIn, IDEM_RE, poll  # noqa: E402
from xdtest import Hub  # noqa: E402

HANG_GUARD_S = 90  # a hang guard only, never an assertion on speed

OPS = "ops-secret-1"
READER = "read-secret-1"
ADMIN = "admin-secret-1"
KEYS = {"ops": (OPS, ["ops", "read", "events:write"]), "reader": (READER, ["read"]),
        "admin": (ADMIN, ["admin"])}

MAP = ("'{event: .event_id, shipment: .data.shipment_id, "
       "items: [.data.lines[] | {material: xref(\"material\"; .sku), qty: .qty}]}'")


def ship(eid, shipment, skus, warehouse="DC1"):
    e = xdtest.event(1)
    e["event_id"] = eid
    e["data"].update({"warehouse": warehouse, "shipment_id": shipment, "order_id": "O-" + eid,
                      "lines": [{"sku": s, "qty": 1} for s in skus]})
    return e


def config(erp_url, chat_url, xref_extra="", throttle="1h", bad_url=None):
    c = ("xref:\n  material: {SKU-1: \"M-1\", SKU-2: \"M-2\"" + xref_extra + "}\n"
         "targets:\n"
         f"  erp:\n    type: http\n    url: {erp_url}\n"
         "    retry: {max_attempts: 3, initial_backoff_ms: 50, max_backoff_ms: 200}\n"
         f"  chat:\n    type: http\n    url: {chat_url}\n")
    if bad_url:
        c += (f"  bad:\n    type: http\n    url: {bad_url}\n"
              "    retry: {max_attempts: 1, initial_backoff_ms: 50, max_backoff_ms: 50}\n")
    c += ("routes:\n"
          "  - name: shipments\n    on: [shipment.confirmed]\n    steps:\n"
          f"      - deliver: erp\n        map: {MAP}\n")
    if bad_url:
        c += ("  - name: refused\n    on: [goods.received]\n    steps:\n"
              "      - deliver: bad\n")
    c += ("exceptions:\n  owners:\n"
          "    - {category: master_data, warehouse: DC1, owner: mdm-dc1}\n"
          "    - {category: master_data, owner: mdm}\n"
          "    - {owner: ops}\n"
          f"  alert: {{target: chat, throttle: {throttle}}}\n")
    return c


class HoldsTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.standin = StandIn().start()

    @classmethod
    def tearDownClass(cls):
        cls.standin.stop()

    def start_hub(self, cfg):
        hub = Hub(config_extra=cfg, keys=KEYS)
        self.addCleanup(self.finish, hub)
        return hub.start(timeout=HANG_GUARD_S)

    def finish(self, hub):
        rc = hub.stop()
        log = hub.read_log()
        hub.cleanup()
        self.assertFalse(xdtest.sanitizer_report(log), "sanitizer report:\n" + log)
        self.assertEqual(rc, 0, "crossdock serve did not stop cleanly:\n" + log)

    def restart(self, hub):
        rc = hub.stop()
        self.assertEqual(rc, 0, hub.read_log())
        hub.start(timeout=HANG_GUARD_S)

    def get(self, hub, path, key=OPS):
        st, _, body = hub.request("GET", path, key=key)
        self.assertEqual(st, 200, body)
        return body

    def post(self, hub, events):
        st, _, body = hub.post_events({"events": events}, key=OPS)
        self.assertEqual(st, 202, body)

    def state(self, hub, eid):
        return self.get(hub, f"/v1/events/{eid}")["state"]

    def wait_state(self, hub, eids, state):
        poll(f"{eids} to be {state}",
             lambda: all(self.state(hub, e) == state for e in eids), HANG_GUARD_S)

    def held(self, hub):
        return sorted(d["event_id"] for d in
                      self.get(hub, "/v1/deliveries?state=held")["deliveries"])

    def exceptions(self, hub, category):
        return self.get(hub, f"/v1/exceptions?category={category}")["exceptions"]

    def test_unknown_sku_waits_then_flows_once_in_order(self):
        s = self.standin
        erp, chat = "/holds/erp", "/holds/chat"
        hub = self.start_hub(config(s.url(erp), s.url(chat)))
        # A1 and A2 share a business key (shipment SHP-A); A1 needs the new SKU.
        self.post(hub, [ship("A1", "SHP-A", ["SKU-1", "SKU-NEW"]),
                        ship("B1", "SHP-B", ["SKU-NEW"]),
                        ship("C1", "SHP-C", ["SKU-1", "SKU-2"]),
                        ship("D1", "SHP-D", ["SKU-ZZZ"], warehouse="DC2")])
        self.post(hub, [ship("A2", "SHP-A", ["SKU-2"])])
        self.wait_state(hub, ["C1"], "delivered")
        self.wait_state(hub, ["A1", "B1", "D1"], "awaiting_master_data")
        poll("three held deliveries", lambda: self.held(hub) == ["A1", "B1", "D1"], HANG_GUARD_S)
        self.assertEqual(self.state(hub, "A2"), "processing")  # behind A1, same key
        self.assertEqual(self.get(hub, "/v1/deliveries?state=dead")["deliveries"], [])
        sent = [r["body"]["event"] for r in s.requests(erp)]
        self.assertEqual(sent, ["C1"], "a held event (or one behind it) reached the ERP")
        held = self.get(hub, "/v1/deliveries?state=held")["deliveries"]
        for d in held:
            self.assertIn("xref material: no entry for SKU-", d["last_error"])
            self.assertEqual(d["error_class"], "master_data")

        # One exception per missing entry, owned by the first matching rule.
        exc = poll("two master_data exceptions",
                   lambda: len(self.exceptions(hub, "master_data")) == 2 and
                   self.exceptions(hub, "master_data"), HANG_GUARD_S)
        owners = {("SKU-NEW" in x["reason"]): x["owner"] for x in exc}
        self.assertEqual(owners, {True: "mdm-dc1", False: "mdm"})
        self.assertTrue(all(x["state"] == "open" for x in exc), exc)
        mine = self.get(hub, "/v1/exceptions?owner=mdm-dc1")["exceptions"]
        self.assertEqual([(x["category"], x["warehouse"], x["customer"]) for x in mine],
                         [("master_data", "DC1", "ACME")])

        metrics = hub.request("GET", "/metrics", key=OPS)[2].decode()
        self.assertIn('crossdock_held_deliveries{target="erp"} 3', metrics)
        self.assertIn("crossdock_master_data_missing 2", metrics)

        # A restart keeps the holds.
        self.restart(hub)
        self.assertEqual(self.held(hub), ["A1", "B1", "D1"])
        self.assertEqual(self.state(hub, "A2"), "processing")

        # Only ops (or admin) may add an entry; bad requests are refused.
        st, _, body = hub.request("PUT", "/v1/xref/material/SKU-NEW", body={"value": "M-NEW"},
                                  key=READER)
        self.assertEqual(st, 403, body)
        st, _, body = hub.request("PUT", "/v1/xref/material/SKU-NEW", body={"nope": 1}, key=OPS)
        self.assertEqual(st, 400, body)
        self.assertEqual(self.held(hub), ["A1", "B1", "D1"])

        st, _, body = hub.request("PUT", "/v1/xref/material/SKU-NEW", body='"M-NEW"', key=OPS,
                                  headers={"Content-Type": "application/json"})
        self.assertEqual(st, 200, body)
        self.assertEqual(body["released"], 2)
        self.wait_state(hub, ["A1", "A2", "B1"], "delivered")
        self.assertEqual(self.held(hub), ["D1"])

        reqs = sorted(s.requests(erp), key=lambda r: r["n"])
        events = [r["body"]["event"] for r in reqs]
        self.assertEqual(sorted(events), ["A1", "A2", "B1", "C1"], "lost or duplicated")
        self.assertLess(events.index("A1"), events.index("A2"), "order per key broken")
        keys = [r["headers"].get("idempotency-key", "") for r in reqs]
        for k in keys:
            self.assertRegex(k, IDEM_RE)
        self.assertEqual(len(set(keys)), 4)
        a1 = next(r for r in reqs if r["body"]["event"] == "A1")
        self.assertEqual(a1["body"]["items"], [{"material": "M-1", "qty": 1},
                                               {"material": "M-NEW", "qty": 1}])
        timeline = self.get(hub, "/v1/events/A1")["timeline"]
        outcomes = [t.get("outcome") for t in timeline if t.get("kind") == "attempt"]
        self.assertEqual(outcomes[-3:], ["held", "released", "ok"], outcomes)
        # The master_data exception A1 was held for, opened and then resolved by the entry.
        self.assertEqual([(t["category"], t["outcome"]) for t in timeline
                          if t.get("kind") == "exception"],
                         [("master_data", "opened"), ("master_data", "resolved")], timeline)

        exc = {("SKU-NEW" in x["reason"]): x for x in self.exceptions(hub, "master_data")}
        self.assertEqual(exc[True]["state"], "resolved")
        self.assertEqual(exc[False]["state"], "open")

        # A restart keeps the entry: it is listed and maps a new event at once.
        self.restart(hub)
        table = self.get(hub, "/v1/xref/material")
        self.assertIn({"key": "SKU-NEW", "value": "M-NEW", "source": "api"}, table["entries"])
        self.assertIn({"key": "SKU-1", "value": "M-1", "source": "config"}, table["entries"])
        self.assertEqual(self.get(hub, "/v1/xref")["tables"],
                         [{"table": "material", "config_entries": 2, "api_entries": 1}])
        self.post(hub, [ship("E1", "SHP-E", ["SKU-NEW"])])
        self.wait_state(hub, ["E1"], "delivered")
        self.assertEqual(self.held(hub), ["D1"])

        # A config reload that adds the other entry releases D1.
        with open(hub.config_path) as f:
            text = f.read()
        with open(hub.config_path, "w") as f:
            f.write(text.replace('SKU-2: "M-2"', 'SKU-2: "M-2", SKU-ZZZ: "M-Z"'))
        hub.proc.send_signal(signal.SIGHUP)
        self.wait_state(hub, ["D1"], "delivered")
        self.assertEqual(self.held(hub), [])
        self.assertTrue(all(x["state"] == "resolved" for x in self.exceptions(hub, "master_data")))
        events = [r["body"]["event"] for r in s.requests(erp)]
        self.assertEqual(sorted(events), ["A1", "A2", "B1", "C1", "D1", "E1"])

        # So does POST /v1/admin/reload.
        self.post(hub, [ship("F1", "SHP-F", ["SKU-YYY"])])
        self.wait_state(hub, ["F1"], "awaiting_master_data")
        with open(hub.config_path) as f:
            text = f.read()
        with open(hub.config_path, "w") as f:
            f.write(text.replace('SKU-ZZZ: "M-Z"', 'SKU-ZZZ: "M-Z", SKU-YYY: "M-Y"'))
        st, _, body = hub.request("POST", "/v1/admin/reload", key=ADMIN)
        self.assertEqual(st, 200, body)
        self.wait_state(hub, ["F1"], "delivered")

        # The chat heard of each master_data exception once (throttle 1 h: one message).
        msgs = [r["body"] for r in s.requests(chat) if r["body"].get("category") == "master_data"]
        self.assertEqual(len(msgs), 1, msgs)
        self.assertIn(msgs[0]["exceptions"][0]["owner"], ("mdm-dc1", "mdm"))

        st, _, body = hub.request("DELETE", "/v1/xref/material/SKU-NEW", key=OPS)
        self.assertEqual(st, 200, body)
        st, _, body = hub.request("DELETE", "/v1/xref/material/SKU-NEW", key=OPS)
        self.assertEqual(st, 404, body)

    def test_alerts_one_per_exception_throttled_per_category(self):
        s = self.standin
        erp, chat, bad = "/alerts/erp", "/alerts/chat", "/alerts/bad"
        s.rule(path=bad, status=400)
        hub = self.start_hub(config(s.url(erp), s.url(chat), throttle="10s", bad_url=s.url(bad)))

        def receipt(eid):
            return {"event_id": eid, "type": "goods.received",
                    "occurred_at": "2026-11-28T15:00:00Z",
                    "data": {"warehouse": "DC1", "receipt_id": "R-" + eid, "customer": "ACME",
                             "lines": [{"sku": "SKU-1", "qty": 5}]}}

        def told():
            return [r for r in s.requests(chat) if r["body"].get("category") == "dead_letter"]

        self.post(hub, [receipt("R1")])
        poll("the first alert", told, HANG_GUARD_S)
        self.post(hub, [receipt(f"R{i}") for i in range(2, 6)])
        poll("five dead letters", lambda: len(self.exceptions(hub, "dead_letter")) == 5,
             HANG_GUARD_S)
        poll("every exception told",
             lambda: sum(m["body"]["count"] for m in told()) == 5, HANG_GUARD_S)
        msgs = sorted(told(), key=lambda r: r["n"])
        ids = [x["id"] for m in msgs for x in m["body"]["exceptions"]]
        self.assertEqual(sorted(ids), sorted(x["id"] for x in self.exceptions(hub, "dead_letter")))
        self.assertEqual(len(ids), len(set(ids)), "an exception was alerted twice")
        self.assertTrue(any(m["body"]["count"] > 1 for m in msgs), "no summary while throttled")
        for a, b in zip(msgs, msgs[1:]):
            self.assertGreaterEqual(b["at"] - a["at"], 9.5, "throttle not kept")
        for m in msgs:
            for x in m["body"]["exceptions"]:
                self.assertEqual(x["owner"], "ops")  # the catch-all rule
                self.assertEqual(x["warehouse"], "DC1")
                self.assertEqual(x["customer"], "ACME")


if __name__ == "__main__":
    xdtest.main()
