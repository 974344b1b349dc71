"""Slow/hostile clients, scenario 6: slowloris (FIELD-FAILURES #1: bound what a client may hold).

200 connections each send one byte of a request head per second. With `--header-timeout 3s`
every one must get `408` with a JSON error body and be closed at about 3 s after it connected
(the trickle must not extend the deadline), counted as `header_timeout`. Meanwhile a normal SSE
subscriber keeps receiving every event; its publish->receive latency before and during the
attack is printed (not asserted).
"""
from __future__ import annotations

import json
import selectors
import socket
import threading
import time

import pytest

from rgtest import (SSEEvent, SizedPublisher, check_error, describe_mismatch, disconnects, disconnects_delta,
                    event_sent_ns, fetch_metrics, percentile, wait_sse_zero)

HEADER_TIMEOUT = 3.0
N = 200


class SSEReader(threading.Thread):
    def __init__(self, stream):
        super().__init__(daemon=True)
        self.s, self.events, self.halt = stream, [], threading.Event()

    def run(self):
        while not self.halt.is_set():
            try:
                ev = self.s.next_event(0.2)
            except TimeoutError:
                continue
            if ev is None:
                return
            self.events.append((time.monotonic_ns(), ev))


def latencies_ms(events, ids: set[str]) -> list[float]:
    return [(t - event_sent_ns(e.data)) / 1e6 for t, e in events if e.id in ids]


@pytest.mark.slow
def test_slowloris_is_cut_off_at_the_header_timeout(gateway):
    gw = gateway("--header-timeout", "3s", "--heartbeat", "15s", workers=2)
    slot = "lor"
    marker = gw.publish(slot, "marker")
    base_disc = disconnects(fetch_metrics(gw.sub_port))
    s = gw.stream(slot, last_event_id=marker)
    s.first_retry()
    reader = SSEReader(s)
    reader.start()
    pub = SizedPublisher(gw, slot, size=200, interval=0.05)
    pub.start()
    socks: list[socket.socket] = []
    try:
        time.sleep(2.0)
        before_ids = set(pub.snapshot())

        head = f"GET /v1/slots/{slot}/stream HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n".encode()
        t_conn, t_eof, resp = {}, {}, {}
        sel = selectors.DefaultSelector()
        attack_start = time.monotonic()
        for i in range(N):
            c = socket.create_connection(("127.0.0.1", gw.sub_port), timeout=5)
            c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            c.setblocking(False)
            t_conn[i] = time.monotonic()
            c.send(head[:1])
            socks.append(c)
            resp[i] = bytearray()
            sel.register(c, selectors.EVENT_READ, i)
        sent = {i: 1 for i in range(N)}
        next_byte = attack_start + 1.0
        deadline = attack_start + HEADER_TIMEOUT + 8
        while len(t_eof) < N and time.monotonic() < deadline:
            for key, _ in sel.select(0.05):
                i = key.data
                try:
                    data = key.fileobj.recv(65536)
                except BlockingIOError:
                    continue
                except ConnectionResetError:
                    data = b""
                if data:
                    resp[i] += data
                else:
                    t_eof[i] = time.monotonic()
                    sel.unregister(key.fileobj)
            if time.monotonic() >= next_byte:
                next_byte += 1.0
                for i, c in enumerate(socks):
                    if i in t_eof or sent[i] >= len(head) - 1:
                        continue
                    try:
                        c.send(head[sent[i]:sent[i] + 1])
                        sent[i] += 1
                    except (BlockingIOError, BrokenPipeError, ConnectionResetError):
                        pass
        attack_end = time.monotonic()
        time.sleep(1.0)
        pub.stop()
        published = pub.snapshot()
        during_ids = {i for i in published if i not in before_ids}

        # every slowloris connection: 408 + JSON error, then closed, at about the header timeout
        bad = []
        closes = []
        for i in range(N):
            if i not in t_eof:
                bad.append(f"conn {i}: still open after {attack_end - t_conn[i]:.1f}s, got {bytes(resp[i][:80])!r}")
                continue
            closes.append(t_eof[i] - t_conn[i])
            raw = bytes(resp[i])
            hdr, _, body = raw.partition(b"\r\n\r\n")
            status_line = hdr.split(b"\r\n", 1)[0].decode("latin-1", "replace")
            try:
                status = int(status_line.split()[1])
                check_error(status, body, 408, "request_timeout", what=f"slowloris conn {i}")
            except (IndexError, ValueError, AssertionError) as e:
                bad.append(f"conn {i}: {e} (response {raw[:200]!r})")
        if closes:
            print(f"\nslowloris: {len(closes)}/{N} closed; time from connect to close: min {min(closes):.2f}s, "
                  f"p50 {percentile(closes, 50):.2f}s, max {max(closes):.2f}s (header-timeout {HEADER_TIMEOUT}s); "
                  f"bytes sent per connection: {min(sent.values())}-{max(sent.values())}")
        lat_before = latencies_ms(reader.events, before_ids)
        lat_during = latencies_ms(reader.events, during_ids)
        if lat_before and lat_during:
            print(f"SSE publish->receive latency: before attack p50 {percentile(lat_before, 50):.1f} ms, "
                  f"max {max(lat_before):.1f} ms ({len(lat_before)} events); during attack p50 "
                  f"{percentile(lat_during, 50):.1f} ms, max {max(lat_during):.1f} ms ({len(lat_during)} events)")
        assert not bad, f"{len(bad)} of {N} slowloris connections misbehaved:\n" + "\n".join(bad[:8])
        early = [round(c, 2) for c in closes if c < HEADER_TIMEOUT - 0.05]
        late = [round(c, 2) for c in closes if c > HEADER_TIMEOUT + 1.5]
        assert not early and not late, \
            f"closes outside [{HEADER_TIMEOUT}s, {HEADER_TIMEOUT + 1.5}s] after connect: early {early[:5]} late {late[:5]}"

        # the normal subscriber got everything, in order
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and len([1 for _, e in reader.events if e.event == "message"]) < len(published):
            time.sleep(0.05)
        got = [e.id for _, e in reader.events]
        assert got == published, "normal subscriber during slowloris: " + describe_mismatch(got, published)
        assert not pub.errors, pub.errors[:3]
    finally:
        pub.stop()
        for c in socks:
            c.close()
        reader.halt.set()
        reader.join(5)
        s.close()
    m = wait_sse_zero(gw.sub_port)
    delta = disconnects_delta(disconnects(m), base_disc)
    print(f"disconnects delta: {delta}")
    assert delta.get("header_timeout") == N, f"header_timeout counted {delta.get('header_timeout')} of {N}: {delta}"
    assert delta == {"header_timeout": N, "peer_closed": 1}, delta
