"""Finding 8: workers must not serve the log before the ingest's start-up recovery has cut it.

A record damaged while the gateway was stopped is cut by the next start's recovery scan, with
everything after it. The scan is made to last (strace delays the ingest's pread of the slot
directory, the one pread of a start-up, by 2 s) and a history pull is sent during it, on a
fixed subscribe port that the supervisor binds before it spawns anyone. A binary that spawns
the workers with the ingest answers that pull from the uncut log: events the recovery is
about to remove. The fix spawns the workers after the ingest serves: the pull waits in the
listen backlog and gets the recovered log, the same answer as a pull after the ready line.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time
import uuid

import httpx

from rgtest import binary_path

MAX_SLOTS = "1024"   # one directory chunk: one delayed pread


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def flip_payload_byte(log_path: str, payload: str) -> None:
    """Breaks the crc of the one record whose data is `payload` (its last byte, x -> y)."""
    with open(log_path, "r+b") as f:
        data = f.read()
        at = data.find(payload.encode())
        assert at >= 0 and data.find(payload.encode(), at + 1) < 0, f"{payload!r} must occur exactly once"
        last = at + len(payload) - 1
        os.pwrite(f.fileno(), b"Y" if data[last:last + 1] != b"Y" else b"Z", last)


def test_no_history_from_the_log_before_its_recovery(gateway, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    token = uuid.uuid4().hex
    payloads = [f"ord-{token}-{i:02d}" for i in range(1, 11)]
    gw = gateway("--max-slots", MAX_SLOTS, data_dir=data, name="before")
    ids = [gw.publish("a", p) for p in payloads]
    log_path = gw.data_path
    assert gw.stop() == 0
    flip_payload_byte(log_path, payloads[4])   # a5: the recovery cuts a5..a10

    port = free_port()
    argv = ["strace", "-f", "-qq", "-o", "/dev/null", "-e", "trace=pread64",
            "-e", "inject=pread64:delay_enter=2s",
            str(binary_path()), "serve", "--listen", f"127.0.0.1:{port}", "--publish-listen", "127.0.0.1:0",
            "--workers", "2", "--max-slots", MAX_SLOTS, "--data-dir", str(data)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("RINGGATE_")}
    stderr = open(tmp_path / "order.stderr.log", "wb")
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=stderr, env=env,
                         start_new_session=True, text=True)
    ready = threading.Event()
    threading.Thread(target=lambda: [ready.set() for line in p.stdout if "ringgate ready" in line],
                     daemon=True).start()
    try:
        url = f"http://127.0.0.1:{port}/v1/slots/a/events?limit=100"
        during = None
        deadline = time.monotonic() + 10
        with httpx.Client(timeout=20.0, trust_env=False) as client:
            while during is None and time.monotonic() < deadline:
                try:
                    sent_before_ready = not ready.is_set()
                    during = client.get(url)
                except httpx.ConnectError:
                    time.sleep(0.02)   # the supervisor has not bound the port yet
            assert during is not None, "the subscribe port never accepted"
            assert sent_before_ready, "the pull was meant to be sent during start-up (the ready line came first)"
            assert ready.wait(20), "no ready line"
            after = client.get(url)
        assert during.status_code == 200 and after.status_code == 200, (during.text, after.text)
        got_during = [e["id"] for e in during.json()["events"]]
        got_after = [e["id"] for e in after.json()["events"]]
        print(f"during start-up: {len(got_during)} events, after ready: {len(got_after)}")
        assert got_after == ids[:4], f"the recovery cuts at a5: {got_after}"
        cut = [i for i in got_during if i in ids[5:]]
        assert not cut, f"a pull during start-up was served events the recovery removes: {cut}"
        assert got_during == got_after and during.json()["head"] == after.json()["head"]
    finally:
        os.killpg(p.pid, signal.SIGTERM)
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait(timeout=5)
        stderr.close()
