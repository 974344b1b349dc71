"""Slow/hostile clients, scenario 3: slow but alive is never reaped (FIELD-FAILURES #5).

A client with a small SO_RCVBUF drains 2 KB once a second while the publisher produces ~10x that,
so data is always waiting for it. It acknowledges little, but its kernel does acknowledge: with
`--send-timeout 3s` it must still be connected after 3 x send-timeout, and what it read must be
the slot's events in order with no gap or duplicate (the default 256 MiB ring does not lap).

The receive buffer matters. Linux advertises a zero window until a full MSS-sized share of the
receive space is free again, so a 4096-byte SO_RCVBUF (8 KiB after doubling, ~6 KB queued)
drained at 2 KB/s acknowledges new bytes only every ~3.7 s -- for the kernel that client *is*
silent for longer than 3 s. With SO_RCVBUF 2048 (4.5 KiB) it acknowledges every ~1 s. The test
records the server socket's `bytes_acked` (TCP_INFO via `ss`) so a failure shows which it was.
"""
from __future__ import annotations

import time

import pytest

from rgtest import (RcvbufSSEStream, SSEEvent, SizedPublisher, TCP_STATES, disconnects, disconnects_delta,
                    fetch_metrics, ss_tcp_info, tcp_queues, wait_sse_zero)

SEND_TIMEOUT = 3.0
DURATION = 3 * SEND_TIMEOUT + 1.0
READ_BYTES = 2048
RCVBUF = 2048


@pytest.mark.slow
def test_slow_draining_client_is_not_reaped(gateway):
    gw = gateway("--send-timeout", "3s", "--heartbeat", "1s", workers=2)
    slot = "trickle"
    marker = gw.publish(slot, "marker")
    base_disc = disconnects(fetch_metrics(gw.sub_port))

    s = RcvbufSSEStream(gw.sub_port, f"/v1/slots/{slot}/stream", rcvbuf=RCVBUF, headers={"Last-Event-ID": marker})
    pub = SizedPublisher(gw, slot, size=1024, interval=0.05)       # ~20 KB/s against 2 KB/s read
    try:
        assert s.status == 200, (s.status, getattr(s, "body", b""))
        pub.start()
        t0 = time.monotonic()
        nread, reads, eof_at = 0, [], None
        items = s.parser.feed(bytes(s.conn.buf))
        s.conn.buf.clear()
        acked: list[tuple[float, int]] = []          # (t, server bytes_acked) at every change
        waiting: list[int] = []                      # server-side unacknowledged bytes, every 0.1 s
        next_read = t0 + 1.0
        s.conn.sock.setblocking(False)
        while time.monotonic() - t0 < DURATION:
            now = time.monotonic()
            info = ss_tcp_info(gw.sub_port, s.local_port)
            if info is None:
                q = tcp_queues(gw.sub_port, s.local_port)
                eof_at = now - t0
                break
            if not acked or info.get("bytes_acked") != acked[-1][1]:
                acked.append((round(now - t0, 2), info.get("bytes_acked", 0)))
            q = tcp_queues(gw.sub_port, s.local_port)
            waiting.append(q[0] if q else -1)
            if now >= next_read:
                next_read += 1.0
                try:
                    data = s.conn.sock.recv(READ_BYTES)
                except BlockingIOError:
                    data = None
                except ConnectionResetError:
                    data = b""
                if data == b"":
                    eof_at = now - t0
                    break
                if data:
                    nread += len(data)
                    reads.append(len(data))
                    items += s.parser.feed(data)
            time.sleep(0.1)
        elapsed = time.monotonic() - t0
        m = fetch_metrics(gw.sub_port)
        conns = m.get("ringgate_connections", transport="sse")
        q = tcp_queues(gw.sub_port, s.local_port)
        state = TCP_STATES.get(q[2], q[2]) if q else None
        events = [i for i in items if isinstance(i, SSEEvent)]
        msgs = [e.id for e in events if e.event == "message"]
        others = [(e.event, e.data) for e in events if e.event != "message"]
        published = pub.snapshot()
        times = [t for t, _ in acked] + [round(elapsed if eof_at is None else eof_at, 2)]
        max_gap = max(b - a for a, b in zip(times, times[1:])) if len(times) > 1 else float("nan")
        delta = disconnects_delta(disconnects(m), base_disc)
        print(f"\nslow reader (SO_RCVBUF {s.rcvbuf()}): {elapsed:.1f}s, read {nread} B in {len(reads)} reads, "
              f"{len(msgs)} events (of {len(published)} published); longest time with no new bytes acked by "
              f"the client's kernel: {max_gap:.2f}s; bytes_acked changes (t, bytes): {acked}; "
              f"server socket {state}; sse connections {conns}; disconnects delta {delta}")
        assert eof_at is None and state == "ESTABLISHED" and conns == 1, \
            f"the slow-but-draining client was closed after {eof_at}s (send-timeout {SEND_TIMEOUT}s) although " \
            f"its kernel acknowledged new bytes at most {max_gap:.2f}s apart; disconnects delta {delta}; " \
            f"last frames {others[-2:]}"
        assert sum(1 for w in waiting if w > 0) >= len(waiting) - 12, \
            f"data was not waiting for the client most of the time (test setup): {waiting}"
        assert not others, f"unexpected non-message events: {others[:3]}"
        assert len(msgs) >= 5, f"only {len(msgs)} events read in {elapsed:.0f}s"
        seqs = [int(i.rsplit("-", 1)[1]) for i in msgs]
        assert seqs == sorted(set(seqs)), f"ids not strictly ascending: {msgs[:20]}"
        assert msgs == published[:len(msgs)], "what the slow client read is not the slot's events in order"
        assert not delta, f"disconnects moved while only the slow client was connected: {delta}"
    finally:
        pub.stop()
        s.close()
    m = wait_sse_zero(gw.sub_port)
    delta = disconnects_delta(disconnects(m), base_disc)
    print(f"disconnects delta after closing: {delta}")
    assert delta == {"peer_closed": 1}, delta
