"""Charges reach billing once each, keyed by charge_id, through retries and crashes.

A route posts each shipment to the ERP, rates it, and sends every charge to
billing (the stand-in, which fails a share of billing requests with 503 and
answers after small delays). While events flow the hub is killed with
SIGKILL a few times and restarted on the same store. At the end:

- every charge the store recorded reached billing with a 2xx, and billing saw
  no charge the store does not have;
- every billing request carried its charge's id as Idempotency-Key, so any
  duplicate a crash caused is recognisable as one;
- the charges are right: per event, the amounts match the rate card
  (exact decimals), voids reversed their shipment's charges once, and the
  totals billing received (counting each charge id once) equal the store's.

The seed is printed; XD_SEED reproduces it. Waits are polls with hang guards.
"""
import os
import random
import signal
import sys
import threading
import time
import unittest
from decimal import Decimal

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import xdtest  # noqa: E402
from xdstandin import StandIn, poll  # noqa: E402
from xdtest import Hub  # noqa: E402

SHIPMENTS = int(os.environ.get("XD_CHG_SHIPMENTS", "200" if xdtest.SANITIZED else "400"))
KILLS = 2

CONFIG = """
log: {{level: warn}}
targets:
  erp:
    type: http
    url: {erp}
    retry: {{max_attempts: 100, initial_backoff_ms: 20, max_backoff_ms: 300}}
  billing:
    type: http
    url: {billing}
    retry: {{max_attempts: 100, initial_backoff_ms: 20, max_backoff_ms: 300}}
routes:
  - name: shipments
    on: [shipment.confirmed, shipment.voided]
    steps:
      - deliver: erp
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


def shipment(i, qty):
    return {"event_id": f"cs-{i}", "type": "shipment.confirmed",
            "occurred_at": "2026-11-20T10:00:00Z",
            "data": {"warehouse": "DC1", "shipment_id": f"S{i}", "order_id": f"O{i}",
                     "customer": "ACME", "lines": [{"sku": "A", "qty": qty}]}}


def void(i):
    return {"event_id": f"cv-{i}", "type": "shipment.voided",
            "occurred_at": "2026-11-20T11:00:00Z",
            "data": {"warehouse": "DC1", "shipment_id": f"S{i}", "reason": "cancelled"}}


class ChargesCrashTest(unittest.TestCase):
    def test_charges_once_each_through_retries_and_crashes(self):
        seed = int(os.environ.get("XD_SEED", random.randrange(1 << 30)))
        rnd = random.Random(seed)
        print(f"seed {seed}", flush=True)
        standin = StandIn().start()
        hub = None
        try:
            standin.rule(path="/billing", status=503, count=4)  # below the breaker threshold
            standin.rule(path="/billing", delay_ms=3)
            hub = Hub(config_extra=CONFIG.format(erp=standin.url("/erp"),
                                                 billing=standin.url("/billing")))
            hub.start()
            qtys = {i: rnd.choice([1, 2, 3, 7, 12]) for i in range(SHIPMENTS)}
            voided = set(rnd.sample(range(SHIPMENTS), SHIPMENTS // 10))
            batches = []
            for i in range(0, SHIPMENTS, 20):
                evs = [shipment(k, qtys[k]) for k in range(i, min(i + 20, SHIPMENTS))]
                evs += [void(k) for k in range(i, min(i + 20, SHIPMENTS)) if k in voided]
                batches.append(evs)

            done = threading.Event()
            lock = threading.Lock()
            state = {"hub": hub}

            def post_all():
                for b in batches:
                    while True:
                        try:
                            with lock:
                                h = state["hub"]
                            st, _, _ = h.post_events({"events": b})
                            if st == 202:
                                break
                        except OSError:
                            pass
                        time.sleep(0.05)
                done.set()

            poster = threading.Thread(target=post_all)
            poster.start()
            for k in range(KILLS):
                target = (k + 1) * len(batches) * 2 // (KILLS + 2)
                poll("billing traffic before kill", lambda: len(standin.requests("/billing")) >= target,
                     timeout=300, interval=0.2)
                with lock:
                    hub.kill()
                    hub.start()
            poster.join(timeout=300)
            self.assertTrue(done.is_set(), "the poster did not finish")

            def settled():
                st, _, body = hub.request("GET", "/v1/deliveries?state=pending&limit=1")
                return st == 200 and not body["deliveries"]
            poll("nothing pending", settled, timeout=420, interval=0.2)

            st, _, body = hub.request("GET", "/v1/charges?limit=10000")
            self.assertEqual(st, 200)
            stored = {c["charge_id"]: c for c in body["charges"]}
            reqs = standin.requests("/billing")
            ok_ids = set()
            for r in reqs:
                cid = r["body"]["charge_id"]
                self.assertEqual(r["headers"].get("idempotency-key"), cid,
                                 "a billing request not keyed by its charge id")
                self.assertIn(cid, stored, f"billing got {cid}, which the store does not have")
                if 200 <= r["status"] < 300:
                    ok_ids.add(cid)
            self.assertEqual(ok_ids, set(stored), "a recorded charge never reached billing")

            # The charges themselves: per shipment, handling 2.50 and 0.35 per unit; voids reverse.
            expect = Decimal(0)
            for i in range(SHIPMENTS):
                amount = Decimal("2.50") + (Decimal("0.35") * qtys[i]).quantize(Decimal("0.01"))
                if i not in voided:
                    expect += amount
            total = sum(Decimal(c["amount"]) for c in stored.values())
            self.assertEqual(total, expect)
            self.assertEqual(len(stored), 2 * SHIPMENTS + 2 * len(voided))
            totals = body["totals"]
            self.assertEqual(len(totals), 1)
            self.assertEqual(Decimal(totals[0]["amount"]), expect)
            dups = len([r for r in reqs if 200 <= r["status"] < 300]) - len(ok_ids)
            print(f"{len(stored)} charges, {len(reqs)} billing requests, "
                  f"{dups} accepted duplicates (same key)", flush=True)
            self.assertEqual(hub.stop(), 0)
        finally:
            if hub:
                hub.cleanup()
            standin.stop()


if __name__ == "__main__":
    xdtest.main()
