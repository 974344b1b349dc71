"""Issue 10 item 10: at --max-connections, /metrics and /healthz still answer (a small reserve
of connections per worker serves only the admin paths) while new streams get 503."""
from __future__ import annotations

from rgtest import RawConnection, check_error, request_bytes


def test_admin_paths_answer_at_the_connection_limit(gateway):
    gw = gateway("--max-connections", "20", "--heartbeat", "30s", workers=2)
    streams = []
    try:
        for _ in range(20):
            streams.append(gw.stream("full"))
        for path in ("/metrics", "/healthz", "/readyz"):
            with RawConnection(gw.sub_port, timeout=5.0) as c:
                c.send(request_bytes("GET", path))
                r = c.read_response(5.0)
                assert r.status == 200, f"GET {path} at the connection limit answered {r.status}: {r.body[:200]!r}"
                if path == "/metrics":
                    assert b"ringgate_connections{transport=\"sse\"} 20" in r.body, r.body[:500]
        # A keep-alive admin connection may ask for the admin paths again, but nothing else.
        with RawConnection(gw.sub_port, timeout=5.0) as c:
            c.send(request_bytes("GET", "/healthz"))
            assert c.read_response(5.0).status == 200
            c.send(request_bytes("GET", "/v1/slots/full/events?limit=1"))
            r = c.read_response(5.0)
            check_error(r.status, r.body, 503, "over_capacity", "a history pull on a reserve connection")
        with RawConnection(gw.sub_port, timeout=5.0) as c:
            c.send(request_bytes("GET", "/v1/slots/full/stream", {"Accept": "text/event-stream"}))
            r = c.read_response(5.0)
            check_error(r.status, r.body, 503, "over_capacity", "a new stream at the connection limit")
            assert r.headers.get("retry-after"), r.headers
        # The streams that were admitted go on.
        eid = gw.publish("full", "still-here")
        for s in streams:
            ev = next(i for i in iter(lambda: s.next_item(5.0), None) if getattr(i, "id", None))
            assert ev.id == eid
    finally:
        for s in streams:
            s.close()


def test_a_keep_alive_scraper_on_the_reserve_does_not_lower_the_ordinary_capacity(gateway):
    """Review finding 8: reserve connections have their own gauge, outside the host-wide limit."""
    gw = gateway("--max-connections", "2", "--heartbeat", "30s", workers=1)
    streams = [gw.stream("cap"), gw.stream("cap")]
    scraper = RawConnection(gw.sub_port, timeout=5.0)
    try:
        # At the limit: the scraper lands on the admin reserve and stays on keep-alive.
        scraper.send(request_bytes("GET", "/metrics"))
        r = scraper.read_response(5.0)
        assert r.status == 200, r.status
        streams.pop().close()
        # One ordinary place is free again, whatever the scraper does.
        for _ in range(50):
            scraper.send(request_bytes("GET", "/metrics"))
            body = scraper.read_response(5.0).body
            if b'ringgate_connections{transport="sse"} 1' in body:
                break
        else:
            raise AssertionError("the closed stream was never counted out")
        streams.append(gw.stream("cap"))   # fails with 503 when the scraper takes the free place
        scraper.send(request_bytes("GET", "/metrics"))
        body = scraper.read_response(5.0).body
        assert b'ringgate_connections{transport="admin"} 1' in body, body[:600]
        assert b'ringgate_connections{transport="http"} 0' in body, body[:600]
    finally:
        scraper.close()
        for s in streams:
            s.close()
