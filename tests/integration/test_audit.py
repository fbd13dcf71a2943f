"""The audit log on the real binary: operator actions posted over HTTP and
through the command line are recorded with who did them and chained by hash
(GET /v1/audit); then the SQLite file is tampered with, with Python's sqlite3
module, and `crossdock audit verify` must catch each change and name the
entry: an edit, a deletion, two kinds of reordering, a cut at the end (with
the head recorded earlier as an anchor), and a chain rewritten whole.

Exit codes (contract section 2): 0 intact, 4 tampered, 2 bad usage or file.
"""
import hashlib
import json
import os
import shutil
import sqlite3
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import xdtest  # noqa: E402
from xdstandin import StandIn, poll  # noqa: E402
from xdtest import Hub, run_cli  # noqa: E402

HANG_GUARD_S = 90
KEYS = {"wms": ("k-wms-0123", ["events:write"]), "viewer": ("k-viewer-0123", ["read"]),
        "operator": ("k-operator-0123", ["ops", "read"]), "boss": ("k-boss-0123", ["ops", "admin"]),
        "auditor": ("k-auditor-0123", ["admin"])}


def ship(eid):
    e = xdtest.event(1)
    e["event_id"] = eid
    e["data"].update({"shipment_id": "SHP-" + eid, "order_id": "ORD-" + eid,
                      "lines": [{"sku": "SKU-BAD", "qty": 1}]})
    return e


def canonical(row):
    """The documented encoding (src/audit/chain.h), written again independently."""
    seq, at_ms, actor, action, obj, detail = row
    b = b"crossdock-audit-v1\n" + f"{seq}\n{at_ms}\n".encode()
    for f in (actor, action, obj, detail):
        fb = f.encode()
        b += str(len(fb)).encode() + b":" + fb + b"\n"
    return b


class AuditTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.standin = StandIn().start()
        cls.path = "/audit/erp"
        cls.standin.rule(path=cls.path, status=422, match="SKU-BAD", error="unknown material")
        extra = ("targets:\n  erp:\n    type: http\n"
                 f"    url: {cls.standin.url(cls.path)}\n"
                 "    retry: {max_attempts: 2, initial_backoff_ms: 50, max_backoff_ms: 100}\n"
                 "routes:\n  - name: to-erp\n    on: [shipment.confirmed]\n"
                 "    steps:\n      - deliver: erp\n")
        cls.hub = Hub(config_extra=extra, keys=KEYS).start(timeout=HANG_GUARD_S)
        cls.tmp = tempfile.mkdtemp(prefix="xd-audit-")

    @classmethod
    def tearDownClass(cls):
        if cls.hub.proc:
            cls.hub.stop()
        log = cls.hub.read_log()
        cls.hub.cleanup()
        cls.standin.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)
        if xdtest.sanitizer_report(log):
            raise AssertionError("sanitizer report in the server log:\n" + log)

    # -- helpers ---------------------------------------------------------------------

    def req(self, method, path, key=None, body=None):
        return self.hub.request(method, path, key=key and KEYS[key][0], body=body)

    def dead(self):
        st, _, body = self.req("GET", "/v1/deliveries?state=dead", "viewer")
        self.assertEqual(st, 200, body)
        return body["deliveries"]

    def audit(self, key="operator"):
        entries, after = [], 0
        while True:
            st, _, body = self.req("GET", f"/v1/audit?after={after}&limit=3", key)
            self.assertEqual(st, 200, body)
            entries += body["entries"]
            if "next_after" not in body:
                return entries, body["head"]
            after = body["next_after"]

    def verify(self, *args):
        return run_cli("audit", "verify", *args)

    def copy_db(self, name):
        """A consistent copy of the stopped hub's store to tamper with."""
        dst = os.path.join(self.tmp, name + ".db")
        src = sqlite3.connect(f"file:{self.hub.store_path}?mode=ro", uri=True)
        out = sqlite3.connect(dst)
        src.backup(out)
        src.close()
        out.execute("DROP TRIGGER audit_no_update")
        out.execute("DROP TRIGGER audit_no_delete")
        out.commit()
        return dst, out

    # -- the test ----------------------------------------------------------------------

    def test_actions_are_recorded_chained_and_tampering_is_caught(self):
        hub = self.hub
        # Dead letters to work on.
        for i in range(3):
            st, _, body = hub.post_events(ship(f"aud-{i}"), key=KEYS["wms"][0])
            self.assertEqual(st, 202, body)
        poll("three dead letters", lambda: len(self.dead()) == 3, HANG_GUARD_S)
        d = self.dead()[0]

        # Operator actions over HTTP, allowed and refused.
        st, _, body = self.req("POST", f"/v1/deliveries/{d['id']}/replay", "operator")
        self.assertEqual((st, body), (200, {"replayed": [d["id"]]}))
        st, _, _ = self.req("POST", f"/v1/deliveries/{d['id']}/replay", "viewer")
        self.assertEqual(st, 403)
        st, _, _ = self.req("POST", f"/v1/deliveries/{d['id']}/replay")
        self.assertEqual(st, 401)  # no key: not recorded
        poll("the replayed delivery to be dead again", lambda: len(self.dead()) == 3,
             HANG_GUARD_S)
        st, _, body = self.req("POST", "/v1/deliveries/replay", "operator", {"target": "erp"})
        self.assertEqual((st, body), (200, {"replayed": 3}))
        st, _, exc = self.req("GET", "/v1/exceptions?state=open", "viewer")
        xid = exc["exceptions"][0]["id"]
        st, _, body = self.req("PATCH", f"/v1/exceptions/{xid}", "operator",
                               {"state": "acknowledged", "owner": "dana"})
        self.assertEqual(st, 200, body)
        st, _, body = self.req("POST", "/v1/billing/close", "boss", {"period": "2026-11"})
        self.assertEqual(st, 200, body)
        # And from the command line, on the running hub's store.
        poll("the bulk-replayed deliveries to be dead again", lambda: len(self.dead()) == 3,
             HANG_GUARD_S)
        rc, out, err = run_cli("dlq", "replay", "-c", hub.config_path, str(d["id"]))
        self.assertEqual(rc, 0, out + err)

        # Who may read the log.
        self.assertEqual(self.req("GET", "/v1/audit")[0], 401)
        self.assertEqual(self.req("GET", "/v1/audit", "viewer")[0], 403)
        self.assertEqual(self.req("GET", "/v1/audit", "wms")[0], 403)
        self.assertEqual(self.req("GET", "/v1/audit", "auditor")[0], 200)
        st, _, body = self.req("GET", "/v1/audit?limit=x", "operator")
        self.assertEqual(st, 400, body)

        entries, head = self.audit()
        got = [(e["action"], e["actor"], e["detail"].get("status")) for e in entries]
        self.assertEqual(got[0][0], "config.load")
        self.assertTrue(got[0][1].startswith("local:"), got[0])
        self.assertEqual(got[1:], [
            ("delivery.replay", "operator", 200),
            ("delivery.replay", "viewer", 403),
            ("delivery.replay_bulk", "operator", 200),
            ("exception.update", "operator", 200),
            ("billing.close", "boss", 200),
            ("delivery.replay", got[0][1], None),
        ], json.dumps(entries, indent=1))
        load = entries[0]
        with open(hub.config_path, "rb") as f:
            self.assertEqual(load["detail"]["sha256"], hashlib.sha256(f.read()).hexdigest())
        self.assertEqual(load["object"], os.path.realpath(hub.config_path))
        self.assertEqual(sorted(load["detail"]["keys"]), sorted(KEYS))
        self.assertEqual(load["detail"]["reason"], "start")
        self.assertEqual(entries[1]["object"], f"/v1/deliveries/{d['id']}/replay")
        self.assertEqual(entries[1]["detail"]["answer"], {"replayed": [d["id"]]})
        self.assertEqual(entries[1]["detail"]["client"], "127.0.0.1")
        self.assertEqual(entries[3]["detail"]["request"], {"target": "erp"})
        self.assertEqual(entries[4]["detail"]["request"],
                         {"state": "acknowledged", "owner": "dana"})
        self.assertEqual(entries[6]["detail"]["argv"], ["dlq", "replay", "-c", hub.config_path,
                                                        str(d["id"])])
        self.assertEqual(entries[6]["detail"]["replayed"], 1)
        # The chain as served: consecutive, linked, each hash over the documented bytes.
        prev = "0" * 64
        for i, e in enumerate(entries):
            self.assertEqual(e["seq"], i + 1)
            self.assertEqual(e["prev"], prev)
            prev = e["hash"]
        self.assertEqual(head, {"seq": len(entries), "hash": prev})
        # No secret in the log.
        text = json.dumps(entries)
        for secret, _ in KEYS.values():
            self.assertNotIn(secret, text)

        # Verify on the live store, then stopped.
        rc, out, err = self.verify("-c", hub.config_path)
        self.assertEqual(rc, 0, out + err)
        self.assertIn(f"head: {head['seq']}:{head['hash']}", out)
        self.assertEqual(hub.stop(), 0)
        rc, out, err = self.verify("--db", hub.store_path, "--anchor", f"{head['seq']}:{head['hash']}")
        self.assertEqual(rc, 0, out + err)
        self.assertIn(f"audit log intact: {len(entries)} entries", out)
        n = len(entries)

        # The table refuses changes while its triggers are there.
        db = sqlite3.connect(hub.store_path)
        with self.assertRaises(sqlite3.DatabaseError) as cm:
            db.execute("UPDATE audit SET actor = 'x' WHERE seq = 2")
        self.assertIn("append-only", str(cm.exception))
        with self.assertRaises(sqlite3.DatabaseError):
            db.execute("DELETE FROM audit WHERE seq = 2")
        db.close()

        def tampered(name, expect_seq, *sql, anchor=False, fn=None):
            path, db = self.copy_db(name)
            for q in sql:
                db.execute(q)
            if fn:
                fn(db)
            db.commit()
            db.close()
            args = ["--db", path]
            if anchor:
                args += ["--anchor", f"{head['seq']}:{head['hash']}"]
            rc, out, err = self.verify(*args)
            self.assertEqual(rc, 4, f"{name}: {out}{err}")
            self.assertIn(f"audit log TAMPERED: entry {expect_seq}:", out, name)
            return out

        # An edit: the exception change made to say "resolved".
        out = tampered("edit", 5, "UPDATE audit SET detail = replace(detail, 'acknowledged', "
                                  "'resolved') WHERE seq = 5")
        self.assertIn("edited", out)
        self.assertIn("entries 1 to 4 are intact", out)
        # An edit of the actor alone.
        tampered("actor", 3, "UPDATE audit SET actor = 'operator' WHERE seq = 3")
        # A deletion: the refused replay made to vanish.
        out = tampered("delete", 3, "DELETE FROM audit WHERE seq = 3")
        self.assertIn("missing", out)
        # A deletion with the rest renumbered.
        tampered("delete-renumber", 3, "DELETE FROM audit WHERE seq = 3",
                 "UPDATE audit SET seq = seq - 1 WHERE seq > 3")

        # Reordering: rows 2 and 3 swap their contents, positions kept.
        def swap_contents(db):
            cols = "at_ms, actor, action, object, detail, prev, hash"
            r2 = db.execute(f"SELECT {cols} FROM audit WHERE seq = 2").fetchone()
            r3 = db.execute(f"SELECT {cols} FROM audit WHERE seq = 3").fetchone()
            sets = ", ".join(f"{c.strip()} = ?" for c in cols.split(","))
            db.execute(f"UPDATE audit SET {sets} WHERE seq = 2", r3)
            db.execute(f"UPDATE audit SET {sets} WHERE seq = 3", r2)
        out = tampered("swap", 2, fn=swap_contents)
        self.assertIn("does not follow entry 1", out)
        # Reordering by renumbering: 2 and 3 trade seq.
        tampered("renumber", 2, "UPDATE audit SET seq = -2 WHERE seq = 2",
                 "UPDATE audit SET seq = 2 WHERE seq = 3", "UPDATE audit SET seq = 3 WHERE seq = -2")

        # A cut at the end is a valid shorter chain: only the anchor catches it.
        path, db = self.copy_db("cut")
        db.execute(f"DELETE FROM audit WHERE seq = {n}")
        db.commit()
        db.close()
        rc, out, _ = self.verify("--db", path)
        self.assertEqual(rc, 0, out)
        out = tampered("cut-anchored", n, f"DELETE FROM audit WHERE seq = {n}", anchor=True)
        self.assertIn("removed from the end", out)

        # A chain rewritten whole with fresh hashes passes alone, not against the anchor.
        def rewrite(db):
            db.execute("UPDATE audit SET actor = 'nobody' WHERE seq = 2")
            prev = bytes(32)
            for row in db.execute("SELECT seq, at_ms, actor, action, object, detail FROM audit"
                                  " ORDER BY seq").fetchall():
                h = hashlib.sha256(prev + canonical(row)).digest()
                db.execute("UPDATE audit SET prev = ?, hash = ? WHERE seq = ?", (prev, h, row[0]))
                prev = h
        path, db = self.copy_db("rewrite")
        rewrite(db)
        db.commit()
        db.close()
        rc, out, _ = self.verify("--db", path)
        self.assertEqual(rc, 0, "a consistent rewrite is a valid chain: " + out)
        tampered("rewrite-anchored", n, fn=rewrite, anchor=True)

    def test_usage_errors(self):
        missing = os.path.join(self.tmp, "none.db")
        for args in (["--db", missing], ["--anchor", "junk", "--db", missing],
                     ["-c", self.hub.config_path, "--db", missing], ["extra"]):
            rc, out, err = self.verify(*args)
            self.assertEqual(rc, 2, (args, out, err))
            self.assertTrue(err.strip(), args)
        self.assertFalse(os.path.exists(missing), "verify created a store")
        rc, _, err = run_cli("audit")
        self.assertEqual(rc, 2, err)


if __name__ == "__main__":
    unittest.main()
