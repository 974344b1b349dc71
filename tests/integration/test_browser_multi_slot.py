"""Several slots on one stream in a real browser: a page served from another origin (another loopback
port, named in the gateway's `--cors-origins`) opens one `EventSource` on `/v1/stream?slot=…&slot=…`
and listens with `addEventListener` for each slot's name and for one `slot/type`. It must receive
every event of both slots exactly once, in id order, each through the listener of its name (nothing
through `onmessage`), across a `kill -9` of every worker too (the browser reconnects by itself with
`Last-Event-ID`). Headless Debian Chromium via browsertest.py; every wait bounded, browser quit."""
from __future__ import annotations

import os
import signal
import time
from urllib.parse import urlsplit

import pytest

from rgtest import Publisher, describe_mismatch, pid_alive, seq_of, wait_until

from browsertest import browser, serve_page  # noqa: F401  (fixture)

NEWS, SPORT, TYPED, OTHER = "news", "sport.eu", "goal", "weather"
LISTEN = [NEWS, SPORT, f"{SPORT}/{TYPED}"]          # the names the page listens to

PAGE = b"""<!doctype html><html><head><meta charset="utf-8"><title>multi-slot page</title></head>
<body><script>
const now = () => performance.now();
window.got = []; window.unnamed = []; window.errors = []; window.opens = []; window.resets = [];
window.closes = []; window.leaked = [];
window.subscribe = function (url, names, notNamed) {
  const es = new EventSource(url);
  window.es = es;
  es.onopen = () => { window.opens.push(now()); };
  es.onerror = () => { window.errors.push([now(), es.readyState]); };
  es.onmessage = (e) => { window.unnamed.push([e.type, e.lastEventId, e.data]); };
  for (const name of names) {
    es.addEventListener(name, (e) => { window.got.push([name, e.type, e.lastEventId, e.data]); });
  }
  for (const name of notNamed) {
    es.addEventListener(name, (e) => { window.leaked.push([name, e.lastEventId, e.data]); });
  }
  es.addEventListener("reset", (e) => { window.resets.push(e.data); });
  es.addEventListener("close", (e) => { window.closes.push(e.data); });
};
</script></body></html>"""


# Round-robin: news, sport.eu, sport.eu typed `goal`, and weather (never listened to).
ROUND = [(NEWS, None), (SPORT, None), (SPORT, TYPED), (OTHER, None)]


def interleaved_data(i: int, slot: str) -> str:
    return f"{i} ✓ {slot}" if i % 9 else f"{i}\nsecond line of {slot}"


def listened(published) -> list[tuple[str, str, str, str]]:
    """What the page must see: [listener name, event type, lastEventId, data] of the news/sport.eu events."""
    out = []
    for eid, slot, typ, data in published:
        if slot in (NEWS, SPORT):
            name = slot if typ is None else f"{slot}/{typ}"
            out.append((name, name, eid, data))
    return out


def js(driver, expr: str):
    return driver.execute_script(f"return {expr};")


def got(browser) -> list[tuple]:
    return [tuple(e) for e in js(browser, "window.got")]


def check_exactly_once_in_order(seen: list[tuple], expected: list[tuple]) -> None:
    ids = [e[2] for e in seen]
    dups = len(ids) - len(set(ids))
    assert dups == 0, f"{dups} duplicated ids: {describe_mismatch(ids, [e[2] for e in expected])}"
    seqs = [seq_of(i) for i in ids]
    assert seqs == sorted(seqs), f"not in id order: {describe_mismatch(ids, sorted(ids, key=seq_of))}"
    assert seen == expected, describe_mismatch(seen, expected)


@pytest.fixture
def page_url():
    with serve_page(PAGE) as url:
        yield url


def start(gateway, page_url, browser):
    """The gateway allowing only the page's origin, and the page open (on another origin)."""
    parts = urlsplit(page_url)
    origin = f"{parts.scheme}://{parts.netloc}"
    gw = gateway("--cors-origins", origin, workers=2)
    browser.get(page_url)
    assert js(browser, "location.origin") == origin and origin != gw.sub_url
    return gw


def subscribe(browser, url: str) -> None:
    browser.execute_script("window.subscribe(arguments[0], arguments[1], arguments[2]);", url, LISTEN,
                           [OTHER, f"{OTHER}/{TYPED}"])
    wait_until(lambda: js(browser, "window.opens.length > 0 || window.errors.length > 0"), 10,
               what="the EventSource to open")
    assert js(browser, "window.opens.length") == 1, f"the EventSource failed: {js(browser, 'window.errors')}"


@pytest.mark.timeout(60)
def test_eventsource_two_slots_every_event_once_in_id_order(gateway, page_url, browser):
    gw = start(gateway, page_url, browser)
    marker = gw.publish(OTHER, "before everything")
    published = []
    for i in range(48):
        slot, typ = ROUND[i % 4]
        if i % 8 == 1:
            data = f"line one of {i}\nline two\n\nline four after an empty one"
        elif i % 8 == 5:
            data = f"héllo {i} ✓ 日本語 🎉 — «ünïcödé»"
        else:
            data = f"event {i}"
        published.append((gw.publish(slot, data, type=typ), slot, typ, data))
    subscribe(browser, f"{gw.sub_url}/v1/stream?slot={NEWS}&slot={SPORT}&after={marker}")
    # the catch-up, then live events; the last one published is listened to, so once it is in, any
    # duplicate, reordering or event of `weather` (listened to as well, into window.leaked) is in too
    for i in range(48, 60):
        slot, typ = ROUND[i % 4]
        published.append((gw.publish(slot, f"live {i}", type=typ), slot, typ, f"live {i}"))
    published.append((gw.publish(NEWS, "the last"), NEWS, None, "the last"))
    expected = listened(published)
    assert {e[0] for e in expected} == set(LISTEN)
    wait_until(lambda: js(browser, "window.got.length") >= len(expected), 15, interval=0.1,
               what=f"{len(expected)} events in the page")
    check_exactly_once_in_order(got(browser), expected)
    assert js(browser, "window.leaked") == [], "events of a slot not named reached the page"
    assert js(browser, "window.unnamed") == [], "events reached onmessage: a multi-slot event has its slot's name"
    assert js(browser, "window.errors") == [] and js(browser, "window.resets") == []
    assert len(js(browser, "window.opens")) == 1
    browser.execute_script("window.es.close();")


@pytest.mark.timeout(90)
def test_eventsource_two_slots_across_kill9_of_the_workers(gateway, page_url, browser):
    gw = start(gateway, page_url, browser)
    subscribe(browser, f"{gw.sub_url}/v1/stream?slot={NEWS},{SPORT}")
    pub = Publisher(gw, round=ROUND, data=interleaved_data, interval=0.01)
    pub.start()
    try:
        wait_until(lambda: js(browser, "window.got.length") >= 20, 10, what="20 events before the kill")
        before = dict(gw.workers())
        page_t_kill = js(browser, "performance.now()")
        for pid in before.values():            # every worker: whichever holds the browser's stream
            os.kill(pid, signal.SIGKILL)
        wait_until(lambda: not any(pid_alive(p) for p in before.values()), 5, what="the workers to die")
        wait_until(lambda: js(browser, "window.opens.length") >= 2, 20, interval=0.05,
                   what="the EventSource to reopen by itself after kill -9")
        after = dict(gw.workers())
        assert set(after.values()).isdisjoint(before.values()), (before, after)
        n_mid = len(pub.ids)
        wait_until(lambda: len(pub.ids) >= n_mid + 40, 10, what="40 more publishes after the reconnect")
    finally:
        pub.stop()
    assert pub.errors == [], pub.errors[:5]
    last = gw.publish(NEWS, "the last")
    expected = listened(pub.published + [(last, NEWS, None, "the last")])
    wait_until(lambda: js(browser, "window.got.length") >= len(expected), 15, interval=0.1,
               what=f"all {len(expected)} events")
    seen = got(browser)
    # the stream opened without a cursor: it starts at some event after the subscribe, then misses
    # nothing (the publisher started after `open`, so that is its first event)
    check_exactly_once_in_order(seen, expected)
    assert js(browser, "window.leaked") == [], "events of a slot not named reached the page"
    assert js(browser, "window.unnamed") == [] and js(browser, "window.resets") == []
    opens, errors = js(browser, "window.opens"), js(browser, "window.errors")
    assert len(opens) >= 2 and len(errors) >= 1, (opens, errors)
    print(f"\nkill -9: {len(expected)} events of {len(pub.published) + 1} published, opens={len(opens)} "
          f"errors={len(errors)}, reopen {opens[-1] - page_t_kill:.0f} ms after the kill")
    browser.execute_script("window.es.close();")
