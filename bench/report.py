#!/usr/bin/env python3
"""Medians of the raw ringgate-bench results, Ringgate/nchan ratios, goals; JSON, Markdown, PNG."""
import argparse, glob, json, os, statistics, subprocess, sys, time


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except Exception as e:  # noqa: BLE001
        return {"error": str(e)}


def one_line(d):
    if "error" in d:
        return "ERROR " + d["error"][:200]
    m = d.get("mode")
    if m in ("fanout", "latency", "stopped-readers"):
        lat = d["latency"]
        return (f"{d['deliveries_per_s']:.0f} deliveries/s, p50 {lat['p50_us']:.0f} us, p99 {lat['p99_us']:.0f} us, "
                f"lost {d['lost']} dup {d['duplicated']} ooo {d['out_of_order']}, server cpu {d['server_cpu_util']:.2f}, "
                f"client cpu {d['client_cpu_util']:.2f}"
                + (f" ({d['client_procs']} processes)" if d.get("client_procs", 1) > 1 else "")
                + f", machine busy {d.get('machine_cpu_busy', 0):.2f}, "
                f"pss growth {d['server_pss_growth'] / 2**20:.1f} MiB")
    if m == "idle-memory":
        return f"{d['server_pss_per_connection']:.0f} B/connection"
    if m == "publish":
        if d.get("events_per_s") is None:
            return d.get("note", "n/a")
        return (f"{d['events_per_s']:.0f} events/s ({d['requests_non2xx']} non-2xx), client cpu {d['client_cpu_util']:.2f}"
                + (f", redis cpu {d['redis_cpu_util']:.2f}" if "redis_cpu_util" in d else ""))
    if m == "redis":
        return (f"{d['events_per_s']:.0f} events/s ({d['calls_per_s']:.0f} calls/s of {d['events_per_call']} events), "
                f"redis cpu {d['redis_cpu_util']:.2f}")
    if m == "history":
        if "sizes" not in d:
            return d.get("note", "n/a")
        return "; ".join(f"{s['slot_events']}: newest p50/p99 {s['newest_1000']['p50_us']:.0f}/{s['newest_1000']['p99_us']:.0f} us, "
                         f"after p50/p99 {s['after_limit_1000']['p50_us']:.0f}/{s['after_limit_1000']['p99_us']:.0f} us"
                         for s in d["sizes"])
    return json.dumps(d)[:200]


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


# ---- cluster block (issue 12, bench/cluster.sh) --------------------------------------------
# Its own table: the columns are "cluster" and the reference it is held against (Redis's own
# rate, or the single-host gateway under the same load), not Ringgate and nchan.
def cluster_table(raw, fmt):
    def m(scen, server, f):
        out = []
        for d in raw.get((scen, server), []):
            if "error" in d:
                continue
            try:
                out.append(f(d))
            except (KeyError, TypeError):
                pass
        return med(out)

    if not any(k[0].startswith("cluster-") for k in raw):
        return [], []
    rows = []

    def row(fig, val, ref, goal, ok, unit, extra=""):
        ratio = (val / ref) if (val is not None and ref not in (None, 0)) else None
        rows.append({"figure": fig, "cluster": val, "reference": ref, "ratio": ratio, "unit": unit, "goal": goal,
                     "extra": extra, "met": ok(val, ref, ratio) if val is not None else None})

    ev = lambda d: d["events_per_s"]
    rcpu = lambda d: d["redis_cpu_util"]

    def cpu_note(scen, server):
        v = m(scen, server, rcpu)
        return f"Redis CPU {v:.2f}" if v is not None else ""

    xadd = m("cluster-redis-xadd", "redis", ev)
    row("Redis XADD, redis-benchmark -P 64 × 50 clients (the engine's ceiling; reference: itself)", xadd, xadd,
        "(reference)", lambda v, r, x: None, "/s", cpu_note("cluster-redis-xadd", "redis"))
    for n in (1, 100):
        scen = f"cluster-redis-eval{n}"
        calls = m(scen, "redis", lambda d: d["calls_per_s"])
        row(f"Redis EVALSHA of the publish script, {n} event(s) per call, events/s (reference: XADD)",
            m(scen, "redis", ev), xadd, "(report)", lambda v, r, x: None, "/s",
            f"{fmt(calls, '/s')} calls; {cpu_note(scen, 'redis')}" if calls else "")
    row("cluster publish, single POSTs, 2 hosts × 2 conns × 32 pipelined (reference: XADD)",
        m("cluster-publish-single", "cluster", ev), xadd, "≥ 0.5× XADD", lambda v, r, x: x is not None and x >= 0.5, "/s",
        cpu_note("cluster-publish-single", "cluster"))
    row("cluster publish, NDJSON batches of 1000, 2 hosts × 2 conns × 8 (reference: XADD)",
        m("cluster-publish-batch", "cluster", ev), xadd, "≥ 1.0× XADD", lambda v, r, x: x is not None and x >= 1.0, "/s",
        cpu_note("cluster-publish-batch", "cluster"))
    for q in ("p50", "p99"):
        f = lambda d, q=q: d["latency"][f"{q}_us"]
        c, s1 = m("cluster-latency", "cluster", f), m("cluster-latency", "ringgate", f)
        if q == "p50":
            row("latency p50, publish at A → receive at B, 100 subscribers, 10k deliveries/s (reference: one host)",
                c, s1, "≤ single-host + 1 ms", lambda v, r, x: r is not None and v <= r + 1000, "µs",
                f"+{(c - s1) / 1000:.2f} ms" if (c is not None and s1 is not None) else "")
        else:
            row("latency p99, publish at A → receive at B, same run (reference: one host)", c, s1, "(report)",
                lambda v, r, x: None, "µs")
    f = lambda d: d["deliveries_per_s"]
    lost = [d.get("lost") for d in raw.get(("cluster-fanout", "cluster"), []) if "error" not in d]
    n = next((d.get("subscribers") for k in (("cluster-fanout", "cluster"), ("cluster-fanout", "ringgate"))
              for d in raw.get(k, []) if "error" not in d), None)
    row(f"fan-out deliveries/s, {n or '?'} subscribers split over A and B, publish at A (reference: one host)",
        m("cluster-fanout", "cluster", f), m("cluster-fanout", "ringgate", f), "lost = 0",
        lambda v, r, x: bool(lost) and all(l == 0 for l in lost), "/s", f"lost {sum(l or 0 for l in lost)} over {len(lost)} run(s)")

    lines = ["", "Cluster (issue 12, `bench/cluster.sh`): one redis-server (no persistence), hosts A and B "
             "(`serve --upstream`, 1 worker each), a single-host gateway (2 workers) as the reference.", "",
             "| figure | cluster | reference | cluster/reference | goal | met | notes |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        ratio = f"{r['ratio']:.2f}" if r["ratio"] is not None else "–"
        met = {True: "yes", False: "**no**", None: "–"}[r["met"]]
        lines.append(f"| {r['figure']} | {fmt(r['cluster'], r['unit'])} | {fmt(r['reference'], r['unit'])} | {ratio} | "
                     f"{r['goal']} | {met} | {r['extra']} |")
    return rows, lines


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--one")
    ap.add_argument("--results")
    ap.add_argument("--machine", default="")
    ap.add_argument("--elapsed", default="")
    ap.add_argument("--quick", default="0")
    ap.add_argument("--cluster-only", action="store_true", help="print only the cluster table (bench/cluster.sh alone)")
    a = ap.parse_args()
    if a.one:
        print(one_line(load(a.one)))
        return
    raw = {}
    for p in sorted(glob.glob(os.path.join(a.results, "raw", "*.json"))):
        scen, server, rep, _ = os.path.basename(p).rsplit(".", 3)
        raw.setdefault((scen, server), []).append(load(p))

    def vals(scen, server, f):
        out = []
        for d in raw.get((scen, server), []):
            if "error" in d:
                continue
            try:
                out.append(f(d))
            except (KeyError, TypeError):
                pass
        return out

    def m(scen, server, f):
        return med(vals(scen, server, f))

    def procs_note(scen, servers=("ringgate", "nchan")):
        """' (K load processes)' when a run of the scenario had ringgate-bench --procs K > 1."""
        k = max([d.get("client_procs", 1) for sv in servers for d in raw.get((scen, sv), []) if "error" not in d] or [1])
        return f" ({k} load processes)" if k > 1 else ""

    rows = []  # figure, ringgate, nchan, ratio, goal text, met

    def row(fig, rg, nc, goal, ok, unit=""):
        ratio = (rg / nc) if (rg is not None and nc not in (None, 0)) else None
        rows.append({"figure": fig, "ringgate": rg, "nchan": nc, "ratio": ratio, "unit": unit, "goal": goal,
                     "met": ok(rg, nc, ratio) if rg is not None else None})

    sizes = sorted({int(k[0].split("-")[1]) for k in raw if k[0].startswith("fanout-")})
    for n in sizes:
        f = lambda d: d["deliveries_per_s"]
        row(f"fan-out deliveries/s, {n} subscribers", m(f"fanout-{n}", "ringgate", f), m(f"fanout-{n}", "nchan", f),
            "≥ 4× nchan", lambda r, c, x: x is not None and x >= 4, "/s")
    for n in sizes:
        for q in ("p50", "p99"):
            f = lambda d, q=q: d["latency"][f"{q}_us"]
            row(f"latency {q} at 50k deliveries/s, {n} subscribers{procs_note(f'latency-{n}')}", m(f"latency-{n}", "ringgate", f),
                m(f"latency-{n}", "nchan", f), "p99 ≤ 1/5 of nchan" if q == "p99" else "(p50: report)",
                (lambda r, c, x: x is not None and x <= 0.2) if q == "p99" else (lambda r, c, x: None), "µs")
    for n in sizes:
        # The load generator is one thread: the last of an event's N deliveries is parsed no
        # sooner than N × its own CPU per delivery after the first, whatever the server does.
        # Ringgate column: that floor in Ringgate's runs; nchan column: nchan's p99; the ratio
        # is then the best p99 ratio this client could show on this machine.
        # With --procs K each process parses N/K of an event's deliveries (client_cpu_s is their sum).
        f = lambda d, n=n: 0.99 * n / d.get("client_procs", 1) * d["client_cpu_s"] / d["deliveries"] * 1e6
        row(f"latency p99 floor of the load generator (0.99 × N × its CPU per delivery) / nchan's p99, {n} subscribers"
            f"{procs_note(f'latency-{n}')}",
            m(f"latency-{n}", "ringgate", f), m(f"latency-{n}", "nchan", lambda d: d["latency"]["p99_us"]),
            "(context: the lowest ratio this client can show)", lambda r, c, x: None, "µs")
    # Which side is the limit (issue 15): the load generator is one thread, the server has
    # 2 workers; a share near 1.0 of a core on the client's side means the row measures the
    # client. Medians over the repetitions, in cores.
    for scen in [f"{k}-{n}" for k in ("fanout", "ws-fanout", "latency") for n in sizes]:
        if not raw.get((scen, "ringgate")):
            continue
        pn = procs_note(scen)
        row(f"{scen}: load generator CPU, cores ({pn[2:-1] + ', summed' if pn else '1 thread'})",
            m(scen, "ringgate", lambda d: d["client_cpu_util"]), m(scen, "nchan", lambda d: d["client_cpu_util"]),
            "(context: ≈ 1.0 per process = the client is the limit)" if pn else "(context: ≈ 1.0 = the client is the limit)",
            lambda r, c, x: None, "cores")
        row(f"{scen}: server CPU, cores (2 workers)", m(scen, "ringgate", lambda d: d["server_cpu_util"]),
            m(scen, "nchan", lambda d: d["server_cpu_util"]), "(context: the machine has 2 cores in all)",
            lambda r, c, x: None, "cores")
    f = lambda d: d["server_pss_per_connection"]
    row("server memory per idle SSE connection", m("idle-memory", "ringgate", f), m("idle-memory", "nchan", f),
        "≤ 1/4 of nchan", lambda r, c, x: x is not None and x <= 0.25, "B")
    # stopped readers
    for server in ("ringgate", "nchan"):
        pass
    g = lambda d: d["server_pss_growth"]
    p = lambda d: d["latency"]["p99_us"]
    rg_growth, nc_growth = m("stopped-10pct", "ringgate", g), m("stopped-10pct", "nchan", g)
    row("10% stopped readers: server Pss growth", rg_growth, nc_growth,
        "bounded by config (≤ 64 MiB here)", lambda r, c, x: r is not None and r <= 64 * 2**20, "B")
    for server in ("ringgate", "nchan"):
        b, s = m("stopped-baseline", server, p), m("stopped-10pct", server, p)
        rows.append({"figure": f"10% stopped readers: fast p99 / baseline p99 ({server})", "ringgate": s if server == "ringgate" else None,
                     "nchan": s if server == "nchan" else None, "ratio": (s / b) if (s and b) else None, "unit": "µs",
                     "goal": "unchanged (≤ 1.25× its baseline)" if server == "ringgate" else "(peer)",
                     "met": ((s / b) <= 1.25 if (s and b) else None) if server == "ringgate" else None,
                     "baseline": b})
    # history
    hist = {}
    for d in raw.get(("history", "ringgate"), []):
        for s in d.get("sizes", []):
            hist.setdefault(s["slot_events"], {"newest": [], "after": [], "newest99": [], "after99": []})
            h = hist[s["slot_events"]]
            h["newest"].append(s["newest_1000"]["p50_us"]); h["newest99"].append(s["newest_1000"]["p99_us"])
            h["after"].append(s["after_limit_1000"]["p50_us"]); h["after99"].append(s["after_limit_1000"]["p99_us"])
    base = None
    for size in sorted(hist):
        h = hist[size]
        for kind in ("newest", "after"):
            p50, p99 = med(h[kind]), med(h[kind + "99"])
            if base is None:
                base = {}
            base.setdefault(kind, p50)
            flat = p50 is not None and base[kind] and p50 <= 1.5 * base[kind]
            rows.append({"figure": f"history {'last 1000' if kind == 'newest' else 'after=X&limit=1000'}, slot of {size} events (p50 / p99 µs, client-timed)",
                         "ringgate": p50, "nchan": None, "ratio": None, "unit": "µs", "p99": p99,
                         "goal": "flat, ≤ 1 ms", "met": bool(flat and p99 is not None and p99 <= 1000)})
    f = lambda d: d["events_per_s"]
    row("publish, single POSTs (4 keep-alive conns × 32 pipelined)", m("publish-single", "ringgate", f),
        m("publish-single", "nchan", f), "≥ 4× nchan", lambda r, c, x: x is not None and x >= 4, "/s")
    rows.append({"figure": "publish, NDJSON batches of 1000", "ringgate": m("publish-batch", "ringgate", f), "nchan": None,
                 "ratio": None, "unit": "/s", "goal": "≥ 2.5M events/s (nchan: n/a)",
                 "met": (m("publish-batch", "ringgate", f) or 0) >= 2.5e6})
    # The single writer (issue 15): ingest CPU per event, user + system, from /proc/PID/stat.
    for scen, what, goal in (("publish-single", "single POSTs", 1.0), ("publish-batch", "NDJSON batches of 1000", None)):
        cpu = m(scen, "ringgate", lambda d: d["ingest_cpu_us_per_event"])
        if cpu is None:
            continue
        user = m(scen, "ringgate", lambda d: d["ingest_user_us_per_event"])
        rows.append({"figure": f"ingest CPU per event, {what} (user {user:.2f} µs of it)" if user is not None else f"ingest CPU per event, {what}",
                     "ringgate": cpu, "nchan": None, "ratio": None, "unit": "µs",
                     "goal": f"≤ {goal} µs" if goal else "(report)", "met": (cpu <= goal) if goal else None})
    for n in sizes:
        f = lambda d: d["server_cpu_us_per_delivery"]
        row(f"server CPU per delivery (fan-out, {n} subscribers)", m(f"fanout-{n}", "ringgate", f),
            m(f"fanout-{n}", "nchan", f), "≤ 1/4 of nchan", lambda r, c, x: x is not None and x <= 0.25, "µs")

    # WebSocket subscribers (issue 15): fan-out against nchan's WebSocket endpoint.
    for n in sizes:
        f = lambda d: d["deliveries_per_s"]
        if m(f"ws-fanout-{n}", "ringgate", f) is None and m(f"ws-fanout-{n}", "nchan", f) is None:
            continue
        row(f"WebSocket fan-out deliveries/s, {n} subscribers", m(f"ws-fanout-{n}", "ringgate", f),
            m(f"ws-fanout-{n}", "nchan", f), "≥ 4× nchan", lambda r, c, x: x is not None and x >= 4, "/s")
        f = lambda d: d["server_cpu_us_per_delivery"]
        row(f"WebSocket server CPU per delivery ({n} subscribers)", m(f"ws-fanout-{n}", "ringgate", f),
            m(f"ws-fanout-{n}", "nchan", f), "≤ 1/4 of nchan", lambda r, c, x: x is not None and x <= 0.25, "µs")

    # The epoll backend (issue 11): the same build on --io epoll, against nchan and io_uring.
    for n in sizes:
        f = lambda d: d["deliveries_per_s"]
        ep, ur, nc = m(f"fanout-{n}", "ringgate-epoll", f), m(f"fanout-{n}", "ringgate", f), m(f"fanout-{n}", "nchan", f)
        if ep is None:
            continue
        row(f"epoll: fan-out deliveries/s, {n} subscribers", ep, nc, "≥ 4× nchan",
            lambda r, c, x: x is not None and x >= 4, "/s")
        rows.append({"figure": f"epoll / io_uring fan-out, {n} subscribers (Ringgate column: epoll; nchan column: io_uring)",
                     "ringgate": ep, "nchan": ur, "ratio": (ep / ur) if ur else None, "unit": "/s",
                     "goal": "≥ 0.7× io_uring", "met": (ep / ur >= 0.7) if ur else None})
    for n in sizes:
        for q in ("p50", "p99"):
            f = lambda d, q=q: d["latency"][f"{q}_us"]
            ep = m(f"latency-{n}", "ringgate-epoll", f)
            if ep is None:
                continue
            row(f"epoll: latency {q} at 50k deliveries/s, {n} subscribers{procs_note(f'latency-{n}', ('ringgate-epoll', 'nchan'))}",
                ep, m(f"latency-{n}", "nchan", f),
                "(report)", lambda r, c, x: None, "µs")
    for n in sizes:
        f = lambda d: d["server_cpu_us_per_delivery"]
        ep, ur = m(f"fanout-{n}", "ringgate-epoll", f), m(f"fanout-{n}", "ringgate", f)
        if ep is None:
            continue
        rows.append({"figure": f"epoll − io_uring server CPU per delivery, {n} subscribers (Ringgate column: epoll; nchan column: io_uring)",
                     "ringgate": ep, "nchan": ur, "ratio": (ep / ur) if ur else None, "unit": "µs",
                     "goal": f"(report: {((ep - ur) * 1000):.0f} ns more per delivery)" if ur else "(report)", "met": None})

    # correctness and load generator load
    notes = []
    for (scen, server), ds in sorted(raw.items()):
        for d in ds:
            if "error" in d:
                notes.append(f"{scen}/{server}: ERROR {d['error'][:300]}")
                continue
            for k in ("lost", "duplicated", "out_of_order", "resets", "readers_closed_by_server", "publish_non2xx", "requests_non2xx"):
                if d.get(k):
                    notes.append(f"{d.get('label')}: {k} = {d[k]}" + (f" (examples {d.get('lost_examples')})" if k == "lost" else ""))
            per_proc = d.get("client_cpu_util_per_process") or [d.get("client_cpu_util", 0)]
            if max(per_proc) > 0.85:
                notes.append(f"{d.get('label')}: load generator CPU {max(per_proc):.2f} of a core"
                             + (f" (busiest of {len(per_proc)} processes)" if len(per_proc) > 1 else "")
                             + " (it may be the bottleneck)")
    busy = [d.get("machine_cpu_busy") for ds in raw.values() for d in ds if d.get("machine_cpu_busy") is not None]
    loads = [float(d["loadavg"]) for ds in raw.values() for d in ds if d.get("loadavg")]

    def fmt(v, unit):
        if v is None:
            return "n/a"
        if unit == "B":
            return f"{v / 2**20:.1f} MiB" if abs(v) >= 2**20 else f"{v:.0f} B"
        if unit == "µs":
            return f"{v:.3f} µs" if v < 1 else (f"{v:.2f} µs" if v < 10 else f"{v:.0f} µs")
        if unit == "/s":
            return f"{v / 1e6:.2f} M/s" if v >= 1e6 else f"{v / 1e3:.1f} k/s"
        return f"{v:.3g}"

    lines = [f"Run {time.strftime('%Y-%m-%d %H:%M %Z')}; {a.machine}; wall time {a.elapsed} s;"
             f" {'quick (1 run each)' if a.quick == '1' else 'median of 3 repetitions'}.",
             f"Machine CPU busy during runs: median {med(busy) or 0:.2f} (1.0 = both cores), load average median {med(loads) or 0:.1f}.", "",
             "| figure | Ringgate | nchan | Ringgate/nchan | goal | met |", "| --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        rg = fmt(r["ringgate"], r["unit"])
        if "p99" in r:
            rg += f" / {fmt(r['p99'], r['unit'])}"
        nc = fmt(r["nchan"], r["unit"])
        if "baseline" in r:
            b = fmt(r["baseline"], r["unit"])
            if r["ringgate"] is not None:
                rg += f" (baseline {b})"
            else:
                nc += f" (baseline {b})"
        ratio = f"{r['ratio']:.2f}" if r["ratio"] is not None else "–"
        met = {True: "yes", False: "**no**", None: "–"}[r["met"]]
        lines.append(f"| {r['figure']} | {rg} | {nc} | {ratio} | {r['goal']} | {met} |")
    crows, clines = cluster_table(raw, fmt)
    if a.cluster_only:  # leaves table.md, summary.json and the chart of a whole run alone
        print("\n".join(clines[1:]))
        with open(os.path.join(a.results, "cluster-table.md"), "w") as f:
            f.write("\n".join(clines[1:] + [""] + [f"- {n}" for n in notes if n.startswith("cluster-")]) + "\n")
        return
    lines += clines
    if notes:
        lines += ["", "Notes (correctness, load generator):", ""] + [f"- {n}" for n in notes[:40]]
    table = "\n".join(lines)
    print(table)
    with open(os.path.join(a.results, "table.md"), "w") as f:
        f.write(table + "\n")
    with open(os.path.join(a.results, "summary.json"), "w") as f:
        json.dump({"rows": rows, "cluster_rows": crows, "notes": notes, "machine": a.machine, "elapsed_s": a.elapsed,
                   "raw": {f"{k[0]}/{k[1]}": v for k, v in raw.items()}}, f, indent=1, default=str)

    # chart: log-scale bars of the ratio per figure (goal lines as text)
    dat = os.path.join(a.results, "chart.dat")
    with open(dat, "w") as f:
        k = 0
        for r in rows:
            if r["ratio"] is None or r["ratio"] <= 0:
                continue
            label = r["figure"].replace('"', "'")[:48]
            f.write(f'{k} {r["ratio"]:.6g} "{label}"\n')
            k += 1
    gp = f"""set terminal pngcairo size 1400,800 font ',9'
set output '{os.path.join(a.results, 'chart.png')}'
set title 'Ringgate / nchan per figure (log scale; >1 = Ringgate higher)'
set logscale y
set style fill solid 0.6
set boxwidth 0.7
set xtics rotate by -35 left
set grid ytics
set bmargin 14
set rmargin 20
plot '{dat}' using 1:2:xtic(3) with boxes notitle, 1 with lines lt 0 notitle
"""
    try:
        subprocess.run(["gnuplot"], input=gp.encode(), check=True, timeout=30)
    except Exception as e:  # noqa: BLE001
        print(f"chart: gnuplot failed: {e}", file=sys.stderr)


if __name__ == "__main__":
    main()
