"""Crash safety of delivery: SIGKILL the hub while it delivers, restart it on
the same store, and check that every event still reaches every target of its
route, that every duplicate a target sees carries the Idempotency-Key of the
first copy, and that order per business key held.

Set-up: the real stand-in (tests/standin/standin.py) plays ERP and billing; one
two-step route sends every event to the ERP and, once the ERP accepted it, to
billing. The stand-in answers after a short delay, so there are always
attempts in flight. Two client threads post EVENTS events in batches; events
come in groups of three on one shipment (confirmed, voided, confirmed), so
per-key order is at stake too. Clients resend a batch that got no answer or a
503 until it gets a 202: every event is eventually acknowledged.

While that runs the hub is killed with SIGKILL KILLS times, each at a random
moment while deliveries flow (when the stand-in has seen a random share of
the requests), and restarted on the same SQLite file. At the end (polled: nothing
pending, the stand-in's counts no longer growing):

- every event reached the ERP and billing at least once with a 2xx;
- every duplicate of (path, event) carries the same Idempotency-Key as the
  first copy, and no two events share a key;
- per business key and target, the stand-in saw events in intake order (a
  duplicate of an earlier event never comes after a later event of its key,
  since a later event goes only once the earlier one's success is recorded);
- no delivery is dead or pending, the store holds exactly 2 done deliveries
  per event, the hub stops with exit 0 and no sanitizer report, and SQLite's
  integrity check passes.

A second test does the same with SIGTERM (TERM_STOPS stops, TERM_EVENTS
events): the hub must drain and exit 0 with attempts in flight, and the same
guarantees hold.

The random seed is printed; XD_SEED reproduces the kill moments and delays,
XD_DLV_EVENTS and XD_DLV_KILLS change the volume and the number of kills.
Every wait is a poll with a hang guard, never an assertion on speed.
"""
import http.client
import json
import os
import random
import shutil
import signal
import sqlite3
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import xdtest  # noqa: E402
from xdstandin import StandIn, check_delivery_headers, poll  # noqa: E402
from xdtest import Hub  # noqa: E402

EVENTS = int(os.environ.get("XD_DLV_EVENTS", "3000"))
KILLS = int(os.environ.get("XD_DLV_KILLS", "4"))
TERM_EVENTS = 1000   # the SIGTERM variant
TERM_STOPS = 2
POSTERS = 2
BATCH = 50
GROUP = 3            # events per shipment: confirmed, voided, confirmed
HANG_GUARD_S = 120   # only ever a hang guard


def make_events(n):
    """n events in intake order: groups of GROUP on one shipment."""
    events = []
    for i in range(n):
        g, k = divmod(i, GROUP)
        eid = f"dc-{i:05d}"
        shp = f"SHP-DC-{g:05d}"
        if k % 2 == 1:
            events.append({"event_id": eid, "type": "shipment.voided",
                           "occurred_at": "2026-11-28T15:00:00Z", "source": "wms-test",
                           "data": {"warehouse": "DC1", "shipment_id": shp, "reason": "crash test"}})
        else:
            e = xdtest.event(1)
            e["event_id"] = eid
            e["data"]["shipment_id"] = shp
            e["data"]["order_id"] = "ORD-" + eid
            events.append(e)
    return events


class DeliveryCrashTest(unittest.TestCase):

    def setUp(self):
        seed = os.environ.get("XD_SEED")
        self.seed = int(seed) if seed else random.randrange(1 << 30)
        print(f"\ntest_delivery_crash: seed {self.seed} (XD_SEED={self.seed} reproduces)",
              file=sys.stderr)
        self.rng = random.Random(self.seed)
        self.dir = tempfile.mkdtemp(prefix="xd-dcrash-")
        self.db = os.path.join(self.dir, "crossdock.db")
        self.standin = StandIn().start()
        self.hub = None
        self.addCleanup(self.cleanup)

    def cleanup(self):
        if self.hub and self.hub.proc:
            self.hub.kill()
        self.standin.stop()
        if os.environ.get("XD_KEEP"):
            print(f"kept {self.dir}", file=sys.stderr)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)

    def config(self):
        s = self.standin
        retry = "retry: {max_attempts: 30, initial_backoff_ms: 50, max_backoff_ms: 500}"
        return (
            "targets:\n"
            f"  erp:\n    type: http\n    url: {s.url('/crash/erp')}\n    timeout_ms: 10000\n"
            f"    {retry}\n"
            f"  billing:\n    type: http\n    url: {s.url('/crash/billing')}\n"
            f"    timeout_ms: 10000\n    {retry}\n"
            "routes:\n"
            "  - name: erp-then-billing\n"
            "    on: [shipment.confirmed, shipment.voided]\n"
            "    steps:\n"
            "      - deliver: erp\n"
            "        map: '{event: .event_id, type: .type, shipment: .data.shipment_id}'\n"
            "      - deliver: billing\n"
            "        map: '{event: .event_id, charge_for: .data.shipment_id}'\n")

    def start_hub(self):
        # A new Hub object each time: same folder, config and store, a fresh port.
        self.hub = Hub(workdir=self.dir, store_path=self.db,
                       config_extra=self.config()).start(timeout=HANG_GUARD_S)
        return self.hub

    # -- clients ---------------------------------------------------------------------

    def poster(self, batches, acked, errors):
        """Posts each batch until it gets a 202 (resending after a kill or a 503)."""
        try:
            for batch in batches:
                body = json.dumps({"events": batch})
                deadline = time.monotonic() + HANG_GUARD_S
                while True:
                    if time.monotonic() > deadline:
                        raise AssertionError("a batch got no 202 within the hang guard")
                    hub = self.hub
                    try:
                        c = http.client.HTTPConnection("127.0.0.1", hub.port, timeout=30)
                        try:
                            c.request("POST", "/v1/events", body=body,
                                      headers={"Content-Type": "application/json"})
                            r = c.getresponse()
                            raw = r.read()
                        finally:
                            c.close()
                    except (OSError, http.client.HTTPException):
                        time.sleep(0.05)  # the hub is down or restarting
                        continue
                    if r.status == 202:
                        ans = json.loads(raw)
                        got = ans["accepted"] + ans["duplicates"]
                        if sorted(got) != sorted(e["event_id"] for e in batch):
                            raise AssertionError(f"202 does not list the batch: {ans}")
                        acked.extend(got)
                        break
                    if r.status != 503:
                        raise AssertionError(f"POST /v1/events: {r.status} {raw[:500]!r}")
                    time.sleep(0.05)
                time.sleep(0.1)  # spread intake over the kills
        except BaseException as e:  # noqa: B902 - reported by the main thread
            errors.append(e)

    # -- the test ---------------------------------------------------------------------

    def test_sigkill_while_delivering(self):
        self.run_rounds(EVENTS, KILLS, signal.SIGKILL)

    def test_sigterm_while_delivering(self):
        """SIGTERM drains: exit 0 with attempts in flight, and the same guarantees."""
        self.run_rounds(TERM_EVENTS, TERM_STOPS, signal.SIGTERM)

    def run_rounds(self, nevents, nkills, sig):
        s = self.standin
        began = time.monotonic()
        # Answers come after a short delay, so attempts are in flight when the kill comes.
        s.rule(path="/crash/erp", delay_ms=self.rng.choice([2, 5, 10]))
        s.rule(path="/crash/billing", delay_ms=self.rng.choice([2, 5, 10]))
        self.start_hub()

        events = make_events(nevents)
        # Each poster owns whole shipments, so its intake order is each key's order.
        per_poster = [[] for _ in range(POSTERS)]
        for g in range(0, len(events), GROUP):
            per_poster[(g // GROUP) % POSTERS].extend(events[g:g + GROUP])
        acked, errors = [], []
        threads = []
        for p in range(POSTERS):
            evs = per_poster[p]
            batches = [evs[i:i + BATCH] for i in range(0, len(evs), BATCH)]
            threads.append(threading.Thread(target=self.poster, args=(batches, acked, errors),
                                            daemon=True))
        for t in threads:
            t.start()

        # The kill moments: when the stand-in has seen a random share of the
        # 2 x nevents requests a crash-free run makes (plus a random few ms), so
        # every kill lands while deliveries are flowing.
        def seen():
            return sum(sum(v.values()) for v in s.call("GET", "/_stats")[1].values())
        marks = sorted(self.rng.uniform(0.1, 0.9) * 2 * nevents for _ in range(nkills))
        kills = []
        for mark in marks:
            poll(f"the stand-in to see {int(mark)} requests", lambda: seen() >= mark,
                 HANG_GUARD_S, interval=0.01)
            time.sleep(self.rng.uniform(0, 0.1))
            self.assertTrue(self.hub.alive(), "the hub died by itself:\n" + self.hub.read_log())
            rc = self.hub.stop(sig, timeout=HANG_GUARD_S)
            if sig != signal.SIGKILL:
                self.assertEqual(rc, 0, f"exit code on {sig.name} while delivering:\n"
                                 + self.hub.read_log()[-5000:])
            kills.append(seen())
            self.assertFalse(xdtest.sanitizer_report(self.hub.read_log()), self.hub.read_log())
            self.start_hub()
        for t in threads:
            t.join(HANG_GUARD_S)
            self.assertFalse(t.is_alive(), "a client hung")
        self.assertEqual(errors, [])
        self.assertEqual(sorted(set(acked)), sorted(e["event_id"] for e in events))

        # Wait for the end: nothing pending, and the stand-in's counts no longer growing.
        hub = self.hub
        last = [None]

        def settled():
            st, _, body = hub.request("GET", "/v1/deliveries?state=pending&limit=1")
            self.assertEqual(st, 200, body)
            stats = s.call("GET", "/_stats")[1]
            done = not body["deliveries"] and stats == last[0]
            last[0] = stats
            return done
        poll("every delivery to be done and the stand-in to be quiet", settled, HANG_GUARD_S,
             interval=0.5)

        st, _, body = hub.request("GET", "/v1/deliveries?state=dead")
        self.assertEqual(st, 200, body)
        self.assertEqual(body["deliveries"], [], "dead letters after the crashes")

        reqs = s.requests()
        groups = {}
        for r in sorted(reqs, key=lambda r: r["n"]):
            groups.setdefault((r["path"], r["body"]["event"]), []).append(r)
        ids = [e["event_id"] for e in events]
        dup_events = dup_requests = non2xx = 0
        key_owner = {}
        for path in ("/crash/erp", "/crash/billing"):
            for eid in ids:
                g = groups.get((path, eid))
                self.assertTrue(g, f"{eid} never reached {path}")
                self.assertTrue(any(200 <= r["status"] < 300 for r in g),
                                f"{eid} was never accepted by {path}")
                keys = {r["headers"]["idempotency-key"] for r in g}
                self.assertEqual(len(keys), 1, f"{path} {eid}: copies under different "
                                 f"Idempotency-Keys: {keys}")
                key = keys.pop()
                self.assertNotIn(key, key_owner, f"{path} {eid} shares its key with "
                                 f"{key_owner.get(key)}")
                key_owner[key] = (path, eid)
                if len(g) > 1:
                    dup_events += 1
                    dup_requests += len(g) - 1
                non2xx += sum(1 for r in g if not 200 <= r["status"] < 300)
        self.assertEqual(set(groups), {(p, e) for p in ("/crash/erp", "/crash/billing")
                                       for e in ids}, "requests for events nobody posted")

        # Order per key and target: the index of the event in its group never goes back.
        index = {e["event_id"]: i for i, e in enumerate(events)}
        for path in ("/crash/erp", "/crash/billing"):
            seen = {}
            for r in sorted((r for r in reqs if r["path"] == path), key=lambda r: r["n"]):
                eid = r["body"]["event"]
                key = index[eid] // GROUP
                self.assertGreaterEqual(index[eid], seen.get(key, -1),
                                        f"{path}: {eid} arrived after a later event of its "
                                        f"shipment (request {r['n']})")
                seen[key] = index[eid]
        # Billing's first copy of an event comes after the ERP accepted it.
        for eid in ids:
            erp_ok = min(r["n"] for r in groups[("/crash/erp", eid)] if r["status"] == 200)
            self.assertGreater(groups[("/crash/billing", eid)][0]["n"], erp_ok,
                               f"{eid}: billing before the ERP accepted")
        check_delivery_headers(self, reqs)

        rc = hub.stop()
        log = hub.read_log()
        self.assertEqual(rc, 0, "SIGTERM at the end:\n" + log[-5000:])
        self.assertFalse(xdtest.sanitizer_report(log), log)
        self.assertEqual(xdtest.integrity_check(self.db), ["ok"])
        db = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True)
        try:
            states = dict(db.execute("SELECT state, count(*) FROM deliveries GROUP BY state"))
            nevents = db.execute("SELECT count(*) FROM events").fetchone()[0]
        finally:
            db.close()
        self.assertEqual(nevents, len(events))
        self.assertEqual(states, {1: 2 * len(events)}, "deliveries by state (1 = done)")

        print(f"delivery {sig.name}: {len(events)} events, {nkills} stops (stand-in had "
              f"{kills} requests at each), {len(reqs)} requests to 2 targets, "
              f"{dup_requests} duplicate(s) over {dup_events} (target, event) pair(s), "
              f"{non2xx} non-2xx; {time.monotonic() - began:.1f} s", file=sys.stderr)


if __name__ == "__main__":
    xdtest.main()
