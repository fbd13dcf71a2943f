"""A private 3-node NATS JetStream cluster for tests, and a tiny NATS client.

Cluster starts three `nats-server` processes (Debian's nats-server 2.9) on
loopback, each with its own client and route ports and its own JetStream
store folder in a temporary directory, and stops them by pid. Client speaks
the NATS text protocol over a socket (CONNECT, PUB/HPUB, SUB, MSG/HMSG,
PING/PONG) with request/reply, which is all the JetStream API needs: streams
are created with $JS.API.STREAM.CREATE, leaders found with
$JS.API.STREAM.INFO, messages read back with $JS.API.STREAM.MSG.GET and
published with a JetStream ack. Standard library only.

Tests that need nats-server skip when it is not installed.
"""
import base64
import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest

import xdtest

NATS_SERVER = shutil.which("nats-server") or (
    "/usr/sbin/nats-server" if os.path.exists("/usr/sbin/nats-server") else None)


def _die_with_parent():
    """In the child, before exec: SIGKILL it when the test process dies (PR_SET_PDEATHSIG),
    so a test killed by its timeout leaves no servers behind. (The signal follows the
    thread that started the server: start nodes from the main thread.)"""
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def need_nats_server(cls):
    """Class decorator: skip the tests when nats-server is not installed."""
    return unittest.skipUnless(NATS_SERVER, "nats-server is not installed")(cls)


class NatsError(Exception):
    pass


class NoResponders(NatsError):
    """Nobody listens on the subject (503): no stream leader, or no stream."""


class JSError(NatsError):
    def __init__(self, err):
        super().__init__(f"JetStream error {err.get('err_code')} ({err.get('code')}): "
                         f"{err.get('description')}")
        self.code = err.get("code")
        self.err_code = err.get("err_code")


class Msg:
    def __init__(self, subject, reply, headers, data, status=None):
        self.subject, self.reply, self.headers, self.data, self.status = (
            subject, reply, headers, data, status)


def _parse_headers(raw):
    """'NATS/1.0 503 No Responders\\r\\nK: v\\r\\n\\r\\n' -> (status or None, {K: v})."""
    lines = raw.decode("latin-1").split("\r\n")
    first = lines[0].split(None, 2)
    status = int(first[1]) if len(first) > 1 and first[1].isdigit() else None
    hdrs = {}
    for ln in lines[1:]:
        if ":" in ln:
            k, v = ln.split(":", 1)
            hdrs[k.strip()] = v.strip()
    return status, hdrs


class Client:
    """One connection to one of the servers, with request/reply. Thread-safe enough for
    tests: one reader thread, writes under a lock. On a broken connection the next call
    connects to the next server in the list."""

    def __init__(self, urls, timeout=5):
        self.urls = list(urls)
        self.timeout = timeout
        self.sock = None
        self.lock = threading.Lock()
        self.pending = {}
        self.subs = {}
        self.sids = itertools.count(1)
        self.rids = itertools.count(1)
        self.inbox = "_INBOX.xdtest%d" % os.getpid() + "_%d" % id(self)
        self.turn = 0
        self.reader = None

    # -- connection --

    def _connect(self):
        last = None
        for _ in range(len(self.urls)):
            url = self.urls[self.turn % len(self.urls)]
            self.turn += 1
            host, port = url.split("//", 1)[1].rsplit(":", 1)
            try:
                s = socket.create_connection((host, int(port)), timeout=self.timeout)
                f = s.makefile("rb")
                info = f.readline()
                if not info.startswith(b"INFO "):
                    raise NatsError(f"not a NATS server: {info[:80]!r}")
                opts = {"verbose": False, "pedantic": False, "name": "xdtest", "lang": "python",
                        "version": "0", "protocol": 1, "headers": True, "no_responders": True}
                s.sendall(b"CONNECT " + json.dumps(opts).encode() + b"\r\nPING\r\n")
                while True:
                    ln = f.readline()
                    if not ln:
                        raise NatsError("closed during handshake")
                    if ln.startswith(b"PONG"):
                        break
                    if ln.startswith(b"-ERR"):
                        raise NatsError(ln.decode().strip())
                s.settimeout(None)
                self.sock, self.file = s, f
                self.url = url
                self.dead = False
                self.sock.sendall(f"SUB {self.inbox}.* 0\r\n".encode())
                for sid, subj in self.subs.items():
                    self.sock.sendall(f"SUB {subj} {sid}\r\n".encode())
                self.reader = threading.Thread(target=self._read, args=(s, f), daemon=True)
                self.reader.start()
                return
            except (OSError, NatsError) as e:
                last = e
        raise NatsError(f"no server answers ({self.urls}): {last}")

    def _ensure(self):
        with self.lock:
            if self.sock is None or self.dead:
                if self.sock is not None:
                    try:
                        self.sock.close()
                    except OSError:
                        pass
                self._connect()

    def close(self):
        with self.lock:
            if self.sock:
                try:
                    self.sock.shutdown(socket.SHUT_RDWR)
                    self.sock.close()
                except OSError:
                    pass
                self.sock = None

    def _read(self, sock, f):
        try:
            while True:
                ln = f.readline()
                if not ln:
                    break
                if ln.startswith(b"PING"):
                    with self.lock:
                        sock.sendall(b"PONG\r\n")
                    continue
                if ln.startswith(b"MSG ") or ln.startswith(b"HMSG "):
                    parts = ln.decode().split()
                    if parts[0] == "MSG":
                        subj, sid = parts[1], parts[2]
                        reply = parts[3] if len(parts) == 5 else None
                        hlen, total = 0, int(parts[-1])
                    else:
                        subj, sid = parts[1], parts[2]
                        reply = parts[3] if len(parts) == 6 else None
                        hlen, total = int(parts[-2]), int(parts[-1])
                    body = f.read(total + 2)[:total]
                    status, hdrs = _parse_headers(body[:hlen]) if hlen else (None, {})
                    self._deliver(Msg(subj, reply, hdrs, body[hlen:], status))
                # +OK, PONG, INFO, -ERR: nothing to do
        except (OSError, ValueError):
            pass
        finally:
            self.dead = True
            for ev in list(self.pending.values()):
                ev.set()

    def _deliver(self, m):
        if m.subject.startswith(self.inbox + "."):
            slot = self.pending.get(m.subject)
            if slot is not None:
                slot.msg = m
                slot.set()
        # other subscriptions are not needed by these tests

    # -- publishing --

    def _send(self, subject, data, headers=None, reply=None):
        if isinstance(data, str):
            data = data.encode()
        r = f" {reply}" if reply else ""
        if headers:
            h = "NATS/1.0\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
            hb = h.encode()
            frame = (f"HPUB {subject}{r} {len(hb)} {len(hb) + len(data)}\r\n".encode() + hb + data
                     + b"\r\n")
        else:
            frame = f"PUB {subject}{r} {len(data)}\r\n".encode() + data + b"\r\n"
        with self.lock:
            self.sock.sendall(frame)

    def publish(self, subject, data, headers=None):
        self._ensure()
        self._send(subject, data, headers)

    def request(self, subject, data=b"", headers=None, timeout=None):
        """Returns the reply Msg; raises TimeoutError, NoResponders, NatsError."""
        self._ensure()
        reply = f"{self.inbox}.{next(self.rids)}"
        ev = threading.Event()
        ev.msg = None
        self.pending[reply] = ev
        try:
            try:
                self._send(subject, data, headers, reply)
            except OSError as e:
                self.dead = True
                raise NatsError(f"send failed: {e}")
            if not ev.wait(timeout or self.timeout):
                raise TimeoutError(f"no answer on {subject}")
            if ev.msg is None:
                raise NatsError("connection lost")
            if ev.msg.status == 503:
                raise NoResponders(subject)
            return ev.msg
        finally:
            self.pending.pop(reply, None)

    # -- JetStream --

    def js_api(self, what, body=None, timeout=None, patience_s=30):
        """One JetStream API request; asked again for up to patience_s while the cluster
        does not answer (a leader election, a lost connection)."""
        end = time.monotonic() + patience_s
        while True:
            try:
                m = self.request("$JS.API." + what,
                                 json.dumps(body).encode() if body is not None else b"",
                                 timeout=timeout)
                break
            except (TimeoutError, NatsError) as e:
                if isinstance(e, JSError) or time.monotonic() > end:
                    raise
                time.sleep(0.2)
        resp = json.loads(m.data)
        if "error" in resp:
            raise JSError(resp["error"])
        return resp

    def add_stream(self, name, subjects, replicas=3, **extra):
        cfg = {"name": name, "subjects": subjects, "num_replicas": replicas, "storage": "file",
               "retention": "limits", "duplicate_window": 120 * 10**9}
        cfg.update(extra)
        return self.js_api(f"STREAM.CREATE.{name}", cfg, timeout=20)

    def stream_info(self, name):
        return self.js_api(f"STREAM.INFO.{name}")

    def consumer_info(self, stream, name):
        return self.js_api(f"CONSUMER.INFO.{stream}.{name}")

    def msg_get(self, stream, seq):
        """The stored message at seq: (subject, headers dict, data bytes), or None if deleted."""
        try:
            r = self.js_api(f"STREAM.MSG.GET.{stream}", {"seq": seq})
        except JSError as e:
            if e.code == 404:
                return None
            raise
        m = r["message"]
        hdrs = {}
        if m.get("hdrs"):
            _, hdrs = _parse_headers(base64.b64decode(m["hdrs"]))
        return m["subject"], hdrs, base64.b64decode(m.get("data") or b"")

    def js_publish(self, subject, data, msg_id=None, timeout=None):
        """Publishes with a JetStream ack; returns the ack ({"stream", "seq", "duplicate"?})."""
        m = self.request(subject, data, {"Nats-Msg-Id": msg_id} if msg_id else None,
                         timeout=timeout)
        resp = json.loads(m.data)
        if "error" in resp:
            raise JSError(resp["error"])
        return resp

    def js_publish_retry(self, subject, data, msg_id, deadline_s=120):
        """Publishes until JetStream acknowledges (leader elections are waited out)."""
        end = time.monotonic() + deadline_s
        while True:
            try:
                return self.js_publish(subject, data, msg_id, timeout=2)
            except (TimeoutError, NatsError) as e:
                if time.monotonic() > end:
                    raise AssertionError(f"hang guard: publish of {msg_id} not acknowledged: {e}")
                time.sleep(0.1)

    def stream_messages(self, stream):
        """Every message in the stream, in order: [(seq, subject, headers, data)]."""
        info = self.stream_info(stream)
        first, last = info["state"]["first_seq"], info["state"]["last_seq"]
        out = []
        for seq in range(first, last + 1):
            m = self.msg_get(stream, seq)
            if m:
                out.append((seq,) + m)
        return out


class Cluster:
    """Three nats-server processes forming one JetStream cluster on loopback."""

    NAMES = ("n1", "n2", "n3")

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="xd-nats-")
        self.ports = {n: xdtest.free_port() for n in self.NAMES}
        self.cports = {n: xdtest.free_port() for n in self.NAMES}
        self.procs = {}
        self.logs = {}
        routes = ", ".join(f"nats-route://127.0.0.1:{p}" for p in self.cports.values())
        self.confs = {}
        for n in self.NAMES:
            store = os.path.join(self.dir, n)
            os.makedirs(store)
            conf = os.path.join(self.dir, f"{n}.conf")
            with open(conf, "w") as f:
                f.write(f"""server_name: {n}
listen: 127.0.0.1:{self.ports[n]}
jetstream {{
  store_dir: "{store}"
  max_memory_store: 64MB
  max_file_store: 1GB
}}
cluster {{
  name: xdtest
  listen: 127.0.0.1:{self.cports[n]}
  routes: [{routes}]
}}
""")
            self.confs[n] = conf

    def urls(self, names=None):
        return [f"nats://127.0.0.1:{self.ports[n]}" for n in (names or self.NAMES)]

    def start_node(self, n):
        log = open(os.path.join(self.dir, f"{n}.log"), "ab")
        self.procs[n] = subprocess.Popen([NATS_SERVER, "-c", self.confs[n]], stdout=log,
                                         stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)
        log.close()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.procs[n].poll() is not None:
                raise RuntimeError(f"nats-server {n} exited:\n{self.read_log(n)}")
            try:
                socket.create_connection(("127.0.0.1", self.ports[n]), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"nats-server {n} does not listen:\n{self.read_log(n)}")

    def start(self, timeout=60):
        for n in self.NAMES:
            self.start_node(n)
        # JetStream is usable once the meta group has a leader.
        c = Client(self.urls())
        try:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    info = c.js_api("INFO", timeout=2, patience_s=0)
                    if info:
                        return self
                except (NatsError, TimeoutError):
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError("the JetStream cluster elected no meta leader:\n" +
                                       "\n".join(self.read_log(n)[-2000:] for n in self.NAMES))
                time.sleep(0.2)
        finally:
            c.close()

    def read_log(self, n):
        try:
            with open(os.path.join(self.dir, f"{n}.log"), "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def kill(self, n):
        """SIGKILL one node (by pid)."""
        p = self.procs.pop(n, None)
        if p and p.poll() is None:
            os.kill(p.pid, signal.SIGKILL)
            p.wait()

    def stop(self):
        for n, p in list(self.procs.items()):
            if p.poll() is None:
                os.kill(p.pid, signal.SIGTERM)
        for n, p in list(self.procs.items()):
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                os.kill(p.pid, signal.SIGKILL)
                p.wait()
        self.procs = {}

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def stream_leader(self, client, stream, timeout=60):
        """The name of the stream's current leader (waits for an election)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                leader = client.stream_info(stream).get("cluster", {}).get("leader")
                if leader:
                    return leader
            except (NatsError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"hang guard: stream {stream} has no leader")
            time.sleep(0.1)
