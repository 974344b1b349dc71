"""Issue 10 item 12: a second instance on the same data dir (or the same subscriber port) exits 1
naming what holds it, and changes nothing in the running one."""
from __future__ import annotations

import contextlib
import hashlib

from logtools import run_expecting_exit
from rgtest import wait_until

COUNTERS = range(4096, 4096 + 128 * 128 * 8)   # per-process counters: heartbeats move all the time


def log_digest(path) -> str:
    raw = path.read_bytes()
    return hashlib.sha256(raw[:COUNTERS.start] + raw[COUNTERS.stop:]).hexdigest()


def test_second_instance_on_the_same_data_dir_exits_1_and_changes_nothing(gateway, ringgate_bin, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    flags = ("--log-capacity", "16MiB", "--max-slots", "1024")
    gw = gateway(*flags, data_dir=data, name="holder")
    ids = [gw.publish("x", f"e{i}") for i in range(3)]
    with contextlib.ExitStack() as stack:
        for _ in range(5):
            stack.enter_context(gw.stream("x")).first_retry()
        wait_until(lambda: gw.metrics().value("ringgate_connections", transport="sse") == 5, 5,
                   what="5 SSE connections in /metrics")
        before = log_digest(data / "ring.log")

        code, err = run_expecting_exit(ringgate_bin, "--listen", "127.0.0.1:0", "--publish-listen", "127.0.0.1:0",
                                       "--workers", "1", "--data-dir", str(data), *flags)
        assert code == 1, f"a second instance on {data} must exit 1, got {code}; output:\n{err[-3000:]}"
        assert f"pid {gw.pid}" in err and "in use" in err, f"the message must name the holder (pid {gw.pid}):\n{err[-3000:]}"
        # The running instance is untouched: gauges, log bytes, service.
        assert gw.metrics().value("ringgate_connections", transport="sse") == 5
        assert log_digest(data / "ring.log") == before, "the log must not change"
        assert [e["id"] for e in gw.history("x")["events"]] == ids
        gw.publish("x", "still serving")


def test_second_instance_on_the_same_subscriber_port_exits_1(gateway, ringgate_bin):
    gw = gateway(name="port-holder")
    code, err = run_expecting_exit(ringgate_bin, "--listen", f"127.0.0.1:{gw.sub_port}", "--publish-listen",
                                   "127.0.0.1:0", "--workers", "1", "--ephemeral")
    assert code == 1, f"a second instance on port {gw.sub_port} must exit 1, got {code}; output:\n{err[-3000:]}"
    assert f"127.0.0.1:{gw.sub_port}" in err and "Address already in use" in err, err[-3000:]
    with gw.stream("y") as s:
        s.first_retry()
        gw.publish("y", "after")
        assert s.next_event(5).data == "after"
