// Loopback throughput of the Upstream link (release build): publish completions/s for
// single-event jobs and for 100-event jobs, then a second link's tail entries/s.
// Usage: ringgate-upstream-bench [--port P] (starts its own redis-server when no --port).
import Foundation
import Glibc
import Logging
import RingLog
import Upstream

func nowMilliseconds() -> UInt64 { UInt64(Date().timeIntervalSince1970 * 1000) }

var port = 0
var args = CommandLine.arguments.dropFirst()
while let a = args.popFirst() {
    if a == "--port", let p = args.popFirst().flatMap(Int.init) { port = p } else {
        FileHandle.standardError.write("usage: ringgate-upstream-bench [--port P]\n".data(using: .utf8)!)
        exit(2)
    }
}

var server: Process?
let dir = FileManager.default.temporaryDirectory.appendingPathComponent("rg-upstream-bench-\(getpid())")
if port == 0 {
    port = 20000 + Int(getpid() % 20000)
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/redis-server")
    p.arguments = ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir.path]
    p.standardOutput = FileHandle.nullDevice
    try p.run()
    server = p
}
defer {
    if let server { kill(server.processIdentifier, SIGKILL); server.waitUntilExit() }
    try? FileManager.default.removeItem(at: dir)
}

let url = UpstreamURL(host: "127.0.0.1", port: port, db: 0, user: nil, password: nil, key: "rg-bench-\(getpid())")
let keys = ClusterKeys(key: url.key)
var admin: RedisConnection?
for _ in 0..<200 where admin == nil {
    admin = try? RedisConnection(url: url, timeoutNanoseconds: 2_000_000_000, name: "bench")
    if admin == nil { usleep(20_000) }
}
guard let admin else { fatalError("no Redis on 127.0.0.1:\(port)") }
let epoch = try ClusterMeta.ensureEpoch(admin, keys: keys, random: { UInt32.random(in: 1...UInt32.max) }).epoch

let geometry = try LogGeometry(capacityBytes: 4096, maxSlots: 8)
let memory = UnsafeMutableRawPointer.allocate(byteCount: geometry.totalBytes, alignment: 4096)
memory.initializeMemory(as: UInt8.self, repeating: 0, count: geometry.totalBytes)
let region = try LogRegion.format(base: memory, length: geometry.totalBytes, geometry: geometry, epoch: epoch)

@MainActor func link(_ name: String) -> UpstreamLink {
    let settings = UpstreamSettings(url: url, keys: keys, epoch: epoch, cursor: .zero, retain: 1_000_000,
                                    timeoutNanoseconds: 2_000_000_000, waitReplicas: 0, maxQueuedEvents: 100_000,
                                    tailBatch: 1000, hostName: name)
    return UpstreamLink(settings: settings, counters: CounterBlock(region: region, process: ProcessBlock.ingest),
                        wakeFD: -1, logger: Logger(label: "bench"))
}

let publisher = link("publisher")
publisher.start()
while !publisher.isUp { usleep(1000) }
var token: UInt64 = 0
var drainedTail = 0

@MainActor func run(jobs: Int, eventsPerJob: Int) -> Double {
    let payload = Array(String(repeating: "x", count: 64).utf8)
    var completed = 0
    var submitted = 0
    let start = Date()
    while completed < jobs {
        while submitted < jobs {
            let events = (0..<eventsPerJob).map { _ in PublishEvent(slot: Array("room".utf8), type: Array("msg".utf8), data: payload) }
            token += 1
            if !publisher.submit(PublishJob(token: token, events: events, timeMilliseconds: nowMilliseconds())) { break }
            submitted += 1
        }
        publisher.drainCompletions { c in
            guard case .appended = c.outcome else { fatalError("publish failed: \(c.outcome)") }
            completed += 1
        }
        // The publisher's own tail runs too, as on a real host: keep it drained.
        while publisher.drainTail(maxEntries: 4096, { _ in drainedTail += 1 }) {}
        if submitted == jobs { usleep(100) }
    }
    return Date().timeIntervalSince(start)
}

let singles = 50_000, batches = 1_000
let t1 = run(jobs: singles, eventsPerJob: 1)
print("publish single-event jobs: \(singles) in \(String(format: "%.2f", t1)) s = \(Int(Double(singles) / t1)) completions/s")
let t2 = run(jobs: batches, eventsPerJob: 100)
print("publish 100-event jobs: \(batches) in \(String(format: "%.2f", t2)) s = \(Int(Double(batches) / t2)) completions/s = \(Int(Double(batches * 100) / t2)) events/s")
publisher.stop()

let total = singles + batches * 100
let reader = link("reader")
let start = Date()
reader.start()
var read = 0
while read < total {
    if !reader.drainTail(maxEntries: 4096, { _ in read += 1 }) { usleep(100) }
}
let t3 = Date().timeIntervalSince(start)
reader.stop()
print("tail: \(total) entries in \(String(format: "%.2f", t3)) s = \(Int(Double(total) / t3)) entries/s (from 0-0, includes connect)")
_ = try? admin.command("DEL", keys.stream, keys.seq, keys.meta)
memory.deallocate()
