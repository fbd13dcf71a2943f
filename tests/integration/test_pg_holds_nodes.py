"""Master-data holds with two hub nodes on one PostgreSQL database (a private
cluster, tests/integration/xdpg.py; skipped, saying why, without the
PostgreSQL server binaries).

Covered (docs/exceptions.md, docs/deployment.md):

- an event posted to node B whose mapping needs a missing xref entry is held,
  with one master_data exception, whichever node mapped it;
- the entry added through node A's API reaches node B's tables
  (GET /v1/xref on B lists it) and releases the hold: the event is delivered
  once, mapped with the entry, no dead letter, no exception left open;
- a later event posted to B maps with the entry at once;
- the entry removed through A is removed on B too, and a new event needing it
  is held again.
"""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import xdpg  # noqa: E402
import xdtest  # noqa: E402
from xdstandin import StandIn, IDEM_RE, poll  # noqa: E402
from xdtest import Hub  # noqa: E402

HANG_GUARD_S = 90  # a hang guard only, never an assertion on speed

OPS = "ops-secret-1"
KEYS = {"ops": (OPS, ["ops", "read", "events:write"])}
MAP = ("'{event: .event_id, "
       "items: [.data.lines[] | {material: xref(\"material\"; .sku), qty: .qty}]}'")


def ship(eid, shipment, sku):
    e = xdtest.event(1)
    e["event_id"] = eid
    e["data"].update({"shipment_id": shipment, "order_id": "O-" + eid,
                      "lines": [{"sku": sku, "qty": 1}]})
    return e


def config(erp_url):
    return ("xref:\n  material: {SKU-1: \"M-1\"}\n"
            "targets:\n"
            f"  erp:\n    type: http\n    url: {erp_url}\n"
            "    retry: {max_attempts: 3, initial_backoff_ms: 50, max_backoff_ms: 200}\n"
            "routes:\n"
            "  - name: shipments\n    on: [shipment.confirmed]\n    steps:\n"
            f"      - deliver: erp\n        map: {MAP}\n")


@unittest.skipIf(xdpg.available(), xdpg.available() or "")
class PgHoldsNodesTest(unittest.TestCase):
    def setUp(self):
        self.standin = StandIn().start()
        self.addCleanup(self.standin.stop)
        c = xdpg.cluster()
        url = c.url(c.new_database("holds"))
        self.erp = "/nodes/erp"
        self.a, self.b = (Hub(config_extra=config(self.standin.url(self.erp)), keys=KEYS,
                              pg_url=url) for _ in range(2))
        for h in (self.a, self.b):
            self.addCleanup(self.finish, h)
        self.a.start(timeout=HANG_GUARD_S)
        self.b.start(timeout=HANG_GUARD_S)

    def finish(self, hub):
        rc = hub.stop()
        log = hub.read_log()
        hub.cleanup()
        self.assertFalse(xdtest.sanitizer_report(log), "sanitizer report:\n" + log)
        self.assertEqual(rc, 0, "crossdock serve did not stop cleanly:\n" + log)

    def get(self, hub, path):
        st, _, body = hub.request("GET", path, key=OPS)
        self.assertEqual(st, 200, body)
        return body

    def post(self, hub, events):
        st, _, body = hub.post_events({"events": events}, key=OPS)
        self.assertEqual(st, 202, body)

    def wait_state(self, hub, eid, state):
        poll(f"{eid} to be {state}",
             lambda: self.get(hub, f"/v1/events/{eid}")["state"] == state, HANG_GUARD_S)

    def has_entry(self, hub, key):
        return any(e["key"] == key and e["source"] == "api"
                   for e in self.get(hub, "/v1/xref/material")["entries"])

    def sent(self, eid):
        return [r for r in self.standin.requests(self.erp) if r["body"]["event"] == eid]

    def test_entry_added_on_one_node_releases_and_maps_on_the_other(self):
        a, b = self.a, self.b
        self.post(b, [ship("N1", "SHP-N1", "SKU-9")])
        self.wait_state(b, "N1", "awaiting_master_data")
        self.assertEqual(self.sent("N1"), [])
        exc = self.get(a, "/v1/exceptions?category=master_data")["exceptions"]
        self.assertEqual([(x["state"], "SKU-9" in x["reason"]) for x in exc], [("open", True)])

        st, _, body = a.request("PUT", "/v1/xref/material/SKU-9", body={"value": "M-9"}, key=OPS)
        self.assertEqual(st, 200, body)
        poll("node B to have SKU-9", lambda: self.has_entry(b, "SKU-9"), HANG_GUARD_S)
        self.wait_state(b, "N1", "delivered")
        reqs = self.sent("N1")
        self.assertTrue(reqs)
        self.assertEqual({r["body"]["items"][0]["material"] for r in reqs}, {"M-9"})
        keys = {r["headers"].get("idempotency-key", "") for r in reqs}
        self.assertEqual(len(keys), 1, "one delivery, sent under one Idempotency-Key")
        self.assertRegex(keys.pop(), IDEM_RE)
        self.assertEqual(self.get(b, "/v1/deliveries?state=dead")["deliveries"], [])
        self.assertEqual(self.get(b, "/v1/deliveries?state=held")["deliveries"], [])
        exc = self.get(b, "/v1/exceptions?category=master_data")["exceptions"]
        self.assertTrue(exc and all(x["state"] == "resolved" for x in exc), exc)

        # A later event posted to B maps with the entry at once.
        self.post(b, [ship("N2", "SHP-N2", "SKU-9")])
        self.wait_state(b, "N2", "delivered")
        self.assertEqual({r["body"]["items"][0]["material"] for r in self.sent("N2")}, {"M-9"})

        # Removed through A: B forgets it too, and the next event needing it waits.
        st, _, body = a.request("DELETE", "/v1/xref/material/SKU-9", key=OPS)
        self.assertEqual(st, 200, body)
        poll("node B to drop SKU-9", lambda: not self.has_entry(b, "SKU-9"), HANG_GUARD_S)
        self.post(b, [ship("N3", "SHP-N3", "SKU-9")])
        self.wait_state(a, "N3", "awaiting_master_data")
        self.assertEqual(self.sent("N3"), [])


if __name__ == "__main__":
    unittest.main(verbosity=2)
