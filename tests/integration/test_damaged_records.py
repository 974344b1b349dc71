"""A record damaged in place (issue 10, item 1): readers step past it, never spin on it.

The record is damaged WHILE the gateway runs (pwrite into ring.log of a file-backed gateway;
MAP_SHARED pages and the page cache are coherent on Linux), so a start-up recovery scan does not
get to cut it first. It is found by searching the file for its unique payload; fields are
patched relative to the record's start (start = payload offset - slot length - type length - 88,
data length = the u32 at start + 80), never from the file's header layout.

Every client call has a timeout: on a binary that spins on the record the test fails, not hangs.
"""
from __future__ import annotations

import asyncio
import json
import os
import signal
import struct
import time
import uuid

import httpx
import websockets

from rgtest import RawConnection, SSEEvent, request_bytes, wait_until

RECORD_HEADER = 88
DATA_LENGTH_AT = 80
TYPE = "message"          # the default event type: its bytes sit between slot name and data


def publish_twenty(gw, slot: str) -> tuple[list[str], list[str]]:
    token = uuid.uuid4().hex
    datas = [f"dmg-{token}-{i:02d}" for i in range(1, 21)]
    return [gw.publish(slot, d) for d in datas], datas


def damage_data_length(log_path: str, slot: str, payload: str) -> None:
    """Adds 1000 to the data length of the one record whose data is `payload`."""
    with open(log_path, "r+b") as f:
        data = f.read()
        needle = payload.encode()
        at = data.find(needle)
        assert at >= 0 and data.find(needle, at + 1) < 0, f"payload {payload!r} must occur exactly once in {log_path}"
        start = at - len(slot) - len(TYPE) - RECORD_HEADER
        (length,) = struct.unpack_from("<I", data, start + DATA_LENGTH_AT)
        assert length == len(needle), f"data length field at record start + 80 is {length}, not {len(needle)}"
        os.pwrite(f.fileno(), struct.pack("<I", length + 1000), start + DATA_LENGTH_AT)


def cpu_seconds(pid: int) -> float:
    text = open(f"/proc/{pid}/stat").read()
    fields = text[text.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")   # utime + stime


def worker_cpu_share(gw, seconds: float = 2.0) -> dict[int, float]:
    """{worker pid: CPU seconds used per second of wall time} over `seconds`."""
    pids = list(gw.workers().values())
    before = {p: cpu_seconds(p) for p in pids}
    t0 = time.monotonic()
    time.sleep(seconds)
    wall = time.monotonic() - t0
    return {p: (cpu_seconds(p) - before[p]) / wall for p in pids}


def healthz_on_every_worker(gw, attempts: int = 40) -> set[int]:
    """GET /healthz on fresh connections until every worker answered one (each within 3 s)."""
    want = set(gw.workers().values())
    seen: set[int] = set()
    for _ in range(attempts):
        with RawConnection(gw.sub_port, timeout=3.0) as c:
            c.send(request_bytes("GET", "/healthz"))
            r = c.read_response(3.0)
            assert r.status == 200 and r.json() == {"status": "ok"}, (r.status, r.body)
            seen.add(gw.worker_pid_for(c.local_port))
        if seen >= want:
            break
    assert seen >= want, f"/healthz answered by workers {seen}, not by all of {want}"
    return seen


def read_stream(s, n: int, timeout: float = 5.0) -> list[SSEEvent]:
    return s.read_events(n, timeout=timeout)


def assert_damaged_reset(info: dict, gw, ids: list[str]) -> None:
    assert info["reason"] == "damaged", info
    assert info["dropped"] == 1, info
    assert info["oldest"] == ids[0] and info["head"] == ids[-1], info


def test_damaged_record_is_skipped_by_history_sse_and_websocket(gateway, tmp_path):
    data = tmp_path / "data"
    gw = gateway("--log-capacity", "1MiB", data_dir=data, workers=2)
    ids, datas = publish_twenty(gw, "a")
    damage_data_length(gw.data_path, "a", datas[9])
    expected_after = ids[5:9] + ids[10:]

    # History across it, several times (both workers, by SO_REUSEPORT's spread): no hang, the
    # damaged event left out, said with reset:true, every other event whole.
    with httpx.Client(base_url=gw.sub_url, timeout=5.0, trust_env=False) as client:
        for _ in range(6):
            r = client.get("/v1/slots/a/events", params={"after": ids[4]}, headers={"Connection": "close"})
            assert r.status_code == 200, r.text
            doc = r.json()
            assert [e["id"] for e in doc["events"]] == expected_after, doc
            assert [e["data"] for e in doc["events"]] == datas[5:9] + datas[10:]
            assert doc["reset"] is True and doc["next"] == ids[-1], doc
        # A page that holds only the damaged record moves past it.
        r = client.get("/v1/slots/a/events", params={"after": ids[8], "limit": "1"})
        assert r.status_code == 200, r.text
        assert r.json()["events"] == [] and r.json()["next"] == ids[9], r.json()

    # SSE across it: the events before, a reset that says one event was lost, the rest.
    for _ in range(3):
        with gw.stream("a", query=f"after={ids[4]}") as s:
            s.first_retry()
            got = read_stream(s, 4 + 1 + 10)
        assert [e.id for e in got[:4]] == ids[5:9], got[:4]
        assert got[4].event == "reset", got[4]
        assert_damaged_reset(got[4].json(), gw, ids)
        assert [e.id for e in got[5:]] == ids[10:] and [e.data for e in got[5:]] == datas[10:]

    # WebSocket across it: the same, as JSON messages.
    async def ws_scenario():
        url = f"ws://127.0.0.1:{gw.sub_port}/v1/slots/a/ws?after={ids[4]}"
        async with websockets.connect(url, open_timeout=5) as ws:
            return [json.loads(await asyncio.wait_for(ws.recv(), 5)) for _ in range(15)]
    msgs = asyncio.run(asyncio.wait_for(ws_scenario(), 20))
    assert [m["id"] for m in msgs[:4]] == ids[5:9], msgs[:4]
    assert msgs[4]["event"] == "reset", msgs[4]
    assert_damaged_reset(msgs[4], gw, ids)
    assert [m["id"] for m in msgs[5:]] == ids[10:]

    # Every worker still answers, none is spinning, and the damage was counted.
    healthz_on_every_worker(gw)
    shares = worker_cpu_share(gw)
    print(f"worker CPU share over 2 s after the damaged reads: {shares}")
    assert all(v < 0.5 for v in shares.values()), f"a worker is busy with nothing to do: {shares}"
    m = gw.metrics()
    assert m.value("ringgate_log_corrupt_records_total") >= 1
    assert m.value("ringgate_resets_total", reason="damaged") >= 4   # 3 SSE + 1 WebSocket


def test_live_fanout_steps_past_a_damaged_record(gateway, tmp_path):
    """The fan-out cursor (pump) meets the damaged record: live subscribers of its slot get the
    events before it, a reset, and the events after it; a live subscriber of another slot
    loses nothing. The workers are stopped (SIGSTOP) while the events are appended and one is
    damaged, so the fan-out reads the record only after the damage."""
    data = tmp_path / "data"
    gw = gateway("--log-capacity", "1MiB", "--heartbeat", "30s", data_dir=data, workers=2)
    workers = set(gw.workers().values())
    streams, by_worker = [], {}
    try:
        # Live streams of slot "a" on every worker, one of slot "b" anywhere.
        for _ in range(40):
            s = gw.stream("a")
            s.first_retry()
            streams.append(s)
            by_worker.setdefault(gw.worker_pid_for(s.local_port), s)
            if set(by_worker) >= workers:
                break
        assert set(by_worker) >= workers, f"no stream landed on every worker: {by_worker.keys()}"
        other = gw.stream("b")
        other.first_retry()
        streams.append(other)
        time.sleep(0.3)   # every stream has joined its worker's fan-out (no resume id: live)

        for pid in workers:
            os.kill(pid, signal.SIGSTOP)
        try:
            ids, datas = publish_twenty(gw, "a")
            other_id = gw.publish("b", "after the damage")
            damage_data_length(gw.data_path, "a", datas[9])
        finally:
            for pid in workers:
                os.kill(pid, signal.SIGCONT)

        for s in streams[:-1]:
            got = s.read_events(9 + 1 + 10, timeout=10)
            assert [e.id for e in got[:9]] == ids[:9], got[:9]
            assert got[9].event == "reset", got[9]
            assert_damaged_reset(got[9].json(), gw, ids)
            assert [e.id for e in got[10:]] == ids[10:]
        got = other.read_events(1, timeout=10)
        assert [(e.id, e.data) for e in got] == [(other_id, "after the damage")]
        healthz_on_every_worker(gw)
        shares = worker_cpu_share(gw)
        print(f"worker CPU share over 2 s after the fan-out met the damaged record: {shares}")
        assert all(v < 0.5 for v in shares.values()), f"a worker is busy with nothing to do: {shares}"
        assert gw.metrics().value("ringgate_log_corrupt_records_total") >= len(workers)
    finally:
        for s in streams:
            s.close()
