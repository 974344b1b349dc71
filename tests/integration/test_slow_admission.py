"""Slow/hostile clients, scenario 7: admission limits (FIELD-FAILURES #1, #3: bound the count).

`--max-connections` is host-wide: with 100 and 2 workers, 100 idle streams are admitted whatever
worker each lands on, the 101st request gets 503 + `Retry-After` + JSON `over_capacity`, and
closing 10 makes room for 10 new ones. `--max-subscribers-per-slot 5`: the 6th stream on a slot is
refused while another slot still works, and a closed stream's place is free again at once.
"""
from __future__ import annotations

import selectors
import socket
import time

import pytest

from rgtest import (SSEStream, check_error, disconnects, disconnects_delta, fetch_metrics, request_bytes,
                    wait_sse_zero)

LIMIT = 100


def try_stream(gw, slot: str) -> SSEStream:
    s = SSEStream(gw.sub_port, f"/v1/slots/{slot}/stream", timeout=5.0)
    if s.status == 200:
        s.first_retry()
    return s


def check_503(s: SSEStream, what: str, codes=("over_capacity",)) -> dict:
    body = getattr(s, "body", b"")
    doc = check_error(s.status, body, 503, codes, what=what)
    ra = s.headers.get("retry-after")
    assert ra is not None and ra.strip().isdigit() and int(ra) >= 1, f"{what}: Retry-After {ra!r} ({s.headers})"
    return doc


def worker_of(gw, s: SSEStream) -> int:
    try:
        return gw.worker_pid_for(s.local_port, timeout=1.0)
    except AssertionError:
        return -1


@pytest.mark.slow
def test_max_connections_is_host_wide(gateway):
    gw = gateway("--max-connections", str(LIMIT), "--heartbeat", "15s", workers=2)
    base_disc = disconnects(fetch_metrics(gw.sub_port))     # a closed connection: holds no place
    streams: list[SSEStream] = []
    refused: list[tuple[int, int, int]] = []      # (attempt, worker pid, status)
    rejections = 0
    try:
        per_worker: dict[int, int] = {}
        attempt = 0
        while len(streams) < LIMIT and attempt < LIMIT + 30:
            attempt += 1
            s = try_stream(gw, f"idle{attempt % 7}")
            if s.status == 200:
                streams.append(s)
                w = worker_of(gw, s)
                per_worker[w] = per_worker.get(w, 0) + 1
            else:
                rejections += 1
                refused.append((attempt, s.status, (getattr(s, "body", b"") or b"")[:60]))
                s.close()
        print(f"\nadmitted {len(streams)} of {attempt} sequential attempts; admitted per worker pid {per_worker}; "
              f"refused before reaching {LIMIT}: {refused[:5]}{'…' if len(refused) > 5 else ''}")
        assert not refused, \
            f"--max-connections {LIMIT} (host-wide) refused stream(s) while fewer than {LIMIT} were open: " \
            f"{len(refused)} refusals (attempt, status, body) {refused[:5]}; admitted per worker {per_worker}"
        assert len(streams) == LIMIT

        over = []
        for k in range(5):                          # the 101st and a few more: all refused
            s = try_stream(gw, "idle-over")
            over.append(s.status)
            if s.status == 200:
                streams.append(s)
            else:
                rejections += 1
                check_503(s, f"request #{LIMIT + 1 + k}")
                s.close()
        assert over == [503] * 5, f"with {LIMIT} streams open, 5 more requests answered {over}"

        for s in streams[:10]:
            s.close()
        del streams[:10]
        again = []
        for k in range(10):                          # room for exactly 10 again
            deadline = time.monotonic() + 2.0
            while True:
                s = try_stream(gw, f"idle{k}")
                if s.status == 200 or time.monotonic() > deadline:
                    break
                rejections += 1
                s.close()
                time.sleep(0.05)
            again.append(s.status)
            if s.status == 200:
                streams.append(s)
        assert again == [200] * 10, f"after closing 10 of {LIMIT} streams, 10 new ones answered {again}"
        s = try_stream(gw, "idle-over")
        status = s.status
        if status == 200:
            streams.append(s)
        else:
            rejections += 1
            check_503(s, f"request #{LIMIT + 1} after re-filling")
            s.close()
        assert status == 503, f"with {LIMIT} streams open again, one more answered {status}"
    finally:
        for s in streams:
            s.close()
    m = wait_sse_zero(gw.sub_port)
    delta = disconnects_delta(disconnects(m), base_disc)
    print(f"disconnects delta: {delta}; 503s seen: {rejections}")
    assert delta.get("over_capacity", 0) == rejections, \
        f"disconnects_total{{reason=\"over_capacity\"}} moved by {delta.get('over_capacity', 0)}, {rejections} refusals seen"


@pytest.mark.slow
def test_max_connections_under_a_concurrent_burst(gateway):
    """120 connections at once across 2 workers: no more than 100 admitted (a race must not overshoot)."""
    gw = gateway("--max-connections", str(LIMIT), "--heartbeat", "15s", workers=2)
    base_disc = disconnects(fetch_metrics(gw.sub_port))
    n = LIMIT + 20
    socks = []
    sel = selectors.DefaultSelector()
    resp: dict[int, bytearray] = {}
    try:
        req = request_bytes("GET", "/v1/slots/burst/stream", {"Accept": "text/event-stream"})
        for i in range(n):
            c = socket.create_connection(("127.0.0.1", gw.sub_port), timeout=5)
            socks.append(c)
        for i, c in enumerate(socks):                # every request in flight before any answer is read
            c.sendall(req)
            c.setblocking(False)
            resp[i] = bytearray()
            sel.register(c, selectors.EVENT_READ, i)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(b"\r\n\r\n" not in r for r in resp.values()):
            for key, _ in sel.select(0.1):
                try:
                    d = key.fileobj.recv(65536)
                except (BlockingIOError, ConnectionResetError):
                    d = b""
                if d:
                    resp[key.data] += d
                else:
                    sel.unregister(key.fileobj)
        statuses = {}
        for i, r in resp.items():
            line = bytes(r).split(b"\r\n", 1)[0]
            st = int(line.split()[1]) if line.startswith(b"HTTP/1.1 ") else None
            statuses[st] = statuses.get(st, 0) + 1
        m = fetch_metrics(gw.sub_port) if statuses.get(200, 0) < LIMIT else None
        print(f"\nconcurrent burst of {n}: statuses {statuses}"
              + (f"; sse connections {m.get('ringgate_connections', transport='sse')}" if m else ""))
        assert statuses.get(200, 0) <= LIMIT, f"{statuses.get(200)} streams admitted with --max-connections {LIMIT}"
        assert statuses.get(200, 0) == LIMIT and statuses.get(503, 0) == n - LIMIT, \
            f"a burst of {n} connections with --max-connections {LIMIT} got {statuses}: expected {LIMIT} x 200 " \
            f"and {n - LIMIT} x 503"
    finally:
        sel.close()
        for c in socks:
            c.close()
    m = wait_sse_zero(gw.sub_port)
    delta = disconnects_delta(disconnects(m), base_disc)
    print(f"disconnects delta: {delta}")
    assert delta.get("over_capacity", 0) == statuses.get(503, 0), delta


def test_max_subscribers_per_slot(gateway):
    gw = gateway("--max-subscribers-per-slot", "5", "--heartbeat", "15s", workers=2)
    base = fetch_metrics(gw.sub_port)
    base_disc = disconnects(base)
    base_limit = base.get("ringgate_slot_subscriber_limit_total") or 0
    streams, refused, per_worker = [], [], {}
    try:
        for k in range(5):
            s = try_stream(gw, "hot")
            if s.status == 200:
                streams.append(s)
                w = worker_of(gw, s)
                per_worker[w] = per_worker.get(w, 0) + 1
            else:
                refused.append((k + 1, s.status, getattr(s, "body", b"")[:80]))
                s.close()
        print(f"\nslot 'hot': admitted {len(streams)} of 5, per worker pid {per_worker}; refused {refused}")
        assert not refused, \
            f"--max-subscribers-per-slot 5 (per host) refused stream(s) among the first 5: {refused}; " \
            f"admitted per worker {per_worker}"
        # the 6th, tried a few times (each may land on either worker): always refused
        extra = []
        for k in range(6):
            sixth = try_stream(gw, "hot")
            extra.append((sixth.status, worker_of(gw, sixth) if sixth.status == 200 else None))
            if sixth.status == 200:
                streams.append(sixth)
            else:
                doc = check_503(sixth, "6th stream on one slot", codes=None)
                sixth.close()
        print(f"6th stream on 'hot', 6 tries: (status, worker pid if admitted) {extra}; 503 body {doc if any(e[0] == 503 for e in extra) else None}")
        admitted_extra = [e for e in extra if e[0] == 200]
        assert not admitted_extra, \
            f"with 5 streams open on slot 'hot' (per worker {per_worker}), {len(admitted_extra)} of 6 more were " \
            f"admitted: {extra} -- --max-subscribers-per-slot 5 must hold per host"
        refusals = len(extra)
        other = try_stream(gw, "cold")
        assert other.status == 200, f"another slot refused too: {other.status} {getattr(other, 'body', b'')!r}"
        streams.append(other)
        streams[0].close()
        streams.pop(0)
        deadline = time.monotonic() + 2
        while True:                                   # the closed stream's place is free again at once
            s = try_stream(gw, "hot")
            if s.status == 200 or time.monotonic() > deadline:
                break
            s.close()
            time.sleep(0.05)
        assert s.status == 200, f"after closing one of 5 streams on 'hot', a new one answered {s.status}"
        streams.append(s)
        m = fetch_metrics(gw.sub_port)
        assert (m.get("ringgate_slot_subscriber_limit_total") or 0) - base_limit == refusals, \
            (m.get("ringgate_slot_subscriber_limit_total"), refusals)
    finally:
        for s in streams:
            s.close()
    m = wait_sse_zero(gw.sub_port)
    delta = disconnects_delta(disconnects(m), base_disc)
    print(f"disconnects delta: {delta}")
    assert delta.get("peer_closed", 0) == len(streams) + 1, delta
