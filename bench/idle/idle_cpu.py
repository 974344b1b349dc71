#!/usr/bin/env python3
"""Idle CPU of one Ringgate host holding --subs SSE streams (issue 15), per process.

Starts `ringgate serve --workers W --heartbeat H`, opens the streams with `ringgate-bench scale`
(--procs load processes from 127.0.0.2, …), waits --settle s, then reads each server process's
CPU time from /proc/PID/schedstat (nanoseconds, exact; /proc/PID/stat counts 10 ms ticks) over
--seconds s. Prints one JSON line: the server's share of a core, per process, and the load
processes' share. Loopback only; everything it starts is stopped at the end.

Usage: bench/idle/idle_cpu.py [--bin .build/release] [--subs 12500] [--workers 1]
                              [--heartbeat 15s] [--seconds 20] [--procs 1] [--settle 2]"""
from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(ROOT / "bench"))
import scale  # noqa: E402  (tree: a process and its descendants)


def cpu_ns(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0])
    except OSError:
        return 0


def role(pid: int) -> str:
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        return args[1].decode() if len(args) > 1 else "?"
    except OSError:
        return "?"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=str(ROOT / ".build/release"))
    ap.add_argument("--subs", type=int, default=12_500)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--heartbeat", default="15s")
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--procs", type=int, default=1)
    ap.add_argument("--settle", type=float, default=2)
    a = ap.parse_args()
    binary = Path(a.bin)
    server = subprocess.Popen(
        [str(binary / "ringgate"), "serve", "--listen", "127.0.0.1:0", "--publish-listen", "127.0.0.1:0",
         "--workers", str(a.workers), "--ephemeral", "--max-connections", str(int(a.subs * 1.3) + 1000),
         "--heartbeat", a.heartbeat],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    loads: list[subprocess.Popen] = []
    try:
        line, deadline = "", time.monotonic() + 30
        while not line.startswith("ringgate ready") and time.monotonic() < deadline:
            line = server.stdout.readline()
        m = re.search(r"subscribe=127\.0\.0\.1:(\d+) publish=127\.0\.0\.1:(\d+)", line)
        if not m:
            raise SystemExit(f"ringgate did not start: {line!r}")
        sub, pub = m.group(1), m.group(2)
        for i in range(a.procs):
            n = a.subs // a.procs + (1 if i < a.subs % a.procs else 0)
            loads.append(subprocess.Popen(
                [str(binary / "ringgate-bench"), "scale", "--sub-url", f"http://127.0.0.1:{sub}/v1/slots/{{slot}}/stream",
                 "--pub-url", f"http://127.0.0.1:{pub}/v1/slots/{{slot}}/events", "--slot", "idle", "--subs", str(n),
                 "--events", "1", "--bind", f"127.0.0.{2 + i}", "--deadline", str(int(a.seconds + a.settle + 120)),
                 "--head-timeout", "60"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True))
        for p in loads:
            if not p.stdout.readline():
                raise SystemExit("a load process ended before its streams were open")
        time.sleep(a.settle)
        pids = scale.tree(server.pid)
        before = {p: cpu_ns(p) for p in pids + [l.pid for l in loads]}
        time.sleep(a.seconds)
        share = {p: (cpu_ns(p) - before[p]) / a.seconds / 1e9 * 100 for p in before}
        print(json.dumps({
            "subs": a.subs, "workers": a.workers, "heartbeat": a.heartbeat, "seconds": a.seconds,
            "server_pct_of_core": round(sum(share[p] for p in pids), 3),
            "per_process_pct": {f"{role(p)}[{p}]": round(share[p], 3) for p in pids},
            "load_pct_of_core": round(sum(share[l.pid] for l in loads), 3),
        }))
    finally:
        for p in loads:
            p.kill()
            p.wait()
        server.terminate()
        server.wait(timeout=20)


if __name__ == "__main__":
    main()
