import CRinggateSys
import Glibc
import Testing
@testable import RingLog

/// Pages of `[base, base+length)` in memory (mincore).
func residentPages(_ base: UnsafeMutableRawPointer, _ length: Int) -> Int {
    let pages = (length + 4095) / 4096
    var vector = [UInt8](repeating: 0, count: pages)
    #expect(mincore(base, length, &vector) == 0)
    return vector.reduce(0) { $0 + Int($1 & 1) }
}

/// A formatted log in a memfd (what `--ephemeral` runs on), unmapped and closed with the object.
final class MemfdLog {
    let fd: Int32
    let base: UnsafeMutableRawPointer
    let length: Int
    let region: LogRegion

    init(capacityBytes: Int, maxSlots: Int) throws {
        let log = try LogFile.createEphemeral(geometry: try LogGeometry(capacityBytes: capacityBytes, maxSlots: maxSlots))
        (fd, base, length) = (log.fd, log.base, log.length)
        region = try LogRegion.attach(base: log.base, length: log.length)
    }

    deinit { munmap(base, length); close(fd) }
}

/// A formatted log on the heap, freed with the object.
final class HeapLog {
    let base: UnsafeMutableRawPointer
    let length: Int
    let region: LogRegion
    let scratch: UnsafeMutableRawBufferPointer

    init(capacityBytes: Int = 4096, maxSlots: Int = 8, epoch: UInt32 = 7) {
        let geometry = try! LogGeometry(capacityBytes: capacityBytes, maxSlots: maxSlots)
        length = geometry.totalBytes
        base = UnsafeMutableRawPointer.allocate(byteCount: length, alignment: 4096)
        // format expects zeroed memory, like a fresh ftruncate'd file.
        base.initializeMemory(as: UInt8.self, repeating: 0, count: length)
        region = try! LogRegion.format(base: base, length: length, geometry: geometry, epoch: epoch)
        scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: geometry.maxRecordBytes, alignment: 8)
    }

    deinit {
        base.deallocate()
        scratch.deallocate()
    }

    var reader: LogReader { LogReader(region: region) }
}

extension LogWriter {
    @discardableResult
    mutating func append(_ slot: String, _ data: String = "", type: String = "m", time: UInt64 = 0)
        throws(AppendError) -> UInt64
    {
        let s = Array(slot.utf8), t = Array(type.utf8), d = Array(data.utf8)
        let result: Result<UInt64, AppendError> = s.withUnsafeBytes { sp in
            t.withUnsafeBytes { tp in
                d.withUnsafeBytes { dp in
                    do throws(AppendError) {
                        return .success(try self.append(slot: sp, type: tp, data: dp, timeMilliseconds: time))
                    } catch {
                        return .failure(error)
                    }
                }
            }
        }
        return try result.get()
    }

    /// Whether a one-line batch of `slot` passes `LogBatchCheck` (what the ingest asks).
    func canAppend(_ slot: String, dataBytes: Int) -> Bool {
        var check = LogBatchCheck(writer: self)
        let line = Array(slot.utf8).withUnsafeBytes { check.add(slot: $0, typeBytes: 1, dataBytes: dataBytes) }
        return line == nil && check.finish() == nil
    }
}

extension LogReader {
    func findSlot(_ name: String) -> SlotInfo? {
        Array(name.utf8).withUnsafeBytes { findSlot($0) }
    }

    func window(_ slot: String, after: UInt64? = nil, afterOrdinal: UInt64? = nil, limit: Int,
                maxSeq: UInt64 = .max) -> (Window, hops: Int) {
        var hops = 0
        let w = Array(slot.utf8).withUnsafeBytes {
            window(slot: $0, after: after, afterOrdinal: afterOrdinal, limit: limit, maxSeq: maxSeq, hops: &hops)
        }
        return (w, hops)
    }

    /// Decoded copy of an event, for assertions.
    struct Event: Equatable {
        var seq: UInt64
        var slot: String
        var type: String
        var data: String
        var ordinal: UInt64
        var nextPosition: UInt64
    }

    func event(at position: UInt64, scratch: UnsafeMutableRawBufferPointer) -> Event? {
        guard case .record(let view) = copyRecord(at: position, into: scratch) else { return nil }
        func text(_ r: Range<Int>) -> String { String(decoding: scratch[r], as: UTF8.self) }
        return Event(seq: view.seq, slot: text(view.name), type: text(view.type), data: text(view.data),
                     ordinal: view.slotOrdinal, nextPosition: view.nextPosition)
    }

    func seqs(_ positions: [UInt64], scratch: UnsafeMutableRawBufferPointer) -> [UInt64] {
        positions.map { event(at: $0, scratch: scratch)?.seq ?? 0 }
    }
}

/// Deterministic xorshift for fuzz-style tests.
struct TestRandom {
    var state: UInt64
    mutating func next() -> UInt64 {
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        return state
    }
}
