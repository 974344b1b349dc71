import Testing
@testable import WireProtocol

func encode(id: String, type: String, data: [UInt8]) -> [UInt8] {
    let idB = Array(id.utf8), typeB = Array(type.utf8)
    return idB.withUnsafeBytes { i in
        typeB.withUnsafeBytes { t in
            data.withUnsafeBytes { d in
                let n = SSEEncoder.encodedLength(id: i.count, type: t.count, data: d)
                var out = [UInt8](repeating: 0xEE, count: n + 8)
                let written = out.withUnsafeMutableBytes { SSEEncoder.encodeEvent(id: i, type: t, data: d, into: $0, at: 4) }
                #expect(written == n)
                #expect(out[..<4].allSatisfy { $0 == 0xEE } && out[(4 + n)...].allSatisfy { $0 == 0xEE })
                return Array(out[4..<(4 + n)])
            }
        }
    }
}

/// What an SSE client (WHATWG event-stream parser) reconstructs as the data of one event.
func clientData(_ frame: [UInt8]) -> [UInt8]? {
    var lines: [[UInt8]] = []
    var current: [UInt8] = []
    var i = 0
    while i < frame.count {
        let b = frame[i]
        if b == 0x0A || b == 0x0D {
            lines.append(current)
            current = []
            if b == 0x0D, i + 1 < frame.count, frame[i + 1] == 0x0A { i += 1 }
        } else {
            current.append(b)
        }
        i += 1
    }
    var data: [UInt8]?
    for line in lines {
        if line.isEmpty { break }
        guard line.starts(with: Array("data".utf8)) else { continue }
        var value = Array(line.dropFirst(4))
        if value.first == 0x3A { value.removeFirst() } else { continue }
        if value.first == 0x20 { value.removeFirst() }
        data = (data.map { $0 + [0x0A] } ?? []) + value
    }
    return data
}

@Suite struct SSEEncoderTests {
    @Test func singleLine() {
        #expect(encode(id: "5f3a9c01-8", type: "message", data: Array("hello".utf8)).text
            == "id: 5f3a9c01-8\nevent: message\ndata: hello\n\n")
    }

    @Test func splitsAtLFCRLFAndLoneCR() {
        #expect(encode(id: "1", type: "t", data: Array("a\nb\r\nc\rd".utf8)).text
            == "id: 1\nevent: t\ndata: a\ndata: b\ndata: c\ndata: d\n\n")
        #expect(encode(id: "1", type: "t", data: Array("a\r\rb".utf8)).text
            == "id: 1\nevent: t\ndata: a\ndata:\ndata: b\n\n")
        #expect(encode(id: "1", type: "t", data: Array("\n\r\n".utf8)).text
            == "id: 1\nevent: t\ndata:\ndata:\ndata:\n\n")
    }

    @Test func trailingNewlineAndEmptyData() {
        #expect(encode(id: "1", type: "t", data: Array("a\n".utf8)).text == "id: 1\nevent: t\ndata: a\ndata:\n\n")
        #expect(encode(id: "1", type: "t", data: []).text == "id: 1\nevent: t\ndata:\n\n")
        #expect(encode(id: "", type: "", data: Array("x".utf8)).text == "data: x\n\n")
    }

    @Test func noRawCRReachesTheClientInsideALine() {
        let frame = encode(id: "1", type: "t", data: Array("a\rb\r".utf8))
        #expect(!frame.contains(0x0D))
    }

    @Test func randomDataLengthsAndRoundTrip() {
        var rng = SeededGenerator(seed: 99)
        let alphabet: [UInt8] = [0x0A, 0x0D, 0x61, 0x62, 0x20, 0x3A, 0xC3, 0xA9]
        for _ in 0..<3000 {
            let n = Int.random(in: 0...40, using: &rng)
            let data = (0..<n).map { _ in alphabet.randomElement(using: &rng)! }
            let idLen = Int.random(in: 0...EventID.maxLength, using: &rng)
            let id = String(repeating: "7", count: idLen)
            let type = String(repeating: "m", count: Int.random(in: 0...64, using: &rng))
            let frame = encode(id: id, type: type, data: data)
            #expect(frame.count <= SSEEncoder.maxEncodedLength(idBytes: idLen, typeBytes: type.utf8.count, dataBytes: n))
            #expect(frame.last == 0x0A && frame.dropLast().last == 0x0A)
            // The client sees the data with every line break normalised to LF.
            var expected: [UInt8] = []
            var i = 0
            while i < data.count {
                if data[i] == 0x0D {
                    expected.append(0x0A)
                    if i + 1 < data.count, data[i + 1] == 0x0A { i += 1 }
                } else {
                    expected.append(data[i])
                }
                i += 1
            }
            #expect(clientData(frame) == expected, "\(data)")
            // Only the blank line ends the event.
            #expect(!frame.dropLast(2).windows2.contains { $0 == (0x0A, 0x0A) })
        }
    }

    @Test func worstCaseIsExactlyTheBound() {
        for n in 0..<10 {
            let data = [UInt8](repeating: 0x0A, count: n)
            #expect(encode(id: "i", type: "t", data: data).count == SSEEncoder.maxEncodedLength(idBytes: 1, typeBytes: 1, dataBytes: n))
        }
    }

    @Test func heartbeatRetryAndComments() {
        #expect(SSEEncoder.heartbeat.text == ": hb\n\n")
        #expect(SSEEncoder.retry(milliseconds: 1500).text == "retry: 1500\n\n")
        #expect(SSEEncoder.comment("hi").text == ": hi\n\n")
        var buf = [UInt8](repeating: 0, count: 32)
        let n = buf.withUnsafeMutableBytes { SSEEncoder.writeRetry(milliseconds: 2000, into: $0, at: 2) }
        #expect(n == SSEEncoder.retryLength(milliseconds: 2000))
        #expect(Array(buf[2..<(2 + n)]).text == "retry: 2000\n\n")
        let h = buf.withUnsafeMutableBytes { SSEEncoder.writeHeartbeat(into: $0, at: 20) }
        #expect(Array(buf[20..<(20 + h)]).text == ": hb\n\n")
    }

    @Test func controlEvents() {
        let reset = SSEEncoder.resetEvent(reason: "lapped", oldest: EventID(epoch: 1, seq: 5),
                                          head: EventID(epoch: 1, seq: 9), dropped: 3)
        #expect(reset.text == "event: reset\ndata: {\"reason\":\"lapped\",\"oldest\":\"00000001-5\",\"head\":\"00000001-9\",\"dropped\":3}\n\n")
        #expect(SSEEncoder.closeEvent(reason: "shutdown").text == "event: close\ndata: {\"reason\":\"shutdown\"}\n\n")
        #expect(SSEEncoder.resetJSON(reason: "epoch", oldest: nil, head: nil, dropped: 0).text
            == "{\"reason\":\"epoch\",\"oldest\":null,\"head\":null,\"dropped\":0}")
        #expect(SSEEncoder.event(id: EventID(epoch: 0x5f3a9c01, seq: 8), type: "message", data: Array("x".utf8)).text
            == "id: 5f3a9c01-8\nevent: message\ndata: x\n\n")
    }

    @Test func resetsOfStreamsOfSeveralSlotsSayTheirSlot() {
        let named = SSEEncoder.resetEvent(reason: "lapped", slot: .named(Array("news".utf8)), oldest: nil,
                                          head: EventID(epoch: 1, seq: 9), dropped: 4)
        #expect(named.text == "event: reset\ndata: {\"reason\":\"lapped\",\"slot\":\"news\",\"oldest\":null,\"head\":\"00000001-9\",\"dropped\":4}\n\n")
        #expect(SSEEncoder.resetJSON(reason: "epoch", slot: .wholeStream, oldest: nil, head: nil, dropped: nil).text
            == "{\"reason\":\"epoch\",\"slot\":null,\"oldest\":null,\"head\":null,\"dropped\":null}")
    }

    @Test func slotEventNames() {
        func name(_ slot: String, _ type: String) -> String {
            let s = Array(slot.utf8), t = Array(type.utf8)
            return s.withUnsafeBytes { sp in
                t.withUnsafeBytes { tp in
                    var out = [UInt8](repeating: 0, count: 300)
                    let n = out.withUnsafeMutableBytes { SSEEncoder.writeSlotEventName(slot: sp, type: tp, into: $0, at: 3) }
                    #expect(n == SSEEncoder.slotEventNameLength(slot: sp, type: tp))
                    return String(decoding: out[3..<(3 + n)], as: UTF8.self)
                }
            }
        }
        #expect(name("news", "message") == "news", "the default type: the slot's name alone")
        #expect(name("news", "alert") == "news/alert")
        #expect(name("a.b:c", "message.x") == "a.b:c/message.x")
        let longest = String(repeating: "s", count: SlotName.maxBytes), longType = String(repeating: "t", count: EventType.maxBytes)
        #expect(name(longest, longType).utf8.count == SlotName.maxBytes + 1 + EventType.maxBytes)
    }
}

extension Collection where Element == UInt8 {
    var windows2: [(UInt8, UInt8)] { Array(zip(self, self.dropFirst())) }
}
