"""The watched inbox (docs/inbox.md) of a real `crossdock serve`.

Files are dropped the way the sender contract asks (written under a .tmp
name, then renamed), except where a test says otherwise:

- a CSV and an X12 945 are ingested, moved to processed/ (the 997 beside the
  X12), and their events can be read back over the API;
- a bad CSV goes to rejected/ with FILE.errors naming row and column; nothing
  of it is stored; an exception of category rejected_file says so; so does a
  bad X12 (its 997 beside it) and a changed document (an id stored before with
  another body);
- the same X12 document re-sent with new control numbers is processed again,
  as duplicates, next to the first under a time-stamped name;
- dot files and .tmp/.part names are left alone; a file written in place is
  taken once it has settled; a file over max_file is rejected unread; the
  source's customer and warehouse fill in what a CSV leaves out;
- a crash: the hub is killed (SIGKILL) right after several files are dropped,
  several times over; after the last restart every file is in processed/
  exactly once and every event is stored once.

No assertion depends on timing: every wait polls, with a hang guard.
"""
import hashlib
import json
import os
import random
import shutil
import sqlite3
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import xdpg  # noqa: E402
import xdtest  # noqa: E402
from xdtest import Hub, HubTest  # noqa: E402
from test_observability import parse_prometheus, value  # noqa: E402

HANG_GUARD_S = 120 if xdtest.SANITIZED else 60

INBOX = """
inbox:
  - {name: partner-acme, path: ./inbox/acme, poll_ms: 50, settle_ms: 300}
  - {name: small, path: ./inbox/small, format: csv, customer: ACME, warehouse: DC9,
     poll_ms: 50, settle_ms: 300, max_file: 300}
"""


def wait_for(what, fn, timeout=HANG_GUARD_S):
    """Polls fn until it returns something true; fails the test after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def drop(folder, name, data):
    """The sender contract: write under a .tmp name, then rename into place."""
    tmp = os.path.join(folder, name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)
        f.flush()
        os.fsync(f.fileno())
    os.rename(tmp, os.path.join(folder, name))


def x12_945(shipment_id, ctl, sku="WID-100", qty=12):
    """A 945 for one shipment; ctl numbers the interchange, group and set."""
    segs = [
        "ISA*00*          *00*          *ZZ*WMS1           *ZZ*CROSSDOCK      *261128*1409*U*"
        f"00401*{ctl:09d}*0*P*>",
        f"GS*SW*WMS1*CROSSDOCK*20261128*1409*{ctl}*X*004010",
        f"ST*945*{ctl % 10000:04d}",
        f"W06*F*SO-{shipment_id}*20261128*{shipment_id}",
        "N1*DE*ACME CORPORATION*9*ACME",
        "N1*SF*DALLAS DC*9*DC1",
        "LX*1",
        f"W12*CC*{qty}*{qty}*0*EA**VN*{sku}",
        f"SE*7*{ctl % 10000:04d}",
        f"GE*1*{ctl}",
        f"IEA*1*{ctl:09d}",
    ]
    return "~\n".join(segs) + "~\n"


def csv_shipments(*ids):
    rows = ["type,warehouse,customer,occurred_at,shipment_id,order_id,sku,qty"]
    for sid in ids:
        rows.append(f"shipment.confirmed,DC1,ACME,2026-11-28T14:00:00Z,{sid},SO-{sid},A,12")
        rows.append(f"shipment.confirmed,DC1,ACME,2026-11-28T14:00:00Z,{sid},SO-{sid},B,3")
    return "\n".join(rows) + "\n"


def read(path):
    with open(path) as f:
        return f.read()


def listing(folder):
    try:
        return sorted(os.listdir(folder))
    except FileNotFoundError:
        return []


class InboxTest(HubTest):
    config_extra = INBOX

    def setUp(self):
        self.acme = os.path.join(self.hub.dir, "inbox", "acme")
        self.small = os.path.join(self.hub.dir, "inbox", "small")

    def processed(self, folder, name):
        return os.path.join(folder, "processed", name)

    def wait_gone(self, folder, name):
        wait_for(f"{name} to leave {folder}",
                 lambda: not os.path.exists(os.path.join(folder, name)))

    def exceptions(self):
        st, _, body = self.hub.request("GET", "/v1/exceptions?category=rejected_file&limit=1000")
        self.assertEqual(st, 200, body)
        return body["exceptions"]

    def test_folders_are_made(self):
        for folder in (self.acme, self.small):
            for sub in ("processed", "rejected"):
                self.assertTrue(os.path.isdir(os.path.join(folder, sub)), (folder, sub))

    def test_csv_and_x12_are_ingested(self):
        drop(self.acme, "orders-1.csv", csv_shipments("IB-C1", "IB-C2"))
        drop(self.acme, "ship-1.x12", x12_945("IB-X1", 501))
        for name in ("orders-1.csv", "ship-1.x12"):
            self.wait_gone(self.acme, name)
            self.assertTrue(os.path.isfile(self.processed(self.acme, name)), listing(self.acme))
        ack = read(self.processed(self.acme, "ship-1.x12.997"))
        self.assertTrue(ack.startswith("ISA*"), ack)
        self.assertIn("AK1*SW*501~", ack)
        self.assertIn("AK5*A~", ack)
        self.assertIn("AK9*A*1*1*1~", ack)
        self.assertFalse(os.path.exists(self.processed(self.acme, "orders-1.csv.997")))
        rejected = listing(os.path.join(self.acme, "rejected"))
        self.assertNotIn("orders-1.csv", rejected)
        self.assertNotIn("ship-1.x12", rejected)

        for sid in ("IB-C1", "IB-C2"):
            st, _, body = self.hub.get_event(f"shipment.confirmed:DC1:{sid}")
            self.assertEqual(st, 200, body)
            self.assertEqual(body["source"], "csv")
            lines = body["event"]["data"]["lines"]
            self.assertEqual([(l["sku"], l["qty"]) for l in lines], [("A", 12), ("B", 3)])
        st, _, body = self.hub.get_event("shipment.confirmed:DC1:IB-X1")
        self.assertEqual(st, 200, body)
        self.assertEqual(body["source"], "x12")
        self.assertEqual(body["event"]["data"]["customer"], "ACME")
        self.assertEqual(body["event"]["data"]["lines"][0]["qty"], 12)

    def test_bad_csv_is_rejected(self):
        bad = csv_shipments("IB-BAD1").replace(",A,12\n", ",A,twelve\n")
        drop(self.acme, "bad-orders.csv", bad)
        self.wait_gone(self.acme, "bad-orders.csv")
        rejected = os.path.join(self.acme, "rejected")
        self.assertTrue(os.path.isfile(os.path.join(rejected, "bad-orders.csv")),
                        listing(rejected))
        self.assertEqual(read(os.path.join(rejected, "bad-orders.csv")), bad)
        errors = read(os.path.join(rejected, "bad-orders.csv.errors")).splitlines()
        self.assertEqual(errors, ["row 2, column qty: not a number"])
        self.assertFalse(os.path.exists(self.processed(self.acme, "bad-orders.csv")))
        self.assertEqual(self.hub.get_event("shipment.confirmed:DC1:IB-BAD1")[0], 404)
        exc = [x for x in self.exceptions() if "bad-orders.csv" in x["reason"]]
        self.assertEqual(len(exc), 1, self.exceptions())
        self.assertEqual(exc[0]["category"], "rejected_file")
        self.assertEqual(exc[0]["state"], "open")
        self.assertIn("partner-acme", exc[0]["reason"])
        self.assertIn("row 2, column qty: not a number", exc[0]["reason"])

    def test_bad_x12_is_rejected_with_its_997(self):
        bad = x12_945("IB-XBAD", 777).replace("W12*CC*12*12*", "W12*CC*12*lots*")
        drop(self.acme, "bad.x12", bad)
        self.wait_gone(self.acme, "bad.x12")
        rejected = os.path.join(self.acme, "rejected")
        errors = read(os.path.join(rejected, "bad.x12.errors"))
        self.assertIn("segment 8 (W12), element 3: not a number", errors)
        ack = read(os.path.join(rejected, "bad.x12.997"))
        self.assertIn("AK5*R*5~", ack)
        self.assertEqual(self.hub.get_event("shipment.confirmed:DC1:IB-XBAD")[0], 404)
        self.assertTrue(any("bad.x12" in x["reason"] for x in self.exceptions()))

    def test_resent_x12_is_processed_as_duplicates(self):
        drop(self.acme, "resend.x12", x12_945("IB-R1", 601))
        self.wait_gone(self.acme, "resend.x12")
        st, _, first = self.hub.get_event("shipment.confirmed:DC1:IB-R1")
        self.assertEqual(st, 200, first)

        again = x12_945("IB-R1", 602)  # the same document, new control numbers
        drop(self.acme, "resend.x12", again)
        self.wait_gone(self.acme, "resend.x12")
        processed = os.path.join(self.acme, "processed")
        names = [n for n in listing(processed) if n.startswith("resend.")]
        self.assertEqual(len(names), 4, names)  # two files, two 997s
        second = [n for n in names if n != "resend.x12" and n.endswith(".x12")]
        self.assertEqual(len(second), 1, names)
        self.assertRegex(second[0], r"^resend\.\d{8}T\d{6}Z(-\d+)?\.x12$")
        self.assertEqual(read(os.path.join(processed, second[0])), again)
        ack = read(os.path.join(processed, second[0] + ".997"))
        self.assertIn("AK1*SW*602~", ack)
        self.assertIn("AK5*A~", ack)
        # stored once: the same journal row as before
        st, _, now = self.hub.get_event("shipment.confirmed:DC1:IB-R1")
        self.assertEqual(st, 200, now)
        self.assertEqual(now["seq"], first["seq"])
        self.assertEqual(now["received_at"], first["received_at"])
        # the log line follows the move: wait for it rather than race it
        wait_for("the duplicate's log line", lambda: "0 accepted, 1 duplicates" in self.hub.read_log())

    def test_changed_document_is_rejected_as_conflict(self):
        drop(self.acme, "first.csv", csv_shipments("IB-K1"))
        self.wait_gone(self.acme, "first.csv")
        changed = csv_shipments("IB-K1").replace(",A,12\n", ",A,13\n")
        drop(self.acme, "changed.csv", changed)
        self.wait_gone(self.acme, "changed.csv")
        errors = read(os.path.join(self.acme, "rejected", "changed.csv.errors"))
        self.assertEqual(errors, "event 'shipment.confirmed:DC1:IB-K1': accepted before with a "
                                 "different body\n")
        st, _, body = self.hub.get_event("shipment.confirmed:DC1:IB-K1")
        self.assertEqual(body["event"]["data"]["lines"][0]["qty"], 12)  # the first one stays
        self.assertTrue(any("changed.csv" in x["reason"] for x in self.exceptions()))

    def test_names_in_the_making_are_left_alone(self):
        for name in (".hidden.csv", "upload.csv.tmp", "upload.csv.part", "UPLOAD.CSV.TMP"):
            with open(os.path.join(self.acme, name), "w") as f:
                f.write(csv_shipments("IB-NEVER"))
        drop(self.acme, "after.csv", csv_shipments("IB-AFTER"))
        self.wait_gone(self.acme, "after.csv")
        # listed at least once with after.csv: still there, never read
        for name in (".hidden.csv", "upload.csv.tmp", "upload.csv.part", "UPLOAD.CSV.TMP"):
            self.assertTrue(os.path.exists(os.path.join(self.acme, name)), name)
        self.assertEqual(self.hub.get_event("shipment.confirmed:DC1:IB-NEVER")[0], 404)
        self.assertEqual(self.hub.get_event("shipment.confirmed:DC1:IB-AFTER")[0], 200)

    def test_written_in_place_is_taken_once_settled(self):
        # no rename: the file is taken once its size and mtime stop changing
        with open(os.path.join(self.acme, "inplace.csv"), "w") as f:
            f.write(csv_shipments("IB-P1"))
        self.wait_gone(self.acme, "inplace.csv")
        self.assertTrue(os.path.isfile(self.processed(self.acme, "inplace.csv")))
        self.assertEqual(self.hub.get_event("shipment.confirmed:DC1:IB-P1")[0], 200)

    def test_source_defaults_and_format(self):
        # no warehouse or customer column: the source's customer and warehouse fill them in;
        # format: csv reads a file whatever its name
        data = ("type,occurred_at,shipment_id,order_id,sku,qty\n"
                "shipment.confirmed,2026-11-28T14:00:00Z,IB-S1,SO-S1,A,1\n")
        drop(self.small, "export.txt", data)
        self.wait_gone(self.small, "export.txt")
        self.assertTrue(os.path.isfile(self.processed(self.small, "export.txt")))
        st, _, body = self.hub.get_event("shipment.confirmed:DC9:IB-S1")
        self.assertEqual(st, 200, body)
        self.assertEqual(body["event"]["data"]["customer"], "ACME")
        self.assertEqual(body["event"]["data"]["warehouse"], "DC9")

    def scrape(self):
        st, _, body = self.hub.request("GET", "/metrics")
        self.assertEqual(st, 200, body)
        return parse_prometheus(body.decode() if isinstance(body, bytes) else str(body))

    def test_files_count_in_metrics(self):
        """Events from inbox files count in crossdock_events_received_total{type} (and
        duplicate_total); a rejected file in crossdock_events_rejected_total{reason}, once."""
        series = [("crossdock_events_received_total", {"type": "shipment.confirmed"}),
                  ("crossdock_events_duplicate_total", {}),
                  ("crossdock_events_rejected_total", {"reason": "invalid-event"}),
                  ("crossdock_events_rejected_total", {"reason": "too-large"}),
                  ("crossdock_events_rejected_total", {"reason": "conflict"})]

        def now():
            fams = self.scrape()
            return [value(fams, f, **l) for f, l in series]
        before = now()
        drop(self.acme, "metrics-1.csv", csv_shipments("IB-M1", "IB-M2"))
        self.wait_gone(self.acme, "metrics-1.csv")
        drop(self.acme, "metrics-again.csv", csv_shipments("IB-M1", "IB-M2"))  # duplicates
        drop(self.acme, "metrics-bad.csv",
             csv_shipments("IB-M3").replace(",A,12\n", ",A,twelve\n"))
        drop(self.acme, "metrics-changed.csv",
             csv_shipments("IB-M1").replace(",A,12\n", ",A,13\n"))
        drop(self.small, "metrics-big.csv", csv_shipments(*[f"IB-MB{i}" for i in range(5)]))
        for folder, name in ((self.acme, "metrics-again.csv"), (self.acme, "metrics-bad.csv"),
                             (self.acme, "metrics-changed.csv"), (self.small, "metrics-big.csv")):
            self.wait_gone(folder, name)
        after = now()
        self.assertEqual([a - b for a, b in zip(after, before)], [2, 2, 1, 1, 1],
                         list(zip(series, before, after)))

    def test_too_big_is_rejected_unread(self):
        big = csv_shipments(*[f"IB-BIG{i}" for i in range(5)])
        self.assertGreater(len(big), 300)
        drop(self.small, "big.csv", big)
        self.wait_gone(self.small, "big.csv")
        errors = read(os.path.join(self.small, "rejected", "big.csv.errors"))
        self.assertEqual(errors, f"the file is {len(big)} bytes, over this inbox's max_file "
                                 "(300 bytes): not read\n")
        self.assertEqual(self.hub.get_event("shipment.confirmed:DC1:IB-BIG0")[0], 404)
        self.assertTrue(any("big.csv" in x["reason"] for x in self.exceptions()))


class InboxConfigTest(unittest.TestCase):
    """`crossdock check` names every bad inbox key; serve refuses a folder it cannot make."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="xd-inbox-cfg-")
        self.addCleanup(shutil.rmtree, self.dir, True)

    def write(self, name, text):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def test_check_names_every_problem(self):
        path = self.write("bad.yaml", (
            "inbox:\n"
            "  - {name: a, path: ./in/a, format: xml, poll_ms: 0}\n"
            "  - {name: a, path: ./in/a, max_file: big}\n"
            "  - {name: \"bad name\", path: ./in/c}\n"
            "  - {name: d}\n"))
        rc, _, err = xdtest.run_cli("check", "-c", path)
        self.assertEqual(rc, 2, err)
        for want in ("bad.yaml:2:37: inbox[0].format: must be auto, json, jsonl, csv or x12",
                     "bad.yaml:2:51: inbox[0].poll_ms: must be greater than 0",
                     "bad.yaml:3:12: inbox[1].name: duplicate inbox name 'a'",
                     "bad.yaml:3:21: inbox[1].path: duplicate inbox path './in/a'",
                     "bad.yaml:3:39: inbox[1].max_file: expected an integer",
                     "bad.yaml:4:12: inbox[2].name: must use only letters",
                     "bad.yaml:5:5: inbox[3]: missing required key 'path'"):
            self.assertIn(want, err)

    def test_serve_refuses_a_folder_it_cannot_make(self):
        self.write("afile", "")
        hub = Hub(config_extra="inbox:\n  - {name: a, path: ./afile/in}\n", workdir=self.dir)
        with self.assertRaises(RuntimeError) as cm:
            hub.start(timeout=HANG_GUARD_S)
        self.assertIn("exited 2", str(cm.exception))
        self.assertIn("inbox 'a': ./afile/in: cannot create: Not a directory", str(cm.exception))


@xdpg.skip_on_postgres("reads the SQLite file directly (integrity check, event rows)")
class InboxCrashTest(unittest.TestCase):
    """SIGKILL right after dropping files; every file ends in processed/ exactly once."""

    ROUNDS = 6
    FILES = 16

    def setUp(self):
        seed = os.environ.get("XD_SEED")
        self.seed = int(seed) if seed else random.randrange(1 << 30)
        print(f"\ntest_inbox: seed {self.seed} (XD_SEED={self.seed} reproduces)", file=sys.stderr)
        self.rng = random.Random(self.seed)
        self.dir = tempfile.mkdtemp(prefix="xd-inbox-crash-")
        self.db = os.path.join(self.dir, "crossdock.db")
        self.folder = os.path.join(self.dir, "inbox", "acme")
        self.hub = None
        self.addCleanup(self.cleanup)

    def cleanup(self):
        if self.hub and self.hub.proc:
            self.hub.kill()
        if os.environ.get("XD_KEEP"):
            print(f"kept {self.dir}", file=sys.stderr)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)

    def start(self):
        extra = ("inbox:\n  - {name: acme, path: ./inbox/acme, poll_ms: 20, settle_ms: 200}\n")
        self.hub = Hub(config_extra=extra, workdir=self.dir, store_path=self.db)
        self.hub.start(timeout=HANG_GUARD_S)
        return self.hub

    def test_sigkill_after_dropping_files(self):
        dropped = []      # contents of every file dropped
        event_ids = set()
        ctl = 1000
        for rnd in range(self.ROUNDS):
            self.start()
            for i in range(self.FILES):
                kind = self.rng.choice(["csv", "x12", "resend"])
                x12_sent = sorted(e.split(":")[-1] for e in event_ids if ":CX-" in e)
                ctl += 1
                if kind == "csv":
                    ids = [f"CR-{rnd}-{i}-{k}" for k in range(self.rng.randint(1, 4))]
                    data = csv_shipments(*ids)
                    name = f"orders-{rnd}-{i}.csv"
                elif kind == "x12" or not x12_sent:
                    ids = [f"CX-{rnd}-{i}"]
                    data = x12_945(ids[0], ctl)
                    name = f"ship-{rnd}-{i}.x12"
                else:
                    # an earlier shipment again, new control numbers, a name used before
                    ids = [self.rng.choice(x12_sent)]
                    data = x12_945(ids[0], ctl)
                    name = "resend.x12"
                    if os.path.exists(os.path.join(self.folder, name)):
                        name = f"resend-{rnd}-{i}.x12"
                drop(self.folder, name, data)
                dropped.append(data)
                event_ids.update(f"shipment.confirmed:DC1:{s}" for s in ids)
                if self.rng.random() < 0.3:
                    time.sleep(self.rng.uniform(0, 0.02))  # let the hub take some meanwhile
            # right after the last drop, or a moment later: whatever is in hand
            time.sleep(self.rng.choice([0, 0, self.rng.uniform(0, 0.1)]))
            self.hub.kill()
            log = self.hub.read_log()
            self.assertFalse(xdtest.sanitizer_report(log), "sanitizer report:\n" + log)

        hub = self.start()

        def settled():
            left = [n for n in listing(self.folder)
                    if os.path.isfile(os.path.join(self.folder, n)) and not n.startswith(".")]
            return not left

        wait_for("the inbox to empty after the last restart", settled)

        processed = os.path.join(self.folder, "processed")
        names = listing(processed)
        files = [n for n in names if not n.endswith(".997") and not n.startswith(".")]
        seen = {}
        for n in files:
            with open(os.path.join(processed, n)) as f:
                digest = hashlib.sha256(f.read().encode()).hexdigest()
            seen.setdefault(digest, []).append(n)
            if n.endswith(".x12"):
                self.assertIn(n + ".997", names, f"{n} has no 997 beside it")
        for n in names:
            if n.endswith(".997"):
                self.assertIn(n[:-4], names, f"{n} has no file beside it")
        for data in dropped:
            digest = hashlib.sha256(data.encode()).hexdigest()
            self.assertEqual(len(seen.get(digest, [])), 1,
                             f"a dropped file is in processed/ {len(seen.get(digest, []))} "
                             f"times: {seen.get(digest)}\n{data}")
        self.assertEqual(len(files), len(dropped), files)
        self.assertEqual(listing(os.path.join(self.folder, "rejected")), [])

        for eid in sorted(event_ids):
            st, _, body = hub.get_event(eid)
            self.assertEqual(st, 200, f"{eid}: {body}")
        self.assertEqual(hub.stop(), 0)
        db = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=30)
        try:
            rows = db.execute("SELECT event_id, count(*) FROM events GROUP BY event_id").fetchall()
        finally:
            db.close()
        self.assertEqual(sorted(r[0] for r in rows), sorted(event_ids))
        self.assertTrue(all(r[1] == 1 for r in rows))
        self.assertEqual(xdtest.integrity_check(self.db), ["ok"])
        log = hub.read_log()
        self.assertFalse(xdtest.sanitizer_report(log), "sanitizer report:\n" + log)


if __name__ == "__main__":
    xdtest.main()
