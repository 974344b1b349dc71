"""Scenario 9: /metrics has the documented series and they move as they should."""
from __future__ import annotations

from rgtest import seq_of, wait_until

REQUIRED = ["ringgate_events_appended_total", "ringgate_events_delivered_total", "ringgate_connections",
            "ringgate_log_head_seq", "ringgate_log_capacity_bytes", "ringgate_history_requests_total",
            "ringgate_process_restarts_total"]


def test_metrics_move(gateway):
    gw = gateway("--log-capacity", "1MiB", workers=2)
    m = gw.metrics()
    missing = [n for n in REQUIRED if n not in m.names()]
    assert not missing, f"missing from /metrics: {missing}\n{m.text}"
    assert m.get("ringgate_connections", transport="sse") in (None, 0)
    assert m.value("ringgate_events_appended_total") == 0
    assert m.value("ringgate_log_capacity_bytes") == 1024 * 1024
    assert m.value("ringgate_process_restarts_total") == 0
    delivered0 = m.get("ringgate_events_delivered_total", transport="sse") or 0
    history0 = m.value("ringgate_history_requests_total")

    marker = gw.publish("m", "marker")
    ids = [gw.publish("m", f"m{i}") for i in range(9)]
    wait_until(lambda: gw.metrics().value("ringgate_events_appended_total") == 10, 3,
               what="events_appended_total == 10")
    assert gw.metrics().value("ringgate_log_head_seq") == seq_of(ids[-1])

    streams = [gw.stream("m", last_event_id=marker) for _ in range(3)]
    try:
        for s in streams:
            assert [e.id for e in s.read_events(9, timeout=5)] == ids
        wait_until(lambda: gw.metrics().get("ringgate_connections", transport="sse") == 3, 3,
                   what='connections{transport="sse"} == 3')
        wait_until(lambda: gw.metrics().value("ringgate_events_delivered_total", transport="sse") - delivered0 >= 27,
                   3, what="27 more events delivered over SSE")
        assert gw.metrics().value("ringgate_events_delivered_total", transport="sse") - delivered0 == 27
    finally:
        for s in streams:
            s.close()
    wait_until(lambda: gw.metrics().get("ringgate_connections", transport="sse") == 0, 5,
               what='connections{transport="sse"} back to 0 after the clients closed')

    gw.history("m")
    gw.history("m", after=marker, limit=2)
    wait_until(lambda: gw.metrics().value("ringgate_history_requests_total") - history0 == 2, 3,
               what="history_requests_total +2")
    assert gw.metrics().value("ringgate_events_appended_total") == 10
