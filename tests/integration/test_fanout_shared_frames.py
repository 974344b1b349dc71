"""Issue 15: one event to many idle streams leaves from one copy per worker (`--shared-frames`),
not from a pooled send buffer per stream. With a send-buffer pool far smaller than the number of
streams, a broadcast to idle streams never finds the pool empty, and every stream gets every
event in order; with the shared frames turned off the same broadcast runs the pool dry."""
from __future__ import annotations

import socket
import time

import pytest

from rgtest import SSEParser, SSEEvent, wait_until

STREAMS = 300
EVENTS = 3


def open_streams(gw, n: int) -> tuple[list[socket.socket], list[SSEParser], list[list[SSEEvent]]]:
    socks, parsers, got = [], [], []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", gw.sub_port), timeout=10)
        s.sendall(b"GET /v1/slots/wide/stream HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n")
        socks.append(s)
    for s in socks:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(4096)
            assert chunk, f"a stream was closed before its answer: {data!r}"
            data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), head
        p = SSEParser()
        parsers.append(p)
        got.append([e for e in p.feed(rest) if isinstance(e, SSEEvent)])
    return socks, parsers, got


def broadcast(gw, socks, parsers, got) -> list[str]:
    ids = []
    for i in range(EVENTS):
        # Idle between events: every stream has sent the last one, so each event finds all
        # of them with nothing pending.
        wait_until(lambda: gw.metrics().value("ringgate_pending_send_bytes") == 0, 5, what="every stream drained")
        ids.append(gw.publish("wide", f"e{i}"))
        time.sleep(0.2)
    for k, s in enumerate(socks):
        deadline = time.monotonic() + 10
        while len(got[k]) < EVENTS and time.monotonic() < deadline:
            chunk = s.recv(65536)
            assert chunk, f"stream {k} closed after {len(got[k])} events"
            got[k] += [e for e in parsers[k].feed(chunk) if isinstance(e, SSEEvent)]
        assert [(e.id, e.data) for e in got[k]] == [(x, f"e{i}") for i, x in enumerate(ids)], (k, got[k])
    return ids


@pytest.mark.timeout(60)
def test_a_broadcast_to_idle_streams_takes_no_send_buffer_per_stream(gateway):
    gw = gateway("--send-buffers", "8", workers=1)
    socks, parsers, got = open_streams(gw, STREAMS)
    try:
        exhausted0 = gw.metrics().value("ringgate_send_buffer_exhausted_total")
        broadcast(gw, socks, parsers, got)
        m = gw.metrics()
        assert m.value("ringgate_send_buffer_exhausted_total") == exhausted0, \
            f"{STREAMS} idle streams and 8 send buffers: the broadcast took buffers per stream"
        assert m.value("ringgate_shared_frames_exhausted_total") == 0
        assert m.value("ringgate_disconnects_total", reason="slow_consumer") == 0
        wait_until(lambda: gw.metrics().value("ringgate_shared_frames_in_use") == 0, 5,
                   what="every shared frame given back once its sends completed")
        assert gw.metrics().value("ringgate_events_delivered_total", transport="sse") >= STREAMS * EVENTS
    finally:
        for s in socks:
            s.close()


@pytest.mark.timeout(60)
def test_without_shared_frames_the_same_broadcast_runs_the_pool_dry_and_still_delivers(gateway):
    gw = gateway("--send-buffers", "8", "--shared-frames", "0", workers=1)
    socks, parsers, got = open_streams(gw, STREAMS)
    try:
        exhausted0 = gw.metrics().value("ringgate_send_buffer_exhausted_total")
        broadcast(gw, socks, parsers, got)
        assert gw.metrics().value("ringgate_send_buffer_exhausted_total") > exhausted0, \
            "the pool was never exhausted without shared frames: the test above shows nothing"
        assert gw.metrics().value("ringgate_shared_frames_in_use") == 0
    finally:
        for s in socks:
            s.close()
