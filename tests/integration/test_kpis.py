"""Business KPIs per warehouse and customer (docs/operations.md#kpis):
`GET /v1/kpis` and the `crossdock_kpi_*`, `crossdock_revenue_charged` and
`crossdock_exceptions_open` lines of /metrics, from a real flow: shipments
posted to the ERP, rated and charged to billing; receipts posted to the ERP;
one refused delivery (an open exception).
"""
import datetime
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import xdtest  # noqa: E402
from xdstandin import StandIn, poll  # noqa: E402
from xdtest import Hub  # noqa: E402

HANG_GUARD_S = 90
AN_HOUR_AGO = (datetime.datetime.now(datetime.timezone.utc) -
               datetime.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")


def ship(eid, warehouse, customer):
    e = xdtest.event(1)  # lines: 3 + 1.5 units
    e["event_id"] = eid
    e["occurred_at"] = AN_HOUR_AGO
    e["data"].update({"shipment_id": "S-" + eid, "warehouse": warehouse, "customer": customer})
    return e


def receipt(eid, warehouse="DC1"):
    return {"event_id": eid, "type": "goods.received", "occurred_at": AN_HOUR_AGO,
            "data": {"warehouse": warehouse, "receipt_id": "R-" + eid, "customer": "ACME",
                     "lines": [{"sku": "SKU-1", "qty": 5}]}}


class KpiTest(unittest.TestCase):

    def test_kpis_per_warehouse_and_customer(self):
        s = StandIn().start()
        self.addCleanup(s.stop)
        s.rule(path="/kpi/erp", match="R-BAD", status=400)
        cfg = ("targets:\n"
               f"  erp: {{type: http, url: \"{s.url('/kpi/erp')}\"}}\n"
               f"  billing: {{type: http, url: \"{s.url('/kpi/billing')}\"}}\n"
               "routes:\n"
               "  - name: shipments\n    on: [shipment.confirmed]\n"
               "    steps: [{deliver: erp}, {rate: true}, {deliver: billing}]\n"
               "  - name: receipts\n    on: [goods.received]\n    steps: [{deliver: erp}]\n"
               "rate_cards:\n"
               "  - customer: ACME\n    currency: USD\n    effective_from: 2026-01-01\n"
               "    charges:\n"
               "      - {code: HANDLING_SHIPMENT, on: shipment.confirmed, per: shipment, price: \"2.50\"}\n"
               "      - {code: PICK_UNIT, on: shipment.confirmed, per: unit, price: \"0.35\"}\n")
        hub = Hub(config_extra=cfg)
        self.addCleanup(hub.cleanup)
        hub.start(timeout=HANG_GUARD_S)
        st, _, body = hub.post_events({"events": [
            ship("K1", "DC1", "ACME"), ship("K2", "DC1", "ACME"), ship("K3", "DC2", "ACME"),
            receipt("RC1"), receipt("RC2", "DC2"), receipt("BAD")]})
        self.assertEqual(st, 202, body)
        poll("delivered", lambda: all(hub.get_event(e)[2]["state"] == "delivered"
                                      for e in ("K1", "K2", "K3", "RC1", "RC2")), HANG_GUARD_S)
        poll("the refused receipt", lambda: hub.get_event("BAD")[2]["state"] == "dead_lettered",
             HANG_GUARD_S)

        def kpis():
            st, _, body = hub.request("GET", "/v1/kpis")
            self.assertEqual(st, 200, body)
            return body
        # The snapshot is kept a few seconds: wait for one that has everything.
        k = poll("KPIs with every charge",
                 lambda: (lambda b: sum(x["count"] for x in b["ship_to_charge"]) == 6 and b)(kpis()),
                 HANG_GUARD_S)
        s2c = {(x["warehouse"], x["customer"]): x for x in k["ship_to_charge"]}
        self.assertEqual(sorted(s2c), [("DC1", "ACME"), ("DC2", "ACME")])
        self.assertEqual(s2c[("DC1", "ACME")]["count"], 4)   # 2 shipments x 2 charges
        self.assertGreaterEqual(s2c[("DC1", "ACME")]["p50_s"], 3600)  # occurred an hour ago
        self.assertLess(s2c[("DC1", "ACME")]["max_s"], 3600 + HANG_GUARD_S * 2)
        r2p = {(x["warehouse"], x["customer"]): x["count"] for x in k["receipt_to_post"]}
        self.assertEqual(r2p, {("DC1", "ACME"): 1, ("DC2", "ACME"): 1})
        rev = {(x["customer"], x["warehouse"], x["currency"]): x["amount"] for x in k["revenue"]}
        # 2.50 + 4.5 x 0.35 = 2.50 + 1.58 (1.575 half-even) = 4.08 per shipment, exactly.
        self.assertEqual(rev, {("ACME", "DC1", "USD"): "8.16", ("ACME", "DC2", "USD"): "4.08"})
        exc = [x for x in k["exceptions_open"] if x["category"] == "dead_letter"]
        self.assertEqual(exc, [{"category": "dead_letter", "warehouse": "DC1", "customer": "ACME",
                                "lt_1h": 1, "1h_1d": 0, "1d_7d": 0, "gt_7d": 0, "total": 1}])

        m = hub.request("GET", "/metrics")[2].decode()
        self.assertIn('crossdock_revenue_charged{customer="ACME",warehouse="DC1",currency="USD"} 8.16', m)
        self.assertIn('crossdock_kpi_ship_to_charge_seconds_count{warehouse="DC1",customer="ACME"} 4', m)
        self.assertIn('crossdock_kpi_receipt_to_post_seconds_count{warehouse="DC2",customer="ACME"} 1', m)
        self.assertIn('crossdock_exceptions_open{category="dead_letter",warehouse="DC1",'
                      'customer="ACME",age="lt_1h"} 1', m)
        rc = hub.stop()
        log = hub.read_log()
        self.assertFalse(xdtest.sanitizer_report(log), log)
        self.assertEqual(rc, 0, log)


if __name__ == "__main__":
    xdtest.main()
