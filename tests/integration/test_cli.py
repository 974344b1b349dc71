"""Scenario 11: the `ringgate publish` and `ringgate tail` commands."""
from __future__ import annotations

import signal
import subprocess
import os

from rgtest import LineReader, parse_id


def run_cli(gw, *args: str, input: bytes | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RINGGATE_")}
    return subprocess.run([str(gw.binary), *args], input=input, capture_output=True, timeout=15, env=env,
                          stdin=None if input is not None else subprocess.DEVNULL)


def test_publish_command(gateway):
    gw = gateway(workers=1)
    r = run_cli(gw, "publish", "cli", "hello world", "--url", gw.pub_url)
    assert r.returncode == 0, r.stderr
    eid = r.stdout.decode().strip()
    parse_id(eid)
    e = gw.history("cli", limit=1)["events"][0]
    assert (e["id"], e["type"], e["data"]) == (eid, "message", "hello world")

    r = run_cli(gw, "publish", "cli", "typed", "--type", "greeting", "--url", gw.pub_url)
    assert r.returncode == 0, r.stderr
    e = gw.history("cli", limit=1)["events"][0]
    assert (e["id"], e["type"], e["data"]) == (r.stdout.decode().strip(), "greeting", "typed")

    # data from standard input
    r = run_cli(gw, "publish", "cli", "--url", gw.pub_url, input="from stdin ☃".encode())
    assert r.returncode == 0, r.stderr
    e = gw.history("cli", limit=1)["events"][0]
    assert (e["id"], e["data"]) == (r.stdout.decode().strip(), "from stdin ☃")


def test_publish_command_token(gateway):
    gw = gateway("--publish-token", "s3cret", workers=1)
    r = run_cli(gw, "publish", "cli", "x", "--url", gw.pub_url)
    assert r.returncode != 0, "publishing without the token must fail"
    assert gw.history("cli")["events"] == []
    r = run_cli(gw, "publish", "cli", "x", "--url", gw.pub_url, "--token", "s3cret")
    assert r.returncode == 0, r.stderr
    assert gw.history("cli")["head"] == r.stdout.decode().strip()


def test_tail_command(gateway, tmp_path):
    gw = gateway(workers=2)
    marker = gw.publish("tl", "marker")
    early = gw.publish("tl", "published before tail started")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RINGGATE_")}
    with open(tmp_path / "tail.stderr", "wb") as err:
        p = subprocess.Popen([str(gw.binary), "tail", "tl", "--url", gw.sub_url, "--after", marker],
                             stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL, env=env,
                             start_new_session=True)
    try:
        out = LineReader(p.stdout)
        first = out.readline(5)
        assert first == f"{early} message published before tail started\n", first
        later = [gw.publish("tl", "two words"), gw.publish("tl", "typed", type="greeting")]
        assert out.readline(5) == f"{later[0]} message two words\n"
        assert out.readline(5) == f"{later[1]} greeting typed\n"
        assert p.poll() is None, "tail must keep running"
    finally:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        p.wait(5)


def test_health_command_answers_and_gives_up_at_its_timeout(gateway, tmp_path):
    """`ringgate health` (the container's HEALTHCHECK): 0 on 200, 1 on 503 or nothing listening,
    and 1 within about --timeout against a host that takes no connection at all (its accept
    queue is full, so the kernel drops the SYN: a blocking connect would wait minutes)."""
    import socket
    import time
    gw = gateway(workers=1)
    r = run_cli(gw, "health", "--url", gw.sub_url)
    assert r.returncode == 0 and b"200" in r.stdout, (r.stdout, r.stderr)
    r = run_cli(gw, "health", "--url", gw.sub_url, "--path", "/v1/slots/nope/nothing")
    assert r.returncode == 1, (r.stdout, r.stderr)

    full = socket.socket()
    full.bind(("127.0.0.1", 0))
    full.listen(0)
    port = full.getsockname()[1]
    fillers = []
    try:
        # Fill the accept queue (backlog 0 holds one) without ever accepting.
        for _ in range(3):
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", port))
            fillers.append(s)
        time.sleep(0.2)
        t0 = time.monotonic()
        r = run_cli(gw, "health", "--url", f"http://127.0.0.1:{port}", "--timeout", "700ms")
        took = time.monotonic() - t0
        assert r.returncode == 1, (r.stdout, r.stderr)
        assert b"timed out" in r.stderr, r.stderr
        assert took < 5, f"health took {took:.1f}s with --timeout 700ms"
    finally:
        for s in fillers:
            s.close()
        full.close()
