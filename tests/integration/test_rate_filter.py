"""A route's filter decides before its first step runs, a rate step too.

A route `on: [shipment.confirmed]` with `filter: .data.customer == "ACME"`
and a rate step first: ACME's shipment is rated, GLOBEX's delivery is skipped
(filtered) and produces no charge, although GLOBEX has a rate card too.
"""
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import xdtest  # noqa: E402
from xdtest import HubTest  # noqa: E402

HANG_GUARD_S = 120 if xdtest.SANITIZED else 60

CONFIG = """
routes:
  - name: rating
    on: [shipment.confirmed]
    filter: '.data.customer == "ACME"'
    steps:
      - rate: true
rate_cards:
  - customer: ACME
    currency: USD
    effective_from: 2026-01-01
    charges:
      - {code: HANDLING_SHIPMENT, on: shipment.confirmed, per: shipment, price: "2.50"}
  - customer: GLOBEX
    currency: EUR
    effective_from: 2026-01-01
    charges:
      - {code: HANDLING_SHIPMENT, on: shipment.confirmed, per: shipment, price: "3.00"}
"""


def shipment(i, customer):
    return {"event_id": f"rf-{i}", "type": "shipment.confirmed",
            "occurred_at": "2026-11-03T10:00:00Z",
            "data": {"warehouse": "DC1", "shipment_id": f"RF-S{i}", "order_id": f"O{i}",
                     "customer": customer, "lines": [{"sku": "SKU-1", "qty": 2}]}}


class RateFilterTest(HubTest):
    config_extra = CONFIG

    def wait_for(self, what, fn):
        deadline = time.monotonic() + HANG_GUARD_S
        while True:
            v = fn()
            if v:
                return v
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            time.sleep(0.05)

    def deliveries(self, state):
        st, _, body = self.hub.request("GET", f"/v1/deliveries?state={state}&limit=100")
        self.assertEqual(st, 200, body)
        return body["deliveries"]

    def test_filter_before_rate_step(self):
        st, _, body = self.hub.post_events({"events": [shipment(1, "ACME"), shipment(2, "GLOBEX")]})
        self.assertEqual(st, 202, body)
        done = self.wait_for("ACME rated", lambda: [d for d in self.deliveries("done")
                                                    if d["event_id"] == "rf-1"])
        self.assertEqual(len(done), 1)
        skipped = self.wait_for("GLOBEX filtered", lambda: [d for d in self.deliveries("skipped")
                                                            if d["event_id"] == "rf-2"])
        self.assertEqual(len(skipped), 1)
        st, _, charges = self.hub.request("GET", "/v1/charges")
        self.assertEqual(st, 200, charges)
        self.assertEqual({c["customer"] for c in charges["charges"]}, {"ACME"}, charges)


if __name__ == "__main__":
    unittest.main()
