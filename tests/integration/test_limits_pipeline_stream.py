"""Review finding 2 (issue 10 follow-up): a stream started from requests that waited while the
input was paused (pipelining cap) must still be read. A client pipelines more requests than
the cap and then a WebSocket upgrade in the same write: the WebSocket must answer a ping and
see the client's close."""
from __future__ import annotations

import os
import struct
import time

from rgtest import RawConnection

KEY = b"dGhlIHNhbXBsZSBub25jZQ=="


def masked_frame(opcode: int, payload: bytes) -> bytes:
    mask = os.urandom(4)
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + body


def read_frame(conn: RawConnection, deadline: float) -> tuple[int, bytes]:
    """One unmasked server frame (opcode, payload); TimeoutError at the deadline."""
    while len(conn.buf) < 2 or len(conn.buf) < 2 + header_extra(conn.buf) + payload_length(conn.buf):
        if conn.eof:
            raise AssertionError(f"connection closed mid-frame; have {bytes(conn.buf[:64])!r}")
        conn.recv_some(deadline)
    start = 2 + header_extra(conn.buf)
    n = payload_length(conn.buf)
    opcode = conn.buf[0] & 0x0F
    payload = bytes(conn.buf[start:start + n])
    del conn.buf[:start + n]
    return opcode, payload


def header_extra(buf: bytearray) -> int:
    code = buf[1] & 0x7F if len(buf) >= 2 else 0
    return 2 if code == 126 else 8 if code == 127 else 0


def payload_length(buf: bytearray) -> int:
    if len(buf) < 2:
        return 0
    code = buf[1] & 0x7F
    if code == 126:
        return struct.unpack(">H", buf[2:4])[0] if len(buf) >= 4 else 0
    if code == 127:
        return struct.unpack(">Q", buf[2:10])[0] if len(buf) >= 10 else 0
    return code


def test_a_websocket_pipelined_behind_a_paused_input_is_read(gateway):
    gw = gateway("--max-pipelined-requests", "4", workers=1)
    pulls = 10   # over the cap of 4: the input pauses with the upgrade still unparsed
    wire = b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n" * pulls
    wire += (b"GET /v1/slots/pws/ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
             b"Sec-WebSocket-Key: " + KEY + b"\r\nSec-WebSocket-Version: 13\r\n\r\n")
    conn = RawConnection(gw.sub_port, timeout=5.0)
    try:
        conn.send(wire)
        for i in range(pulls):
            r = conn.read_response(5.0)
            assert r.status == 200, (i, r.status, r.body[:200])
        status, _, headers = conn.read_head(time.monotonic() + 5.0)
        assert status == 101, (status, headers)
        assert gw.metrics().value("ringgate_pipeline_paused_total") >= 1

        conn.send(masked_frame(0x9, b"are-you-there"))
        deadline = time.monotonic() + 5.0
        while True:
            try:
                opcode, payload = read_frame(conn, deadline)
            except TimeoutError:
                raise AssertionError("no pong within 5 s: the WebSocket's frames are not being read")
            if opcode == 0xA:
                assert payload == b"are-you-there", payload
                break

        conn.send(masked_frame(0x8, struct.pack(">H", 1000)))
        deadline = time.monotonic() + 5.0
        while True:
            try:
                opcode, payload = read_frame(conn, deadline)
            except TimeoutError:
                raise AssertionError("no close frame within 5 s after the client's close")
            if opcode == 0x8:
                break
    finally:
        conn.close()
