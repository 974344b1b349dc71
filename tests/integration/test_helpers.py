"""Self-checks of the test helpers (no ringgate binary needed): the SSE parser, the raw HTTP
client, the metrics parser and the /proc helpers must be right before they judge the server."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time

import pytest

from rgtest import (Metrics, RawConnection, SSEComment, SSEEvent, SSEParser, SSERetry, SSEStream,
                    check_error, children_of, describe_child, parse_id, pid_holding_socket,
                    request_bytes, server_socket_inode)

CANNED = (
    b"retry: 1500\n\n"
    b": hb\n\n"
    b"id: 5f3a9c01-8\nevent: message\ndata: first line\ndata: second line\n\n"
    b"id: 5f3a9c01-9\r\nevent: greeting\r\ndata:no-space \xc3\xa9t\xc3\xa9\r\n\r\n"
    b"id: 5f3a9c01-10\revent: message\rdata: cr\r\r"
    b"event: reset\ndata: {\"reason\":\"lapped\",\"oldest\":\"5f3a9c01-1\",\"head\":\"5f3a9c01-9\",\"dropped\":3}\n\n"
    b"data: x\ndata: \n\n"
    b"unknown: field\n:\n\n"
)


def expected_items():
    return [
        SSERetry(1500),
        SSEComment("hb"),
        SSEEvent("5f3a9c01-8", "message", "first line\nsecond line", 2),
        SSEEvent("5f3a9c01-9", "greeting", "no-space été", 1),
        SSEEvent("5f3a9c01-10", "message", "cr", 1),
        SSEEvent(None, "reset", '{"reason":"lapped","oldest":"5f3a9c01-1","head":"5f3a9c01-9","dropped":3}', 1),
        SSEEvent(None, "message", "x\n", 2),
        SSEComment(""),
    ]


def test_sse_parser_whole_stream():
    p = SSEParser()
    assert p.feed(CANNED, eof=True) == expected_items()
    assert p.last_event_id == "5f3a9c01-10"


@pytest.mark.parametrize("step", [1, 2, 3, 7, 64])
def test_sse_parser_any_split(step):
    p = SSEParser()
    items = []
    for i in range(0, len(CANNED), step):
        items += p.feed(CANNED[i:i + step])
    items += p.feed(b"", eof=True)
    assert items == expected_items()


def test_sse_parser_incomplete_frame_not_dispatched():
    p = SSEParser()
    assert p.feed(b"id: a-1\ndata: half") == []
    assert p.feed(b"\n") == []
    assert p.feed(b"\n") == [SSEEvent("a-1", "message", "half", 1)]


def test_parse_id():
    assert parse_id("5f3a9c01-42") == ("5f3a9c01", 42)
    for bad in ["", "5f3a9c01", "5F3A9C01-1", "5f3a9c0-1", "5f3a9c01-0", "5f3a9c01-x", "5f3a9c01-01"]:
        with pytest.raises(ValueError):
            parse_id(bad)


def test_metrics_parser():
    text = (
        "# HELP ringgate_connections open connections\n"
        "# TYPE ringgate_connections gauge\n"
        'ringgate_connections{transport="sse"} 3\n'
        'ringgate_connections{transport="ws"} 1\n'
        "ringgate_events_appended_total 42\n"
        'ringgate_process_restarts_total{role="worker",index="0"} 1\n'
        'ringgate_process_restarts_total{role="worker",index="1"} 2 1700000000000\n'
        'ringgate_odd{reason="a\\"b"} 1.5e3\n'
    )
    m = Metrics(text)
    assert m.value("ringgate_connections", transport="sse") == 3
    assert m.value("ringgate_connections") == 4
    assert m.value("ringgate_events_appended_total") == 42
    assert m.value("ringgate_process_restarts_total", role="worker") == 3
    assert m.get("ringgate_process_restarts_total", role="ingest") is None
    assert m.value("ringgate_odd", reason='a"b') == 1500
    with pytest.raises(AssertionError):
        m.value("ringgate_missing")
    with pytest.raises(ValueError):
        Metrics("this is not prometheus\n")


def test_check_error():
    check_error(404, b'{"error":"not_found","detail":"no route"}', 404, "not_found")
    with pytest.raises(AssertionError):
        check_error(404, b'{"error":"not_found"}', 404)                        # detail missing
    with pytest.raises(AssertionError):
        check_error(400, b'{"error":"x","detail":"y"}', 404)                   # status
    with pytest.raises(AssertionError):
        check_error(404, b"not found", 404)                                    # not JSON
    with pytest.raises(AssertionError):
        check_error(400, b'{"error":"bad_slot","detail":""}', 400, "bad_id")   # code


# --------------------------------------------------------------------------- fake servers

def serve_once(pieces: list[bytes], delay: float = 0.01, close: bool = True):
    """A one-connection server: reads the request head, sends `pieces` with small pauses."""
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(1)
    port = ls.getsockname()[1]
    got = {}

    def run():
        ls.settimeout(5)
        try:
            c, _ = ls.accept()
        except OSError:
            return
        with c:
            c.settimeout(5)
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = c.recv(4096)
                if not chunk:
                    break
                data += chunk
            got["request"] = data
            for p in pieces:
                c.sendall(p)
                time.sleep(delay)
            if not close:
                time.sleep(1.0)
        ls.close()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return port, got, t


def chunked(body: bytes, sizes: list[int]) -> list[bytes]:
    out, i = [], 0
    for n in sizes:
        part = body[i:i + n]
        i += n
        if part:
            out.append(b"%x\r\n" % len(part) + part + b"\r\n")
    if i < len(body):
        out.append(b"%x\r\n" % (len(body) - i) + body[i:] + b"\r\n")
    out.append(b"0\r\n\r\n")
    # split the wire bytes at awkward places too
    wire = b"".join(out)
    return [wire[j:j + 5] for j in range(0, len(wire), 5)]


def test_sse_stream_chunked_over_socket():
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
    port, got, t = serve_once([head] + chunked(CANNED, [13, 1, 30, 2, 100]), delay=0.001)
    s = SSEStream(port, "/v1/slots/a/stream", {"Last-Event-ID": "5f3a9c01-7"})
    items = []
    while (item := s.next_item(3)) is not None:
        items.append(item)
    assert items == expected_items()
    assert b"Last-Event-ID: 5f3a9c01-7\r\n" in got["request"]
    assert got["request"].startswith(b"GET /v1/slots/a/stream HTTP/1.1\r\n")
    s.close()
    t.join(5)


def test_sse_stream_close_delimited_and_timeout():
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n"
    port, _, t = serve_once([head, b"retry: 1000\n\n", b"id: e-1\ndata: a\n\n"], delay=0.05, close=False)
    s = SSEStream(port, "/x")
    assert s.first_retry(2).ms == 1000
    assert s.read_events(1, 2)[0].data == "a"
    t0 = time.monotonic()
    with pytest.raises(TimeoutError):
        s.next_item(0.3)
    assert time.monotonic() - t0 < 1.0
    assert s.next_item(3) is None          # server closes after ~1 s
    s.close()
    t.join(5)


def test_raw_connection_pipelined_responses():
    r1 = b'HTTP/1.1 200 OK\r\nContent-Length: 15\r\nContent-Type: application/json\r\n\r\n{"status":"ok"}'
    r2 = b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
    port, got, t = serve_once([r1 + r2[:10], r2[10:]])
    with RawConnection(port) as c:
        c.send(request_bytes("GET", "/healthz") + request_bytes("GET", "/nope"))
        a = c.read_response(3)
        b = c.read_response(3)
    assert (a.status, a.json()) == (200, {"status": "ok"})
    assert (b.status, b.body) == (404, b"abcde")
    t.join(5)


# --------------------------------------------------------------------------- /proc helpers

def test_children_of_and_cmdline():
    p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(5)", "--index", "3"])
    try:
        kids = children_of(os.getpid())
        assert p.pid in kids
        # Popen returns once the child's exec has released the parent (vfork), which can be
        # before the kernel has set the new image's argument area: /proc/PID/cmdline is empty
        # for that moment. Ask again for up to 2 s.
        deadline = time.monotonic() + 2
        c = describe_child(p.pid)
        while c is None and time.monotonic() < deadline:
            time.sleep(0.01)
            c = describe_child(p.pid)
        assert c is not None and c.argv[:2] == [sys.executable, "-c"] and c.role == "-c" and c.index == 3
    finally:
        p.kill()
        p.wait()
    assert p.pid not in children_of(os.getpid())


def test_server_socket_owner():
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(1)
    port = ls.getsockname()[1]
    cl = socket.create_connection(("127.0.0.1", port), timeout=2)
    sv, _ = ls.accept()
    try:
        client_port = cl.getsockname()[1]
        inode = server_socket_inode(port, client_port)
        assert inode is not None
        assert inode == os.fstat(sv.fileno()).st_ino
        assert pid_holding_socket(inode, [os.getpid()]) == os.getpid()
        assert server_socket_inode(port, 1) is None
    finally:
        for s in (cl, sv, ls):
            s.close()
