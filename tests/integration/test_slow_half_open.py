"""Slow/hostile clients, scenario 4: a half-open peer (FIELD-FAILURES #5).

The subscriber runs inside a network namespace of the test's own, joined to the host by a veth
pair on a private /30 (10.213.7.1 host side, 10.213.7.2 inside; nothing else is ever addressed).
Once it is reading, its link is taken down inside the namespace -- nothing it sends can leave
any more, and nothing reaches it -- and then it is killed with SIGKILL: its FIN/RST are lost, the
server's socket stays ESTABLISHED with heartbeats and events unacknowledged. The server must
reap it within `--send-timeout` + 5 s, counted as `half_open` (or `send_timeout`).
"""
from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

from rgtest import (LineReader, SizedPublisher, TCP_STATES, disconnects, disconnects_delta, fetch_metrics,
                    tcp_queues, wait_sse_zero)

SEND_TIMEOUT = 3.0

CLIENT = r"""
import socket, sys
host, port, slot = sys.argv[1], int(sys.argv[2]), sys.argv[3]
s = socket.create_connection((host, port), timeout=30)
s.sendall(f"GET /v1/slots/{slot}/stream HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\n\r\n".encode())
buf = b""
while b"\r\n\r\n" not in buf:
    d = s.recv(65536)
    if not d:
        print("EOF", flush=True); sys.exit(1)
    buf += d
print("HEAD", buf.split(b"\r\n", 1)[0].decode(), "LOCALPORT", s.getsockname()[1], flush=True)
buf = buf.split(b"\r\n\r\n", 1)[1]
while True:
    while b"\n\n" in buf:
        frame, buf = buf.split(b"\n\n", 1)
        for line in frame.split(b"\n"):
            if line.startswith(b"id: "):
                print("ID", line[4:].decode(), flush=True)
            elif line.startswith(b": "):
                print("COMMENT", line[2:].decode(), flush=True)
    d = s.recv(65536)
    if not d:
        print("EOF", flush=True); sys.exit(0)
    buf += d
"""


@pytest.mark.slow
def test_half_open_peer_is_reaped(gateway, netns_peer):
    peer = netns_peer
    gw = gateway("--listen", "0.0.0.0:0", "--heartbeat", "1s", "--send-timeout", "3s", workers=2)
    slot = "ho"
    base_disc = disconnects(fetch_metrics(gw.sub_port))

    client = peer.popen([sys.executable, "-c", CLIENT, peer.host_ip, str(gw.sub_port), slot],
                        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                        stderr=subprocess.STDOUT)
    pub = SizedPublisher(gw, slot, size=512, interval=0.1)
    try:
        out = LineReader(client.stdout)
        head = out.readline(10)
        assert head and head.startswith("HEAD HTTP/1.1 200"), f"client in the namespace got {head!r}"
        cport = int(head.split("LOCALPORT")[1])
        pub.start()
        seen = 0
        deadline = time.monotonic() + 5
        while seen < 3:
            line = out.readline(max(0.1, deadline - time.monotonic()))
            assert line is not None, f"client ended: {out.lines}"
            seen += line.startswith("ID ")
        q = tcp_queues(gw.sub_port, cport)
        assert q is not None and TCP_STATES[q[2]] == "ESTABLISHED", q

        # make its packets vanish (no FIN, no RST can leave), then kill it
        peer.in_ns("ip", "link", "set", peer.ns_if, "down")
        t_drop = time.monotonic()
        route = peer.route_to_ns_dev()
        assert f"dev {peer.host_if}" in route, f"host route to {peer.ns_ip} left the veth: {route!r}"
        client.send_signal(signal.SIGKILL)
        client.wait(5)

        t_reaped = None
        samples = []
        while time.monotonic() - t_drop < SEND_TIMEOUT + 10:
            m = fetch_metrics(gw.sub_port)
            d = disconnects_delta(disconnects(m), base_disc)
            q = tcp_queues(gw.sub_port, cport)
            samples.append((round(time.monotonic() - t_drop, 1), q and (q[0], TCP_STATES.get(q[2], q[2])),
                            m.get("ringgate_connections", transport="sse")))
            if d and (m.get("ringgate_connections", transport="sse") or 0) == 0:
                t_reaped = time.monotonic() - t_drop
                break
            time.sleep(0.1)
        print(f"\nhalf-open peer: reaped {t_reaped if t_reaped is None else round(t_reaped, 2)}s after its packets "
              f"stopped (send-timeout {SEND_TIMEOUT}s); disconnects delta {d}; server socket "
              f"(t, (unacked bytes, state), sse conns) {samples[::max(1, len(samples) // 8)]}")
        assert t_reaped is not None, f"half-open peer not reaped within {SEND_TIMEOUT + 10}s; samples {samples}"
        assert t_reaped <= SEND_TIMEOUT + 5, f"reaped only after {t_reaped:.1f}s (limit send-timeout + 5 s)"
        assert set(d) <= {"half_open", "send_timeout"} and sum(d.values()) == 1, \
            f"reaped as {d}, expected half_open (or send_timeout) +1"
    finally:
        pub.stop()
        if client.poll() is None:
            client.kill()
            client.wait(5)
    wait_sse_zero(gw.sub_port)
