import Testing
@testable import WireProtocol

@Suite struct WebSocketFrameDecoderTests {
    /// A stream with every frame kind: 7-, 16- and 64-bit lengths, a fragmented text message
    /// with a ping between its fragments, a multi-byte code point split across fragments.
    static let stream: [UInt8] =
        ClientFrame.text("hello")
        + ClientFrame.binary([0, 1, 2, 0xFF])
        + ClientFrame.make(opcode: 2, payload: Array(repeating: 0xAB, count: 300))
        + ClientFrame.make(opcode: 1, payload: Array("x".utf8), lengthForm: 64)
        + ClientFrame.make(opcode: 1, payload: [0x68, 0xC3], fin: false)          // "h" + first byte of é
        + ClientFrame.ping(Array("p".utf8))
        + ClientFrame.continuation([0xA9, 0x20], fin: false)                      // rest of é, space
        + ClientFrame.pong()
        + ClientFrame.continuation(Array("ok".utf8))
        + ClientFrame.text("")
        + ClientFrame.close(1000, Array("bye".utf8))

    static let expected: [WebSocketEvent] = [
        .text(Array("hello".utf8)),
        .binary([0, 1, 2, 0xFF]),
        .binary(Array(repeating: 0xAB, count: 300)),
        .text(Array("x".utf8)),
        .ping(Array("p".utf8)),
        .pong([]),
        .text(Array("hé ok".utf8)),
        .text([]),
        .close(code: 1000, reason: "bye"),
    ]

    @Test func wholeStream() {
        #expect(decodeAll([Self.stream]) == Self.expected)
    }

    @Test func everySplitPoint() {
        let s = Self.stream
        for i in 0...s.count {
            #expect(decodeAll([Array(s[..<i]), Array(s[i...])]) == Self.expected, "split at \(i)")
        }
    }

    @Test func everyTwoSplitPointsOfAShortStream() {
        let s = ClientFrame.text("hé", fin: false) + ClientFrame.ping([7]) + ClientFrame.continuation(Array("!".utf8))
            + ClientFrame.close(nil)
        let expected: [WebSocketEvent] = [.ping([7]), .text(Array("hé!".utf8)), .close(code: nil, reason: "")]
        for i in 0...s.count {
            for j in i...s.count {
                #expect(decodeAll([Array(s[..<i]), Array(s[i..<j]), Array(s[j...])]) == expected, "split \(i) \(j)")
            }
        }
    }

    @Test func byteByByte() {
        #expect(decodeAll(Self.stream.map { [$0] }) == Self.expected)
    }

    @Test func oneEventPerCallWithConsumedCounts() {
        let a = ClientFrame.ping([1])
        let b = ClientFrame.text("z")
        var decoder = WebSocketFrameDecoder()
        let all = a + b
        let first = decoder.decode(all)
        #expect(first.consumed == a.count)
        #expect(first.event == .ping([1]))
        let second = decoder.decode(Array(all[first.consumed...]))
        #expect(second.consumed == b.count)
        #expect(second.event == .text([0x7A]))
        let third = decoder.decode([UInt8]())
        #expect(third.consumed == 0 && third.event == nil)
    }

    @Test func unmaskingAtEveryKeyPhase() {
        // Payloads of every length up to 40 cross the 8-byte fast path and the byte tail at
        // every key phase when split one byte at a time.
        for n in 0...40 {
            let payload = (0..<n).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }
            let frame = ClientFrame.make(opcode: 2, payload: payload, mask: [0x01, 0x80, 0xFE, 0x5A])
            #expect(decodeAll([frame]) == [.binary(payload)])
            for cut in 0...frame.count {
                #expect(decodeAll([Array(frame[..<cut]), Array(frame[cut...])]) == [.binary(payload)])
            }
        }
    }

    @Test func afterCloseNothingIsConsumed() {
        var decoder = WebSocketFrameDecoder()
        let bytes = ClientFrame.close(1001) + ClientFrame.text("late")
        let first = decoder.decode(bytes)
        #expect(first.event == .close(code: 1001, reason: ""))
        #expect(decoder.isClosed)
        let second = decoder.decode(Array(bytes[first.consumed...]))
        #expect(second.consumed == 0 && second.event == nil)
    }

    @Test func deadDecoderRepeatsItsError() {
        var decoder = WebSocketFrameDecoder()
        let first = decoder.decode(ClientFrame.text("a", fin: true).map { $0 } + [])
        #expect(first.event == .text([0x61]))
        let bad = ClientFrame.make(opcode: 3, payload: [])
        let e = decoder.decode(bad)
        guard case .protocolError(1002, _)? = e.event else { Issue.record("\(String(describing: e.event))"); return }
        #expect(decoder.isDead)
        let again = decoder.decode(ClientFrame.text("b"))
        #expect(again.consumed == 0)
        #expect(again.event == e.event)
    }

    // MARK: Errors and their close codes

    @Test func protocolErrors1002() {
        let cases: [(String, [UInt8])] = [
            ("unmasked", ClientFrame.make(opcode: 1, payload: Array("hi".utf8), masked: false)),
            ("unmasked empty", ClientFrame.make(opcode: 9, payload: [], masked: false)),
            ("rsv1", ClientFrame.make(opcode: 1, payload: [0x61], rsv: 4)),
            ("rsv2", ClientFrame.make(opcode: 2, payload: [], rsv: 2)),
            ("rsv3", ClientFrame.make(opcode: 9, payload: [], rsv: 1)),
            ("opcode 3", ClientFrame.make(opcode: 3, payload: [])),
            ("opcode 7", ClientFrame.make(opcode: 7, payload: [])),
            ("opcode 0xB", ClientFrame.make(opcode: 0xB, payload: [])),
            ("opcode 0xF", ClientFrame.make(opcode: 0xF, payload: [1])),
            ("fragmented ping", ClientFrame.make(opcode: 9, payload: [], fin: false)),
            ("fragmented close", ClientFrame.make(opcode: 8, payload: [], fin: false)),
            ("ping 126", ClientFrame.make(opcode: 9, payload: Array(repeating: 1, count: 126))),
            ("pong 16-bit form", ClientFrame.make(opcode: 10, payload: [1], lengthForm: 16)),
            ("continuation first", ClientFrame.continuation([1])),
            ("continuation after a whole message", ClientFrame.text("a") + ClientFrame.continuation([1])),
            ("text inside a fragmented message", ClientFrame.text("a", fin: false) + ClientFrame.text("b")),
            ("binary inside a fragmented message", ClientFrame.binary([1], fin: false) + ClientFrame.binary([2])),
            ("close of 1 byte", ClientFrame.make(opcode: 8, payload: [0x03])),
            ("64-bit length, top bit", [0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0] + [1, 2, 3, 4]),
        ]
        for (name, bytes) in cases {
            let events = decodeAll([bytes])
            #expect(errorCode(events) == 1002, "\(name): \(events)")
            // The same at every split point.
            for i in 0...bytes.count {
                #expect(errorCode(decodeAll([Array(bytes[..<i]), Array(bytes[i...])])) == 1002, "\(name) split \(i)")
            }
        }
    }

    @Test func closeCodes() {
        let valid: [UInt16] = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999]
        for code in valid {
            #expect(decodeAll([ClientFrame.close(code, Array("ok".utf8))]) == [.close(code: code, reason: "ok")])
        }
        let invalid: [UInt16] = [0, 999, 1004, 1005, 1006, 1012, 1013, 1014, 1015, 1016, 1100, 2000, 2999, 5000, 65535]
        for code in invalid {
            #expect(errorCode(decodeAll([ClientFrame.close(code)])) == 1002, "code \(code)")
        }
        #expect(decodeAll([ClientFrame.close(nil)]) == [.close(code: nil, reason: "")])
    }

    @Test func closeReasonMustBeUTF8() {
        #expect(errorCode(decodeAll([ClientFrame.close(1000, [0xCE, 0xBA, 0xE1, 0xBD])])) == 1007)
        #expect(errorCode(decodeAll([ClientFrame.close(1000, [0xFF])])) == 1007)
        let reason = Array("κόσμε".utf8)
        #expect(decodeAll([ClientFrame.close(1000, reason)]) == [.close(code: 1000, reason: "κόσμε")])
        let longest = Array(repeating: UInt8(0x61), count: 123)
        #expect(decodeAll([ClientFrame.close(4000, longest)]) == [.close(code: 4000, reason: String(repeating: "a", count: 123))])
    }

    @Test func invalidUTF8TextIs1007() {
        let bad: [[UInt8]] = [
            [0xFF], [0xC0, 0x80], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80], [0xE0, 0x80, 0x80],
            [0x80], Array("ok".utf8) + [0xCE],  // ends inside a code point
        ]
        for payload in bad {
            #expect(errorCode(decodeAll([ClientFrame.make(opcode: 1, payload: payload)])) == 1007, "\(payload)")
        }
        // A code point cut by the end of the final fragment.
        let cut = ClientFrame.make(opcode: 1, payload: [0x61, 0xE2], fin: false) + ClientFrame.continuation([0x82])
        #expect(errorCode(decodeAll([cut])) == 1007)
        // Split across fragments it is fine.
        let split = ClientFrame.make(opcode: 1, payload: [0xE2], fin: false) + ClientFrame.continuation([0x82], fin: false)
            + ClientFrame.continuation([0xAC])
        #expect(decodeAll([split]) == [.text([0xE2, 0x82, 0xAC])])
        // Binary is not checked.
        #expect(decodeAll([ClientFrame.binary([0xFF])]) == [.binary([0xFF])])
    }

    @Test func invalidUTF8FailsFastBeforeTheMessageEnds() {
        // The first fragment is invalid; the decoder reports before any later fragment.
        let first = ClientFrame.make(opcode: 1, payload: [0x61, 0xF5], fin: false)
        var decoder = WebSocketFrameDecoder()
        let r = decoder.decode(first)
        #expect(r.event.map { errorCode([$0]) } == 1007)
        // Inside one frame: the payload's first 3 bytes are enough.
        let frame = ClientFrame.make(opcode: 1, payload: [0x61, 0xC0, 0xAF] + Array(repeating: 0x61, count: 1000))
        var d2 = WebSocketFrameDecoder()
        let r2 = d2.decode(Array(frame[..<(frame.count - 1000 + 0)]))  // header + mask + 3 payload bytes
        #expect(r2.event.map { errorCode([$0]) } == 1007)
    }

    @Test func messageSizeLimit() {
        let limit = 100
        #expect(decodeAll([ClientFrame.binary(Array(repeating: 1, count: 100))], maxMessageBytes: limit)
            == [.binary(Array(repeating: 1, count: 100))])
        #expect(errorCode(decodeAll([ClientFrame.binary(Array(repeating: 1, count: 101))], maxMessageBytes: limit)) == 1009)
        // Across fragments.
        let fragments = ClientFrame.make(opcode: 1, payload: Array(repeating: 0x61, count: 60), fin: false)
            + ClientFrame.continuation(Array(repeating: 0x61, count: 41))
        #expect(errorCode(decodeAll([fragments], maxMessageBytes: limit)) == 1009)
        // Refused from the header alone: no payload needs to arrive.
        var decoder = WebSocketFrameDecoder(maxMessageBytes: 1000)
        let r = decoder.decode([0x82, 0xFE, 0x10, 0x00])  // binary, masked, 4096 bytes
        #expect(r.event.map { errorCode([$0]) } == 1009)
        // A huge 64-bit length (top bit clear) is 1009, not an allocation.
        var d2 = WebSocketFrameDecoder()
        let r2 = d2.decode([0x82, 0xFF, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF])
        #expect(r2.event.map { errorCode([$0]) } == 1009)
        // Control frames do not count toward the message.
        let withPing = ClientFrame.make(opcode: 2, payload: Array(repeating: 1, count: 60), fin: false)
            + ClientFrame.ping(Array(repeating: 2, count: 100)) + ClientFrame.continuation(Array(repeating: 1, count: 40))
        #expect(decodeAll([withPing], maxMessageBytes: limit)
            == [.ping(Array(repeating: 2, count: 100)), .binary(Array(repeating: 1, count: 100))])
    }

    @Test func discardingPayloadsStillValidates() {
        let big = Array(repeating: UInt8(0x61), count: 5000)
        #expect(decodeAll([ClientFrame.make(opcode: 1, payload: big)], keepsDataPayloads: false) == [.text([])])
        #expect(decodeAll([ClientFrame.binary([1, 2])], keepsDataPayloads: false) == [.binary([])])
        let bad = big + [0xFF]
        #expect(errorCode(decodeAll([ClientFrame.make(opcode: 1, payload: bad)], keepsDataPayloads: false)) == 1007)
        #expect(errorCode(decodeAll([ClientFrame.make(opcode: 1, payload: big)], maxMessageBytes: 4999,
                                    keepsDataPayloads: false)) == 1009)
        #expect(decodeAll([ClientFrame.ping([9])], keepsDataPayloads: false) == [.ping([9])])
    }

    @Test func partialState() {
        var decoder = WebSocketFrameDecoder()
        #expect(!decoder.hasPartialMessage)
        _ = decoder.decode([0x81])
        #expect(decoder.hasPartialMessage)
        var d2 = WebSocketFrameDecoder()
        _ = d2.decode(ClientFrame.text("a", fin: false))
        #expect(d2.hasPartialMessage)
        _ = d2.decode(ClientFrame.continuation([]))
        #expect(!d2.hasPartialMessage)
    }

    // MARK: Seeded random round trip

    @Test func seededRandomRoundTrip() {
        var rng = SeededGenerator(seed: 0x5EED_6455)
        let characters = ["a", "é", "€", "𝄞", " ", "\n"]
        for round in 0..<200 {
            var bytes: [UInt8] = []
            var expected: [WebSocketEvent] = []
            for _ in 0..<Int.random(in: 1...8, using: &rng) {
                let isText = Bool.random(using: &rng)
                let n = [0, 1, 5, 125, 126, 127, 300, 2000].randomElement(using: &rng)!
                let message: [UInt8] = isText
                    ? Array((0..<n).map { _ in characters.randomElement(using: &rng)! }.joined().utf8)
                    : (0..<n).map { _ in UInt8.random(in: 0...255, using: &rng) }
                // Fragment at random byte offsets (through code points), pings in between.
                var start = 0
                var first = true
                repeat {
                    let end = min(message.count, start + Int.random(in: 0...max(1, message.count), using: &rng))
                    let mask = (0..<4).map { _ in UInt8.random(in: 0...255, using: &rng) }
                    bytes += ClientFrame.make(opcode: first ? (isText ? 1 : 2) : 0, payload: Array(message[start..<end]),
                                              fin: end == message.count, mask: mask,
                                              lengthForm: Int.random(in: 0..<5, using: &rng) == 0 ? 64 : nil)
                    if end < message.count && Int.random(in: 0..<3, using: &rng) == 0 {
                        let p = (0..<Int.random(in: 0...125, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
                        bytes += ClientFrame.make(opcode: 9, payload: p, mask: mask)
                        expected.append(.ping(p))
                    }
                    start = end
                    first = false
                } while start < message.count
                expected.append(isText ? .text(message) : .binary(message))
            }
            bytes += ClientFrame.close(1000)
            expected.append(.close(code: 1000, reason: ""))
            var chunks: [[UInt8]] = []
            var i = 0
            while i < bytes.count {
                let n = min(bytes.count - i, Int.random(in: 1...700, using: &rng))
                chunks.append(Array(bytes[i..<i + n]))
                i += n
            }
            #expect(decodeAll(chunks) == expected, "round \(round)")
        }
    }
}
