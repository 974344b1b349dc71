"""Scenario 1: subscribers on different workers all get every event, in order, exactly once."""
from __future__ import annotations

import threading
import time

import httpx

from rgtest import describe_mismatch, open_streams, seq_of, wait_until


def test_subscribers_on_every_worker_get_every_event_once_in_order(gateway):
    gw = gateway(workers=2)
    marker = gw.publish("fan", "marker")

    # resume after a marker, so every subscriber's start is exact whatever the connect timing
    by_worker = open_streams(gw, "fan", lambda bw: len(bw) >= 2 and all(len(v) >= 3 for v in bw.values()),
                             max_conns=60, last_event_id=marker)
    streams = [s for v in by_worker.values() for s in v]
    assert set(by_worker) == set(gw.workers().values()), "streams must be spread over both workers"

    # three concurrent publishers into "fan", plus noise into another slot
    published: list[tuple[str, str, str]] = []
    lock = threading.Lock()
    errors: list[BaseException] = []

    # each thread has its own client (an httpx.Client is not shared across threads)
    threads = []
    for k in range(3):
        def run(k=k):
            with httpx.Client(base_url=gw.pub_url, timeout=5.0, trust_env=False) as c:
                try:
                    for i in range(30):
                        etype = "tick" if i % 4 == 0 else "message"
                        data = f"p{k}-{i}"
                        params = {"type": etype} if etype != "message" else None
                        r = c.post("/v1/slots/fan/events", params=params, content=data.encode())
                        assert r.status_code == 201, r.text
                        with lock:
                            published.append((r.json()["id"], etype, data))
                        if i % 5 == 0:
                            assert c.post("/v1/slots/other/events", content=b"noise").status_code == 201
                except BaseException as e:
                    errors.append(e)
        threads.append(threading.Thread(target=run, daemon=True))
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors
    assert len(published) == 90

    expected = sorted(published, key=lambda e: seq_of(e[0]))
    assert len({e[0] for e in expected}) == 90, "publish ids must be unique"
    for s in streams:
        got = [(e.id, e.event, e.data) for e in s.read_events(90, timeout=15)]
        assert got == expected, f"client port {s.local_port}: " + describe_mismatch(got, expected)
    time.sleep(0.3)
    for s in streams:
        s.assert_quiet(0.05)      # nothing extra: no duplicates, nothing from "other"
        s.close()


def test_the_first_subscriber_on_an_idle_worker_starts_at_the_newest_event(gateway):
    """A worker with no subscribers is not woken when events are appended (only its 100 ms tick
    moves its fan-out cursor). Its first new stream must still start at the newest event: it
    gets what is published after it subscribed, and nothing published before."""
    gw = gateway(workers=2)
    rounds_by_worker: dict[int, int] = {}
    for rnd in range(40):
        wait_until(lambda: gw.metrics().value("ringgate_connections", transport="sse") == 0, 5.0,
                   what="no SSE stream open on any worker")
        before = [gw.publish("idle", f"old-{rnd}-{i}") for i in range(30)]
        with gw.stream("idle") as s:
            s.first_retry()
            pid = gw.worker_pid_for(s.local_port)
            after = gw.publish("idle", f"new-{rnd}")
            ev = s.next_event(timeout=5)
            assert ev is not None, f"round {rnd}: the stream ended"
            assert (ev.id, ev.data) == (after, f"new-{rnd}"), (
                f"round {rnd} (worker {pid}): the first event was {ev.id} {ev.data!r}, published before "
                f"the stream opened ({before[0]} .. {before[-1]}); expected {after}")
        rounds_by_worker[pid] = rounds_by_worker.get(pid, 0) + 1
        if len(rounds_by_worker) == 2 and min(rounds_by_worker.values()) >= 3:
            break
    assert len(rounds_by_worker) == 2 and min(rounds_by_worker.values()) >= 3, (
        f"rounds per worker pid: {rounds_by_worker} (each worker should take its first stream 3 times)")
