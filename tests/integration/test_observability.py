"""Observability end to end: /metrics, traceparent, structured logs, and the
dashboard's own API (/v1/stats, /v1/deliveries/count, /ui), with the real hub
delivering to the real stand-in.

- /metrics is parsed with a small Prometheus text-format parser (below): every
  sample belongs to the family declared just before it, histograms are
  cumulative and end in +Inf = _count, and the counters match what was
  posted (by type), refused (by reason), delivered and dead-lettered (by
  target and outcome, against what the stand-in recorded), charged, and what
  is waiting; the process metrics are there and sane.
- traceparent: a batch posted with one keeps its trace id on every delivery
  attempt of every event in it, each attempt a new span; without one (or with
  an invalid one) the trace id is derived from the event id; the timeline
  shows it.
- logs: JSON lines, each with ts, level and msg; the dead-letter line carries
  the event id and its trace id; no API key ever appears; text format too.

Nothing here asserts on speed: every wait is a poll with a hang guard.
"""
import hashlib
import json
import math
import os
import re
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import xdtest  # noqa: E402
from xdstandin import StandIn, poll, TRACEPARENT_RE  # noqa: E402
from xdtest import Hub  # noqa: E402

HANG_GUARD_S = 90

# ---- a small Prometheus text-format (0.0.4) parser ------------------------------

SAMPLE_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+-?\d+)?$')
LABEL_RE = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*(,|$)')


def parse_labels(text):
    labels, pos = {}, 0
    while pos < len(text):
        m = LABEL_RE.match(text, pos)
        if not m:
            raise ValueError(f"bad labels at {pos}: {text!r}")
        name, raw = m.group(1), m.group(2)
        if name in labels:
            raise ValueError(f"label {name} twice: {text!r}")
        labels[name] = raw.replace("\\n", "\n").replace('\\"', '"').replace("\\\\", "\\")
        pos = m.end()
    return labels


def parse_value(v):
    if v in ("+Inf", "Inf"):
        return math.inf
    if v == "-Inf":
        return -math.inf
    if v == "NaN":
        return math.nan
    return float(v)


def parse_prometheus(text):
    """Returns {family: {"type", "help", "samples": [(name, labels, value)]}}; raises
    ValueError on anything the format does not allow."""
    fams, current = {}, None
    suffixes = {"histogram": ("_bucket", "_sum", "_count"), "summary": ("_sum", "_count", "")}
    if not text.endswith("\n"):
        raise ValueError("the exposition does not end with a newline")
    for n, line in enumerate(text.split("\n")[:-1], 1):
        if not line.strip():
            continue
        if line.startswith("#"):
            parts = line.split(None, 3)
            if len(parts) >= 3 and parts[1] in ("HELP", "TYPE"):
                name = parts[2]
                f = fams.get(name)
                if f is None:
                    f = fams[name] = {"type": "untyped", "help": None, "samples": []}
                elif current != name:
                    raise ValueError(f"line {n}: family {name} declared again after others")
                if parts[1] == "TYPE":
                    if f["samples"]:
                        raise ValueError(f"line {n}: TYPE after samples of {name}")
                    f["type"] = parts[3].strip()
                else:
                    f["help"] = parts[3] if len(parts) > 3 else ""
                current = name
            continue
        m = SAMPLE_RE.match(line)
        if not m:
            raise ValueError(f"line {n}: not a sample: {line!r}")
        name, labels, value = m.group(1), parse_labels(m.group(3) or ""), parse_value(m.group(4))
        fam = None
        if current is not None:
            t = fams[current]["type"]
            allowed = [current + s for s in suffixes.get(t, ("",))]
            if name in allowed:
                fam = current
        if fam is None:
            if name in fams:
                raise ValueError(f"line {n}: {name} is not next to its family")
            fam = name  # an untyped sample with no metadata
            fams[fam] = {"type": "untyped", "help": None, "samples": []}
            current = fam
        fams[fam]["samples"].append((name, labels, value))
    for name, f in fams.items():
        if f["type"] == "histogram":
            check_histogram(name, f["samples"])
        if f["type"] == "counter":
            for s in f["samples"]:
                if not s[2] >= 0:
                    raise ValueError(f"counter {s} is negative")
    return fams


def check_histogram(name, samples):
    series = {}
    for sname, labels, value in samples:
        key = tuple(sorted((k, v) for k, v in labels.items() if k != "le"))
        s = series.setdefault(key, {"buckets": [], "sum": None, "count": None})
        if sname.endswith("_bucket"):
            s["buckets"].append((parse_value(labels["le"]), value))
        elif sname.endswith("_sum"):
            s["sum"] = value
        else:
            s["count"] = value
    for key, s in series.items():
        les = [b[0] for b in s["buckets"]]
        if les != sorted(les) or not les or les[-1] != math.inf:
            raise ValueError(f"{name}{key}: buckets not ascending to +Inf: {les}")
        counts = [b[1] for b in s["buckets"]]
        if counts != sorted(counts):
            raise ValueError(f"{name}{key}: buckets not cumulative: {counts}")
        if s["count"] != counts[-1] or s["sum"] is None:
            raise ValueError(f"{name}{key}: _count {s['count']} != +Inf bucket {counts[-1]}")


def value(fams, family, sample=None, **labels):
    """The value of one sample (0 when that series is absent)."""
    f = fams.get(family)
    assert f is not None, f"no family {family}"
    for name, l, v in f["samples"]:
        if name == (sample or family) and all(l.get(k) == str(x) for k, x in labels.items()):
            return v
    return 0


# ---- the hub's set-up ------------------------------------------------------------

KEYS = {"ops": ("ops-s3cret-k3y", ["read", "ops", "events:write"]),
        "viewer": ("viewer-s3cret-k3y", ["read"])}
OPS, VIEWER = KEYS["ops"][0], KEYS["viewer"][0]


def config(url, log_format="json"):
    return f"""log: {{level: debug, format: {log_format}}}
targets:
  erp:
    type: http
    url: {url}/obs/erp
    retry: {{max_attempts: 4, initial_backoff_ms: 50, max_backoff_ms: 200}}
  billing:
    type: http
    url: {url}/obs/billing
    retry: {{max_attempts: 4, initial_backoff_ms: 50, max_backoff_ms: 200}}
routes:
  - name: shipments
    on: [shipment.confirmed]
    steps:
      - deliver: erp
        map: '{{event: .event_id, shipment: .data.shipment_id}}'
      - rate: true
      - deliver: billing
  - name: receipts
    on: [goods.received]
    steps:
      - deliver: erp
        map: '{{event: .event_id, receipt: .data.receipt_id}}'
rate_cards:
  - customer: ACME
    currency: USD
    effective_from: 2026-01-01
    charges:
      - {{code: HANDLING_SHIPMENT, on: shipment.confirmed, per: shipment, price: "2.50"}}
      - {{code: PICK_UNIT, on: shipment.confirmed, per: unit, price: "0.35"}}
"""


def ship(eid):
    e = xdtest.event(1)
    e["event_id"] = eid
    e["data"]["shipment_id"] = "SHP-" + eid
    e["data"]["order_id"] = "ORD-" + eid
    return e


def receipt(eid):
    return {"event_id": eid, "type": "goods.received", "occurred_at": "2026-11-28T15:00:00Z",
            "source": "wms-test",
            "data": {"warehouse": "DC1", "receipt_id": "RCV-" + eid, "customer": "ACME",
                     "lines": [{"sku": "SKU-1", "qty": 5}]}}


def derived_trace_id(event_id):
    return hashlib.sha256(event_id.encode()).hexdigest()[:32]


class ObservabilityTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.standin = StandIn().start()
        cls.hub = Hub(config_extra=config(f"http://127.0.0.1:{cls.standin.port}"),
                      keys=KEYS).start(timeout=HANG_GUARD_S)

    @classmethod
    def tearDownClass(cls):
        rc = cls.hub.stop()
        log = cls.hub.read_log()
        cls.hub.cleanup()
        cls.standin.stop()
        if rc != 0:
            raise AssertionError(f"crossdock serve exited {rc} on SIGTERM:\n{log}")
        if xdtest.sanitizer_report(log):
            raise AssertionError("sanitizer report in the server log:\n" + log)

    def post(self, events, headers=None, key=OPS, status=202):
        st, _, body = self.hub.request("POST", "/v1/events", body={"events": events},
                                       headers=headers, key=key)
        self.assertEqual(st, status, body)
        return body

    def get(self, path, key=VIEWER):
        st, _, body = self.hub.request("GET", path, key=key)
        self.assertEqual(st, 200, body)
        return body

    def wait_states(self, eids, states):
        def check():
            return all(self.get(f"/v1/events/{e}")["state"] in states for e in eids)
        poll(f"{eids} to reach {states}", check, HANG_GUARD_S)

    def scrape(self):
        st, h, body = self.hub.request("GET", "/metrics", key=VIEWER)
        self.assertEqual(st, 200, body)
        self.assertTrue(h["content-type"].startswith("text/plain; version=0.0.4"), h)
        return parse_prometheus(body.decode() if isinstance(body, bytes) else str(body))

    # -- /metrics ------------------------------------------------------------------

    def test_1_metrics_parse_and_match_what_happened(self):
        s, hub = self.standin, self.hub
        before = self.scrape()
        base_ship = value(before, "crossdock_events_received_total", type="shipment.confirmed")
        base_rcv = value(before, "crossdock_events_received_total", type="goods.received")
        base_bad = value(before, "crossdock_events_rejected_total", reason="invalid-event")
        s.rule(path="/obs/erp", status=400, match='"m-dead-1"')
        s.rule(path="/obs/erp", status=503, count=1, match='"m-ship-2"')
        ships = [ship(f"m-ship-{i}") for i in range(1, 4)]
        self.post(ships + [ship("m-dead-1")])
        self.post([receipt("m-rcv-1"), receipt("m-rcv-2")])
        bad = ship("m-invalid")
        bad["data"]["lines"][0]["qty"] = -1
        self.post([bad], status=400)
        self.post([ship("m-ship-1")])  # a duplicate: acknowledged, not counted as received
        self.wait_states([e["event_id"] for e in ships] + ["m-rcv-1", "m-rcv-2"], ("delivered",))
        self.wait_states(["m-dead-1"], ("dead_lettered",))

        def settled():
            f = self.scrape()
            return f if value(f, "crossdock_backlog", target="erp") == 0 and \
                value(f, "crossdock_backlog", target="billing") == 0 else None
        fams = poll("no backlog in /metrics", settled, HANG_GUARD_S)

        for fam, typ in [("crossdock_events_received_total", "counter"),
                         ("crossdock_events_rejected_total", "counter"),
                         ("crossdock_store_commits_total", "counter"),
                         ("crossdock_store_committed_requests_total", "counter"),
                         ("crossdock_store_committed_events_total", "counter"),
                         ("crossdock_deliveries_total", "counter"),
                         ("crossdock_delivery_seconds", "histogram"),
                         ("crossdock_backlog", "gauge"), ("crossdock_dead_letters", "gauge"),
                         ("crossdock_circuit_open", "gauge"),
                         ("crossdock_charges_total", "counter"),
                         ("crossdock_ship_to_charge_seconds", "histogram"),
                         ("process_resident_memory_bytes", "gauge"),
                         ("process_cpu_seconds_total", "counter"),
                         ("process_open_fds", "gauge"),
                         ("process_start_time_seconds", "gauge")]:
            self.assertIn(fam, fams, f"/metrics lacks {fam}")
            self.assertEqual(fams[fam]["type"], typ, fam)
            self.assertTrue(fams[fam]["help"], f"{fam} has no HELP")

        self.assertEqual(value(fams, "crossdock_events_received_total", type="shipment.confirmed")
                         - base_ship, 4)
        self.assertEqual(value(fams, "crossdock_events_received_total", type="goods.received")
                         - base_rcv, 2)
        self.assertEqual(value(fams, "crossdock_events_rejected_total", reason="invalid-event")
                         - base_bad, 1)
        self.assertGreaterEqual(value(fams, "crossdock_events_duplicate_total"), 1)
        # Every event posted went through a commit; a commit carries at least one request.
        commits = value(fams, "crossdock_store_commits_total", result="ok")
        self.assertGreaterEqual(value(fams, "crossdock_store_committed_events_total"), 6)
        self.assertGreaterEqual(value(fams, "crossdock_store_committed_requests_total"), commits)
        self.assertGreater(commits, 0)
        self.assertEqual(value(fams, "crossdock_store_commits_total", result="failed"), 0)

        # Deliveries against what the stand-in saw (this class's hub is its only client).
        for target in ("erp", "billing"):
            reqs = s.requests(f"/obs/{target}")
            ok = sum(1 for r in reqs if 200 <= r["status"] < 300)
            retry = sum(1 for r in reqs if r["status"] >= 500)
            fail = sum(1 for r in reqs if 400 <= r["status"] < 500)
            got = {o: value(fams, "crossdock_deliveries_total", target=target, outcome=o)
                   for o in ("ok", "retry", "fail", "dead")}
            self.assertEqual((got["ok"], got["retry"], got["fail"]), (ok, retry, fail),
                             f"{target}: /metrics {got}, stand-in saw ok {ok} retry {retry} "
                             f"fail {fail}")
            self.assertEqual(value(fams, "crossdock_delivery_seconds", "crossdock_delivery_seconds_count",
                                   target=target), len(reqs), target)
        self.assertGreaterEqual(value(fams, "crossdock_deliveries_total", target="erp",
                                      outcome="retry"), 1)
        self.assertEqual(value(fams, "crossdock_deliveries_total", target="erp", outcome="dead"), 1)
        self.assertEqual(value(fams, "crossdock_dead_letters", target="erp"), 1)
        self.assertEqual(value(fams, "crossdock_dead_letters", target="billing"), 0)
        self.assertEqual(value(fams, "crossdock_circuit_open", target="erp"), 0)

        charges = self.get("/v1/charges?customer=ACME")["charges"]
        self.assertEqual(value(fams, "crossdock_charges_total", customer="ACME", currency="USD"),
                         len(charges))
        billed = sum(1 for r in s.requests("/obs/billing") if r["status"] == 200)
        self.assertEqual(value(fams, "crossdock_ship_to_charge_seconds",
                               "crossdock_ship_to_charge_seconds_count"), billed)

        self.assertGreater(value(fams, "process_resident_memory_bytes"), 1 << 20)
        self.assertGreater(value(fams, "process_open_fds"), 3)
        self.assertGreaterEqual(value(fams, "process_cpu_seconds_total"), 0)
        start = value(fams, "process_start_time_seconds")
        self.assertTrue(time.time() - 3600 < start <= time.time() + 5, start)

        # The dashboard's series saw the same.
        st = self.get("/v1/stats")
        self.assertEqual(len(st["minutes"]), st["window_minutes"])
        self.assertGreaterEqual(sum(m["events"] for m in st["minutes"]), 6)
        self.assertEqual(st["totals"]["dead_letters"], 1)
        erp = [t for t in st["targets"] if t["name"] == "erp"][0]
        self.assertEqual((erp["dead"], erp["circuit"], erp["backlog"]), (1, "closed", 0))
        self.assertEqual(st["exceptions"]["open"], 1)
        usd = [r for r in st["kpis"]["revenue_by_customer"] if r["currency"] == "USD"]
        self.assertEqual(usd[0]["charges"], len(charges))
        cnt = self.get("/v1/deliveries/count?state=dead&target=erp")
        self.assertEqual(cnt, {"count": 1, "filter": {"state": "dead", "target": "erp"}})
        self.assertEqual(self.get("/v1/deliveries/count?state=dead&target=billing")["count"], 0)

    def test_parser_refuses_what_prometheus_would(self):
        for bad in ['# TYPE a counter\na 1\n# TYPE b gauge\nb 1\na 2\n',
                    '# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1\n',
                    'a{x="1} 2\n', 'a 1']:
            with self.assertRaises(ValueError, msg=bad):
                parse_prometheus(bad)
        f = parse_prometheus('# HELP a x\n# TYPE a counter\na{k="q\\"uote"} 3\n')
        self.assertEqual(value(f, "a", k='q"uote'), 3)

    # -- traceparent -----------------------------------------------------------------

    def test_2_traceparent_continued_on_every_delivery(self):
        s = self.standin
        trace = "4bf92f3577b34da6a3ce929d0e0e4736"
        parent = "00f067aa0ba902b7"
        s.rule(path="/obs/erp", status=503, count=1, match='"tp-2"')
        self.post([ship("tp-1"), ship("tp-2"), receipt("tp-3")],
                  headers={"traceparent": f"00-{trace}-{parent}-01"})
        self.post([ship("tp-none")])
        self.post([ship("tp-bad")], headers={"traceparent": "00-zz-not-a-trace-01"})
        self.wait_states(["tp-1", "tp-2", "tp-3", "tp-none", "tp-bad"], ("delivered",))

        reqs = [r for r in s.requests() if r["path"].startswith("/obs/")]

        def of(eid):
            out = []
            for r in reqs:
                b = r["body"]
                if b.get("event") == eid or b.get("event_id") == eid:
                    out.append(TRACEPARENT_RE.match(r["headers"]["traceparent"]))
            self.assertTrue(out, f"no delivery of {eid} reached the stand-in")
            return out

        spans = set()
        for eid in ("tp-1", "tp-2", "tp-3"):
            ms = of(eid)
            self.assertEqual({m.group(1) for m in ms}, {trace}, eid)
            for m in ms:
                self.assertNotEqual(m.group(2), parent, f"{eid}: an attempt reused the caller's span")
                self.assertNotIn(m.group(2), spans, f"{eid}: a span id used twice")
                spans.add(m.group(2))
                self.assertEqual(m.group(3), "01")
        self.assertGreaterEqual(len(of("tp-2")), 2, "tp-2 should have been retried once")
        self.assertEqual({m.group(1) for m in of("tp-none")}, {derived_trace_id("tp-none")})
        self.assertEqual({m.group(1) for m in of("tp-bad")}, {derived_trace_id("tp-bad")})

        ev = self.get("/v1/events/tp-1")
        self.assertEqual(ev["trace_id"], trace)
        self.assertEqual(ev["traceparent"], f"00-{trace}-{parent}-01")
        ev = self.get("/v1/events/tp-none")
        self.assertEqual(ev["trace_id"], derived_trace_id("tp-none"))
        self.assertNotIn("traceparent", ev)

    # -- logs -------------------------------------------------------------------------

    def test_3_json_logs_with_event_and_trace_ids_and_no_secrets(self):
        s = self.standin
        s.rule(path="/obs/erp", status=400, match='"log-dead"')
        trace = "0af7651916cd43dd8448eb211c80319c"
        self.post([ship("log-dead")], headers={"traceparent": f"00-{trace}-b7ad6b7169203331-01"})
        self.wait_states(["log-dead"], ("dead_lettered",))

        def dead_line():
            for line in self.hub.read_log().splitlines():
                if line.startswith("{") and "dead-lettered" in line and "log-dead" in line:
                    return json.loads(line)
            return None
        rec = poll("the dead-letter log line", dead_line, HANG_GUARD_S)
        self.assertEqual(rec["level"], "warn")
        self.assertEqual(rec["event_id"], "log-dead")
        self.assertEqual(rec["trace_id"], trace)

        log = self.hub.read_log()
        n = 0
        for line in log.splitlines():
            if not line.startswith("{"):
                continue  # serve's plain "listening on port N" line, printed whatever the format
            rec = json.loads(line)
            for k in ("ts", "level", "msg"):
                self.assertIn(k, rec, line)
            self.assertIn(rec["level"], ("debug", "info", "warn", "error"))
            if "intake:" in rec["msg"]:
                self.assertIn("event_id", rec, line)
                self.assertRegex(rec["trace_id"], "^[0-9a-f]{32}$")
            n += 1
        self.assertGreater(n, 3)
        for _, (secret, _) in KEYS.items():
            self.assertNotIn(secret, log, "an API key was logged")

    def test_text_logs_name_the_event(self):
        hub = Hub(config_extra=config(f"http://127.0.0.1:{self.standin.port}", "text"),
                  keys=KEYS).start(timeout=HANG_GUARD_S)
        try:
            self.standin.rule(path="/obs/erp", status=400, match='"txt-dead"')
            st, _, body = hub.request("POST", "/v1/events", body=ship("txt-dead"), key=OPS)
            self.assertEqual(st, 202, body)
            line = poll("the text dead-letter line", lambda: next(
                (ln for ln in hub.read_log().splitlines() if "dead-lettered" in ln), None),
                HANG_GUARD_S)
            self.assertRegex(line, r"^\S+Z warn  delivery .* event_id=txt-dead trace_id=[0-9a-f]{32}$")
            self.assertEqual(line.split("trace_id=")[1], derived_trace_id("txt-dead"))
        finally:
            self.assertEqual(hub.stop(), 0, hub.read_log())
            log = hub.read_log()
            hub.cleanup()
            self.assertFalse(xdtest.sanitizer_report(log), log)

    # -- the dashboard's files -------------------------------------------------------

    def test_ui_is_served_without_a_key_and_its_data_needs_one(self):
        for path, ctype in [("/ui", "text/html"), ("/ui/", "text/html"),
                            ("/ui/app.js", "text/javascript"), ("/ui/app.css", "text/css")]:
            st, h, body = self.hub.request("GET", path)
            self.assertEqual(st, 200, path)
            self.assertTrue(h["content-type"].startswith(ctype), (path, h))
            self.assertGreater(len(body), 500, path)
            self.assertIn("default-src 'self'", h.get("content-security-policy", ""), path)
            self.assertEqual(h.get("x-content-type-options"), "nosniff", path)
        st, _, _ = self.hub.request("GET", "/ui/nope.js")
        self.assertEqual(st, 404)
        st, _, _ = self.hub.request("GET", "/v1/stats")
        self.assertEqual(st, 401)
        st, _, body = self.hub.request("POST", "/v1/deliveries/replay", body={}, key=VIEWER)
        self.assertEqual(st, 403, body)
        st, _, body = self.hub.request("GET", "/v1/deliveries/count?state=bogus", key=VIEWER)
        self.assertEqual(st, 400, body)


if __name__ == "__main__":
    xdtest.main()
