"""Two hub nodes on one PostgreSQL store, one killed with SIGKILL mid-run.

Two `crossdock serve` processes share one database of a private PostgreSQL
cluster (tests/integration/xdpg.py). Posters send events of many business
keys, each key's events one after the other (the next only once the last was
accepted), to either node, and to the other when one does not answer. Two
routes deliver every event to two stand-in targets, which answer their first
requests with 503 and after small delays, so attempts are in flight and
retries pending when node A is killed with SIGKILL; A is then restarted on
the same database. At the end:

- every accepted event reached every target with a 2xx at least once;
- a target received an event more than once only with the same
  Idempotency-Key, and different events never share a key;
- per key and target, the events arrived in the order they were accepted
  (a repeat of the event just sent is allowed, never a step back);
- both nodes delivered, and both stop cleanly.

The seed is printed; XD_SEED reproduces the posting order. Waits are polls
with hang guards.
"""
import os
import random
import re
import sys
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import xdpg  # noqa: E402
import xdtest  # noqa: E402
from xdstandin import StandIn, poll  # noqa: E402
from xdtest import Hub  # noqa: E402

KEYS = int(os.environ.get("XD_PGN_KEYS", "16" if xdtest.SANITIZED else "50"))
PER_KEY = int(os.environ.get("XD_PGN_PER_KEY", "10"))
POSTERS = 4
HANG_GUARD_S = 300
LEASE_MS = 3000

CONFIG = """
log: {{level: warn}}
targets:
  erp:
    type: http
    url: {erp}
    timeout_ms: 2000
    retry: {{max_attempts: 1000, initial_backoff_ms: 20, max_backoff_ms: 300}}
  archive:
    type: http
    url: {archive}
    timeout_ms: 2000
    retry: {{max_attempts: 1000, initial_backoff_ms: 20, max_backoff_ms: 300}}
routes:
  - name: to-erp
    on: [shipment.confirmed]
    steps:
      - deliver: erp
  - name: to-archive
    on: [shipment.confirmed]
    steps:
      - deliver: archive
"""


def ev(key, n):
    return {
        "event_id": f"k{key:03d}-{n:03d}",
        "type": "shipment.confirmed",
        "occurred_at": "2026-11-28T14:03:11Z",
        "source": "wms-test",
        "data": {
            "warehouse": "DC1",
            "shipment_id": f"SHP-{key}",
            "order_id": f"ORD-{key}",
            "customer": "ACME",
            "lines": [{"sku": "SKU-1", "qty": n + 1}],
        },
    }


@unittest.skipIf(xdpg.available(), xdpg.available() or "")
class PgNodesTest(unittest.TestCase):
    def setUp(self):
        self.seed = int(os.environ.get("XD_SEED", random.randrange(1 << 30)))
        print(f"\ntest_pg_nodes: seed {self.seed} (XD_SEED={self.seed} reproduces)",
              file=sys.stderr)
        self.rng = random.Random(self.seed)
        self.standin = StandIn().start()
        self.addCleanup(self.standin.stop)
        c = xdpg.cluster()
        self.url = c.url(c.new_database("nodes"))
        cfg = CONFIG.format(erp=self.standin.url("/erp"), archive=self.standin.url("/archive"))
        self.hubs = [Hub(config_extra=cfg, pg_url=self.url, store={"lease_ms": LEASE_MS})
                     for _ in range(2)]
        for h in self.hubs:
            self.addCleanup(h.cleanup)

    def metric_ok(self, hub):
        """Deliveries this node's dispatcher finished OK since it started."""
        st, _, body = hub.request("GET", "/metrics")
        self.assertEqual(st, 200)
        text = body.decode() if isinstance(body, bytes) else str(body)
        return sum(int(m) for m in re.findall(
            r'crossdock_deliveries_total\{target="[^"]+",outcome="ok"\} (\d+)', text))

    def test_two_nodes_one_killed_and_restarted(self):
        a, b = self.hubs
        for rule in ({"path": "/erp", "status": 503, "count": 4},
                     {"path": "/archive", "status": 503, "count": 4},
                     {"path": "/erp", "delay_ms": 4}, {"path": "/archive", "delay_ms": 4}):
            self.standin.rule(**rule)
        a.start(timeout=HANG_GUARD_S)
        b.start(timeout=HANG_GUARD_S)

        lock = threading.Lock()
        accepted = {k: [] for k in range(KEYS)}  # per key, event ids in acceptance order
        errors = []

        def post_one(body, first):
            """Posts to node `first`, else to the other, until one accepts it."""
            deadline = time.monotonic() + HANG_GUARD_S
            i = first
            while time.monotonic() < deadline:
                with lock:
                    h = self.hubs[i]
                try:
                    st, _, resp = h.post_events(body)
                    if st == 202:
                        return True
                    if st != 503:
                        errors.append(f"{body['event_id']}: {st} {resp}")
                        return False
                except OSError:
                    pass
                i = 1 - i
                time.sleep(0.02)
            errors.append(f"{body['event_id']}: never accepted")
            return False

        def poster(t):
            rng = random.Random(self.seed + t)
            keys = [k for k in range(KEYS) if k % POSTERS == t]
            for n in range(PER_KEY):
                rng.shuffle(keys)
                for k in keys:
                    e = ev(k, n)
                    if post_one(e, rng.randrange(2)):
                        accepted[k].append(e["event_id"])

        threads = [threading.Thread(target=poster, args=(t,)) for t in range(POSTERS)]
        for th in threads:
            th.start()
        total = KEYS * PER_KEY
        poll("a third of the ERP deliveries before the kill",
             lambda: len(self.standin.ok("/erp")) >= total // 3, timeout=HANG_GUARD_S,
             interval=0.1)
        with lock:
            a.kill()
        time.sleep(self.rng.uniform(0.2, 1.0))
        with lock:
            a.start(timeout=HANG_GUARD_S)
        for th in threads:
            th.join(timeout=HANG_GUARD_S)
        self.assertFalse(errors, errors[:5])
        self.assertEqual(sum(len(v) for v in accepted.values()), total)

        want = {eid for ids in accepted.values() for eid in ids}

        def delivered(path):
            return {r["body"]["event_id"] for r in self.standin.ok(path)}

        poll("every accepted event delivered to both targets",
             lambda: want <= delivered("/erp") and want <= delivered("/archive"),
             timeout=HANG_GUARD_S, interval=0.2)

        def settled():
            st, _, body = b.request("GET", "/v1/deliveries?state=pending&limit=1")
            return st == 200 and not body["deliveries"]
        poll("no delivery left pending", settled, timeout=HANG_GUARD_S, interval=0.2)

        key_of = {eid: k for k, ids in accepted.items() for eid in ids}
        for path in ("/erp", "/archive"):
            reqs = self.standin.requests(path)
            xdtest_reqs = [r for r in reqs if 200 <= r["status"] < 300]
            # Duplicates only with the same Idempotency-Key; one key per event.
            keys = {}
            for r in reqs:
                eid = r["body"]["event_id"]
                self.assertIn(eid, want, f"{path}: {eid} was never accepted")
                k = r["headers"].get("idempotency-key")
                keys.setdefault(eid, set()).add(k)
            for eid, ks in keys.items():
                self.assertEqual(len(ks), 1, f"{path}: {eid} sent with several keys {ks}")
            owners = {}
            for eid, ks in keys.items():
                k = next(iter(ks))
                self.assertNotIn(k, owners, f"{path}: {eid} and {owners.get(k)} share a key")
                owners[k] = eid
            # Per key, arrivals in acceptance order: repeats of the last one only.
            seen = {k: [] for k in range(KEYS)}
            for r in sorted(xdtest_reqs, key=lambda r: r["n"]):
                eid = r["body"]["event_id"]
                line = seen[key_of[eid]]
                if not line or line[-1] != eid:
                    line.append(eid)
            for k in range(KEYS):
                self.assertEqual(seen[k], accepted[k],
                                 f"{path}: key {k} arrived out of order")

        # Node B did part of the work (A's counters restarted with it).
        self.assertGreater(self.metric_ok(b), 0, "node B delivered nothing")
        for h in (a, b):
            rc = h.stop()
            log = h.read_log()
            self.assertFalse(xdtest.sanitizer_report(log), "sanitizer report:\n" + log)
            self.assertEqual(rc, 0, "did not stop cleanly:\n" + log)


if __name__ == "__main__":
    unittest.main(verbosity=2)
