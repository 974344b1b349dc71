"""A stored record larger than today's --max-event-bytes (issue 10, item 4).

A log written under `--max-event-bytes 1MiB` holds a 900 KiB event; the gateway is restarted on
it with the default limit (64 KiB), whose send buffers (sized for the worst-case encoding of a
64 KiB event, 512 KiB) cannot hold it: before, catch-up waited for room that never came. The log header remembers the largest limit it was opened
with, and workers size their frames and send buffers from it: SSE, WebSocket and history all
deliver the event whole. New publishes are still held to today's limit.
"""
from __future__ import annotations

import asyncio
import json
import uuid

import httpx
import websockets

BIG = 900 * 1024


def test_event_stored_under_a_larger_limit_is_delivered_whole_after_restart(gateway, tmp_path):
    data = tmp_path / "data"
    gw = gateway("--log-capacity", "8MiB", "--max-event-bytes", "1MiB", data_dir=data, name="big-limit")
    before = gw.publish("big", "small one")
    payload = (uuid.uuid4().hex * (BIG // 32 + 1))[:BIG]
    big_id = gw.publish("big", payload)
    after_id = gw.publish("big", "small two")
    assert gw.stop() == 0

    gw2 = gateway("--log-capacity", "8MiB", data_dir=data, name="default-limit")
    r = gw2.post_event("big", payload)
    assert r.status_code == 413, f"today's limit still applies to new events: {r.status_code} {r.text[:200]}"

    with httpx.Client(base_url=gw2.sub_url, timeout=5.0, trust_env=False) as client:
        doc = client.get("/v1/slots/big/events", params={"after": before}).json()
    assert [(e["id"], len(e["data"])) for e in doc["events"]] == [(big_id, BIG), (after_id, 9)]
    assert doc["events"][0]["data"] == payload

    for _ in range(3):   # different connections, so both workers are likely to serve one
        with gw2.stream("big", query=f"after={before}") as s:
            s.first_retry()
            got = s.read_events(2, timeout=5)
        assert [(e.id, e.event) for e in got] == [(big_id, "message"), (after_id, "message")], got
        assert got[0].data == payload and got[1].data == "small two"

    async def ws_scenario():
        url = f"ws://127.0.0.1:{gw2.sub_port}/v1/slots/big/ws?after={before}"
        async with websockets.connect(url, open_timeout=5, max_size=4 << 20) as ws:
            return [json.loads(await asyncio.wait_for(ws.recv(), 5)) for _ in range(2)]
    for _ in range(3):
        msgs = asyncio.run(asyncio.wait_for(ws_scenario(), 20))
        assert [(m["id"], m["data"]) for m in msgs] == [(big_id, payload), (after_id, "small two")]
