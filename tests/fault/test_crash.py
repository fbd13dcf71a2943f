"""Crash safety: SIGKILL the hub while clients post, restart it on the same
store, and check that nothing acknowledged was lost and nothing was half stored.

Every round: THREADS client threads, each on its own keep-alive connection,
post single events and batches of about BATCH events (some batches also carry
an event acknowledged in an earlier round, which must come back as a
duplicate). Once the first 202 arrived the hub is killed with SIGKILL at a
random moment within a short window. The hub is restarted on the same SQLite
file, and then:

- every event that got a 202 is there (GET 200) with the body that was posted;
- a request that got a definite answer other than 202 stored nothing;
- a request that got no answer (cut by the kill) is there whole or not at all;
- re-posting every acknowledged event lists all of them under "duplicates";
- re-posting the requests that got no answer is answered consistently with
  what the store holds (present ones as duplicates, the rest accepted).

After the last round the hub is stopped with SIGTERM (exit 0, no sanitizer
report), SQLite's integrity check passes, and the set of event ids in the
file is exactly the set the clients know to be stored. The random seed is
printed; XD_SEED reproduces a run, XD_CRASH_ROUNDS changes the round count.

A second test does the same with SIGTERM instead of SIGKILL: the hub must
drain and exit 0 while the clients are still posting, and a 503 it gives while
stopping must have stored nothing.
"""
import concurrent.futures
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

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration"))
import xdtest  # noqa: E402
from xdtest import Hub  # noqa: E402

ROUNDS = int(os.environ.get("XD_CRASH_ROUNDS", "12"))
TERM_ROUNDS = 4
THREADS = 8
BATCH = 10
KILL_WINDOW_S = 0.6  # the kill comes at a uniform moment this long after the first 202
HANG_GUARD_S = 60    # only ever a hang guard, never an assertion on speed


def make_event(eid, rng):
    e = xdtest.event(1)
    e["event_id"] = eid
    e["data"]["shipment_id"] = "SHP-" + eid
    e["data"]["order_id"] = "ORD-" + eid
    e["data"]["lines"] = [{"sku": f"SKU-{rng.randrange(1000)}", "qty": rng.randrange(1, 500)}
                          for _ in range(rng.randrange(1, 4))]
    e["data"]["x_note"] = "é" * rng.randrange(0, 40)
    return e


class Request:
    """One POST and what came of it."""

    def __init__(self, new, old, single):
        self.new = new        # events first posted here
        self.old = old        # events acknowledged earlier, sent again
        self.single = single  # sent as a bare event, not as {"events": [...]}
        self.outcome = None   # "acked", "refused" or "unknown"
        self.status = None
        self.body = None
        self.failed_at = None  # time.monotonic() of the transport error
        self.retry_after = None

    def payload(self):
        if self.single:
            return self.new[0]
        return {"events": self.new + self.old}


class CrashTest(unittest.TestCase):

    def setUp(self):
        seed = os.environ.get("XD_SEED")
        self.seed = int(seed) if seed else random.randrange(1 << 30)
        print(f"\ntest_crash: seed {self.seed} (XD_SEED={self.seed} reproduces)", file=sys.stderr)
        self.rng = random.Random(self.seed)
        self.dir = tempfile.mkdtemp(prefix="xd-crash-")
        self.db = os.path.join(self.dir, "crossdock.db")
        self.hub = None
        self.addCleanup(self.cleanup)

    def cleanup(self):
        if self.hub and self.hub.proc:
            self.hub.kill()
        if os.environ.get("XD_KEEP"):
            print(f"kept {self.dir}", file=sys.stderr)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)

    def start_hub(self):
        self.hub = Hub(workdir=self.dir, store_path=self.db).start(timeout=HANG_GUARD_S)
        return self.hub

    def check_log(self):
        log = self.hub.read_log()
        self.assertFalse(xdtest.sanitizer_report(log), "sanitizer report:\n" + log)

    # -- clients ---------------------------------------------------------------

    def client(self, tid, rnd, stop, acked_before, out, first_ack):
        rng = random.Random(self.seed * 1000 + rnd * 100 + tid)
        conn = self.hub.conn(timeout=HANG_GUARD_S)
        seq = 0
        try:
            while not stop.is_set():
                n = 1 if rng.random() < 0.4 else rng.randrange(BATCH - 3, BATCH + 4)
                new = []
                for _ in range(n):
                    new.append(make_event(f"r{rnd}-t{tid}-{seq}", rng))
                    seq += 1
                old = []
                if n > 1 and acked_before and rng.random() < 0.3:
                    old = [rng.choice(acked_before)]
                req = Request(new, old, single=n == 1 and not old and rng.random() < 0.7)
                out.append(req)
                try:
                    conn.request("POST", "/v1/events", body=json.dumps(req.payload()),
                                 headers={"Content-Type": "application/json"})
                    r = conn.getresponse()
                    raw = r.read()
                except (OSError, http.client.HTTPException):
                    req.outcome = "unknown"
                    req.failed_at = time.monotonic()
                    return  # the hub is gone
                req.status = r.status
                try:
                    req.body = json.loads(raw)
                except ValueError:
                    req.body = raw
                if r.status == 202:
                    req.outcome = "acked"
                    first_ack.set()
                else:
                    req.outcome = "refused"
                    req.retry_after = r.getheader("Retry-After")
        finally:
            conn.close()

    # -- checks ----------------------------------------------------------------

    def fetch_all(self, ids):
        """GET every id in parallel; returns {id: (status, body)}."""
        local, conns = threading.local(), []

        def get(eid):
            if not hasattr(local, "conn"):
                local.conn = self.hub.conn(timeout=HANG_GUARD_S)
                conns.append(local.conn)
            st, _, body = self.hub.get_event(eid, conn=local.conn)
            return eid, st, body

        result = {}
        try:
            with concurrent.futures.ThreadPoolExecutor(8) as pool:
                for eid, st, body in pool.map(get, ids):
                    result[eid] = (st, body)
        finally:
            for c in conns:
                c.close()
        return result

    def repost(self, events):
        """Posts events again in batches; returns (accepted ids, duplicate ids)."""
        accepted, dups = [], []
        for i in range(0, len(events), 500):
            st, _, body = self.hub.post_events({"events": events[i:i + 500]})
            self.assertEqual(st, 202, body)
            accepted += body["accepted"]
            dups += body["duplicates"]
        return accepted, dups

    def run_round(self, rnd, acked_events, stored_ids, sig=signal.SIGKILL):
        hub = self.hub
        stop, first_ack = threading.Event(), threading.Event()
        outs = [[] for _ in range(THREADS)]
        snapshot = list(acked_events)
        threads = [threading.Thread(target=self.client,
                                    args=(t, rnd, stop, snapshot, outs[t], first_ack), daemon=True)
                   for t in range(THREADS)]
        for t in threads:
            t.start()
        self.assertTrue(first_ack.wait(HANG_GUARD_S), "no 202 at all:\n" + hub.read_log())
        time.sleep(self.rng.uniform(0, KILL_WINDOW_S))
        self.assertTrue(hub.alive(), "the hub died before it was killed:\n" + hub.read_log())
        killed_at = time.monotonic()
        if sig == signal.SIGKILL:
            hub.kill()
        else:
            rc = hub.stop(sig)
            self.assertEqual(rc, 0, f"exit code on {sig.name} with clients posting:\n"
                             + hub.read_log())
        stop.set()
        self.check_log()
        for t in threads:
            t.join(HANG_GUARD_S)
            self.assertFalse(t.is_alive(), "a client hung after the kill")

        reqs = [r for out in outs for r in out]
        for r in reqs:
            if r.outcome == "unknown":
                self.assertGreaterEqual(r.failed_at, killed_at,
                                        "a request failed while the hub was alive")
            elif r.outcome == "refused":
                # Only a store that cannot commit, or a hub stopping, may refuse a
                # valid request.
                self.assertEqual(r.status, 503, r.body)
                self.assertTrue(r.retry_after, "503 without Retry-After")
            elif r.outcome == "acked":
                self.assertEqual(r.body, {"accepted": [e["event_id"] for e in r.new],
                                          "duplicates": [e["event_id"] for e in r.old]})

        self.start_hub()
        new_ids = [e["event_id"] for r in reqs for e in r.new]
        got = self.fetch_all(new_ids)
        counts = {"acked": 0, "refused": 0, "unknown": 0, "unknown_present": 0}
        for r in reqs:
            counts[r.outcome] += 1
            present = [e for e in r.new if got[e["event_id"]][0] == 200]
            for e in r.new:
                st, body = got[e["event_id"]]
                self.assertIn(st, (200, 404), body)
                if st == 200:
                    diff = xdtest.matches(e, body["event"])
                    self.assertIsNone(diff, f"{e['event_id']}: stored body differs: {diff}")
            if r.outcome == "acked":
                self.assertEqual(len(present), len(r.new),
                                 f"acknowledged but lost: "
                                 f"{[e['event_id'] for e in r.new if e not in present]}")
            elif r.outcome == "refused":
                self.assertEqual(present, [], "a refused request left events behind")
            else:
                self.assertIn(len(present), (0, len(r.new)),
                              f"half a request stored: {len(present)} of {len(r.new)} "
                              f"({r.new[0]['event_id']}...)")
                if present:
                    counts["unknown_present"] += 1

        # Re-posting everything acknowledged gives duplicates only.
        acked_now = [e for r in reqs if r.outcome == "acked" for e in r.new]
        acked_events.extend(acked_now)
        accepted, dups = self.repost(acked_events)
        self.assertEqual(accepted, [], "acknowledged events were accepted as new")
        self.assertEqual(dups, [e["event_id"] for e in acked_events])
        # A client resends what got no answer: the answer agrees with the store.
        for r in reqs:
            if r.outcome != "unknown":
                continue
            was_present = got[r.new[0]["event_id"]][0] == 200
            accepted, dups = self.repost(r.new)
            ids = [e["event_id"] for e in r.new]
            self.assertEqual(dups if was_present else accepted, ids)
            acked_events.extend(r.new)
        stored_ids.update(e["event_id"] for e in acked_events)
        print(f"round {rnd}: {len(reqs)} requests, {len(new_ids)} events; "
              f"{counts['acked']} acknowledged, {counts['refused']} refused, "
              f"{counts['unknown']} cut by the kill ({counts['unknown_present']} of them stored)",
              file=sys.stderr)

    def test_sigkill_loses_nothing_acknowledged(self):
        self.run_rounds(ROUNDS, signal.SIGKILL)

    def test_sigterm_with_clients_posting(self):
        """SIGTERM drains: exit 0, and the same guarantees as after a kill."""
        self.run_rounds(TERM_ROUNDS, signal.SIGTERM)

    def run_rounds(self, rounds, sig):
        self.start_hub()
        acked_events, stored_ids = [], set()
        for rnd in range(rounds):
            self.run_round(rnd, acked_events, stored_ids, sig)
        rc = self.hub.stop()
        log = self.hub.read_log()
        self.assertEqual(rc, 0, "SIGTERM after the rounds:\n" + log)
        self.assertFalse(xdtest.sanitizer_report(log), log)
        self.assertEqual(xdtest.integrity_check(self.db), ["ok"])
        db = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True)
        try:
            in_file = {r[0] for r in db.execute("SELECT event_id FROM events")}
        finally:
            db.close()
        self.assertEqual(in_file - stored_ids, set(), "events stored that no client knows of")
        self.assertEqual(stored_ids - in_file, set(), "events lost")


if __name__ == "__main__":
    xdtest.main()
