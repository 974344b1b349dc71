"""Issue 15: one event to many idle streams leaves from one copy per worker (`--shared-frames`),
not from a pooled send buffer per stream. With a send-buffer pool far smaller than the number of
streams, a broadcast to idle streams never finds the pool empty, and every stream gets every
event in order; with the shared frames turned off the same broadcast runs the pool dry."""
from __future__ import annotations

import time

import pytest

from rgtest import SSEStream, wait_until

STREAMS = 300
EVENTS = 3


def open_streams(gw, n: int) -> list[SSEStream]:
    streams = [gw.stream("wide") for _ in range(n)]
    for s in streams:
        s.first_retry()
    return streams


def broadcast(gw, streams: list[SSEStream]) -> list[str]:
    ids = []
    for i in range(EVENTS):
        # Idle between events: every stream has sent the last one, so each event finds all
        # of them with nothing pending.
        wait_until(lambda: gw.metrics().value("ringgate_pending_send_bytes") == 0, 5, what="every stream drained")
        ids.append(gw.publish("wide", f"e{i}"))
        time.sleep(0.2)
    for k, s in enumerate(streams):
        got = s.read_events(EVENTS, timeout=10)
        assert [(e.id, e.data) for e in got] == [(x, f"e{i}") for i, x in enumerate(ids)], (k, got)
    return ids


@pytest.mark.timeout(60)
def test_a_broadcast_to_idle_streams_takes_no_send_buffer_per_stream(gateway):
    gw = gateway("--send-buffers", "8", workers=1)
    streams = open_streams(gw, STREAMS)
    try:
        exhausted0 = gw.metrics().value("ringgate_send_buffer_exhausted_total")
        broadcast(gw, streams)
        m = gw.metrics()
        assert m.value("ringgate_send_buffer_exhausted_total") == exhausted0, \
            f"{STREAMS} idle streams and 8 send buffers: the broadcast took buffers per stream"
        assert m.value("ringgate_shared_frames_exhausted_total") == 0
        assert m.value("ringgate_disconnects_total", reason="slow_consumer") == 0
        wait_until(lambda: gw.metrics().value("ringgate_shared_frames_in_use") == 0, 5,
                   what="every shared frame given back once its sends completed")
        assert gw.metrics().value("ringgate_events_delivered_total", transport="sse") >= STREAMS * EVENTS
    finally:
        for s in streams:
            s.close()


@pytest.mark.timeout(60)
def test_without_shared_frames_the_same_broadcast_runs_the_pool_dry_and_still_delivers(gateway):
    gw = gateway("--send-buffers", "8", "--shared-frames", "0", workers=1)
    streams = open_streams(gw, STREAMS)
    try:
        exhausted0 = gw.metrics().value("ringgate_send_buffer_exhausted_total")
        broadcast(gw, streams)
        assert gw.metrics().value("ringgate_send_buffer_exhausted_total") > exhausted0, \
            "the pool was never exhausted without shared frames: the test above shows nothing"
        assert gw.metrics().value("ringgate_shared_frames_in_use") == 0
    finally:
        for s in streams:
            s.close()
