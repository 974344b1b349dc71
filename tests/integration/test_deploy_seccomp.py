"""deploy/seccomp-io_uring.json on the real binary, without Docker: deploy/seccomp/run.py loads
the profile with libseccomp (as a container runtime does), sets no_new_privs and execs
`ringgate serve --io auto`. Under the profile the gateway serves on io_uring; under the same
profile without the three io_uring calls (what Docker's default profile does since Engine 25)
it falls back to epoll, says so once, and serves the same. Also: the committed JSON is what the
generator makes, and the filter really refuses what it should (so an empty filter cannot pass).
The checks pass --io auto themselves, so they run once (in the io_uring pass of make test)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import rgtest

REPO = rgtest.REPO
PROFILE = REPO / "deploy" / "seccomp-io_uring.json"
RUN = REPO / "deploy" / "seccomp" / "run.py"
GENERATE = REPO / "deploy" / "seccomp" / "generate.py"
IO_URING = ["io_uring_setup", "io_uring_enter", "io_uring_register"]

pytestmark = pytest.mark.skipif(rgtest.IO_BACKEND == "epoll",
                                reason="runs ringgate with its own --io auto: checked once, in the io_uring pass")


def under_profile(*without: str) -> list[str]:
    prefix = [sys.executable, str(RUN), str(PROFILE)]
    for name in without:
        prefix += ["--without", name]
    return prefix + ["--"]


@pytest.fixture(scope="module")
def seccomp_works():
    """Skips (with the reason) where this sandbox cannot load a seccomp filter at all."""
    r = subprocess.run(under_profile() + ["true"], capture_output=True, text=True, timeout=30)
    if r.returncode != 0 and "seccomp" in r.stderr:
        pytest.skip(f"seccomp filters cannot be loaded here: {r.stderr.strip()}")
    assert r.returncode == 0, r.stderr


def round_trip(gw, slot: str) -> None:
    """publish -> SSE (live) -> history."""
    with gw.stream(slot) as sse:
        ids = [gw.publish(slot, f"sc-{i}") for i in range(5)]
        events = sse.read_events(5)
        assert [e.id for e in events] == ids
        assert [e.data for e in events] == [f"sc-{i}" for i in range(5)]
    assert [e["id"] for e in gw.history(slot)["events"]] == ids


def fallback_lines(gw) -> list[str]:
    return [l for l in gw.stderr_path.read_text(errors="replace").splitlines() if "serving on epoll" in l]


def test_profile_is_what_the_generator_makes():
    import importlib.util
    spec = importlib.util.spec_from_file_location("rg_libseccomp", REPO / "deploy" / "seccomp" / "libseccomp.py")
    lib = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(lib)
    made_with = "2.5.4"
    if lib.version() != made_with:
        pytest.skip(f"libseccomp here is {lib.version()}, the profile was generated with {made_with}")
    r = subprocess.run([sys.executable, str(GENERATE), "--check"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr


def test_profile_is_an_allowlist_with_io_uring_and_without_the_documented_blocked_calls():
    p = json.loads(PROFILE.read_text())
    assert p["defaultAction"] == "SCMP_ACT_ERRNO" and p["defaultErrnoRet"] == 1   # EPERM, as Docker
    assert {a["architecture"] for a in p["archMap"]} == {"SCMP_ARCH_X86_64", "SCMP_ARCH_AARCH64"}
    allowed = {n for r in p["syscalls"] if r["action"] == "SCMP_ACT_ALLOW" and not r.get("args") for n in r["names"]}
    assert set(IO_URING) <= allowed
    # a sample of Docker's documented blocked calls, and what a server needs
    assert not allowed & {"mount", "umount2", "unshare", "setns", "bpf", "ptrace", "kexec_load",
                          "open_by_handle_at", "keyctl", "userfaultfd", "perf_event_open", "clone", "clone3"}
    assert {"accept4", "epoll_wait", "sendmsg", "mmap", "futex", "execve", "wait4", "memfd_create",
            "fallocate", "flock", "prctl"} <= allowed
    clone = [r for r in p["syscalls"] if r["names"] == ["clone"]]
    assert clone and clone[0]["args"][0]["op"] == "SCMP_CMP_MASKED_EQ" and clone[0]["args"][0]["valueTwo"] == 0


def test_the_loaded_filter_refuses_what_the_profile_blocks(seccomp_works):
    # unshare(CLONE_NEWUSER) needs no privilege, so only the filter can refuse it. Outside the filter the first succeeds, proving the refusal is the profile's.
    probe = ("import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\n"
             "print('allowed' if libc.unshare(0x10000000) == 0 else ctypes.get_errno())\n")   # CLONE_NEWUSER
    outside = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=30)
    inside = subprocess.run(under_profile() + [sys.executable, "-c", probe], capture_output=True, text=True, timeout=30)
    assert outside.stdout.strip() == "allowed", outside.stdout + outside.stderr
    assert inside.stdout.strip() == "1", inside.stdout + inside.stderr   # EPERM


def test_with_the_profile_auto_serves_on_io_uring(gateway, seccomp_works):
    gw = gateway("--io", "auto", prefix=under_profile())
    assert " io=io_uring " in gw.ready_line, gw.ready_line
    assert "seccomp-io_uring.json loaded" in gw.stderr_tail()   # it did run under the loader
    round_trip(gw, "seccomp-uring")
    m = gw.metrics()
    assert m.get("ringgate_io_backend", backend="io_uring") == 1
    assert m.get("ringgate_io_fallback") == 0
    assert fallback_lines(gw) == []


def test_without_the_io_uring_calls_auto_falls_back_to_epoll(gateway, seccomp_works):
    gw = gateway("--io", "auto", prefix=under_profile(*IO_URING))
    assert " io=epoll " in gw.ready_line, gw.ready_line
    lines = fallback_lines(gw)
    assert len(lines) == 1, lines
    assert "io_uring_setup: EPERM" in lines[0] and "seccomp" in lines[0], lines[0]
    round_trip(gw, "seccomp-epoll")
    m = gw.metrics()
    assert m.get("ringgate_io_backend", backend="epoll") == 1
    assert m.get("ringgate_io_fallback") == 1      # what RinggateIOBackendEpoll fires on


def test_io_uring_forced_under_the_blocking_profile_fails_with_advice(ringgate_bin, tmp_path, seccomp_works):
    r = subprocess.run(under_profile(*IO_URING) + [str(ringgate_bin), "serve", "--io", "io_uring", "--ephemeral",
                                                    "--listen", "127.0.0.1:0", "--publish-listen", "127.0.0.1:0",
                                                    "--workers", "1"],
                       capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert r.returncode != 0
    assert "ringgate ready" not in r.stdout
    assert "--io epoll" in r.stderr, r.stderr[-2000:]
