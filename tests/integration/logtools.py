"""Helpers of the test_log_*.py tests: a second `ringgate serve` expected to fail, and memory."""
from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path


def run_expecting_exit(binary, *args: str, timeout: float = 15.0) -> tuple[int | None, str]:
    """Runs `ringgate serve ARGS`; returns (exit code, stderr). An instance still running after
    `timeout` is killed (with its children) and reported as None: it did not refuse to start."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RINGGATE_")}
    proc = subprocess.Popen([str(binary), "serve", *args], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
        return proc.returncode, err.decode("utf-8", "replace") + out.decode("utf-8", "replace")
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        out, err = proc.communicate(timeout=10)
        return None, err.decode("utf-8", "replace") + out.decode("utf-8", "replace")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


def pss_kib(pid: int) -> int:
    """Proportional set size of one process, from /proc/PID/smaps_rollup."""
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1])
    raise AssertionError(f"no Pss line in /proc/{pid}/smaps_rollup")
