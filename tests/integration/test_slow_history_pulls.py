"""Slow/hostile clients, scenario 8: concurrent history pulls do not stall publishing (FIELD-FAILURES #3).

1,000,000 events go into one slot (NDJSON batches of 10k). Then single-event publish latency
is measured on a keep-alive connection (2000 POSTs) with no pulls, and again while 50 clients (in
two helper processes, so the test's own GIL does not skew the publisher) loop on
`GET …/events?after=<random retained id>&limit=1000`. Every pull must be an exact window: 1000
events, consecutive seqs (the slot holds every event of the log), the first right after `after`.
Latencies are printed, not asserted.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from rgtest import (RawConnection, disconnects, disconnects_delta, fetch_metrics, percentile, request_bytes,
                    seq_of, wait_sse_zero)

TOTAL = 1_000_000
BATCH = 10_000
PUBLISHES = 2000
PULLERS = 50
PROCS = 2

PULLER = r"""
import http.client, json, random, sys, threading, time
port, slot, epoch, lo, hi, nthreads = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
stop = threading.Event()
lock = threading.Lock()
stats = {"pulls": 0, "errors": [], "max_ms": 0.0}
def worker(k):
    rnd = random.Random(k)
    c = http.client.HTTPConnection("127.0.0.1", int(port), timeout=30)
    while not stop.is_set():
        after = rnd.randint(lo, hi)
        t = time.monotonic()
        try:
            c.request("GET", f"/v1/slots/{slot}/events?after={epoch}-{after}&limit=1000")
            r = c.getresponse()
            body = r.read()
        except Exception as e:
            with lock: stats["errors"].append(f"after={after}: {e!r}")
            c.close(); c = http.client.HTTPConnection("127.0.0.1", int(port), timeout=30)
            continue
        ms = (time.monotonic() - t) * 1000
        err = None
        if r.status != 200:
            err = f"status {r.status}: {body[:200]!r}"
        else:
            d = json.loads(body)
            ev = d["events"]
            seqs = [int(e["id"].rsplit("-", 1)[1]) for e in ev]
            if len(ev) != 1000:
                err = f"{len(ev)} events"
            elif seqs != list(range(after + 1, after + 1001)):
                bad = next(i for i, (a, b) in enumerate(zip(seqs, range(after + 1, after + 1001))) if a != b)
                err = f"not the window after {after}: at {bad} got {seqs[bad]}"
            elif d.get("reset") or d.get("next") != ev[-1]["id"] or any(not e["id"].startswith(epoch + "-") for e in ev):
                err = f"reset={d.get('reset')} next={d.get('next')}"
        with lock:
            stats["pulls"] += 1
            stats["max_ms"] = max(stats["max_ms"], ms)
            if err: stats["errors"].append(f"after={after}: {err}")
threads = [threading.Thread(target=worker, args=(k,), daemon=True) for k in range(nthreads)]
for t in threads: t.start()
while True:
    time.sleep(0.05)
    with lock:
        if stats["pulls"] >= nthreads: break
print("READY", flush=True)
sys.stdin.readline()            # the test closes our stdin to stop us
stop.set()
for t in threads: t.join(30)
with lock:
    stats["errors"] = stats["errors"][:10] + ([f"... {len(stats['errors'])} in all"] if len(stats["errors"]) > 10 else [])
    print(json.dumps(stats), flush=True)
"""


def measure_publish(gw, slot: str, n: int, budget: float = 20.0) -> list[float]:
    """ms per single-event POST on one keep-alive connection."""
    out = []
    with RawConnection(gw.pub_port, timeout=10) as c:
        t_end = time.monotonic() + budget
        for i in range(n):
            req = request_bytes("POST", f"/v1/slots/{slot}/events", body=f"lat{i}".encode())
            t = time.perf_counter()
            c.send(req)
            r = c.read_response(10)
            out.append((time.perf_counter() - t) * 1000)
            assert r.status == 201, f"publish answered {r.status}: {r.body[:200]!r}"
            if time.monotonic() > t_end:
                break
    return out


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_history_pulls_do_not_stall_publishing(gateway):
    gw = gateway("--heartbeat", "15s", workers=2)
    slot = "big"
    base_disc = disconnects(fetch_metrics(gw.sub_port))
    t0 = time.monotonic()
    first = last = None
    for b in range(TOTAL // BATCH):
        body = "".join(f'{{"slot":"{slot}","data":"d{b * BATCH + i}"}}\n' for i in range(BATCH)).encode()
        r = gw.pub.post("/v1/events", content=body, headers={"Content-Type": "application/x-ndjson"}, timeout=30)
        assert r.status_code == 201, f"batch {b} answered {r.status_code}: {r.text[:300]}"
        ids = r.json()["ids"]
        assert len(ids) == BATCH
        first = first or ids[0]
        last = ids[-1]
    t_fill = time.monotonic() - t0
    assert seq_of(last) - seq_of(first) == TOTAL - 1
    h = gw.history(slot, limit=1)
    oldest, head = h["oldest"], h["head"]
    assert head == last and oldest == first, f"history says oldest {oldest} head {head}; published {first}..{last}"
    epoch = oldest.split("-")[0]
    lo, hi = seq_of(oldest), seq_of(head) - 1000          # `after` values with a full window behind them

    quiet = measure_publish(gw, slot, PUBLISHES)

    procs = []
    try:
        per = PULLERS // PROCS
        for _ in range(PROCS):
            # The pullers' own JSON parsing (Python, 50 threads) runs at a lower priority than
            # the server and the publisher: what is measured is whether the *server's* pull
            # work holds up publishing, not whether this test's client can starve a 2-core box.
            procs.append(subprocess.Popen([sys.executable, "-c", PULLER, str(gw.sub_port), slot, epoch, str(lo),
                                           str(hi), str(per)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                          stderr=subprocess.PIPE, text=True, preexec_fn=lambda: os.nice(10)))
        for p in procs:
            line = p.stdout.readline()
            assert line.strip() == "READY", f"puller did not start: {line!r} {p.stderr.read()[:2000] if p.poll() is not None else ''}"
        busy = measure_publish(gw, slot, PUBLISHES)
        results = []
        for p in procs:
            out, err = p.communicate("\n", timeout=60)
            assert p.returncode == 0, f"puller exited {p.returncode}: {err[-2000:]}"
            results.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait(5)
    pulls = sum(r["pulls"] for r in results)
    errors = [e for r in results for e in r["errors"]]
    q50, q99, b50, b99 = (percentile(quiet, 50), percentile(quiet, 99), percentile(busy, 50), percentile(busy, 99))
    print(f"\n{TOTAL} events published in {t_fill:.1f}s; publish latency over {len(quiet)}/{len(busy)} POSTs: "
          f"no pulls p50 {q50:.2f} ms p99 {q99:.2f} ms max {max(quiet):.2f} ms; with {PULLERS} pullers "
          f"p50 {b50:.2f} ms p99 {b99:.2f} ms max {max(busy):.2f} ms; ratio p50 x{b50 / q50:.2f} p99 x{b99 / q99:.2f}; "
          f"{pulls} pulls of 1000 during the run, slowest pull {max(r['max_ms'] for r in results):.0f} ms")
    assert not errors, f"{len(errors)} pulls were not exact windows: {errors[:5]}"
    assert pulls >= PULLERS, pulls
    m = wait_sse_zero(gw.sub_port)
    delta = disconnects_delta(disconnects(m), base_disc)
    print(f"disconnects delta: {delta}")
    assert not {k: v for k, v in delta.items() if k not in ("peer_closed",)}, delta
