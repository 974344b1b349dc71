"""Scenario 8: SSE framing — the retry frame, multi-line data, event types, heartbeats."""
from __future__ import annotations

import time

from rgtest import SSEComment, SSEEvent, SSERetry


def test_first_frame_is_jittered_retry(gateway):
    gw = gateway(workers=2)
    values = []
    for _ in range(8):
        with gw.stream("j") as s:
            item = s.next_item(5)
            assert isinstance(item, SSERetry), f"first frame must be retry, got {item!r}"
            assert s.raw.startswith(b"retry:"), f"stream starts with {bytes(s.raw[:40])!r}"
            assert 1000 <= item.ms <= 2000, item
            values.append(item.ms)
    assert len(set(values)) > 1, f"retry is not jittered: {values}"


def test_stream_without_cursor_starts_at_next_event(gateway):
    gw = gateway(workers=2)
    for i in range(3):
        gw.publish("n", f"old{i}")
    with gw.stream("n") as s:
        s.first_retry()
        time.sleep(0.3)
        eid = gw.publish("n", "new")
        ev = s.next_event(5)
        assert (ev.id, ev.data) == (eid, "new"), f"a stream without a cursor replayed history: {ev!r}"
        s.assert_quiet(0.2)


def test_multiline_data_and_types(gateway):
    gw = gateway(workers=2)
    marker = gw.publish("ml", "marker")
    with gw.stream("ml", last_event_id=marker) as s:
        s.first_retry()
        a = gw.publish("ml", "line1\nline2\nline3")
        b = gw.publish("ml", "hello", type="greeting")
        c = gw.publish("ml", "x\n")
        e1, e2, e3 = s.read_events(3, timeout=5)
        wire = bytes(s.raw).replace(b"\r\n", b"\n")
    assert (e1.id, e1.event, e1.data, e1.data_lines) == (a, "message", "line1\nline2\nline3", 3)
    assert b"data: line1\ndata: line2\ndata: line3\n" in wire or b"data:line1\ndata:line2\ndata:line3\n" in wire
    assert (e2.id, e2.event, e2.data) == (b, "greeting", "hello")
    assert (e3.id, e3.data, e3.data_lines) == (c, "x\n", 2)


def test_heartbeat_when_idle(gateway):
    gw = gateway("--heartbeat", "1s", workers=2)
    with gw.stream("hb") as s:
        s.first_retry()
        t0 = time.monotonic()
        beats = []
        while len(beats) < 2 and time.monotonic() - t0 < 5:
            try:
                item = s.next_item(max(0.01, 5 - (time.monotonic() - t0)))
            except TimeoutError:
                break
            assert not isinstance(item, SSEEvent), f"idle stream sent an event: {item!r}"
            assert item is not None, "stream closed while idle"
            if isinstance(item, SSEComment):
                assert item.text == "hb", item
                beats.append(time.monotonic() - t0)
        assert len(beats) == 2, f"with --heartbeat 1s, got heartbeats at {beats} in 5 s"
        assert beats[0] <= 2.5 and beats[1] - beats[0] >= 0.5, beats
        # events still flow after heartbeats
        eid = gw.publish("hb", "after beats")
        assert s.next_event(5).id == eid
