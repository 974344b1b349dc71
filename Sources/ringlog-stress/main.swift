// Multi-process stress of the ring log: one writer process, R reader processes, one memfd log.
//
//   ringlog-stress [--records N] [--readers R] [--capacity BYTES] [--seed S]
//
// The parent creates the log, spawns itself as `--role writer --fd F` and R x `--role reader
// --fd F`, waits, and prints one line per reader plus a summary. Each record's data ends with an
// 8-byte checksum of (seq, slot, body); readers follow the tail with copyRecord, run `window`
// queries now and then, and count accepted / lapped / corrupt. Exit 0 only if corrupt == 0 and
// every reader accepted something.

import CRinggateSys
@preconcurrency import Glibc
import RingLog

struct Options {
    var records = 10_000_000
    var readers = 2
    var capacityBytes = 1 << 20
    var seed: UInt64 = 0
    var role = "parent"
    var fd: Int32 = -1
    var readerIndex = 0
}

enum Counter {
    // Process block 0: the writer.
    static let doneSeq = 0
    static let appended = 1
    // Process block 1 + i: reader i.
    static let accepted = 0
    static let lapped = 1
    static let corrupt = 2
    static let windows = 3
    static let windowRecords = 4
}

let slotNames: [[UInt8]] = (0..<6).map { Array("slot-\($0)".utf8) }
let typeBytes: [UInt8] = Array("t".utf8)
let maxSlots = 16
let bodyBytesMax = 1992  // data = body + 8-byte checksum: 8...2000 bytes

func fail(_ message: String) -> Never {
    fputs("ringlog-stress: \(message)\n", stderr)
    exit(2)
}

func parseOptions() -> Options {
    var options = Options()
    var args = CommandLine.arguments.dropFirst().makeIterator()
    func value(_ flag: String) -> String {
        guard let v = args.next() else { fail("\(flag) needs a value") }
        return v
    }
    func number(_ flag: String) -> Int {
        guard let n = Int(value(flag)), n >= 0 else { fail("\(flag) needs a non-negative integer") }
        return n
    }
    while let arg = args.next() {
        switch arg {
        case "--records": options.records = number(arg)
        case "--readers": options.readers = number(arg)
        case "--capacity": options.capacityBytes = number(arg)
        case "--seed": options.seed = UInt64(number(arg))
        case "--role": options.role = value(arg)
        case "--fd": options.fd = Int32(number(arg))
        case "--reader-index": options.readerIndex = number(arg)
        case "-h", "--help":
            print("usage: ringlog-stress [--records N] [--readers R] [--capacity BYTES] [--seed S]")
            exit(0)
        default: fail("unknown argument \(arg)")
        }
    }
    guard options.readers >= 1, options.readers < LogRegion.maxProcesses - 1 else { fail("--readers must be 1...126") }
    guard options.records >= 1 else { fail("--records must be >= 1") }
    let recordBytesMax = LogWriter.recordLength(slotBytes: 6, typeBytes: 1, dataBytes: bodyBytesMax + 8)
    guard options.capacityBytes / 4 >= recordBytesMax else {
        fail("--capacity must be at least 16384 so a \(recordBytesMax)-byte record fits (records <= capacity / 4)")
    }
    return options
}

struct XorShift {
    var state: UInt64
    init(seed: UInt64) { state = seed == 0 ? 0x9E37_79B9_7F4A_7C15 : seed }
    mutating func next() -> UInt64 {
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        return state
    }
}

/// Word-wise FNV-style hash of (seq, slot, body).
func checksum(seq: UInt64, slot: UnsafeRawBufferPointer, body: UnsafeRawBufferPointer) -> UInt64 {
    var hash: UInt64 = 0xcbf2_9ce4_8422_2325 ^ (seq &* 0x9E37_79B9_7F4A_7C15)
    @inline(__always) func mix(_ word: UInt64) {
        hash = (hash ^ word) &* 0x100_0000_01b3
        hash ^= hash >> 29
    }
    var i = 0
    let base = body.baseAddress
    while i + 8 <= body.count {
        mix(base!.loadUnaligned(fromByteOffset: i, as: UInt64.self))
        i += 8
    }
    while i < body.count {
        mix(UInt64(body[i]) | 0x100)
        i += 1
    }
    for byte in slot { mix(UInt64(byte) | 0x200) }
    mix(UInt64(body.count))
    return hash
}

func attach(fd: Int32) -> LogRegion {
    do {
        let (base, length) = try LogFile.map(fd: fd)
        return try LogRegion.attach(base: base, length: length)
    } catch {
        fail("cannot attach log on fd \(fd): \(error)")
    }
}

/// `seconds` with two decimals, without Foundation.
func fixed2(_ seconds: Double) -> String {
    let hundredths = Int((seconds * 100).rounded())
    let fraction = hundredths % 100
    return "\(hundredths / 100).\(fraction < 10 ? "0" : "")\(fraction)"
}

// MARK: Writer

func runWriter(_ options: Options) -> Int32 {
    let region = attach(fd: options.fd)
    var writer = LogWriter(region: region)
    var random = XorShift(seed: options.seed)
    let poolBytes = 1 << 16
    let pool = UnsafeMutableRawBufferPointer.allocate(byteCount: poolBytes + bodyBytesMax, alignment: 8)
    for i in stride(from: 0, to: pool.count - 7, by: 8) { pool.storeBytes(of: random.next(), toByteOffset: i, as: UInt64.self) }
    let data = UnsafeMutableRawBufferPointer.allocate(byteCount: bodyBytesMax + 8, alignment: 8)
    let appended = region.counterPointer(process: 0, counter: Counter.appended)
    let start = rg_monotonic_ns()
    for _ in 0..<options.records {
        let r = random.next()
        let slot = slotNames[Int(r % UInt64(slotNames.count))]
        let bodyBytes = Int((r >> 8) % UInt64(bodyBytesMax + 1))
        let poolOffset = Int((r >> 24) % UInt64(poolBytes))
        let seq = writer.headSeq + 1
        memcpy(data.baseAddress!, pool.baseAddress! + poolOffset, bodyBytes)
        slot.withUnsafeBytes { slotBuffer in
            let sum = checksum(seq: seq, slot: slotBuffer, body: UnsafeRawBufferPointer(rebasing: data[0..<bodyBytes]))
            data.storeBytes(of: sum, toByteOffset: bodyBytes, as: UInt64.self)
            typeBytes.withUnsafeBytes { typeBuffer in
                do {
                    let got = try writer.append(
                        slot: slotBuffer, type: typeBuffer,
                        data: UnsafeRawBufferPointer(rebasing: data[0..<(bodyBytes + 8)]),
                        timeMilliseconds: rg_realtime_ns() / 1_000_000)
                    precondition(got == seq)
                } catch {
                    fail("writer: append failed: \(error)")
                }
            }
        }
        if seq & 1023 == 0 { rg_store_release_u64(appended, seq) }
    }
    rg_store_release_u64(appended, writer.headSeq)
    rg_store_release_u64(region.counterPointer(process: 0, counter: Counter.doneSeq), writer.headSeq)
    let seconds = Double(rg_monotonic_ns() - start) / 1e9
    print("writer: appended=\(writer.headSeq) in \(fixed2(seconds))s")
    return 0
}

// MARK: Reader

func runReader(_ options: Options) -> Int32 {
    let region = attach(fd: options.fd)
    let reader = LogReader(region: region)
    let process = 1 + options.readerIndex
    let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: reader.maxRecordBytes, alignment: 8)
    let windowScratch = UnsafeMutableRawBufferPointer.allocate(byteCount: reader.maxRecordBytes, alignment: 8)
    let done = region.counterPointer(process: 0, counter: Counter.doneSeq)
    var random = XorShift(seed: options.seed ^ UInt64(process) &* 0xA24B_AED4_963E_E407)
    var accepted: UInt64 = 0, lapped: UInt64 = 0, corrupt: UInt64 = 0, windows: UInt64 = 0, windowRecords: UInt64 = 0
    var lastSeq: UInt64 = 0
    var cursor = reader.oldestPositionAcquire()

    func verify(_ view: LogReader.RecordView, in buffer: UnsafeMutableRawBufferPointer) -> Bool {
        let name = UnsafeRawBufferPointer(rebasing: buffer[view.name])
        let type = UnsafeRawBufferPointer(rebasing: buffer[view.type])
        guard view.data.count >= 8, type.elementsEqual(typeBytes),
              slotNames.contains(where: { $0.elementsEqual(name) })
        else { return false }
        let body = UnsafeRawBufferPointer(rebasing: buffer[view.data.lowerBound..<(view.data.upperBound - 8)])
        let stored = buffer.loadUnaligned(fromByteOffset: view.data.upperBound - 8, as: UInt64.self)
        return stored == checksum(seq: view.seq, slot: name, body: body)
    }

    func windowCheck(after: UInt64?) {
        let slot = slotNames[Int(random.next() % UInt64(slotNames.count))]
        let window = slot.withUnsafeBytes {
            reader.window(slot: $0, after: after, limit: 16, scratch: windowScratch)
        }
        windows += 1
        var previous = after ?? 0
        for position in window.positions {
            guard case .record(let view) = reader.copyRecord(at: position, into: windowScratch) else { continue }
            let name = UnsafeRawBufferPointer(rebasing: windowScratch[view.name])
            if view.seq <= previous || !name.elementsEqual(slot) || !verify(view, in: windowScratch) {
                corrupt += 1
                fputs("reader \(options.readerIndex): bad window record seq \(view.seq) after \(previous)\n", stderr)
            } else {
                windowRecords += 1
            }
            previous = view.seq
        }
        if window.positions.count > 16 { corrupt += 1 }
    }

    while true {
        switch reader.copyRecord(at: cursor, into: scratch) {
        case .record(let view):
            if view.seq <= lastSeq || !verify(view, in: scratch) {
                corrupt += 1
                fputs("reader \(options.readerIndex): corrupt record seq \(view.seq) at \(cursor)\n", stderr)
            } else {
                accepted += 1
            }
            lastSeq = max(lastSeq, view.seq)
            cursor = view.nextPosition
            if accepted & 4095 == 0 {
                windowCheck(after: nil)
                windowCheck(after: view.seq > 2000 ? view.seq - 2000 : 0)
            }
            if view.seq == UInt64(options.records) { break }
            continue
        case .padding(let next):
            cursor = next
            continue
        case .notYetWritten:
            if rg_load_acquire_u64(done) != 0 && cursor >= reader.tailAcquire() { break }
            sched_yield()
            continue
        case .lapped:
            lapped += 1
            cursor = reader.latestAcquire()
            continue
        case .damaged(let damaged):
            // Nothing corrupts this log: an intact record that fails validation is a reader bug.
            corrupt += 1
            fputs("reader \(options.readerIndex): damaged record at \(cursor)\n", stderr)
            cursor = reader.resumePoint(after: damaged, lastSeq: lastSeq).position
            continue
        }
        break
    }
    rg_store_release_u64(region.counterPointer(process: process, counter: Counter.accepted), accepted)
    rg_store_release_u64(region.counterPointer(process: process, counter: Counter.lapped), lapped)
    rg_store_release_u64(region.counterPointer(process: process, counter: Counter.corrupt), corrupt)
    rg_store_release_u64(region.counterPointer(process: process, counter: Counter.windows), windows)
    rg_store_release_u64(region.counterPointer(process: process, counter: Counter.windowRecords), windowRecords)
    return corrupt == 0 ? 0 : 1
}

// MARK: Parent

func executablePath() -> String {
    var buffer = [CChar](repeating: 0, count: 4096)
    let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
    guard n > 0 else { fail("readlink /proc/self/exe failed") }
    return String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

func spawn(_ path: String, _ arguments: [String]) -> Int32 {
    var cArgs: [UnsafeMutablePointer<CChar>?] = ([path] + arguments).map { strdup($0) }
    cArgs.append(nil)
    defer { for p in cArgs { free(p) } }
    var pid: Int32 = 0
    guard rg_spawn(path, cArgs, &pid) == 0 else { fail("spawn failed: \(String(cString: strerror(errno)))") }
    return pid
}

func runParent(_ options: Options) -> Int32 {
    var options = options
    if options.seed == 0 {
        var seed: UInt64 = 0
        if rg_getrandom(&seed, 8) != 0 { seed = rg_monotonic_ns() }
        options.seed = seed & 0x7FFF_FFFF_FFFF_FFFF
    }
    let geometry: LogGeometry
    do { geometry = try LogGeometry(capacityBytes: options.capacityBytes, maxSlots: maxSlots) } catch { fail("\(error)") }
    let log: (fd: Int32, base: UnsafeMutableRawPointer, length: Int)
    do { log = try LogFile.createEphemeral(geometry: geometry) } catch { fail("\(error)") }
    guard rg_clear_cloexec(log.fd) == 0 else { fail("cannot clear FD_CLOEXEC") }
    let region: LogRegion
    do { region = try LogRegion.attach(base: log.base, length: log.length) } catch { fail("\(error)") }
    print("ringlog-stress: records=\(options.records) readers=\(options.readers) capacity=\(options.capacityBytes) seed=\(options.seed)")
    fflush(stdout)

    let path = executablePath()
    let common = ["--fd", "\(log.fd)", "--records", "\(options.records)", "--seed", "\(options.seed)"]
    let start = rg_monotonic_ns()
    var readerPids: [Int32: Int] = [:]
    for i in 0..<options.readers {
        readerPids[spawn(path, ["--role", "reader", "--reader-index", "\(i)"] + common)] = i
    }
    let writerPid = spawn(path, ["--role", "writer"] + common)
    var exitCodes: [Int: Int32] = [:]
    var writerExit: Int32 = -1
    var remaining = options.readers + 1
    let deadline = start + 1_800 * 1_000_000_000
    while remaining > 0 {
        var status: Int32 = 0
        let pid = rg_waitpid_nohang(&status)
        if pid > 0 {
            let code = rg_wifexited(status) != 0 ? rg_wexitstatus(status) : 128 + rg_wtermsig(status)
            if pid == writerPid { writerExit = code } else if let i = readerPids[pid] { exitCodes[i] = code }
            remaining -= 1
            continue
        }
        if pid < 0 { break }
        if rg_monotonic_ns() > deadline {
            fputs("ringlog-stress: timed out, killing children\n", stderr)
            kill(writerPid, SIGKILL)
            for pid in readerPids.keys { kill(pid, SIGKILL) }
            rg_store_release_u64(region.counterPointer(process: 0, counter: Counter.doneSeq), 1)
        }
        usleep(2_000)
    }
    let seconds = Double(rg_monotonic_ns() - start) / 1e9

    var totalAccepted: UInt64 = 0, totalLapped: UInt64 = 0, totalCorrupt: UInt64 = 0
    var everyReaderAccepted = true
    for i in 0..<options.readers {
        func counter(_ c: Int) -> UInt64 { rg_load_acquire_u64(region.counterPointer(process: 1 + i, counter: c)) }
        let accepted = counter(Counter.accepted), lapped = counter(Counter.lapped), corrupt = counter(Counter.corrupt)
        print("reader \(i): accepted=\(accepted) lapped=\(lapped) corrupt=\(corrupt) windows=\(counter(Counter.windows)) "
              + "windowRecords=\(counter(Counter.windowRecords)) exit=\(exitCodes[i].map(String.init) ?? "?")")
        totalAccepted += accepted
        totalLapped += lapped
        totalCorrupt += corrupt
        if accepted == 0 || exitCodes[i] != 0 { everyReaderAccepted = false }
    }
    let appended = rg_load_acquire_u64(region.counterPointer(process: 0, counter: Counter.appended))
    print("writer: appended=\(appended) exit=\(writerExit) wall=\(fixed2(seconds))s")
    print("ringlog-stress: records=\(options.records) readers=\(options.readers) accepted=\(totalAccepted) lapped=\(totalLapped) corrupt=\(totalCorrupt)")
    let ok = totalCorrupt == 0 && everyReaderAccepted && writerExit == 0 && appended == UInt64(options.records)
    return ok ? 0 : 1
}

let options = parseOptions()
switch options.role {
case "writer": exit(runWriter(options))
case "reader": exit(runReader(options))
case "parent": exit(runParent(options))
default: fail("unknown role \(options.role)")
}
