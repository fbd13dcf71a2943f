"""A NATS source whose store cannot take events (docs/nats.md, "The source").

The hub's SQLite store is on a tmpfs mounted read-only (as in
test_disk_full.py; needs root, skips otherwise) while events wait in a
JetStream stream. The source must not acknowledge anything it could not
commit and must not reject anything for it: the messages are negatively
acknowledged and come back. Once the file system is writable again, the
same hub stores every event, once, the consumer ends with nothing pending
or unacknowledged, and no `rejected_message` exception was opened.
"""
import json
import os
import sqlite3
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration"))
import xdnats  # noqa: E402
import xdtest  # noqa: E402
from test_disk_full import StoreOnTmpfs  # noqa: E402
from xdstandin import poll  # noqa: E402
from xdtest import Hub  # noqa: E402

HANG_GUARD_S = 120


@xdnats.need_nats_server
class NatsStoreDownTest(StoreOnTmpfs):

    def test_read_only_store_naks_then_takes_everything(self):
        self.mount("16m")
        cluster = xdnats.Cluster().start()
        self.addCleanup(cluster.cleanup)
        js = xdnats.Client(cluster.urls())
        self.addCleanup(js.close)
        js.add_stream("RO", ["ro.>"])

        config = (f"sources:\n  - {{name: wms, type: nats, servers: [{', '.join(cluster.urls())}],"
                  f" stream: RO, batch: 16, fetch_wait_ms: 200}}\n")
        # create the store (and its schema) first, then make it read-only
        self.hub = Hub(workdir=self.workdir, store_path=self.db).start(timeout=HANG_GUARD_S)
        self.stop_hub()
        self.remount("ro")
        self.hub = Hub(workdir=self.workdir, store_path=self.db, config_extra=config)
        self.hub.start(timeout=HANG_GUARD_S)

        ids = [f"ro-{i:03d}" for i in range(40)]
        for eid in ids:
            e = xdtest.event(1)
            e["event_id"] = eid
            e["data"]["shipment_id"] = "SHP-" + eid
            js.js_publish_retry("ro.e", json.dumps(e).encode(), eid)

        # refused by the store: delivered, not acknowledged, delivered again
        poll("messages delivered again while the store is read-only",
             lambda: js.consumer_info("RO", "crossdock").get("num_redelivered", 0) > 0,
             timeout=HANG_GUARD_S)
        ci = js.consumer_info("RO", "crossdock")
        self.assertLess(ci["ack_floor"]["stream_seq"], len(ids), ci)
        self.assertTrue(self.hub.alive(), self.hub.read_log())
        self.assertEqual(self.hub.get_event(ids[0])[0], 404)

        self.remount("rw")

        def settled():
            c = js.consumer_info("RO", "crossdock")
            return c if c["num_pending"] == 0 and c["num_ack_pending"] == 0 else None
        poll("the consumer settled once the store is writable", settled, timeout=HANG_GUARD_S)
        for eid in ids:
            st, _, body = self.hub.get_event(eid)
            self.assertEqual(st, 200, f"{eid}: {body}")
        st, _, body = self.hub.request("GET", "/v1/exceptions?category=rejected_message")
        self.assertEqual(body["exceptions"], [], "nothing may be rejected for the store's state")
        self.stop_hub()
        db = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True)
        try:
            self.assertEqual(db.execute("SELECT count(*) FROM events").fetchone()[0], len(ids))
        finally:
            db.close()


if __name__ == "__main__":
    xdtest.main()
