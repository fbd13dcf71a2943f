#!/usr/bin/env python3
"""A reference ERP / billing endpoint for crossdock's tests and demo.

A small real HTTP server (HTTP/1.1, keep-alive) that records every request it
receives and answers as it is told. Standard library only.

    python3 standin.py --port 18080 [--record FILE.jsonl]

Every POST/PUT/PATCH to a path is recorded ({"path", "method", "headers",
"body", "at", "status"}) and answered 200 {"ok": true, "ref": "<path>-<n>"},
unless a rule for that path says otherwise. Control endpoints:

    GET  /_requests?path=P           recorded requests (all, or one path's)
    GET  /_stats                     counts per path and status
    POST /_rules  {"path": P, "status": 503, "count": 3}
                                     the next 3 requests to P get 503
                  {"path": P, "status": 400, "match": "SKU-BAD"}
                                     requests whose body contains the text get 400
                  {"path": P, "delay_ms": 200}
                                     answer after a delay
                  {"path": P, "down": true}
                                     close the connection without answering
                  {"path": P, "retry_after": "2"}   add a Retry-After header
                  {"path": P, "bearer": true}
                                     requests without a valid token from the
                                     token endpoint below get 401
                  {"path": P, "drop": true, "match": "chg-1"}
                                     answer 200 but drop the document: it is
                                     recorded with "dropped": true (a system
                                     that loses what it acknowledged)
                  {"path": P, "echo": true}
                                     the 200 answer carries the body received
                                     as "received"
                  {"path": P, "reply": {"quantity": 7}, "match": "SHP-9"}
                                     merge these members into the 200 answer
                  Rules without count stay until cleared; every rule that
                  applies to a request adds its answer members (echo, reply),
                  the first one decides the status.
    POST /_oauth {"client_id": I, "client_secret": S, "expires_in": 3600}
                                     sets the client the token endpoint knows
    POST /_oauth/revoke              every token issued so far stops working
    DELETE /_rules                   clear every rule
    POST /_reset                     clear rules and recorded requests

OAuth 2.0 client credentials (RFC 6749 4.4): POST /oauth/token with
grant_type=client_credentials and the client's id and secret (HTTP Basic or
form fields) answers {"access_token": "tok-N", "token_type": "Bearer",
"expires_in": ...}, and 401 {"error": "invalid_client"} otherwise. Token
requests are recorded like any other (path /oauth/token; the secret is
not recorded).

With --tls-cert and --tls-key the stand-in speaks HTTPS only.
"""
import argparse
import base64
import json
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote_plus, urlparse

LOCK = threading.Lock()
REQUESTS = []
RULES = []
RECORD = None
OAUTH = {"client_id": None, "client_secret": None, "expires_in": 3600}
TOKENS = {}  # token -> expiry (time.time()); removed when revoked
ISSUED = [0]  # tokens issued so far


def pick_rule(path, body):
    """The first rule for path that applies; consumes one use of a counted rule."""
    with LOCK:
        for r in RULES:
            if r.get("path") not in (None, path):
                continue
            if "match" in r and r["match"].encode() not in body:
                continue
            if not any(k in r for k in ("status", "down", "delay_ms", "retry_after", "bearer")):
                continue  # shapes a 200 answer only (answer_rules)
            if "count" in r:
                if r["count"] <= 0:
                    continue
                r["count"] -= 1
            return dict(r)
    return None


def answer_rules(path, body):
    """Every rule for path that shapes a 200 answer (drop, echo, reply); none is consumed."""
    with LOCK:
        return [dict(r) for r in RULES
                if r.get("path") in (None, path)
                and ("match" not in r or r["match"].encode() in body)
                and (r.get("drop") or r.get("echo") or "reply" in r)]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, fmt, *args):  # quiet
        pass

    def answer(self, status, obj, extra=None):
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def do_GET(self):
        u = urlparse(self.path)
        if u.path == "/_requests":
            q = parse_qs(u.query)
            with LOCK:
                rows = [r for r in REQUESTS if "path" not in q or r["path"] == q["path"][0]]
            return self.answer(200, {"requests": rows})
        if u.path == "/_stats":
            stats = {}
            with LOCK:
                for r in REQUESTS:
                    p = stats.setdefault(r["path"], {})
                    p[str(r["status"])] = p.get(str(r["status"]), 0) + 1
            return self.answer(200, stats)
        if u.path == "/healthz":
            return self.answer(200, {"ok": True})
        return self.answer(404, {"error": "not found"})

    def do_DELETE(self):
        self.read_body()
        if self.path == "/_rules":
            with LOCK:
                RULES.clear()
            return self.answer(200, {"ok": True})
        return self.answer(404, {"error": "not found"})

    def do_POST(self):
        body = self.read_body()
        path = urlparse(self.path).path
        if path == "/_rules":
            rule = json.loads(body or b"{}")
            with LOCK:
                RULES.append(rule)
            return self.answer(200, {"ok": True})
        if path == "/_oauth":
            with LOCK:
                OAUTH.update(json.loads(body or b"{}"))
            return self.answer(200, {"ok": True})
        if path == "/_oauth/revoke":
            with LOCK:
                TOKENS.clear()
            return self.answer(200, {"ok": True})
        if path == "/oauth/token":
            return self.token(body)
        if path == "/_reset":
            with LOCK:
                RULES.clear()
                REQUESTS.clear()
            return self.answer(200, {"ok": True})
        return self.receive(path, body)

    do_PUT = do_POST
    do_PATCH = do_POST

    def record(self, path, body, status, parsed=None):
        with LOCK:
            n = len(REQUESTS) + 1
            row = {"n": n, "path": path, "method": self.command,
                   "headers": {k.lower(): v for k, v in self.headers.items()},
                   "body": parsed, "at": time.time(), "status": status}
            REQUESTS.append(row)
        return n

    def token(self, body):
        form = {k: v[0] for k, v in parse_qs(body.decode(errors="replace")).items()}
        cid, secret = form.get("client_id"), form.get("client_secret")
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Basic "):
            try:
                pair = base64.b64decode(auth[6:]).decode()
                cid, secret = (unquote_plus(x) for x in pair.split(":", 1))
            except ValueError:
                cid = secret = None
        with LOCK:
            good = (form.get("grant_type") == "client_credentials" and cid is not None
                    and cid == OAUTH["client_id"] and secret == OAUTH["client_secret"])
            life = OAUTH["expires_in"]
            tok = None
            if good:
                ISSUED[0] += 1
                tok = f"tok-{ISSUED[0]}"
                TOKENS[tok] = time.time() + life
        form.pop("client_secret", None)
        self.record("/oauth/token", body, 200 if good else 401, form)
        if not good:
            return self.answer(401, {"error": "invalid_client"})
        return self.answer(200, {"access_token": tok, "token_type": "Bearer", "expires_in": life})

    def bearer_ok(self):
        auth = self.headers.get("Authorization", "")
        if not auth.startswith("Bearer "):
            return False
        with LOCK:
            exp = TOKENS.get(auth[7:])
        return exp is not None and exp > time.time()

    def receive(self, path, body):
        rule = pick_rule(path, body) or {}
        if rule.get("bearer") and not self.bearer_ok():
            rule = {"status": 401, "error": "invalid_token"}
        extras = answer_rules(path, body)
        if rule.get("delay_ms"):
            time.sleep(rule["delay_ms"] / 1000.0)
        if rule.get("down"):
            self.close_connection = True
            self.connection.close()
            return
        status = int(rule.get("status", 200))
        try:
            text = body.decode()
            parsed = json.loads(text)
        except ValueError:
            parsed = body.decode(errors="replace")
        with LOCK:
            n = len(REQUESTS) + 1
            row = {
                "n": n,
                "path": path,
                "method": self.command,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body": parsed,
                "at": time.time(),
                "status": status,
            }
            if 200 <= status < 300 and any(r.get("drop") for r in extras):
                row["dropped"] = True
            REQUESTS.append(row)
            if RECORD:
                RECORD.write(json.dumps(row) + "\n")
                RECORD.flush()
        extra = {"Retry-After": str(rule["retry_after"])} if "retry_after" in rule else None
        if 200 <= status < 300:
            answer = {"ok": True, "ref": f"{path.strip('/').replace('/', '-')}-{n}"}
            for r in extras:
                if r.get("echo"):
                    answer["received"] = parsed
                answer.update(r.get("reply") or {})
            return self.answer(status, answer, extra)
        return self.answer(status, {"error": rule.get("error", f"told to answer {status}")}, extra)


class Server(ThreadingHTTPServer):
    # A hub opens up to 64 connections per target at once: with socketserver's
    # default backlog of 5, SYNs get dropped and retried a second later.
    request_queue_size = 256
    daemon_threads = True


def main():
    global RECORD
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=18080)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--record")
    ap.add_argument("--tls-cert")
    ap.add_argument("--tls-key")
    a = ap.parse_args()
    if a.record:
        RECORD = open(a.record, "a")
    srv = Server((a.host, a.port), Handler)
    if a.tls_cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(a.tls_cert, a.tls_key)
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    srv.daemon_threads = True
    print(f"standin listening on {a.host}:{srv.server_address[1]}", flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
