"""The reconciliation report end to end: the real hub delivering to the real
stand-in, then `crossdock reconcile` and GET/POST /v1/reconciliation.

Each scenario injects one kind of break and checks that the report finds
exactly those breaks (docs/reconciliation.md):

- a clean run: every event posted, every charge billed, exports that agree:
  no break, exit 0, `"clean": true`;
- a target that drops deliveries while answering 200: the ERP's and
  billing's exports lack them (missing_in_erp, missing_in_billing), the run
  exits 3, and each break opens exactly one `reconciliation` exception, not
  one per run;
- a voided shipment whose reversal billing rejects: billed_not_shipped, the
  difference being what is still billed;
- an export with a changed quantity (quantity_mismatch against erp_export),
  and an ERP that acknowledges another quantity than the WMS sent
  (quantity_mismatch from its `ack` answer);
- a storage day without a storage charge: a snapshot the storage route
  skipped, and a day with no snapshot between two;
- a shipment confirmed twice under two event ids: duplicate_charge;
- an ERP that refuses a shipment (not_posted) and billing that refuses a
  charge (posted_not_billed); once fixed and replayed, the next full report
  is clean and resolves both exceptions;
- with reconcile.interval_s a running hub reports by itself;
- bad input: an export that cannot be read exits 2 naming the row.

The grace period is 0 so that a break is a break at once; every wait is a
poll with a generous hang guard, never an assertion on speed.
"""
import json
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import xdtest  # noqa: E402
from xdstandin import StandIn, poll  # noqa: E402
from xdtest import Hub, run_cli  # noqa: E402

HANG_GUARD_S = 90

ERP_MAP = ("'{doc: (.data.shipment_id // .data.receipt_id), type: .type, "
           "items: [.data.lines[]? | {sku, quantity: .qty}]}'")
ERP_ACK = ("'{reference: .ref, quantity: (.quantity // "
           "([.received.items[]?.quantity] | if length > 0 then add else null end))}'")


def ship(eid, shipment, qty=3, day="2026-11-28", warehouse="DC1"):
    return {"event_id": eid, "type": "shipment.confirmed", "occurred_at": f"{day}T14:03:11Z",
            "source": "wms-test",
            "data": {"warehouse": warehouse, "shipment_id": shipment, "order_id": "ORD-" + eid,
                     "customer": "ACME",
                     "lines": [{"sku": "SKU-1", "qty": qty}, {"sku": "SKU-2", "qty": 1.5}]}}


def void(eid, shipment):
    return {"event_id": eid, "type": "shipment.voided", "occurred_at": "2026-11-28T16:00:00Z",
            "source": "wms-test",
            "data": {"warehouse": "DC1", "shipment_id": shipment, "reason": "test void"}}


def receipt(eid, rid, qty=5):
    return {"event_id": eid, "type": "goods.received", "occurred_at": "2026-11-28T15:00:00Z",
            "source": "wms-test",
            "data": {"warehouse": "DC1", "receipt_id": rid, "customer": "ACME", "pallets": 2,
                     "lines": [{"sku": "SKU-1", "qty": qty}]}}


def snapshot(eid, as_of, warehouse="DC1", pallets=4):
    return {"event_id": eid, "type": "inventory.snapshot", "occurred_at": f"{as_of}T23:00:00Z",
            "source": "wms-test",
            "data": {"warehouse": warehouse, "customer": "ACME", "as_of": as_of,
                     "items": [{"sku": "SKU-1", "qty": 40, "pallets": pallets}]}}


def config(si, tag, storage_filter=None):
    erp, bill = f"/erp/{tag}", f"/billing/{tag}"
    # A route's filter is applied by its first deliver step: the storage route
    # then posts snapshots to the ERP before rating them.
    flt = (f"\n    filter: '{storage_filter}'" if storage_filter else "")
    first = ("\n      - deliver: erp\n        map: '{type: .type, items: []}'"
             if storage_filter else "")
    return f"""
reconcile:
  grace_s: 0
targets:
  erp:
    type: http
    url: {si.url(erp)}
    retry: {{max_attempts: 2, initial_backoff_ms: 20, max_backoff_ms: 50}}
    ack: {ERP_ACK}
  billing:
    type: http
    url: {si.url(bill)}
    retry: {{max_attempts: 2, initial_backoff_ms: 20, max_backoff_ms: 50}}
    ack: '{{reference: .ref}}'
routes:
  - name: documents
    on: [shipment.confirmed, shipment.voided, goods.received]
    steps:
      - deliver: erp
        map: {ERP_MAP}
      - rate: true
      - deliver: billing
  - name: storage
    on: [inventory.snapshot]{flt}
    steps:{first}
      - rate: true
      - deliver: billing
rate_cards:
  - customer: ACME
    currency: USD
    effective_from: 2026-01-01
    charges:
      - {{code: HANDLING_SHIPMENT, on: shipment.confirmed, per: shipment, price: "2.50"}}
      - {{code: PICK_UNIT, on: shipment.confirmed, per: unit, price: "0.35"}}
      - {{code: RECEIVE_PALLET, on: goods.received, per: pallet, price: "6.00"}}
      - {{code: STORAGE_PALLET_DAY, on: inventory.snapshot, per: pallet_day, price: "0.55"}}
"""


class Reconcile(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.si = StandIn().start()

    @classmethod
    def tearDownClass(cls):
        cls.si.stop()

    def setUp(self):
        self.tag = self.id().rsplit(".", 1)[-1]
        self.si.clear_rules()
        self.si.rule(path=f"/erp/{self.tag}", echo=True)
        self.hub = None

    def tearDown(self):
        if self.hub:
            self.hub.cleanup()

    def start(self, **kw):
        self.hub = Hub(config_extra=config(self.si, self.tag, **kw)).start()
        return self.hub

    def post(self, *events):
        st, _, body = self.hub.post_events({"events": list(events)})
        self.assertEqual(st, 202, body)

    def settle(self):
        """Waits until no delivery is pending (each is done or dead)."""
        def idle():
            st, _, body = self.hub.request("GET", "/v1/deliveries?state=pending")
            return st == 200 and not body["deliveries"]
        poll("deliveries to settle", idle, timeout=HANG_GUARD_S)

    def reconcile(self, *args):
        rc, out, err = run_cli("reconcile", "-c", self.hub.config_path, "--json", *args)
        self.assertIn(rc, (0, 3), err)
        rep = json.loads(out)
        self.assertEqual(rc == 0, rep["clean"], out)
        return rc, rep

    def erp_export(self, change=None, per_sku=False):
        """The ERP's export from what the stand-in kept (not what it dropped); change:
        {document: quantity} or, per SKU, {(document, sku): quantity}."""
        change = change or {}
        rows = ["type,document,reference,sku,quantity" if per_sku
                else "type,document,reference,quantity"]
        for r in self.si.ok(f"/erp/{self.tag}"):
            b = r["body"]
            if r.get("dropped") or b["type"] == "shipment.voided":
                continue
            kind = "shipment" if b["type"].startswith("shipment") else "receipt"
            ref = f"erp-{self.tag}-{r['n']}"
            if per_sku:
                for i in b["items"]:
                    qty = change.get((b["doc"], i["sku"]), i["quantity"])
                    rows.append(f"{kind},{b['doc']},{ref},{i['sku']},{qty:g}")
                continue
            qty = change.get(b["doc"], sum(i["quantity"] for i in b["items"]))
            rows.append(f"{kind},{b['doc']},{ref},{qty:g}")
        return self.write("erp.csv", rows)

    def billing_export(self):
        rows = ["charge_id,amount,currency"]
        for r in self.si.ok(f"/billing/{self.tag}"):
            if not r.get("dropped"):
                b = r["body"]
                rows.append(f"{b['charge_id']},{b['amount']},{b['currency']}")
        return self.write("billing.csv", rows)

    def write(self, name, rows):
        path = os.path.join(self.hub.dir, name)
        with open(path, "w") as f:
            f.write("\n".join(rows) + "\n")
        return path

    def kinds(self, rep):
        return sorted((b["category"], b["object"]["type"], b["object"]["key"])
                      for b in rep["breaks"])

    def exceptions(self):
        st, _, body = self.hub.request("GET", "/v1/exceptions?category=reconciliation")
        self.assertEqual(st, 200, body)
        return [x for x in body["exceptions"] if x["state"] != "resolved"]

    def charges(self, shipment):
        st, _, body = self.hub.request("GET", "/v1/charges?customer=ACME")
        self.assertEqual(st, 200, body)
        return [c for c in body["charges"] if c["reference"] == shipment]

    # ---- scenarios ----

    def test_clean(self):
        self.start()
        self.post(ship("c-1", "SHP-C1"), ship("c-2", "SHP-C2", qty=7), receipt("c-3", "RCV-C3"),
                  snapshot("c-4", "2026-11-27"), snapshot("c-5", "2026-11-28"))
        self.settle()
        rc, rep = self.reconcile()
        self.assertEqual((rc, rep["breaks"]), (0, []))
        self.assertEqual(rep["checked"]["objects"], 5)
        rc, rep = self.reconcile("--erp-export", self.erp_export(),
                                 "--billing-export", self.billing_export())
        self.assertEqual((rc, rep["breaks"]), (0, []), rep)
        self.assertEqual(rep["checked"]["erp_export_rows"], 3)
        rc, out, err = run_cli("reconcile", "-c", self.hub.config_path)
        self.assertEqual(rc, 0, err)
        self.assertIn("result: clean", out)
        st, _, body = self.hub.request("GET", "/v1/reconciliation")
        self.assertEqual((st, body["clean"]), (200, True), body)
        self.assertEqual(self.exceptions(), [])
        # The ledger: what each system has of one shipment.
        st, _, body = self.hub.request("GET", "/v1/ledger?type=shipment&key=SHP-C2")
        self.assertEqual(st, 200, body)
        (obj,) = body["objects"]
        self.assertEqual(obj["wms"]["quantity"], "8.5")
        (post,) = obj["erp"]
        self.assertEqual((post["state"], post["quantity"]), ("done", "8.5"))
        self.assertTrue(post["reference"].startswith("erp-"), post)
        self.assertEqual({c["state"] for c in obj["billing"]}, {"done"})

    def test_target_drops_while_answering_200(self):
        self.start()
        self.si.rule(path=f"/erp/{self.tag}", drop=True, match="SHP-E1")
        self.si.rule(path=f"/billing/{self.tag}", drop=True, match='"reference":"SHP-D1"')
        self.post(ship("d-1", "SHP-D1"), ship("d-2", "SHP-E1"), ship("d-3", "SHP-OK"))
        self.settle()
        # The hub's own books agree: every answer was 2xx.
        rc, rep = self.reconcile()
        self.assertEqual((rc, rep["breaks"]), (0, []))
        args = ("--erp-export", self.erp_export(), "--billing-export", self.billing_export())
        rc, rep = self.reconcile(*args)
        self.assertEqual(rc, 3)
        self.assertEqual(self.kinds(rep), [("missing_in_billing", "shipment", "SHP-D1"),
                                           ("missing_in_billing", "shipment", "SHP-D1"),
                                           ("missing_in_erp", "shipment", "SHP-E1")])
        dropped = {c["charge_id"]: c["amount"] for c in self.charges("SHP-D1")}
        for b in rep["breaks"]:
            if b["category"] == "missing_in_billing":
                self.assertEqual(b["difference"], "-" + dropped[b["object"]["charge_id"]])
                self.assertEqual(b["systems"], ["billing", "billing_export"])
            else:
                self.assertEqual(b["difference"], "-4.5")
            self.assertIsNotNone(b["exception_id"])
        self.assertEqual(rep["exceptions"]["opened"], 3)
        # One exception per break, not one per run.
        rc, rep = self.reconcile(*args)
        self.assertEqual((rc, rep["exceptions"]["opened"], len(rep["breaks"])), (3, 0, 3))
        self.assertEqual(len(self.exceptions()), 3)
        # The same over HTTP, the exports uploaded as CSV text.
        with open(args[1]) as f:
            erp = f.read()
        with open(args[3]) as f:
            bill = f.read()
        st, _, body = self.hub.request("POST", "/v1/reconciliation",
                                       body={"erp_export": erp, "billing_export": bill})
        self.assertEqual(st, 200, body)
        self.assertEqual(self.kinds(body), self.kinds(rep))
        self.assertEqual(len(self.exceptions()), 3)

    def test_voided_shipment_reversal_rejected(self):
        self.start()
        self.post(ship("v-1", "SHP-V1"), ship("v-2", "SHP-V2"))
        self.settle()
        # Billing refuses negative amounts: the void's reversals dead-letter.
        self.si.rule(path=f"/billing/{self.tag}", status=400, match='"amount":"-',
                     error="credits are not accepted")
        self.post(void("v-3", "SHP-V1"))

        # The first refused reversal holds its shipment's line: the others wait behind it.
        def refused():
            st, _, body = self.hub.request("GET", "/v1/deliveries?state=dead")
            return st == 200 and body["deliveries"]
        poll("a refused reversal", refused, timeout=HANG_GUARD_S)
        rc, rep = self.reconcile()
        self.assertEqual(rc, 3)
        self.assertEqual(self.kinds(rep), [("billed_not_shipped", "shipment", "SHP-V1")])
        (b,) = rep["breaks"]
        billed = sum(float(c["amount"]) for c in self.charges("SHP-V1")
                     if not c["amount"].startswith("-"))
        self.assertAlmostEqual(float(b["difference"]), billed)
        self.assertEqual((b["expected"], b["currency"]), ("0", "USD"))
        self.assertIn("credits are not accepted", b["detail"])

    def test_changed_quantity(self):
        self.start()
        # The ERP books 99 of SHP-Q2 whatever it was sent (its answer says so).
        self.si.rule(path=f"/erp/{self.tag}", match="SHP-Q2", reply={"quantity": 99})
        self.post(ship("q-1", "SHP-Q1"), ship("q-2", "SHP-Q2"), receipt("q-3", "RCV-Q3"))
        self.settle()
        rc, rep = self.reconcile()
        self.assertEqual(self.kinds(rep), [("quantity_mismatch", "shipment", "SHP-Q2")])
        (b,) = rep["breaks"]
        self.assertEqual((b["expected"], b["actual"], b["difference"]), ("4.5", "99", "94.5"))
        self.assertEqual(b["systems"], ["wms", "erp"])
        # Someone changes the receipt's quantity in the ERP: its export says 4.
        rc, rep = self.reconcile("--erp-export", self.erp_export(change={"RCV-Q3": 4, "SHP-Q2": 4.5}))
        self.assertEqual(rc, 3)
        self.assertEqual(self.kinds(rep), [("quantity_mismatch", "receipt", "RCV-Q3"),
                                           ("quantity_mismatch", "shipment", "SHP-Q2")])
        exp = [b for b in rep["breaks"] if b["object"]["key"] == "RCV-Q3"][0]
        self.assertEqual((exp["expected"], exp["actual"], exp["difference"]), ("5", "4", "-1"))
        self.assertEqual(exp["systems"], ["wms", "erp_export"])
        # Per SKU: SHP-Q1's SKUs were changed in the ERP though its total (4.5) still agrees.
        rc, rep = self.reconcile("--no-exceptions", "--erp-export", self.erp_export(
            per_sku=True, change={("SHP-Q1", "SKU-1"): 2, ("SHP-Q1", "SKU-2"): 2.5,
                                  ("SHP-Q2", "SKU-1"): 3, ("SHP-Q2", "SKU-2"): 1.5}))
        self.assertEqual(rc, 3)
        self.assertEqual(sorted((b["object"]["key"], b["key"].rsplit(":", 1)[1], b["difference"])
                                for b in rep["breaks"] if b["systems"] == ["wms", "erp_export"]),
                         [("SHP-Q1", "SKU-1", "-1"), ("SHP-Q1", "SKU-2", "1.0")])

    def test_missing_storage_charge(self):
        # The storage route takes DC1 only: DC2's day is never charged.
        self.start(storage_filter='.data.warehouse == "DC1"')
        self.post(snapshot("s-1", "2026-11-26"), snapshot("s-2", "2026-11-28"),
                  snapshot("s-3", "2026-11-28", warehouse="DC2", pallets=3))
        self.settle()
        rc, rep = self.reconcile()
        self.assertEqual(rc, 3)
        self.assertEqual(self.kinds(rep), [("storage_not_charged", "storage_day", "ACME:DC1:2026-11-27"),
                                           ("storage_not_charged", "storage_day", "ACME:DC2:2026-11-28")])
        by = {b["object"]["key"]: b for b in rep["breaks"]}
        self.assertEqual(by["ACME:DC2:2026-11-28"]["difference"], "-1.65")
        self.assertEqual(by["ACME:DC1:2026-11-27"]["difference"], "-2.20")  # the 26th's 4 pallets
        # A window that leaves the gap out finds only the DC2 day.
        rc, rep = self.reconcile("--from", "2026-11-28", "--to", "2026-11-28")
        self.assertEqual(self.kinds(rep), [("storage_not_charged", "storage_day", "ACME:DC2:2026-11-28")])

    def test_duplicate_charge(self):
        self.start()
        # The WMS sends one shipment twice under two event ids.
        self.post(ship("u-1", "SHP-U1"), ship("u-2", "SHP-U1"))
        self.settle()
        rc, rep = self.reconcile()
        self.assertEqual(rc, 3)
        self.assertEqual(self.kinds(rep), [("duplicate_charge", "shipment", "SHP-U1"),
                                           ("duplicate_charge", "shipment", "SHP-U1")])
        self.assertEqual(sorted(b["difference"] for b in rep["breaks"]), ["1.58", "2.50"])

    def test_not_posted_not_billed_then_resolved(self):
        self.start()
        self.si.rule(path=f"/erp/{self.tag}", status=400, match="SHP-N1", error="plant closed")
        self.si.rule(path=f"/billing/{self.tag}", status=400, match='"reference":"SHP-B1"',
                     error="unknown account")
        self.post(ship("n-1", "SHP-N1"), ship("n-2", "SHP-B1"), ship("n-3", "SHP-OK"))

        def dead():
            st, _, body = self.hub.request("GET", "/v1/deliveries?state=dead")
            return st == 200 and len(body["deliveries"]) >= 2 and body["deliveries"]
        poll("the refusals", dead, timeout=HANG_GUARD_S)

        def ok_billed():  # the good shipment's two charges (SHP-B1's second waits behind its first)
            return len([r for r in self.si.ok(f"/billing/{self.tag}")
                        if r["body"]["reference"] == "SHP-OK"]) == 2
        poll("SHP-OK billed", ok_billed, timeout=HANG_GUARD_S)
        rc, rep = self.reconcile()
        self.assertEqual(rc, 3)
        self.assertEqual(self.kinds(rep), [("not_posted", "shipment", "SHP-N1"),
                                           ("posted_not_billed", "shipment", "SHP-B1")])
        by = {b["category"]: b for b in rep["breaks"]}
        self.assertEqual(by["not_posted"]["difference"], "-4.5")
        self.assertIn("plant closed", by["not_posted"]["detail"])
        billed = sum(float(c["amount"]) for c in self.charges("SHP-B1"))
        self.assertAlmostEqual(float(by["posted_not_billed"]["difference"]), -billed)
        self.assertEqual(len(self.exceptions()), 2)
        # Fixed at the source and replayed: the next full run finds nothing and
        # resolves both exceptions.
        self.si.clear_rules()
        self.si.rule(path=f"/erp/{self.tag}", echo=True)
        for target in ("erp", "billing"):
            st, _, body = self.hub.request("POST", "/v1/deliveries/replay",
                                           body={"target": target})
            self.assertEqual(st, 200, body)

        def clean():
            rc, out, _ = run_cli("reconcile", "-c", self.hub.config_path, "--json")
            return rc == 0 and json.loads(out)
        rep = poll("a clean report", clean, timeout=HANG_GUARD_S, interval=0.5)
        self.assertEqual(rep["breaks"], [])
        self.assertEqual(self.exceptions(), [])

    def test_on_a_clock(self):
        # With reconcile.interval_s, a running hub reports by itself.
        self.hub = Hub(config_extra=config(self.si, self.tag).replace(
            "  grace_s: 0\n", "  grace_s: 0\n  interval_s: 1\n")).start()
        self.si.rule(path=f"/erp/{self.tag}", status=400, match="SHP-K1")
        self.post(ship("k-1", "SHP-K1"))

        def opened():
            return self.exceptions()
        (x,) = poll("a reconciliation exception", opened, timeout=HANG_GUARD_S, interval=0.2)
        self.assertTrue(x["reason"].startswith("not_posted: shipment SHP-K1"), x)
        self.assertEqual(x["event_id"], "k-1")
        self.assertEqual(self.hub.stop(), 0)
        self.assertIn("reconciliation: 1 break (1 exception opened", self.hub.read_log())

    def test_bad_input(self):
        self.start()
        bad = self.write("bad.csv", ["charge_id,amount", "chg-1,12.5", "chg-2,twelve"])
        rc, out, err = run_cli("reconcile", "-c", self.hub.config_path, "--billing-export", bad)
        self.assertEqual(rc, 2, out)
        self.assertIn("row 3: amount: 'twelve' is not a number", err)
        nocol = self.write("nocol.csv", ["doc,qty", "SHP-1,3"])
        rc, out, err = run_cli("reconcile", "-c", self.hub.config_path, "--erp-export", nocol)
        self.assertEqual(rc, 2, out)
        self.assertIn("no column 'document'", err)
        rc, out, err = run_cli("reconcile", "-c", self.hub.config_path, "--from", "2026-13-01")
        self.assertEqual(rc, 2, out)
        st, _, body = self.hub.request("GET", "/v1/reconciliation?from=yesterday")
        self.assertEqual(st, 400, body)


if __name__ == "__main__":
    unittest.main()
