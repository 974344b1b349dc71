"""A rolling restart of a cluster behind haproxy (issue 13, item 5): each host in turn gets
SIGTERM, answers /readyz 503 at once, is taken out by haproxy's health check while it still
serves (--drain-delay), closes its streams with `event: close` and a `retry:` drawn from
0..--drain-spread, exits 0 and is started again on the same ports and data dir. Subscribers
behave like EventSource (reconnect through haproxy after the stream's last `retry:`, with
`Last-Event-ID`); a publisher keeps publishing through haproxy the whole time.

Every publish must be acknowledged (a drain never refuses or loses one), the cluster's Redis
stream must hold exactly the acknowledged events, and every subscriber must end with every event
exactly once, in order, with no reset."""
from __future__ import annotations

import signal
import statistics
import time

import httpx

from clustertest import (ResumingSSE, TimedPublisher, by_seq, check_exactly_once, cluster,  # noqa: F401
                         stream_pairs)
from rgtest import wait_until

DELAY_S, SPREAD_S = 3.0, 2.0
SUBSCRIBERS = 24


def readyz_status(url: str) -> int | None:
    try:
        return httpx.get(f"{url}/readyz", timeout=1.0, trust_env=False).status_code
    except httpx.HTTPError:
        return None


def test_rolling_restart_of_two_hosts_behind_haproxy_every_client_gets_every_event_once(cluster):
    c = cluster(hosts=2, flags=("--drain-delay", f"{int(DELAY_S * 1000)}ms",
                                "--drain-spread", f"{int(SPREAD_S * 1000)}ms"))
    slot = "rolling"
    proxy = c.haproxy
    first = httpx.post(f"{proxy.pub_url}/v1/slots/{slot}/events", content=b"start",
                       timeout=5.0, trust_env=False)
    assert first.status_code == 201, first.text
    start_id = first.json()["id"]

    deadline = time.monotonic() + 120
    clients = [ResumingSSE(proxy.sub_port, slot, deadline, last_event_id=start_id, honor_retry=True)
               for _ in range(SUBSCRIBERS)]
    for cl in clients:
        cl.start()
    for cl in clients:
        assert cl.connected.wait(10) and cl.connects == 1, f"a subscriber did not connect: {cl.errors}"
    # leastconn spreads them over both hosts, so each drain closes some of them.
    wait_until(lambda: all((h.metric("ringgate_connections", transport="sse") or 0) >= 1 for h in c.hosts),
               10, what="subscribers on both hosts")

    pub = TimedPublisher(proxy.pub_url, slot, "ev", interval=0.02)
    pub.start()
    restarts = []
    try:
        for i, h in enumerate(c.hosts, 1):
            time.sleep(0.5)
            pid = h.gw.pid
            # Every stream open on it now must end with `event: close` (counted below).
            on_host = int(h.metric("ringgate_connections", transport="sse"))
            t0 = time.monotonic()
            h.gw.send_signal(signal.SIGTERM)
            wait_until(lambda: readyz_status(h.sub_url) == 503, 1.0, interval=0.02,
                       what=f"{h.name}'s /readyz to answer 503 right after SIGTERM")
            # haproxy (inter 1s fall 2) takes it out well within the drain delay, while it serves.
            proxy.wait_states({f"host{i}": "DOWN"}, timeout=DELAY_S)
            out_at = time.monotonic() - t0
            assert h.gw.alive(), f"{h.name} stopped before its drain delay was over"
            code = h.gw.wait(DELAY_S + SPREAD_S + 10)
            stopped_at = time.monotonic() - t0
            assert code == 0, f"{h.name} exited {code} after SIGTERM:\n{h.gw.stderr_tail()}"
            assert stopped_at >= DELAY_S, f"{h.name} stopped {stopped_at:.2f}s after SIGTERM, before --drain-delay"
            h.gw.close()
            h.start()
            assert h.gw.pid != pid
            proxy.wait_states({f"host{i}": "UP"}, timeout=10)
            restarts.append((h.name, on_host, round(out_at, 2), round(stopped_at, 2)))
        time.sleep(1.0)
    finally:
        pub.stop()

    final = httpx.post(f"{proxy.pub_url}/v1/slots/{slot}/events", content=b"final", timeout=5.0, trust_env=False)
    assert final.status_code == 201, final.text
    final_id = final.json()["id"]
    for cl in clients:
        cl.final_id = final_id
    wait_until(lambda: all(cl.done() for cl in clients), 30, interval=0.2,
               what="every subscriber to reach the final event")
    for cl in clients:
        cl.stop()

    failed = [a for a in pub.attempts if a[2] != 201]
    assert not failed, f"publishes not acknowledged during the rolling restart: {failed[:5]} ({len(failed)} in all)"
    acked = by_seq(pub.acked() + [(final_id, "final")])
    assert len(acked) > 100, f"only {len(acked)} publishes: the publisher did not run through the restarts"
    # The cluster's truth: exactly the acknowledged events, after `start`.
    stored = [p for p in stream_pairs(c.redis.stream_entries(c.key), slot) if p != (start_id, "start")]
    assert stored == acked, "the Redis stream does not hold exactly the acknowledged publishes"

    closes = []
    for n, cl in enumerate(clients):
        check_exactly_once(cl.events, acked, f"subscriber {n}")
        assert cl.resets() == [], f"subscriber {n} got resets: {cl.resets()}"
        mine = [body for event, body in cl.controls if event == "close"]
        assert mine, f"subscriber {n} was never closed by a drain (controls {cl.controls})"
        assert all(b["reason"] == "shutdown" for b in mine), mine
        closes += mine
        # It waited what the close said (EventSource honours `retry:`) before reconnecting.
        assert len(cl.reconnect_waits) >= len(mine), (cl.reconnect_waits, mine)
    assert len(closes) == sum(r[1] for r in restarts), \
        f"{len(closes)} close events, but the drained hosts held {[r[:2] for r in restarts]} streams"
    retries = [b["retry_ms"] for b in closes]
    assert all(0 <= r <= SPREAD_S * 1000 for r in retries), retries
    # Spread over the window, not one wave: uniform on 0..2000 ms has a spread of about 580 ms.
    assert len(set(retries)) > len(retries) // 2, retries
    assert statistics.pstdev(retries) > SPREAD_S * 1000 / 8, retries
    print(f"restarts (host, streams, out of haproxy s, stopped s): {restarts}; publishes {len(acked)}; "
          f"closes {len(closes)}; retry_ms min {min(retries)} max {max(retries)} "
          f"sd {statistics.pstdev(retries):.0f}; connects {[cl.connects for cl in clients]}")
