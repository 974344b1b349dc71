"""Scenario 2: history pulls — newest N, exactly the next N after an id, reset when lapped."""
from __future__ import annotations

import time

from rgtest import describe_mismatch, parse_id, seq_of

BIG = "x" * 1000          # ~1 KB events: a 64 KiB ring holds a few dozen of them
# the server refuses an event limit over a quarter of the ring, so lower it with the capacity
SMALL_RING = ("--log-capacity", "64KiB", "--max-event-bytes", "4KiB")


def ids_of(doc: dict) -> list[str]:
    return [e["id"] for e in doc["events"]]


def assert_ascending(ids: list[str]) -> None:
    seqs = [seq_of(i) for i in ids]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs), f"ids not strictly ascending: {ids}"


def test_history_windows(gateway):
    gw = gateway(workers=2)
    t0 = int(time.time() * 1000)
    ids, datas, other = [], [], []
    for i in range(30):
        ids.append(gw.publish("h", f"h{i}", type="tick" if i % 2 else None))
        datas.append(f"h{i}")
        if i % 3 == 0:
            other.append(gw.publish("h-other", f"o{i}"))
    t1 = int(time.time() * 1000)

    # no `after`: the newest N, oldest first
    doc = gw.history("h", limit=10)
    assert doc["slot"] == "h"
    assert ids_of(doc) == ids[-10:]
    assert [e["data"] for e in doc["events"]] == datas[-10:]
    assert [e["type"] for e in doc["events"]] == ["tick" if i % 2 else "message" for i in range(20, 30)]
    for e in doc["events"]:
        assert isinstance(e["time"], int) and t0 - 1000 <= e["time"] <= t1 + 1000, e
    assert (doc["next"], doc["oldest"], doc["head"], doc["reset"]) == (ids[-1], ids[0], ids[-1], False)

    # default limit (100) covers all 30
    assert ids_of(gw.history("h")) == ids

    # `after` + `limit`: exactly the next N
    doc = gw.history("h", after=ids[4], limit=7)
    assert ids_of(doc) == ids[5:12]
    assert doc["next"] == ids[11] and doc["reset"] is False
    assert_ascending(ids_of(doc))

    # fewer than N left
    doc = gw.history("h", after=ids[25], limit=10)
    assert ids_of(doc) == ids[26:]

    # nothing after the head: empty, `next` stays at `after`
    doc = gw.history("h", after=ids[-1], limit=10)
    assert doc["events"] == [] and doc["next"] == ids[-1] and doc["reset"] is False
    assert doc["head"] == ids[-1]

    # the other slot is separate
    assert ids_of(gw.history("h-other")) == other

    # unknown slot: empty, nulls
    doc = gw.history("never-published")
    assert doc["events"] == []
    assert doc["next"] is None and doc["oldest"] is None and doc["head"] is None
    assert doc["reset"] is False

    # all ids share the log's epoch, seqs are dense across slots
    everything = sorted(ids + other, key=seq_of)
    assert len({parse_id(i)[0] for i in everything}) == 1
    assert [seq_of(i) for i in everything] == list(range(seq_of(everything[0]), seq_of(everything[0]) + 40))


def test_history_after_wrap_resets_to_oldest(gateway):
    gw = gateway(*SMALL_RING, workers=2)
    first = gw.publish("w", "first")
    ids, datas = [], []
    for i in range(400):                       # ~400 KB through a 64 KiB ring: it wraps ~6 times
        d = f"{i:04d}:{BIG}"
        ids.append(gw.publish("w", d))
        datas.append(d)

    # `after` older than the ring: reset, the window starts at the oldest retained event
    doc = gw.history("w", after=first, limit=10)
    assert doc["reset"] is True, doc
    oldest = doc["oldest"]
    assert oldest in ids, f"oldest {oldest} is not an id we published"
    k = ids.index(oldest)
    retained = len(ids) - k
    assert 20 <= retained <= 66, f"{retained} events of ~1 KB retained in a 64 KiB ring"
    assert ids_of(doc) == ids[k:k + 10]
    assert doc["head"] == ids[-1]
    assert doc["next"] == ids[k + 9]
    assert_ascending(ids_of(doc))

    # everything retained, intact after the wraps
    doc = gw.history("w", limit=1000)
    assert ids_of(doc) == ids[k:], describe_mismatch(ids_of(doc), ids[k:])
    assert [e["data"] for e in doc["events"]] == datas[k:]
    assert doc["oldest"] == oldest and doc["reset"] is False

    # a retained `after` after the wraps: exactly the next N, no reset
    doc = gw.history("w", after=ids[k + 3], limit=10)
    assert ids_of(doc) == ids[k + 4:k + 14] and doc["reset"] is False

    # the log's own view agrees
    m = gw.metrics()
    assert m.value("ringgate_log_head_seq") == seq_of(ids[-1])
    assert m.value("ringgate_log_oldest_seq") == seq_of(oldest)
    assert m.value("ringgate_log_capacity_bytes") == 64 * 1024


def test_stream_resume_from_lapped_id_sends_reset(gateway):
    gw = gateway(*SMALL_RING, workers=2)
    first = gw.publish("lap", "first")
    ids = [gw.publish("lap", f"{i:04d}:{BIG}") for i in range(300)]
    oldest = gw.history("lap", limit=1)["oldest"]
    k = ids.index(oldest)

    with gw.stream("lap", last_event_id=first) as s:
        s.first_retry()
        reset = s.next_event(5)
        assert reset is not None and reset.event == "reset", f"expected `event: reset`, got {reset!r}"
        info = reset.json()
        assert info["reason"] == "lapped"
        assert info["oldest"] == oldest and info["head"] == ids[-1]
        # a resumed cursor's dropped count may be unknowable (its record is gone): null or exact
        assert "dropped" in info, info
        assert info["dropped"] in (None, seq_of(oldest) - seq_of(first) - 1), info
        got = [e.id for e in s.read_events(len(ids) - k, timeout=10)]
        assert got == ids[k:], describe_mismatch(got, ids[k:])
        # and it goes on live
        nxt = gw.publish("lap", "live")
        assert s.next_event(5).id == nxt
