"""Drives the ERP / billing stand-in (tests/standin/standin.py) from a test.

StandIn starts the real stand-in as its own process on a free loopback port
(or a given one, to restart it "on the same address"), and wraps its control
endpoints: rules, recorded requests, reset. Standard library only.

Also: poll(), the one way these tests wait for something (a hang guard, never
an assertion on speed), and header checks shared by the routing tests.
"""
import http.client
import json
import os
import re
import ssl
import subprocess
import sys
import time

import xdtest

STANDIN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "standin", "standin.py")

IDEM_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
TRACEPARENT_RE = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


def poll(what, fn, timeout=60, interval=0.05):
    """Calls fn until it returns something truthy; returns that. Fails (AssertionError
    naming `what` and fn's last answer) when the hang guard runs out."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = fn()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"hang guard ({timeout} s): still waiting for {what} "
                                 f"(last answer: {str(last)[:200]})")
        time.sleep(interval)


class StandIn:
    """One stand-in process."""

    def __init__(self, port=None, log_path=None, tls=None):
        """tls: (cert file, key file, CA file) to speak HTTPS with that certificate."""
        self.port = port or xdtest.free_port()
        self.proc = None
        self.log_path = log_path
        self.tls = tls

    def start(self, timeout=30):
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        args = [sys.executable, "-B", STANDIN, "--port", str(self.port)]
        if self.tls:
            args += ["--tls-cert", self.tls[0], "--tls-key", self.tls[1]]
        self.proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
        if out is not subprocess.DEVNULL:
            out.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"stand-in exited {self.proc.returncode} on port {self.port}")
            try:
                st, _ = self.call("GET", "/healthz", timeout=2)
                if st == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"stand-in did not come up on port {self.port}")

    def stop(self):
        if self.proc:
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
            self.proc = None

    def url(self, path):
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}{path}"

    def call(self, method, path, body=None, timeout=30):
        if self.tls:
            ctx = ssl.create_default_context(cafile=self.tls[2])
            c = http.client.HTTPSConnection("127.0.0.1", self.port, timeout=timeout, context=ctx)
        else:
            c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            data = json.dumps(body) if body is not None else None
            c.request(method, path, body=data,
                      headers={"Content-Type": "application/json"} if data else {})
            r = c.getresponse()
            raw = r.read()
        finally:
            c.close()
        return r.status, (json.loads(raw) if raw else None)

    def rule(self, **rule):
        st, body = self.call("POST", "/_rules", rule)
        assert st == 200, (st, body)

    def clear_rules(self):
        st, body = self.call("DELETE", "/_rules")
        assert st == 200, (st, body)

    def reset(self):
        st, body = self.call("POST", "/_reset", {})
        assert st == 200, (st, body)

    def requests(self, path=None):
        q = f"/_requests?path={path}" if path else "/_requests"
        st, body = self.call("GET", q)
        assert st == 200, (st, body)
        return body["requests"]

    def ok(self, path):
        """The requests to path that were answered 2xx."""
        return [r for r in self.requests(path) if 200 <= r["status"] < 300]


def check_delivery_headers(tc, reqs):
    """Every request a target got carries a well-formed Idempotency-Key, a W3C
    traceparent and Content-Type: application/json."""
    for r in reqs:
        h = r["headers"]
        where = f"request {r['n']} to {r['path']}"
        tc.assertRegex(h.get("idempotency-key", ""), IDEM_RE, where)
        tc.assertRegex(h.get("traceparent", ""), TRACEPARENT_RE, where)
        m = TRACEPARENT_RE.match(h["traceparent"])
        tc.assertNotEqual(m.group(1), "0" * 32, where + ": all-zero trace id")
        tc.assertNotEqual(m.group(2), "0" * 16, where + ": all-zero span id")
        tc.assertEqual(h.get("content-type"), "application/json", where)
        tc.assertEqual(r["method"], "POST", where)
