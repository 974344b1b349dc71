#!/usr/bin/env python3
"""Redis's own ceiling on this machine: redis-benchmark XADD (the cluster's entry shape) and
EVALSHA of the cluster's publish script (read from Sources/Upstream/ClusterScripts.swift) with n events per call.
Prints one JSON object per row (or writes RAW_DIR/cluster-redis-<row>.redis.<rep>.json), with
the Redis server's CPU share over the run from /proc/PID/stat.

  redis_rows.py --port P --pid REDIS_PID [--raw DIR --rep R] [--batches 1,100] [--events 600000]
"""
import argparse, csv, io, json, os, subprocess, sys, time

HERE = os.path.dirname(os.path.abspath(__file__))
EPOCH = "0a1b2c3d"
RETAIN = "1000000"
TIME_MS = "1764644000000"
# The publish rows' body: "t=<CLOCK_MONOTONIC ns> n=<k>", 34 bytes here.
DATA = "t=%019d n=%010d" % (1, 1)


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cli(port, *args):
    r = subprocess.run(["redis-cli", "-p", str(port), *args], capture_output=True, text=True, timeout=30)
    if r.returncode != 0 or r.stdout.startswith("ERR"):
        sys.exit(f"redis-cli {args[0]}: {r.stdout.strip()} {r.stderr.strip()}")
    return r.stdout.strip()


def bench(port, pid, pipeline, requests, command):
    c0, t0 = cpu_seconds(pid), time.monotonic()
    r = subprocess.run(["redis-benchmark", "-p", str(port), "-c", "50", "-P", str(pipeline), "-n", str(requests),
                        "--csv", *command], capture_output=True, text=True, timeout=120)
    t1, c1 = time.monotonic(), cpu_seconds(pid)
    if r.returncode != 0:
        sys.exit(f"redis-benchmark failed: {r.stderr.strip()[:300]}")
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    if not rows:
        sys.exit(f"redis-benchmark printed no result: {r.stdout[:300]} {r.stderr[:300]}")
    return float(rows[-1]["rps"]), (c1 - c0) / (t1 - t0), float(rows[-1]["p50_latency_ms"])


def publish_script() -> str:
    """The gateway's own publish script, read from its source (one copy: what is timed here is
    what `ringgate serve --upstream` runs)."""
    src = os.path.join(HERE, "..", "..", "Sources", "Upstream", "ClusterScripts.swift")
    with open(src) as f:
        text = f.read()
    start = text.index('public static let publish = """') + len('public static let publish = """')
    body = text[start:text.index('"""', start)]
    lines = body.strip("\n").split("\n")
    indent = min(len(l) - len(l.lstrip()) for l in lines if l.strip())
    return "\n".join(l[indent:] for l in lines)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--raw")
    ap.add_argument("--rep", default="1")
    ap.add_argument("--batches", default="1,100")
    ap.add_argument("--events", type=int, default=600000, help="events per row (bounds its time)")
    ap.add_argument("--no-xadd", action="store_true")
    a = ap.parse_args()
    sha = cli(a.port, "SCRIPT", "LOAD", publish_script())
    rows = []
    if not a.no_xadd:
        key = f"bench:xadd:{os.getpid()}"
        cmd = ["XADD", key, "MAXLEN", "~", RETAIN, "*", "seq", "123456", "epoch", EPOCH, "slot", "bench",
               "type", "message", "data", DATA, "time", TIME_MS]
        rps, cpu, p50 = bench(a.port, a.pid, 64, a.events, cmd)
        rows.append({"row": "xadd", "events_per_call": 1, "calls_per_s": rps, "events_per_s": rps,
                     "redis_cpu_util": cpu, "p50_ms": p50, "pipeline": 64, "clients": 50,
                     "command": " ".join(cmd[:6]) + " seq epoch slot type data time (data %d B)" % len(DATA)})
        cli(a.port, "DEL", key)
    for n in [int(x) for x in a.batches.split(",") if x]:
        key = f"bench:eval:{os.getpid()}:{n}"
        cli(a.port, "HSET", key + ":meta", "epoch", EPOCH)
        argv = [EPOCH, RETAIN, TIME_MS, str(n)]
        for _ in range(n):
            argv += ["bench", "message", DATA]
        pipeline = max(1, min(64, 6400 // n))  # about as many events in flight for every n
        calls = max(200, a.events // n)
        rps, cpu, p50 = bench(a.port, a.pid, pipeline, calls, ["EVALSHA", sha, "3", key, key + ":seq", key + ":meta", *argv])
        last = int(cli(a.port, "GET", key + ":seq"))
        # redis-benchmark rounds the requests up to whole pipelines; every call must have written.
        if last < calls * n or last % n:
            sys.exit(f"EVALSHA n={n}: the seq counter is {last}, expected ≥ {calls * n} in steps of {n} (did the script fail?)")
        rows.append({"row": f"eval{n}", "events_per_call": n, "calls_per_s": rps, "events_per_s": rps * n,
                     "redis_cpu_util": cpu, "p50_ms": p50, "pipeline": pipeline, "clients": 50})
        cli(a.port, "DEL", key, key + ":seq", key + ":meta")
    for r in rows:
        r["mode"] = "redis"
        r["label"] = f"cluster-redis-{r['row']}/redis/{a.rep}"
        if a.raw:
            with open(os.path.join(a.raw, f"cluster-redis-{r['row']}.redis.{a.rep}.json"), "w") as f:
                json.dump(r, f)
        print(json.dumps(r))


if __name__ == "__main__":
    main()
