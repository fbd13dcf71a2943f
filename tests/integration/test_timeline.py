"""GET /v1/events/{id}: the event's timeline (contract section 3) carries its charges and
the exceptions about it, in time order with the received entry and every attempt.

A route delivers to the ERP, rates, and delivers each charge to billing. The stand-in
refuses billing (400) for one shipment, so its charges are dead-lettered:

- the dead one's `charges` list each charge (id, code, quantity, unit, amount, currency,
  reverses, created_at), the same charges GET /v1/charges gives, with its billing
  delivery (the first dead, the second waiting behind it in its key's line) and
  billing_accepted false; its `exceptions` are the dead letter; an exception
  acknowledged shows a second timeline entry;
- the delivered one's charges say billing accepted them, and it has no exception;
- an event no rate card covers shows its `rating` exception;
- the timeline is in time order: received first, the rate step's attempt before the
  charges it recorded, the charges before their billing attempts, each dead letter's
  exception after its last attempt;
- an unknown event is still 404.

Runs on SQLite and on PostgreSQL (pg/test_timeline). Nothing asserts on speed.
"""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import xdtest  # noqa: E402
from xdstandin import StandIn, poll  # noqa: E402
from xdtest import Hub  # noqa: E402

HANG_GUARD_S = 120 if xdtest.SANITIZED else 60


def config(url):
    return f"""targets:
  erp:
    type: http
    url: {url}/tl/erp
    retry: {{max_attempts: 3, initial_backoff_ms: 50, max_backoff_ms: 200}}
  billing:
    type: http
    url: {url}/tl/billing
    retry: {{max_attempts: 3, initial_backoff_ms: 50, max_backoff_ms: 200}}
routes:
  - name: shipments
    on: [shipment.confirmed]
    steps:
      - deliver: erp
        map: '{{event: .event_id}}'
      - rate: true
      - deliver: billing
rate_cards:
  - customer: ACME
    currency: USD
    effective_from: 2026-01-01
    charges:
      - {{code: HANDLING_SHIPMENT, on: shipment.confirmed, per: shipment, price: "2.50"}}
      - {{code: PICK_UNIT, on: shipment.confirmed, per: unit, price: "0.35"}}
"""


def ship(eid, customer="ACME"):
    e = xdtest.event(1)
    e["event_id"] = eid
    e["data"].update({"shipment_id": "SHP-" + eid, "order_id": "ORD-" + eid,
                      "customer": customer})
    return e


class TimelineTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.standin = StandIn().start()
        # Billing refuses the charges of tl-dead: a 400 dead-letters at once.
        cls.standin.rule(path="/tl/billing", status=400, match='"tl-dead"')
        cls.hub = Hub(config_extra=config(f"http://127.0.0.1:{cls.standin.port}")).start(
            timeout=HANG_GUARD_S)
        st, _, body = cls.hub.post_events(
            {"events": [ship("tl-ok"), ship("tl-dead"), ship("tl-norate", customer="NOBODY")]})
        assert st == 202, body

    @classmethod
    def tearDownClass(cls):
        rc = cls.hub.stop()
        log = cls.hub.read_log()
        cls.hub.cleanup()
        cls.standin.stop()
        if rc != 0:
            raise AssertionError(f"crossdock serve exited {rc} on SIGTERM:\n{log}")
        if xdtest.sanitizer_report(log):
            raise AssertionError("sanitizer report in the server log:\n" + log)

    def event(self, eid):
        st, _, body = self.hub.get_event(eid)
        self.assertEqual(st, 200, body)
        return body

    def settled(self, eid, state, what):
        """Polls until eid is in state and what(answer) holds; returns the answer."""
        def check():
            b = self.event(eid)
            return b if b["state"] == state and what(b) else None
        return poll(f"{eid} to be {state}", check, HANG_GUARD_S)

    def assertInTimeOrder(self, timeline):
        ats = [t["at"] for t in timeline]
        self.assertEqual(ats, sorted(ats), timeline)
        self.assertEqual(timeline[0]["kind"], "received", timeline)
        for t in timeline:
            self.assertIn(t["kind"], ("received", "attempt", "charge", "exception"), t)

    def test_dead_lettered_billing_charges_and_exceptions(self):
        # The first charge's billing delivery is dead; the second waits behind it (a dead
        # letter holds its business key's line to the target).
        def one_dead_one_waiting(b):
            bill = sorted(d["state"] for d in b["deliveries"] if d["target"] == "billing")
            return bill == ["dead", "pending"] and len(b["exceptions"]) == 1
        ev = self.settled("tl-dead", "dead_lettered", one_dead_one_waiting)
        tl = ev["timeline"]
        self.assertInTimeOrder(tl)

        # The charges: as GET /v1/charges lists them, each with its billing delivery.
        st, _, listed = self.hub.request("GET", "/v1/charges?customer=ACME")
        self.assertEqual(st, 200, listed)
        listed = {c["charge_id"]: c for c in listed["charges"] if c["event_id"] == "tl-dead"}
        charges = {c["charge_id"]: c for c in ev["charges"]}
        self.assertEqual(sorted(charges), sorted(listed))
        self.assertEqual(sorted(c["code"] for c in ev["charges"]),
                         ["HANDLING_SHIPMENT", "PICK_UNIT"])
        billing = {d["id"]: d for d in ev["deliveries"] if d["target"] == "billing"}
        for cid, c in charges.items():
            for k in ("code", "quantity", "unit", "unit_price", "amount", "currency",
                      "service_date"):
                self.assertEqual(c[k], listed[cid][k], (k, c))
            self.assertIsNone(c["reverses"], c)
            self.assertRegex(c["created_at"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
            self.assertIs(c["billing_accepted"], False, c)
            self.assertEqual(c["billing"]["target"], "billing", c)
            self.assertEqual(c["billing"]["state"], billing[c["billing"]["delivery_id"]]["state"])
        self.assertEqual(sorted(c["billing"]["delivery_id"] for c in ev["charges"]),
                         sorted(billing))
        dead = [d for d in billing.values() if d["state"] == "dead"][0]
        dead_charge = [c for c in ev["charges"] if c["billing"]["state"] == "dead"][0]

        # The exception: the dead letter of that billing delivery.
        self.assertEqual(len(ev["exceptions"]), 1, ev["exceptions"])
        x = ev["exceptions"][0]
        self.assertEqual((x["category"], x["state"], x["event_id"], x["target"],
                          x["delivery_id"]),
                         ("dead_letter", "open", "tl-dead", "billing", dead["id"]), x)
        self.assertIn("400", x["reason"])
        self.assertIn("created_at", x)
        self.assertIn("updated_at", x)

        # The timeline: the rate step's attempt, then its charges, then their billing
        # attempts, then each dead letter's exception.
        pos = {id(t): i for i, t in enumerate(tl)}
        rate = [t for t in tl if t["kind"] == "attempt" and t["target"] == ""]
        self.assertEqual([t["outcome"] for t in rate], ["ok"], tl)
        tl_charges = [t for t in tl if t["kind"] == "charge"]
        self.assertEqual(sorted(t["charge_id"] for t in tl_charges), sorted(charges))
        for t in tl_charges:
            self.assertEqual((t["step"], t["outcome"]), ("charge", "recorded"))
            self.assertEqual(t["amount"], charges[t["charge_id"]]["amount"])
            self.assertIn(t["code"], t["detail"])
            self.assertGreater(pos[id(t)], pos[id(rate[0])], tl)
        bill_attempts = [t for t in tl if t["kind"] == "attempt" and t["target"] == "billing"]
        self.assertEqual([(t["delivery_id"], t["status"], t["outcome"]) for t in bill_attempts],
                         [(dead["id"], 400, "fail")], tl)
        self.assertGreater(pos[id(bill_attempts[0])], max(pos[id(c)] for c in tl_charges), tl)
        self.assertEqual({t["charge_id"]: t["billing"] for t in tl_charges},
                         {c["charge_id"]: c["billing"]["state"] for c in ev["charges"]})
        self.assertIn(dead_charge["charge_id"], [t["charge_id"] for t in tl_charges])
        tl_exc = [t for t in tl if t["kind"] == "exception"]
        self.assertEqual([(t["exception_id"], t["outcome"], t["category"], t["state"],
                           t["target"], t["detail"]) for t in tl_exc],
                         [(x["id"], "opened", "dead_letter", "open", "billing", x["reason"])], tl)
        self.assertEqual(tl[-1], tl_exc[0], "the dead letter's exception comes last")

        # Acknowledging an exception adds where it stands now to the timeline.
        xid = ev["exceptions"][0]["id"]
        st, _, body = self.hub.request("PATCH", f"/v1/exceptions/{xid}",
                                       body={"state": "acknowledged", "owner": "ops-dc1",
                                             "note": "billing is looking"})
        self.assertEqual(st, 200, body)
        ev = self.event("tl-dead")
        self.assertInTimeOrder(ev["timeline"])
        mine = [t for t in ev["timeline"] if t.get("exception_id") == xid]
        self.assertEqual([(t["outcome"], t["state"], t["owner"]) for t in mine],
                         [("opened", "acknowledged", "ops-dc1"),
                          ("acknowledged", "acknowledged", "ops-dc1")], mine)
        self.assertEqual(mine[1]["detail"], "billing is looking")
        self.assertEqual([x["state"] for x in ev["exceptions"] if x["id"] == xid],
                         ["acknowledged"])

    def test_billing_accepted_charges_and_no_exception(self):
        ev = self.settled("tl-ok", "delivered", lambda b: len(b["charges"]) == 2)
        self.assertInTimeOrder(ev["timeline"])
        self.assertEqual(ev["exceptions"], [])
        for c in ev["charges"]:
            self.assertIs(c["billing_accepted"], True, c)
            self.assertEqual((c["billing"]["state"], c["billing"]["target"]), ("done", "billing"))
        kinds = [t["kind"] for t in ev["timeline"]]
        self.assertEqual(kinds.count("charge"), 2, kinds)
        self.assertNotIn("exception", kinds)
        # received, erp, rate, 2 charges, 2 billing attempts
        self.assertEqual(kinds, ["received", "attempt", "attempt", "charge", "charge",
                                 "attempt", "attempt"], ev["timeline"])

    def test_event_no_rate_card_covers_shows_its_rating_exception(self):
        ev = self.settled("tl-norate", "dead_lettered", lambda b: b["exceptions"])
        self.assertEqual(ev["charges"], [])
        self.assertEqual([x["category"] for x in ev["exceptions"]], ["rating"], ev["exceptions"])
        tl = ev["timeline"]
        self.assertInTimeOrder(tl)
        self.assertEqual(tl[-1]["kind"], "exception", tl)
        self.assertEqual(tl[-1]["category"], "rating", tl)

    def test_unknown_event_is_404(self):
        st, _, body = self.hub.get_event("tl-never-sent")
        self.assertEqual(st, 404, body)


if __name__ == "__main__":
    unittest.main(verbosity=2)
