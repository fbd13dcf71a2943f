"""NATS JetStream in and out (docs/nats.md), against a private 3-node cluster.

- source: events published to a stream are consumed by the hub's durable pull
  consumer, stored (an event without event_id takes its Nats-Msg-Id), routed
  and delivered to the stand-in target; a message published twice is one
  event; malformed, invalid and mismatched-id messages become
  `rejected_message` exceptions and are terminated, never delivered forever
  (so does one over server.max_body);
  the consumer ends with nothing pending or unacknowledged; a restarted hub
  continues where it left off; messages delivered again (a new durable on
  the same store, as after a crash between commit and ack) are acknowledged
  as duplicates and stored once.
- target: deliveries to a `type: nats` target land in a stream with
  `Nats-Msg-Id` = the delivery's idempotency key, once each; a subject no
  stream captures is retried (no responders) and delivered once the stream
  exists; a message the stream refuses (over its max_msg_size) fails at
  once: dead-lettered with the JetStream error, an exception opened.
- /metrics: a source's events count in crossdock_events_received_total{type}
  and its refused messages in crossdock_events_rejected_total{reason};
  crossdock_nats_messages_fetched_total{source} and
  crossdock_nats_messages_total{source,outcome} (acked, naked, terminated)
  add up; crossdock_nats_publishes_total{target,outcome} counts a target's
  publishes (ok, duplicate, no_responders, too_large, ...).

The leader-loss tests are in test_nats_failover.py. Every wait is a poll
with a hang guard, never an assertion on speed.
"""
import json
import os
import shutil
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import xdnats  # noqa: E402
import xdtest  # noqa: E402
from xdstandin import IDEM_RE, StandIn, poll  # noqa: E402
from xdtest import Hub  # noqa: E402
from test_observability import parse_prometheus, value  # noqa: E402

HANG_GUARD_S = 120
CLUSTER = None


def setUpModule():
    global CLUSTER
    if xdnats.NATS_SERVER:
        CLUSTER = xdnats.Cluster().start()


def tearDownModule():
    if CLUSTER:
        CLUSTER.cleanup()


def source_yaml(name, stream, subject=None, durable="crossdock", batch=64):
    servers = ", ".join(CLUSTER.urls())
    sub = f"\n    subject: {subject}" if subject else ""
    return (f"sources:\n  - name: {name}\n    type: nats\n    servers: [{servers}]\n"
            f"    stream: {stream}{sub}\n    durable: {durable}\n    batch: {batch}\n"
            f"    fetch_wait_ms: 500\n")


def nats_target_yaml(name, subject, timeout_ms=2000):
    servers = ", ".join(CLUSTER.urls())
    return (f"  {name}:\n    type: nats\n    servers: [{servers}]\n    subject: {subject}\n"
            f"    timeout_ms: {timeout_ms}\n"
            f"    retry: {{max_attempts: 30, initial_backoff_ms: 100, max_backoff_ms: 1000}}\n")


def scrape(hub):
    st, _, body = hub.request("GET", "/metrics")
    assert st == 200, body
    return parse_prometheus(body.decode() if isinstance(body, bytes) else str(body))


def publishes(hub, target):
    """{outcome: count} of crossdock_nats_publishes_total for target (nonzero ones)."""
    fam = scrape(hub)["crossdock_nats_publishes_total"]
    return {l["outcome"]: v for _, l, v in fam["samples"] if l["target"] == target and v}


def stop_hub(tc, hub):
    rc = hub.stop()
    log = hub.read_log()
    hub.cleanup()
    tc.assertEqual(rc, 0, f"crossdock serve exited {rc} on SIGTERM:\n{log}")
    tc.assertFalse(xdtest.sanitizer_report(log), log)
    return log


@xdnats.need_nats_server
class SourceTest(unittest.TestCase):

    def setUp(self):
        self.js = xdnats.Client(CLUSTER.urls())
        self.standin = StandIn().start()

    def tearDown(self):
        self.standin.stop()
        self.js.close()

    def test_events_from_a_stream_are_stored_and_delivered(self):
        self.js.add_stream("WMSIN", ["wmsin.>"])
        good = []
        for i in range(40):
            e = xdtest.event(i)
            e["event_id"] = f"ns-{i:04d}"
            good.append(e)
        # one without event_id: the Nats-Msg-Id header gives it
        anon = xdtest.event(900)
        del anon["event_id"]
        del anon["source"]
        bad = [
            (b"{not json", "bad-json"),
            (json.dumps({**xdtest.event(901), "event_id": "ns-bad-1", "type": "nope"}).encode(),
             None),
            (json.dumps({**xdtest.event(902), "event_id": "ns-bad-2"}).encode(), "other-id"),
            (json.dumps([xdtest.event(903)]).encode(), None),
            (json.dumps({**xdtest.event(904), "event_id": "ns-big", "note": "x" * 9000}).encode(),
             None),
        ]
        for i, e in enumerate(good):
            self.js.js_publish_retry(f"wmsin.dc1.{i % 3}", json.dumps(e).encode(), e["event_id"])
        self.js.js_publish_retry("wmsin.dc1.x", json.dumps(anon).encode(), "ns-from-header")
        for data, mid in bad:
            self.js.js_publish_retry("wmsin.dc1.bad", data, mid)
        # the same event again, without a message id (a WMS re-sending it): a duplicate
        self.js.js_publish_retry("wmsin.dc1.0", json.dumps(good[0]).encode(), None)

        config = (source_yaml("wms", "WMSIN", subject="wmsin.>") +
                  "targets:\n  erp:\n    type: http\n"
                  f"    url: {self.standin.url('/erp/nats')}\n"
                  "routes:\n  - name: ship\n    on: [shipment.confirmed]\n"
                  "    steps:\n      - deliver: erp\n"
                  "        map: '{event: .event_id}'\n")
        hub = Hub(config_extra=config, server={"max_body": 8192}).start()
        try:
            ids = [e["event_id"] for e in good] + ["ns-from-header"]
            for eid in ids:
                poll(f"event {eid} stored",
                     lambda: hub.get_event(eid)[0] == 200, timeout=HANG_GUARD_S)
            st, _, body = hub.get_event("ns-from-header")
            self.assertEqual(body["event"]["source"], "wms", body)  # the source's name
            st, _, body = hub.get_event("ns-0001")
            self.assertEqual(body["event"]["source"], "wms-test", body)  # as sent

            def rejected():
                st, _, b = hub.request("GET", "/v1/exceptions?category=rejected_message")
                return b["exceptions"] if len(b.get("exceptions", [])) >= len(bad) else None
            excs = poll("a rejected_message exception per bad message", rejected,
                        timeout=HANG_GUARD_S)
            self.assertEqual(len(excs), len(bad), excs)
            reasons = " | ".join(x["reason"] for x in excs)
            self.assertIn("malformed JSON", reasons)
            self.assertIn("type", reasons)
            self.assertIn("differs from the Nats-Msg-Id header 'other-id'", reasons)
            mismatch = [x for x in excs if "differs from the Nats-Msg-Id" in x["reason"]]
            self.assertEqual(mismatch[0]["event_id"], "other-id", mismatch)  # searchable by it
            self.assertIn("one event object", reasons)
            self.assertIn("over server.max_body (8192 bytes)", reasons)
            self.assertIn("stream WMSIN message", reasons)

            def delivered():
                got = {r["body"]["event"] for r in self.standin.ok("/erp/nats")}
                return got if set(ids) <= got else None
            poll("every event delivered to the ERP", delivered, timeout=HANG_GUARD_S)

            def settled():
                ci = self.js.consumer_info("WMSIN", "crossdock")
                return ci if ci["num_pending"] == 0 and ci["num_ack_pending"] == 0 else None
            ci = poll("the consumer has nothing pending or unacknowledged", settled,
                      timeout=HANG_GUARD_S)
            self.assertEqual(ci["config"]["ack_policy"], "explicit", ci)

            # /metrics: the 41 events count as received, the duplicate as one, each bad
            # message once under its reason; every message fetched ended acked, nak'ed
            # or terminated (a message may come again: fetched counts it each time).
            def counted():
                f = scrape(hub)
                fetched = value(f, "crossdock_nats_messages_fetched_total", source="wms")
                ends = [value(f, "crossdock_nats_messages_total", source="wms", outcome=o)
                        for o in ("acked", "naked", "terminated")]
                return f if fetched and fetched == sum(ends) else None
            fams = poll("the source's messages all counted", counted, timeout=HANG_GUARD_S)
            self.assertEqual(value(fams, "crossdock_events_received_total",
                                   type="shipment.confirmed"), len(ids))
            self.assertGreaterEqual(value(fams, "crossdock_events_duplicate_total"), 1)
            for reason, n in (("malformed-json", 1), ("invalid-event", 3), ("too-large", 1)):
                self.assertEqual(value(fams, "crossdock_events_rejected_total", reason=reason), n,
                                 reason)
            self.assertEqual(value(fams, "crossdock_nats_messages_total", source="wms",
                                   outcome="terminated"), len(bad))
            self.assertGreaterEqual(value(fams, "crossdock_nats_messages_total", source="wms",
                                          outcome="acked"), len(ids) + 1)
            self.assertGreaterEqual(value(fams, "crossdock_nats_messages_fetched_total",
                                          source="wms"), len(ids) + 1 + len(bad))
            for fam in ("crossdock_nats_messages_fetched_total", "crossdock_nats_messages_total"):
                self.assertEqual(fams[fam]["type"], "counter", fam)
        finally:
            log = stop_hub(self, hub)
        self.assertIn("terminated, exception opened", log)

    def test_restart_continues_where_it_left_off(self):
        self.js.add_stream("WMSRS", ["wmsrs.>"])
        work = tempfile.mkdtemp(prefix="xd-it-")
        config = source_yaml("wms", "WMSRS")
        try:
            for i in range(10):
                e = xdtest.event(i)
                e["event_id"] = f"rs-a-{i}"
                self.js.js_publish_retry("wmsrs.e", json.dumps(e).encode(), e["event_id"])
            hub = Hub(config_extra=config, workdir=work).start()
            poll("first ten stored", lambda: all(hub.get_event(f"rs-a-{i}")[0] == 200
                                                 for i in range(10)), timeout=HANG_GUARD_S)
            stop_hub(self, hub)
            for i in range(10):
                e = xdtest.event(i)
                e["event_id"] = f"rs-b-{i}"
                self.js.js_publish_retry("wmsrs.e", json.dumps(e).encode(), e["event_id"])
            hub = Hub(config_extra=config, workdir=work).start()
            poll("next ten stored", lambda: all(hub.get_event(f"rs-b-{i}")[0] == 200
                                                for i in range(10)), timeout=HANG_GUARD_S)
            ci = poll("consumer settled",
                      lambda: (lambda c: c if c["num_pending"] == 0 and
                               c["num_ack_pending"] == 0 else None)(
                          self.js.consumer_info("WMSRS", "crossdock")), timeout=HANG_GUARD_S)
            # each message delivered once: nothing was redelivered after the restart
            self.assertEqual(ci["delivered"]["stream_seq"], 20, ci)
            self.assertEqual(ci.get("num_redelivered", 0), 0, ci)
            stop_hub(self, hub)

            # Every message again, as after a crash between commit and ack: a new durable
            # on the same store gets all twenty; they are duplicates, acknowledged, and
            # nothing is stored twice or rejected.
            hub = Hub(config_extra=source_yaml("wms", "WMSRS", durable="again"),
                      workdir=work).start()
            poll("the second consumer settled",
                 lambda: (lambda c: c if c["num_pending"] == 0 and c["num_ack_pending"] == 0 and
                          c["delivered"]["stream_seq"] == 20 else None)(
                     self.js.consumer_info("WMSRS", "again")), timeout=HANG_GUARD_S)
            st, _, excs = hub.request("GET", "/v1/exceptions?category=rejected_message")
            self.assertEqual(excs["exceptions"], [])
            stop_hub(self, hub)
            import sqlite3
            db = sqlite3.connect(os.path.join(work, "crossdock.db"))
            try:
                self.assertEqual(db.execute("SELECT count(*) FROM events").fetchone()[0], 20)
            finally:
                db.close()
        finally:
            shutil.rmtree(work, ignore_errors=True)


@xdnats.need_nats_server
class TargetTest(unittest.TestCase):

    def setUp(self):
        self.js = xdnats.Client(CLUSTER.urls())

    def tearDown(self):
        self.js.close()

    def test_deliveries_are_published_with_their_idempotency_key(self):
        self.js.add_stream("OUT1", ["out1.>"])
        config = ("targets:\n" + nats_target_yaml("bus", "out1.shipments") +
                  "routes:\n  - name: ship\n    on: [shipment.confirmed]\n"
                  "    steps:\n      - deliver: bus\n"
                  "        map: '{event: .event_id, shipment: .data.shipment_id}'\n")
        hub = Hub(config_extra=config).start()
        try:
            ids = []
            for i in range(30):
                e = xdtest.event(i)
                ids.append(e["event_id"])
                st, _, body = hub.post_events(e)
                self.assertEqual(st, 202, body)

            def done():
                st, _, b = hub.request("GET", "/v1/deliveries?state=done&target=bus&limit=1000")
                return b["deliveries"] if len(b["deliveries"]) == len(ids) else None
            dl = poll("every delivery done", done, timeout=HANG_GUARD_S)
            msgs = self.js.stream_messages("OUT1")
            self.assertEqual(len(msgs), len(ids), msgs)
            seen = {}
            for seq, subject, hdrs, data in msgs:
                self.assertEqual(subject, "out1.shipments")
                self.assertRegex(hdrs.get("Nats-Msg-Id", ""), IDEM_RE, hdrs)
                self.assertNotIn(hdrs["Nats-Msg-Id"], seen, "one message per delivery")
                seen[hdrs["Nats-Msg-Id"]] = json.loads(data)["event"]
                self.assertIn("traceparent", hdrs)
            self.assertEqual(sorted(seen.values()), sorted(ids))
            self.assertEqual({d["event_id"] for d in dl}, set(ids))
            # one acknowledged publish per delivery (a duplicate: an earlier attempt's
            # acknowledgment was lost), whatever failed on the way
            got = publishes(hub, "bus")
            self.assertEqual(got.get("ok", 0) + got.get("duplicate", 0), len(ids), got)
            self.assertEqual(scrape(hub)["crossdock_nats_publishes_total"]["type"], "counter")
        finally:
            stop_hub(self, hub)

    def test_no_stream_yet_is_retried_until_one_captures_the_subject(self):
        config = ("targets:\n" + nats_target_yaml("late", "out2.events", timeout_ms=500) +
                  "routes:\n  - name: r\n    on: [shipment.confirmed]\n"
                  "    steps:\n      - deliver: late\n")
        hub = Hub(config_extra=config).start()
        try:
            st, _, body = hub.post_events(xdtest.event(7))
            self.assertEqual(st, 202, body)

            def retried():
                st, _, b = hub.get_event(xdtest.event(7)["event_id"])
                tl = json.dumps(b)
                return b if "no_responders" in tl or "no responders" in tl.lower() else None
            poll("a retried attempt with no responders", retried, timeout=HANG_GUARD_S)
            self.js.add_stream("OUT2", ["out2.>"])

            def done():
                st, _, b = hub.request("GET", "/v1/deliveries?state=done&target=late")
                return b["deliveries"] or None
            poll("delivered once the stream exists", done, timeout=HANG_GUARD_S)
            msgs = self.js.stream_messages("OUT2")
            self.assertEqual(len(msgs), 1, msgs)
            got = publishes(hub, "late")
            self.assertEqual(got.get("ok", 0) + got.get("duplicate", 0), 1, got)
            # the attempts before the stream existed: no responders (a JetStream error or
            # a timeout, as the cluster tells it)
            self.assertGreaterEqual(sum(v for k, v in got.items() if k not in ("ok", "duplicate")),
                                    1, got)
            self.assertEqual(json.loads(msgs[0][3])["event_id"], xdtest.event(7)["event_id"])
        finally:
            stop_hub(self, hub)

    def test_a_message_the_stream_refuses_is_dead_lettered(self):
        self.js.add_stream("OUT3", ["out3.>"], max_msg_size=64)
        config = ("targets:\n" + nats_target_yaml("small", "out3.events") +
                  "routes:\n  - name: r\n    on: [shipment.confirmed]\n"
                  "    steps:\n      - deliver: small\n")
        hub = Hub(config_extra=config).start()
        try:
            st, _, body = hub.post_events(xdtest.event(8))
            self.assertEqual(st, 202, body)

            def dead():
                st, _, b = hub.request("GET", "/v1/deliveries?state=dead&target=small")
                return b["deliveries"] or None
            dl = poll("the delivery dead-lettered", dead, timeout=HANG_GUARD_S)
            self.assertEqual(dl[0]["attempts"], 1, dl)  # FAIL: not retried
            self.assertIn("10054", dl[0]["last_error"], dl)
            st, _, b = hub.request("GET", "/v1/exceptions?category=dead_letter")
            self.assertEqual(len(b["exceptions"]), 1, b)
            self.assertEqual(self.js.stream_info("OUT3")["state"]["messages"], 0)
            self.assertEqual(publishes(hub, "small"), {"too_large": 1})
        finally:
            stop_hub(self, hub)


if __name__ == "__main__":
    xdtest.main()
