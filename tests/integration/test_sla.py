"""Business SLA clocks, end to end (docs/exceptions.md#sla-clocks).

A route with `sla: [{target: T, within: D}]`: an event not delivered to T
within D of the hub receiving it opens exactly one exception (category
sla, one per event, route and target), before anyone asks; events that
reached T in time open none, nor do events the route finished with nothing
for T (rated to no charge); a restart opens no second one.
"""
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import xdtest  # noqa: E402
from xdstandin import StandIn, poll  # noqa: E402
from xdtest import Hub  # noqa: E402

HANG_GUARD_S = 90


def receipt(eid):
    return {"event_id": eid, "type": "goods.received", "occurred_at": "2026-11-28T15:00:00Z",
            "data": {"warehouse": "DC1", "receipt_id": "R-" + eid, "customer": "ACME",
                     "lines": [{"sku": "SKU-1", "qty": 5}]}}


def ship(eid):
    e = xdtest.event(1)
    e["event_id"] = eid
    e["data"]["shipment_id"] = "S-" + eid
    return e


class SlaTest(unittest.TestCase):

    def setUp(self):
        self.standin = StandIn().start()
        self.addCleanup(self.standin.stop)

    def test_one_exception_per_breach_none_for_delivered(self):
        s = self.standin
        down = f"http://127.0.0.1:{xdtest.free_port()}/erp"   # nothing listens: refused
        s.rule(path="/sla/billing", match="LATE", status=503)  # this one never gets through
        cfg = ("targets:\n"
               f"  erp:\n    type: http\n    url: {down}\n"
               "    retry: {max_attempts: 1000, initial_backoff_ms: 100, max_backoff_ms: 500}\n"
               f"  billing:\n    type: http\n    url: {s.url('/sla/billing')}\n"
               "    retry: {max_attempts: 1000, initial_backoff_ms: 100, max_backoff_ms: 500}\n"
               "routes:\n"
               "  - name: receipts\n    on: [goods.received]\n"
               "    steps: [{deliver: erp}]\n"
               "    sla: [{target: erp, within: 1s}]\n"
               "  - name: shipments\n    on: [shipment.confirmed]\n"
               "    steps: [{deliver: billing}]\n"
               "    sla: [{target: billing, within: 5s}]\n"
               # Receipts without pallets are rated to no charge: nothing for billing, no breach.
               "  - name: receipt-charges\n    on: [goods.received]\n"
               "    steps: [{rate: true}, {deliver: billing}]\n"
               "    sla: [{target: billing, within: 5s}]\n"
               "rate_cards:\n"
               "  - {customer: ACME, currency: USD, effective_from: 2026-01-01, charges:\n"
               "     [{code: RECEIVE_PALLET, on: goods.received, per: pallet, price: \"6.00\"}]}\n")
        hub = Hub(config_extra=cfg)
        self.addCleanup(hub.cleanup)
        hub.start(timeout=HANG_GUARD_S)

        def post(events):
            st, _, body = hub.post_events({"events": events})
            self.assertEqual(st, 202, body)

        def sla():
            st, _, body = hub.request("GET", "/v1/exceptions?category=sla")
            self.assertEqual(st, 200, body)
            return body["exceptions"]

        post([receipt("R1"), receipt("R2"), receipt("R3")])
        post([ship("OK1"), ship("OK2")])
        poll("OK1, OK2 delivered",
             lambda: all(hub.get_event(e)[2]["state"] == "delivered" for e in ("OK1", "OK2")),
             HANG_GUARD_S)
        post([ship("LATE1")])  # after OK1 and OK2: once it breaches, they were judged
        poll("the breaches", lambda: len(sla()) == 4, HANG_GUARD_S)
        time.sleep(3)  # a few more rounds of the clock: no second exception for anything

        got = sla()
        self.assertEqual(sorted(x["event_id"] for x in got), ["LATE1", "R1", "R2", "R3"])
        for x in got:
            self.assertEqual(x["state"], "open")
            if x["event_id"] == "LATE1":
                self.assertEqual(x["target"], "billing")
                self.assertIn("not delivered to billing within 5s", x["reason"])
            else:
                self.assertEqual(x["target"], "erp")
                self.assertIn("route receipts: not delivered to erp within 1s", x["reason"])

        # A restart neither forgets nor repeats.
        self.assertEqual(hub.stop(), 0, hub.read_log())
        hub.start(timeout=HANG_GUARD_S)
        post([receipt("R4")])
        poll("R4's breach", lambda: len(sla()) == 5, HANG_GUARD_S)
        time.sleep(3)
        self.assertEqual(sorted(x["event_id"] for x in sla()),
                         ["LATE1", "R1", "R2", "R3", "R4"])
        rc = hub.stop()
        log = hub.read_log()
        self.assertFalse(xdtest.sanitizer_report(log), log)
        self.assertEqual(rc, 0, log)


if __name__ == "__main__":
    xdtest.main()
