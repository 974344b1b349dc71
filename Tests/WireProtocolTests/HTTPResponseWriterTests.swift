import Testing
@testable import WireProtocol

@Suite struct HTTPResponseWriterTests {
    @Test func head() {
        let h = HTTPResponseWriter.head(status: 200, contentType: "text/event-stream", contentLength: nil,
                                        keepAlive: true, extraHeaders: [("Cache-Control", "no-cache")])
        #expect(h.text == "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: keep-alive\r\nCache-Control: no-cache\r\n\r\n")
        let c = HTTPResponseWriter.head(status: 204, contentType: nil, contentLength: 0, keepAlive: false)
        #expect(c.text == "HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    }

    @Test(arguments: [0, 7, 10, 99, 1234567])
    func headTemplateWritesTheSameBytesAsHead(length: Int) {
        for keepAlive in [true, false] {
            for extra in [[], [("Retry-After", "5")]] {
                let template = HTTPResponseWriter.HeadTemplate(status: 201, contentType: "application/json",
                                                               keepAlive: keepAlive, extraHeaders: extra)
                var out = Array("left over".utf8)
                out.removeAll(keepingCapacity: true)
                template.append(contentLength: length, to: &out)
                #expect(out == HTTPResponseWriter.head(status: 201, contentType: "application/json",
                                                       contentLength: length, keepAlive: keepAlive, extraHeaders: extra))
            }
        }
    }

    @Test func jsonAndErrors() {
        let r = HTTPResponseWriter.json(status: 201, body: Array("{\"id\":\"x\"}".utf8), keepAlive: true)
        #expect(r.text == "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: 10\r\nConnection: keep-alive\r\n\r\n{\"id\":\"x\"}")
        #expect(ErrorBody.json(error: "bad_slot", detail: "slot \"a b\" is invalid").text
            == "{\"error\":\"bad_slot\",\"detail\":\"slot \\\"a b\\\" is invalid\"}")
        let e = HTTPResponseWriter.error(HTTPParseError(status: 431, code: "headers_too_large", detail: "big"))
        #expect(e.text.hasPrefix("HTTP/1.1 431 Request Header Fields Too Large\r\n"))
        #expect(e.text.contains("Connection: close\r\n"))
        #expect(e.text.hasSuffix("\r\n\r\n{\"error\":\"headers_too_large\",\"detail\":\"big\"}"))
        let busy = HTTPResponseWriter.error(status: 503, code: "over_capacity", detail: "x", keepAlive: false,
                                            extraHeaders: [("Retry-After", "1")])
        #expect(busy.text.contains("\r\nRetry-After: 1\r\n"))
    }

    @Test func reasonPhrases() {
        for (code, phrase) in [(400, "Bad Request"), (404, "Not Found"), (408, "Request Timeout"), (411, "Length Required"),
                               (413, "Content Too Large"), (414, "URI Too Long"), (415, "Unsupported Media Type"),
                               (505, "HTTP Version Not Supported"), (507, "Insufficient Storage"), (999, "Unknown")] {
            #expect(HTTPStatus.reasonPhrase(code) == phrase)
        }
        #expect(HTTPResponseWriter.error(.requestTimeout).text.hasPrefix("HTTP/1.1 408 Request Timeout\r\n"))
        #expect(HTTPResponseWriter.continueResponse.text == "HTTP/1.1 100 Continue\r\n\r\n")
    }
}
