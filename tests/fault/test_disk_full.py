"""The store on a disk that fills up or turns read-only.

Both tests put the SQLite store on a small tmpfs they mount themselves (the
hub's config and log stay outside it), so they need root; without root, or
where mounting is not allowed, they skip and say why.

DiskFullTest: batches are posted until the tmpfs is full. Every answer is 202
or 503; a 503 carries Retry-After and stored nothing of its request; every
202'd event can be read back; the hub never dies; /readyz says 503 while the
store cannot commit; SQLite's integrity check passes on the full disk. Then
the tmpfs is grown (remount, size=64m) and posting works again, without a
restart.

ReadOnlyStoreTest: the hub is started on a store whose file system is
mounted read-only (root ignores file modes, so a read-only mount is the way
to make the file unwritable for root). Reads work, POST is 503 with
Retry-After, /readyz is 503; after the file system is remounted read-write
the same hub takes events again. (A tmpfs cannot be remounted read-only while
the hub holds its files open for writing, so the read-only state is set up
before the hub starts.)
"""
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration"))
import xdtest  # noqa: E402
from xdtest import Hub  # noqa: E402

HANG_GUARD_S = 60  # how long to wait for recovery before calling it a hang; never a speed check


def sh(*args):
    return subprocess.run(args, capture_output=True, text=True)


class StoreOnTmpfs(unittest.TestCase):
    """Mounts a tmpfs for the store and a plain folder for the config and log."""

    def mount(self, size):
        if os.geteuid() != 0:
            self.skipTest("needs root: mounts a tmpfs to fill (or make read-only)")
        if not shutil.which("mount"):
            self.skipTest("no mount(8) here")
        self.mnt = tempfile.mkdtemp(prefix="xd-tmpfs-")
        r = sh("mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", self.mnt)
        if r.returncode != 0:
            os.rmdir(self.mnt)
            self.skipTest(f"cannot mount a tmpfs here: {r.stderr.strip()}")
        self.addCleanup(self.unmount)
        self.workdir = tempfile.mkdtemp(prefix="xd-disk-")
        self.addCleanup(shutil.rmtree, self.workdir, True)
        self.db = os.path.join(self.mnt, "crossdock.db")
        self.hub = None
        self.addCleanup(self.stop_hub_quietly)  # runs before the unmount

    def remount(self, opts):
        r = sh("mount", "-o", f"remount,{opts}", self.mnt)
        self.assertEqual(r.returncode, 0, f"remount,{opts}: {r.stderr}")

    def unmount(self):
        if sh("umount", self.mnt).returncode != 0:
            sh("umount", "-l", self.mnt)
        try:
            os.rmdir(self.mnt)
        except OSError:
            pass

    def stop_hub_quietly(self):
        if self.hub and self.hub.proc:
            self.hub.kill()

    def start_hub(self):
        self.hub = Hub(workdir=self.workdir, store_path=self.db).start(timeout=HANG_GUARD_S)
        return self.hub

    def stop_hub(self):
        rc = self.hub.stop()
        log = self.hub.read_log()
        self.assertEqual(rc, 0, "crossdock serve on SIGTERM:\n" + log)
        self.assertFalse(xdtest.sanitizer_report(log), log)

    def assertUnavailable(self, resp):
        st, h, body = resp
        self.assertEqual(st, 503, body)
        self.assertTrue(h.get("retry-after"), f"503 without Retry-After: {h}")
        self.assertTrue(h.get("content-type", "").startswith("application/problem+json"), h)
        self.assertEqual(body.get("status"), 503, body)
        for k in ("type", "title"):
            self.assertIn(k, body)

    def check_all(self, acked, refused):
        """Every acknowledged event reads back as posted; nothing refused is there."""
        conn = self.hub.conn()
        try:
            for e in acked:
                st, _, body = self.hub.get_event(e["event_id"], conn=conn)
                self.assertEqual(st, 200, f"{e['event_id']} was acknowledged: {body}")
                diff = xdtest.matches(e, body["event"])
                self.assertIsNone(diff, f"{e['event_id']}: {diff}")
            for eid in refused:
                st, _, body = self.hub.get_event(eid, conn=conn)
                self.assertEqual(st, 404, f"{eid} was refused with 503 but is stored: {body}")
        finally:
            conn.close()

    def wait_until(self, what, fn):
        deadline = time.monotonic() + HANG_GUARD_S
        while time.monotonic() < deadline:
            self.assertTrue(self.hub.alive(), "the hub died:\n" + self.hub.read_log())
            if fn():
                return
            time.sleep(0.1)
        self.fail(f"hang guard: {what} did not happen within {HANG_GUARD_S} s\n"
                  + self.hub.read_log())


def batch_of(prefix, n, pad):
    evs = []
    for i in range(n):
        e = xdtest.event(1)
        e["event_id"] = f"{prefix}-{i}"
        e["data"]["shipment_id"] = f"SHP-{prefix}-{i}"
        e["data"]["x_pad"] = (f"{prefix}-{i}:" * (pad // 8 + 1))[:pad]
        evs.append(e)
    return evs


class DiskFullTest(StoreOnTmpfs):

    def post_batch(self, prefix, n=10, pad=3000):
        evs = batch_of(prefix, n, pad)
        resp = self.hub.post_events({"events": evs})
        st, _, body = resp
        self.assertTrue(self.hub.alive(), "the hub died:\n" + self.hub.read_log())
        self.assertIn(st, (202, 503), body)
        if st == 202:
            self.assertEqual(body, {"accepted": [e["event_id"] for e in evs], "duplicates": []})
            self.acked += evs
        else:
            self.assertUnavailable(resp)
            self.refused += [e["event_id"] for e in evs]
        return st

    def test_disk_full_then_space_freed(self):
        self.mount("4m")
        self.start_hub()
        self.acked, self.refused = [], []

        # Fill the disk: go on well past the first 503, and end on a 503.
        full_at = None
        for i in range(3000):  # hang guard; 4 MiB fills in far fewer
            st = self.post_batch(f"fill{i}", pad=3000 if full_at is None else 300)
            if st == 503 and full_at is None:
                full_at = i
            if full_at is not None and i - full_at >= 20 and st == 503:
                break
        self.assertIsNotNone(full_at, "the 4 MiB tmpfs never filled up")
        self.assertEqual(st, 503, "the disk never stayed full")
        self.assertGreater(len(self.acked), 0, "nothing was accepted before the disk filled")
        # The last commit failed: not ready, but alive.
        self.assertUnavailable(self.hub.request("GET", "/readyz"))
        st, _, body = self.hub.request("GET", "/healthz")
        self.assertEqual(st, 200, body)
        # Small requests too, single events and batches, while full.
        for i in range(10):
            self.post_batch(f"small{i}", n=1 + i % 3, pad=10)
        print(f"\ndisk full after {full_at} batches: {len(self.acked)} events accepted, "
              f"{len(self.refused)} refused", file=sys.stderr)
        self.assertGreater(len(self.refused), 0)

        # Still reading.
        self.check_all(self.acked, self.refused)
        # An event stored before is still a duplicate, not an error.
        st, _, body = self.hub.post_events(self.acked[0])
        if st == 202:
            self.assertEqual(body, {"accepted": [], "duplicates": [self.acked[0]["event_id"]]})
        else:
            self.assertUnavailable((st, _, body))
        self.assertEqual(xdtest.integrity_check(self.db), ["ok"])

        # Free space: the same hub takes events again.
        self.remount("size=64m")
        attempt = [0]

        def accepted_again():
            attempt[0] += 1
            return self.post_batch(f"after{attempt[0]}", pad=300) == 202

        self.wait_until("a 202 after the disk was grown", accepted_again)
        self.wait_until("/readyz 200 after the disk was grown",
                        lambda: self.hub.request("GET", "/readyz")[0] == 200)
        for i in range(20):
            self.assertEqual(self.post_batch(f"more{i}"), 202)
        self.check_all(self.acked, self.refused)
        self.stop_hub()
        self.assertEqual(xdtest.integrity_check(self.db), ["ok"])

        # And after a restart everything acknowledged is still there.
        self.start_hub()
        self.check_all(self.acked, self.refused)
        self.stop_hub()


class ReadOnlyStoreTest(StoreOnTmpfs):

    def test_read_only_after_clean_stop(self):
        """The store was closed cleanly (SQLite removed its -wal and -shm files)."""
        self.read_only_then_writable(crash=False)

    def test_read_only_after_crash(self):
        """The hub was killed: the -wal and -shm files are still there."""
        self.read_only_then_writable(crash=True)

    def read_only_then_writable(self, crash):
        self.mount("16m")
        self.start_hub()
        before = batch_of("ro-before", 5, 100)
        st, _, body = self.hub.post_events({"events": before})
        self.assertEqual(st, 202, body)
        if crash:
            self.hub.kill()
        else:
            self.stop_hub()

        self.remount("ro")
        self.start_hub()  # a read-only store still opens: reads work
        st, _, body = self.hub.request("GET", "/healthz")
        self.assertEqual(st, 200, body)
        self.assertUnavailable(self.hub.request("GET", "/readyz"))
        refused = []
        for i in range(3):
            evs = batch_of(f"ro-refused{i}", 1 + i, 100)
            self.assertUnavailable(self.hub.post_events(
                evs[0] if len(evs) == 1 else {"events": evs}))
            refused += [e["event_id"] for e in evs]
        # a duplicate of a stored event: a success, or 503, never anything else
        st, h, body = self.hub.post_events(before[0])
        if st == 202:
            self.assertEqual(body, {"accepted": [], "duplicates": [before[0]["event_id"]]})
        else:
            self.assertUnavailable((st, h, body))
        self.check_all(before, refused)
        self.assertTrue(self.hub.alive())

        # Writable again: the same hub recovers.
        self.remount("rw")
        after = []
        attempt = [0]

        def accepted_again():
            attempt[0] += 1
            evs = batch_of(f"ro-after{attempt[0]}", 3, 100)
            resp = self.hub.post_events({"events": evs})
            if resp[0] == 202:
                after.extend(evs)
                return True
            self.assertUnavailable(resp)
            refused.extend(e["event_id"] for e in evs)
            return False

        self.wait_until("a 202 after remount,rw", accepted_again)
        self.wait_until("/readyz 200 after remount,rw",
                        lambda: self.hub.request("GET", "/readyz")[0] == 200)
        self.check_all(before + after, refused)
        self.stop_hub()
        self.assertEqual(xdtest.integrity_check(self.db), ["ok"])


if __name__ == "__main__":
    xdtest.main()
