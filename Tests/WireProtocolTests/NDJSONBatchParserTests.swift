import Testing
@testable import WireProtocol

func batch(_ s: String, maxEvents: Int = 100, validateNames: Bool = false) -> Result<[BatchItem], BatchError> {
    NDJSONBatchParser.parse(Array(s.utf8), maxEvents: maxEvents, validateNames: validateNames)
}

func items(_ s: String) -> [BatchItem]? {
    if case .success(let v) = batch(s) { return v }
    return nil
}

func batchError(_ s: String, maxEvents: Int = 100) -> BatchError? {
    if case .failure(let e) = batch(s, maxEvents: maxEvents) { return e }
    return nil
}

@Suite struct NDJSONBatchParserTests {
    @Test func validBatch() throws {
        let v = try #require(items("""
            {"slot":"news","data":"a"}
            {"slot":"news","type":"t","data":"b"}\r
            \r

              { "data" : "c" , "extra": [1, {"x": null}], "slot":"s2" }  \t
            """))
        #expect(v == [
            BatchItem(slot: Array("news".utf8), type: nil, data: Array("a".utf8)),
            BatchItem(slot: Array("news".utf8), type: Array("t".utf8), data: Array("b".utf8)),
            BatchItem(slot: Array("s2".utf8), type: nil, data: Array("c".utf8)),
        ])
        #expect(items("") == [])
        #expect(items("\n\r\n  \n") == [])
        #expect(items("{\"slot\":\"a\",\"type\":null,\"data\":\"\"}")?.first?.type == nil)
    }

    @Test func nonStringDataIsKeptAsJSONText() {
        let cases = [
            ("{\"a\": [1, 2.5e-3, true], \"b\": {}}", "{\"a\": [1, 2.5e-3, true], \"b\": {}}"),
            ("  42  ", "42"),
            ("-0.5E+10", "-0.5E+10"),
            ("null", "null"),
            ("false", "false"),
            ("[\"\\u00e9\", \"\\n\"]", "[\"\\u00e9\", \"\\n\"]"),
            ("[]", "[]"),
        ]
        for (json, text) in cases {
            let v = items("{\"slot\":\"s\",\"data\":\(json)}")
            #expect(v?.first?.data.text == text, "\(json)")
        }
    }

    /// Lines share their slot's array when it repeats and their data's storage (one array per
    /// batch): each item still reads back exactly its own slot and data.
    @Test func repeatedSlotsAndSharedDataStorageKeepEveryLineItsOwn() {
        let body = #"{"slot":"aa","data":"one"}"# + "\n" + #"{"data":"t\u00e9\nx","slot":"aa"}"# + "\n"
            + #"{"slot":"ab","data":{"k":[1,2]}}"# + "\n" + #"{"slot":"a\u0061","data":""}"# + "\n"
        let v = items(body)
        #expect(v?.map { $0.slot.text } == ["aa", "aa", "ab", "aa"])
        #expect(v?.map { $0.data.text } == ["one", "té\nx", #"{"k":[1,2]}"#, ""])
    }

    @Test func stringEscapesAndSurrogates() {
        let v = items(#"{"slot":"s","data":"q\" b\\ s\/ \b\f\n\r\t \u0041\u00e9\u20ac\ud83d\ude00 é"}"#)
        #expect(v?.first?.data == Array("q\" b\\ s/ \u{08}\u{0C}\n\r\t Aé€😀 é".utf8)[...])
        let slot = items(#"{"slot":"a\u002eb","data":"x"}"#)
        #expect(slot?.first?.slot.text == "a.b")
    }

    @Test(arguments: [
        (#"{"slot":"s","data":"\ud83d"}"#, "lone high surrogate"),
        (#"{"slot":"s","data":"\ud83dx"}"#, "high surrogate then char"),
        (#"{"slot":"s","data":"\ude00"}"#, "lone low surrogate"),
        (#"{"slot":"s","data":"\ud83d\u0041"}"#, "high then non-low"),
        (#"{"slot":"s","data":"\u12"}"#, "short unicode escape"),
        (#"{"slot":"s","data":"\x"}"#, "bad escape"),
        ("{\"slot\":\"s\",\"data\":\"a\tb\"}", "raw tab in string"),
        (#"{"slot":"s","data":"abc}"#, "unterminated string"),
        (#"{"slot":"s","data":01}"#, "leading zero"),
        (#"{"slot":"s","data":1.}"#, "bad fraction"),
        (#"{"slot":"s","data":1e}"#, "bad exponent"),
        (#"{"slot":"s","data":-}"#, "lone minus"),
        (#"{"slot":"s","data":+1}"#, "plus sign"),
        (#"{"slot":"s","data":tru}"#, "bad literal"),
        (#"{"slot":"s","data":[1,]}"#, "trailing comma in array"),
        (#"{"slot":"s","data":{"a":1,}}"#, "trailing comma in object"),
        (#"{"slot":"s","data":{a:1}}"#, "unquoted key"),
        (#"{"slot":"s","data":"a",}"#, "trailing comma"),
        (#"{"slot":"s","data":"a"} x"#, "trailing garbage"),
        (#"{"slot":"s","data":"a"}{}"#, "two objects"),
        (#"{"slot":"s","data":}"#, "missing value"),
        (#"{"slot":"s""data":"a"}"#, "missing comma"),
        (#"{"slot":"s","data":"a""#, "unterminated object"),
        (#"["slot","s"]"#, "not an object"),
        (#""just a string""#, "string line"),
        (#"{"data":"a"}"#, "missing slot"),
        (#"{"slot":"s"}"#, "missing data"),
        (#"{"slot":1,"data":"a"}"#, "slot not a string"),
        (#"{"slot":"s","type":5,"data":"a"}"#, "type not a string"),
        (#"{"slot":"s","slot":"t","data":"a"}"#, "duplicate slot"),
        (#"{"slot":"s","data":"a","data":"b"}"#, "duplicate data"),
        (#"{'slot':'s','data':'a'}"#, "single quotes"),
        (#"{"slot":"s","data":"a","x":"\q"}"#, "bad escape in an ignored key"),
        (#"{"slot":"s","data":"a","x":["\udc00"]}"#, "lone surrogate in an ignored value"),
        (#"{"slot":"s","data":"a","x":{"k" 1}}"#, "missing colon in a nested object"),
    ])
    func malformedLinesNameTheirLine(_ line: String, _ why: String) {
        let e = batchError("{\"slot\":\"ok\",\"data\":\"fine\"}\n\n" + line + "\n{\"slot\":\"ok\",\"data\":\"later\"}\n")
        #expect(e?.line == 3, "\(why): \(String(describing: e))")
        #expect(e.map { !$0.reason.isEmpty } == true)
    }

    @Test func invalidUTF8IsRejected() {
        var body = Array("{\"slot\":\"s\",\"data\":\"".utf8)
        body += [0xC3, 0x28]
        body += Array("\"}".utf8)
        guard case .failure(let e) = NDJSONBatchParser.parse(body, maxEvents: 10) else { Issue.record("accepted"); return }
        #expect(e.line == 1)
    }

    @Test func depthLimit() {
        func nested(_ depth: Int) -> String {
            "{\"slot\":\"s\",\"data\":" + String(repeating: "[", count: depth) + String(repeating: "]", count: depth) + "}"
        }
        // The line's own object is depth 1, so data may nest 63 deep.
        #expect(items(nested(63)) != nil)
        #expect(batchError(nested(64))?.line == 1)
        #expect(batchError(nested(10_000))?.line == 1)
    }

    @Test func maxEvents() {
        let line = "{\"slot\":\"s\",\"data\":\"x\"}\n"
        #expect(items(String(repeating: line, count: 3))?.count == 3)
        #expect(batchError(String(repeating: line, count: 4), maxEvents: 3)?.line == 4)
    }

    @Test func optionalNameValidation() {
        guard case .failure(let e) = batch("{\"slot\":\"a b\",\"data\":\"x\"}", validateNames: true) else {
            Issue.record("accepted"); return
        }
        #expect(e.line == 1)
        guard case .failure = batch("{\"slot\":\"a\",\"type\":\"\",\"data\":\"x\"}", validateNames: true) else {
            Issue.record("accepted"); return
        }
        guard case .success = batch("{\"slot\":\"a\",\"type\":\"t.1\",\"data\":\"x\"}", validateNames: true) else {
            Issue.record("rejected"); return
        }
        #expect(BatchError(line: 2, reason: "missing \"slot\"").description == "line 2: missing \"slot\"")
    }

    @Test func lastLineWithoutNewlineAndCRLF() {
        #expect(items("{\"slot\":\"a\",\"data\":\"1\"}\r\n{\"slot\":\"b\",\"data\":\"2\"}")?.map(\.slot.text) == ["a", "b"])
    }
}
