"""TLS on both sides of the hub, with certificates made at test time by the
openssl command (tests/integration/xdcerts.py).

- The listener: with server.tls.cert/key the hub speaks HTTPS only; events
  are posted over HTTPS by python's ssl module verifying against the test
  CA; plain HTTP gets nothing. A new certificate written over the files is
  served after SIGHUP (and after POST /v1/admin/reload) by the same process,
  and a broken one leaves the good one in use.
- Targets: an https target whose certificate the hub does not trust is not
  retried: its delivery is dead-lettered after one attempt with an error
  that names the certificate problem; the same target with tls.ca_file set
  to its CA gets it; `tls.verify: false` delivers too, and is warned about
  in `crossdock check`, the log, /readyz and /metrics.
"""
import http.client
import os
import shutil
import signal
import socket
import ssl
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import xdcerts  # noqa: E402
import xdtest  # noqa: E402
from xdstandin import StandIn, poll  # noqa: E402
from xdtest import Hub, run_cli  # noqa: E402

HANG_GUARD_S = 90


class TlsHub(Hub):
    """A Hub reached over HTTPS, verifying the listener against ca_file."""

    ca_file = None

    def conn(self, timeout=30):
        ctx = ssl.create_default_context(cafile=self.ca_file)
        return http.client.HTTPSConnection("127.0.0.1", self.port, timeout=timeout, context=ctx)


def peer_cert_der(port, ca_file):
    """The DER certificate the listener presents on a new connection (verified)."""
    ctx = ssl.create_default_context(cafile=ca_file)
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        with ctx.wrap_socket(s, server_hostname="127.0.0.1") as t:
            return t.getpeercert(binary_form=True)


def stop_clean(tc, hub):
    rc = hub.stop()
    log = hub.read_log()
    hub.cleanup()
    tc.assertEqual(rc, 0, log)
    tc.assertFalse(xdtest.sanitizer_report(log), log)


class ListenerTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="xd-tls-")
        self.ca = xdcerts.make_ca(self.dir)
        self.cert = xdcerts.make_cert(self.dir, self.ca)

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def hub(self, keys=None):
        TlsHub.ca_file = self.ca[0]
        h = TlsHub(keys=keys, server={"tls": {"cert": self.cert[0], "key": self.cert[1]}})
        return h.start()

    def test_events_over_https_verified_against_the_test_ca(self):
        hub = self.hub(keys={"wms": ("s3cret-wms-key-0001", ["events:write", "read"])})
        try:
            ev = xdtest.event(1)
            st, _, body = hub.post_events(ev, key="s3cret-wms-key-0001")
            self.assertEqual(st, 202, body)
            self.assertEqual(body["accepted"], [ev["event_id"]])
            st, _, got = hub.get_event(ev["event_id"], key="s3cret-wms-key-0001")
            self.assertEqual(st, 200, got)
            # Plain HTTP on the HTTPS port gets no answer at all.
            c = http.client.HTTPConnection("127.0.0.1", hub.port, timeout=30)
            with self.assertRaises((http.client.HTTPException, OSError)):
                c.request("GET", "/healthz")
                c.getresponse().read()
            c.close()
            # A client that does not trust the test CA refuses the listener.
            with self.assertRaises(ssl.SSLCertVerificationError):
                peer_cert_der(hub.port, None)
            self.assertIn("listening on https://", hub.read_log())
        finally:
            stop_clean(self, hub)

    def test_certificate_reloaded_on_sighup_and_admin_reload(self):
        hub = self.hub(keys={"root": ("s3cret-admin-key-0001", ["admin"])})
        try:
            pid = hub.proc.pid
            first = peer_cert_der(hub.port, self.ca[0])
            # Renewal: a new certificate from the same CA over the same files.
            xdcerts.make_cert(self.dir, self.ca, name="server")
            on_disk = ssl.PEM_cert_to_DER_cert(open(self.cert[0]).read())
            self.assertNotEqual(first, on_disk)
            self.assertEqual(peer_cert_der(hub.port, self.ca[0]), first, "not before SIGHUP")
            os.kill(pid, signal.SIGHUP)
            poll("the renewed certificate", lambda: peer_cert_der(hub.port, self.ca[0]) == on_disk,
                 HANG_GUARD_S)
            self.assertEqual(hub.proc.pid, pid)
            self.assertTrue(hub.alive())
            st, _, _ = hub.request("GET", "/healthz")
            self.assertEqual(st, 200)

            # A broken key file: the reload is refused and the good pair stays in use.
            with open(self.cert[1], "w") as f:
                f.write("-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n")
            st, _, body = hub.request("POST", "/v1/admin/reload", key="s3cret-admin-key-0001")
            self.assertEqual(st, 422, body)
            self.assertIn("certificate not reloaded", body["detail"])
            self.assertEqual(peer_cert_der(hub.port, self.ca[0]), on_disk)

            # The API's reload (scope admin) does what SIGHUP does.
            xdcerts.make_cert(self.dir, self.ca, name="server")
            third = ssl.PEM_cert_to_DER_cert(open(self.cert[0]).read())
            st, _, body = hub.request("POST", "/v1/admin/reload", key="s3cret-admin-key-0001")
            self.assertEqual(st, 200, body)
            self.assertIn("certificate reloaded", body["detail"])
            self.assertEqual(peer_cert_der(hub.port, self.ca[0]), third)
            self.assertEqual(hub.proc.pid, pid)
        finally:
            stop_clean(self, hub)

    def test_check_refuses_a_mismatched_or_missing_pair(self):
        other = xdcerts.make_cert(self.dir, self.ca, name="other")
        path = os.path.join(self.dir, "bad.yaml")
        with open(path, "w") as f:
            f.write(f"server:\n  tls: {{cert: {self.cert[0]}}}\n")
        rc, _, err = run_cli("check", "-c", path)
        self.assertEqual(rc, 2, err)
        self.assertIn("server.tls: needs both cert and key", err)
        with open(path, "w") as f:
            f.write(f"server:\n  listen: \"127.0.0.1:{xdtest.free_port()}\"\n"
                    f"  tls: {{cert: {self.cert[0]}, key: {other[1]}}}\n"
                    f"store: {{path: {self.dir}/x.db}}\n")
        rc, _, err = run_cli("serve", "-c", path, timeout=60)
        self.assertEqual(rc, 2, err)
        self.assertIn("server.tls: cannot use", err)


TARGETS = """
targets:
  untrusted:
    type: http
    url: {url}/erp/untrusted
    retry: {{max_attempts: 5, initial_backoff_ms: 50, max_backoff_ms: 200}}
  trusted:
    type: http
    url: {url}/erp/trusted
    tls: {{ca_file: {ca}}}
  unchecked:
    type: http
    url: {url}/erp/unchecked
    tls: {{verify: false}}
routes:
  - {{name: u, on: [shipment.confirmed], steps: [{{deliver: untrusted}}]}}
  - {{name: t, on: [shipment.confirmed], steps: [{{deliver: trusted}}]}}
  - {{name: n, on: [shipment.confirmed], steps: [{{deliver: unchecked}}]}}
"""


class TargetTlsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="xd-tls-target-")
        # The target's own CA: the hub's system store does not know it.
        cls.ca = xdcerts.make_ca(cls.dir, name="target CA")
        cert = xdcerts.make_cert(cls.dir, cls.ca, name="target")
        cls.standin = StandIn(tls=(cert[0], cert[1], cls.ca[0])).start()
        cls.extra = TARGETS.format(url=f"https://127.0.0.1:{cls.standin.port}", ca=cls.ca[0])
        cls.hub = Hub(config_extra=cls.extra).start()

    @classmethod
    def tearDownClass(cls):
        rc = cls.hub.stop()
        log = cls.hub.read_log()
        cls.hub.cleanup()
        cls.standin.stop()
        shutil.rmtree(cls.dir, ignore_errors=True)
        if rc != 0 or xdtest.sanitizer_report(log):
            raise AssertionError(f"crossdock serve exited {rc}:\n{log}")

    def test_untrusted_certificate_is_dead_lettered_trusted_ca_file_delivers(self):
        ev = xdtest.event(101)
        st, _, body = self.hub.post_events(ev)
        self.assertEqual(st, 202, body)

        def dead():
            st, _, body = self.hub.request("GET", "/v1/deliveries?state=dead&target=untrusted")
            return [d for d in body["deliveries"] if d["event_id"] == ev["event_id"]]
        d = poll("the untrusted delivery to be dead-lettered", dead, HANG_GUARD_S)[0]
        self.assertIn("certificate verify failed", d["last_error"])
        self.assertIn("not trusted", d["last_error"])
        self.assertIn("tls.ca_file", d["last_error"])
        self.assertEqual(d["attempts"], 1, "an untrusted certificate is not retried")
        self.assertEqual(self.standin.requests("/erp/untrusted"), [], "nothing may reach it")

        poll("the delivery with tls.ca_file", lambda: self.standin.ok("/erp/trusted"),
             HANG_GUARD_S)
        poll("the delivery with verify: false", lambda: self.standin.ok("/erp/unchecked"),
             HANG_GUARD_S)
        st, _, m = self.hub.request("GET", "/metrics")
        self.assertIn('crossdock_deliveries_total{target="untrusted",outcome="fail"} 1',
                      m.decode())

    def test_verify_false_is_loud(self):
        st, _, body = self.hub.request("GET", "/readyz")
        self.assertEqual(st, 200, body)
        self.assertEqual(len(body["warnings"]), 1, body)
        self.assertIn("targets.unchecked.tls.verify is false", body["warnings"][0])
        st, _, m = self.hub.request("GET", "/metrics")
        text = m.decode()
        self.assertIn('crossdock_target_tls_verify{target="unchecked"} 0', text)
        self.assertIn('crossdock_target_tls_verify{target="trusted"} 1', text)
        self.assertIn("targets.unchecked.tls.verify is false", self.hub.read_log())
        rc, out, err = run_cli("check", "-c", self.hub.config_path)
        self.assertEqual(rc, 0, err)
        self.assertRegex(err, r"crossdock\.yaml:\d+:\d+: warning: targets\.unchecked\.tls\."
                              r"verify is false")

    def test_bad_tls_options_are_refused_by_check(self):
        path = os.path.join(self.dir, "bad.yaml")
        with open(path, "w") as f:
            f.write("targets:\n  a:\n    type: http\n    url: https://x.example/\n"
                    "    tls: {ca_file: /nonexistent/ca.pem}\n"
                    "  b:\n    type: http\n    url: https://x.example/\n"
                    f"    tls: {{ca_file: {self.ca[0]}, verify: false}}\n"
                    "  c:\n    type: file\n    path: /tmp\n    format: csv\n"
                    "    tls: {verify: false}\n")
        rc, _, err = run_cli("check", "-c", path)
        self.assertEqual(rc, 2, err)
        self.assertIn("targets.a.tls.ca_file: cannot read", err)
        self.assertIn("targets.b.tls.ca_file: does nothing with verify: false", err)
        self.assertIn("targets.c.tls: does not apply to file targets", err)


if __name__ == "__main__":
    xdtest.main()
