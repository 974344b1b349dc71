import Testing
@testable import WireProtocol

@Suite struct WebSocketFrameEncoderTests {
    /// Decodes one unmasked server frame: (fin, opcode, payload, total length).
    func parse(_ f: [UInt8]) -> (fin: Bool, opcode: UInt8, payload: [UInt8], length: Int) {
        var length = Int(f[1] & 0x7F)
        var h = 2
        if length == 126 { length = Int(f[2]) << 8 | Int(f[3]); h = 4 }
        if length == 127 { length = f[2..<10].reduce(0) { $0 << 8 | Int($1) }; h = 10 }
        #expect(f[1] & 0x80 == 0, "server frames are unmasked")
        return (f[0] & 0x80 != 0, f[0] & 0x0F, Array(f[h..<h + length]), h + length)
    }

    @Test func headerLengthsAtBoundaries() {
        for (n, h) in [(0, 2), (125, 2), (126, 4), (65535, 4), (65536, 10), (1 << 24, 10)] {
            #expect(WebSocketFrameEncoder.headerLength(payloadLength: n) == h)
            let f = WebSocketFrameEncoder.frame(opcode: .binary, payload: Array(repeating: 7, count: n))
            #expect(f.count == WebSocketFrameEncoder.frameLength(payloadLength: n))
            let p = parse(f)
            #expect(p.fin && p.opcode == 2 && p.payload.count == n && p.length == f.count)
        }
    }

    @Test func writesAtOffsetAndReturnsLength() {
        var buffer = [UInt8](repeating: 0xEE, count: 20)
        let n = buffer.withUnsafeMutableBytes { out in
            Array("hi".utf8).withUnsafeBytes { WebSocketFrameEncoder.writeFrame(opcode: .text, payload: $0, into: out, at: 3) }
        }
        #expect(n == 4)
        #expect(Array(buffer[0..<9]) == [0xEE, 0xEE, 0xEE, 0x81, 0x02, 0x68, 0x69, 0xEE, 0xEE])
    }

    @Test func controlFrames() {
        #expect(WebSocketFrameEncoder.frame(opcode: .ping, payload: [1, 2]) == [0x89, 0x02, 1, 2])
        #expect(WebSocketFrameEncoder.frame(opcode: .pong, payload: []) == [0x8A, 0x00])
        #expect(WebSocketFrameEncoder.frame(opcode: .text, payload: [0x61], fin: false) == [0x01, 0x01, 0x61])
        #expect(WebSocketFrameEncoder.closeFrame(code: nil) == [0x88, 0x00])
        #expect(WebSocketFrameEncoder.closeFrame(code: 1000) == [0x88, 0x02, 0x03, 0xE8])
        #expect(WebSocketFrameEncoder.closeFrame(code: 1002, reason: "bad") == [0x88, 0x05, 0x03, 0xEA, 0x62, 0x61, 0x64])
        #expect(WebSocketFrameEncoder.closeFrameLength(code: 1000, reasonLength: 3) == 7)
        #expect(WebSocketFrameEncoder.closeFrameLength(code: nil, reasonLength: 0) == 2)
        // A long reason is cut to 123 bytes at a code point boundary.
        let long = WebSocketFrameEncoder.closeFrame(code: 1000, reason: String(repeating: "é", count: 100))
        let p = parse(long)
        #expect(p.payload.count == 2 + 122)
        #expect(UTF8Validator.isValid(Array(p.payload[2...])))
    }

    @Test func eventFrameJSONAndExactLength() throws {
        let id = try #require(EventID(parsing: "5f3a9c01-8"))
        let frame = WebSocketMessageEncoder.eventFrame(id: id, type: "message", data: Array("hi \"there\"\n".utf8),
                                                        timeMilliseconds: 1_795_310_494_123)
        let p = parse(frame)
        #expect(p.fin && p.opcode == 1 && p.length == frame.count)
        #expect(p.payload.text == #"{"id":"5f3a9c01-8","type":"message","data":"hi \"there\"\n","time":1795310494123}"#)
    }

    @Test func eventLengthsExactAcrossSizes() throws {
        var rng = SeededGenerator(seed: 42)
        for _ in 0..<300 {
            let id = EventID(epoch: UInt32.random(in: 0...UInt32.max, using: &rng),
                             seq: UInt64.random(in: 1...UInt64.max >> UInt64.random(in: 0...63, using: &rng), using: &rng))
            let n = [0, 1, 10, 100, 120, 200, 70000].randomElement(using: &rng)!
            let data = (0..<n).map { _ in UInt8.random(in: 0...0x7F, using: &rng) }
            let type = Array("t.\(n)".utf8)
            let time = Int64.random(in: -5...Int64.max, using: &rng)
            let (exact, bound) = type.withUnsafeBytes { t in
                data.withUnsafeBytes { d in
                    (WebSocketMessageEncoder.eventFrameLength(id: id, type: t, data: d, timeMilliseconds: time),
                     WebSocketMessageEncoder.maxEventFrameLength(typeBytes: t.count, dataBytes: d.count))
                }
            }
            #expect(exact <= bound)
            // Written into a buffer of exactly that size at an offset.
            var buffer = [UInt8](repeating: 0, count: exact + 5)
            let written = buffer.withUnsafeMutableBytes { out in
                type.withUnsafeBytes { t in
                    data.withUnsafeBytes { d in
                        WebSocketMessageEncoder.writeEvent(id: id, type: t, data: d, timeMilliseconds: time, into: out, at: 5)
                    }
                }
            }
            #expect(written == exact)
            let p = parse(Array(buffer[5...]))
            var w = JSONWriter()
            w.appendRaw("{\"id\":"); w.appendID(id); w.appendRaw(",\"type\":"); w.appendString(type)
            w.appendRaw(",\"data\":"); w.appendString(data); w.appendRaw(",\"time\":"); w.appendInt(time); w.appendRaw("}")
            #expect(p.payload == w.bytes)
            #expect(p.length == exact)
        }
    }

    @Test func eventsOfStreamsOfSeveralSlotsHaveASlotMember() {
        let id = EventID(epoch: 0x5f3a9c01, seq: 12)
        let slot = Array("news.eu".utf8), type = Array("alert".utf8), data = Array("a \"quoted\"\nline".utf8)
        let (exact, bound, frame) = slot.withUnsafeBytes { s in
            type.withUnsafeBytes { t in
                data.withUnsafeBytes { d in
                    let exact = WebSocketMessageEncoder.eventFrameLength(id: id, slot: s, type: t, data: d, timeMilliseconds: 77)
                    var out = [UInt8](repeating: 0, count: exact)
                    let n = out.withUnsafeMutableBytes {
                        WebSocketMessageEncoder.writeEvent(id: id, slot: s, type: t, data: d, timeMilliseconds: 77, into: $0, at: 0)
                    }
                    #expect(n == exact)
                    return (exact, WebSocketMessageEncoder.maxEventFrameLength(slotBytes: s.count, typeBytes: t.count,
                                                                               dataBytes: d.count), out)
                }
            }
        }
        #expect(exact <= bound)
        #expect(parse(frame).payload.text
            == #"{"id":"5f3a9c01-12","slot":"news.eu","type":"alert","data":"a \"quoted\"\nline","time":77}"#)
        let reset = WebSocketMessageEncoder.resetFrame(reason: "damaged", slot: .named(slot), oldest: nil, head: nil, dropped: 1)
        #expect(parse(reset).payload.text
            == #"{"event":"reset","reason":"damaged","slot":"news.eu","oldest":null,"head":null,"dropped":1}"#)
    }

    @Test func resetAndCloseMessages() {
        let reset = WebSocketMessageEncoder.resetFrame(reason: "lapped", oldest: EventID(epoch: 0x5f3a9c01, seq: 10),
                                                       head: EventID(epoch: 0x5f3a9c01, seq: 99), dropped: 7)
        #expect(parse(reset).payload.text
            == #"{"event":"reset","reason":"lapped","oldest":"5f3a9c01-10","head":"5f3a9c01-99","dropped":7}"#)
        let empty = WebSocketMessageEncoder.resetJSON(reason: "epoch", oldest: nil, head: nil, dropped: 0)
        #expect(empty.text == #"{"event":"reset","reason":"epoch","oldest":null,"head":null,"dropped":0}"#)
        let unknown = WebSocketMessageEncoder.resetJSON(reason: "epoch", oldest: nil, head: nil, dropped: nil)
        #expect(unknown.text == #"{"event":"reset","reason":"epoch","oldest":null,"head":null,"dropped":null}"#)
        let close = WebSocketMessageEncoder.closeNoticeFrame(reason: "shutdown")
        #expect(parse(close).opcode == 1)
        #expect(parse(close).payload.text == #"{"event":"close","reason":"shutdown"}"#)
    }

    @Test func serverFramesDecodeWhenMasked() {
        // What the encoder writes, masked as a client would, round-trips through the decoder.
        let payload = Array("round trip é".utf8)
        var f = WebSocketFrameEncoder.frame(opcode: .text, payload: payload)
        let mask: [UInt8] = [9, 8, 7, 6]
        f[1] |= 0x80
        let h = 2
        let masked = Array(f[..<h]) + mask + payload.enumerated().map { $0.element ^ mask[$0.offset & 3] }
        #expect(decodeAll([masked]) == [.text(payload)])
    }
}
