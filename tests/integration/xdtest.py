"""Shared harness for crossdock's integration and fault tests.

Starts the real `crossdock serve` binary (path from $CROSSDOCK_BIN) on a free
loopback port with a config written to a temporary folder, and talks to it
over real HTTP. Standard library only: these tests run on a fresh Debian
machine with nothing but python3.
"""
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

import xdpg

BIN = os.environ.get("CROSSDOCK_BIN", os.path.join(os.path.dirname(__file__), "../../build/crossdock"))
DATA = os.environ.get("XD_TEST_DATA", os.path.join(os.path.dirname(__file__), "../data"))
SANITIZED = os.environ.get("XD_SANITIZE", "OFF").upper() in ("ON", "1", "TRUE")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_cli(*args, env=None, input=None, timeout=60):
    """Runs `crossdock ARGS...`; returns (exit code, stdout, stderr) as text."""
    e = dict(os.environ)
    if env:
        e.update(env)
    p = subprocess.run([BIN, *args], capture_output=True, env=e, input=input, timeout=timeout)
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


def event(i=1, **over):
    """A valid shipment.confirmed event; keyword arguments replace fields."""
    ev = {
        "event_id": f"t-{i:06d}",
        "type": "shipment.confirmed",
        "occurred_at": "2026-11-28T14:03:11Z",
        "source": "wms-test",
        "data": {
            "warehouse": "DC1",
            "shipment_id": f"SHP-{i}",
            "order_id": f"ORD-{i}",
            "customer": "ACME",
            "lines": [{"sku": "SKU-1", "qty": 3}, {"sku": "SKU-2", "qty": 1.5}],
        },
    }
    ev.update(over)
    return ev


class Hub:
    """A crossdock server process with its own folder, config and store."""

    def __init__(self, config_extra="", keys=None, workdir=None, store_path=None, env=None,
                 server=None, store=None, pg_url=None):
        """server and store: extra keys for those sections ({"max_body": 4096})."""
        self.dir = workdir or tempfile.mkdtemp(prefix="xd-it-")
        self.owns_dir = workdir is None
        self.port = free_port()
        self.store_path = store_path or os.path.join(self.dir, "crossdock.db")
        self.keys = keys or {}
        self.env = dict(os.environ)
        self.env.update(env or {})
        # XD_STORE_DRIVER=postgres (the pg/ runs): a database of its own in the
        # process's private cluster, unless the test names a SQLite file itself.
        # pg_url: another hub's database, for several nodes on one store.
        self.pg_url = pg_url
        if self.pg_url is None and xdpg.wanted() and store_path is None:
            c = xdpg.cluster()
            self.pg_url = c.url(c.new_database())
        if self.pg_url:
            store_lines = ["  driver: postgres", f"  url: \"{self.pg_url}\""]
            if "lease_ms" not in (store or {}):
                # A node killed by a test leaves claims; a short lease hands them on soon.
                store_lines.append("  lease_ms: 6000")
        else:
            store_lines = ["  driver: sqlite", f"  path: \"{self.store_path}\""]
        lines = [
            "server:",
            f"  listen: \"127.0.0.1:{self.port}\"",
            *(f"  {k}: {json.dumps(v)}" for k, v in (server or {}).items()),
            "store:",
            *store_lines,
            *(f"  {k}: {json.dumps(v)}" for k, v in (store or {}).items()),
        ]
        if self.keys:
            lines.append("auth:\n  keys:")
            for kid, (secret, scopes) in self.keys.items():
                var = "XD_TEST_KEY_" + kid.upper().replace("-", "_")
                self.env[var] = secret
                lines.append(f"    - {{id: {kid}, secret_env: {var}, scopes: [{', '.join(scopes)}]}}")
        self.config_path = os.path.join(self.dir, "crossdock.yaml")
        with open(self.config_path, "w") as f:
            f.write("\n".join(lines) + "\n" + config_extra)
        self.proc = None
        self.log_path = os.path.join(self.dir, "serve.log")

    def start(self, timeout=30):
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([BIN, "serve", "-c", self.config_path], stdout=self.log,
                                     stderr=subprocess.STDOUT, env=self.env, cwd=self.dir)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                rc = self.proc.returncode
                self.log.close()
                self.proc = None
                raise RuntimeError(f"crossdock serve exited {rc}:\n{self.read_log()}")
            try:
                st, _, _ = self.request("GET", "/healthz", timeout=2)
                if st == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.05)
        self.stop(signal.SIGKILL)
        raise RuntimeError("crossdock serve did not become healthy:\n" + self.read_log())

    def read_log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def stop(self, sig=signal.SIGTERM, timeout=60):
        """Stops the server; returns its exit code (None if it had to be killed)."""
        if not self.proc:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            rc = None
        self.log.close()
        self.proc = None
        return rc

    def kill(self):
        return self.stop(signal.SIGKILL)

    def cleanup(self):
        if self.proc:
            self.stop()
        if self.owns_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def conn(self, timeout=30):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(self, method, path, body=None, headers=None, key=None, conn=None, timeout=30):
        """One request; returns (status, headers dict (lower-case), parsed JSON or raw bytes)."""
        h = dict(headers or {})
        if key:
            h["Authorization"] = f"Bearer {key}"
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body)
            h.setdefault("Content-Type", "application/json")
        own = conn is None
        c = conn or self.conn(timeout)
        try:
            c.request(method, path, body=body, headers=h)
            r = c.getresponse()
            raw = r.read()
            hdrs = {k.lower(): v for k, v in r.getheaders()}
        finally:
            if own:
                c.close()
        try:
            data = json.loads(raw) if raw else None
        except ValueError:
            data = raw
        return r.status, hdrs, data

    def post_events(self, body, key=None, conn=None):
        return self.request("POST", "/v1/events", body=body, key=key, conn=conn)

    def get_event(self, event_id, key=None, conn=None):
        return self.request("GET", f"/v1/events/{event_id}", key=key, conn=conn)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def raw_request(self, method, path, headers=None, parts=(), chunked=False, timeout=30):
        """One request written by hand on a fresh socket, for what http.client will not
        send: a Content-Length with no body, chunked uploads, arbitrary bytes.

        headers are sent as given (no Content-Length is added). parts are bytes sent one
        after the other (each as one chunk when chunked, then the last chunk). A server
        that answers early and closes may cut the upload short; that is not an error
        here. Returns (status, headers dict (lower-case), parsed JSON or raw bytes).
        """
        h = dict(headers or {})
        if chunked:
            h["Transfer-Encoding"] = "chunked"
        head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in h.items()) + "\r\n"
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
        try:
            try:
                sock.sendall(head.encode("latin-1"))
                for p in parts:
                    sock.sendall(b"%x\r\n%s\r\n" % (len(p), p) if chunked else p)
                if chunked:
                    sock.sendall(b"0\r\n\r\n")
            except (BrokenPipeError, ConnectionResetError):
                pass  # answered before the whole body was read
            r = http.client.HTTPResponse(sock, method=method)
            r.begin()
            raw = r.read()
            hdrs = {k.lower(): v for k, v in r.getheaders()}
            status = r.status
        finally:
            sock.close()
        try:
            data = json.loads(raw) if raw else None
        except ValueError:
            data = raw
        return status, hdrs, data


def sanitizer_report(log):
    """True when a server log holds an ASan/UBSan/LSan report."""
    return "ERROR: AddressSanitizer" in log or "runtime error:" in log or "LeakSanitizer" in log


def matches(posted, stored, path=""):
    """None when every field of posted is in stored with the same value (stored may add
    fields: defaults filled in by normalisation); else a message naming the first
    difference by its path."""
    if isinstance(posted, dict):
        if not isinstance(stored, dict):
            return f"{path or '.'}: expected an object, stored {stored!r}"
        for k, v in posted.items():
            if k not in stored:
                return f"{path}.{k}: missing from the stored event"
            m = matches(v, stored[k], f"{path}.{k}")
            if m:
                return m
        return None
    if isinstance(posted, list):
        if not isinstance(stored, list) or len(stored) != len(posted):
            return f"{path}: expected {posted!r}, stored {stored!r}"
        for i, (a, b) in enumerate(zip(posted, stored)):
            m = matches(a, b, f"{path}[{i}]")
            if m:
                return m
        return None
    if isinstance(posted, (int, float)) and not isinstance(posted, bool):
        if isinstance(stored, (int, float)) and not isinstance(stored, bool) and stored == posted:
            return None
        return f"{path}: expected {posted!r}, stored {stored!r}"
    if posted != stored or type(posted) is not type(stored):
        return f"{path}: expected {posted!r}, stored {stored!r}"
    return None


def integrity_check(db_path):
    """PRAGMA integrity_check on a SQLite file, opened read-only; returns its rows."""
    import sqlite3
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=30)
    try:
        return [r[0] for r in db.execute("PRAGMA integrity_check")]
    finally:
        db.close()


class HubTest(unittest.TestCase):
    """Base class: one hub per test class, started lazily, logs shown on failure.

    Class attributes: keys ({id: (secret, [scopes])}), config_extra (YAML appended),
    server and store (extra keys for those sections).
    """

    keys = None
    config_extra = ""
    server = None
    store = None

    @classmethod
    def setUpClass(cls):
        cls.hub = Hub(config_extra=cls.config_extra, keys=cls.keys, server=cls.server,
                      store=cls.store).start()

    @classmethod
    def tearDownClass(cls):
        rc = cls.hub.stop()
        log = cls.hub.read_log()
        cls.hub.cleanup()
        if rc != 0:
            raise AssertionError(f"crossdock serve exited {rc} on SIGTERM:\n{log}")
        if sanitizer_report(log):
            raise AssertionError("sanitizer report in the server log:\n" + log)

    def assertProblem(self, resp, status):
        """resp is (status, headers, body): checks an RFC 9457 answer with that status and
        returns its body."""
        st, h, body = resp
        self.assertEqual(st, status, f"expected {status}, got {st}: {body!r}")
        ct = h.get("content-type", "")
        self.assertTrue(ct.startswith("application/problem+json"),
                        f"{status} answered with Content-Type {ct!r}")
        self.assertIsInstance(body, dict, f"problem body is not a JSON object: {body!r}")
        for k in ("type", "title", "status"):
            self.assertIn(k, body, f"problem without {k!r}: {body!r}")
        self.assertIsInstance(body["type"], str)
        self.assertIsInstance(body["title"], str)
        self.assertEqual(body["status"], status, body)
        if "errors" in body:
            self.assertIsInstance(body["errors"], list)
            for e in body["errors"]:
                self.assertIn("path", e, body)
                self.assertIn("message", e, body)
        return body

    def assertStored(self, posted, key=None):
        """GET /v1/events/{id} gives 200 and the event as posted (plus defaults)."""
        st, _, body = self.hub.get_event(posted["event_id"], key=key)
        self.assertEqual(st, 200, f"{posted['event_id']}: {body!r}")
        self.assertEqual(body.get("event_id"), posted["event_id"], body)
        diff = matches(posted, body.get("event"))
        self.assertIsNone(diff, f"{posted['event_id']}: stored body differs: {diff}")
        return body

    def assertNotStored(self, event_id, key=None):
        st, _, body = self.hub.get_event(event_id, key=key)
        self.assertEqual(st, 404, f"{event_id} should not be stored: {body!r}")


def main():
    unittest.main(verbosity=2)
