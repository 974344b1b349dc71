#!/usr/bin/env python3
"""C100k on loopback (issue 15): Ringgate and nginx + nchan, each with as many workers, holding
--subs SSE subscribers opened by several `ringgate-bench scale` processes from their own source
addresses (127.0.0.2, …; one process may hold at most `ulimit -n` sockets).

For each server, fresh, and each of two variants (all readers; --stopped share of stopped
readers): time to connect and subscribe everyone; server Pss per connection; kernel socket
memory (/proc/net/sockstat, both ends of every loopback connection); idle server CPU with
heartbeats on for --idle seconds; one broadcast event to everyone (time until each subscriber has
it: p50/p99/max); a burst of --burst events (deliveries/s); lost, duplicated, out of order.

Usage: bench/scale.py [--subs 100000] [--procs 8] [--workers 8] [--idle 30] [--burst 100]
                      [--stopped 0.1] [--servers ringgate,nchan] [--bin .build/release] [--out FILE]
Prints one table; the raw results go to bench/results/scale.json (or --out)."""
from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HZ = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
START = time.monotonic()


def log(msg: str) -> None:
    print(f"[scale {time.monotonic() - START:6.1f}s] {msg}", file=sys.stderr, flush=True)


def tree(root: int) -> list[int]:
    """root and its descendants."""
    children: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            fields = Path(f"/proc/{d}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(d))
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children.get(p, [])
    return out


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for p in pids:
        try:
            f = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(f[11]) + int(f[12])
        except OSError:
            pass
    return total / HZ


def pss_bytes(pids: list[int]) -> int:
    total = 0
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            pass
    return total


def sockstat_tcp_mem_bytes() -> int:
    m = re.search(r"^TCP:.* mem (\d+)", Path("/proc/net/sockstat").read_text(), re.M)
    return int(m.group(1)) * PAGE if m else 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def publish(host: str, port: int, path: str, bodies: list[bytes]) -> list[int]:
    """POSTs each body on one keep-alive connection, pipelined; returns the statuses."""
    req = b"".join(f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: text/plain\r\n"
                   f"Content-Length: {len(b)}\r\n\r\n".encode() + b for b in bodies)
    statuses = []
    with socket.create_connection((host, port), timeout=30) as c:
        c.sendall(req)
        f = c.makefile("rb")
        while len(statuses) < len(bodies):
            status = int(f.readline().split()[1])
            length = 0
            chunked = False
            while (line := f.readline()) not in (b"\r\n", b""):
                k, _, v = line.decode().partition(":")
                if k.lower() == "content-length":
                    length = int(v)
                if k.lower() == "transfer-encoding" and "chunked" in v.lower():
                    chunked = True
            if chunked:
                while True:
                    size = int(f.readline().split(b";")[0], 16)
                    f.read(size + 2)
                    if size == 0:
                        break
            else:
                f.read(length)
            statuses.append(status)
    return statuses


class Server:
    def __init__(self, kind: str, workers: int, subs: int, tmp: Path, binary: Path):
        self.kind, self.workers, self.tmp = kind, workers, tmp
        self.proc = None
        if kind == "ringgate":
            self.proc = subprocess.Popen(
                [str(binary), "serve", "--listen", "127.0.0.1:0", "--publish-listen", "127.0.0.1:0",
                 "--workers", str(workers), "--ephemeral", "--max-connections", str(int(subs * 1.3) + 1000)],
                stdout=subprocess.PIPE, stderr=open(tmp / "ringgate.err", "w"), text=True)
            line = ""
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                line = self.proc.stdout.readline()
                if line.startswith("ringgate ready"):
                    break
            m = re.search(r"subscribe=127\.0\.0\.1:(\d+) publish=127\.0\.0\.1:(\d+)", line)
            if not m:
                raise SystemExit(f"ringgate did not start: {line!r}; see {tmp}/ringgate.err")
            self.sub_port, self.pub_port = int(m.group(1)), int(m.group(2))
            self.root = self.proc.pid
            self.sub_path, self.pub_path = "/v1/slots/{slot}/stream", "/v1/slots/{slot}/events"
        else:
            self.sub_port, self.pub_port = free_port(), free_port()
            conf = (ROOT / "bench/nchan.conf").read_text()
            conf = conf.replace("127.0.0.1:18180", f"127.0.0.1:{self.sub_port}")
            conf = conf.replace("127.0.0.1:18181", f"127.0.0.1:{self.pub_port}")
            conf = re.sub(r"worker_processes \d+;.*", f"worker_processes {workers};", conf)
            # As Ringgate's SO_REUSEPORT listeners: one accept queue per worker (without it one
            # nginx worker takes most connections and runs out of worker_connections).
            conf = re.sub(r"listen 127\.0\.0\.1:(\d+) backlog=4096;", r"listen 127.0.0.1:\1 reuseport backlog=4096;", conf)
            conf = re.sub(r"worker_connections \d+;", "worker_connections 19000;", conf)
            # Heartbeats, as Ringgate's default --heartbeat 15s.
            conf = conf.replace("nchan_eventsource_event message;",
                                "nchan_eventsource_event message;\n            nchan_eventsource_ping_interval 15;")
            (tmp / "nginx/logs").mkdir(parents=True, exist_ok=True)
            (tmp / "nginx/tmp").mkdir(parents=True, exist_ok=True)
            (tmp / "nginx/nchan.conf").write_text(conf)
            pidfile = tmp / "nginx/nginx.pid"
            subprocess.run(["nginx", "-c", str(tmp / "nginx/nchan.conf"), "-p", str(tmp / "nginx") + "/",
                            "-g", f"daemon on; pid {pidfile};"], check=True)
            for _ in range(50):
                if pidfile.exists() and pidfile.read_text().strip():
                    break
                time.sleep(0.1)
            self.root = int(pidfile.read_text())
            self.sub_path, self.pub_path = "/sub/{slot}", "/pub/{slot}"
        time.sleep(1)

    def pids(self) -> list[int]:
        return tree(self.root)

    def stop(self) -> None:
        try:
            os.kill(self.root, signal.SIGTERM)
        except ProcessLookupError:
            return
        for _ in range(100):
            try:
                os.kill(self.root, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)
        for p in self.pids():
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.proc:
            self.proc.wait(timeout=10)


def run_variant(kind: str, a, stopped: float, binary_dir: Path, tmp: Path) -> dict:
    server = Server(kind, a.workers, a.subs, tmp, binary_dir / "ringgate")
    loads: list[subprocess.Popen] = []
    try:
        slot = f"scale-{kind}-{os.getpid()}-{int(time.time())}"
        pids = server.pids()
        pss0, sock0 = pss_bytes(pids), sockstat_tcp_mem_bytes()
        per = [a.subs // a.procs + (1 if i < a.subs % a.procs else 0) for i in range(a.procs)]
        sub_url = f"http://127.0.0.1:{server.sub_port}{server.sub_path}"
        pub_url = f"http://127.0.0.1:{server.pub_port}{server.pub_path}"
        t0 = time.monotonic()
        for i, n in enumerate(per):
            cmd = [str(binary_dir / "ringgate-bench"), "scale", "--sub-url", sub_url, "--pub-url", pub_url,
                   "--slot", slot, "--subs", str(n), "--events", str(1 + a.burst), "--bind", f"127.0.0.{2 + i}",
                   "--stopped-fraction", str(stopped), "--deadline", "240", "--head-timeout", "120",
                   "--label", f"scale/{kind}/{i}"]
            loads.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=open(tmp / f"load{i}.err", "w"), text=True))
        ready = []
        for i, p in enumerate(loads):
            line = p.stdout.readline()
            if not line:
                server_log = tmp / ("ringgate.err" if kind == "ringgate" else "nginx/logs/error.log")
                tail = server_log.read_text()[-1500:] if server_log.exists() else ""
                raise SystemExit(f"load process {i} ended before it was ready: {(tmp / f'load{i}.err').read_text()[-600:]}"
                                 f"\n--- {kind} log tail:\n{tail}")
            ready.append(json.loads(line))
        setup_s = time.monotonic() - t0
        readers = sum(r["readers"] for r in ready)
        log(f"{kind}: {a.subs} subscribed in {setup_s:.1f} s ({readers} readers)")
        time.sleep(1)
        pids = server.pids()
        pss1, sock1 = pss_bytes(pids), sockstat_tcp_mem_bytes()
        cpu0 = cpu_seconds(pids)
        time.sleep(a.idle)
        idle_cpu = (cpu_seconds(pids) - cpu0) / a.idle
        log(f"{kind}: idle {a.idle} s: {idle_cpu * 100:.2f} % of a core")
        pss_peak = pss_bytes(pids)
        # The broadcast: one event, stamped with CLOCK_MONOTONIC (the load processes' clock).
        st = publish("127.0.0.1", server.pub_port, server.pub_path.format(slot=slot),
                     [f"t={time.monotonic_ns()} n=1".encode()])
        time.sleep(2)
        cpu_b0 = cpu_seconds(pids)
        burst_t0 = time.monotonic_ns()
        st += publish("127.0.0.1", server.pub_port, server.pub_path.format(slot=slot),
                      [f"t={time.monotonic_ns()} n={k}".encode() for k in range(2, 2 + a.burst)])
        results = []
        for i, p in enumerate(loads):
            while True:
                pss_peak = max(pss_peak, pss_bytes(pids))
                try:
                    out, _ = p.communicate(timeout=2)
                    break
                except subprocess.TimeoutExpired:
                    continue
            line = out.strip().splitlines()[-1] if out.strip() else "{}"
            results.append(json.loads(line))
        burst_cpu = cpu_seconds(pids) - cpu_b0
        lat = sorted(x for r in results for x in r.get("broadcast_latency_us", []))
        burst_last = max(r.get("burst_last_ns", 0) for r in results)
        burst_deliveries = sum(r.get("deliveries", 0) for r in results) - len(lat)
        q = lambda f: lat[min(len(lat) - 1, int(f * len(lat)))] if lat else None
        row = {
            "server": kind, "subscribers": a.subs, "readers": readers, "stopped_fraction": stopped,
            "workers": a.workers, "load_processes": a.procs,
            "connect_subscribe_s": setup_s,
            "server_pss_per_connection_b": (pss1 - pss0) / a.subs,
            "server_pss_growth_peak_b": pss_peak - pss0,
            "kernel_tcp_mem_b": sock1 - sock0,
            "idle_cpu_share_of_core": idle_cpu,
            "broadcast_p50_ms": q(0.5) / 1000 if lat else None,
            "broadcast_p99_ms": q(0.99) / 1000 if lat else None,
            "broadcast_max_ms": lat[-1] / 1000 if lat else None,
            "broadcast_missing": sum(r.get("broadcast_missing", 0) for r in results),
            "burst_events": a.burst,
            "burst_deliveries": burst_deliveries,
            "burst_deliveries_per_s": burst_deliveries / ((burst_last - burst_t0) / 1e9) if burst_last > burst_t0 else None,
            "burst_server_cpu_s": burst_cpu,
            "lost": sum(r.get("lost", 0) for r in results),
            "duplicated": sum(r.get("duplicated", 0) for r in results),
            "out_of_order": sum(r.get("out_of_order", 0) for r in results),
            "resets": sum(r.get("resets", 0) for r in results),
            "readers_closed_by_server": sum(r.get("readers_closed_by_server", 0) for r in results),
            "complete": all(r.get("complete") for r in results),
            "publish_statuses": sorted(set(st)),
            "load_client_cpu_s": sum(r.get("client_cpu_s", 0) for r in results),
        }
        log(f"{kind} stopped={stopped}: " + json.dumps({k: (round(v, 3) if isinstance(v, float) else v)
                                                         for k, v in row.items()}))
        return row
    finally:
        for p in loads:          # none outlives its run, whatever happened
            if p.poll() is None:
                p.kill()
                p.wait()
        server.stop()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--subs", type=int, default=100_000)
    ap.add_argument("--procs", type=int, default=8)
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--idle", type=float, default=30)
    ap.add_argument("--burst", type=int, default=100)
    ap.add_argument("--stopped", type=float, default=0.1)
    ap.add_argument("--servers", default="ringgate,nchan")
    ap.add_argument("--bin", default=str(ROOT / ".build/release"))
    ap.add_argument("--out", default=str(ROOT / "bench/results/scale.json"))
    a = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if a.subs / a.procs > hard - 1000:
        raise SystemExit(f"{a.subs} subscribers over {a.procs} processes is more than ulimit -n {hard} each: use more --procs")
    if shutil.which("nginx") is None and "nchan" in a.servers:
        raise SystemExit("nginx is missing: apt-get install -y nginx-light libnginx-mod-nchan (bench/run.sh installs them)")
    rows = []
    for stopped in (0.0, a.stopped):
        for kind in a.servers.split(","):
            with tempfile.TemporaryDirectory(prefix="ringgate-scale.") as tmp:
                try:
                    rows.append(run_variant(kind, a, stopped, Path(a.bin), Path(tmp)))
                except SystemExit as e:      # the run failed: say so in its row, go on
                    log(f"{kind} stopped={stopped}: FAILED: {e}")
                    rows.append({"server": kind, "stopped_fraction": stopped, "error": str(e)[:2000]})
            time.sleep(2)
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps({"date": time.strftime("%Y-%m-%d %H:%M %Z"), "args": vars(a), "rows": rows}, indent=1))
    report(rows, a)


def report(rows: list[dict], a) -> None:
    by = {(r["server"], r["stopped_fraction"]): r for r in rows}
    def cell(v, unit):
        if v is None:
            return "–"
        if unit == "B":
            return f"{v:.0f} B" if abs(v) < 2**20 else f"{v / 2**20:.0f} MiB"
        if unit == "%":
            return f"{v * 100:.2f} %"
        if unit == "ms":
            return f"{v:.1f} ms"
        if unit == "s":
            return f"{v:.1f} s"
        if unit == "/s":
            return f"{v / 1e6:.2f} M/s" if v >= 1e6 else f"{v / 1e3:.0f} k/s"
        return str(v)
    figures = [
        ("connect + subscribe all", "connect_subscribe_s", "s", None),
        ("server Pss per connection", "server_pss_per_connection_b", "B", "≤ 1 KiB"),
        ("kernel TCP memory (both ends)", "kernel_tcp_mem_b", "B", None),
        (f"idle server CPU, {a.idle:.0f} s, heartbeats every 15 s", "idle_cpu_share_of_core", "%", "≤ 2 % of a core"),
        ("broadcast to all: p50", "broadcast_p50_ms", "ms", None),
        ("broadcast to all: p99", "broadcast_p99_ms", "ms", None),
        ("broadcast to all: last subscriber", "broadcast_max_ms", "ms", "≤ 1/4 of nchan"),
        (f"burst of {a.burst}: deliveries/s", "burst_deliveries_per_s", "/s", None),
        ("lost / duplicated / out of order", None, None, "0"),
    ]
    print(f"\nC{a.subs // 1000}k: {a.subs} SSE subscribers, {a.workers} workers each, {a.procs} load processes; {time.strftime('%Y-%m-%d')}")
    for stopped in (0.0, a.stopped):
        print(f"\n{'all readers' if stopped == 0 else f'{stopped:.0%} stopped readers'}\n")
        print("| figure | Ringgate | nchan | Ringgate/nchan | goal |")
        print("| --- | --- | --- | --- | --- |")
        rg, nc = by.get(("ringgate", stopped)), by.get(("nchan", stopped))
        for r, name in ((rg, "Ringgate"), (nc, "nchan")):
            if r and "error" in r:
                print(f"{name} failed: {r['error'][:300]}\n")
        rg = rg if rg and "error" not in rg else None
        nc = nc if nc and "error" not in nc else None
        for name, key, unit, goal in figures:
            if key is None:
                f = lambda r: f"{r['lost']} / {r['duplicated']} / {r['out_of_order']}" if r else "–"
                print(f"| {name} | {f(rg)} | {f(nc)} | | {goal} |")
                continue
            v, w = (rg or {}).get(key), (nc or {}).get(key)
            ratio = f"{v / w:.2f}" if v is not None and w else ""
            print(f"| {name} | {cell(v, unit)} | {cell(w, unit)} | {ratio} | {goal or ''} |")


if __name__ == "__main__":
    main()
