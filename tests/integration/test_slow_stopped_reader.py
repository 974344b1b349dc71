"""Slow/hostile clients, scenario 1: a subscriber that stops reading (FIELD-FAILURES #1, #4).

A raw client with a 4 KiB SO_RCVBUF subscribes and never reads while 2 KB events are published
every 10 ms. Its window shuts within milliseconds; the server must close it within
`--send-timeout` + 2 s of the stall (reason `send_timeout`), while 100 normal readers on the same
slot get every event, in order, exactly once; and server memory (Pss without the ring-log
mapping) must come back to within 5 % of its baseline once the stopped reader is gone.
"""
from __future__ import annotations

import time

import pytest

from rgtest import (RcvbufSSEStream, SizedPublisher, StreamSet, TCP_STATES, describe_mismatch, disconnects,
                    disconnects_delta, fetch_metrics, server_memory, socket_inq, tcp_queues, wait_sse_zero,
                    wait_until)

SEND_TIMEOUT = 3.0
READERS = 100
WARMUP = 600


def mem_kib(gw, samples: int = 3) -> tuple[int, dict]:
    """Median of a few samples of the server's Pss (ring-log mapping excluded)."""
    vals, last = [], {}
    for _ in range(samples):
        last = server_memory(gw)
        vals.append(last["total_kib"])
        time.sleep(0.1)
    return sorted(vals)[len(vals) // 2], last


@pytest.mark.slow
def test_stopped_reader_is_closed_and_others_lose_nothing(gateway):
    gw = gateway("--send-timeout", "3s", "--heartbeat", "15s", workers=2)
    slot = "stop"
    marker = gw.publish(slot, "marker")
    base_disc = disconnects(fetch_metrics(gw.sub_port))

    readers = []
    for _ in range(READERS):
        s = gw.stream(slot, last_event_id=marker)
        readers.append(s)
    rs = StreamSet(readers)
    rs.start()
    stopped = None
    pub = None
    try:
        # warm-up burst (same event size as the load; the ingest's heap settles after ~500
        # publishes), then the memory baseline
        warm = SizedPublisher(gw, slot, size=2048, interval=0.002, limit=WARMUP)
        warm.run()
        assert not warm.errors, warm.errors[:3]
        wait_until(lambda: all(rs.count(i) >= WARMUP for i in range(READERS)), 15,
                   what="every reader got the warm-up burst")
        time.sleep(0.5)
        base_kib, base_detail = mem_kib(gw)

        # the stopped reader: subscribes live, reads the response head, then never reads again
        stopped = RcvbufSSEStream(gw.sub_port, f"/v1/slots/{slot}/stream", rcvbuf=4096)
        assert stopped.status == 200, (stopped.status, getattr(stopped, "body", b""))
        wait_until(lambda: (fetch_metrics(gw.sub_port).get("ringgate_connections", transport="sse") or 0)
                   == READERS + 1, 5, what=f"{READERS + 1} SSE connections")

        pub = SizedPublisher(gw, slot, size=2048, interval=0.01)
        t_pub = time.monotonic()
        pub.start()

        # watch the stopped reader's connection: when does its data stall, when is it closed?
        t_stall_tcp = t_stall_metrics = t_closed = None
        max_pending = max_txq = 0
        samples = []
        deadline = t_pub + SEND_TIMEOUT + 10
        while time.monotonic() < deadline:
            now = time.monotonic()
            q = tcp_queues(gw.sub_port, stopped.local_port)
            m = fetch_metrics(gw.sub_port)
            pending = m.get("ringgate_pending_send_bytes") or 0
            catching = m.get("ringgate_connections_catching_up") or 0
            max_pending = max(max_pending, pending)
            max_txq = max(max_txq, q[0] if q else 0)
            d = disconnects(m)
            samples.append((round(now - t_pub, 2), q and (q[0], TCP_STATES.get(q[2], q[2])), pending, catching))
            if t_stall_tcp is None and q is not None and q[0] > 0:
                t_stall_tcp = now          # server-side bytes waiting, unacknowledged (window shut)
            if t_stall_metrics is None and (pending > 0 or catching > 0):
                t_stall_metrics = now      # the server itself reports data waiting
            gone = d.get("send_timeout", 0) + d.get("half_open", 0) + d.get("slow_consumer", 0) \
                > base_disc.get("send_timeout", 0) + base_disc.get("half_open", 0) + base_disc.get("slow_consumer", 0)
            if gone:
                t_closed = now
                break
            time.sleep(0.05)
        inq = socket_inq(stopped.conn.sock)
        assert t_closed is not None, (
            f"the stopped reader was not closed within {SEND_TIMEOUT + 10:.0f}s of publishing; "
            f"stopped reader's receive queue holds {inq} bytes; samples (t, (server tx_queue, state), "
            f"pending_send_bytes, catching_up): {samples[::max(1, len(samples) // 25)]}")
        stall = min(t for t in (t_stall_tcp, t_stall_metrics) if t is not None) if (t_stall_tcp or t_stall_metrics) else t_pub
        print(f"\nstopped reader (rcvbuf {stopped.rcvbuf()} B, {inq} B unread in its queue): "
              f"stall seen via /proc/net/tcp at +{(t_stall_tcp or float('nan')) - t_pub:.2f}s, "
              f"via metrics at +{(t_stall_metrics or float('nan')) - t_pub:.2f}s after publishing began; "
              f"closed {t_closed - stall:.2f}s after the stall (send-timeout {SEND_TIMEOUT}s); "
              f"max pending_send_bytes {max_pending:.0f}, max server-side tx_queue {max_txq} B")
        assert t_closed - stall <= SEND_TIMEOUT + 2.0, \
            f"closed {t_closed - stall:.2f}s after its data stalled; must be <= send-timeout + 2 s"

        # the stopped reader sees the end of its stream once it drains its queue
        stopped.conn.sock.settimeout(2.0)
        got_eof = False
        t_end = time.monotonic() + 3
        while time.monotonic() < t_end:
            try:
                if not stopped.conn.sock.recv(1 << 16):
                    got_eof = True
                    break
            except (ConnectionResetError, BrokenPipeError):
                got_eof = True
                break
            except TimeoutError:
                break
        assert got_eof, "the stopped reader's socket still delivers no EOF/RST after the server counted it closed"
        stopped.close()

        time.sleep(1.0)                     # publishing goes on after the close
        pub.stop()
        assert not pub.errors, pub.errors[:3]
        expected = warm.ids + pub.snapshot()
        lost = []
        def all_caught_up():
            return all(rs.count(i) >= len(expected) for i in range(READERS))
        try:
            wait_until(all_caught_up, 20, interval=0.1, what="all readers got every event")
        except AssertionError:
            pass
        for i in range(READERS):
            got = rs.ids(i)
            if got != expected:
                lost.append(f"reader {i} (port {readers[i].local_port}): {describe_mismatch(got, expected)}")
            other = [e for _, e in rs.events[i] if e.event != "message"]
            if other:
                lost.append(f"reader {i}: unexpected {other[:2]}")
        assert not lost, f"{len(lost)} readers did not get exactly every event in order:\n" + "\n".join(lost[:5])
        assert all(e is None for e in rs.eof), "a normal reader's stream ended"

        time.sleep(0.5)
        after_kib, after_detail = mem_kib(gw)
        growth = (after_kib - base_kib) / base_kib * 100
        print(f"server memory (Pss without ring log): baseline {base_kib} KiB, after {after_kib} KiB "
              f"({growth:+.1f}%); per process after: "
              f"{ {r: k for r, k in after_detail['per_pid'].values()} } (baseline "
              f"{ {r: k for r, k in base_detail['per_pid'].values()} }); "
              f"{len(expected)} events x {READERS} readers delivered")
        assert after_kib <= base_kib * 1.05, \
            f"server memory {after_kib} KiB is {growth:+.1f}% over its baseline {base_kib} KiB (limit +5%)"
    finally:
        if pub is not None:
            pub.stop()
        if stopped is not None:
            stopped.close()
        rs.close()

    m = wait_sse_zero(gw.sub_port, timeout=5)
    delta = disconnects_delta(disconnects(m), base_disc)
    print(f"disconnects delta: {delta}")
    assert delta == {"send_timeout": 1, "peer_closed": READERS}, \
        f"disconnects by reason changed by {delta}; expected send_timeout +1 (the stopped reader) and " \
        f"peer_closed +{READERS} (the readers closing)"
