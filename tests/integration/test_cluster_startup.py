"""Cluster mode, issue 12 test 8 (a cluster that cannot work never starts serving) and the
stalled tail (a host whose tail cannot advance is not green)."""
from __future__ import annotations

import os
import subprocess
import time

import pytest

from clustertest import Haproxy, RedisServer, cluster, free_port, require_tools  # noqa: F401
from rgtest import IO_BACKEND, READY_RE, LineReader, binary_path, wait_until


def run_serve(tmp_path, upstream: str, env: dict[str, str] | None = None, timeout: float = 20.0):
    """`ringgate serve --upstream URL`; (exit code or None if still running, seconds, output)."""
    argv = [str(binary_path()), "serve", "--listen", "127.0.0.1:0", "--publish-listen", "127.0.0.1:0",
            "--workers", "1", "--data-dir", str(tmp_path / "data"), "--log-capacity", "16MiB",
            "--upstream", upstream, "--upstream-timeout", "1s"]
    if IO_BACKEND:
        argv += ["--io", IO_BACKEND]
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("RINGGATE_")}
    full_env.update(env or {})
    t0 = time.monotonic()
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         env=full_env, start_new_session=True)
    try:
        out, _ = p.communicate(timeout=timeout)
        code = p.returncode
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, 9)
        out, _ = p.communicate(timeout=5)
        code = None
    return code, time.monotonic() - t0, out.decode("utf-8", "replace")


def assert_refused(code, took, out, words: tuple[str, ...], what: str, secret: str | None = None):
    assert code is not None, f"{what}: serve was still running after 20 s (a hang, not a clear error):\n{out[-2000:]}"
    assert code != 0, f"{what}: serve exited 0:\n{out[-2000:]}"
    assert took < 10.0, f"{what}: serve took {took:.1f}s to give up"
    assert not any(READY_RE.match(l.strip()) for l in out.splitlines()), f"{what}: printed a ready line:\n{out}"
    low = out.lower()
    assert any(w in low for w in words), f"{what}: the message names none of {words}:\n{out[-2000:]}"
    if secret is not None:
        assert secret not in out, f"{what}: the password appears in serve's output:\n{out[-2000:]}"


@pytest.mark.parametrize("url, words", [
    ("http://127.0.0.1:6379?key=k", ("redis://",)),
    ("redis://127.0.0.1:6379", ("key",)),
    ("redis://127.0.0.1:notaport?key=k", ("port",)),
    ("redis://127.0.0.1:6379?key=", ("key",)),
], ids=["scheme", "no-key", "bad-port", "empty-key"])
def test_bad_upstream_url_exits_nonzero_naming_the_problem(tmp_path, url, words):
    code, took, out = run_serve(tmp_path, url)
    assert_refused(code, took, out, words, f"--upstream {url}")
    assert "--upstream" in out or "upstream" in out.lower(), f"the message does not say which flag: {out}"


def test_redis_not_running_exits_nonzero_naming_the_address(tmp_path):
    port = free_port()
    code, took, out = run_serve(tmp_path, f"redis://127.0.0.1:{port}?key=k")
    assert_refused(code, took, out, ("refused", "connect", "unreachable"), "Redis not running")
    assert f"127.0.0.1:{port}" in out, f"the message does not name the address it tried:\n{out[-2000:]}"


def test_wrong_or_missing_password_exits_nonzero_and_env_password_works(tmp_path):
    require_tools("redis-server", "redis-cli")
    redis = RedisServer(tmp_path, password="right-pass").start()
    try:
        for url, env, what in (
                (f"redis://:wrong-pass@127.0.0.1:{redis.port}?key=k", None, "a wrong password in the URL"),
                (f"redis://127.0.0.1:{redis.port}?key=k", None, "no password for a Redis that needs one"),
                (f"redis://127.0.0.1:{redis.port}?key=k", {"RINGGATE_UPSTREAM_PASSWORD": "wrong-pass"},
                 "a wrong RINGGATE_UPSTREAM_PASSWORD")):
            code, took, out = run_serve(tmp_path, url, env)
            assert_refused(code, took, out, ("password", "auth", "wrongpass", "noauth"), what,
                           secret="wrong-pass")
        # the right password from the environment (not in argv), and the URL's winning over it
        for url, env in ((f"redis://127.0.0.1:{redis.port}?key=k", {"RINGGATE_UPSTREAM_PASSWORD": "right-pass"}),
                         (f"redis://:right-pass@127.0.0.1:{redis.port}?key=k",
                          {"RINGGATE_UPSTREAM_PASSWORD": "wrong-pass"})):
            p = subprocess.Popen([str(binary_path()), "serve", "--listen", "127.0.0.1:0", "--publish-listen",
                                  "127.0.0.1:0", "--workers", "1", "--ephemeral", "--upstream", url]
                                 + (["--io", IO_BACKEND] if IO_BACKEND else []),
                                 stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                 env={**{k: v for k, v in os.environ.items() if not k.startswith("RINGGATE_")}, **env},
                                 start_new_session=True)
            try:
                lines = LineReader(p.stdout)
                deadline = time.monotonic() + 15
                line = ""
                while not READY_RE.match(line.strip()):
                    line = lines.readline(max(0.1, deadline - time.monotonic()))
                    assert line is not None, f"serve with {url} and {env} exited {p.wait(5)}: {lines.lines}"
            finally:
                os.killpg(p.pid, 15)
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    os.killpg(p.pid, 9)
                    p.wait(5)
                p.stdout.close()
    finally:
        redis.stop()


@pytest.mark.timeout(120)
def test_stalled_tail_is_503_stalled_and_haproxy_routes_around_it(cluster, tmp_path):
    c = cluster(hosts=1, haproxy=False)
    a = c.hosts[0]
    c.redis.cli("ACL", "SETUSER", "hostb", "on", ">b-pass", "~*", "&*", "+@all")
    b = c.add_host("B", upstream=c.redis.url(c.key, user="hostb", password="b-pass")).start()
    c.haproxy = Haproxy(tmp_path, [a, b]).start()
    c.haproxy.wait_all_up()
    slot = "beat"
    b.wait_head(slot, a.publish(slot, "first"))

    from clustertest import TimedPublisher
    pub = TimedPublisher(a.pub_url, slot, "A", 0.1)
    pub.start()
    try:
        c.redis.cli("ACL", "SETUSER", "hostb", "-xread")      # B's tail fails, its publisher works
        code, body = wait_until(lambda: (r := b.readyz())[0] == 503 and r[1].get("status") == "stalled" and r,
                                15.0, interval=0.2, what="B's /readyz to say stalled (its tail cannot XREAD)")
        assert body.get("upstream") in ("up", "down") and isinstance(body.get("lag_events"), int) \
            and body["lag_events"] > 0 and isinstance(body.get("detail"), str), f"B /readyz: {body}"
        assert b.metric("ringgate_upstream_stalled") == 1, "ringgate_upstream_stalled is not 1 on the stalled host"
        assert a.readyz()[0] == 200 and a.metric("ringgate_upstream_stalled") == 0, "A is not stalled"
        c.haproxy.wait_states({"host2": "DOWN", "host1": "UP"}, 5.0)

        c.redis.cli("ACL", "SETUSER", "hostb", "+xread")
        wait_until(lambda: (r := b.readyz())[0] == 200 and r[1].get("upstream") == "up", 20.0, interval=0.2,
                   what="B ready again once its tail may read")
        assert b.metric("ringgate_upstream_stalled") == 0
        c.haproxy.wait_states({"host2": "UP"}, 5.0)
    finally:
        pub.stop()
    acked = pub.acked()
    assert acked, f"A published nothing: {pub.attempts[:3]}"
    b.wait_head(slot, acked[-1][0], timeout=15)
