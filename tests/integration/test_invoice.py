"""`crossdock invoice`: the X12 810 of a customer's month, from the charges a real hub
recorded (a route with a rate step, events posted over the API).

- the 810 lists every charge of the period (service date in the month, a void's
  reversals included, the next month's charges not), its TDS is the exact total
  GET /v1/charges gives, and the bill-to carries the xref account;
- crossdock's own X12 reader finds its envelope sound (the only complaint: 810
  is not a set it maps);
- the interchange control number increases from run to run and across
  processes (a counter in the store); a run with nothing to invoice uses none;
- --out writes the file whole; bad usage exits 2.
"""
import os
import re
import sys
import time
import unittest
from decimal import Decimal

sys.path.insert(0, os.path.dirname(__file__))
import xdtest  # noqa: E402
from xdtest import HubTest, run_cli  # noqa: E402

HANG_GUARD_S = 120 if xdtest.SANITIZED else 60

CONFIG = """
xref:
  account: {ACME: "ACC-0042"}
partners:
  WMS1: {customer: ACME, warehouse: DC1}
routes:
  - name: rating
    on: [shipment.confirmed, shipment.voided]
    steps:
      - rate: true
rate_cards:
  - customer: ACME
    currency: USD
    effective_from: 2026-01-01
    charges:
      - {code: HANDLING_SHIPMENT, on: shipment.confirmed, per: shipment, price: "2.50"}
      - {code: PICK_UNIT, on: shipment.confirmed, per: unit, price: "0.35"}
      - {code: PICK_LINE, on: shipment.confirmed, per: line, price: "0.20", min_amount: "1.00"}
"""


def shipment(i, day, qtys):
    return {"event_id": f"inv-{i}", "type": "shipment.confirmed",
            "occurred_at": f"{day}T10:00:00Z",
            "data": {"warehouse": "DC1", "shipment_id": f"INV-S{i}", "order_id": f"O{i}",
                     "customer": "ACME",
                     "lines": [{"sku": f"SKU-{k}", "qty": q} for k, q in enumerate(qtys)]}}


def void(i, day):
    return {"event_id": f"inv-void-{i}", "type": "shipment.voided",
            "occurred_at": f"{day}T11:00:00Z",
            "data": {"warehouse": "DC1", "shipment_id": f"INV-S{i}", "reason": "cancelled"}}


def segments(x12):
    return [s.strip() for s in x12.split("~") if s.strip()]


def isa13(x12):
    return int(segments(x12)[0].split("*")[13])


class InvoiceTest(HubTest):
    config_extra = CONFIG

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        events = [shipment(1, "2026-11-03", [12, 3]), shipment(2, "2026-11-17", [1]),
                  shipment(3, "2026-11-30", [40, 2, 5]), shipment(4, "2026-12-01", [7]),
                  void(1, "2026-11-04")]
        st, _, body = cls.hub.post_events({"events": events})
        assert st == 202, body

        def count(frm, to):
            st, _, b = cls.hub.request(
                "GET", f"/v1/charges?customer=ACME&from={frm}&to={to}")
            return b if st == 200 else None

        deadline = time.monotonic() + HANG_GUARD_S
        while True:
            nov, dec = count("2026-11-01", "2026-11-30"), count("2026-12-01", "2026-12-31")
            # 3 charges a shipment, 3 reversals for the void
            if nov and dec and len(nov["charges"]) == 12 and len(dec["charges"]) == 3:
                break
            if time.monotonic() > deadline:
                raise AssertionError(f"charges never arrived: {nov} {dec}")
            time.sleep(0.05)
        cls.november = nov

    def invoice(self, *args):
        return run_cli("invoice", "-c", self.hub.config_path, *args, env=self.hub.env,
                       timeout=HANG_GUARD_S)

    def test_invoice_lists_the_month(self):
        rc, out, err = self.invoice("--customer", "ACME", "--period", "2026-11",
                                    "--date", "2026-12-01")
        self.assertEqual(rc, 0, err)
        segs = segments(out)
        isa = segs[0].split("*")
        self.assertEqual((isa[5], isa[6].strip(), isa[7], isa[8].strip()),
                         ("ZZ", "CROSSDOCK", "ZZ", "WMS1"))  # the partner of ACME
        self.assertTrue(segs[1].startswith("GS*IN*CROSSDOCK*WMS1*"), segs[1])
        self.assertIn("BIG*20261201*ACME-202611", segs)
        self.assertIn("N1*BT*ACME*91*ACC-0042", segs)
        self.assertIn("DTM*186*20261101", segs)
        self.assertIn("DTM*187*20261130", segs)
        it1 = [s for s in segs if s.startswith("IT1*")]
        self.assertEqual(len(it1), 12, it1)
        self.assertIn("CTT*12", segs)
        refs = {s.split("*")[2] for s in segs if s.startswith("REF*ZZ*")}
        self.assertEqual(refs, {c["charge_id"] for c in self.november["charges"]})

        # TDS: the exact total of the period, in cents
        total = sum(Decimal(c["amount"]) for c in self.november["charges"])
        tds = [s for s in segs if s.startswith("TDS*")]
        self.assertEqual(tds, [f"TDS*{int(total * 100)}"])
        # every line: quantity × price is its amount (LS lines are lump sums)
        line_sum = sum(Decimal(s.split("*")[2]) * Decimal(s.split("*")[4]) for s in it1)
        self.assertEqual(line_sum, total)
        self.assertTrue(any("*LS*" in s for s in it1), it1)      # PICK_LINE raised to 1.00
        self.assertTrue(any("*-15*EA*" in s for s in it1), it1)  # the void's reversal
        self.assertRegex(err, r"invoice ACME-202611: 12 lines, total [0-9.]+ USD, "
                              r"interchange \d{9}")

        # crossdock's reader: a sound envelope, only "not supported"
        path = os.path.join(self.hub.dir, "nov.810")
        with open(path, "w") as f:
            f.write(out)
        rc, _, err = run_cli("convert", "--from", "x12", path)
        self.assertEqual(rc, 2)
        problems = err.strip().splitlines()
        self.assertEqual(len(problems), 1, err)
        self.assertIn("transaction set 810 is not supported", problems[0])

    def test_control_numbers_increase(self):
        first = self.invoice("--customer", "ACME", "--period", "2026-11")
        second = self.invoice("--customer", "ACME", "--period", "2026-11")
        self.assertEqual(first[0], 0, first[2])
        self.assertEqual(second[0], 0, second[2])
        a, b = isa13(first[1]), isa13(second[1])
        self.assertGreater(b, a)
        for out, n in ((first[1], a), (second[1], b)):
            segs = segments(out)
            self.assertEqual(int(segs[1].split("*")[6]), n)     # GS06
            self.assertEqual(segs[-1], f"IEA*1*{n:09d}")
            self.assertEqual(segs[-2], f"GE*1*{n}")

        # nothing to invoice: exit 2, and no number used
        rc, out, err = self.invoice("--customer", "NOBODY", "--period", "2026-11")
        self.assertEqual(rc, 2)
        self.assertEqual(out, "")
        self.assertIn("nothing to invoice", err)

        # --out: the file whole, nothing on stdout, the next number
        path = os.path.join(self.hub.dir, "acme-2026-12.x12")
        rc, out, err = self.invoice("--customer", "ACME", "--period", "2026-12", "--out", path)
        self.assertEqual(rc, 0, err)
        self.assertEqual(out, "")
        with open(path) as f:
            text = f.read()
        self.assertEqual(isa13(text), b + 1)
        self.assertIn("TDS*", text)
        self.assertEqual([n for n in os.listdir(self.hub.dir) if n.endswith(".tmp")], [])

    def test_usage(self):
        for args in (["--period", "2026-11"], ["--customer", "ACME"],
                     ["--customer", "ACME", "--period", "2026-13"],
                     ["--customer", "ACME", "--period", "2026-11", "--date", "2026-02-30"],
                     ["--customer", "ACME", "--period", "2026-11", "extra"]):
            rc, out, err = self.invoice(*args)
            self.assertEqual(rc, 2, (args, out, err))
            self.assertTrue(err.strip(), args)
        rc, out, err = self.invoice("--customer", "ACME", "--period", "2026-11",
                                    "--number", "X" * 23)
        self.assertEqual(rc, 2, err)
        self.assertIn("invoice number", err)
        self.assertTrue(re.search(r"must be 1 to 22 characters", err), err)


if __name__ == "__main__":
    xdtest.main()
