"""The graceful stop a load balancer needs (issue 13, item 5): on SIGTERM `/readyz` turns 503 at
once while everything goes on serving for --drain-delay; then every stream ends with
`event: close` and a `retry:` drawn from 0..--drain-spread, so the reconnects spread out.
SIGINT, or a second SIGTERM, stops at once."""
from __future__ import annotations

import json
import signal
import time

import httpx
from websockets.sync.client import connect as ws_connect

from rgtest import SSEEvent, SSERetry, wait_until


def readyz(gw) -> tuple[int, dict]:
    r = httpx.get(f"{gw.sub_url}/readyz", timeout=2.0, trust_env=False)
    return r.status_code, r.json()


def until_close(stream, timeout: float) -> tuple[int | None, SSEEvent | None]:
    """Reads to the stream's `event: close`: (the retry that came with it, the close event)."""
    deadline = time.monotonic() + timeout
    retry = None
    while time.monotonic() < deadline:
        try:
            item = stream.next_item(max(0.05, deadline - time.monotonic()))
        except TimeoutError:
            continue
        if item is None:
            return retry, None
        if isinstance(item, SSERetry):
            retry = item.ms
        elif isinstance(item, SSEEvent) and item.event == "close":
            return retry, item
    raise AssertionError(f"no `event: close` within {timeout}s")


def test_sigterm_drains_readyz_first_then_closes_streams_with_spread_retries(gateway):
    delay, spread = 2.5, 3.0
    gw = gateway("--drain-delay", "2500ms", "--drain-spread", "3s", workers=2)
    first = gw.publish("d", "before")
    streams = [gw.stream("d", last_event_id=first) for _ in range(40)]
    for s in streams:
        s.first_retry()
    ws = ws_connect(f"ws://127.0.0.1:{gw.sub_port}/v1/slots/d/ws?after={first}", open_timeout=5)
    try:
        assert readyz(gw)[0] == 200

        t0 = time.monotonic()
        gw.send_signal(signal.SIGTERM)
        wait_until(lambda: readyz(gw)[0] == 503, 1.0, interval=0.02, what="/readyz to answer 503 after SIGTERM")
        turned = time.monotonic() - t0
        status, body = readyz(gw)
        assert status == 503 and body.get("error") == "draining", f"/readyz while draining: {status} {body}"
        assert httpx.get(f"{gw.sub_url}/healthz", timeout=2.0, trust_env=False).status_code == 200, \
            "/healthz (liveness) must stay 200 while draining, or an orchestrator kills the host mid-drain"
        assert "ringgate_draining 1" in httpx.get(f"{gw.sub_url}/metrics", timeout=2.0, trust_env=False).text

        # still serving: a publish reaches the open streams and a new stream
        during = gw.publish("d", "during the drain")
        late = gw.stream("d", last_event_id=first)
        assert late.next_event(5).id == during, "a stream opened during the drain must be served"
        for s in streams:
            assert s.next_event(5).id == during
        assert json.loads(ws.recv(timeout=5))["id"] == during
        assert time.monotonic() - t0 < delay, "the checks above took longer than the drain delay: raise it"

        retries = []
        for s in streams + [late]:
            retry, close = until_close(s, delay + 5)
            assert close is not None, "the stream ended without `event: close`"
            data = close.json()
            assert data["reason"] == "shutdown" and data.get("retry_ms") == retry, \
                f"the close must carry its retry in `retry:` and in the data: retry {retry}, data {data}"
            retries.append(retry)
        closed_after = time.monotonic() - t0
        notice = json.loads(ws.recv(timeout=5))
        assert notice["event"] == "close" and notice["reason"] == "shutdown" and 0 <= notice["retry_ms"] <= spread * 1000, notice
        assert closed_after >= delay - 0.1, f"streams closed {closed_after:.2f}s after SIGTERM, before the {delay}s drain delay"
        assert all(0 <= r <= spread * 1000 for r in retries), f"retries outside 0..{spread * 1000:.0f} ms: {retries}"
        # jittered: 41 draws from 0..3000 ms spread over most of the range (a fixed value fails)
        assert len(set(retries)) >= 20 and max(retries) - min(retries) >= 1500, f"retries are not spread: {sorted(retries)}"

        rc = gw.wait(delay + 6 - (time.monotonic() - t0))
        assert rc == 0, f"the supervisor exit code after the drain: {rc}"
        print(f"readyz 503 after {turned * 1000:.0f} ms; streams closed {closed_after:.2f}s after SIGTERM; "
              f"retries {min(retries)}..{max(retries)} ms, {len(set(retries))} distinct of {len(retries)}")
    finally:
        ws.close()
        for s in streams:
            s.close()


def test_sigint_or_a_second_sigterm_stops_without_waiting_for_the_delay(gateway):
    for second in (signal.SIGINT, signal.SIGTERM):
        gw = gateway("--drain-delay", "60s", workers=1)
        s = gw.stream("q")
        s.first_retry()
        gw.send_signal(signal.SIGTERM)
        wait_until(lambda: readyz(gw)[0] == 503, 1.0, interval=0.02, what="/readyz to answer 503 after SIGTERM")
        t0 = time.monotonic()
        gw.send_signal(second)
        _, close = until_close(s, 6)
        assert close is not None and close.json()["reason"] == "shutdown"
        rc = gw.wait(6)
        assert rc == 0, f"after SIGTERM then {second.name}: still running or exit {rc} ({time.monotonic() - t0:.1f}s)"
        s.close()


def test_sigint_alone_skips_the_drain(gateway):
    gw = gateway("--drain-delay", "60s", workers=1)
    t0 = time.monotonic()
    gw.send_signal(signal.SIGINT)
    assert gw.wait(6) == 0, "SIGINT (Ctrl-C) must stop at once, without the drain delay"
    assert time.monotonic() - t0 < 6
