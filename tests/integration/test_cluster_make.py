"""`make cluster` (scripts/cluster.sh): it prints working URLs, a publish through haproxy or a
host reaches a subscriber through haproxy, and Ctrl-C stops every process it started."""
from __future__ import annotations

import os
import random
import re
import shutil
import signal
import subprocess
import time

import httpx
import pytest

from clustertest import port_listening, require_tools
from rgtest import REPO, LineReader, SSEStream, binary_path, children_of, pid_alive, wait_until

SCRIPT = REPO / "scripts" / "cluster.sh"
OFFSETS = (0, 1, 2, 10, 11, 20, 21, 30)


def free_base() -> int:
    for _ in range(200):
        base = random.randrange(10000, 32000, 100)     # below the ephemeral range (see clustertest.free_port)
        if not any(port_listening(base + o) for o in OFFSETS):
            return base
    raise AssertionError("no free block of loopback ports for the cluster")


def descendants(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        for kid in children_of(todo.pop()):
            out.append(kid)
            todo.append(kid)
    return out


@pytest.mark.timeout(90)
def test_make_cluster_prints_urls_that_work_and_ctrl_c_stops_everything(tmp_path):
    require_tools("redis-server", "redis-cli", "haproxy", "curl")
    base = free_base()
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("RINGGATE_", "RG_", "CLUSTER_"))},
           "CLUSTER_BASE_PORT": str(base), "CLUSTER_DIR": str(tmp_path / "cluster"),
           "RINGGATE_BIN": str(binary_path())}
    err = open(tmp_path / "cluster.stderr", "wb")
    p = subprocess.Popen([str(SCRIPT)], cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=err, start_new_session=True)
    procs: list[int] = []
    try:
        lines = LineReader(p.stdout)
        text, deadline = "", time.monotonic() + 40
        while "Ctrl-C stops everything" not in text:
            line = lines.readline(max(0.1, deadline - time.monotonic()))
            assert line is not None, f"cluster.sh exited {p.wait(5)} before it was ready:\n{text}\n" \
                                     f"{(tmp_path / 'cluster.stderr').read_text()[-3000:]}"
            text += line
        sub = re.search(r"subscribe \(haproxy\): (http://\S+)", text)[1]
        pub = re.search(r"publish \(haproxy\): (http://\S+)", text)[1]
        host2_pub = re.search(r"host2: subscribe http://\S+ publish (http://\S+)", text)[1]
        assert re.search(r"curl -N http://\S+/v1/slots/\w+/stream", text), f"no example curl in:\n{text}"
        procs = descendants(p.pid)
        assert len(procs) >= 4, f"expected Redis, 2 hosts (+ their children) and haproxy under cluster.sh: {procs}"

        sub_port = int(sub.rsplit(":", 1)[1])
        with SSEStream(sub_port, "/v1/slots/demo/stream", timeout=5) as s:
            assert s.status == 200, f"subscribe through {sub}: {s.status}"
            s.first_retry()
            ids = []
            for url, data in ((pub, "through haproxy"), (host2_pub, "at host2")):
                r = httpx.post(f"{url}/v1/slots/demo/events", content=data.encode(), timeout=10, trust_env=False)
                assert r.status_code == 201, f"publish at {url}: {r.status_code} {r.text}"
                ids.append(r.json()["id"])
            got = [(e.id, e.data) for e in s.read_events(2, timeout=10)]
            assert got == list(zip(ids, ("through haproxy", "at host2"))), got

        os.killpg(p.pid, signal.SIGINT)     # Ctrl-C: the whole foreground process group
        try:
            code = p.wait(30)
        except subprocess.TimeoutExpired:
            raise AssertionError("cluster.sh did not stop within 30 s of Ctrl-C")
        assert code == 0, f"cluster.sh exited {code} after Ctrl-C"
        wait_until(lambda: not any(pid_alive(x) for x in procs), 10.0, what="every process cluster.sh started gone")
        left = [base + o for o in OFFSETS if port_listening(base + o)]
        assert not left, f"ports still listening after Ctrl-C: {left}"
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait(5)
        for x in procs:
            try:
                os.kill(x, signal.SIGKILL)
            except ProcessLookupError:
                pass
        p.stdout.close()
        err.close()


def test_cluster_script_names_what_is_missing(tmp_path):
    require_tools("redis-server", "redis-cli", "haproxy", "curl")
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for tool in ("bash", "dirname"):
        os.symlink(shutil.which(tool), bindir / tool)
    p = subprocess.run([str(SCRIPT)], cwd=REPO, env={"PATH": str(bindir), "HOME": str(tmp_path)},
                       capture_output=True, text=True, timeout=20)
    assert p.returncode != 0, p
    for tool in ("redis-server", "redis-cli", "haproxy"):
        assert tool in p.stderr, f"cluster.sh without {tool} on PATH says: {p.stderr!r}"
    assert "ensure-deps" in p.stderr, p.stderr

    p = subprocess.run([str(SCRIPT)], cwd=REPO, capture_output=True, text=True, timeout=20,
                       env={**os.environ, "RINGGATE_BIN": str(tmp_path / "no-such-binary"),
                            "CLUSTER_BASE_PORT": str(free_base())})
    assert p.returncode != 0 and "no ringgate binary" in p.stderr and "make release" in p.stderr, p.stderr
