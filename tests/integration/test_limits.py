"""Connection-level limits of the listener (docs/api.md, Limits):
server.max_header (431 when a request's headers do not fit) and
server.max_connections_per_ip (a connection over it is closed unanswered,
and the address gets in again once its others close). The body, batch,
depth and string limits are covered in test_api.py and test_abuse.py.
"""
import http.client
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import xdtest  # noqa: E402
from xdstandin import poll  # noqa: E402
from xdtest import HubTest  # noqa: E402


class LimitsTest(HubTest):
    server = {"max_header": "8KiB", "max_connections_per_ip": 2}

    def test_headers_over_max_header_get_431(self):
        st, _, _ = self.hub.request("GET", "/healthz", headers={"X-Big": "a" * 12000})
        self.assertEqual(st, 431)
        st, _, _ = self.hub.request("GET", "/healthz", headers={"X-Big": "a" * 2000})
        self.assertEqual(st, 200)
        self.assertTrue(self.hub.alive())

    def test_connections_over_the_per_address_limit_are_closed(self):
        # Two connections the hub has surely accepted (each answered once,
        # kept alive): a bare connect may still sit in the listen backlog when
        # the third comes, and the third would then be the one let in. One may
        # also be closed unanswered while the hub still counts a connection
        # closed just before (the harness's readiness probe): then it is
        # opened again.
        def answered_connection():
            h = self.hub.conn()
            try:
                h.request("GET", "/healthz")
                h.getresponse().read()
                return h
            except (http.client.HTTPException, OSError):
                h.close()
                return None
        held = []
        for _ in range(2):
            held.append(poll("a connection within the limit", answered_connection, 60))
        try:
            c = self.hub.conn()
            with self.assertRaises((http.client.HTTPException, OSError)):
                c.request("GET", "/healthz")
                c.getresponse().read()
            c.close()
        finally:
            for s in held:
                s.close()

        def served():
            try:
                return self.hub.request("GET", "/healthz")[0] == 200
            except (http.client.HTTPException, OSError):
                return False
        poll("a connection once the others closed", served, 60)


if __name__ == "__main__":
    xdtest.main()
