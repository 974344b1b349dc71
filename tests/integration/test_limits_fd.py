"""Issue 10 item 7: at the descriptor limit a process backs off accept instead of spinning,
answers new connections 503 through a reserve descriptor, counts the errors by errno, and the
connections it already has go on working."""
from __future__ import annotations

import threading
import time

from rgtest import (HTTPError, RawConnection, SSEEvent, SSEStream, check_error, proc_cpu_seconds,
                    request_bytes, wait_until)

NOFILE = 160
PREFIX = ["prlimit", f"--nofile={NOFILE}:{NOFILE}", "--"]


def read_answer(conn: RawConnection, what: str, timeout: float = 3.0):
    """One response, or an AssertionError that says the connection hung (the bug)."""
    try:
        return conn.read_response(timeout)
    except TimeoutError:
        raise AssertionError(f"{what}: no answer within {timeout}s (the connection hangs at the descriptor limit)")


class Arrivals(threading.Thread):
    """Opens a new connection every `interval` s until stopped, as clients keep arriving at a
    full server; records what each one was answered."""

    def __init__(self, port: int, target: str, interval: float = 0.05):
        super().__init__(daemon=True)
        self.port, self.target, self.interval = port, target, interval
        self.halt = threading.Event()
        self.statuses: list[int | str] = []

    def run(self) -> None:
        while not self.halt.is_set():
            try:
                with RawConnection(self.port, timeout=3.0) as c:
                    c.send(request_bytes("GET", self.target))
                    self.statuses.append(c.read_response(3.0).status)
            except (TimeoutError, HTTPError, OSError) as e:
                self.statuses.append(type(e).__name__)
            self.halt.wait(self.interval)

    def stop(self) -> None:
        self.halt.set()
        self.join(10)


def cpu_while_arriving(pid: int, port: int, target: str, seconds: float = 2.0) -> tuple[float, list]:
    """CPU seconds `pid` used over `seconds` while new connections keep arriving."""
    arrivals = Arrivals(port, target)
    arrivals.start()
    try:
        t0, c0 = time.monotonic(), proc_cpu_seconds(pid)
        time.sleep(seconds)     # the measurement window, not an assertion of speed
        used = proc_cpu_seconds(pid) - c0
        elapsed = time.monotonic() - t0
    finally:
        arrivals.stop()
    return used / elapsed, arrivals.statuses


def test_worker_at_descriptor_limit_answers_503_and_does_not_spin(gateway):
    gw = gateway("--heartbeat", "30s", workers=1, prefix=PREFIX)
    worker = gw.workers()[0]
    streams: list[SSEStream] = []
    try:
        rejected = None
        for _ in range(NOFILE + 20):
            try:
                s = SSEStream(gw.sub_port, "/v1/slots/fd/stream", timeout=3.0)
            except TimeoutError:
                raise AssertionError(f"after {len(streams)} streams a new connection got no answer within 3s "
                                     "(it hangs at the descriptor limit)")
            if s.status == 503:
                rejected = check_error(s.status, s.body, 503, "over_capacity", "a connection past the fd limit")
                assert s.headers.get("retry-after"), s.headers
                s.close()
                break
            assert s.status == 200, s.status
            streams.append(s)
        assert rejected is not None, f"{len(streams)} streams open and never a 503"
        assert len(streams) > NOFILE // 2, f"only {len(streams)} streams before the limit"

        cpu, statuses = cpu_while_arriving(worker, gw.sub_port, "/v1/slots/fd/stream")
        print(f"worker CPU at the fd limit with arrivals every 50 ms: {cpu * 100:.1f}% "
              f"({len(streams)} streams; answers {sorted(set(map(str, statuses)))})")
        assert all(st == 503 for st in statuses), f"arrivals at the limit must get 503 at once: {statuses}"
        assert cpu < 0.25, f"the worker used {cpu * 100:.0f}% CPU at the descriptor limit (spinning)"

        eid = gw.publish("fd", "still-flowing")
        for s in streams[:20] + streams[-20:]:
            got = _next_event(s, 5.0)
            assert got.id == eid and got.data == "still-flowing", got

        for s in streams[:5]:
            s.close()
        del streams[:5]

        def emfile_counted():
            try:
                return gw.metrics().value("ringgate_accept_errors_total", errno="EMFILE")
            except Exception:
                return None
        assert wait_until(emfile_counted, 10.0, what="/metrics with accept_errors_total{errno=EMFILE}") > 0
        assert "accept failed: EMFILE" in gw.stderr_tail(20000), "the accept errors must be logged"
    finally:
        for s in streams:
            s.close()


def test_ingest_at_descriptor_limit_answers_503_and_does_not_spin(gateway):
    gw = gateway(workers=1, prefix=PREFIX)
    ingest = next(c.pid for c in gw.children() if c.role == "ingest")
    conns: list[RawConnection] = []
    try:
        rejected = False
        for _ in range(NOFILE + 20):
            conn = RawConnection(gw.pub_port, timeout=3.0)
            conn.send(request_bytes("GET", "/healthz"))
            r = read_answer(conn, f"publish connection {len(conns) + 1}")
            if r.status == 503:
                check_error(r.status, r.body, 503, "over_capacity", "a publish connection past the fd limit")
                conn.close()
                rejected = True
                break
            assert r.status == 200, r
            conns.append(conn)
        assert rejected, f"{len(conns)} publish connections and never a 503"

        cpu, statuses = cpu_while_arriving(ingest, gw.pub_port, "/healthz")
        print(f"ingest CPU at the fd limit with arrivals every 50 ms: {cpu * 100:.1f}% "
              f"({len(conns)} connections; answers {sorted(set(map(str, statuses)))})")
        assert all(st == 503 for st in statuses), f"arrivals at the limit must get 503 at once: {statuses}"
        assert cpu < 0.25, f"the ingest used {cpu * 100:.0f}% CPU at the descriptor limit (spinning)"

        # An existing keep-alive connection still publishes.
        conns[0].send(request_bytes("POST", "/v1/slots/fdpub/events", body=b"ok"))
        r = conns[0].read_response(5.0)
        assert r.status == 201, r
        for c in conns[1:6]:
            c.close()
        del conns[1:6]
        wait_until(lambda: (gw.metrics().get("ringgate_accept_errors_total", errno="EMFILE") or 0) > 0, 10.0,
                   what="the ingest's EMFILE errors in /metrics")
    finally:
        for c in conns:
            c.close()


def _next_event(s: SSEStream, timeout: float) -> SSEEvent:
    deadline = time.monotonic() + timeout
    while True:
        item = s.next_item(max(0.01, deadline - time.monotonic()))
        assert item is not None, "the stream ended"
        if isinstance(item, SSEEvent):
            return item
