"""The HTTP API against the real `crossdock serve`: every status code of
contract section 3 that intake can give, and bad input of every kind.

Each test class starts one hub (its own folder, config and SQLite store) on a
free loopback port; HubTest's teardown stops it with SIGTERM and fails unless
it exits 0 with no sanitizer report in its log. Event ids carry a per-test
prefix, so tests in one class never see each other's events.
"""
import copy
import http.client
import json
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
import xdtest  # noqa: E402
from xdtest import HubTest  # noqa: E402

WRITER, WRITER_KEY = "wms-dc1", "wk-9f3b2c1d0e"
VIEWER, VIEWER_KEY = "viewer", "rk-77aa01bc"
ADMIN, ADMIN_KEY = "hub-admin", "ak-5e5e5e5e5e"
KEYS = {
    WRITER: (WRITER_KEY, ["events:write"]),
    VIEWER: (VIEWER_KEY, ["read"]),
    ADMIN: (ADMIN_KEY, ["events:write", "read"]),
}
MAX_BODY = 1048576  # contract defaults
MAX_BATCH = 1000


def ev(eid, **over):
    """A valid shipment.confirmed event with id eid; keyword arguments replace fields."""
    e = xdtest.event(1)
    e["event_id"] = eid
    e["data"]["shipment_id"] = "SHP-" + eid
    e["data"]["order_id"] = "ORD-" + eid
    e.update(over)
    return e


def paths(problem):
    return [e["path"] for e in problem.get("errors", [])]


def has_error(problem, path, field=None):
    """True when problem lists an error at path; for a missing field, an error at
    path.field, or at path with the field named in the message, both count."""
    for e in problem.get("errors", []):
        if e["path"] == path and field is None:
            return True
        if field is not None and (e["path"] == f"{path}.{field}" if path else e["path"] == field):
            return True
        if field is not None and e["path"] == path and field in e["message"]:
            return True
    return False


class ApiTest(HubTest):
    keys = KEYS

    # -- helpers -----------------------------------------------------------------

    def post(self, body, key=WRITER_KEY, **kw):
        return self.hub.post_events(body, key=key, **kw)

    def post_raw(self, data, key=WRITER_KEY, ctype="application/json"):
        h = {"Content-Type": ctype} if ctype else {}
        return self.hub.request("POST", "/v1/events", body=data, headers=h, key=key)

    def get(self, eid, key=VIEWER_KEY):
        return self.hub.get_event(eid, key=key)

    def assertAccepted(self, resp, accepted, duplicates=()):
        st, h, body = resp
        self.assertEqual(st, 202, body)
        self.assertTrue(h.get("content-type", "").startswith("application/json"), h)
        self.assertEqual(body, {"accepted": list(accepted), "duplicates": list(duplicates)})

    def assertStored(self, posted, key=VIEWER_KEY):
        return super().assertStored(posted, key=key)

    def assertNotStored(self, event_id, key=VIEWER_KEY):
        return super().assertNotStored(event_id, key=key)

    def assertMalformed(self, resp, offset=None):
        p = self.assertProblem(resp, 400)
        self.assertIn("malformed JSON at byte", p.get("detail", ""), p)
        if offset is not None:
            self.assertIn(f"malformed JSON at byte {offset}", p["detail"], p)
        self.assertTrue(p.get("errors"), f"no errors[] in {p}")
        return p

    # -- health ------------------------------------------------------------------

    def test_healthz_readyz_need_no_key(self):
        st, h, body = self.hub.request("GET", "/healthz")
        self.assertEqual(st, 200, body)
        self.assertTrue(h.get("content-type", "").startswith("application/json"))
        self.assertEqual(body.get("status"), "ok")
        st, _, body = self.hub.request("GET", "/readyz")
        self.assertEqual(st, 200, body)
        st, _, _ = self.hub.request("HEAD", "/healthz")
        self.assertEqual(st, 200)

    # -- 202 ---------------------------------------------------------------------

    def test_202_single_then_duplicate(self):
        e = ev("s202-1")
        self.assertAccepted(self.post(e), ["s202-1"])
        got = self.assertStored(e)
        self.assertEqual(got["type"], "shipment.confirmed")
        self.assertEqual(got["source"], "wms-test")
        self.assertIsInstance(got.get("timeline"), list)
        self.assertEqual(got.get("business_key"), "shipment:SHP-s202-1")
        # the same event again: a success, listed under duplicates
        self.assertAccepted(self.post(e), [], ["s202-1"])
        # whitespace is not the body: still the same event
        self.assertAccepted(self.post_raw(json.dumps(e, indent=2)), [], ["s202-1"])
        self.assertAccepted(self.post_raw(json.dumps(e, separators=(",", ":"))), [], ["s202-1"])

    def test_202_batch_with_duplicates(self):
        batch = [ev(f"b202-{i}") for i in range(5)]
        self.assertAccepted(self.post({"events": batch}), [e["event_id"] for e in batch])
        for e in batch:
            self.assertStored(e)
        more = [batch[3], ev("b202-5"), batch[0], ev("b202-6")]
        self.assertAccepted(self.post({"events": more}), ["b202-5", "b202-6"],
                            ["b202-3", "b202-0"])
        self.assertStored(more[1])
        self.assertStored(more[3])

    def test_202_same_event_twice_in_one_batch(self):
        e = ev("twice-1")
        self.assertAccepted(self.post({"events": [e, copy.deepcopy(e)]}), ["twice-1"],
                            ["twice-1"])
        self.assertStored(e)

    def test_202_all_event_types(self):
        base = {"occurred_at": "2026-11-28T14:03:11+01:00", "source": "wms-test"}
        events = [
            dict(base, event_id="types-1", type="shipment.voided",
                 data={"warehouse": "DC1", "shipment_id": "SHP-9", "reason": "customer cancel"}),
            dict(base, event_id="types-2", type="goods.received",
                 data={"warehouse": "DC1", "receipt_id": "RCV-1", "customer": "ACME",
                       "lines": [{"sku": "A", "qty": 10, "uom": "CS"}], "pallets": 2}),
            dict(base, event_id="types-3", type="inventory.adjusted",
                 data={"warehouse": "DC1", "adjustment_id": "ADJ-1", "customer": "ACME",
                       "sku": "A", "qty_delta": -4, "reason_code": "DAMAGED"}),
            dict(base, event_id="types-4", type="inventory.snapshot",
                 data={"warehouse": "DC1", "customer": "ACME", "as_of": "2026-11-28",
                       "items": [{"sku": "A", "qty": 100, "pallets": 3}]}),
            dict(base, event_id="types-5", type="delivery.confirmed",
                 data={"shipment_id": "SHP-9", "delivered_at": "2026-11-29T10:00:00Z"}),
            ev("types-6", schema_version=1),
        ]
        self.assertAccepted(self.post({"events": events}), [e["event_id"] for e in events])
        for e in events:
            self.assertStored(e)
        self.assertEqual(self.assertStored(events[0])["business_key"], "shipment:SHP-9")
        self.assertEqual(self.assertStored(events[1])["business_key"], "receipt:RCV-1")
        self.assertEqual(self.assertStored(events[2])["business_key"], "adjustment:ADJ-1")
        self.assertEqual(self.assertStored(events[3])["business_key"], "snapshot:ACME:2026-11-28")

    def test_202_defaults_filled_unknown_fields_kept(self):
        e = ev("dflt-1")
        del e["source"]
        e["x_custom"] = {"keep": [1, "two", None, True]}
        e["data"]["x_note"] = "kept for mappings"
        e["data"]["lines"][0]["x_bin"] = "A-01-03"
        self.assertAccepted(self.post(e), ["dflt-1"])
        got = self.assertStored(e)
        stored = got["event"]
        self.assertEqual(stored.get("schema_version"), 1, stored)
        self.assertEqual([ln.get("uom") for ln in stored["data"]["lines"]], ["EA", "EA"], stored)

    def test_202_source_defaults_to_key_id(self):
        for eid, key, kid in (("src-1", WRITER_KEY, WRITER), ("src-2", ADMIN_KEY, ADMIN)):
            e = ev(eid)
            del e["source"]
            self.assertAccepted(self.post(e, key=key), [eid])
            got = self.assertStored(e)
            self.assertEqual(got["event"].get("source"), kid, got)
            self.assertEqual(got.get("source"), kid, got)
        # a source given is kept whatever the key
        e = ev("src-3", source="erp-gateway")
        self.assertAccepted(self.post(e), ["src-3"])
        self.assertEqual(self.assertStored(e)["event"]["source"], "erp-gateway")

    def test_202_utf8_and_escapes_round_trip(self):
        e = ev("utf8-1")
        e["data"]["customer"] = "Müller & Søn 東京 🚚 \"quoted\" \\ back/slash"
        e["data"]["x_text"] = "tab\there\nnewline\r\x7f \u2028 \U0001f4e6"
        e["data"]["ship_to"] = {"name": "Zoë \u2028 line sep", "city": "Kraków", "country": "PL"}
        self.assertAccepted(self.post_raw(json.dumps(e, ensure_ascii=False).encode()), ["utf8-1"])
        self.assertStored(e)

    def test_202_event_id_charset_and_length(self):
        for eid in ("wms1:000123.a_b-C", "x", "A" * 128):
            e = ev(eid)
            e["data"]["shipment_id"] = e["data"]["order_id"] = "S-" + eid[:10]
            self.assertAccepted(self.post(e), [eid])
            self.assertStored(e)

    def test_202_charset_parameter_and_json_suffix(self):
        e = ev("ctype-1")
        self.assertAccepted(self.post_raw(json.dumps(e), ctype="application/json; charset=utf-8"),
                            ["ctype-1"])

    def test_202_quantity_limits(self):
        # 10^12 is the largest quantity allowed
        e = ev("qty-max")
        e["data"]["lines"][0]["qty"] = 10**12
        self.assertAccepted(self.post(e), ["qty-max"])
        self.assertStored(e)

    def test_202_exactly_max_batch(self):
        batch = [ev(f"maxb-{i:04d}") for i in range(MAX_BATCH)]
        ids = [e["event_id"] for e in batch]
        self.assertAccepted(self.post({"events": batch}), ids)
        for e in batch[:: MAX_BATCH // 10] + [batch[-1]]:
            self.assertStored(e)

    def test_202_chunked_upload(self):
        body = json.dumps({"events": [ev(f"chunk-ok-{i}") for i in range(20)]}).encode()
        parts = [body[i:i + 100] for i in range(0, len(body), 100)]
        st, _, resp = self.hub.raw_request(
            "POST", "/v1/events", chunked=True, parts=parts,
            headers={"Authorization": f"Bearer {WRITER_KEY}", "Content-Type": "application/json"})
        self.assertEqual(st, 202, resp)
        self.assertEqual(len(resp["accepted"]), 20, resp)

    def test_202_json_array_body(self):
        evs = [ev("arr-1"), ev("arr-2")]
        self.assertAccepted(self.post(evs), ["arr-1", "arr-2"])
        self.assertStored(evs[1])
        bad = [ev("arr-3"), ev("arr-4", occurred_at="soon")]
        p = self.assertProblem(self.post(bad), 400)
        self.assertEqual(paths(p), ["[1].occurred_at"])
        self.assertNotStored("arr-3")
        # a conflict names the event the same way as a schema error does
        other = ev("arr-1", occurred_at="2026-11-29T00:00:00Z")
        p = self.assertProblem(self.post([ev("arr-5"), other]), 409)
        self.assertEqual(paths(p), ["[1].event_id"])
        self.assertNotStored("arr-5")

    def test_202_leading_byte_order_mark(self):
        body = b"\xef\xbb\xbf" + json.dumps(ev("bom-1")).encode()
        self.assertAccepted(self.post_raw(body), ["bom-1"])

    def test_413_expect_100_continue_is_answered_at_once(self):
        # a client that waits for 100 Continue gets the 413 instead, and never sends
        resp = self.hub.raw_request("POST", "/v1/events", headers={
            "Authorization": f"Bearer {WRITER_KEY}", "Content-Type": "application/json",
            "Content-Length": str(MAX_BODY + 1), "Expect": "100-continue"})
        self.assertProblem(resp, 413)
        for h, status in (({}, 401), ({"Authorization": f"Bearer {VIEWER_KEY}"}, 403),
                          ({"Authorization": f"Bearer {WRITER_KEY}",
                            "Content-Type": "text/plain"}, 415)):
            with self.subTest(status=status):
                resp = self.hub.raw_request("POST", "/v1/events", headers=dict(h, **{
                    "Content-Length": "100", "Expect": "100-continue"}))
                self.assertProblem(resp, status)

    def test_keep_alive_across_errors(self):
        c = self.hub.conn()
        try:
            self.assertProblem(self.hub.get_event("ka-none", key=VIEWER_KEY, conn=c), 404)
            self.assertProblem(self.hub.request("GET", "/v1/events/ka-1", conn=c), 401)
            self.assertMalformed(self.hub.request("POST", "/v1/events", body="{", key=WRITER_KEY,
                                                  headers={"Content-Type": "application/json"},
                                                  conn=c))
            self.assertAccepted(self.post(ev("ka-1"), conn=c), ["ka-1"])
            st, _, _ = self.hub.get_event("ka-1", key=VIEWER_KEY, conn=c)
            self.assertEqual(st, 200)
        finally:
            c.close()

    # -- 400 malformed JSON --------------------------------------------------------

    def test_400_malformed_json_with_offset(self):
        good = json.dumps(ev("mal-1"))
        q = good.index('"qty": 3') + 7  # where the number starts
        sku = good.index('"SKU-1"')
        # (body, the offsets that name the bad byte: for a number, its start or the
        # byte that makes it bad; for a bad escape, the backslash or the letter)
        cases = [
            ('{"event_id": "mal-1", @}', {22}),
            ('{"event_id": "mal-1",}', {21}),
            ('{"event_id" "mal-1"}', {12}),
            (good[:-1], {len(good) - 1}),  # truncated
            (good + " x", {len(good) + 1}),  # trailing garbage
            (good.replace('"qty": 3', '"qty": 03'), {q, q + 1}),
            (good.replace('"qty": 3', '"qty": 3.'), {q, q + 1, q + 2}),
            (good.replace('"qty": 3', '"qty": +3'), {q}),
            (good.replace('"qty": 3', '"qty": NaN'), {q}),
            (good.replace('"DC1"', "'DC1'"), {good.index('"DC1"')}),
            (good.replace('"SKU-1"', '"SKU\\x-1"'), {sku + 4, sku + 5}),
        ]
        for body, offsets in cases:
            with self.subTest(body=body[:60], offsets=offsets):
                p = self.assertMalformed(self.post_raw(body))
                got = int(p["detail"].split("malformed JSON at byte ")[1].split()[0].rstrip(":;,"))
                self.assertIn(got, offsets, p)
        self.assertNotStored("mal-1")

    def test_400_empty_and_blank_body(self):
        for body in ("", "   \r\n\t "):
            with self.subTest(body=repr(body)):
                self.assertMalformed(self.post_raw(body), offset=0)

    def test_400_not_an_event(self):
        for body in ("42", '"shipment"', "null", "true", '{"events": "x"}', '{"events": []}',
                     "{}", '{"events": [42]}', '[]'):
            with self.subTest(body=body):
                self.assertProblem(self.post_raw(body), 400)

    def test_400_invalid_utf8(self):
        good = json.dumps(ev("utf-bad")).encode()
        for bad in (b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xe2\x82",
                    b"\x80", b"\xf8\x88\x80\x80\x80"):
            with self.subTest(bad=bad):
                body = good.replace(b'"ACME"', b'"AC' + bad + b'ME"')
                self.assertMalformed(self.post_raw(body))
        self.assertNotStored("utf-bad")

    def test_400_bad_string_escapes_and_controls(self):
        good = json.dumps(ev("esc-bad"))
        for bad in ("\\u0000", "\\ud800", "\\udc00x", "\\ud800\\u0041", "\x01", "\x1f"):
            with self.subTest(bad=repr(bad)):
                body = good.replace('"ACME"', '"AC' + bad + 'ME"')
                self.assertProblem(self.post_raw(body), 400)
        self.assertNotStored("esc-bad")

    def test_400_deep_nesting(self):
        e = ev("deep-1")
        deep = "[" * 200 + "]" * 200
        body = json.dumps(e)[:-1] + ', "x_deep": ' + deep + "}"
        self.assertMalformed(self.post_raw(body))
        obj = '{"a":' * 5000 + "1" + "}" * 5000
        self.assertMalformed(self.post_raw(json.dumps(e)[:-1] + ', "x_deep": ' + obj + "}"))
        # unclosed, far beyond any limit
        self.assertMalformed(self.post_raw("[" * 500000))
        self.assertNotStored("deep-1")

    def test_400_huge_numbers(self):
        good = json.dumps(ev("huge-1"))
        for num in ("1e400", "-1e400", "1" * 400, "1e99999999999"):
            with self.subTest(num=num[:20]):
                body = good.replace('"qty": 3', '"qty": ' + num)
                self.assertProblem(self.post_raw(body), 400)
        e = ev("huge-1")
        e["data"]["lines"][0]["qty"] = 10**12 + 1
        p = self.assertProblem(self.post(e), 400)
        self.assertIn("data.lines[0].qty", paths(p))
        e["data"]["lines"][0]["qty"] = 1e13
        p = self.assertProblem(self.post(e), 400)
        self.assertIn("data.lines[0].qty", paths(p))
        self.assertNotStored("huge-1")

    def test_400_over_long_strings(self):
        e = ev("long-1")
        e["data"]["x_note"] = "n" * 70000
        self.assertProblem(self.post(e), 400)
        e = ev("long-1")
        e["data"]["x" * 70000] = 1  # a key is a string too
        self.assertProblem(self.post(e), 400)
        p = self.assertProblem(self.post(ev("L" * 129)), 400)
        self.assertIn("event_id", paths(p))
        self.assertNotStored("long-1")

    # -- 400 schema --------------------------------------------------------------

    def test_400_single_event_schema_paths(self):
        e = ev("sch1-1")
        e["data"]["lines"][1]["qty"] = 0
        e["occurred_at"] = "28/11/2026"
        p = self.assertProblem(self.post(e), 400)
        self.assertIn("data.lines[1].qty", paths(p))
        self.assertIn("occurred_at", paths(p))
        self.assertEqual(len(paths(p)), 2, p)
        self.assertNotStored("sch1-1")

    def test_400_unknown_event_type(self):
        e = ev("unk-type-1", type="shipment.teleported")
        p = self.assertProblem(self.post(e), 400)
        self.assertIn("type", paths(p))
        self.assertNotStored("unk-type-1")
        p = self.assertProblem(self.post(ev("unk-type-2", type=7)), 400)
        self.assertIn("type", paths(p))

    def test_400_bad_envelope_fields(self):
        cases = [
            ("event_id", "has space"), ("event_id", ""), ("event_id", 12),
            ("event_id", "slash/no"), ("occurred_at", "2026-13-01T00:00:00Z"),
            ("occurred_at", "2026-11-28"), ("occurred_at", None), ("source", 5),
            ("schema_version", "one"), ("data", []),
        ]
        for i, (field, value) in enumerate(cases):
            with self.subTest(field=field, value=value):
                e = ev(f"env-{i}")
                e[field] = value
                p = self.assertProblem(self.post(e), 400)
                self.assertIn(field, paths(p))
                self.assertNotStored(f"env-{i}")
        for field in ("event_id", "type", "occurred_at", "data"):
            with self.subTest(missing=field):
                e = ev(f"miss-{field}")
                del e[field]
                p = self.assertProblem(self.post(e), 400)
                self.assertTrue(has_error(p, "", field), p)

    def test_400_batch_lists_every_error(self):
        batch = [ev(f"every-{i}") for i in range(6)]
        batch[1]["data"]["lines"][0]["qty"] = 0
        del batch[1]["data"]["lines"][1]["sku"]
        batch[2]["occurred_at"] = "yesterday"
        batch[3]["event_id"] = "bad id!"
        batch[3]["data"]["lines"][0]["qty"] = -2
        del batch[4]["data"]["customer"]
        batch[4]["data"]["lines"] = [{"sku": "S", "qty": 1}, {"sku": "T", "qty": "two"}]
        p = self.assertProblem(self.post({"events": batch}), 400)
        self.assertIn("events[1].data.lines[0].qty", paths(p))
        self.assertTrue(has_error(p, "events[1].data.lines[1]", "sku"), p)
        self.assertIn("events[2].occurred_at", paths(p))
        self.assertIn("events[3].event_id", paths(p))
        self.assertIn("events[3].data.lines[0].qty", paths(p))
        self.assertTrue(has_error(p, "events[4].data", "customer"), p)
        self.assertIn("events[4].data.lines[1].qty", paths(p))
        self.assertEqual(len(p["errors"]), 7, p)
        for path in paths(p):
            self.assertFalse(path.startswith(("events[0]", "events[5]")), p)
        # atomic: nothing of the batch was stored, the valid events neither
        for i in (0, 1, 2, 4, 5):
            self.assertNotStored(f"every-{i}")

    def test_400_one_bad_event_stores_nothing(self):
        batch = [ev(f"atomic-{i}") for i in range(9)]
        batch.append(ev("atomic-9", occurred_at="not a time"))
        p = self.assertProblem(self.post({"events": batch}), 400)
        self.assertEqual(paths(p), ["events[9].occurred_at"])
        for e in batch:
            self.assertNotStored(e["event_id"])
        # bad first, good after
        batch = [ev("atomic-b0", type="nope")] + [ev(f"atomic-b{i}") for i in range(1, 4)]
        p = self.assertProblem(self.post({"events": batch}), 400)
        self.assertEqual(paths(p), ["events[0].type"])
        for e in batch:
            self.assertNotStored(e["event_id"])

    def test_400_per_type_required_fields(self):
        required = {
            "shipment.voided": ["warehouse", "shipment_id", "reason"],
            "goods.received": ["warehouse", "receipt_id", "customer", "lines"],
            "inventory.adjusted": ["warehouse", "adjustment_id", "customer", "sku", "qty_delta",
                                   "reason_code"],
            "inventory.snapshot": ["warehouse", "customer", "as_of", "items"],
            "delivery.confirmed": ["shipment_id", "delivered_at"],
            "shipment.confirmed": ["warehouse", "shipment_id", "order_id", "customer", "lines"],
        }
        for t, fields in required.items():
            with self.subTest(type=t):
                e = ev("req-" + t, type=t, data={})
                p = self.assertProblem(self.post(e), 400)
                for f in fields:
                    self.assertTrue(has_error(p, "data", f), f"{t}: no error for {f}: {p}")
                self.assertNotStored("req-" + t)
        # and some values that are wrong rather than missing
        wrong = [
            ("inventory.adjusted", {"warehouse": "DC1", "adjustment_id": "A", "customer": "C",
                                    "sku": "S", "qty_delta": 0, "reason_code": "R"},
             "data.qty_delta"),
            ("inventory.snapshot", {"warehouse": "DC1", "customer": "C", "as_of": "2026-02-30",
                                    "items": [{"sku": "S", "qty": 1}]}, "data.as_of"),
            ("shipment.confirmed", {"warehouse": "DC1", "shipment_id": "S", "order_id": "O",
                                    "customer": "C", "lines": [{"sku": "S", "qty": 1}],
                                    "freight": {"amount": 12.5, "currency": "USD"}},
             "data.freight.amount"),
        ]
        for i, (t, data, path) in enumerate(wrong):
            with self.subTest(type=t, path=path):
                p = self.assertProblem(self.post(ev(f"wrong-{i}", type=t, data=data)), 400)
                self.assertIn(path, paths(p))

    # -- 401 / 403 ---------------------------------------------------------------

    def test_401_missing_or_wrong_key(self):
        e = ev("auth-1")
        variants = [
            {},
            {"Authorization": "Bearer not-a-key"},
            {"Authorization": f"Bearer {WRITER_KEY}x"},
            {"Authorization": f"Bearer {WRITER_KEY[:-1]}"},
            {"Authorization": f"Basic {WRITER_KEY}"},
            {"Authorization": "Bearer "},
            {"Authorization": WRITER_KEY},
        ]
        for h in variants:
            with self.subTest(headers=h):
                h = dict(h, **{"Content-Type": "application/json"})
                resp = self.hub.request("POST", "/v1/events", body=json.dumps(e), headers=h)
                self.assertProblem(resp, 401)
                self.assertTrue(resp[1].get("www-authenticate", "").startswith("Bearer"), resp[1])
        resp = self.hub.request("GET", "/v1/events/auth-1")
        self.assertProblem(resp, 401)
        self.assertIn("www-authenticate", resp[1])
        self.assertNotStored("auth-1")

    def test_403_key_lacks_scope(self):
        resp = self.post(ev("scope-1"), key=VIEWER_KEY)
        p = self.assertProblem(resp, 403)
        self.assertNotIn("www-authenticate", resp[1])
        self.assertIn(VIEWER, p.get("detail", ""))
        self.assertNotStored("scope-1")
        self.assertAccepted(self.post(ev("scope-1"), key=WRITER_KEY), ["scope-1"])
        self.assertProblem(self.get("scope-1", key=WRITER_KEY), 403)
        self.assertProblem(self.get("no-such-event", key=WRITER_KEY), 403)
        self.assertStored(ev("scope-1"), key=ADMIN_KEY)

    # -- 404 / 405 ---------------------------------------------------------------

    def test_404_unknown_path_and_event(self):
        for method, path in (("GET", "/v1/nope"), ("GET", "/"), ("POST", "/v1/eventz"),
                             ("GET", "/v1/events/a/b"), ("GET", "/v1/events/"),
                             ("GET", "/v2/events/x"), ("GET", "/healthz/x")):
            with self.subTest(method=method, path=path):
                self.assertProblem(self.hub.request(method, path, key=ADMIN_KEY), 404)
        p = self.assertProblem(self.get("never-posted-1"), 404)
        self.assertIn("never-posted-1", p.get("detail", ""))

    def test_405_wrong_method_with_allow(self):
        for method, path, allow in (("GET", "/v1/events", "POST"), ("PUT", "/v1/events", "POST"),
                                    ("DELETE", "/v1/events/x", "GET"),
                                    ("POST", "/v1/events/x", "GET"), ("POST", "/healthz", "GET"),
                                    ("DELETE", "/readyz", "GET")):
            with self.subTest(method=method, path=path):
                resp = self.hub.request(method, path, key=ADMIN_KEY)
                self.assertProblem(resp, 405)
                got = [m.strip() for m in resp[1].get("allow", "").split(",")]
                self.assertIn(allow, got, resp[1])

    # -- 409 ---------------------------------------------------------------------

    def test_409_same_id_different_body(self):
        first = ev("conf-1")
        self.assertAccepted(self.post(first), ["conf-1"])
        other = ev("conf-1")
        other["data"]["lines"][0]["qty"] = 4
        p = self.assertProblem(self.post(other), 409)
        self.assertEqual(paths(p), ["event_id"])
        self.assertStored(first)  # the first body stays
        # in a batch: nothing of it is stored, not even the new events
        batch = [ev("conf-2"), other, ev("conf-3")]
        p = self.assertProblem(self.post({"events": batch}), 409)
        self.assertEqual(paths(p), ["events[1].event_id"])
        self.assertNotStored("conf-2")
        self.assertNotStored("conf-3")
        # two new events with one id and two bodies in one batch
        a, b = ev("conf-4"), ev("conf-4", occurred_at="2026-11-29T00:00:00Z")
        self.assertProblem(self.post({"events": [ev("conf-5"), a, b]}), 409)
        self.assertNotStored("conf-4")
        self.assertNotStored("conf-5")
        # the same event with its source left out is a different body when the
        # key's id differs from the source it was stored with
        c = copy.deepcopy(first)
        del c["source"]
        self.assertProblem(self.post(c), 409)
        self.assertStored(first)

    # -- 413 ---------------------------------------------------------------------

    def test_413_declared_content_length(self):
        for size in (MAX_BODY + 1, 10 * MAX_BODY, 2**62):
            with self.subTest(size=size):
                resp = self.hub.raw_request("POST", "/v1/events", headers={
                    "Authorization": f"Bearer {WRITER_KEY}", "Content-Type": "application/json",
                    "Content-Length": str(size)})
                self.assertProblem(resp, 413)

    def test_413_chunked_without_content_length(self):
        e = ev("chunk-big-1")
        e["data"]["x_pad"] = ["p" * 60000] * 20  # ~1.2 MB, each string under max_string
        body = json.dumps(e).encode()
        self.assertGreater(len(body), MAX_BODY)
        parts = [body[i:i + 65536] for i in range(0, len(body), 65536)]
        resp = self.hub.raw_request("POST", "/v1/events", chunked=True, parts=parts, headers={
            "Authorization": f"Bearer {WRITER_KEY}", "Content-Type": "application/json"})
        self.assertProblem(resp, 413)
        self.assertNotStored("chunk-big-1")

    def test_413_full_body_over_max_body(self):
        e = ev("big-1")
        e["data"]["x_pad"] = ["p" * 60000] * 20
        try:
            resp = self.post(e)
        except (ConnectionError, http.client.HTTPException):
            return  # answered (and closed) before the body was sent: fine too
        self.assertProblem(resp, 413)
        self.assertNotStored("big-1")

    def test_413_batch_over_max_batch(self):
        batch = [ev(f"overb-{i:04d}") for i in range(MAX_BATCH + 1)]
        self.assertProblem(self.post({"events": batch}), 413)
        self.assertNotStored("overb-0000")
        self.assertNotStored(f"overb-{MAX_BATCH:04d}")

    # -- 415 ---------------------------------------------------------------------

    def test_415_content_type(self):
        body = json.dumps(ev("ctype-bad"))
        for ct in (None, "text/plain", "application/x-www-form-urlencoded", "text/json",
                   "application/jsonx", "multipart/form-data; boundary=x", ""):
            with self.subTest(ct=ct):
                p = self.assertProblem(self.post_raw(body, ctype=ct), 415)
                self.assertIn("Content-Type", p.get("detail", ""))
        self.assertNotStored("ctype-bad")


class SmallLimitsTest(HubTest):
    """server.max_body and server.max_batch taken from the config, with their edges."""

    keys = {WRITER: (WRITER_KEY, ["events:write", "read"])}
    server = {"max_body": 4096, "max_batch": 5}

    def padded(self, eid, size):
        """An event whose JSON is exactly size bytes."""
        e = ev(eid)
        e["data"]["x_pad"] = ""
        n = len(json.dumps(e))
        e["data"]["x_pad"] = "p" * (size - n)
        body = json.dumps(e).encode()
        assert len(body) == size
        return e, body

    def post(self, body, chunked=False):
        h = {"Authorization": f"Bearer {WRITER_KEY}", "Content-Type": "application/json"}
        if chunked:
            return self.hub.raw_request("POST", "/v1/events", headers=h, chunked=True,
                                        parts=[body[i:i + 1000] for i in range(0, len(body), 1000)])
        return self.hub.request("POST", "/v1/events", body=body, headers=h)

    def test_body_at_and_over_max_body(self):
        e, body = self.padded("lim-body-1", 4096)
        st, _, resp = self.post(body)
        self.assertEqual(st, 202, resp)
        self.assertStored(e, key=WRITER_KEY)
        e, body = self.padded("lim-body-2", 4097)
        self.assertProblem(self.post(body), 413)
        self.assertNotStored("lim-body-2", key=WRITER_KEY)

    def test_chunked_at_and_over_max_body(self):
        e, body = self.padded("lim-chunk-1", 4096)
        st, _, resp = self.post(body, chunked=True)
        self.assertEqual(st, 202, resp)
        e, body = self.padded("lim-chunk-2", 4097)
        self.assertProblem(self.post(body, chunked=True), 413)
        self.assertNotStored("lim-chunk-2", key=WRITER_KEY)

    def test_batch_at_and_over_max_batch(self):
        batch = [ev(f"lim-b{i}") for i in range(5)]
        st, _, resp = self.post(json.dumps({"events": batch}).encode())
        self.assertEqual(st, 202, resp)
        self.assertEqual(len(resp["accepted"]), 5)
        batch = [ev(f"lim-c{i}") for i in range(6)]
        self.assertProblem(self.post(json.dumps({"events": batch}).encode()), 413)
        for e in batch:
            self.assertNotStored(e["event_id"], key=WRITER_KEY)


class NoAuthTest(HubTest):
    """Without auth.keys the API takes requests without a key."""

    def test_no_key_needed(self):
        e = ev("noauth-1")
        st, _, body = self.hub.post_events(e)
        self.assertEqual(st, 202, body)
        self.assertStored(e)
        e = ev("noauth-2")
        del e["source"]
        st, _, body = self.hub.post_events(e)
        self.assertEqual(st, 202, body)
        got = self.assertStored(e)
        self.assertTrue(got["event"].get("source"), got)  # some non-empty default


if __name__ == "__main__":
    xdtest.main()
