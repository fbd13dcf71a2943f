"""The PostgreSQL server goes away under a running hub, and comes back.

A hub on a private cluster (tests/integration/xdpg.py) takes events and
delivers them to the stand-in. The database server is then stopped the hard
way (SIGQUIT: immediate shutdown, crash recovery at the next start). While it
is down the hub keeps answering: POST /v1/events and /readyz say 503 with
Retry-After (nothing is acknowledged that is not committed), reads fail
cleanly, the process stays up. Once the server is back the hub recovers by
itself (new connections), takes events again, and every event acknowledged
before, during or after the outage is delivered.
"""
import os
import signal
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import xdpg  # noqa: E402
import xdtest  # noqa: E402
from xdstandin import StandIn, poll  # noqa: E402
from xdtest import Hub, event  # noqa: E402

HANG_GUARD_S = 120

CONFIG = """
log: {{level: warn}}
targets:
  erp:
    type: http
    url: {erp}
    retry: {{max_attempts: 1000, initial_backoff_ms: 50, max_backoff_ms: 500}}
routes:
  - name: to-erp
    on: [shipment.confirmed]
    steps:
      - deliver: erp
"""


@unittest.skipIf(xdpg.available(), xdpg.available() or "")
class PgOutageTest(unittest.TestCase):
    def test_database_down_then_back(self):
        standin = StandIn().start()
        self.addCleanup(standin.stop)
        c = xdpg.cluster()
        hub = Hub(config_extra=CONFIG.format(erp=standin.url("/erp")),
                  pg_url=c.url(c.new_database("outage")))
        self.addCleanup(hub.cleanup)
        hub.start(timeout=HANG_GUARD_S)

        accepted = []
        for i in range(1, 11):
            st, _, body = hub.post_events(event(i))
            self.assertEqual(st, 202, body)
            accepted.append(f"t-{i:06d}")

        c.stop_server(signal.SIGQUIT)
        try:
            refused = 0
            for i in range(11, 16):
                st, h, body = hub.post_events(event(i))
                self.assertEqual(st, 503, f"database down, yet {st}: {body}")
                self.assertIn("retry-after", h)
                refused += 1
            st, _, _ = hub.request("GET", "/readyz")
            self.assertEqual(st, 503)
            st, _, _ = hub.get_event("t-000001")
            self.assertEqual(st, 503)
            self.assertTrue(hub.alive(), "the hub died with its database:\n" + hub.read_log())
        finally:
            c.start_server()

        # Back: the refused events are sent again and taken.
        def taken(i):
            st, _, _ = hub.post_events(event(i))
            return st == 202
        for i in range(11, 21):
            poll(f"event {i} taken after the database came back", lambda: taken(i),
                 timeout=HANG_GUARD_S, interval=0.2)
            accepted.append(f"t-{i:06d}")
        poll("/readyz 200 again", lambda: hub.request("GET", "/readyz")[0] == 200,
             timeout=HANG_GUARD_S, interval=0.2)

        def delivered():
            return {r["body"]["event_id"] for r in standin.ok("/erp")}
        poll("every accepted event delivered", lambda: set(accepted) <= delivered(),
             timeout=HANG_GUARD_S, interval=0.2)
        self.assertEqual(refused, 5)
        rc = hub.stop()
        log = hub.read_log()
        self.assertFalse(xdtest.sanitizer_report(log), "sanitizer report:\n" + log)
        self.assertEqual(rc, 0, "did not stop cleanly:\n" + log)


if __name__ == "__main__":
    unittest.main(verbosity=2)
