"""Slow/hostile clients, scenario 2: a burst larger than the ring to a lagging client (FIELD-FAILURES #2).

A subscriber with a 4 KiB SO_RCVBUF stops reading while ~8 MB is published into its slot on a
256 KiB ring, then reads again. Lag must be explicit:
- `--lag-policy resync`: the buffered prefix, then `event: reset` {"reason":"lapped","oldest","head",
  "dropped"} agreeing with the slot's history, then every retained event from the oldest on, in
  order, no gap; the stream stays usable.
- `--lag-policy disconnect`: the buffered prefix, then `event: close` {"reason":"slow_consumer"},
  then EOF.
"""
from __future__ import annotations

import pytest

from rgtest import (RcvbufSSEStream, SSEEvent, disconnects, disconnects_delta, fetch_metrics, seq_of,
                    wait_sse_zero)

EVENT = 4000            # bytes of data per event
# The burst must exceed the ring (256 KiB) *plus* everything buffered on the way to the paused
# client: the server's send buffer (>= 64 KiB) and the kernel's send queue, which on loopback
# autotunes up to tcp_wmem[2] (4 MiB by default) even while the peer's window is shut.
BURST = 2000            # events: ~8 MB


def burst(gw, slot: str) -> list[str]:
    ids: list[str] = []
    for b in range(0, BURST, 10):
        lines = [{"slot": slot, "data": f"{b + k:06d}" + "x" * (EVENT - 6)} for k in range(10)]
        r = gw.publish_batch(lines)
        assert r.status_code == 201, f"batch answered {r.status_code}: {r.text[:300]}"
        ids += r.json()["ids"]
    return ids


def read_all(s, head_seq: int, timeout: float = 20.0) -> list:
    """Every event frame until the stream ends, an `event: close`, or the head was reached after a reset."""
    import time
    out: list[SSEEvent] = []
    deadline = time.monotonic() + timeout
    seen_reset = False
    while time.monotonic() < deadline:
        try:
            ev = s.next_event(max(0.01, deadline - time.monotonic()))
        except TimeoutError:
            break
        if ev is None:
            out.append(None)          # EOF marker
            break
        out.append(ev)
        if ev.event == "reset":
            seen_reset = True
        if ev.event == "close":
            continue                   # read on: EOF should follow
        if ev.event == "message" and seq_of(ev.id) >= head_seq and (seen_reset or True):
            break
    return out


@pytest.mark.parametrize("policy", ["resync", "disconnect"])
def test_burst_larger_than_the_ring(gateway, policy):
    gw = gateway("--log-capacity", "256KiB", "--max-event-bytes", "16KiB", "--lag-policy", policy,
                 "--send-timeout", "30s", "--heartbeat", "30s", workers=2)
    slot = "burst"
    marker = gw.publish(slot, "marker")
    base = fetch_metrics(gw.sub_port)
    base_disc = disconnects(base)
    base_lapped = base.get("ringgate_resets_total", reason="lapped") or 0
    base_lag_count = base.get("ringgate_subscriber_lag_events_count") or 0

    s = RcvbufSSEStream(gw.sub_port, f"/v1/slots/{slot}/stream", rcvbuf=4096, headers={"Last-Event-ID": marker})
    try:
        assert s.status == 200, (s.status, getattr(s, "body", b""))
        ids = burst(gw, slot)                      # the client reads nothing meanwhile
        hist = gw.history(slot, limit=1000)        # the slot's state when the client resumes
        oldest, head = hist["oldest"], hist["head"]
        assert head == ids[-1], hist
        assert seq_of(oldest) > seq_of(ids[0]) + 100, \
            f"the burst did not lap the ring (oldest {oldest}, first of burst {ids[0]}): test setup too small"
        retained = [e["id"] for e in hist["events"]]
        assert retained and retained[0] == oldest and retained[-1] == head, hist

        s.first_retry()
        got = read_all(s, seq_of(head))
        frames = [(e.event, e.id, e.data[:80]) if e is not None else "EOF" for e in got]
        kinds = [e.event for e in got if e is not None]
        first_other = next((k for k, e in enumerate(got) if e is None or e.event != "message"), len(got))
        prefix = [e.id for e in got[:first_other]]
        assert prefix == ids[:len(prefix)], \
            f"events before the lag signal are not the burst's prefix in order: {prefix[:3]}…{prefix[-3:]}"
        summary = f"{len(prefix)} buffered events, then {frames[first_other:first_other + 2]} … {frames[-2:]}"
        print(f"\n[{policy}] ring oldest {oldest} head {head}; client got {summary}")

        if policy == "resync":
            resets = [e for e in got if e is not None and e.event == "reset"]
            assert len(resets) == 1 and got[first_other] is resets[0], \
                f"expected exactly one `event: reset` right after the buffered prefix; frames: {frames[first_other:first_other + 3]}, kinds {set(kinds)}"
            r = resets[0].json()
            assert r.get("reason") == "lapped", r
            after = [e for e in got[first_other + 1:]]
            assert None not in after, f"stream ended after the reset: {frames[-3:]}"
            assert all(e.event == "message" for e in after), [e.event for e in after if e.event != "message"][:3]
            after_ids = [e.id for e in after]
            assert after_ids, "nothing after the reset"
            last_before = seq_of(prefix[-1]) if prefix else seq_of(marker)
            print(f"[resync] reset {r}; history oldest {oldest} head {head}; first after reset {after_ids[0]}; "
                  f"{len(after_ids)} events after it")
            # the reset agrees with the slot's history (publishing had stopped before the client resumed)
            assert seq_of(r["oldest"]) <= seq_of(after_ids[0]), (r, after_ids[0])
            assert r["oldest"] == oldest and r["head"] == head, \
                f"reset says oldest={r['oldest']} head={r['head']}, history says oldest={oldest} head={head}"
            assert after_ids[0] == oldest, f"after the reset the stream resumed at {after_ids[0]}, not at oldest {oldest}"
            assert after_ids == retained, "events after the reset are not every retained event in order: " \
                f"got {after_ids[:3]}…{after_ids[-3:]} ({len(after_ids)}), expected {retained[:3]}…{retained[-3:]} ({len(retained)})"
            expected_dropped = seq_of(after_ids[0]) - last_before - 1
            assert r.get("dropped") in (None, expected_dropped), \
                f"dropped={r.get('dropped')}, but {expected_dropped} events lie between the last one received " \
                f"({last_before}) and the first after the reset ({after_ids[0]})"
            assert r.get("dropped") == expected_dropped, \
                f"dropped is {r.get('dropped')!r}; README: exact for a subscriber that fell behind on this connection ({expected_dropped})"
            # the stream stays usable
            live = gw.publish(slot, "after the storm")
            ev = s.next_event(5)
            assert ev is not None and (ev.id, ev.data) == (live, "after the storm"), ev
            m = fetch_metrics(gw.sub_port)
            assert (m.get("ringgate_resets_total", reason="lapped") or 0) - base_lapped == 1, m.text
            assert (m.get("ringgate_subscriber_lag_events_count") or 0) > base_lag_count, \
                "subscriber_lag_events histogram did not record the catch-up"
            s.close()
            m = wait_sse_zero(gw.sub_port)
            delta = disconnects_delta(disconnects(m), base_disc)
            print(f"[resync] disconnects delta {delta}")
            assert delta == {"peer_closed": 1}, delta
        else:
            assert "reset" not in kinds, f"`--lag-policy disconnect` sent a reset: {frames[first_other:first_other + 2]}"
            closes = [e for e in got if e is not None and e.event == "close"]
            assert len(closes) == 1 and got[first_other] is closes[0], \
                f"expected `event: close` right after the buffered prefix; frames {frames[first_other:first_other + 3]}"
            assert closes[0].json() == {"reason": "slow_consumer"} or closes[0].json().get("reason") == "slow_consumer", \
                closes[0].data
            assert got[-1] is None and got.index(None) == first_other + 1, \
                f"the connection did not end (EOF) right after `event: close`: {frames[first_other:]}"
            m = wait_sse_zero(gw.sub_port)
            delta = disconnects_delta(disconnects(m), base_disc)
            print(f"[disconnect] disconnects delta {delta}")
            assert delta == {"slow_consumer": 1}, delta
            assert (m.get("ringgate_resets_total", reason="lapped") or 0) == base_lapped
    finally:
        s.close()


def test_burst_lapping_a_reader_of_two_slots(gateway):
    """The same burst over two slots read on one stream (`/v1/stream?slot=…`): after the buffered
    prefix, one reset per slot, each naming its slot with the exact number of its events lost
    (the reader fell behind on this connection), then every retained event of both slots in id
    order, framed `event: <slot>`."""
    gw = gateway("--log-capacity", "256KiB", "--max-event-bytes", "16KiB", "--lag-policy", "resync",
                 "--send-timeout", "30s", "--heartbeat", "30s", workers=2)
    a, b = "burst.a", "burst.b"
    marker = gw.publish(a, "marker")
    s = RcvbufSSEStream(gw.sub_port, f"/v1/stream?slot={a}&slot={b}", rcvbuf=4096,
                        headers={"Last-Event-ID": marker})
    try:
        assert s.status == 200, (s.status, getattr(s, "body", b""))
        slot_of: dict[str, str] = {}
        ids: list[str] = []
        for start in range(0, BURST, 10):
            lines = [{"slot": (a, b)[(start + k) % 3 == 0], "data": f"{start + k:06d}" + "x" * (EVENT - 6)}
                     for k in range(10)]
            r = gw.publish_batch(lines)
            assert r.status_code == 201, r.text[:300]
            for line, eid in zip(lines, r.json()["ids"]):
                slot_of[eid] = line["slot"]
                ids.append(eid)
        retained = {x: [e["id"] for e in gw.history(x, limit=1000)["events"]] for x in (a, b)}
        merged = sorted(retained[a] + retained[b], key=seq_of)
        assert seq_of(merged[0]) > seq_of(ids[0]) + 100, "the burst did not lap the ring: test setup too small"

        s.first_retry()
        got = read_all(s, seq_of(ids[-1]))
        first_other = next(k for k, e in enumerate(got) if e is None or e.event == "reset")
        prefix = got[:first_other]
        assert [e.id for e in prefix] == ids[:len(prefix)], "the buffered prefix is not the burst's start in order"
        assert all(e.event == slot_of[e.id] for e in prefix), [(e.id, e.event) for e in prefix if e.event != slot_of[e.id]][:3]
        resets = [e.json() for e in got[first_other:first_other + 2]]
        assert [r.get("slot") for r in resets] == [a, b] and all(r["reason"] == "lapped" for r in resets), resets
        after = got[first_other + 2:]
        assert None not in after and [e.id for e in after] == merged, \
            f"after the resets: {[(e.id, e.event) for e in after[:3] if e]}…, expected {merged[:3]}… ({len(merged)})"
        assert all(e.event == slot_of[e.id] for e in after)
        for r in resets:
            x = r["slot"]
            last = max((seq_of(e.id) for e in prefix if e.event == x), default=seq_of(marker) if x == a else 0)
            first_kept = seq_of(retained[x][0])
            lost = sum(1 for eid in ids if slot_of[eid] == x and last < seq_of(eid) < first_kept)
            assert r["oldest"] == retained[x][0] and r["head"] == retained[x][-1], (r, retained[x][0], retained[x][-1])
            if any(e.event == x for e in prefix):
                assert r["dropped"] == lost, f"reset {r}: {lost} events of {x} lie between the last received and the oldest kept"
            print(f"[two slots] reset {r}; {lost} of {x} lost")
        print(f"[two slots] {len(prefix)} buffered events, 2 resets, {len(after)} retained events of both slots")
        live = gw.publish(b, "after the storm")
        ev = s.next_event(5)
        assert ev is not None and (ev.id, ev.event, ev.data) == (live, b, "after the storm"), ev
    finally:
        s.close()
