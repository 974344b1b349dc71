"""Several slots on one stream, against the real binary with real clients: `GET /v1/stream?slot=a&slot=b`
(SSE), `GET /v1/ws?slot=a&slot=b` (WebSocket) and `GET /v1/events?slot=a&slot=b` (history merged by
seq). What a user sees: every event of the named slots once, in id order, framed with its slot
(`event: slot` or `event: slot/type`, a `slot` member on WebSocket and history); one id resumes every
slot; a lapped reader gets one `reset` per slot that lost events, naming it; the 400s (missing_slot,
bad_slot, duplicate_slot, too_many_slots, reserved_slot) open nothing and too_many_slots is counted
as `ringgate_stream_slot_limit_total`; `--max-subscribers-per-slot` holds for each slot named; a JWT
must allow every slot named."""
from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass

import httpx
import jwt  # PyJWT
import pytest
import websockets
from httpx_sse import connect_sse

from rgtest import (RawConnection, Response, SSEStream, check_error, describe_mismatch, epoch_of,
                    fetch_metrics, request_bytes, seq_of, wait_sse_zero, wait_until)

# Slot names that use the charset's punctuation; OTHER is published to but never named.
SLOTS = ["alpha", "beta.2", "g:3"]
OTHER = "delta"
WS_HANDSHAKE = {"Upgrade": "websocket", "Connection": "Upgrade",
                "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version": "13"}
EVENT_KEYS = {"id", "slot", "type", "data", "time"}


@dataclass(frozen=True)
class Pub:
    id: str
    slot: str
    type: str | None        # None: the default type `message`
    data: str

    @property
    def sse_name(self) -> str:
        """The `event:` field a multi-slot SSE stream gives it: `slot`, or `slot/type`."""
        return self.slot if self.type in (None, "message") else f"{self.slot}/{self.type}"

    @property
    def wire_type(self) -> str:
        return self.type or "message"


def data_for(i: int) -> str:
    """Data that must reach the reader unchanged: several lines, an empty line, lookalike fields, UTF-8."""
    k = i % 6
    if k == 1:
        return f"line one of {i}\nline two\n\nline four after an empty one"
    if k == 3:
        return f"héllo {i} ✓ 日本語 🎉\nevent: fake\nid: 00000000-1"
    if k == 5:
        return json.dumps({"n": i, "looks": "like json"})
    return f"e{i}"


def publish_interleaved(gw, slots: list[str], n: int, start: int = 0, typed_every: int = 5) -> list[Pub]:
    """n events round-robin over `slots`; every `typed_every`-th (offset 2) has type `tick`."""
    out = []
    for i in range(start, start + n):
        slot = slots[i % len(slots)]
        typ = "tick" if i % typed_every == 2 else None
        data = data_for(i)
        out.append(Pub(gw.publish(slot, data, type=typ), slot, typ, data))
    return out


def named(pubs: list[Pub], slots: list[str]) -> list[Pub]:
    return [p for p in pubs if p.slot in slots]


def query(slots: list[str] | str, **params: str | None) -> str:
    """`["a","b"]` -> `slot=a&slot=b`; a str is taken as is (`slot=a,b`); params appended."""
    q = slots if isinstance(slots, str) else "&".join(f"slot={s}" for s in slots)
    extra = "&".join(f"{k}={v}" for k, v in params.items() if v is not None)
    return "&".join(x for x in (q, extra) if x)


def multi_stream(gw, q: str, last_event_id: str | None = None, headers: dict | None = None,
                 timeout: float = 5.0) -> SSEStream:
    h = dict(headers or {})
    if last_event_id is not None:
        h["Last-Event-ID"] = last_event_id
    s = SSEStream(gw.sub_port, f"/v1/stream?{q}", h, timeout=timeout)
    if s.status != 200:
        s.close()
        raise AssertionError(f"GET /v1/stream?{q} answered {s.status}: {getattr(s, 'body', b'')!r}")
    ctype = s.headers.get("content-type", "")
    assert ctype.split(";")[0].strip() == "text/event-stream", f"content-type {ctype!r}"
    return s


def ws_url(gw, q: str) -> str:
    return f"ws://127.0.0.1:{gw.sub_port}/v1/ws?{q}"


async def recv_json(ws, timeout: float = 5.0) -> dict:
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


def frames(events) -> list[tuple[str, str, str]]:
    return [(e.id, e.event, e.data) for e in events]


def expected_frames(pubs: list[Pub]) -> list[tuple[str, str, str]]:
    return [(p.id, p.sse_name, p.data) for p in pubs]


def assert_ascending(ids: list[str]) -> None:
    seqs = [seq_of(i) for i in ids]
    assert all(a < b for a, b in zip(seqs, seqs[1:])), f"ids not strictly ascending: {ids}"


def request(gw, method: str, target: str, headers: dict | None = None, timeout: float = 5.0) -> Response:
    """One request on a fresh connection (`Connection: close`); a HEAD reads the head only."""
    h = {"Connection": "close", **(headers or {})}
    with RawConnection(gw.sub_port, timeout=timeout) as c:
        c.send(request_bytes(method, target, h))
        if method == "HEAD":
            status, reason, hdrs = c.read_head(time.monotonic() + timeout)
            return Response(status, reason, hdrs, b"")
        return c.read_response(timeout)


def history(gw, q: str, headers: dict | None = None) -> dict:
    r = gw.sub.get(f"/v1/events?{q}", headers=headers or {})
    assert r.status_code == 200, f"GET /v1/events?{q} answered {r.status_code}: {r.text[:500]}"
    assert r.headers.get("content-type", "").startswith("application/json"), r.headers
    return r.json()


# ----------------------------------------------------------------------------- (a) SSE, 3 slots

def test_sse_three_slots_every_event_in_id_order_with_slot_names(gateway):
    gw = gateway(workers=2)
    marker = gw.publish(OTHER, "before everything")      # seqs are global: a cursor for every slot
    pubs = publish_interleaved(gw, SLOTS + [OTHER], 40)
    sentinel = Pub(gw.publish("beta.2", "sentinel"), "beta.2", None, "sentinel")   # newest event of all
    expected = named(pubs, SLOTS) + [sentinel]
    assert {p.sse_name for p in expected} >= {"alpha", "beta.2", "g:3", "alpha/tick", "beta.2/tick", "g:3/tick"}

    # repeated `slot`, a comma list, and both mixed: the same stream
    for q in (query(SLOTS), "slot=alpha,beta.2,g:3", "slot=alpha,beta.2&slot=g:3"):
        with multi_stream(gw, q, last_event_id=marker) as s:
            got = s.read_events(len(expected), timeout=10)
            assert frames(got) == expected_frames(expected), \
                f"{q}: " + describe_mismatch(frames(got), expected_frames(expected))
            assert_ascending([e.id for e in got])
            for e, p in zip(got, expected):
                assert e.data_lines == p.data.count("\n") + 1, (e, p)
            wire = bytes(s.raw).replace(b"\r\n", b"\n")
            assert b"event: g:3/tick\n" in wire or b"event:g:3/tick\n" in wire, wire[:400]
            assert b"event: alpha\n" in wire or b"event:alpha\n" in wire, wire[:400]
            assert b"delta" not in wire, "an event of the slot not named reached the stream"

            # caught up: now live, the same rules (OTHER interleaved, not delivered)
            live = publish_interleaved(gw, SLOTS + [OTHER], 12, start=100)
            live_expected = named(live, SLOTS)
            got = s.read_events(len(live_expected), timeout=5)
            assert frames(got) == expected_frames(live_expected), \
                f"{q} live: " + describe_mismatch(frames(got), expected_frames(live_expected))
            expected = expected + live_expected
            last = Pub(gw.publish("alpha", "last of this round"), "alpha", None, "last of this round")
            ev = s.next_event(5)
            assert ev is not None and (ev.id, ev.event, ev.data) == (last.id, "alpha", last.data), ev
            expected.append(last)

    # a third-party client (httpx-sse) sees the same names, ids and data
    url = f"{gw.sub_url}/v1/stream?slot=alpha,beta.2,g:3"
    seen = []
    with httpx.Client(timeout=httpx.Timeout(5.0), trust_env=False) as client:
        with connect_sse(client, "GET", url, headers={"Last-Event-ID": marker}) as es:
            assert es.response.status_code == 200
            for sse in es.iter_sse():
                if sse.data == "" and sse.event == "message":       # the retry frame
                    continue
                seen.append((sse.id, sse.event, sse.data))
                if len(seen) == len(expected):
                    break
    assert seen == expected_frames(expected), describe_mismatch(seen, expected_frames(expected))

    # the single-slot route is unchanged: `event:` is the type, no slot in it
    with gw.stream("alpha", last_event_id=marker) as s:
        alpha = [p for p in expected if p.slot == "alpha"]
        got = s.read_events(len(alpha), timeout=5)
        assert frames(got) == [(p.id, p.wire_type, p.data) for p in alpha]


# ----------------------------------------------------------------------------- (b) resume

@pytest.mark.parametrize("how", ["Last-Event-ID", "after", "lastEventId"])
def test_sse_resume_after_disconnect_every_remaining_event_once(gateway, how):
    gw = gateway(workers=2)
    marker = gw.publish(OTHER, "before everything")
    first = publish_interleaved(gw, SLOTS + [OTHER], 30)
    with multi_stream(gw, query(SLOTS), last_event_id=marker) as s:
        got = s.read_events(13, timeout=10)
    expected_first = named(first, SLOTS)
    assert frames(got) == expected_frames(expected_first[:13]), \
        describe_mismatch(frames(got), expected_frames(expected_first[:13]))
    last = got[-1].id
    last_slot = next(p.slot for p in first if p.id == last)
    # more events in every slot while away; one id (of one slot) resumes all of them
    second = publish_interleaved(gw, SLOTS + [OTHER], 30, start=30)
    expected = named(first + second, SLOTS)
    rest_expected = expected[13:]
    assert {p.slot for p in rest_expected} == set(SLOTS)
    assert any(p.slot != last_slot for p in rest_expected)
    if how == "Last-Event-ID":
        s = multi_stream(gw, query(SLOTS), last_event_id=last)
    else:
        s = multi_stream(gw, query(SLOTS, **{how: last}))
    with s:
        rest = s.read_events(len(rest_expected), timeout=10)
        assert frames(rest) == expected_frames(rest_expected), \
            f"resumed with {how}={last}: " + describe_mismatch(frames(rest), expected_frames(rest_expected))
        gw.publish(OTHER, "not for us")
        live = gw.publish("g:3", "live", type="late")
        ev = s.next_event(5)
        assert ev is not None and (ev.id, ev.event, ev.data) == (live, "g:3/late", "live"), ev
    ids = [e.id for e in got + rest] + [live]
    assert len(ids) == len(set(ids)), f"duplicates: {describe_mismatch(ids, [p.id for p in expected] + [live])}"
    assert ids == [p.id for p in expected] + [live]


# ----------------------------------------------------------------------------- (c) WebSocket

def test_websocket_two_slots_json_with_slot_in_order(gateway):
    gw = gateway(workers=2)
    two = ["alpha", "beta.2"]
    marker = gw.publish(OTHER, "before everything")
    pubs = publish_interleaved(gw, two + ["g:3", OTHER], 24)
    sentinel = Pub(gw.publish("alpha", "sentinel"), "alpha", None, "sentinel")
    expected = named(pubs, two) + [sentinel]
    t_now = int(time.time() * 1000)

    def check(msgs: list[dict], pubs: list[Pub], what: str) -> None:
        got = [(m.get("id"), m.get("slot"), m.get("type"), m.get("data")) for m in msgs]
        want = [(p.id, p.slot, p.wire_type, p.data) for p in pubs]
        assert got == want, f"{what}: " + describe_mismatch(got, want)
        for m in msgs:
            assert set(m) == EVENT_KEYS, m
            assert isinstance(m["time"], int) and abs(m["time"] - t_now) < 60_000, m

    async def scenario():
        async with websockets.connect(ws_url(gw, query(two, after=marker))) as ws:
            msgs = [await recv_json(ws) for _ in range(len(expected))]
            check(msgs, expected, "catch-up")
            live = publish_interleaved(gw, two + ["g:3", OTHER], 12, start=100)
            live_expected = named(live, two)
            msgs = [await recv_json(ws) for _ in range(len(live_expected))]
            check(msgs, live_expected, "live")
        everything = expected + live_expected
        # resume from the middle, with lastEventId and a comma list
        k = 9
        async with websockets.connect(ws_url(gw, f"slot=alpha,beta.2&lastEventId={everything[k].id}")) as ws:
            msgs = [await recv_json(ws) for _ in range(len(everything) - k - 1)]
            check(msgs, everything[k + 1:], "resumed")
            gw.publish("g:3", "not for us")
            last = Pub(gw.publish("beta.2", "last", type="t2"), "beta.2", "t2", "last")
            check([await recv_json(ws)], [last], "live after the resume")
        # the single-slot route is unchanged: no slot member
        async with websockets.connect(f"ws://127.0.0.1:{gw.sub_port}/v1/slots/alpha/ws?after={marker}") as ws:
            m = await recv_json(ws)
            assert set(m) == {"id", "type", "data", "time"} and m["id"] == expected[0].id, m

    asyncio.run(scenario())


# ----------------------------------------------------------------------------- (d) history

def test_history_of_two_slots_pages_by_next_and_newest_limit(gateway):
    gw = gateway(workers=2)
    two = ["alpha", "beta.2"]
    marker = gw.publish(OTHER, "before everything")
    pubs = publish_interleaved(gw, two + ["g:3", OTHER], 60)
    expected = named(pubs, two)
    a = [p for p in expected if p.slot == "alpha"]
    b = [p for p in expected if p.slot == "beta.2"]
    want = [(p.id, p.slot, p.wire_type, p.data) for p in expected]

    def entries(doc) -> list[tuple]:
        for e in doc["events"]:
            assert set(e) == EVENT_KEYS and isinstance(e["time"], int), e
        return [(e["id"], e["slot"], e["type"], e["data"]) for e in doc["events"]]

    # paging with after=next walks every event of both slots once, in id order
    for q in (query(two), "slot=alpha,beta.2"):
        pages, after = [], marker
        for _ in range(50):
            doc = history(gw, f"{q}&after={after}&limit=7")
            assert doc["slots"] == two, doc
            assert doc["reset"] is False, doc
            assert doc["oldest"] == {"alpha": a[0].id, "beta.2": b[0].id}, doc["oldest"]
            assert doc["head"] == {"alpha": a[-1].id, "beta.2": b[-1].id}, doc["head"]
            page = entries(doc)
            pages.append(page)
            if not page:
                assert doc["next"] == after, f"an empty page must echo after={after} as next: {doc}"
                break
            assert len(page) <= 7 and doc["next"] == page[-1][0], doc
            after = doc["next"]
        got = [e for p in pages for e in p]
        assert got == want, f"{q}: " + describe_mismatch(got, want)
        assert [len(p) for p in pages] == [7] * (len(want) // 7) + ([len(want) % 7] if len(want) % 7 else []) + [0]
        assert_ascending([e[0] for e in got])

    # without after: the newest `limit` of both slots merged, oldest first
    doc = history(gw, query(two, limit="10"))
    assert entries(doc) == want[-10:], describe_mismatch(entries(doc), want[-10:])
    assert doc["next"] == want[-1][0] and doc["reset"] is False, doc

    # with after in the middle: exactly the next `limit` over both slots
    doc = history(gw, query(two, after=expected[4].id, limit="9"))
    assert entries(doc) == want[5:14], describe_mismatch(entries(doc), want[5:14])

    # a slot with no events: null in oldest/head, no events of its own
    doc = history(gw, query(["alpha", "never"], limit="1000"))
    assert doc["slots"] == ["alpha", "never"], doc
    assert doc["oldest"] == {"alpha": a[0].id, "never": None} and doc["head"] == {"alpha": a[-1].id, "never": None}, doc
    assert [e[0] for e in entries(doc)] == [p.id for p in a]

    # HEAD answers the GET's head
    r = request(gw, "HEAD", f"/v1/events?{query(two)}")
    assert r.status == 200 and r.headers.get("content-type", "").startswith("application/json"), r


# ----------------------------------------------------------------------------- (e) lapped

SMALL_RING = ("--log-capacity", "64KiB", "--max-event-bytes", "4KiB")
BIG = "x" * 1000           # ~1 KB events: a 64 KiB ring holds a few dozen


def retained(gw, slot: str) -> list[dict]:
    return gw.history(slot, limit=1000)["events"]


def test_lapped_reader_gets_a_reset_per_slot_that_lost_events(gateway):
    gw = gateway(*SMALL_RING, workers=2)
    two = ["alpha", "beta.2"]
    first = gw.publish("alpha", "first")
    pubs = [Pub(first, "alpha", None, "first")]
    # ~150 KB of alpha and an unnamed slot: `first` and alpha's early events are overwritten ...
    for i in range(150):
        slot = ["alpha", OTHER][i % 2]
        d = f"{i:04d}:{BIG}"
        pubs.append(Pub(gw.publish(slot, d), slot, None, d))
    # ... then beta.2 begins: every beta.2 event is retained
    for i in range(20):
        slot = two[i % 2]
        d = f"r{i:02d}:{BIG}"
        pubs.append(Pub(gw.publish(slot, d), slot, None, d))

    def state():
        ra, rb = retained(gw, "alpha"), retained(gw, "beta.2")
        kept = sorted(ra + rb, key=lambda e: seq_of(e["id"]))
        lost = {s: [p for p in pubs if p.slot == s and seq_of(p.id) > seq_of(first)
                    and seq_of(p.id) < seq_of(r[0]["id"])] for s, r in (("alpha", ra), ("beta.2", rb))}
        return ra, rb, kept, lost

    ra, rb, kept, lost = state()
    assert seq_of(ra[0]["id"]) > seq_of(first) + 1, "the ring must have overwritten `first`"
    assert rb[0]["id"] == next(p.id for p in pubs if p.slot == "beta.2"), "beta.2 must have lost nothing"
    assert lost["alpha"] and not lost["beta.2"]
    by_id = {p.id: p for p in pubs}

    # only alpha lost events: exactly one reset, naming alpha, then every retained event in order
    with multi_stream(gw, query(two), last_event_id=first) as s:
        got = s.read_events(1 + len(kept), timeout=10)
        reset, rest = got[0], got[1:]
        assert reset.event == "reset", f"expected `event: reset` first, got {frames(got[:3])}"
        info = reset.json()
        assert info.get("reason") == "lapped" and info.get("slot") == "alpha", info
        assert info.get("oldest") == ra[0]["id"] and info.get("head") == ra[-1]["id"], \
            f"reset {info}; alpha's history says oldest {ra[0]['id']} head {ra[-1]['id']}"
        assert "dropped" in info and info["dropped"] in (None, len(lost["alpha"])), \
            f"reset {info}: dropped must be null or the {len(lost['alpha'])} alpha events lost"
        want = [(e["id"], by_id[e["id"]].sse_name, e["data"]) for e in kept]
        assert frames(rest) == want, describe_mismatch(frames(rest), want)
        live = gw.publish("beta.2", "live")
        ev = s.next_event(5)
        assert ev is not None and (ev.id, ev.event, ev.data) == (live, "beta.2", "live"), ev
        pubs.append(Pub(live, "beta.2", None, "live"))

    # another ~150 KB over both named slots and the unnamed one: now both lost events
    for i in range(150):
        slot = ["alpha", "beta.2", OTHER][i % 3]
        d = f"{i + 1000:04d}:{BIG}"
        pubs.append(Pub(gw.publish(slot, d), slot, None, d))
    by_id = {p.id: p for p in pubs}
    ra, rb, kept, lost = state()
    assert lost["alpha"] and lost["beta.2"], "the second round must have overwritten events of both slots"
    want = [(e["id"], by_id[e["id"]].sse_name, e["data"]) for e in kept]
    slot_state = {"alpha": (ra, lost["alpha"]), "beta.2": (rb, lost["beta.2"])}

    def check_resets(infos: list[dict], what: str) -> None:
        assert sorted(i.get("slot") for i in infos) == sorted(two), f"{what}: one reset per slot, got {infos}"
        for i in infos:
            r, lost_s = slot_state[i["slot"]]
            assert i.get("reason") == "lapped", (what, i)
            assert i.get("oldest") == r[0]["id"] and i.get("head") == r[-1]["id"], \
                f"{what}: reset {i}; {i['slot']}'s history says oldest {r[0]['id']} head {r[-1]['id']}"
            assert "dropped" in i and i["dropped"] in (None, len(lost_s)), \
                f"{what}: reset {i}: dropped must be null or the {len(lost_s)} events lost"

    with multi_stream(gw, query(two), last_event_id=first) as s:
        got = s.read_events(2 + len(kept), timeout=10)
        kinds = [e.event for e in got[:3]]
        assert kinds[:2] == ["reset", "reset"] and kinds[2] != "reset", f"two resets first, got {frames(got[:3])}"
        check_resets([e.json() for e in got[:2]], "SSE")
        assert frames(got[2:]) == want, describe_mismatch(frames(got[2:]), want)

    async def ws_scenario():
        async with websockets.connect(ws_url(gw, query(two, after=first))) as ws:
            resets = [await recv_json(ws) for _ in range(2)]
            assert all(r.get("event") == "reset" for r in resets), resets
            check_resets(resets, "WebSocket")
            msgs = [await recv_json(ws) for _ in range(len(kept))]
            got = [(m["id"], m["slot"], m["data"]) for m in msgs]
            assert got == [(e["id"], by_id[e["id"]].slot, e["data"]) for e in kept]
            assert all("event" not in m for m in msgs), [m for m in msgs if "event" in m][:2]

    asyncio.run(ws_scenario())

    # an id from another log concerns the whole stream: one reset, slot null; then from the oldest
    epoch = epoch_of(first)
    foreign = ("00000001" if epoch != "00000001" else "00000002") + "-5"
    with multi_stream(gw, query(two), last_event_id=foreign) as s:
        got = s.read_events(1 + len(kept), timeout=10)
        assert got[0].event == "reset", frames(got[:2])
        info = got[0].json()
        assert info.get("reason") == "epoch" and "slot" in info and info["slot"] is None, info
        assert info.get("dropped", "absent") is None, info
        assert frames(got[1:]) == want, describe_mismatch(frames(got[1:]), want)
    m = fetch_metrics(gw.sub_port)
    assert m.value("ringgate_resets_total", reason="lapped") >= 5
    assert m.value("ringgate_resets_total", reason="epoch") >= 1


# ----------------------------------------------------------------------------- (f) the 400s

def refusals(route: str, eid: str) -> list[tuple[str, str]]:
    """(query, error code) that every multi-slot route must refuse with 400 (the slot limit is 3)."""
    cases = [
        ("", "missing_slot"),
        (f"after={eid}", "missing_slot"),
        ("slot=bad%20slot", "bad_slot"),
        ("slot=a%2Fb", "bad_slot"),
        ("slot=a&slot=" + "s" * 129, "bad_slot"),
        ("slot=a,,b", "bad_slot"),
        ("slot=a&slot=a", "duplicate_slot"),
        ("slot=a,b&slot=b", "duplicate_slot"),
        ("slot=c,c", "duplicate_slot"),
        ("slot=a&slot=b&slot=c&slot=d", "too_many_slots"),
        ("slot=a,b,c,d", "too_many_slots"),
    ]
    if route == "/v1/stream":
        cases += [("slot=reset", "reserved_slot"), ("slot=a&slot=close", "reserved_slot"),
                  ("slot=a,reset", "reserved_slot")]
    return cases


ROUTES = [("GET", "/v1/stream", {"Accept": "text/event-stream"}), ("HEAD", "/v1/stream", {}),
          ("GET", "/v1/ws", WS_HANDSHAKE), ("GET", "/v1/events", {}), ("HEAD", "/v1/events", {})]


def test_bad_requests_open_nothing_and_too_many_slots_is_counted(gateway):
    gw = gateway("--max-slots-per-stream", "3", "--max-subscribers-per-slot", "1", workers=2)
    for s in ("a", "b", "c", "x", "reset", "close"):
        gw.publish(s, f"in {s}")
    base = fetch_metrics(gw.sub_port)
    base_limit = base.get("ringgate_stream_slot_limit_total") or 0
    base_subs = base.get("ringgate_slot_subscriber_limit_total") or 0
    base_slots = base.value("ringgate_slots")
    eid = gw.publish("a", "a cursor")
    too_many, wrong = [], []
    for method, path, headers in ROUTES:
        for q, code in refusals(path, eid):
            target = f"{path}?{q}" if q else path
            r = request(gw, method, target, {"Origin": "http://page.example", **headers})
            what = f"{method} {target}"
            if code == "too_many_slots":
                too_many.append(what)
            if r.status != 400:
                wrong.append(f"{what}: {r.status} {r.body[:200]!r}")
                continue
            if path != "/v1/ws" and r.headers.get("access-control-allow-origin") != "*":
                wrong.append(f"{what}: no CORS header on the 400: {r.headers}")
            if method == "HEAD":
                continue
            try:
                doc = check_error(r.status, r.body, 400, code, what=what)
            except AssertionError as e:
                wrong.append(str(e))
                continue
            assert doc["detail"], doc
    assert not wrong, "\n".join(wrong)

    # the reserved names are refused on SSE only: WebSocket and history take them
    assert history(gw, "slot=reset&slot=close")["slots"] == ["reset", "close"]

    async def ws_takes_reserved_names():
        async with websockets.connect(ws_url(gw, f"slot=reset,close&after={eid}")) as ws:
            to_close = gw.publish("close", "to the slot named close")
            m = await recv_json(ws)
            assert (m["id"], m["slot"], m["data"]) == (to_close, "close", "to the slot named close"), m

    asyncio.run(ws_takes_reserved_names())

    # nothing was opened: no connection left, no slot made, no admission held
    m = wait_sse_zero(gw.sub_port, transports=("sse", "ws"))
    assert m.value("ringgate_slots") == base_slots, "a refused request changed the slot directory"
    assert m.value("ringgate_stream_slot_limit_total") - base_limit == len(too_many), \
        f"ringgate_stream_slot_limit_total moved by {m.value('ringgate_stream_slot_limit_total') - base_limit}, " \
        f"expected {len(too_many)} (the too_many_slots refusals: {too_many})"
    assert (m.get("ringgate_slot_subscriber_limit_total") or 0) == base_subs
    # --max-subscribers-per-slot 1: a, b and c (named in every refusal above) are still free
    marker = gw.publish("x", "marker")
    with multi_stream(gw, "slot=a&slot=b&slot=c", last_event_id=marker) as held:
        # ... and now held, each of them: a stream naming any of them is refused
        s = SSEStream(gw.sub_port, "/v1/slots/b/stream")
        with s:
            check_error(s.status, getattr(s, "body", b""), 503, "over_capacity", "single-slot b while held")
        s = SSEStream(gw.sub_port, "/v1/stream?slot=x&slot=c")
        with s:
            check_error(s.status, getattr(s, "body", b""), 503, "over_capacity", "x and c while c is held")
        # the refused x,c stream held nothing of x
        with multi_stream(gw, "slot=x") as sx:
            eid = gw.publish("c", "to the holder")
            ev = held.next_event(5)
            assert ev is not None and (ev.id, ev.event) == (eid, "c"), ev
            sx.close()
    m = fetch_metrics(gw.sub_port)
    assert (m.get("ringgate_slot_subscriber_limit_total") or 0) - base_subs == 2, m.text


def test_slot_limit_default_16_and_from_the_environment(gateway):
    gw = gateway(workers=2)
    sixteen = [f"s{i}" for i in range(16)]
    seventeen = sixteen + ["s16"]
    marker = gw.publish("s15", "marker")
    eid = gw.publish("s3", "in s3")
    with multi_stream(gw, query(sixteen), last_event_id=marker) as s:
        ev = s.next_event(5)
        assert ev is not None and (ev.id, ev.event) == (eid, "s3"), ev
    assert history(gw, query(sixteen))["slots"] == sixteen

    async def ws_sixteen():
        async with websockets.connect(ws_url(gw, query(sixteen, after=marker))) as ws:
            assert (await recv_json(ws))["id"] == eid

    asyncio.run(ws_sixteen())
    base = fetch_metrics(gw.sub_port).get("ringgate_stream_slot_limit_total") or 0
    for method, path, headers in [ROUTES[0], ROUTES[2], ROUTES[3]]:
        r = request(gw, method, f"{path}?{query(seventeen)}", headers)
        check_error(r.status, r.body, 400, "too_many_slots", what=f"17 slots on {path}")
    r = request(gw, "GET", f"/v1/stream?slot={','.join(seventeen)}", ROUTES[0][2])
    check_error(r.status, r.body, 400, "too_many_slots", what="17 slots as one comma list")
    m = wait_sse_zero(gw.sub_port, transports=("sse", "ws"))
    assert m.value("ringgate_stream_slot_limit_total") - base == 4
    gw.close()

    gw = gateway(workers=1, prefix=["env", "RINGGATE_MAX_SLOTS_PER_STREAM=2"])
    with multi_stream(gw, "slot=p&slot=q"):
        pass
    r = request(gw, "GET", "/v1/stream?slot=p&slot=q&slot=r", ROUTES[0][2])
    check_error(r.status, r.body, 400, "too_many_slots", what="3 slots with RINGGATE_MAX_SLOTS_PER_STREAM=2")
    assert fetch_metrics(gw.sub_port).value("ringgate_stream_slot_limit_total") == 1


def test_preflight_and_cors_on_multi_slot_routes(gateway):
    gw = gateway(workers=1)
    origin = "http://page.example:8000"
    for path in ("/v1/stream?slot=a&slot=b", "/v1/events?slot=a,b"):
        r = request(gw, "OPTIONS", path, {"Origin": origin, "Access-Control-Request-Method": "GET",
                                          "Access-Control-Request-Headers": "last-event-id, authorization"})
        assert r.status == 204, (path, r.status, r.body[:300])
        assert r.headers.get("access-control-allow-origin") == "*", (path, r.headers)
        methods = {m.strip() for m in r.headers.get("access-control-allow-methods", "").split(",")}
        assert {"GET", "HEAD", "OPTIONS"} <= methods, (path, r.headers)
        allowed = {h.strip().lower() for h in r.headers.get("access-control-allow-headers", "").split(",")}
        assert {"last-event-id", "authorization"} <= allowed, (path, r.headers)
    r = request(gw, "GET", "/v1/events?slot=a&slot=b", {"Origin": origin})
    assert r.status == 200 and r.headers.get("access-control-allow-origin") == "*", r.headers
    with multi_stream(gw, "slot=a&slot=b", headers={"Origin": origin}) as s:
        assert s.headers.get("access-control-allow-origin") == "*", s.headers


# ----------------------------------------------------------------------------- (g) JWT

SECRET = "rg-multislot-secret-" + "s3cr3t" * 6


def token(slots: list[str]) -> str:
    now = int(time.time())
    return jwt.encode({"sub": "tester", "iat": now, "exp": now + 300, "slots": slots}, SECRET, algorithm="HS256")


def bearer(t: str) -> dict:
    return {"Authorization": f"Bearer {t}"}


def test_jwt_must_allow_every_slot_named(gateway, tmp_path):
    secret = tmp_path / "hs256.secret"
    secret.write_text(SECRET + "\n")
    gw = gateway("--subscribe-auth", "jwt", "--jwt-hs256-secret-file", str(secret), workers=2)
    news = token(["news.*"])
    marker = gw.publish("sport", "marker")
    forbidden = 0
    # not every slot allowed: 403 naming the slot, on every route, however the slots are named
    for q in ("slot=news.a&slot=sport", "slot=sport&slot=news.a", "slot=news.a,sport"):
        for method, path, headers in [ROUTES[0], ROUTES[2], ROUTES[3]]:
            r = request(gw, method, f"{path}?{q}", {**headers, **bearer(news)})
            doc = check_error(r.status, r.body, 403, "forbidden", what=f"{path}?{q}")
            assert "sport" in doc["detail"], doc
            forbidden += 1
    # no token / a bad one: 401
    missing = invalid = 0
    for method, path, headers in [ROUTES[0], ROUTES[2], ROUTES[3]]:
        r = request(gw, method, f"{path}?slot=news.a&slot=news.b", headers)
        check_error(r.status, r.body, 401, "unauthorized", what=f"{path} without a token")
        missing += 1
        r = request(gw, method, f"{path}?slot=news.a&slot=news.b", {**headers, **bearer("a.b.c")})
        check_error(r.status, r.body, 401, "unauthorized", what=f"{path} with a bad token")
        invalid += 1
    # every slot allowed: served
    pubs = publish_interleaved(gw, ["news.a", "sport", "news.b"], 9)
    expected = named(pubs, ["news.a", "news.b"])
    with multi_stream(gw, "slot=news.a&slot=news.b", last_event_id=marker, headers=bearer(news)) as s:
        got = s.read_events(len(expected), timeout=5)
        assert frames(got) == expected_frames(expected), describe_mismatch(frames(got), expected_frames(expected))
    with multi_stream(gw, f"slot=news.a,news.b&after={marker}&token={news}") as s:     # ?token= works too
        got = s.read_events(len(expected), timeout=5)
        assert frames(got) == expected_frames(expected)
    doc = history(gw, "slot=news.a&slot=news.b", headers=bearer(news))
    assert [e["id"] for e in doc["events"]] == [p.id for p in expected]
    assert history(gw, "slot=news.a&slot=sport", headers=bearer(token(["news.*", "sport"])))["slots"] == \
        ["news.a", "sport"]

    async def ws_allowed():
        async with websockets.connect(ws_url(gw, f"slot=news.a&slot=news.b&after={marker}"),
                                      additional_headers=bearer(news)) as ws:
            msgs = [await recv_json(ws) for _ in range(len(expected))]
            assert [(m["id"], m["slot"]) for m in msgs] == [(p.id, p.slot) for p in expected]

    asyncio.run(ws_allowed())
    m = fetch_metrics(gw.sub_port)
    assert m.value("ringgate_auth_failures_total", reason="forbidden") == forbidden
    assert m.value("ringgate_auth_failures_total", reason="missing") == missing
    assert m.value("ringgate_auth_failures_total", reason="invalid") == invalid
