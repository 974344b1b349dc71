"""Issue 10 item 3: a hung child (its loop no longer turns; here `kill -STOP`) is killed by the
supervisor's watchdog once its heartbeat is older than --watchdog-timeout, and restarted; the
restart is counted as process_restarts_total{role,reason="watchdog"}."""
from __future__ import annotations

import os
import signal
import time

import httpx
import pytest

from rgtest import Metrics, open_streams, pid_alive, wait_until


def resume(pid: int) -> None:
    """Whatever the outcome, a stopped process must not be left stopped."""
    try:
        os.kill(pid, signal.SIGCONT)
    except ProcessLookupError:
        pass


def metrics_from_a_running_worker(gw) -> Metrics:
    """/metrics on a fresh connection each try: SO_REUSEPORT hands about half of them to the
    stopped worker, whose backlog nobody accepts, so those tries time out."""
    for _ in range(40):
        try:
            r = httpx.get(f"http://127.0.0.1:{gw.sub_port}/metrics", timeout=0.5)
        except httpx.TimeoutException:
            continue
        assert r.status_code == 200, r.text
        return Metrics(r.text)
    raise AssertionError("no worker answered /metrics in 40 fresh connections")


def restarts(gw, role: str, reason: str) -> float | None:
    return gw.metrics().get("ringgate_process_restarts_total", role=role, reason=reason)


@pytest.mark.timeout(60)
def test_stopped_worker_is_killed_and_replaced(gateway):
    gw = gateway("--watchdog-timeout", "1s", workers=2)
    before = gw.workers()
    victim = before[0]
    os.kill(victim, signal.SIGSTOP)
    t0 = time.monotonic()
    try:
        new_pid = wait_until(lambda: (p := gw.workers().get(0)) not in (None, victim) and p, 10,
                             what="a new worker 0 after its predecessor was stopped")
        replaced_after = time.monotonic() - t0
        wait_until(lambda: not pid_alive(victim), 5, what="the stopped worker to be gone")
        print(f"stopped worker replaced after {replaced_after:.2f}s (--watchdog-timeout 1s)")
    finally:
        resume(victim)
    # the new worker serves: streams opened until one lands on it
    by_worker = open_streams(gw, "wd", lambda bw: new_pid in bw, max_conns=40)
    for streams in by_worker.values():
        for s in streams:
            s.close()
    assert gw.workers().get(1) == before[1], "the healthy worker must not be replaced"
    wait_until(lambda: restarts(gw, "worker", "watchdog") == 1, 5, interval=0.1,
               what='ringgate_process_restarts_total{role="worker",reason="watchdog"} == 1')
    assert restarts(gw, "worker", "crash") == 0
    assert restarts(gw, "ingest", "watchdog") == 0
    assert replaced_after < 8, f"replaced after {replaced_after:.1f}s with a 1s watchdog"
    assert "worker 0" in gw.stderr_tail() and "killing it" in gw.stderr_tail()


@pytest.mark.timeout(60)
def test_stopped_ingest_is_killed_and_replaced(gateway):
    gw = gateway("--watchdog-timeout", "1s", workers=1)
    gw.publish("wd", "before")
    victim = next(c.pid for c in gw.children() if c.role == "ingest")
    os.kill(victim, signal.SIGSTOP)
    t0 = time.monotonic()
    try:
        new_pid = wait_until(lambda: next((c.pid for c in gw.children() if c.role == "ingest" and c.pid != victim), None),
                             10, what="a new ingest after its predecessor was stopped")
        print(f"stopped ingest replaced after {time.monotonic() - t0:.2f}s (--watchdog-timeout 1s)")
        wait_until(lambda: not pid_alive(victim), 5, what="the stopped ingest to be gone")
    finally:
        resume(victim)
    # the new ingest takes publishes on the same listener, and readers see them
    after = gw.publish("wd", "after")
    assert [e["data"] for e in gw.history("wd")["events"]] == ["before", "after"]
    assert gw.history("wd")["head"] == after
    assert new_pid != victim
    wait_until(lambda: restarts(gw, "ingest", "watchdog") == 1, 5, interval=0.1,
               what='ringgate_process_restarts_total{role="ingest",reason="watchdog"} == 1')
    assert restarts(gw, "ingest", "crash") == 0
    assert restarts(gw, "worker", "watchdog") == 0


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_default_watchdog_replaces_a_stopped_worker(gateway):
    """No flag: the default (10s) applies."""
    gw = gateway(workers=2)
    before = gw.workers()
    victim = before[1]
    os.kill(victim, signal.SIGSTOP)
    t0 = time.monotonic()
    try:
        new_pid = wait_until(lambda: (p := gw.workers().get(1)) not in (None, victim) and p, 25,
                             interval=0.2, what="a new worker 1 (default --watchdog-timeout 10s)")
        print(f"stopped worker replaced after {time.monotonic() - t0:.2f}s (default --watchdog-timeout)")
        wait_until(lambda: not pid_alive(victim), 5, what="the stopped worker to be gone")
    finally:
        resume(victim)
    assert new_pid != victim
    wait_until(lambda: restarts(gw, "worker", "watchdog") == 1, 5, interval=0.1,
               what='ringgate_process_restarts_total{role="worker",reason="watchdog"} == 1')


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_watchdog_off_and_shutdown_with_a_stopped_child(gateway):
    """`--watchdog-timeout 0` turns the watchdog off: a stopped worker stays. The supervisor
    never waits on it: the other worker keeps serving, and SIGTERM still ends everything
    within its 5 s budget (the stopped child is killed at the end of the drain)."""
    gw = gateway("--watchdog-timeout", "0", workers=2)
    victim = gw.workers()[0]
    os.kill(victim, signal.SIGSTOP)
    try:
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            assert gw.workers().get(0) == victim, "worker 0 was replaced with the watchdog off"
            time.sleep(0.2)
        assert metrics_from_a_running_worker(gw).value("ringgate_process_restarts_total") == 0
        t0 = time.monotonic()
        assert gw.stop(timeout=10) == 0
        took = time.monotonic() - t0
        print(f"supervisor exited {took:.2f}s after SIGTERM with a stopped worker")
        assert took < 6, f"shutdown took {took:.1f}s with a stopped worker"
        wait_until(lambda: not pid_alive(victim), 5, what="the stopped worker to be gone after shutdown")
    finally:
        resume(victim)
