"""The I/O backends against the real binary: `--io epoll` serves every transport, and `auto`
falls back to epoll (one warning naming the cause) where io_uring_setup is refused; `--io
io_uring` there fails at start-up with a message that says what to do. The refusal is made
with strace's syscall fault injection, as a seccomp profile would."""
from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess

import pytest
import websockets

import rgtest
from rgtest import Gateway, children_of, describe_child, wait_until

STRACE = "/usr/bin/strace"


def refusing(errno_name: str, syscall: str = "io_uring_setup") -> list[str]:
    """Runs the command with `syscall` failing with `errno_name` in every process."""
    # --seccomp-bpf stops the tracees only at that syscall, so the rest runs at full speed.
    return [STRACE, "-f", "--seccomp-bpf", "-qq", "-o", "/dev/null", "-e", f"trace={syscall}",
            "-e", f"inject={syscall}:error={errno_name}", "--"]


class TracedGateway(Gateway):
    """A gateway under strace: the supervisor is strace's child, its roles are grandchildren."""

    def supervisor_pid(self) -> int | None:
        kids = [p for p in children_of(self.pid) if (c := describe_child(p)) is not None and c.role == "serve"]
        return kids[0] if kids else None

    def children(self):
        sup = self.supervisor_pid()
        if sup is None:
            return []
        return [c for p in children_of(sup) if (c := describe_child(p)) is not None]

    def send_signal(self, sig: int) -> None:
        sup = self.supervisor_pid()
        if sup is not None:
            os.kill(sup, sig)

    def close(self) -> None:
        if self.proc is not None and self.alive():
            self.remember_children()
            self.send_signal(signal.SIGTERM)   # strace exits with its tracee
            self.wait(10.0)
        super().close()


def start_traced(tmp_path, errno_name: str, *flags: str, name: str,
                 syscall: str = "io_uring_setup") -> TracedGateway:
    gw = TracedGateway(flags, workers=2, log_dir=tmp_path, name=name, prefix=refusing(errno_name, syscall))
    rgtest.TEST_GATEWAYS.append(gw)
    try:
        return gw.start()
    except BaseException:
        gw.close()
        raise


def fallback_lines(gw: Gateway) -> list[str]:
    return [l for l in gw.stderr_path.read_text(errors="replace").splitlines() if "serving on epoll" in l]


def assert_serves(gw: Gateway, slot: str) -> None:
    """SSE, WebSocket, publish and history all work."""
    with gw.stream(slot) as sse:
        async def ws_scenario() -> list[dict]:
            async with websockets.connect(f"ws://127.0.0.1:{gw.sub_port}/v1/slots/{slot}/ws") as ws:
                await asyncio.sleep(0.2)   # subscribed before the publish
                ids = [gw.publish(slot, f"e{i}") for i in range(5)]
                got = [json.loads(await asyncio.wait_for(ws.recv(), 5.0)) for _ in range(5)]
                return ids, got
        ids, got = asyncio.run(ws_scenario())
        assert [e["id"] for e in got] == ids
        assert [e["data"] for e in got] == [f"e{i}" for i in range(5)]
        events = sse.read_events(5)
        assert [e.id for e in events] == ids
        assert [e.data for e in events] == [f"e{i}" for i in range(5)]
    history = gw.history(slot)
    assert [e["id"] for e in history["events"]] == ids


def test_epoll_backend_serves_every_transport(gateway):
    gw = gateway("--io", "epoll")
    assert " io=epoll " in gw.ready_line
    assert_serves(gw, "epoll-all")
    m = gw.metrics()
    assert m.get("ringgate_io_backend", backend="epoll") == 1
    assert m.get("ringgate_io_backend", backend="io_uring") is None
    assert m.get("ringgate_io_fallback") == 0       # chosen, not fallen back to
    assert fallback_lines(gw) == []


def test_auto_picks_io_uring_where_the_kernel_allows_it(gateway):
    gw = gateway("--io", "auto")
    assert " io=io_uring " in gw.ready_line
    assert gw.metrics().get("ringgate_io_backend", backend="io_uring") == 1


def test_auto_falls_back_to_epoll_when_seccomp_refuses_io_uring(tmp_path):
    gw = start_traced(tmp_path, "EPERM", "--io", "auto", name="auto-eperm")
    try:
        assert " io=epoll " in gw.ready_line
        assert_serves(gw, "fallback-eperm")
        assert gw.metrics().get("ringgate_io_backend", backend="epoll") == 1
        assert gw.metrics().get("ringgate_io_fallback") == 1
        lines = fallback_lines(gw)
        assert len(lines) == 1, lines
        assert "EPERM" in lines[0] and "seccomp" in lines[0], lines[0]
    finally:
        gw.close()


def test_auto_falls_back_to_epoll_on_a_kernel_without_io_uring(tmp_path):
    gw = start_traced(tmp_path, "ENOSYS", "--io", "auto", name="auto-enosys")
    try:
        assert " io=epoll " in gw.ready_line
        assert_serves(gw, "fallback-enosys")
        lines = fallback_lines(gw)
        assert len(lines) == 1, lines
        assert "ENOSYS" in lines[0], lines[0]
    finally:
        gw.close()


def run_refused(errno_name: str, *flags: str, syscall: str = "io_uring_setup") -> tuple[subprocess.CompletedProcess, str, str]:
    argv = refusing(errno_name, syscall) + [str(rgtest.binary_path()), "serve", *flags, "--ephemeral",
                                            "--listen", "127.0.0.1:0", "--publish-listen", "127.0.0.1:0",
                                            "--workers", "1"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("RINGGATE_")}
    r = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, env=env, timeout=60,
                       start_new_session=True)
    return r, r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")


def test_io_uring_required_but_refused_fails_with_a_precise_message(tmp_path):
    r, out, err = run_refused("EPERM", "--io", "io_uring")
    assert r.returncode != 0, (out, err)
    assert "ringgate ready" not in out
    assert "EPERM" in err and "seccomp" in err, err
    assert "--io epoll" in err, err
    assert "serving on epoll" not in err


@pytest.mark.parametrize("errno_name", ["EINVAL", "EPERM"])
def test_auto_falls_back_to_epoll_when_io_uring_register_is_refused(tmp_path, errno_name):
    """A kernel without provided-buffer rings (EINVAL), or a seccomp profile that allows
    io_uring_setup but blocks io_uring_register (EPERM): the children could not build their
    ring, so auto must serve on epoll, and say which call failed."""
    gw = start_traced(tmp_path, errno_name, "--io", "auto", name=f"auto-register-{errno_name.lower()}",
                      syscall="io_uring_register")
    try:
        assert " io=epoll " in gw.ready_line
        assert_serves(gw, f"fallback-register-{errno_name.lower()}")
        assert gw.metrics().get("ringgate_io_backend", backend="epoll") == 1
        lines = fallback_lines(gw)
        assert len(lines) == 1, lines
        assert f"io_uring_register: {errno_name}" in lines[0], lines[0]
    finally:
        gw.close()


def test_io_uring_required_but_register_refused_fails_naming_io_uring_register(tmp_path):
    r, out, err = run_refused("EINVAL", "--io", "io_uring", syscall="io_uring_register")
    assert r.returncode != 0, (out, err)
    assert "ringgate ready" not in out
    assert "io_uring_register" in err and "EINVAL" in err, err
    assert "--io epoll" in err, err
    assert "serving on epoll" not in err
