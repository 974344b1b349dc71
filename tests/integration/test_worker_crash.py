"""Scenario 3: `kill -9` of a worker under load. Its 50 clients reconnect with Last-Event-ID and
lose nothing, duplicate nothing; the supervisor restarts the worker and counts the restart."""
from __future__ import annotations

import os
import signal
import time

import pytest

from rgtest import (Publisher, ResumingClient, describe_mismatch, open_streams, pid_alive, seq_of,
                    wait_until)

CLIENTS = 50


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_kill_9_worker_clients_resume_exactly(gateway):
    gw = gateway("--log-capacity", "16MiB", workers=2)
    workers_before = gw.workers()
    ingest_before = [c.pid for c in gw.children() if c.role == "ingest"]
    pub = Publisher(gw, "crash", interval=0.005)
    pub.start()
    clients: list[ResumingClient] = []
    try:
        wait_until(lambda: len(pub.ids) >= 5, 5, what="the publisher to start")

        # open streams until one worker serves CLIENTS of them; close the rest
        by_worker = open_streams(gw, "crash", lambda bw: any(len(v) >= CLIENTS for v in bw.values()),
                                 max_conns=6 * CLIENTS)
        victim = next(pid for pid, v in by_worker.items() if len(v) >= CLIENTS)
        for pid, streams in by_worker.items():
            for s in streams[CLIENTS:] if pid == victim else streams:
                s.close()
        victim_index = next(i for i, p in gw.workers().items() if p == victim)

        deadline = time.monotonic() + 75
        clients = [ResumingClient(gw, "crash", s, deadline) for s in by_worker[victim][:CLIENTS]]
        for c in clients:
            c.start()
        wait_until(lambda: all(c.events for c in clients), 10, what="every client to receive an event")

        os.kill(victim, signal.SIGKILL)

        new_pid = wait_until(lambda: (p := gw.workers().get(victim_index)) not in (None, victim) and p,
                             15, what=f"a new worker {victim_index}")
        wait_until(lambda: not pid_alive(victim), 5, what="the killed worker to be gone")
        wait_until(lambda: all(c.reconnects >= 1 for c in clients), 15,
                   what="every client of the killed worker to reconnect")
        wait_until(lambda: (gw.metrics().get("ringgate_process_restarts_total", role="worker") or 0) >= 1,
                   10, interval=0.2, what='ringgate_process_restarts_total{role="worker"} >= 1')

        # keep publishing a little longer, so the resumed streams carry live events too
        n = len(pub.ids)
        wait_until(lambda: len(pub.ids) >= n + 100, 10, what="100 more publishes")
    except BaseException:
        for c in clients:
            c.halt.set()
        raise
    finally:
        pub.stop()

    final = seq_of(pub.ids[-1])
    for c in clients:
        c.final_seq = final
    late = None
    try:
        wait_until(lambda: all(c.done for c in clients), 20, interval=0.1,
                   what=f"every client to reach seq {final}")
    except AssertionError as e:
        late = str(e)          # report what the clients got first: it says more
    finally:
        for c in clients:
            c.halt.set()
        for c in clients:
            c.join(5)

    assert not pub.errors, f"publishing failed while a worker died: {pub.errors[:5]}"
    for n, c in enumerate(clients):
        assert not c.anomalies, f"client {n}: unexpected frames {c.anomalies[:3]}"
        start = pub.ids.index(c.events[0][0])
        expected = list(zip(pub.ids[start:], pub.datas[start:]))
        if late:
            expected = [e for e in expected if seq_of(e[0]) <= seq_of(c.events[-1][0])]
        assert c.events == expected, f"client {n}: " + describe_mismatch(c.events, expected)
    assert late is None, late

    # only the killed worker was replaced
    after = gw.workers()
    assert after[victim_index] == new_pid
    for i, p in workers_before.items():
        if i != victim_index:
            assert after.get(i) == p, f"worker {i} was replaced too ({p} -> {after.get(i)})"
    assert [c.pid for c in gw.children() if c.role == "ingest"] == ingest_before
