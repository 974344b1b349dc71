"""A burst of new subscribers larger than the send-buffer pool (found at 100,000 subscribers by
bench/scale.py): each new stream's response head waits for a pooled buffer instead of the
stream being closed unanswered, so every subscriber gets its 200 and every event."""
from __future__ import annotations

import socket
import time

from rgtest import SSEParser, SSEEvent, wait_until


def test_burst_of_subscribers_past_the_send_buffer_pool_all_get_answered(gateway):
    gw = gateway("--send-buffers", "4", workers=1)
    n = 200
    socks = []
    # Every request is sent before the worker answers any: more new streams at once than it
    # has send buffers (4).
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", gw.sub_port), timeout=10)
        socks.append(s)
    for s in socks:
        s.sendall(b"GET /v1/slots/burst/stream HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n")
    heads = []
    bufs = []
    for s in socks:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(4096)
            assert chunk, f"a subscriber was closed before its answer (after {len(heads)} answered): {data!r}"
            data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        heads.append(head.split(b"\r\n", 1)[0])
        bufs.append(rest)
    assert heads == [b"HTTP/1.1 200 OK"] * n, sorted(set(heads))
    eid = gw.publish("burst", "to-all")
    for i, s in enumerate(socks):
        parser = SSEParser()
        events = [e for e in parser.feed(bufs[i]) if isinstance(e, SSEEvent)]
        deadline = time.monotonic() + 10
        while not events and time.monotonic() < deadline:
            chunk = s.recv(4096)
            assert chunk, f"subscriber {i} closed before the event"
            events += [e for e in parser.feed(chunk) if isinstance(e, SSEEvent)]
        assert [(e.id, e.data) for e in events] == [(eid, "to-all")], (i, events)
    m = gw.metrics()
    assert m.value("ringgate_send_buffer_exhausted_total") > 0, "the pool was never exhausted: the test shows nothing"
    assert m.value("ringgate_disconnects_total", reason="over_capacity") == 0
    wait_until(lambda: gw.metrics().value("ringgate_connections", transport="sse") == n, 5, what="all streams open")
    for s in socks:
        s.close()
