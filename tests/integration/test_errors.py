"""Scenario 5: bad requests get the documented status and a JSON {"error","detail"} body, and a
bad publish appends nothing."""
from __future__ import annotations

import time
from dataclasses import dataclass

import pytest

from rgtest import RawConnection, check_error, raw_request, request_bytes, seq_of, start_shared_gateway

TOKEN = "s3cret"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SLOT128 = "s" * 128
SLOT129 = "s" * 129


@pytest.fixture(scope="module")
def gw(ringgate_bin, tmp_path_factory):
    g = start_shared_gateway(ringgate_bin, tmp_path_factory, "errors",
                             "--publish-token", TOKEN, "--max-event-bytes", "1KiB",
                             "--max-limit", "50", "--header-timeout", "2s")
    try:
        for i in range(3):
            g.publish("a", f"a{i}", token=TOKEN)
        yield g
    finally:
        g.close()


@dataclass
class Case:
    name: str
    port: str              # "sub" or "pub"
    raw: bytes
    status: int
    codes: tuple[str, ...]
    allow: str | None = None


def post(target: str, body: bytes, headers: dict | None = None, auth: bool = True) -> bytes:
    h = dict(AUTH) if auth else {}
    h.update(headers or {})
    return request_bytes("POST", target, h, body)


def get(target: str, headers: dict | None = None) -> bytes:
    return request_bytes("GET", target, headers)


CASES = [
    Case("garbage-request-line-sub", "sub", b"GARBAGE\r\n\r\n", 400, ("bad_request",)),
    Case("garbage-request-line-pub", "pub", b"GARBAGE\r\n\r\n", 400, ("bad_request",)),
    Case("headers-too-large-sub", "sub", get("/healthz", {"X-Big": "a" * (17 * 1024)}), 431, ("headers_too_large",)),
    Case("headers-too-large-pub", "pub", post("/v1/slots/a/events", b"x", {"X-Big": "a" * (17 * 1024)}),
         431, ("headers_too_large",)),
    Case("uri-too-long-sub", "sub", get("/v1/slots/a/events?after=" + "1" * 9000), 414, ("uri_too_long",)),
    Case("uri-too-long-pub", "pub", post("/v1/slots/a/events?type=" + "t" * 9000, b"x"), 414, ("uri_too_long",)),
    Case("unknown-route-sub", "sub", get("/v1/nope"), 404, ("not_found",)),
    Case("unknown-route-pub", "pub", post("/v1/nope", b"x"), 404, ("not_found",)),
    Case("delete-on-subscribe-port", "sub", request_bytes("DELETE", "/v1/slots/a/events"), 405,
         ("method_not_allowed",), allow="GET"),
    Case("get-batch-on-publish-port", "pub", get("/v1/events", AUTH), 405, ("method_not_allowed",), allow="POST"),
    Case("bad-slot-space-history", "sub", get("/v1/slots/bad%20name/events?limit=10"), 400, ("bad_slot",)),
    Case("bad-slot-space-stream", "sub", get("/v1/slots/bad%20name/stream"), 400, ("bad_slot",)),
    Case("bad-slot-129-history", "sub", get(f"/v1/slots/{SLOT129}/events?limit=10"), 400, ("bad_slot",)),
    Case("bad-slot-space-publish", "pub", post("/v1/slots/bad%20name/events", b"x"), 400, ("bad_slot",)),
    Case("bad-slot-129-publish", "pub", post(f"/v1/slots/{SLOT129}/events", b"x"), 400, ("bad_slot",)),
    Case("bad-type-publish", "pub", post("/v1/slots/a/events?type=bad%20type", b"x"), 400, ("bad_type",)),
    Case("bad-type-65-publish", "pub", post("/v1/slots/a/events?type=" + "t" * 65, b"x"), 400, ("bad_type",)),
    # `event: reset` / `event: close` are the stream's own: a published one would look like them
    Case("reserved-type-reset-publish", "pub", post("/v1/slots/a/events?type=reset", b'{"fake":1}'), 400, ("reserved_type",)),
    Case("reserved-type-close-batch", "pub", post("/v1/events", b'{"slot":"a","type":"close","data":"x"}\n'), 400,
         ("reserved_type", "bad_batch")),
    Case("bad-after-history", "sub", get("/v1/slots/a/events?after=nonsense&limit=10"), 400, ("bad_id",)),
    Case("bad-after-stream", "sub", get("/v1/slots/a/stream?after=nonsense"), 400, ("bad_id",)),
    Case("bad-limit-text", "sub", get("/v1/slots/a/events?limit=abc"), 400, ("bad_limit",)),
    Case("bad-limit-negative", "sub", get("/v1/slots/a/events?limit=-1"), 400, ("bad_limit",)),
    Case("limit-over-max", "sub", get("/v1/slots/a/events?limit=51"), 400, ("bad_limit",)),
    Case("not-utf8", "pub", post("/v1/slots/a/events", b"ok \xff\xfe\xfd"), 415, ("not_utf8",)),
    Case("not-utf8-overlong", "pub", post("/v1/slots/a/events", b"\xc0\xaf"), 415, ("not_utf8",)),
    Case("not-utf8-surrogate", "pub", post("/v1/slots/a/events", b"\xed\xa0\x80"), 415, ("not_utf8",)),
    Case("not-utf8-truncated", "pub", post("/v1/slots/a/events", b"caf\xc3"), 415, ("not_utf8",)),
    Case("event-too-large", "pub", post("/v1/slots/a/events", b"y" * 1025), 413, ("payload_too_large",)),
    Case("no-length", "pub", request_bytes("POST", "/v1/slots/a/events", AUTH), 411, ("length_required",)),
    Case("no-token", "pub", post("/v1/slots/a/events", b"x", auth=False), 401, ("unauthorized",)),
    Case("wrong-token", "pub", post("/v1/slots/a/events", b"x", {"Authorization": "Bearer nope"}, auth=False),
         401, ("unauthorized",)),
    Case("basic-auth-not-bearer", "pub",
         post("/v1/slots/a/events", b"x", {"Authorization": "Basic czNjcmV0"}, auth=False), 401, ("unauthorized",)),
    Case("batch-no-token", "pub", post("/v1/events", b'{"slot":"a","data":"x"}\n', auth=False), 401,
         ("unauthorized",)),
]


def log_state(gw) -> tuple[str, list]:
    """(a fresh sentinel id, the events of slot a) — a probe that an append would disturb."""
    sentinel = gw.publish("sentinel", "probe", token=TOKEN)
    return sentinel, gw.history("a", limit=50)["events"]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_bad_request(gw, case):
    before_sentinel, before_a = log_state(gw)
    port = gw.sub_port if case.port == "sub" else gw.pub_port
    r = raw_request(port, case.raw)
    check_error(r.status, r.body, case.status, case.codes, what=case.name)
    assert r.headers.get("content-type", "").startswith("application/json"), r.headers
    if case.allow:
        allow = [m.strip() for m in r.headers.get("allow", "").split(",")]
        assert case.allow in allow, f"405 must say Allow: {case.allow}, got {r.headers.get('allow')!r}"
    after_sentinel, after_a = log_state(gw)
    # seqs are dense across all slots: anything appended in between would show as a gap
    assert seq_of(after_sentinel) == seq_of(before_sentinel) + 1, f"{case.name} appended something"
    assert after_a == before_a


def test_boundaries_are_accepted(gw):
    eid = gw.publish(SLOT128, "128-byte slot name", token=TOKEN)
    assert gw.history(SLOT128, limit=10)["head"] == eid
    eid = gw.publish("a", "y" * 1024, token=TOKEN)                       # exactly --max-event-bytes
    assert gw.history("a", limit=1)["events"][0]["data"] == "y" * 1024
    eid = gw.publish("a", "é" * 512, token=TOKEN)                        # 1024 bytes of 2-byte chars
    assert gw.history("a", limit=1)["events"][0]["data"] == "é" * 512
    assert len(gw.history("a", limit=50)["events"]) <= 50
    eid = gw.publish("a", "typed", type="a." + "t" * 62, token=TOKEN)     # 64-byte type
    assert gw.history("a", limit=1)["events"][0]["type"] == "a." + "t" * 62
    assert eid


def test_publish_token(gw):
    r = gw.post_event("a", "no token")
    check_error(r.status_code, r.content, 401, "unauthorized")
    r = gw.post_event("a", "wrong", token="S3CRET")
    check_error(r.status_code, r.content, 401, "unauthorized")
    r = gw.post_event("a", "right", token=TOKEN)
    assert r.status_code == 201, r.text
    assert gw.history("a", limit=1)["events"][0]["data"] == "right"
    # reading never needs the token
    assert gw.sub.get("/v1/slots/a/events?limit=5").status_code == 200


def test_header_timeout(gw):
    with RawConnection(gw.sub_port, timeout=8) as c:
        c.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")          # never finished
        t0 = time.monotonic()
        r = c.read_response(8)
        elapsed = time.monotonic() - t0
    check_error(r.status, r.body, 408, "request_timeout")
    assert 1.0 <= elapsed <= 5.0, f"--header-timeout 2s answered after {elapsed:.1f}s"
