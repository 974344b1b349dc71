// ringgate-bench: one io_uring loop that drives SSE subscribers and keep-alive publishers
// against Ringgate or nginx + nchan, and prints one JSON object with the measurements.
import CRinggateSys
import IO
import Foundation
@preconcurrency import Glibc

let usage = """
usage: ringgate-bench MODE [options]
modes: fanout | latency | idle-memory | stopped-readers | history | publish | scale
  --transport T        sse (default) or ws: subscribers open WebSockets (the sub URL is the WebSocket
                       route, e.g. /v1/slots/{slot}/ws) and read text messages
  --sub-url URL        subscribe URL, {slot} is replaced (http://127.0.0.1:P/v1/slots/{slot}/stream);
                       repeatable: subscribers are dealt round-robin over the URLs (several hosts)
  --pub-url URL        publish URL for single events (body = data), {slot} replaced; repeatable:
                       publisher connections are dealt round-robin over the URLs (same path on each)
  --batch-url URL      NDJSON batch URL (Ringgate: http://127.0.0.1:P/v1/events); absent = n/a; repeatable
  --history-url URL    history URL (Ringgate: http://127.0.0.1:P/v1/slots/{slot}/events); absent = n/a
  --pub-method M       method of a single publish (POST)
  --slot NAME          slot / channel name (default: bench-<mode>-<pid>)
  --subs N             SSE subscribers (1000)
  --pub-conns K        publisher keep-alive connections (1, pipelined, so events keep their order; publish mode 4)
  --depth D            pipelined requests per publisher connection (publish mode, 32)
  --window W           fanout: events in flight, published but not yet received by every reader (500000/N, 16…512)
  --duration S         seconds of publishing (fanout 5, latency 8, publish 3)
  --events M           most events to publish (fanout default from N, bounded memory)
  --rate R             latency / stopped-readers: offered deliveries per second (50000)
  --procs K            latency: K load processes (1): this one (the publisher and its share of
                       the subscribers) and K-1 subscriber-only copies of itself; one slot, one
                       publisher, the same offered rate; latencies, counts and CPU are summed
  --taskset-cpus LIST  latency: pin load process j to CPU LIST[j mod len] ("0,1", "0-3"; default none)
  --payload B          extra bytes of padding in each event (0; stopped-readers 8192)
  --stopped-fraction F stopped-readers: share of subscribers that never read (0.1)
  --stopped-rcvbuf B   their SO_RCVBUF (4096)
  --batch N            publish mode: events per NDJSON batch (0 = single POSTs only)
  --sizes a,b,c        history: slot sizes (1000,100000,1000000)
  --queries Q          history: timed GETs per query kind and size (200)
  --pid-tree PID       a server root process; it and its descendants are measured (repeatable)
  --pids a,b,c         more server pids
  --ingest-pid PID     publish: also report this process's CPU per event (user, system)
  --label TEXT         copied into the output
  --bind ADDR          source address of the subscriber sockets (127.0.0.2, …)
  --deadline S         scale: seconds to wait for every event after the ready line (300)
  --head-timeout S     seconds a chunk of 200 new subscribers may wait for its response heads (20)
"""

var args = CommandLine.arguments.dropFirst()
guard let mode = args.first, !mode.hasPrefix("-") else { print(usage); exit(2) }
args = args.dropFirst()
nonisolated(unsafe) var opt: [String: [String]] = [:]
while let k = args.first {
    args = args.dropFirst()
    guard k.hasPrefix("--"), let v = args.first else { die("bad argument \(k)\n\(usage)") }
    args = args.dropFirst()
    opt[String(k.dropFirst(2)), default: []].append(v)
}
func s(_ k: String) -> String? { opt[k]?.last }
func i(_ k: String, _ d: Int) -> Int { s(k).flatMap { Int($0) } ?? d }
func d(_ k: String, _ v: Double) -> Double { s(k).flatMap { Double($0) } ?? v }

nonisolated(unsafe) var pids = ServerPids()
for t in opt["pid-tree"] ?? [] { if let p = Int32(t) { pids.trees.append(p) } }
for l in opt["pids"] ?? [] { pids.fixed += l.split(separator: ",").compactMap { Int32($0) } }

let slot = s("slot") ?? "bench-\(mode)-\(getpid())-\(nowNs() % 100000)"
switch s("transport") ?? "sse" {
case "sse": webSocketTransport = false
case "ws": webSocketTransport = true
default: die("--transport is sse or ws")
}
sourceAddress = s("bind")
nonisolated(unsafe) var out: [String: Any] = ["mode": mode, "slot": slot, "label": s("label") ?? "",
                                              "transport": webSocketTransport ? "ws" : "sse"]
let pubMethod = s("pub-method") ?? "POST"

nonisolated(unsafe) var machineStart = machineJiffies()
func finish() -> Never {
    let (b1, t1) = machineJiffies()
    if t1 > machineStart.1 { out["machine_cpu_busy"] = (b1 - machineStart.0) / (t1 - machineStart.1) }
    out["loadavg"] = readSmallFile("/proc/loadavg").map { String($0.split(separator: " ").first ?? "") } ?? ""
    let data = try! JSONSerialization.data(withJSONObject: out, options: [.sortedKeys])
    print(String(decoding: data, as: UTF8.self))
    fflush(nil)
    exit(0)
}

// MARK: - shared pieces of the streaming modes

final class Publisher {
    let eng: Engine
    var head: [UInt8]
    var body = [UInt8](repeating: 0, count: 1 << 17)
    let pad: Int
    /// Connection c goes to urls[c % urls.count]; the request head is urls[0]'s (every URL has
    /// the same path: the hosts of a cluster).
    init(eng: Engine, urls: [HTTPURL], conns: Int, pad: Int, bufferBytes: Int) {
        self.eng = eng
        self.pad = pad
        let url = urls[0]
        head = Array("\(pubMethod) \(url.path) HTTP/1.1\r\nHost: \(url.host)\r\nContent-Type: text/plain\r\nContent-Length: ".utf8)
        for c in 0..<conns { _ = eng.addPublisher(urls[c % urls.count], bufferBytes: bufferBytes) }
    }
    /// Queues event n stamped with the current time; false when every connection is full.
    func publish(_ n: Int) -> Bool {
        var best: PubConn? = nil
        for c in eng.pubs where !c.closed && (best == nil || c.outstanding < best!.outstanding) { best = c }
        guard let c = best else { return false }
        return body.withUnsafeMutableBufferPointer { b in
            let p = b.baseAddress!
            p[0] = UInt8(ascii: "t"); p[1] = UInt8(ascii: "=")
            var k = 2
            k += putUInt(nowNs(), p + k)
            p[k] = 32; p[k + 1] = UInt8(ascii: "n"); p[k + 2] = UInt8(ascii: "=")
            k += 3
            k += putUInt(UInt64(n), p + k)
            if pad > 0 {
                p[k] = 32; p[k + 1] = UInt8(ascii: "p"); p[k + 2] = UInt8(ascii: "=")
                k += 3
                (p + k).update(repeating: UInt8(ascii: "x"), count: min(pad, b.count - k))
                k += min(pad, b.count - k)
            }
            return head.withUnsafeBytes { h in eng.enqueue(c, head: h, body: UnsafeRawBufferPointer(start: p, count: k)) }
        }
    }
}

/// Every value of a repeatable URL option, {slot} replaced.
func need(_ k: String) -> [HTTPURL] {
    guard let us = opt[k], !us.isEmpty else { die("--\(k) is required for \(mode)") }
    return us.map { HTTPURL($0).with(slot: slot) }
}

nonisolated(unsafe) var toStop: [Int] = []

/// Opens the subscribers in chunks, each chunk waiting for its response heads.
/// Subscriber j goes to urls[j % urls.count].
func openSubscribers(_ eng: Engine, _ urls: [HTTPURL], count: Int, stopped: Int, stoppedRcvbuf: Int32) {
    let t0 = nowNs()
    var opened = 0
    while opened < count {
        let chunk = min(200, count - opened)
        for k in 0..<chunk {
            let isStopped = opened + k < stopped
            let idx = eng.addSubscriber(urls[(opened + k) % urls.count], rcvbuf: isStopped ? stoppedRcvbuf : 0)
            if isStopped { toStop.append(idx) }  // reads its head and warm-up, then stops
        }
        opened += chunk
        let ok = eng.run(until: nowNs() + UInt64(d("head-timeout", 20) * 1e9)) {
            var pending = 0
            for j in 0..<eng.subCount where eng.subs[j].phase == 0 { pending += 1 }
            return pending == 0
        }
        if !ok { die("subscribers: no response head within \(d("head-timeout", 20)) s (\(eng.subscribedCount) of \(opened) subscribed)") }
    }
    let failed = eng.failedCount
    if failed > 0 {
        let st = (0..<eng.subCount).filter { eng.subs[$0].phase >= 2 }.prefix(3).map { eng.subs[$0].status }
        die("\(failed) subscribers refused (statuses e.g. \(st))")
    }
    out["subscribe_setup_s"] = Double(nowNs() - t0) / 1e9
}

/// Publishes warm-up events (n=0) until every subscriber has received one (and `others()`:
/// the subscriber-only processes of `latency --procs` say theirs have).
func warmUp(_ eng: Engine, _ pub: Publisher, others: () -> Bool = { true }) {
    let t0 = nowNs()
    var sent = 0
    var lastSend: UInt64 = 0
    let ok = eng.run(until: t0 + 30_000_000_000) {
        if eng.warmCount == eng.subCount && others() { return true }
        if nowNs() - lastSend > 1_000_000_000 { _ = pub.publish(0); sent += 1; lastSend = nowNs() }
        return false
    }
    if !ok { die("warm-up: only \(eng.warmCount) of \(eng.subCount) subscribers received the warm-up event in 30 s"
                 + (others() ? "" : " (or a subscriber process is not ready)")) }
    // let stragglers of repeated warm-ups arrive
    eng.run(until: nowNs() + 200_000_000) { eng.outstanding == 0 }
    out["warmup_s"] = Double(nowNs() - t0) / 1e9
    out["warmup_events"] = sent
}

func activeReaders(_ eng: Engine) -> Int {
    (0..<eng.subCount).filter { !eng.subs[$0].stopped && eng.subs[$0].phase == 1 }.count
}

/// Losses, duplicates, reorderings over the reading subscribers, for events 1...published.
func tally(_ eng: Engine, published: Int) {
    var lost: Int64 = 0, dups: Int64 = 0, ooo: Int64 = 0, resets: Int64 = 0, other: Int64 = 0, closed = 0
    var worst: [(Int, Int64)] = []
    for j in 0..<eng.subCount where !eng.subs[j].stopped {
        let sb = eng.subs[j]
        let distinct = sb.received - sb.dups
        let l = Int64(published) - distinct
        lost += max(0, l)
        if l > 0 && worst.count < 5 { worst.append((j, l)) }
        dups += sb.dups; ooo += sb.outOfOrder; resets += sb.resets; other += sb.otherData
        if sb.phase >= 2 { closed += 1 }
    }
    out["lost"] = lost
    out["duplicated"] = dups
    out["out_of_order"] = ooo
    out["resets"] = resets
    out["other_data_lines"] = other
    out["readers_closed_by_server"] = closed
    if !worst.isEmpty { out["lost_examples"] = worst.map { ["subscriber": $0.0, "lost": $0.1] } }
    out["publish_2xx"] = eng.ok2xx
    out["publish_non2xx"] = eng.non2xx
    if !eng.statusSeen.isEmpty { out["publish_statuses"] = Dictionary(uniqueKeysWithValues: eng.statusSeen.map { (String($0.key), $0.value) }) }
}

// MARK: - modes

func streamMode() {
    let n = i("subs", 1000)
    let isLatency = mode == "latency" || mode == "stopped-readers"
    let stoppedFraction = mode == "stopped-readers" ? d("stopped-fraction", 0.1) : 0
    let stopped = Int((Double(n) * stoppedFraction).rounded())
    let duration = d("duration", isLatency ? 8 : 5)
    let rate = d("rate", 50000)
    let readersPlanned = max(1, n - stopped)
    let evRate = rate / Double(readersPlanned)
    let maxEvents: Int
    if isLatency {
        maxEvents = max(1, Int((evRate * duration).rounded(.up)))
    } else {
        maxEvents = i("events", max(1000, min(200_000, 250_000_000 / max(n, 1))))
    }
    let pad = i("payload", mode == "stopped-readers" ? 8192 : 0)
    // latency --procs K: process 0 (this one) publishes and reads its share, processes
    // 1…K-1 (copies of this binary, `--role sub`) only read theirs.
    let procs = i("procs", 1)
    if (opt["procs"] != nil || opt["taskset-cpus"] != nil || opt["role"] != nil) && mode != "latency" {
        die("--procs / --taskset-cpus are for latency mode only")
    }
    guard procs >= 1 && procs <= n else { die("--procs must be 1…--subs") }
    let procIndex = i("index", 0)
    if let list = s("taskset-cpus") {
        guard let cpus = parseCPUList(list) else { die("--taskset-cpus: a list like 0,1 or 0-3: \(list)") }
        let cpu = cpus[procIndex % cpus.count]
        if !pinToCPU(cpu) { die("--taskset-cpus: sched_setaffinity to CPU \(cpu): \(String(cString: strerror(errno)))") }
        out["client_cpus"] = (0..<procs).map { cpus[$0 % cpus.count] }
    }
    if s("role") == "sub" { subscriberProcess(total: n, procs: procs, index: procIndex, maxEvents: maxEvents) }
    let helpers = SubscriberProcesses(procs: procs)
    let myN = share(n, procs, 0)
    let subURL = need("sub-url"), pubURL = need("pub-url")
    let eng: Engine
    do { eng = try Engine(maxSubs: myN, maxEvents: maxEvents, trackBits: true) } catch { die("\(error)") }
    let pub = Publisher(eng: eng, urls: pubURL, conns: i("pub-conns", 1), pad: pad, bufferBytes: 4 << 20)
    eng.perRequest = 1
    let pssBefore = pids.pssBytes()
    openSubscribers(eng, dealtURLs(subURL, procs, 0), count: myN, stopped: stopped,
                    stoppedRcvbuf: Int32(i("stopped-rcvbuf", 4096)))
    if !helpers.all.isEmpty {
        // The others' subscribers too, before the first warm-up event (heartbeats meanwhile).
        if !eng.run(until: nowNs() + 600_000_000_000, { helpers.poll(); return helpers.all.allSatisfy { $0.subscribed } }) {
            die("subscriber processes: not all subscribed in 600 s")
        }
    }
    warmUp(eng, pub, others: { helpers.poll(); return helpers.all.allSatisfy { $0.ready } })
    for j in toStop { eng.stopReading(j) }
    eng.run(until: nowNs() + 100_000_000) { false }
    let ownReaders = activeReaders(eng)
    let readers = ownReaders + helpers.all.reduce(0) { $0 + $1.readers }
    out["subscribers"] = n
    out["stopped_readers"] = stopped
    out["readers"] = readers
    if mode == "latency" { out["client_procs"] = procs }
    out["payload_bytes"] = pad
    eng.hist = Histogram()
    eng.deliveries = 0
    eng.firstDelivery = 0
    eng.ok2xx = 0; eng.non2xx = 0
    let pssStart = pids.pssBytes()
    var pssPeak = pssStart
    let cpu0 = pids.cpuSeconds(), ccpu0 = clientCPUSeconds()
    machineStart = machineJiffies()
    let t0 = nowNs()
    let end = t0 + UInt64(duration * 1e9)
    var next = 1
    var floor = 1
    var floorMoved = t0
    var stalls = 0
    var lastPss = t0
    let window = i("window", min(512, max(16, 500_000 / max(readers, 1))))
    let interval = isLatency ? 1e9 / evRate : 0
    helpers.send("go")   // the others count their CPU from here
    while true {
        let now = nowNs()
        if now >= end || next > maxEvents { break }
        if isLatency {
            while next <= maxEvents && Double(now - t0) >= Double(next - 1) * interval {
                if !pub.publish(next) { break }
                next += 1
            }
        } else {
            while next <= maxEvents && next - floor < window {
                if !pub.publish(next) { break }
                next += 1
            }
        }
        while floor < next && Int(eng.eventCount[floor]) >= ownReaders { floor += 1; floorMoved = now }
        if floor < next && now - floorMoved > 2_000_000_000 { floor += 1; stalls += 1; floorMoved = now }
        if mode == "stopped-readers" && now - lastPss > 2_000_000_000 {
            pssPeak = max(pssPeak, pids.pssBytes()); lastPss = nowNs()
        }
        var wait: UInt64 = 1_000_000
        if isLatency {
            let due = t0 + UInt64(Double(next - 1) * interval)
            let n2 = nowNs()
            wait = due > n2 ? min(due - n2, 2_000_000) : 0
        }
        eng.step(wait: wait)
    }
    let published = next - 1
    let pubEnd = nowNs()
    // drain: every event received by every reader, or 3 s without progress
    var lastProgress = nowNs()
    var lastCount = eng.deliveries
    while nowNs() - lastProgress < 3_000_000_000 {
        while floor <= published && Int(eng.eventCount[floor]) >= ownReaders { floor += 1 }
        if floor > published && eng.outstanding == 0 { break }
        eng.step(wait: 2_000_000)
        if eng.deliveries != lastCount { lastCount = eng.deliveries; lastProgress = nowNs() }
    }
    let cpu1 = pids.cpuSeconds(), ccpu1 = clientCPUSeconds()
    let tEnd = nowNs()
    // The others drain their share (they have most of it by now), then report.
    helpers.send("done \(published)")
    if !eng.run(until: nowNs() + 60_000_000_000, { helpers.poll(); return helpers.all.allSatisfy { $0.result != nil } }) {
        die("subscriber processes: no result 60 s after the drain")
    }
    helpers.reap()
    let pssEnd = pids.pssBytes()
    pssPeak = max(pssPeak, pssEnd)
    var deliveries = eng.deliveries
    var lastDelivery = eng.lastDelivery
    var clientCPU = [ccpu1 - ccpu0]
    for h in helpers.all {
        let r = h.result!
        deliveries += Int64(jsonInt(r["deliveries"]) ?? 0)
        lastDelivery = max(lastDelivery, UInt64(max(0, jsonInt(r["last_delivery_ns"]) ?? 0)))
        guard let hist = Histogram(exported: r["latency_hist"]) else { die("subscriber process \(h.index): no histogram") }
        eng.hist.merge(hist)
        clientCPU.append(jsonDouble(r["client_cpu_s"]) ?? 0)
    }
    let span = Double(max(lastDelivery, pubEnd) - t0) / 1e9
    let measured = Double(tEnd - t0) / 1e9
    out["events_published"] = published
    out["deliveries"] = deliveries
    out["expected_deliveries"] = published * readers
    out["publish_seconds"] = Double(pubEnd - t0) / 1e9
    out["span_seconds"] = span
    out["deliveries_per_s"] = Double(deliveries) / span
    out["offered_deliveries_per_s"] = isLatency ? rate : NSNull()
    out["latency"] = eng.hist.summaryUs()
    out["server_cpu_s"] = cpu1 - cpu0
    // Summed over the load processes: cores.
    out["client_cpu_s"] = clientCPU.reduce(0, +)
    out["client_cpu_util"] = clientCPU.reduce(0, +) / measured
    if mode == "latency" { out["client_cpu_util_per_process"] = clientCPU.map { $0 / measured } }
    out["server_cpu_util"] = (cpu1 - cpu0) / measured
    out["server_cpu_us_per_delivery"] = deliveries > 0 ? (cpu1 - cpu0) * 1e6 / Double(deliveries) : NSNull()
    out["server_pss_before_subscribe"] = pssBefore
    out["server_pss_start"] = pssStart
    out["server_pss_end"] = pssEnd
    out["server_pss_peak"] = pssPeak
    out["server_pss_growth"] = pssPeak - pssStart
    out["window_stalls"] = stalls
    out["server_pids"] = pids.current().map { Int($0) }
    tally(eng, published: published)
    if !helpers.all.isEmpty { helpers.mergeTallies(procs: procs) }
    finish()
}

// MARK: - latency --procs K

/// Process j of K opens subscribers j, j+K, j+2K, … of `total`: this many.
func share(_ total: Int, _ procs: Int, _ j: Int) -> Int { total / procs + (j < total % procs ? 1 : 0) }

/// The sub URLs as process j of K deals them: its subscriber l (global l·K + j) goes to
/// urls[(l·K + j) mod count], the URL it has when one process opens them all.
func dealtURLs(_ urls: [HTTPURL], _ procs: Int, _ j: Int) -> [HTTPURL] {
    (0..<urls.count).map { urls[($0 * procs + j) % urls.count] }
}

/// Process 0's side of `latency --procs K`: processes 1…K-1, started at once, each this
/// binary with the same arguments and `--role sub --index j --slot <this slot>`.
/// Protocol, one line each way (JSON from them): {"phase":"subscribed"} once its subscribers
/// have their response heads; {"phase":"ready","readers":R} once each has had a warm-up
/// event (published by process 0); ← `go` when the timed publishing starts; ← `done P`
/// after process 0's drain (P events published); {"phase":"result",…} once every reader of
/// its has events 1…P (or 3 s without progress): counts, raw latency histogram, CPU.
final class SubscriberProcesses {
    final class Proc {
        let index: Int
        let pid: pid_t
        let toChild: Int32
        let reader: LineReader
        var subscribed = false
        var ready = false
        var readers = 0
        var result: [String: Any]? = nil
        init(index: Int, pid: pid_t, toChild: Int32, fromChild: Int32) {
            self.index = index; self.pid = pid; self.toChild = toChild
            reader = LineReader(fd: fromChild)
        }
    }
    var all: [Proc] = []

    init(procs: Int) {
        guard procs > 1 else { return }
        signal(SIGPIPE, SIG_IGN)   // a helper gone: its write fails, its EOF says why
        let base = Array(CommandLine.arguments)
        for j in 1..<procs {
            let p = spawnSelf(base + ["--role", "sub", "--index", "\(j)", "--slot", slot])
            all.append(Proc(index: j, pid: p.pid, toChild: p.toChild, fromChild: p.fromChild))
        }
    }

    func poll() {
        for p in all {
            for line in p.reader.poll() {
                guard let d = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any] else {
                    note("subscriber process \(p.index): \(line.prefix(200))"); continue
                }
                switch d["phase"] as? String {
                case "subscribed": p.subscribed = true
                case "ready": p.ready = true; p.readers = jsonInt(d["readers"]) ?? 0
                case "result": p.result = d
                default: note("subscriber process \(p.index): \(line.prefix(200))")
                }
            }
            if p.reader.eof && p.result == nil { die("subscriber process \(p.index) (pid \(p.pid)) ended early (its error is above)") }
        }
    }

    func send(_ line: String) {
        let bytes = Array((line + "\n").utf8)
        for p in all {
            let r = bytes.withUnsafeBytes { Glibc.write(p.toChild, $0.baseAddress!, $0.count) }
            if r != bytes.count { die("subscriber process \(p.index) (pid \(p.pid)) is gone (write: \(String(cString: strerror(errno))))") }
        }
    }

    func reap() {
        for p in all {
            close(p.toChild)
            var status: Int32 = 0
            while waitpid(p.pid, &status, 0) < 0 && errno == EINTR {}
        }
    }

    /// Adds the others' losses, duplicates, … to the ones `tally` wrote for process 0; the
    /// lost examples name global subscriber numbers (l·K + j).
    func mergeTallies(procs: Int) {
        var examples: [[String: Any]] = ((out["lost_examples"] as? [[String: Any]]) ?? []).map {
            ["subscriber": (jsonInt($0["subscriber"]) ?? 0) * procs, "lost": $0["lost"] ?? 0]
        }
        for p in all {
            let r = p.result!
            for k in ["lost", "duplicated", "out_of_order", "resets", "other_data_lines", "readers_closed_by_server"] {
                out[k] = (jsonInt(out[k]) ?? 0) + (jsonInt(r[k]) ?? 0)
            }
            for e in (r["lost_examples"] as? [Any]) ?? [] {
                guard let e = e as? [String: Any], examples.count < 5 else { continue }
                examples.append(["subscriber": (jsonInt(e["subscriber"]) ?? 0) * procs + p.index, "lost": e["lost"] ?? 0])
            }
        }
        if !examples.isEmpty { out["lost_examples"] = examples }
    }
}

/// Process j ≥ 1 of `latency --procs K` (`--role sub --index j`): its share of the
/// subscribers and no publisher; the protocol is `SubscriberProcesses`'s.
func subscriberProcess(total n: Int, procs: Int, index j: Int, maxEvents: Int) -> Never {
    _ = rg_set_pdeathsig(SIGKILL)
    let control = LineReader(fd: 0)
    var cpu0 = clientCPUSeconds()
    var published: Int? = nil
    func pollControl() {
        for line in control.poll() {
            if line == "go" { cpu0 = clientCPUSeconds() }
            else if line.hasPrefix("done ") { published = Int(line.dropFirst(5)) ?? 0 }
        }
        if control.eof && published == nil { die("subscriber process \(j): process 0 went away") }
    }
    let myN = share(n, procs, j)
    let subURL = need("sub-url")
    let eng: Engine
    do { eng = try Engine(maxSubs: myN, maxEvents: maxEvents, trackBits: true) } catch { die("\(error)") }
    openSubscribers(eng, dealtURLs(subURL, procs, j), count: myN, stopped: 0, stoppedRcvbuf: 0)
    sendLine(["phase": "subscribed", "subscribers": myN])
    // Process 0 publishes the warm-up events once every process has subscribed.
    if !eng.run(until: nowNs() + 600_000_000_000, { pollControl(); return eng.warmCount == eng.subCount }) {
        die("subscriber process \(j): only \(eng.warmCount) of \(eng.subCount) subscribers received a warm-up event")
    }
    let readers = activeReaders(eng)
    eng.hist = Histogram()
    eng.deliveries = 0
    eng.firstDelivery = 0
    sendLine(["phase": "ready", "readers": readers])
    var lastPoll: UInt64 = 0
    while published == nil {
        eng.step(wait: 2_000_000)
        if nowNs() - lastPoll >= 5_000_000 { pollControl(); lastPoll = nowNs() }
    }
    let total = min(published ?? 0, maxEvents)
    var floor = 1
    var lastProgress = nowNs()
    var lastCount = eng.deliveries
    while nowNs() - lastProgress < 3_000_000_000 {
        while floor <= total && Int(eng.eventCount[floor]) >= readers { floor += 1 }
        if floor > total { break }
        eng.step(wait: 2_000_000)
        if eng.deliveries != lastCount { lastCount = eng.deliveries; lastProgress = nowNs() }
    }
    let cpu = clientCPUSeconds() - cpu0
    tally(eng, published: total)
    out["phase"] = "result"
    out["subscribers"] = myN
    out["readers"] = readers
    out["deliveries"] = eng.deliveries
    out["first_delivery_ns"] = Int(eng.firstDelivery)
    out["last_delivery_ns"] = Int(eng.lastDelivery)
    out["latency_hist"] = eng.hist.exported()
    out["client_cpu_s"] = cpu
    sendLine(out)
    exit(0)
}

/// `scale`: one of the load processes of `bench/scale.py`. Opens `--subs` subscribers (from
/// `--bind`), warms them up, stops `--stopped-fraction` of them, prints a `ready` JSON line,
/// then waits (heartbeats only) until every reader has every event 1…`--events`, which the
/// coordinator publishes: event 1 alone (the broadcast: each subscriber's latency is kept),
/// then the rest as a burst. Ends with the usual JSON line.
func scaleMode() {
    let n = i("subs", 10000)
    let stopped = Int((Double(n) * d("stopped-fraction", 0)).rounded())
    let events = i("events", 101)
    let deadline = d("deadline", 300)
    let subURL = need("sub-url"), pubURL = need("pub-url")
    let eng: Engine
    do { eng = try Engine(maxSubs: n, maxEvents: events, trackBits: true) } catch { die("\(error)") }
    let latency = UnsafeMutablePointer<UInt64>.allocate(capacity: n)
    latency.initialize(repeating: .max, count: n)
    openSubscribers(eng, subURL, count: n, stopped: stopped, stoppedRcvbuf: Int32(i("stopped-rcvbuf", 4096)))
    // Connected once the subscribers are: opening 10,000s of them can outlast a server's
    // timeout for an idle keep-alive connection.
    let pub = Publisher(eng: eng, urls: pubURL, conns: 1, pad: 0, bufferBytes: 1 << 16)
    warmUp(eng, pub)
    for j in toStop { eng.stopReading(j) }
    eng.run(until: nowNs() + 200_000_000) { false }
    let readers = activeReaders(eng)
    eng.deliveries = 0
    eng.firstDelivery = 0
    eng.hist = Histogram()
    eng.broadcastLatency = latency
    out["subscribers"] = n
    out["stopped_readers"] = stopped
    out["readers"] = readers
    let ready: [String: Any] = ["ready": true, "subscribers": n, "readers": readers,
                                "subscribe_setup_s": out["subscribe_setup_s"] ?? 0, "warmup_s": out["warmup_s"] ?? 0]
    print(String(decoding: try! JSONSerialization.data(withJSONObject: ready, options: [.sortedKeys]), as: UTF8.self))
    fflush(nil)
    let cpu0 = clientCPUSeconds()
    var floor = 1
    let done = eng.run(until: nowNs() + UInt64(deadline * 1e9)) {
        while floor <= events && Int(eng.eventCount[floor]) >= readers { floor += 1 }
        return floor > events
    }
    eng.run(until: nowNs() + 100_000_000) { false }   // late duplicates, if any
    out["client_cpu_s"] = clientCPUSeconds() - cpu0
    out["complete"] = done
    tally(eng, published: events)
    var got: [UInt64] = []
    got.reserveCapacity(readers)
    for j in 0..<eng.subCount where !eng.subs[j].stopped && latency[j] != .max { got.append(latency[j] / 1000) }
    out["broadcast_latency_us"] = got.sorted().map { Int($0) }
    out["broadcast_missing"] = readers - got.count
    out["burst_first_ns"] = eng.burstFirst
    out["burst_last_ns"] = eng.burstLast
    out["deliveries"] = eng.deliveries
    finish()
}

func idleMemory() {
    let n = i("subs", 1000)
    let subURL = need("sub-url"), pubURL = need("pub-url")
    let eng: Engine
    do { eng = try Engine(maxSubs: n, maxEvents: 1, trackBits: false) } catch { die("\(error)") }
    let pub = Publisher(eng: eng, urls: pubURL, conns: 1, pad: 0, bufferBytes: 1 << 16)
    eng.run(until: nowNs() + 300_000_000) { false }
    let before = pids.pssBytes()
    openSubscribers(eng, subURL, count: n, stopped: 0, stoppedRcvbuf: 0)
    warmUp(eng, pub)
    eng.run(until: nowNs() + 1_000_000_000) { false }  // idle for a second
    let after = pids.pssBytes()
    out["subscribers"] = n
    out["server_pss_before"] = before
    out["server_pss_after"] = after
    out["server_pss_per_connection"] = Double(after - before) / Double(n)
    out["server_pids"] = pids.current().map { Int($0) }
    finish()
}

func publishMode() {
    let k = i("pub-conns", 4), depth = i("depth", 32), duration = d("duration", 3)
    let batch = i("batch", 0)
    let urls: [HTTPURL]
    if batch > 0 {
        guard s("batch-url") != nil else {
            out["events_per_s"] = NSNull(); out["note"] = "n/a: no batch publish API"; finish()
        }
        urls = need("batch-url")
    } else {
        urls = need("pub-url")
    }
    let url = urls[0]
    let eng: Engine
    do { eng = try Engine(maxSubs: 1, maxEvents: 1, trackBits: false) } catch { die("\(error)") }
    let bodyCap = batch > 0 ? batch * (slot.utf8.count + 64) + 64 : 256
    let pub = Publisher(eng: eng, urls: urls, conns: k, pad: 0, bufferBytes: max(1 << 20, (bodyCap + 256) * depth * 2))
    eng.perRequest = max(batch, 1)
    let batchHead = Array("POST \(url.path) HTTP/1.1\r\nHost: \(url.host)\r\nContent-Type: application/x-ndjson\r\nContent-Length: ".utf8)
    var body = [UInt8](repeating: 0, count: bodyCap)
    let linePrefix = Array("{\"slot\":\"\(slot)\",\"data\":\"t=".utf8)
    var n = 1
    func sendBatch(_ c: PubConn) -> Bool {
        body.withUnsafeMutableBufferPointer { b in
            var p = b.baseAddress!
            let t = nowNs()
            for _ in 0..<batch {
                linePrefix.withUnsafeBufferPointer { p.update(from: $0.baseAddress!, count: $0.count) }
                p += linePrefix.count
                p += putUInt(t, p)
                p[0] = 32; p[1] = UInt8(ascii: "n"); p[2] = UInt8(ascii: "=")
                p += 3
                p += putUInt(UInt64(n), p)
                p[0] = UInt8(ascii: "\""); p[1] = UInt8(ascii: "}"); p[2] = 10
                p += 3
                n += 1
            }
            let len = p - b.baseAddress!
            return batchHead.withUnsafeBytes { eng.enqueue(c, head: $0, body: UnsafeRawBufferPointer(start: b.baseAddress!, count: len)) }
        }
    }
    let cpu0 = pids.cpuSeconds(), ccpu0 = clientCPUSeconds()
    // --ingest-pid: the one process that takes every publish (Ringgate's ingest), user and system apart.
    let ingestPid = s("ingest-pid").flatMap { Int32($0) }
    let ingest0 = ingestPid.map(processCPUSeconds)
    let t0 = nowNs(), end = t0 + UInt64(duration * 1e9)
    while nowNs() < end {
        for c in eng.pubs where !c.closed {
            while c.outstanding < depth {
                let ok = batch > 0 ? sendBatch(c) : pub.publish(n)
                if !ok { break }
                if batch == 0 { n += 1 }
            }
        }
        eng.step(wait: 1_000_000)
    }
    let pubEnd = nowNs()
    eng.run(until: nowNs() + 5_000_000_000) { eng.outstanding == 0 }
    let tEnd = nowNs()
    let cpu1 = pids.cpuSeconds(), ccpu1 = clientCPUSeconds()
    let secs = Double(tEnd - t0) / 1e9
    out["connections"] = k
    out["depth"] = depth
    out["batch"] = batch
    out["requests_2xx"] = eng.ok2xx
    out["requests_non2xx"] = eng.non2xx
    if !eng.statusSeen.isEmpty { out["statuses"] = Dictionary(uniqueKeysWithValues: eng.statusSeen.map { (String($0.key), $0.value) }) }
    out["events"] = eng.publishedEvents
    out["seconds"] = secs
    out["publish_seconds"] = Double(pubEnd - t0) / 1e9
    out["events_per_s"] = Double(eng.publishedEvents) / secs
    out["server_cpu_s"] = cpu1 - cpu0
    if let pid = ingestPid, let before = ingest0, eng.publishedEvents > 0 {
        let after = processCPUSeconds(pid)
        let n = Double(eng.publishedEvents)
        out["ingest_user_us_per_event"] = (after.user - before.user) * 1e6 / n
        out["ingest_sys_us_per_event"] = (after.system - before.system) * 1e6 / n
        out["ingest_cpu_us_per_event"] = (after.user + after.system - before.user - before.system) * 1e6 / n
    }
    out["client_cpu_s"] = ccpu1 - ccpu0
    out["client_cpu_util"] = (ccpu1 - ccpu0) / secs
    out["server_cpu_us_per_event"] = eng.publishedEvents > 0 ? (cpu1 - cpu0) * 1e6 / Double(eng.publishedEvents) : NSNull()
    out["server_pids"] = pids.current().map { Int($0) }
    finish()
}

func historyMode() {
    guard let hs = s("history-url"), let bs = s("batch-url") else {
        out["note"] = "n/a: no windowed history API"; finish()
    }
    let hurl = HTTPURL(hs).with(slot: slot)
    let burl = HTTPURL(bs)
    let sizes = (s("sizes") ?? "1000,100000,1000000").split(separator: ",").compactMap { Int($0) }
    let queries = i("queries", 200)
    let pubc = BlockingClient(burl)
    let getc = BlockingClient(hurl)
    var have = 0
    var firstSeq = -1
    var epoch = ""
    var results: [[String: Any]] = []
    let batchSize = 10000
    func idField(_ b: [UInt8], last: Bool) -> String? {
        let str = String(decoding: b, as: UTF8.self)
        guard let open = str.range(of: "[\"") else { return nil }
        if !last {
            let rest = str[open.upperBound...]
            return rest.firstIndex(of: "\"").map { String(rest[..<$0]) }
        }
        return nil
    }
    for size in sizes {
        let tf = nowNs()
        while have < size {
            let cnt = min(batchSize, size - have)
            var body = [UInt8]()
            body.reserveCapacity(cnt * 48)
            for k in 0..<cnt { body += Array("{\"slot\":\"\(slot)\",\"data\":\"h=\(have + k + 1) history payload\"}\n".utf8) }
            let r = pubc.request("POST", burl.path, body: body, contentType: "application/x-ndjson")
            guard r.status == 201 else { die("history fill: status \(r.status): \(String(decoding: r.body.prefix(200), as: UTF8.self))") }
            if firstSeq < 0, let id = idField(r.body, last: false), let dash = id.lastIndex(of: "-") {
                epoch = String(id[..<dash]); firstSeq = Int(id[id.index(after: dash)...]) ?? 0
            }
            have += cnt
        }
        let fillSecs = Double(nowNs() - tf) / 1e9
        var hNewest = Histogram(), hAfter = Histogram()
        var bytes = 0, events = 0, bad = 0
        var rng = SystemRandomNumberGenerator()
        for q in 0..<(2 * queries) {
            let path: String
            if q % 2 == 0 {
                path = hurl.path + "?limit=1000"
            } else {
                let span = max(1, size - 1000 + 1)
                let seq = firstSeq - 1 + Int.random(in: 0..<span, using: &rng)
                path = hurl.path + "?after=\(epoch)-\(seq)&limit=1000"
            }
            let t = nowNs()
            let r = getc.request("GET", path)
            let dt = nowNs() - t
            if q % 2 == 0 { hNewest.record(dt) } else { hAfter.record(dt) }
            bytes += r.body.count
            // count events: occurrences of "id":
            var c = 0
            r.body.withUnsafeBufferPointer { b in
                let p = b.baseAddress!
                var k = 0
                while k + 5 < b.count {
                    if p[k] == 34 && p[k + 1] == 105 && p[k + 2] == 100 && p[k + 3] == 34 && p[k + 4] == 58 { c += 1; k += 5 } else { k += 1 }
                }
            }
            events += c
            if r.status != 200 || c != min(1000, size) { bad += 1 }
        }
        results.append([
            "slot_events": size,
            "fill_seconds": fillSecs,
            "newest_1000": hNewest.summaryUs(),
            "after_limit_1000": hAfter.summaryUs(),
            "mean_response_bytes": bytes / (2 * queries),
            "mean_events_per_response": Double(events) / Double(2 * queries),
            "responses_not_1000_events": bad,
        ])
    }
    out["sizes"] = results
    finish()
}

switch mode {
case "scale": scaleMode()
case "fanout", "latency", "stopped-readers": streamMode()
case "idle-memory": idleMemory()
case "publish": publishMode()
case "history": historyMode()
default: print(usage); exit(2)
}
