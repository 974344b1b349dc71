/// One simulated client: what it wrote that the server has not received, what the server sent
/// that it has not read (the fake kernel's bounded send buffer), and what it has read.
public final class SimPeer {
    public let id: Int
    /// The server's descriptor for this connection; -1 until the server accepted it.
    public internal(set) var serverFD: Int32 = -1
    /// The fake kernel's send buffer toward this peer: sends beyond it complete short or wait.
    public let sendBufferBytes: Int
    /// Bytes this peer reads per turn; 0 = a peer that stopped reading.
    public var readBytesPerTurn: Int

    // Toward the server.
    var toServer: [UInt8] = []
    var toServerOffset = 0
    /// The peer half-closed (FIN): once its bytes are received, the server's receive gets 0.
    public internal(set) var finSent = false
    /// The peer reset the connection: the next receive or send fails with ECONNRESET.
    public internal(set) var resetSent = false
    /// Half-open: the peer's host is gone; nothing is read or acknowledged any more.
    public internal(set) var vanished = false

    // Toward the peer.
    var unread: [UInt8] = []
    var unreadOffset = 0
    /// Everything the peer read, in order.
    public internal(set) var received: [UInt8] = []
    /// What the peer's kernel acknowledged: bytes the peer consumed.
    public internal(set) var consumedBytes: UInt64 = 0
    /// The server shut its writing side (FIN toward the peer).
    public internal(set) var serverFIN = false
    /// The server closed its descriptor; `closedAtNanoseconds` says when.
    public internal(set) var serverClosed = false
    public internal(set) var closedAtNanoseconds: UInt64 = 0
    /// The server closed with bytes unread on its side: the peer got a reset.
    public internal(set) var resetByServer = false

    init(id: Int, sendBufferBytes: Int, readBytesPerTurn: Int) {
        self.id = id
        self.sendBufferBytes = sendBufferBytes
        self.readBytesPerTurn = readBytesPerTurn
    }

    /// Bytes written toward the server and not received yet.
    public var pendingToServer: Int { toServer.count - toServerOffset }
    /// Bytes the server sent that the peer has not read.
    public var unreadBytes: Int { unread.count - unreadOffset }
    /// The peer saw the end of the stream (FIN or close, everything read) or a reset.
    public var sawEnd: Bool { resetByServer || ((serverFIN || serverClosed) && unreadBytes == 0) }

    func takeToServer(_ n: Int) -> ArraySlice<UInt8> {
        let slice = toServer[toServerOffset..<(toServerOffset + n)]
        toServerOffset += n
        if toServerOffset == toServer.count {
            toServer.removeAll(keepingCapacity: true)
            toServerOffset = 0
        }
        return slice
    }

    func read(_ n: Int) {
        let k = min(n, unreadBytes)
        guard k > 0 else { return }
        received.append(contentsOf: unread[unreadOffset..<(unreadOffset + k)])
        unreadOffset += k
        consumedBytes += UInt64(k)
        if unreadOffset == unread.count {
            unread.removeAll(keepingCapacity: true)
            unreadOffset = 0
        }
    }

    func dropUnread() {
        unread.removeAll()
        unreadOffset = 0
    }
}
