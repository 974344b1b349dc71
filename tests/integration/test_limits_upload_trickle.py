"""Review findings 3 and 10 (issue 10 follow-up): a body trickled a byte at a time is not
progress, so it cannot hold its share of --max-pending-body-bytes for ever: it gets 408 after
--body-timeout, counted as disconnects_total{reason="body_timeout"}."""
from __future__ import annotations

import time

from rgtest import RawConnection, check_error, request_bytes, wait_until


def test_a_trickled_body_gets_408_after_the_body_timeout(gateway):
    gw = gateway("--body-timeout", "1s", workers=1)
    conn = RawConnection(gw.pub_port, timeout=5.0)
    started = time.monotonic()
    try:
        conn.send(request_bytes("POST", "/v1/events", {"Content-Length": str(1 << 20),
                                                       "Content-Type": "application/x-ndjson"}))
        # One byte every 200 ms: each arrives well inside the 1 s body timeout, yet the whole
        # megabyte would take 58 hours.
        answer = None
        deadline = started + 6.0
        while answer is None and time.monotonic() < deadline:
            conn.send(b" ")
            try:
                conn.recv_some(time.monotonic() + 0.2)
            except TimeoutError:
                continue
            if b"\r\n\r\n" in conn.buf or conn.eof:
                answer = conn.read_response(2.0)
        assert answer is not None, "no answer within 6 s to a body trickled at 5 bytes/s (body timeout 1 s)"
        doc = check_error(answer.status, answer.body, 408, "request_timeout", "a trickled body")
        assert "body" in doc["detail"], doc
        print(f"408 after {time.monotonic() - started:.1f} s")
    finally:
        conn.close()
    wait_until(lambda: gw.metrics().value("ringgate_disconnects_total", reason="body_timeout") >= 1, 5.0,
               what='disconnects_total{reason="body_timeout"} counted')
    m = gw.metrics()
    assert m.value("ringgate_pending_body_bytes") == 0
    assert m.value("ringgate_disconnects_total", reason="header_timeout") == 0
