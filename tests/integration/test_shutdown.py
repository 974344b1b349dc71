"""Scenario 10: SIGTERM / SIGINT — every open stream gets `event: close` (reason shutdown), the
supervisor exits 0 within 5 s, and no child process is left behind."""
from __future__ import annotations

import signal
import time

import pytest

from rgtest import SSEEvent, open_streams, pid_alive, wait_until


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_closes_streams_and_exits_zero(gateway, sig):
    gw = gateway(workers=2)
    marker = gw.publish("s", "marker")
    by_worker = open_streams(gw, "s", lambda bw: len(bw) >= 2, max_conns=40, last_event_id=marker)
    streams = [v[-1] for v in by_worker.values()] + [v[0] for v in by_worker.values() if len(v) > 1]
    for v in by_worker.values():
        for s in v:
            if s not in streams:
                s.close()
    eid = gw.publish("s", "before shutdown")
    for s in streams:
        assert s.next_event(5).id == eid
    children = [c.pid for c in gw.children()]
    assert len(children) >= 3, f"expected an ingest and 2 workers, got {gw.children()}"

    t0 = time.monotonic()
    gw.send_signal(sig)
    for s in streams:
        ev = s.next_event(max(0.1, t0 + 5 - time.monotonic()))
        assert isinstance(ev, SSEEvent) and ev.event == "close", f"expected `event: close`, got {ev!r}"
        assert ev.json()["reason"] == "shutdown"
        try:
            end = s.next_item(max(0.1, t0 + 5 - time.monotonic()))
        except TimeoutError:
            end = "still open"
        assert end is None, f"the stream must end after `event: close`, got {end!r}"
        s.close()
    rc = gw.wait(max(0.1, t0 + 5.5 - time.monotonic()))
    elapsed = time.monotonic() - t0
    assert rc is not None, "supervisor still running 5 s after the signal"
    assert rc == 0 and elapsed <= 5.5, f"exit code {rc} after {elapsed:.1f}s"
    wait_until(lambda: not any(pid_alive(p) for p in children), 2, what="every child process to exit")
