"""Max lifetime (jittered), and TCP keepalive on accepted sockets, against the real binary."""
from __future__ import annotations

import asyncio
import json
import subprocess
import time

import websockets

from rgtest import expect_ws_close, wait_until


def test_sse_stream_ends_at_max_lifetime(gateway):
    gw = gateway("--max-lifetime", "2s", "--heartbeat", "30s")
    t0 = time.monotonic()
    with gw.stream("life") as s:
        first = gw.publish("life", "before the end")
        ev = s.next_event(timeout=5)
        assert ev is not None and ev.id == first
        ev = s.next_event(timeout=5)
        ended = time.monotonic() - t0
        assert ev is not None and ev.event == "close", ev
        assert json.loads(ev.data) == {"reason": "max_lifetime"}
        assert s.next_event(timeout=5) is None          # and the connection ends
    print(f"closed {ended:.2f}s after connecting (lifetime 2 s, jittered down by up to 10 %)")
    assert 1.7 <= ended <= 2.8
    wait_until(lambda: gw.metrics().value("ringgate_disconnects_total", reason="max_lifetime") >= 1, 5,
               what="a max_lifetime disconnect")
    wait_until(lambda: gw.metrics().value("ringgate_connections", transport="sse") == 0, 5, what="sse gauge at 0")


def test_websocket_ends_at_max_lifetime_with_1001(gateway):
    gw = gateway("--max-lifetime", "2s", "--heartbeat", "30s")

    async def scenario():
        t0 = time.monotonic()
        async with websockets.connect(f"ws://127.0.0.1:{gw.sub_port}/v1/slots/life/ws") as ws:
            await expect_ws_close(ws, "max_lifetime", 1001)
        return time.monotonic() - t0

    ended = asyncio.run(scenario())
    print(f"WebSocket closed {ended:.2f}s after connecting")
    assert 1.7 <= ended <= 2.8


def test_accepted_sockets_have_tcp_keepalive(gateway):
    gw = gateway("--tcp-keepalive", "7s")
    with gw.stream("ka") as s:
        out = subprocess.run(["ss", "-tno", "state", "established", f"( sport = :{gw.sub_port} )"],
                             capture_output=True, text=True, timeout=10).stdout
        assert f":{s.local_port}" in out, out
        line = next(l for l in out.splitlines() if f":{s.local_port}" in l)
        assert "timer:(keepalive," in line, line
