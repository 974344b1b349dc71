"""Review finding 7 (issue 10 follow-up): a chunked upload to the single-event route is held to
--max-event-bytes as its chunks arrive, not only once the whole body (up to --max-batch-bytes)
was buffered."""
from __future__ import annotations

import json
import time

from rgtest import RawConnection, check_error

EVENT_LIMIT = 1024


def test_a_chunked_single_event_over_the_event_limit_gets_413_as_it_crosses_it(gateway):
    gw = gateway("--max-event-bytes", str(EVENT_LIMIT), "--max-batch-bytes", str(1 << 20), workers=1)
    conn = RawConnection(gw.pub_port, timeout=5.0)
    try:
        conn.send(b"POST /v1/slots/chunky/events HTTP/1.1\r\nHost: t\r\nContent-Type: text/plain\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\n")
        # Three chunks of 512 bytes: the third crosses the event limit. The body is not ended
        # (no last chunk): the answer must come from the limit, not from the end of the body.
        for _ in range(3):
            conn.send(b"200\r\n" + b"e" * 512 + b"\r\n")
        try:
            r = conn.read_response(3.0)
        except TimeoutError:
            raise AssertionError("no answer 3 s after 1536 bytes of a chunked single event (limit "
                                 f"{EVENT_LIMIT}): the body is being buffered up to the batch limit")
        doc = check_error(r.status, r.body, 413, "payload_too_large", "chunked single event")
        assert "--max-event-bytes" in doc["detail"], doc
    finally:
        conn.close()
    # Nothing was published, and an event within the limit still is.
    assert gw.metrics().value("ringgate_http_errors_total", status="413") >= 1
    gw.publish("chunky", "x" * 100)


def test_healthz_with_a_body_after_its_head_answers_as_with_the_body_in_the_head(gateway):
    """Review finding 12: one route decision for the head hook and the request handler."""
    gw = gateway(workers=1)
    for split in (False, True):
        with RawConnection(gw.pub_port, timeout=5.0) as conn:
            head = b"POST /healthz HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n\r\n"
            if split:
                conn.send(head)
                time.sleep(0.2)   # the head alone reaches the ingest first
                conn.send(b"ping")
            else:
                conn.send(head + b"ping")
            r = conn.read_response(5.0)
            assert r.status == 200, (split, r.status, r.body)
            assert json.loads(r.body) == {"status": "ok"}, r.body


def test_an_unauthenticated_health_probe_cannot_take_an_events_worth_of_body_budget(gateway):
    """/healthz on the publish listener needs no token, so a body there is held to 1 KiB: a
    probe that declares 64 KiB is refused at its head (413) instead of reserving part of
    --max-pending-body-bytes that publishers need."""
    gw = gateway("--publish-token", "s3cret", workers=1)
    with RawConnection(gw.pub_port, timeout=5.0) as conn:
        conn.send(b"POST /healthz HTTP/1.1\r\nHost: t\r\nContent-Length: 65536\r\n\r\n")
        r = conn.read_response(3.0)
    check_error(r.status, r.body, 413, "payload_too_large", what="POST /healthz with a 64 KiB body")
    assert gw.metrics().value("ringgate_pending_body_bytes") == 0
