"""The command line around the hub: `serve`'s exit codes and refusals,
`ingest` into the store a running hub serves, `convert` on the sample events.

Exit codes per contract section 2: 0 success, 2 bad input or usage (with a
reason on stderr).
"""
import json
import os
import signal
import socket
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import xdtest  # noqa: E402
from xdtest import DATA, Hub, run_cli  # noqa: E402


def ev(eid, **over):
    e = xdtest.event(1)
    e["event_id"] = eid
    e["data"]["shipment_id"] = "SHP-" + eid
    e.update(over)
    return e


class CliTest(unittest.TestCase):

    def setUp(self):
        self.hub = Hub()  # not started: a folder, a config and a store path
        self.addCleanup(self.hub.cleanup)

    def write(self, name, obj):
        path = os.path.join(self.hub.dir, name)
        with open(path, "w") as f:
            f.write(obj if isinstance(obj, str) else json.dumps(obj))
        return path

    def ingest(self, *files):
        return run_cli("ingest", "-c", self.hub.config_path, *files, env=self.hub.env)

    def test_version_and_help(self):
        rc, out, _ = run_cli("--version")
        self.assertEqual(rc, 0)
        self.assertTrue(out.startswith("crossdock "), out)
        rc, out, _ = run_cli("help")
        self.assertEqual(rc, 0)
        self.assertIn("serve", out)
        rc, out, _ = run_cli("help", "serve")
        self.assertEqual(rc, 0)
        rc, _, err = run_cli("no-such-command")
        self.assertEqual(rc, 2)
        self.assertIn("no-such-command", err)
        rc, _, err = run_cli("serve", "--bogus-flag")
        self.assertEqual(rc, 2)
        self.assertTrue(err.strip())

    def test_serve_refuses_bad_setups(self):
        rc, _, err = run_cli("serve", "-c", os.path.join(self.hub.dir, "missing.yaml"))
        self.assertEqual(rc, 2)
        self.assertIn("missing.yaml", err)
        # a key whose secret variable is not set
        h = Hub(keys={"wms-dc1": ("s", ["events:write"])})
        self.addCleanup(h.cleanup)
        env = {k: v for k, v in h.env.items() if not k.startswith("XD_TEST_KEY_")}
        p = subprocess.run([xdtest.BIN, "serve", "-c", h.config_path], env=env,
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("XD_TEST_KEY_WMS_DC1", p.stderr)
        # a port already taken: a reason and a non-zero exit, no hang
        with socket.socket() as s:
            s.bind(("127.0.0.1", self.hub.port))
            s.listen(1)
            p = subprocess.run([xdtest.BIN, "serve", "-c", self.hub.config_path],
                               env=self.hub.env, capture_output=True, text=True, timeout=60)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn(str(self.hub.port), p.stdout + p.stderr)

    def test_sigint_stops_cleanly(self):
        self.hub.start()
        st, _, _ = self.hub.post_events(ev("sigint-1"))
        self.assertEqual(st, 202)
        self.assertEqual(self.hub.stop(signal.SIGINT), 0, self.hub.read_log())
        self.assertFalse(xdtest.sanitizer_report(self.hub.read_log()), self.hub.read_log())

    def test_ingest_then_serve(self):
        good = [ev("cli-1"), ev("cli-2")]
        del good[1]["source"]
        f = self.write("good.json", {"events": good})
        rc, out, err = self.ingest(f)
        self.assertEqual(rc, 0, err)
        self.assertIn("2 accepted", out)
        rc, out, err = self.ingest(f)  # again: duplicates, still fine
        self.assertEqual(rc, 0, err)
        self.assertIn("2 duplicates", out)
        # JSON lines, one of them bad: the file is rejected whole
        lines = self.write("mixed.jsonl", json.dumps(ev("cli-3")) + "\n"
                           + json.dumps(ev("cli-4", occurred_at="never")) + "\n")
        rc, _, err = self.ingest(lines)
        self.assertEqual(rc, 2)
        self.assertIn("line 2", err)
        self.assertIn("occurred_at", err)
        # a conflicting body: rejected, nothing of the file stored
        other = ev("cli-1")
        other["data"]["order_id"] = "changed"
        conflict = self.write("conflict.json", [ev("cli-5"), other])
        rc, _, err = self.ingest(conflict)
        self.assertEqual(rc, 2)
        self.assertIn("cli-1", err)
        rc, _, err = self.ingest(os.path.join(self.hub.dir, "nope.json"))
        self.assertEqual(rc, 2)

        self.hub.start()
        for e in good:
            st, _, body = self.hub.get_event(e["event_id"])
            self.assertEqual(st, 200, body)
            self.assertIsNone(xdtest.matches(e, body["event"]))
        st, _, body = self.hub.get_event("cli-2")
        self.assertTrue(body["event"]["source"], body)  # some default source
        for eid in ("cli-3", "cli-4", "cli-5"):
            self.assertEqual(self.hub.get_event(eid)[0], 404, eid)
        # ingest next to a running hub: one store, two writers
        f2 = self.write("more.json", [ev(f"cli-live-{i}") for i in range(20)])
        rc, out, err = self.ingest(f2)
        self.assertEqual(rc, 0, err)
        st, _, body = self.hub.get_event("cli-live-19")
        self.assertEqual(st, 200, body)
        st, _, body = self.hub.post_events([ev(f"cli-live-{i}") for i in range(20)])
        self.assertEqual(st, 202, body)
        self.assertEqual(len(body["duplicates"]), 20, body)
        self.assertEqual(self.hub.stop(), 0, self.hub.read_log())

    def test_convert_sample_events(self):
        folder = os.path.join(DATA, "events")
        files = sorted(os.path.join(folder, n) for n in os.listdir(folder) if n.endswith(".json"))
        self.assertTrue(files, "no sample events in tests/data/events")
        rc, out, err = run_cli("convert", "--from", "json", *files)
        self.assertEqual(rc, 0, err)
        lines = [json.loads(line) for line in out.splitlines() if line.strip()]
        self.assertGreaterEqual(len(lines), len(files))
        for e in lines:
            self.assertEqual(e.get("schema_version"), 1, e)
        bad = self.write("bad.json", {"event_id": "x y"})
        rc, out, err = run_cli("convert", "--from", "json", bad)
        self.assertEqual(rc, 2)
        self.assertIn("bad.json", err)
        rc, _, err = run_cli("convert", "--from", "json")
        self.assertEqual(rc, 2)


if __name__ == "__main__":
    xdtest.main()
