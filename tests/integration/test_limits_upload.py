"""Issue 10 item 8: uploads are judged when their head is complete (401/413 before the body is
read), bodies in progress share a bounded buffer, and a body that keeps arriving may take longer
than the header timeout while one that stalls gets 408."""
from __future__ import annotations

import json
import time

from rgtest import RawConnection, check_error, proc_rss_bytes, request_bytes

TOKEN = "s3cret"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def ingest_pid(gw) -> int:
    return next(c.pid for c in gw.children() if c.role == "ingest")


def head_only(target: str, length: int, headers: dict | None = None) -> bytes:
    h = {"Content-Length": str(length)}
    h.update(headers or {})
    return request_bytes("POST", target, h)


def test_unauthenticated_uploads_get_401_before_their_body_and_are_not_buffered(gateway):
    gw = gateway("--publish-token", TOKEN, workers=1)
    pid = ingest_pid(gw)
    rss_before = proc_rss_bytes(pid)
    conns = [RawConnection(gw.pub_port, timeout=3.0) for _ in range(40)]
    try:
        for i, c in enumerate(conns):
            target = "/v1/events" if i % 2 else "/v1/slots/up/events"
            c.send(head_only(target, 16_000_000) + b"x" * 1024)
        for i, c in enumerate(conns):
            try:
                r = c.read_response(3.0)
            except TimeoutError:
                raise AssertionError(f"client {i}: no answer 3 s after its head (of a 16000000-byte body, "
                                     "1 KiB sent): the body is being read before the token is checked")
            check_error(r.status, r.body, 401, "unauthorized", f"client {i}")
            assert r.headers.get("connection", "").lower() == "close", r.headers
        # The clients go on sending their bodies: the ingest must not keep them.
        chunk = b"y" * (256 << 10)
        peak = 0
        for _ in range(4):
            for c in conns:
                try:
                    c.sock.settimeout(0.5)
                    c.sock.sendall(chunk)
                except OSError:
                    pass
            peak = max(peak, proc_rss_bytes(pid))
        print(f"ingest VmRSS: {rss_before / 1e6:.1f} MB before, peak {peak / 1e6:.1f} MB while 40 "
              f"unauthenticated clients sent up to 1 MiB of body each")
        assert peak < 100e6, f"ingest RSS reached {peak / 1e6:.0f} MB"
    finally:
        for c in conns:
            c.close()
    assert gw.metrics().value("ringgate_publish_rejected_total") >= 40


def test_body_over_the_route_limit_gets_413_before_it_is_read(gateway):
    gw = gateway("--max-event-bytes", "1KiB", workers=1)
    with RawConnection(gw.pub_port, timeout=3.0) as c:
        c.send(head_only("/v1/slots/up/events", 2_000_000) + b"z" * 100)
        try:
            r = c.read_response(3.0)
        except TimeoutError:
            raise AssertionError("no 413 before the body was sent")
        doc = check_error(r.status, r.body, 413, "payload_too_large", "a single publish over --max-event-bytes")
        assert "--max-event-bytes" in doc["detail"], doc


def test_bodies_in_progress_share_the_pending_body_budget(gateway):
    gw = gateway("--max-pending-body-bytes", "1MiB", "--max-batch-bytes", "1MiB", workers=1)
    first = RawConnection(gw.pub_port, timeout=5.0)
    second = RawConnection(gw.pub_port, timeout=5.0)
    try:
        body = (json.dumps({"slot": "budget", "data": "a" * 60_000}) + "\n").encode() * 13
        assert 700_000 < len(body) < 1 << 20
        first.send(head_only("/v1/events", len(body)) + body[:1000])
        time.sleep(0.2)   # let the ingest take the first head before the second arrives
        second.send(head_only("/v1/events", len(body)) + body[:1000])
        r = second.read_response(3.0)
        doc = check_error(r.status, r.body, 503, "over_capacity", "a body past --max-pending-body-bytes")
        assert "--max-pending-body-bytes" in doc["detail"], doc
        assert r.headers.get("retry-after"), r.headers
        first.send(body[1000:])
        r = first.read_response(5.0)
        assert r.status == 201, r
        m = gw.metrics()
        assert m.value("ringgate_pending_body_rejected_total") == 1
        assert m.value("ringgate_pending_body_bytes") == 0
    finally:
        first.close()
        second.close()
    # Within the budget again: an upload of the same size goes through.
    with RawConnection(gw.pub_port, timeout=5.0) as c:
        c.send(head_only("/v1/events", len(body)) + body)
        assert c.read_response(5.0).status == 201


def test_slow_large_batch_outlives_the_header_timeout(gateway):
    gw = gateway("--header-timeout", "1s", workers=1)
    line = json.dumps({"slot": "bulk", "data": "d" * 60_000}) + "\n"
    n = 16_000_000 // len(line)
    body = (line * n).encode()
    assert 15_000_000 < len(body) <= 16 << 20
    with RawConnection(gw.pub_port, timeout=10.0) as c:
        c.send(head_only("/v1/events", len(body), {"Content-Type": "application/x-ndjson"}))
        pieces = 30
        step = len(body) // pieces + 1
        t0 = time.monotonic()
        for i in range(pieces):
            c.send(body[i * step:(i + 1) * step])
            time.sleep(0.1)   # a slow link: the body takes ~3 s, three header timeouts
        elapsed = time.monotonic() - t0
        r = c.read_response(30.0)
        assert r.status == 201, f"{r.status} after {elapsed:.1f}s: {r.body[:300]!r}"
        assert len(r.json()["ids"]) == n
    assert elapsed > 2.0


def test_stalled_body_gets_408_after_the_body_timeout(gateway):
    gw = gateway("--body-timeout", "1s", "--header-timeout", "30s", workers=1)
    with RawConnection(gw.pub_port, timeout=5.0) as c:
        c.send(head_only("/v1/slots/stall/events", 1000) + b"s" * 10)
        t0 = time.monotonic()
        r = c.read_response(5.0)
        doc = check_error(r.status, r.body, 408, "request_timeout", "a body that stalls")
        assert "body" in doc["detail"], doc
        assert time.monotonic() - t0 < 4.0
    assert gw.metrics().value("ringgate_http_errors_total", status="408") >= 1
