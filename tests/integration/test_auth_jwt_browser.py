"""Subscriber JWTs in a real browser (issue 14): headless Chromium, the page on another origin.
An EventSource with `?token=` receives a slot's events; its token expires mid-stream, the
page gets `event: close` `{"reason":"token_expired"}` as a named event, asks for a fresh token and
reopens with `?after=` its last id, ending with every event exactly once. A WebSocket from the
page with `?token=` likewise ends with close code 4001 at expiry. A same-origin page (the
status page) is authorized by the `--jwt-cookie` cookie alone."""
from __future__ import annotations

import time

import pytest

from rgtest import wait_until

import jwt

from browsertest import browser, serve_page  # noqa: F401  (fixture)

SECRET = "browser-test-secret-" + "x" * 24

PAGE = b"""<!doctype html><html><head><meta charset="utf-8"><title>jwt page</title></head><body><script>
window.got = []; window.closes = []; window.opens = 0; window.tokens = []; window.failures = 0;
// The app's token source: the test pushes fresh tokens into window.tokens.
function nextToken() { return window.tokens.shift(); }
window.follow = function (base, slot, after) {
  let last = after;
  const open = () => {
    const token = nextToken();
    if (!token) { window.failures += 1; return; }
    const es = new EventSource(base + "/v1/slots/" + slot + "/stream?token=" + token + (last ? "&after=" + last : ""));
    window.es = es;
    es.onopen = () => { window.opens += 1; };
    es.onmessage = (e) => { window.got.push([e.lastEventId, e.data]); last = e.lastEventId; };
    es.addEventListener("close", (e) => {
      const body = JSON.parse(e.data);
      window.closes.push(body);
      if (body.reason === "token_expired") { es.close(); open(); }   // renew, resume after `last`
    });
    es.onerror = () => { if (es.readyState === EventSource.CLOSED) window.failures += 1; };
  };
  open();
};
window.wsNotices = []; window.wsCode = null;
window.openSocket = function (url) {
  const ws = new WebSocket(url);
  ws.onmessage = (e) => { const m = JSON.parse(e.data); if (m.event) window.wsNotices.push(m); };
  ws.onclose = (e) => { window.wsCode = e.code; };
};
</script></body></html>"""


@pytest.fixture
def page_url():
    """The test page on its own loopback port: another origin than the gateway's."""
    with serve_page(PAGE) as url:
        yield url


def token(slots, seconds: float) -> str:
    return jwt.encode({"exp": int(time.time() + seconds), "slots": slots, "sub": "page"}, SECRET, algorithm="HS256")


@pytest.fixture
def auth_gateway(gateway, tmp_path):
    (tmp_path / "secret").write_text(SECRET)
    return gateway("--subscribe-auth", "jwt", "--jwt-hs256-secret-file", str(tmp_path / "secret"),
                   "--jwt-leeway", "0", "--jwt-cookie", "rg_token", workers=2)


@pytest.mark.timeout(90)
def test_query_token_expires_mid_stream_page_renews_and_misses_nothing(auth_gateway, page_url, browser):
    gw = auth_gateway
    start = gw.publish("jb", "before")
    browser.get(page_url)
    assert browser.execute_script("return location.origin") != gw.sub_url
    # the first token lives ~3 s; the renewal is a long one
    browser.execute_script("window.tokens.push(arguments[0], arguments[1]);",
                           token(["jb"], 3), token(["jb"], 120))
    browser.execute_script("window.follow(arguments[0], 'jb', arguments[1]);", gw.sub_url, start)
    wait_until(lambda: browser.execute_script("return window.opens") >= 1, 10, what="the EventSource to open")
    published = []
    deadline = time.monotonic() + 6
    while time.monotonic() < deadline:              # across the expiry at ~3 s
        published.append((gw.publish("jb", f"e{len(published)}"), f"e{len(published)}"))
        time.sleep(0.1)
    got = wait_until(lambda: (g := browser.execute_script("return window.got")) and len(g) >= len(published) and g,
                     10, what="every event in the page")
    assert [tuple(x) for x in got] == published, "the page must end with every event exactly once, in order"
    closes = browser.execute_script("return window.closes")
    assert closes == [{"reason": "token_expired"}], closes
    assert browser.execute_script("return window.opens") == 2 and browser.execute_script("return window.failures") == 0
    m = gw.metrics()
    assert m.value("ringgate_disconnects_total", reason="token_expired") >= 1


@pytest.mark.timeout(60)
def test_websocket_from_the_page_closes_4001_at_expiry(auth_gateway, page_url, browser):
    gw = auth_gateway
    browser.get(page_url)
    ws_url = gw.sub_url.replace("http://", "ws://") + f"/v1/slots/jw/ws?token={token(['jw'], 2)}"
    browser.execute_script("window.openSocket(arguments[0]);", ws_url)
    code = wait_until(lambda: browser.execute_script("return window.wsCode"), 10, what="the WebSocket to close")
    assert code == 4001, code
    assert browser.execute_script("return window.wsNotices") == [{"event": "close", "reason": "token_expired"}]


@pytest.mark.timeout(60)
def test_same_origin_page_is_authorized_by_the_cookie(auth_gateway, browser):
    gw = auth_gateway
    gw.publish("ck", "one")
    # No token yet: the status page itself is refused.
    browser.get(gw.sub_url + "/")
    assert "unauthorized" in browser.page_source
    # The cookie for the gateway's origin (as a login on the same site would set it).
    browser.add_cookie({"name": "rg_token", "value": token(["*"], 120), "path": "/"})
    browser.get(gw.sub_url + "/")
    wait_until(lambda: browser.execute_script("return window.statusFrames || 0") >= 1, 10,
               what="the status page's stats stream, authorized by the cookie")
    assert browser.execute_script("return window.lastStatus.published") == 1
