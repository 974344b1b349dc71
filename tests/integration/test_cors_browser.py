"""Issue 10 item 17 in a real browser: a page served from another origin (another loopback
port) opens an EventSource to the gateway, receives what the test publishes, and `fetch`es
history, with and without a preflight; with `--cors-origins` naming some other origin the
browser refuses both. Headless Debian Chromium through selenium; bounded, always quit."""
from __future__ import annotations


import pytest

from rgtest import wait_until

from browsertest import browser, serve_page  # noqa: F401  (fixture)


PAGE = b"""<!doctype html><html><head><meta charset="utf-8"><title>cross-origin page</title></head>
<body><script>
window.got = []; window.errors = []; window.opened = false;
window.subscribe = function (url) {
  const es = new EventSource(url);
  window.es = es;
  es.onopen = () => { window.opened = true; };
  es.onmessage = (e) => { window.got.push([e.lastEventId, e.data]); };
  es.onerror = () => { window.errors.push(es.readyState); };
};
window.wsGot = []; window.wsClosed = null; window.wsOpened = false;
window.openSocket = function (url) {
  const ws = new WebSocket(url);
  window.ws = ws;
  ws.onopen = () => { window.wsOpened = true; };
  ws.onmessage = (e) => { window.wsGot.push(JSON.parse(e.data)); };
  ws.onclose = (e) => { window.wsClosed = e.code; };
};
window.fetchJSON = function (url, headers, done) {
  fetch(url, {headers: headers || {}})
    .then((r) => r.json().then((body) => done({ok: true, status: r.status, body: body})))
    .catch((e) => done({ok: false, error: String(e)}));
};
</script></body></html>"""


@pytest.fixture
def page_url():
    """The test page on its own loopback port: another origin than the gateway's."""
    with serve_page(PAGE) as url:
        yield url


def fetch_json(driver, url: str, headers: dict[str, str] | None = None) -> dict:
    return driver.execute_async_script(
        "window.fetchJSON(arguments[0], arguments[1], arguments[arguments.length - 1]);", url, headers or {})


@pytest.mark.timeout(90)
def test_page_on_another_origin_streams_and_fetches(gateway, page_url, browser):
    gw = gateway(workers=1)
    browser.get(page_url)
    assert browser.execute_script("return location.origin") != gw.sub_url, "the page must be on another origin"
    browser.execute_script("window.subscribe(arguments[0]);", f"{gw.sub_url}/v1/slots/br/stream")
    wait_until(lambda: browser.execute_script("return window.opened || window.errors.length > 0"), 10,
               what="the EventSource to open")
    assert browser.execute_script("return window.opened") is True, \
        f"EventSource failed: readyState {browser.execute_script('return window.errors')}"

    published = [(gw.publish("br", f"event {i}"), f"event {i}") for i in range(3)]
    got = wait_until(lambda: (g := browser.execute_script("return window.got")) and len(g) >= 3 and g, 10,
                     what="the browser to receive 3 events")
    assert [tuple(e) for e in got] == published

    history = fetch_json(browser, f"{gw.sub_url}/v1/slots/br/events?limit=10")
    assert history["ok"], history
    assert [(e["id"], e["data"]) for e in history["body"]["events"]] == published

    # a header of its own (Authorization, Last-Event-ID) makes the browser send a preflight first
    with_headers = fetch_json(browser, f"{gw.sub_url}/v1/slots/br/events?limit=1",
                              {"Authorization": "Bearer page-token", "Last-Event-ID": published[0][0]})
    assert with_headers["ok"], with_headers
    assert [e["id"] for e in with_headers["body"]["events"]] == [published[-1][0]]
    # an error answer is readable too
    bad = fetch_json(browser, f"{gw.sub_url}/v1/slots/br/events?limit=0")
    assert bad["ok"] and bad["status"] == 400 and bad["body"]["error"] == "bad_limit", bad
    browser.execute_script("window.es.close();")

    # WebSocket from the page: any origin by default
    browser.execute_script("window.openSocket(arguments[0]);", f"ws://127.0.0.1:{gw.sub_port}/v1/slots/br/ws")
    wait_until(lambda: browser.execute_script("return window.wsOpened || window.wsClosed !== null"), 10,
               what="the WebSocket to open")
    assert browser.execute_script("return window.wsOpened") is True, browser.execute_script("return window.wsClosed")
    ws_id = gw.publish("br", "over websocket")
    got_ws = wait_until(lambda: browser.execute_script("return window.wsGot"), 10, what="a WebSocket message")
    assert [(m["id"], m["data"]) for m in got_ws] == [(ws_id, "over websocket")]
    browser.execute_script("window.ws.close();")


@pytest.mark.timeout(90)
def test_unlisted_origin_is_refused_by_the_browser(gateway, page_url, browser):
    gw = gateway("--cors-origins", "http://a.example", "--ws-origins", "http://a.example", workers=1)
    gw.publish("br", "hidden")
    browser.get(page_url)
    history = fetch_json(browser, f"{gw.sub_url}/v1/slots/br/events?limit=10")
    assert history["ok"] is False and "fetch" in history["error"].lower(), history
    browser.execute_script("window.subscribe(arguments[0]);", f"{gw.sub_url}/v1/slots/br/stream")
    # the browser closes the stream at once: readyState 2 (CLOSED), nothing delivered
    wait_until(lambda: 2 in browser.execute_script("return window.errors"), 10,
               what="the EventSource to fail with readyState CLOSED")
    assert browser.execute_script("return window.opened") is False
    assert browser.execute_script("return window.got") == []
    wait_until(lambda: (gw.metrics().get("ringgate_origin_rejected_total", check="cors") or 0) >= 2, 5,
               what="the refused requests to be counted")
    # the WebSocket handshake from this page's origin is refused (403): the browser never opens it
    browser.execute_script("window.openSocket(arguments[0]);", f"ws://127.0.0.1:{gw.sub_port}/v1/slots/br/ws")
    wait_until(lambda: browser.execute_script("return window.wsClosed") is not None, 10,
               what="the refused WebSocket to close")
    assert browser.execute_script("return window.wsOpened") is False
    assert browser.execute_script("return window.wsClosed") == 1006
    assert gw.metrics().value("ringgate_origin_rejected_total", check="websocket") == 1
