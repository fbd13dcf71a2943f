"""Clients that misbehave at the HTTP level: they abandon requests while the
store commits, cut bodies short, trickle bytes, pipeline, hold idle
connections, or send bytes that are not HTTP at all. The hub must stay up,
answer everyone else, store whole requests or nothing, and still stop cleanly
(exit 0, no sanitizer report: HubTest's teardown checks both).
"""
import json
import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration"))
import xdtest  # noqa: E402
from xdtest import HubTest  # noqa: E402


def ev(eid):
    e = xdtest.event(1)
    e["event_id"] = eid
    e["data"]["shipment_id"] = "SHP-" + eid
    return e


def post_bytes(port, body, extra=b""):
    head = (f"POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n").encode()
    return head + extra + b"\r\n" + body


def read_response(f):
    """Reads one response (with a Content-Length) from a buffered reader; returns
    (status, body bytes). Several pipelined answers can be read off one reader."""
    line = f.readline()
    if not line:
        raise ConnectionError("connection closed before an answer")
    status = int(line.split()[1])
    length = 0
    while True:
        h = f.readline()
        if h in (b"\r\n", b"\n", b""):
            break
        name, _, value = h.decode("latin-1").partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
    return status, f.read(length)


class AbuseTest(HubTest):

    def assertHealthy(self):
        self.assertTrue(self.hub.alive(), self.hub.read_log())
        st, _, body = self.hub.request("GET", "/healthz", timeout=30)
        self.assertEqual(st, 200, body)

    def assertWholeOrNothing(self, events):
        present = [e for e in events if self.hub.get_event(e["event_id"])[0] == 200]
        self.assertIn(len(present), (0, len(events)), [e["event_id"] for e in present])
        for e in present:
            self.assertStored(e)
        return bool(present)

    def test_abandoned_requests_while_committing(self):
        batches = [[ev(f"aband-{i}-{j}") for j in range(10)] for i in range(64)]

        def fire(batch):
            s = socket.create_connection(("127.0.0.1", self.hub.port), timeout=30)
            s.sendall(post_bytes(self.hub.port, json.dumps({"events": batch}).encode()))
            s.close()  # gone before the answer

        threads = [threading.Thread(target=fire, args=(b,)) for b in batches]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        # Wait until the hub has taken what it was sent (hang guard, not a speed check).
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.hub.get_event(batches[-1][-1]["event_id"])[0] == 200 and \
                    self.hub.get_event(batches[0][0]["event_id"])[0] == 200:
                break
            time.sleep(0.05)
        for b in batches:
            self.assertWholeOrNothing(b)
        self.assertHealthy()
        # and a resend by a client that never saw the answer is fine
        st, _, body = self.hub.post_events({"events": batches[5]})
        self.assertEqual(st, 202, body)
        self.assertEqual(len(body["accepted"]) + len(body["duplicates"]), 10)

    def test_body_cut_short(self):
        batch = [ev(f"cut-{j}") for j in range(10)]
        body = json.dumps({"events": batch}).encode()
        # The close comes a moment after the bytes: libmicrohttpd 0.9.75 does not
        # notice a close that arrives together with a POST's headers until
        # server.timeout_s, which would only make the SIGTERM drain wait that long.
        for keep in (0, 1, len(body) // 2, len(body) - 1):
            s = socket.create_connection(("127.0.0.1", self.hub.port), timeout=30)
            s.sendall(post_bytes(self.hub.port, body)[:-(len(body) - keep)])
            time.sleep(0.05)
            s.close()
        # a body that ends early stores nothing
        time.sleep(0.2)  # not an assertion: gives the hub a moment to see the close
        for e in batch:
            self.assertNotStored(e["event_id"])
        self.assertHealthy()

    def test_trickled_body(self):
        e = ev("trickle-1")
        raw = post_bytes(self.hub.port, json.dumps(e).encode())
        s = socket.create_connection(("127.0.0.1", self.hub.port), timeout=30)
        try:
            for i in range(0, len(raw), 7):
                s.sendall(raw[i:i + 7])
                time.sleep(0.002)
            st, body = read_response(s.makefile("rb"))
        finally:
            s.close()
        self.assertEqual(st, 202, body)
        self.assertStored(e)

    def test_pipelined_requests(self):
        evs = [ev(f"pipe-{i}") for i in range(5)]
        raw = b"".join(post_bytes(self.hub.port, json.dumps(e).encode()) for e in evs)
        raw += f"GET /v1/events/pipe-0 HTTP/1.1\r\nHost: 127.0.0.1:{self.hub.port}\r\n\r\n".encode()
        s = socket.create_connection(("127.0.0.1", self.hub.port), timeout=30)
        try:
            s.sendall(raw)
            f = s.makefile("rb")
            answers = []
            for _ in range(len(evs) + 1):
                st, body = read_response(f)
                answers.append((st, json.loads(body)))
        finally:
            s.close()
        for e, (st, body) in zip(evs, answers):
            self.assertEqual(st, 202, body)
            self.assertEqual(body["accepted"], [e["event_id"]])
        self.assertEqual(answers[-1][0], 200, answers[-1])
        self.assertEqual(answers[-1][1]["event_id"], "pipe-0")

    def test_idle_connections_do_not_block_others(self):
        idle = []
        try:
            for _ in range(200):
                idle.append(socket.create_connection(("127.0.0.1", self.hub.port), timeout=30))
            # half a request line on some of them
            for s in idle[::2]:
                s.sendall(b"POST /v1/ev")
            for i in range(20):
                e = ev(f"idle-{i}")
                st, _, body = self.hub.post_events(e)
                self.assertEqual(st, 202, body)
        finally:
            for s in idle:
                s.close()
        self.assertHealthy()

    def test_not_http(self):
        junk = [
            b"\x00\x01\x02\x03\xff\xfe\r\n\r\n",
            b"HELLO\r\n\r\n",
            b"GET\r\n\r\n",
            b"GET /healthz HTTP/9.9\r\n\r\n",
            b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
            b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
            b"POST /v1/events HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
            b"Content-Type: application/json\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
            b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 200000 + b"\r\n\r\n",
            b"GET /" + b"a" * 100000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET /healthz HTTP/1.1\r\nno colon here\r\n\r\n",
        ]
        for raw in junk:
            with self.subTest(raw=raw[:40]):
                # The answer, if any, is libmicrohttpd's (400, 431, 505 or a close);
                # some garbage it just holds until its idle timeout, so wait briefly.
                s = socket.create_connection(("127.0.0.1", self.hub.port), timeout=2)
                try:
                    s.sendall(raw)
                    s.shutdown(socket.SHUT_WR)
                    while s.recv(65536):
                        pass
                except OSError:
                    pass
                finally:
                    s.close()
                self.assertHealthy()


if __name__ == "__main__":
    xdtest.main()
