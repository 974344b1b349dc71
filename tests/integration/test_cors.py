"""Issue 10 item 17, on the wire: CORS headers on every subscriber response (`--cors-origins`,
default `*`), preflights answered, and WebSocket handshakes restricted by `--ws-origins`.
The same from a real browser is in test_cors_browser.py."""
from __future__ import annotations

import json
import subprocess

import pytest
import websockets
from websockets.sync.client import connect as ws_connect

from rgtest import RawConnection, binary_path, check_error, raw_request, request_bytes

PAGE = "http://page.example:8000"


def get(gw, path: str, headers: dict[str, str], method: str = "GET"):
    return raw_request(gw.sub_port, request_bytes(method, path, headers))


def preflight(gw, path: str, origin: str, request_headers: str = "last-event-id, authorization"):
    return get(gw, path, {"Origin": origin, "Access-Control-Request-Method": "GET",
                          "Access-Control-Request-Headers": request_headers}, method="OPTIONS")


def test_default_allows_any_origin_on_every_response(gateway):
    gw = gateway(workers=1)
    gw.publish("c", "one")
    for path in ["/v1/slots/c/events?limit=5", "/healthz", "/metrics"]:
        r = get(gw, path, {"Origin": PAGE})
        assert r.status == 200, (path, r.status, r.body[:200])
        assert r.headers.get("access-control-allow-origin") == "*", (path, r.headers)
        assert "content-type" in r.headers.get("access-control-expose-headers", "").lower(), (path, r.headers)
    # errors are readable by the page too
    r = get(gw, "/v1/slots/c/events?limit=0", {"Origin": PAGE})
    check_error(r.status, r.body, 400, "bad_limit", what="limit=0")
    assert r.headers.get("access-control-allow-origin") == "*", r.headers
    # the SSE prelude
    with gw.stream("c", headers={"Origin": PAGE}) as s:
        assert s.headers.get("access-control-allow-origin") == "*", s.headers
        assert s.headers.get("cache-control") == "no-cache"


@pytest.mark.parametrize("path", ["/v1/slots/c/events", "/v1/slots/c/stream", "/healthz"],
                         ids=["events", "stream", "healthz"])
def test_preflight_is_answered(gateway, path):
    gw = gateway(workers=1)
    r = preflight(gw, path, PAGE)
    assert r.status == 204, (r.status, r.body[:300])
    assert r.body == b""
    assert r.headers.get("access-control-allow-origin") == "*"
    methods = {m.strip() for m in r.headers.get("access-control-allow-methods", "").split(",")}
    assert {"GET", "HEAD", "OPTIONS"} <= methods, r.headers
    allowed = {h.strip().lower() for h in r.headers.get("access-control-allow-headers", "").split(",")}
    assert {"last-event-id", "authorization", "cache-control"} <= allowed, r.headers
    assert int(r.headers.get("access-control-max-age", "0")) > 0, r.headers
    # the connection stays usable after a 204 (no body, keep-alive)
    with RawConnection(gw.sub_port) as c:
        c.send(request_bytes("OPTIONS", path, {"Origin": PAGE, "Access-Control-Request-Method": "GET"}))
        assert c.read_response().status == 204
        c.send(request_bytes("GET", "/healthz", {"Origin": PAGE}))
        assert c.read_response().status == 200


@pytest.mark.parametrize("path", ["/v1/slots/c/ws", "/v1/ws?slot=a,b"], ids=["slot-ws", "multi-ws"])
def test_websocket_preflight_lists_only_its_methods(gateway, path):
    """A WebSocket route has no HEAD (405): its preflight and Allow say GET, OPTIONS."""
    gw = gateway(workers=1)
    r = preflight(gw, path, PAGE)
    assert r.status == 204, (r.status, r.body[:300])
    methods = [m.strip() for m in r.headers.get("access-control-allow-methods", "").split(",")]
    assert methods == ["GET", "OPTIONS"], r.headers
    assert [m.strip() for m in r.headers.get("allow", "").split(",")] == ["GET", "OPTIONS"], r.headers
    head = get(gw, path, {"Origin": PAGE}, method="HEAD")
    assert head.status == 405 and "HEAD" not in head.headers.get("allow", ""), (head.status, head.headers)


def test_origin_list_echoes_listed_origins_only(gateway):
    gw = gateway("--cors-origins", "http://a.example,https://b.example:8443", workers=1)
    gw.publish("c", "one")
    r = get(gw, "/v1/slots/c/events", {"Origin": "https://b.example:8443"})
    assert r.status == 200
    assert r.headers.get("access-control-allow-origin") == "https://b.example:8443", r.headers
    assert "origin" in r.headers.get("vary", "").lower(), r.headers

    r = get(gw, "/v1/slots/c/events", {"Origin": "http://evil.example"})
    assert r.status == 200, "the request itself is served; the browser keeps the page from reading it"
    assert "access-control-allow-origin" not in r.headers, r.headers
    assert "origin" in r.headers.get("vary", "").lower(), r.headers

    with gw.stream("c", headers={"Origin": "http://a.example"}) as s:
        assert s.headers.get("access-control-allow-origin") == "http://a.example", s.headers

    r = preflight(gw, "/v1/slots/c/events", "http://a.example")
    assert r.status == 204 and r.headers.get("access-control-allow-origin") == "http://a.example", r.headers
    r = preflight(gw, "/v1/slots/c/events", "http://evil.example")
    doc = check_error(r.status, r.body, 403, "origin_not_allowed", what="preflight from an unlisted origin")
    assert "evil.example" in doc["detail"]
    assert "access-control-allow-origin" not in r.headers, r.headers
    assert gw.metrics().value("ringgate_origin_rejected_total", check="cors") == 2

    # no Origin: not a page's request; nothing to allow or refuse
    r = get(gw, "/v1/slots/c/events", {})
    assert r.status == 200 and "access-control-allow-origin" not in r.headers


def test_ws_origins_refuses_other_origins(gateway):
    gw = gateway("--ws-origins", "http://a.example", workers=1)
    url = f"ws://127.0.0.1:{gw.sub_port}/v1/slots/w/ws"
    with pytest.raises(websockets.exceptions.InvalidStatus) as refused:
        ws_connect(url, origin="http://b.example", open_timeout=5, close_timeout=2)
    assert refused.value.response.status_code == 403
    doc = json.loads(refused.value.response.body)
    assert doc["error"] == "origin_not_allowed" and "b.example" in doc["detail"], doc

    for origin in ["http://a.example", None]:   # a listed origin; a client that is not a browser
        with ws_connect(url, origin=origin, open_timeout=5, close_timeout=2) as ws:
            event_id = gw.publish("w", f"to {origin}")
            msg = json.loads(ws.recv(timeout=5))
            assert msg["id"] == event_id and msg["data"] == f"to {origin}", msg
    assert gw.metrics().value("ringgate_origin_rejected_total", check="websocket") == 1


@pytest.mark.parametrize("flag,value", [("--cors-origins", "https://a.example/app"),
                                        ("--cors-origins", "a.example"),
                                        ("--ws-origins", "http://a.example,,http://b.example"),
                                        ("--watchdog-timeout", "soon"),
                                        ("--watchdog-timeout", "100ms")])
def test_bad_flag_values_are_refused_precisely(flag, value):
    argv = [str(binary_path()), "serve", "--listen", "127.0.0.1:0", "--publish-listen", "127.0.0.1:0",
            "--workers", "1", "--ephemeral", flag, value]
    p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=20)
    assert p.returncode != 0
    assert "ringgate ready" not in p.stdout
    assert f"{flag} {value}" in p.stderr, p.stderr[-1000:]
