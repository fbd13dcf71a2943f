"""API keys from a key file (auth.key_file), rotated without a restart, and
every 401/403 path of the scopes (events:write, read, ops, admin).

The key file holds one key a line: `ID SCOPES SECRET [rate_limit=N]`, the
secret as `sha256:<hex>` of the bearer key or as the key itself. SIGHUP (or
POST /v1/admin/reload, scope admin) reads it again: the test shows an old
and a new key for the same id both valid, then the old line removed and a
SIGHUP: the old key gets 401, the new one still works, and the process is
the same one throughout.
"""
import hashlib
import hmac
import json
import os
import signal
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import xdtest  # noqa: E402
from xdstandin import poll  # noqa: E402
from xdtest import Hub, HubTest, run_cli  # noqa: E402

HANG_GUARD_S = 90

OLD = "old-wms-key-7f3a9c1e5b"
NEW = "new-wms-key-2d8e4f6a0c"
READER = "reader-key-0123456789ab"
OPS = "ops-key-abcdef0123456789"
ADMIN = "admin-key-9876543210fedc"
HASHED = "hashed-key-only-its-sha256-is-in-the-file"
ENV_KEY = "env-key-from-the-environment"


def sha(s):
    return "sha256:" + hashlib.sha256(s.encode()).hexdigest()


def write_keys(path, lines):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write("# id scopes secret [rate_limit=N]\n\n" + "\n".join(lines) + "\n")
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)  # an operator's editor or config tool: a whole new file


def sign(secret, body, ts=None):
    ts = str(int(time.time()) if ts is None else ts)
    mac = hmac.new(secret.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()
    return {"X-Crossdock-Timestamp": ts, "X-Crossdock-Signature": "sha256=" + mac,
            "Content-Type": "application/json"}


class KeyFileTest(HubTest):
    @classmethod
    def setUpClass(cls):
        cls.hub = Hub(env={"XD_ENV_KEY": ENV_KEY})
        cls.key_file = os.path.join(cls.hub.dir, "keys.txt")
        write_keys(cls.key_file, [
            f"wms-dc1    events:write   {sha(OLD)}",
            f"wms-dc1    events:write   {NEW}",
            f"viewer     read           {sha(READER)}",
            f"ops-alice  ops,read       {OPS}",
            f"root       admin          {sha(ADMIN)}",
            f"hashed     events:write   {sha(HASHED)}",
        ])
        with open(cls.hub.config_path, "a") as f:
            f.write(f"auth:\n  key_file: {cls.key_file}\n  keys:\n"
                    "    - {id: from-env, secret_env: XD_ENV_KEY, scopes: [read]}\n")
        cls.hub.start()

    def post(self, i, key):
        ev = xdtest.event(i)
        del ev["source"]
        return self.hub.post_events(ev, key=key)

    def test_file_and_environment_keys_work_and_the_id_is_the_source(self):
        for i, key in ((1, OLD), (2, NEW)):
            st, _, body = self.post(i, key)
            self.assertEqual(st, 202, body)
        st, _, got = self.hub.get_event("t-000001", key=READER)
        self.assertEqual(st, 200, got)
        self.assertEqual(got["source"], "wms-dc1")
        st, _, got = self.hub.get_event("t-000002", key=ENV_KEY)
        self.assertEqual(st, 200, got)

    def test_401_paths(self):
        for headers in ({}, {"Authorization": "Basic dXNlcjpwYXNz"}, {"Authorization": "Bearer"},
                        {"Authorization": "Bearer not-a-key-at-all"},
                        {"Authorization": "Bearer " + sha(OLD)}):  # the hash is not the key
            resp = self.hub.request("GET", "/v1/events/t-000001", headers=headers)
            body = self.assertProblem(resp, 401)
            self.assertEqual(resp[1].get("www-authenticate"), 'Bearer realm="crossdock"')
            self.assertNotIn("not-a-key", json.dumps(body), "a refused key is not echoed")
        # /healthz and /readyz need no key.
        for path in ("/healthz", "/readyz"):
            st, _, _ = self.hub.request("GET", path)
            self.assertEqual(st, 200)

    def test_403_paths_and_admin_implies_every_scope(self):
        cases = [  # (key, method, path, body, allowed)
            (READER, "POST", "/v1/events", xdtest.event(20), False),
            (OPS, "POST", "/v1/events", xdtest.event(21), False),
            (NEW, "GET", "/v1/events/t-000001", None, False),
            (NEW, "GET", "/metrics", None, False),
            (NEW, "POST", "/v1/deliveries/replay", {"target": "x"}, False),
            (READER, "PATCH", "/v1/exceptions/1", {"state": "acknowledged"}, False),
            (READER, "POST", "/v1/admin/reload", None, False),
            (OPS, "POST", "/v1/admin/reload", None, False),
            (NEW, "POST", "/v1/admin/reload", None, False),
            (ADMIN, "POST", "/v1/events", xdtest.event(22), True),
            (ADMIN, "GET", "/v1/events/t-000022", None, True),
            (ADMIN, "GET", "/metrics", None, True),
            (ADMIN, "POST", "/v1/admin/reload", None, True),
        ]
        for key, method, path, body, allowed in cases:
            resp = self.hub.request(method, path, body=body, key=key)
            if allowed:
                self.assertLess(resp[0], 400, (key, method, path, resp))
            else:
                problem = self.assertProblem(resp, 403)
                self.assertIn("lacks the scope", problem["detail"])

    def test_signatures_need_the_secret_itself(self):
        raw = json.dumps(xdtest.event(30)).encode()
        st, _, body = self.hub.request("POST", "/v1/events", body=raw, headers=sign(NEW, raw))
        self.assertEqual(st, 202, body)
        # A key known only by its hash cannot check a signature: refused.
        raw = json.dumps(xdtest.event(31)).encode()
        resp = self.hub.request("POST", "/v1/events", body=raw, headers=sign(HASHED, raw))
        self.assertProblem(resp, 401)
        # ... but it works as a bearer key.
        st, _, body = self.post(32, HASHED)
        self.assertEqual(st, 202, body)


class RotationTest(unittest.TestCase):
    def test_rotation_without_restart(self):
        hub = Hub()
        key_file = os.path.join(hub.dir, "keys.txt")
        write_keys(key_file, [f"wms-dc1 events:write,read {sha(OLD)}",
                              f"wms-dc1 events:write,read {sha(NEW)}",
                              f"root admin {ADMIN}"])
        with open(hub.config_path, "a") as f:
            f.write(f"auth: {{key_file: {key_file}}}\n")
        hub.start()
        try:
            pid = hub.proc.pid
            # Both keys valid during the rotation.
            for i, key in ((1, OLD), (2, NEW)):
                st, _, body = hub.post_events(xdtest.event(i), key=key)
                self.assertEqual(st, 202, body)

            # The old line removed, SIGHUP: the old key is refused, the new one works.
            write_keys(key_file, [f"wms-dc1 events:write,read {sha(NEW)}",
                                  f"root admin {ADMIN}"])
            os.kill(pid, signal.SIGHUP)
            poll("the old key to be refused",
                 lambda: hub.post_events(xdtest.event(3), key=OLD)[0] == 401, HANG_GUARD_S)
            st, _, body = hub.post_events(xdtest.event(4), key=NEW)
            self.assertEqual(st, 202, body)
            st, _, body = hub.get_event("t-000001", key=NEW)
            self.assertEqual(st, 200, body)
            self.assertEqual(hub.proc.pid, pid, "no restart")
            self.assertTrue(hub.alive())
            self.assertIn("SIGHUP: 2 keys in force", hub.read_log())

            # A broken file is not put in force: the keys in force stay.
            with open(key_file, "a") as f:
                f.write("intruder everything short\n")
            os.kill(pid, signal.SIGHUP)
            poll("the refused reload in the log",
                 lambda: "keys not reloaded" in hub.read_log(), HANG_GUARD_S)
            log = hub.read_log()
            self.assertIn("keys.txt:5: scopes: must be events:write, read, ops or admin", log)
            st, _, body = hub.post_events(xdtest.event(5), key=NEW)
            self.assertEqual(st, 202, body)

            # A new key through the API's reload (scope admin), no signal needed.
            third = "third-key-for-the-same-source"
            write_keys(key_file, [f"wms-dc1 events:write {sha(NEW)}",
                                  f"wms-dc1 events:write {sha(third)}",
                                  f"root admin {ADMIN}"])
            st, _, body = hub.request("POST", "/v1/admin/reload", key=ADMIN)
            self.assertEqual(st, 200, body)
            self.assertEqual(body["detail"], "3 keys in force")
            st, _, body = hub.post_events(xdtest.event(6), key=third)
            self.assertEqual(st, 202, body)

            # Revoking every key: an empty file means nobody gets in (never "auth off").
            write_keys(key_file, [])
            os.kill(pid, signal.SIGHUP)
            poll("every key refused",
                 lambda: hub.post_events(xdtest.event(7), key=NEW)[0] == 401, HANG_GUARD_S)
            st, _, _ = hub.post_events(xdtest.event(8))
            self.assertEqual(st, 401)
            self.assertEqual(hub.proc.pid, pid)
        finally:
            rc = hub.stop()
            log = hub.read_log()
            hub.cleanup()
        self.assertEqual(rc, 0, log)
        self.assertFalse(xdtest.sanitizer_report(log), log)

    def test_check_names_the_bad_line(self):
        hub = Hub()
        key_file = os.path.join(hub.dir, "keys.txt")
        write_keys(key_file, [f"ok events:write {sha(NEW)}",
                              "two fields",
                              "short read tooshort",
                              "bad! read " + sha(OLD),
                              "hash read sha256:1234",
                              f"rated read {sha(OLD)} rate_limit=fast"])
        with open(hub.config_path, "a") as f:
            f.write(f"auth: {{key_file: {key_file}}}\n")
        try:
            rc, _, err = run_cli("check", "-c", hub.config_path)
            self.assertEqual(rc, 2, err)
            for line, what in ((4, "expected 'ID SCOPES SECRET"), (5, "secret: shorter than 16"),
                               (6, "id: must be"), (7, "secret: sha256: must be followed by 64"),
                               (8, "expected rate_limit=N")):
                self.assertIn(f"keys.txt:{line}: {what}", err)
            rc, _, err = run_cli("serve", "-c", hub.config_path)
            self.assertEqual(rc, 2, err)
            self.assertIn("keys.txt:4:", err)
            os.remove(key_file)
            rc, _, err = run_cli("check", "-c", hub.config_path)
            self.assertEqual(rc, 2, err)
            self.assertIn("keys.txt: cannot open", err)
        finally:
            hub.cleanup()


if __name__ == "__main__":
    xdtest.main()
