"""Slow/hostile clients, scenario 5: a CLOSE_WAIT zombie (FIELD-FAILURES #4).

A subscriber half-closes its side (shutdown(SHUT_WR)) right after subscribing. The server must
see the FIN at once through its pending receive, close the stream (reason `peer_closed`) and
free the connection: no server socket left in CLOSE_WAIT, the gauge back to 0.
"""
from __future__ import annotations

import socket
import time

from rgtest import TCP_STATES, disconnects, disconnects_delta, fetch_metrics, tcp_queues, wait_sse_zero


def test_half_closed_subscriber_is_reaped_at_once(gateway):
    gw = gateway("--heartbeat", "15s", workers=2)
    gw.publish("cw", "before")
    before = disconnects(fetch_metrics(gw.sub_port))

    s = gw.stream("cw")
    s.first_retry()
    m = fetch_metrics(gw.sub_port)
    assert m.value("ringgate_connections", transport="sse") == 1, m.text

    t0 = time.monotonic()
    s.conn.sock.shutdown(socket.SHUT_WR)            # FIN from the client; it can still read
    # The server's answer to our FIN is to close its side: we read EOF.
    item = "pending"
    while item is not None:
        left = 2.0 - (time.monotonic() - t0)
        assert left > 0, "server did not close a half-closed subscriber within 2 s"
        try:
            item = s.next_item(left)
        except TimeoutError:
            continue
    t_eof = time.monotonic() - t0

    def server_side():
        q = tcp_queues(gw.sub_port, s.local_port)
        return None if q is None else TCP_STATES.get(q[2], q[2])

    m = wait_sse_zero(gw.sub_port, timeout=1.0)
    t_gauge = time.monotonic() - t0
    state = server_side()
    s.close()
    delta = disconnects_delta(disconnects(m), before)
    print(f"\nhalf-close -> server EOF {t_eof * 1000:.0f} ms; gauge 0 after {t_gauge * 1000:.0f} ms; "
          f"server socket state after: {state}; disconnects delta {delta}")
    assert t_eof <= 1.0, f"server closed the half-closed stream only after {t_eof:.2f}s (expected ~at once)"
    assert state in (None, "TIME_WAIT", "FIN_WAIT1", "FIN_WAIT2", "CLOSE", "LAST_ACK"), \
        f"server side of the connection is {state} (a CLOSE_WAIT zombie)"
    assert delta == {"peer_closed": 1}, f"disconnects by reason changed by {delta}, expected only peer_closed +1"
