"""A client that half-closes right after its request (`nc -N`, some health checkers, HTTP/1.0
tools) gets its answer. The FIN's receive used to close the connection at once while the answer
was still queued, so on io_uring (where the request and the FIN often complete in one batch) the
client read nothing. Found by the simulation tests (seeds 0x2005eed0001 / 0x2005eed0003)."""
import socket
import time


def ask_and_half_close(port: int, request: bytes) -> bytes:
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        s.sendall(request)
        s.shutdown(socket.SHUT_WR)
        got = b""
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
        return got
    finally:
        s.close()


def test_requests_followed_by_a_fin_are_all_answered(gateway):
    gw = gateway(workers=1)
    answers = [ask_and_half_close(gw.sub_port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n") for _ in range(40)]
    empty = sum(1 for a in answers if not a.startswith(b"HTTP/1.1 200"))
    assert empty == 0, f"{empty} of 40 half-closed health checks got no answer"
    published = [ask_and_half_close(gw.pub_port, b"POST /v1/slots/hc/events HTTP/1.1\r\nHost: x\r\n"
                                    b"Content-Length: 2\r\n\r\nhi") for _ in range(20)]
    lost = sum(1 for a in published if not a.startswith(b"HTTP/1.1 201"))
    assert lost == 0, f"{lost} of 20 half-closed publishes got no 201 (the event may be stored anyway)"
    assert len(gw.history("hc", limit=100)["events"]) == 20
