// ringgate-wsecho: a test-only WebSocket echo server over the WireProtocol codec, for the
// Autobahn conformance suite (conformance/run.sh). Not part of the gateway's routes.
//
//   ringgate-wsecho --port N [--max-message-bytes N]
//
// Listens on 127.0.0.1, one thread per connection with blocking sockets. Echoes text and
// binary messages, answers pings, completes the closing handshake (echoing the code, 1000
// for an empty close) and closes with the decoder's close code on a protocol error.
@preconcurrency import Glibc
import Foundation
import WireProtocol

func fail(_ message: String) -> Never {
    fputs("ringgate-wsecho: \(message)\n", stderr)
    exit(2)
}

var port: UInt16 = 9001
var maxMessageBytes = 16 * 1024 * 1024
var arguments = CommandLine.arguments.dropFirst()
while let argument = arguments.popFirst() {
    switch argument {
    case "--port":
        guard let value = arguments.popFirst(), let p = UInt16(value) else { fail("--port needs a port number") }
        port = p
    case "--max-message-bytes":
        guard let value = arguments.popFirst(), let n = Int(value), n >= 0 else { fail("--max-message-bytes needs a count") }
        maxMessageBytes = n
    case "-h", "--help":
        print("usage: ringgate-wsecho --port N [--max-message-bytes N]")
        exit(0)
    default:
        fail("unknown argument \(argument)")
    }
}

/// Writes all of `bytes`; `false` when the peer is gone.
func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) -> Bool {
    var offset = 0
    while offset < bytes.count {
        let n = send(fd, bytes.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL))
        if n < 0 && errno == EINTR { continue }
        if n <= 0 { return false }
        offset += n
    }
    return true
}

func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
    bytes.withUnsafeBytes { writeAll(fd, $0) }
}

/// Sends a message frame: the header, then the payload straight from the message.
func sendFrame(_ fd: Int32, _ opcode: WebSocketOpcode, _ payload: [UInt8]) -> Bool {
    var header = [UInt8](repeating: 0, count: WebSocketFrameEncoder.headerLength(payloadLength: payload.count))
    header.withUnsafeMutableBytes {
        _ = WebSocketFrameEncoder.writeHeader(opcode: opcode, payloadLength: payload.count, into: $0, at: 0)
    }
    return writeAll(fd, header) && writeAll(fd, payload)
}

/// Sends a close frame, stops writing and waits (up to 2 s) for the peer's end, so that
/// unread bytes do not turn the close into a reset.
func closeConnection(_ fd: Int32, code: UInt16?, reason: String) {
    _ = writeAll(fd, WebSocketFrameEncoder.closeFrame(code: code, reason: reason))
    shutdown(fd, Int32(SHUT_WR))
    var timeout = timeval(tv_sec: 2, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    var scratch = [UInt8](repeating: 0, count: 4096)
    while scratch.withUnsafeMutableBytes({ recv(fd, $0.baseAddress, $0.count, 0) }) > 0 {}
    close(fd)
}

func serve(_ fd: Int32, maxMessageBytes: Int) {
    var one: Int32 = 1
    setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
    var buffer = [UInt8](repeating: 0, count: 256 * 1024)
    var parser = HTTPRequestParser(limits: HTTPLimits(maxBodyBytes: 0))
    var decoder = WebSocketFrameDecoder(maxMessageBytes: maxMessageBytes)
    var leftover: [UInt8] = []

    // Opening handshake.
    handshake: while true {
        let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if n < 0 && errno == EINTR { continue }
        guard n > 0 else { close(fd); return }
        let (consumed, result) = buffer.withUnsafeBytes { parser.parse(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
        switch result {
        case .needMore, .head:
            continue
        case .error(let error):
            _ = writeAll(fd, HTTPResponseWriter.error(error))
            close(fd)
            return
        case .request(let request):
            switch WebSocketHandshake.accept(request) {
            case .failure(let error):
                _ = writeAll(fd, error.response(keepAlive: false))
                close(fd)
                return
            case .success(let response):
                guard writeAll(fd, response) else { close(fd); return }
                leftover = Array(buffer[consumed..<n])
                break handshake
            }
        }
    }

    // Frames.
    var pending = leftover
    while true {
        var offset = 0
        while offset < pending.count {
            let (consumed, event) = pending.withUnsafeBytes {
                decoder.decode(UnsafeRawBufferPointer(rebasing: $0[offset...]))
            }
            offset += consumed
            guard let event else { break }
            switch event {
            case .text(let message):
                guard sendFrame(fd, .text, message) else { close(fd); return }
            case .binary(let message):
                guard sendFrame(fd, .binary, message) else { close(fd); return }
            case .ping(let payload):
                guard sendFrame(fd, .pong, payload) else { close(fd); return }
            case .pong:
                break
            case .close(let code, _):
                closeConnection(fd, code: code ?? WebSocketCloseCode.normal, reason: "")
                return
            case .protocolError(let closeCode, let reason):
                closeConnection(fd, code: closeCode, reason: reason)
                return
            }
        }
        let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if n < 0 && errno == EINTR { pending = []; continue }
        guard n > 0 else { close(fd); return }
        pending = Array(buffer[0..<n])
    }
}

let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
guard listener >= 0 else { fail("socket: \(String(cString: strerror(errno)))") }
var one: Int32 = 1
setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
var address = sockaddr_in()
address.sin_family = sa_family_t(AF_INET)
address.sin_port = port.bigEndian
address.sin_addr.s_addr = inet_addr("127.0.0.1")
let bound = withUnsafePointer(to: &address) {
    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
}
guard bound == 0 else { fail("bind 127.0.0.1:\(port): \(String(cString: strerror(errno)))") }
guard listen(listener, 128) == 0 else { fail("listen: \(String(cString: strerror(errno)))") }
print("ringgate-wsecho listening on 127.0.0.1:\(port)")
fflush(stdout)

while true {
    let fd = accept(listener, nil, nil)
    if fd < 0 {
        if errno == EINTR || errno == ECONNABORTED { continue }
        fail("accept: \(String(cString: strerror(errno)))")
    }
    let limit = maxMessageBytes
    Thread.detachNewThread { serve(fd, maxMessageBytes: limit) }
}
