"""Start-up failures a user can meet, against the real binary."""
from __future__ import annotations

import subprocess
import time

from rgtest import binary_path


def test_io_uring_refused_exits_nonzero_naming_the_cause():
    """A seccomp profile or kernel.io_uring_disabled makes io_uring_setup fail with EPERM; strace
    injects exactly that error into every process of the gateway. `ringgate serve` must exit
    non-zero at once, with a message naming the likely cause, instead of restarting forever.
    (`--io io_uring`: the default, `auto`, falls back to epoll instead; test_io_backend.py.)"""
    argv = ["strace", "-f", "-qq", "-o", "/dev/null", "-e", "trace=io_uring_setup",
            "-e", "inject=io_uring_setup:error=EPERM",
            str(binary_path()), "serve", "--io", "io_uring", "--listen", "127.0.0.1:0", "--publish-listen", "127.0.0.1:0",
            "--workers", "2", "--ephemeral"]
    t0 = time.monotonic()
    p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)
    elapsed = time.monotonic() - t0
    print(f"exited {p.returncode} after {elapsed:.2f}s")
    assert p.returncode != 0
    assert "ringgate ready" not in p.stdout
    assert "io_uring is not permitted" in p.stderr and "seccomp" in p.stderr, p.stderr[-2000:]
    assert "exited during start-up" in p.stderr, p.stderr[-2000:]
    assert elapsed < 10, f"took {elapsed:.1f}s to give up"
