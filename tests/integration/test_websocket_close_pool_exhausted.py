"""A WebSocket client's close is answered with a close frame even while every pooled send buffer
is held (here: by a reader that stopped reading). The reply used to be dropped when it could not
be appended to a send buffer, so the client saw a bare FIN (a browser reports 1006, not a clean
close); it now leaves from its own small allocation once the stream's earlier bytes are sent."""
import socket
import time

from rgtest import RawConnection, wait_until
from test_websocket import raw_ws


def test_close_reply_while_the_send_pool_is_exhausted(gateway):
    gw = gateway("--send-buffers", "1", "--send-timeout", "30s", workers=1)
    ws = raw_ws(gw, "quiet")                      # its 101 went out; its buffer went back to the pool
    stopped = RawConnection(gw.sub_port, rcvbuf=4096)
    stopped.send(b"GET /v1/slots/flood/stream HTTP/1.1\r\nHost: x\r\n\r\n")   # and never reads
    try:
        payload = "x" * 8000
        for _ in range(6):
            r = gw.publish_batch([{"slot": "flood", "data": payload}] * 500)
            assert r.status_code == 201, r.text[:200]
        # The stopped reader's bytes fill the kernel's buffers, then the only pooled buffer.
        wait_until(lambda: gw.metrics().value("ringgate_send_buffers_in_use") == 1, 10,
                   what="the one send buffer held by the stopped reader")
        ws.sendall(bytes([0x88, 0x82, 1, 2, 3, 4, 0x03 ^ 1, 0xE8 ^ 2]))   # masked close, code 1000
        got = b""
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            ws.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                chunk = ws.recv(4096)
            except socket.timeout:
                break
            if not chunk:
                break
            got += chunk
        assert bytes([0x88, 0x02, 0x03, 0xE8]) in got, f"no close frame in the reply: {got[-64:]!r}"
        assert gw.metrics().value("ringgate_send_buffers_in_use") == 1, "the pool was exhausted throughout"
    finally:
        ws.close()
        stopped.close()
