"""Issue 10 item 9: a client that pipelines many requests and does not read gets its input paused
(the kernel's window then stops it) instead of a response queue that grows per connection; once
it reads, every response arrives complete and in order."""
from __future__ import annotations

import re
import threading
import time

from rgtest import RawConnection, proc_rss_bytes, seq_of, wait_until

REQUESTS = 2000
LIMIT = 200
ID_RE = re.compile(rb'"events":\[\{"id":"([0-9a-f]{8}-\d+)"')


def test_pipelined_history_pulls_are_bounded_and_all_answered_in_order(gateway):
    # Default caps: 32 requests in flight, 4 MiB of queued answers per connection.
    gw = gateway("--send-timeout", "60s", workers=1)
    ids = [gw.publish("pipe", f"{i:05d}:" + "e" * 506) for i in range(LIMIT + 100)]
    worker = gw.workers()[0]
    rss_before = proc_rss_bytes(worker)

    conn = RawConnection(gw.sub_port, timeout=30.0, rcvbuf=64 << 10)
    try:
        after = [ids[i % 100] for i in range(REQUESTS)]
        wire = b"".join(f"GET /v1/slots/pipe/events?after={a}&limit={LIMIT} HTTP/1.1\r\nHost: t\r\n\r\n".encode()
                        for a in after)
        sender = threading.Thread(target=conn.send, args=(wire,), daemon=True)
        sender.start()
        # The client reads nothing for a while: the worker's memory must stay bounded.
        peak = 0
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            peak = max(peak, proc_rss_bytes(worker))
            time.sleep(0.1)
        print(f"worker VmRSS {rss_before / 1e6:.1f} MB before, peak {peak / 1e6:.1f} MB while "
              f"{REQUESTS} pipelined pulls (~{REQUESTS * 0.11:.0f} MB of answers) were not read")
        assert peak - rss_before < 48e6, f"worker RSS grew by {(peak - rss_before) / 1e6:.0f} MB"
        m = gw.metrics()
        queued = m.value("ringgate_response_queue_bytes")
        print(f"response_queue_bytes {queued / 1e6:.2f} MB")
        assert m.value("ringgate_pipeline_paused_total") >= 1
        assert queued <= (4 << 20) + 200_000, f"{queued} response bytes queued on one connection"

        for i in range(REQUESTS):
            r = conn.read_response(30.0)
            assert r.status == 200, (i, r.status, r.body[:200])
            m2 = ID_RE.search(r.body[:200])
            assert m2, (i, r.body[:200])
            assert seq_of(m2.group(1).decode()) == seq_of(after[i]) + 1, f"response {i} out of order"
            assert r.body.endswith(b"}"), i
        sender.join(10)
    finally:
        conn.close()
    wait_until(lambda: gw.metrics().value("ringgate_response_queue_bytes") == 0, 5.0,
               what="the response queue gauge back at 0")
