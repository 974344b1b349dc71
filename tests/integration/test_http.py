"""Scenario 12 and HTTP basics: health endpoints, keep-alive, pipelining."""
from __future__ import annotations

import time

from rgtest import RawConnection, request_bytes, seq_of


def test_health_endpoints(gateway):
    gw = gateway(workers=2)
    r = gw.sub.get("/healthz")
    assert (r.status_code, r.json()) == (200, {"status": "ok"})
    r = gw.sub.get("/readyz")
    assert (r.status_code, r.json()) == (200, {"status": "ready"})


def test_pipelined_gets_answered_in_order(gateway):
    gw = gateway(workers=2)
    ids = [gw.publish("pp", f"pp{i}") for i in range(3)]
    with RawConnection(gw.sub_port) as c:
        c.send(request_bytes("GET", "/healthz") + request_bytes("GET", "/v1/slots/pp/events?limit=2")
               + request_bytes("GET", "/nope"))
        r1, r2, r3 = c.read_response(), c.read_response(), c.read_response()
        assert (r1.status, r1.json()) == (200, {"status": "ok"})
        assert r2.status == 200 and [e["id"] for e in r2.json()["events"]] == ids[1:]
        assert r3.status == 404                  # an error does not break the connection's order
        # keep-alive: the same connection serves another request later
        time.sleep(0.2)
        c.send(request_bytes("GET", "/readyz"))
        r4 = c.read_response()
        assert (r4.status, r4.json()) == (200, {"status": "ready"})


def test_pipelined_publishes_answered_in_order(gateway):
    gw = gateway(workers=1)
    bodies = [b"one", b"two", b"three"]
    with RawConnection(gw.pub_port) as c:
        c.send(b"".join(request_bytes("POST", "/v1/slots/pq/events", body=b) for b in bodies))
        rs = [c.read_response() for _ in bodies]
    assert [r.status for r in rs] == [201, 201, 201]
    ids = [r.json()["id"] for r in rs]
    assert [seq_of(i) for i in ids] == sorted(seq_of(i) for i in ids)
    doc = gw.history("pq")
    assert [(e["id"], e["data"]) for e in doc["events"]] == list(zip(ids, ["one", "two", "three"]))


def test_pipelined_publishes_to_a_slow_reader_are_all_answered_in_order(gateway):
    """Thousands of pipelined publishes whose answers cannot all be sent at once (the client's
    window is small and it does not read at first): the answers leave in pieces, each send
    carrying what is left of the last one and everything answered since, and the client must
    still get every answer exactly once, in request order."""
    gw = gateway(workers=1)
    n = 4000
    with RawConnection(gw.pub_port, rcvbuf=4096, timeout=20) as c:
        c.send(b"".join(request_bytes("POST", "/v1/slots/pw/events", body=b"e%d" % i) for i in range(n)))
        time.sleep(0.5)   # the answers pile up behind a shut window
        rs = [c.read_response() for _ in range(n)]
    assert [r.status for r in rs] == [201] * n
    ids = [r.json()["id"] for r in rs]
    assert [seq_of(i) for i in ids] == list(range(seq_of(ids[0]), seq_of(ids[0]) + n))
    doc = gw.history("pw", limit=1000)
    assert [(e["id"], e["data"]) for e in doc["events"]] == [(ids[i], f"e{i}") for i in range(n - 1000, n)]


def test_connection_close_is_honoured(gateway):
    gw = gateway(workers=1)
    with RawConnection(gw.sub_port) as c:
        c.send(request_bytes("GET", "/healthz", {"Connection": "close"}))
        r = c.read_response()
        assert r.status == 200
        deadline = time.monotonic() + 3
        while not c.eof:
            c.recv_some(deadline)         # TimeoutError if the server keeps the connection open
        assert c.buf == b""
