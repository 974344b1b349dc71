"""WebSocket transport against the real binary, with real clients (`websockets`, `websocket-client`)."""
from __future__ import annotations

import asyncio
import json
import signal
import socket
import struct
import time

import websocket  # websocket-client
import websockets

from rgtest import expect_ws_close, wait_until, seq_of


HANDSHAKE_KEY = b"dGhlIHNhbXBsZSBub25jZQ=="          # RFC 6455's example key
HANDSHAKE_ACCEPT = b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="     # and its accept value


def raw_ws(gw, slot: str, rcvbuf: int | None = None, read_head: bool = True) -> socket.socket:
    """A raw socket that has sent a WebSocket upgrade for `slot` (and read the 101 head)."""
    s = socket.socket()
    if rcvbuf is not None:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)   # before connect, so it sticks
    s.settimeout(5)
    s.connect(("127.0.0.1", gw.sub_port))
    s.sendall(b"GET /v1/slots/" + slot.encode() + b"/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
              b"Connection: Upgrade\r\nSec-WebSocket-Key: " + HANDSHAKE_KEY + b"\r\nSec-WebSocket-Version: 13\r\n\r\n")
    if read_head:
        head = b""
        while b"\r\n\r\n" not in head:
            head += s.recv(4096)
        assert head.startswith(b"HTTP/1.1 101"), head
        assert HANDSHAKE_ACCEPT in head
    return s


def ws_url(gw, slot: str, query: str = "") -> str:
    return f"ws://127.0.0.1:{gw.sub_port}/v1/slots/{slot}/ws" + (f"?{query}" if query else "")


async def recv_json(ws, timeout: float = 5.0) -> dict:
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


def test_websockets_client_receives_in_order_and_resumes(gateway):
    gw = gateway()

    async def scenario():
        async with websockets.connect(ws_url(gw, "wsa")) as ws:
            await asyncio.sleep(0.2)
            ids = [gw.publish("wsa", f"m{i}") for i in range(20)]
            got = [await recv_json(ws) for _ in range(20)]
        assert [e["id"] for e in got] == ids
        assert [e["data"] for e in got] == [f"m{i}" for i in range(20)]
        assert all(e["type"] == "message" and isinstance(e["time"], int) for e in got)
        # resume after the 10th: exactly the rest, then live events
        async with websockets.connect(ws_url(gw, "wsa", f"after={ids[9]}")) as ws:
            rest = [await recv_json(ws) for _ in range(10)]
            assert [e["id"] for e in rest] == ids[10:]
            later = gw.publish("wsa", "later")
            assert (await recv_json(ws))["id"] == later

    asyncio.run(scenario())


def test_websocket_client_library_receives_events(gateway):
    gw = gateway()
    ws = websocket.create_connection(ws_url(gw, "wsb"), timeout=5)
    try:
        time.sleep(0.2)
        ids = [gw.publish("wsb", json.dumps({"n": i}), type="tick") for i in range(5)]
        got = [json.loads(ws.recv()) for _ in range(5)]
        assert [e["id"] for e in got] == ids
        assert [json.loads(e["data"])["n"] for e in got] == list(range(5))
        assert {e["type"] for e in got} == {"tick"}
        # a ping from the client is answered with a pong carrying its payload
        ws.ping(b"are-you-there")
        opcode, frame = ws.recv_data_frame(control_frame=True)
        assert opcode == websocket.ABNF.OPCODE_PONG and frame.data == b"are-you-there"
    finally:
        ws.close()


def test_reset_when_lapped(gateway):
    gw = gateway("--log-capacity", "64KiB", "--max-event-bytes", "4KiB")
    first = gw.publish("wsc", "first")
    filler = "x" * 3000
    for _ in range(60):   # ~180 KB into a 64 KiB ring: `first` is overwritten
        gw.publish("wsc", filler)
    hist = gw.history("wsc", limit=1)

    async def scenario():
        async with websockets.connect(ws_url(gw, "wsc", f"after={first}")) as ws:
            reset = await recv_json(ws)
            assert reset["event"] == "reset" and reset["reason"] == "lapped", reset
            assert reset["head"] == hist["head"]
            nxt = await recv_json(ws)
            assert seq_of(nxt["id"]) >= seq_of(reset["oldest"])
            assert nxt["id"] == reset["oldest"]

    asyncio.run(scenario())
    assert gw.metrics().value("ringgate_resets_total", reason="lapped") >= 1


def test_close_1001_on_sigterm(gateway):
    gw = gateway()

    async def scenario():
        async with websockets.connect(ws_url(gw, "wsd")) as ws:
            await asyncio.sleep(0.2)
            gw.send_signal(signal.SIGTERM)
            await expect_ws_close(ws, "shutdown", 1001, retry_max_ms=5000)  # --drain-spread default 5s

    asyncio.run(scenario())
    assert gw.wait(6) == 0


def test_protocol_errors_close_with_their_codes(gateway):
    gw = gateway()

    def handshake() -> socket.socket:
        return raw_ws(gw, "wse")

    def close_code(s: socket.socket) -> int:
        data = b""
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
            i = 0
            while i + 2 <= len(data):
                op, ln = data[i] & 0x0F, data[i + 1] & 0x7F
                if op == 0x8 and i + 4 <= len(data):
                    return struct.unpack(">H", data[i + 2:i + 4])[0]
                i += 2 + ln
        raise AssertionError(f"no close frame in {data!r}")

    s = handshake()   # an unmasked frame from a client is a protocol error
    s.sendall(b"\x81\x02hi")
    assert close_code(s) == 1002
    s.close()

    s = handshake()   # invalid UTF-8 in a text message
    mask = b"\x01\x02\x03\x04"
    payload = bytes(b ^ mask[i % 4] for i, b in enumerate(b"\xff\xfe"))
    s.sendall(b"\x81\x82" + mask + payload)
    assert close_code(s) == 1007
    s.close()

    s = handshake()   # a message over the subscriber's 64 KiB limit
    s.sendall(b"\x82\xff" + struct.pack(">Q", 1 << 20) + mask)
    assert close_code(s) == 1009
    s.close()

    wait_until(lambda: gw.metrics().value("ringgate_disconnects_total", reason="protocol_error") >= 3, 5,
               what="three protocol_error disconnects")


def test_handshake_errors(gateway):
    gw = gateway()
    r = gw.sub.get("/v1/slots/wsf/ws", headers={"Upgrade": "websocket", "Connection": "Upgrade",
                                                 "Sec-WebSocket-Key": HANDSHAKE_KEY.decode(),
                                                 "Sec-WebSocket-Version": "8"})
    assert r.status_code == 426 and r.headers.get("sec-websocket-version") == "13"
    assert r.json()["error"]
    r = gw.sub.get("/v1/slots/wsf/ws")
    assert r.status_code == 400 and r.json()["error"]
    r = gw.sub.get("/v1/slots/bad%20slot/ws")
    assert r.status_code == 400 and r.json()["error"] == "bad_slot"


def test_unanswered_pings_close_the_connection(gateway):
    gw = gateway("--heartbeat", "1s")
    # websocket-client answers pings only when it reads; a client that never reads never pongs
    ws = websocket.create_connection(ws_url(gw, "wsg"), timeout=5)
    try:
        wait_until(lambda: gw.metrics().value("ringgate_disconnects_total", reason="half_open") >= 1, 6,
                   what="half_open disconnect after two heartbeats without a pong")
    finally:
        ws.close()


def test_stopped_websocket_reader_is_reaped(gateway):
    gw = gateway("--send-timeout", "2s", "--heartbeat", "30s")
    s = raw_ws(gw, "wsh", rcvbuf=4096, read_head=False)   # never reads, not even the 101
    time.sleep(0.3)
    data = "y" * 2000
    # The client never reads, so its 4 KiB window is shut by the first few events: from the
    # first publish on, the peer acknowledges nothing while data waits for it.
    first_publish = time.monotonic()
    closed_at = None
    deadline = first_publish + 15
    while time.monotonic() < deadline:
        gw.publish("wsh", data)
        if gw.metrics().value("ringgate_disconnects_total", reason="send_timeout") >= 1:
            closed_at = time.monotonic()
            break
        time.sleep(0.02)
    s.close()
    assert closed_at is not None, "the stopped reader was not reaped within 15 s"
    print(f"stopped WebSocket reader reaped {closed_at - first_publish:.2f}s after the first publish")
    assert closed_at - first_publish <= 2 + 2
    wait_until(lambda: gw.metrics().value("ringgate_connections", transport="ws") == 0, 5, what="ws gauge back to 0")


def test_client_that_keeps_sending_is_closed(gateway):
    """Subscribers do not publish: messages are dropped unbuffered, and a client that keeps
    sending past 1 MiB between two pings is closed with 1008."""
    gw = gateway("--heartbeat", "30s")
    s = raw_ws(gw, "wsi")
    mask = b"\x0a\x0b\x0c\x0d"
    payload = bytes(b ^ mask[i % 4] for i, b in enumerate(b"z" * 1000))
    frame = b"\x81\xfe" + struct.pack(">H", 1000) + mask + payload
    code = None
    data = b""
    try:
        for _ in range(3000):   # ~3 MB of small text messages
            s.sendall(frame)
    except (BrokenPipeError, ConnectionResetError):
        pass
    s.settimeout(5)
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    except (ConnectionResetError, socket.timeout):
        pass
    i = data.find(b"\x88")
    assert i >= 0, f"no close frame in {data[:200]!r}"
    code = struct.unpack(">H", data[i + 2:i + 4])[0]
    assert code == 1008
    s.close()
    wait_until(lambda: gw.metrics().value("ringgate_disconnects_total", reason="protocol_error") >= 1, 5,
               what="protocol_error disconnect")
    wait_until(lambda: gw.metrics().value("ringgate_connections", transport="ws") == 0, 5, what="ws gauge back to 0")


def test_lapped_under_disconnect_policy_closes_with_1008(gateway):
    gw = gateway("--log-capacity", "64KiB", "--max-event-bytes", "4KiB", "--lag-policy", "disconnect")
    first = gw.publish("wsj", "first")
    for _ in range(60):   # ~180 KB into a 64 KiB ring: `first` is overwritten
        gw.publish("wsj", "x" * 3000)

    async def scenario():
        async with websockets.connect(ws_url(gw, "wsj", f"after={first}")) as ws:
            await expect_ws_close(ws, "slow_consumer", 1008)

    asyncio.run(scenario())
    wait_until(lambda: gw.metrics().value("ringgate_disconnects_total", reason="slow_consumer") >= 1, 5,
               what="a slow_consumer disconnect")
