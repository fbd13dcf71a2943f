"""Leader loss in the JetStream cluster while the hub consumes and publishes
(issue 9, done when: "nothing acknowledged is lost"; docs/nats.md).

- consume: a publisher writes events into a replicated (R3) stream while the
  hub's source consumes them; the stream's leader is SIGKILLed mid-way, and
  later the hub itself is SIGKILLed and restarted. At the end every event
  JetStream acknowledged to the publisher is in the store, once, and the
  consumer has nothing pending or unacknowledged: every message the hub
  acknowledged was committed first.
- publish: events posted to the hub are delivered to a `type: nats` target
  while the stream's leader is SIGKILLed mid-way. At the end every delivery
  is done (none dead) and every delivery the hub recorded done is in the
  stream; a message stored twice would have the same Nats-Msg-Id (JetStream
  drops those within its duplicate window), so each event has exactly one
  message id.

The killed node is restarted after each kill, so the cluster is whole for
the next phase. Every wait is a poll with a hang guard.
"""
import json
import os
import shutil
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import xdnats  # noqa: E402
import xdtest  # noqa: E402
from xdstandin import poll  # noqa: E402
from xdtest import Hub  # noqa: E402

HANG_GUARD_S = 240
CLUSTER = None


def setUpModule():
    global CLUSTER
    if xdnats.NATS_SERVER:
        CLUSTER = xdnats.Cluster().start()


def tearDownModule():
    if CLUSTER:
        CLUSTER.cleanup()


def servers():
    return "[" + ", ".join(CLUSTER.urls()) + "]"


def kill_leader(client, stream):
    """SIGKILLs the stream's leader; returns its name."""
    leader = CLUSTER.stream_leader(client, stream)
    CLUSTER.kill(leader)
    return leader


def wait_new_leader(client, stream, old):
    return poll(f"a new leader for {stream}",
                lambda: (lambda l: l if l and l != old else None)(
                    CLUSTER.stream_leader(client, stream)), timeout=HANG_GUARD_S)


def stored_ids(hub, ids):
    """The ids of `ids` that the hub has stored."""
    return {i for i in ids if hub.get_event(i)[0] == 200}


@xdnats.need_nats_server
class FailoverTest(unittest.TestCase):

    def setUp(self):
        self.js = xdnats.Client(CLUSTER.urls())

    def tearDown(self):
        self.js.close()

    def check_stopped(self, hub):
        rc = hub.stop()
        log = hub.read_log()
        self.assertEqual(rc, 0, f"crossdock serve exited {rc} on SIGTERM:\n{log[-4000:]}")
        self.assertFalse(xdtest.sanitizer_report(log), log)

    def test_consume_through_leader_loss_and_a_hub_crash(self):
        stream, n = "FOIN", 600
        self.js.add_stream(stream, ["foin.>"])
        acked = []  # event ids JetStream acknowledged to the publisher
        stop = threading.Event()

        def publisher():
            c = xdnats.Client(CLUSTER.urls())
            try:
                for i in range(n):
                    if stop.is_set():
                        return
                    e = xdtest.event(i)
                    e["event_id"] = f"foin-{i:05d}"
                    c.js_publish_retry(f"foin.dc{i % 4}", json.dumps(e).encode(), e["event_id"],
                                       deadline_s=HANG_GUARD_S)
                    acked.append(e["event_id"])
                    time.sleep(0.005)  # a WMS's pace: the kills land mid-stream
            finally:
                c.close()

        work = tempfile.mkdtemp(prefix="xd-it-")
        config = (f"sources:\n  - name: wms\n    type: nats\n    servers: {servers()}\n"
                  f"    stream: {stream}\n    batch: 32\n    fetch_wait_ms: 200\n"
                  f"    ack_wait_ms: 5000\n")
        hub = Hub(config_extra=config, workdir=work).start()
        pub = threading.Thread(target=publisher)
        pub.start()
        try:
            poll("a first part consumed", lambda: len(acked) >= 100 and
                 len(stored_ids(hub, acked[:100])) == 100, timeout=HANG_GUARD_S)
            old = kill_leader(self.js, stream)
            self.assertLess(len(acked), n, "the leader died after the last publish")
            wait_new_leader(self.js, stream, old)
            poll("publishing goes on after the election", lambda: len(acked) >= 300,
                 timeout=HANG_GUARD_S)
            CLUSTER.start_node(old)
            # then the consumer's own leader (the node that answers the hub's fetches and acks)
            cleader = poll("the consumer's leader", lambda: consumer_leader(self.js, stream),
                           timeout=HANG_GUARD_S)
            CLUSTER.kill(cleader)
            poll("a new consumer leader", lambda: (lambda l: l if l and l != cleader else None)(
                consumer_leader(self.js, stream)), timeout=HANG_GUARD_S)
            CLUSTER.start_node(cleader)
            # the hub crashes mid-stream: what it committed but did not ack comes again
            poll("more consumed", lambda: len(stored_ids(hub, acked[250:300])) == 50,
                 timeout=HANG_GUARD_S)
            hub.kill()
            hub = Hub(config_extra=config, workdir=work).start()
            pub.join(HANG_GUARD_S)
            self.assertFalse(pub.is_alive(), "the publisher hangs")
            self.assertEqual(len(acked), n)

            def settled():
                ci = quiet(lambda: self.js.consumer_info(stream, "crossdock"))
                return ci if ci and ci["num_pending"] == 0 and ci["num_ack_pending"] == 0 else None
            ci = poll("the consumer has nothing pending or unacknowledged", settled,
                      timeout=HANG_GUARD_S)
            print(f"\n  stream leader {old}, consumer leader {cleader} and the hub killed; "
                  f"consumer: delivered "
                  f"{ci['delivered']}, redelivered {ci.get('num_redelivered', 0)}",
                  file=sys.stderr)
            missing = set(acked) - stored_ids(hub, acked)
            self.assertFalse(missing, f"acknowledged by JetStream, not stored: {sorted(missing)}")
            st, _, body = hub.request("GET", "/v1/exceptions?category=rejected_message")
            self.assertEqual(body["exceptions"], [], "nothing was rejected")
            # each event once: the journal holds exactly n events
            self.check_stopped(hub)
            self.assertEqual(count_events(hub.store_path), n)
        finally:
            stop.set()
            pub.join(HANG_GUARD_S)
            hub.stop()
            shutil.rmtree(work, ignore_errors=True)

    def test_publish_through_leader_loss(self):
        stream, n = "FOOUT", 400
        self.js.add_stream(stream, ["foout.>"])
        config = (f"targets:\n  bus:\n    type: nats\n    servers: {servers()}\n"
                  f"    subject: foout.shipments\n    timeout_ms: 1000\n"
                  f"    retry: {{max_attempts: 100, initial_backoff_ms: 100, "
                  f"max_backoff_ms: 2000}}\n"
                  "routes:\n  - name: ship\n    on: [shipment.confirmed]\n"
                  "    steps:\n      - deliver: bus\n"
                  "        map: '{event: .event_id, shipment: .data.shipment_id}'\n")
        hub = Hub(config_extra=config).start()
        ids = [f"foout-{i:05d}" for i in range(n)]
        posted = []

        def poster():
            for k in range(0, n, 10):
                batch = []
                for i in range(k, k + 10):
                    e = xdtest.event(i)
                    e["event_id"] = ids[i]
                    batch.append(e)
                st, _, body = hub.post_events({"events": batch})
                if st != 202:
                    raise AssertionError(f"intake refused a batch: {st} {body}")
                posted.extend(ids[k:k + 10])
                time.sleep(0.05)  # spread the load over the election

        post = threading.Thread(target=poster)
        post.start()
        try:
            poll("a first part published",
                 lambda: quiet(lambda: self.js.stream_info(stream)["state"]["messages"] >= 80),
                 timeout=HANG_GUARD_S)
            old = kill_leader(self.js, stream)
            self.assertLess(len(posted), n, "the leader died after the last event was posted")
            wait_new_leader(self.js, stream, old)
            CLUSTER.start_node(old)
            post.join(HANG_GUARD_S)
            self.assertFalse(post.is_alive(), "posting hangs")
            self.assertEqual(len(posted), n)

            def all_done():
                done, after = [], 0
                while True:
                    st, _, b = hub.request(
                        "GET", f"/v1/deliveries?state=done&target=bus&limit=1000&after={after}")
                    done += b["deliveries"]
                    if "next_after" not in b:
                        return done if len(done) == n else None
                    after = b["next_after"]
            done = poll("every delivery done", all_done, timeout=HANG_GUARD_S)
            st, _, dead = hub.request("GET", "/v1/deliveries?state=dead")
            self.assertEqual(dead["deliveries"], [])

            by_event = {}
            for seq, subject, hdrs, data in self.js.stream_messages(stream):
                by_event.setdefault(json.loads(data)["event"], set()).add(hdrs["Nats-Msg-Id"])
            missing = {d["event_id"] for d in done} - set(by_event)
            self.assertFalse(missing, f"recorded done, not in the stream: {sorted(missing)}")
            two_ids = {e: v for e, v in by_event.items() if len(v) > 1}
            self.assertFalse(two_ids, f"an event published under two message ids: {two_ids}")
            self.assertEqual(set(by_event), set(ids))
            st, _, metrics = hub.request("GET", "/metrics")
            retries = [ln for ln in metrics.decode().splitlines()
                       if ln.startswith('crossdock_deliveries_total{target="bus"')]
            print(f"\n  leader {old} killed; deliveries: {retries}", file=sys.stderr)
            self.check_stopped(hub)
        finally:
            post.join(HANG_GUARD_S)
            hub.cleanup()


def quiet(fn):
    """fn(), or None while the cluster does not answer (an election is on)."""
    try:
        return fn()
    except (xdnats.NatsError, TimeoutError):
        return None


def consumer_leader(client, stream):
    ci = quiet(lambda: client.consumer_info(stream, "crossdock"))
    return ci.get("cluster", {}).get("leader") if ci else None


def count_events(db_path):
    import sqlite3
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=30)
    try:
        return db.execute("SELECT count(*) FROM events").fetchone()[0]
    finally:
        db.close()


if __name__ == "__main__":
    xdtest.main()
