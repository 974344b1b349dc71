"""Scenario 6 and publish details: NDJSON batches are all-or-nothing and in order; bodies may be
chunked; data round-trips exactly."""
from __future__ import annotations

import json

import pytest

from rgtest import RawConnection, check_error, request_bytes, seq_of, start_shared_gateway

BAD_LINES = {
    "malformed-json": '{"slot":"b1","data":',
    "missing-slot": '{"data":"x"}',
    "bad-slot": '{"slot":"bad slot","data":"x"}',
    "bad-type": '{"slot":"b1","type":"bad type","data":"x"}',
    "not-an-object": '[1,2,3]',
}
GOOD = [
    {"slot": "b1", "data": "one"},
    {"slot": "b2", "type": "t2", "data": "two"},
    {"slot": "b1", "type": "t1", "data": {"k": [1, 2, {"n": None}]}},
    {"slot": "b1", "data": 42},
    {"slot": "b2", "data": "naïve ☃ 🚀\nsecond line"},
]


def test_batch_appends_in_order(gateway):
    gw = gateway(workers=2)
    lines = GOOD * 4
    r = gw.publish_batch(lines)
    assert r.status_code == 201, r.text
    ids = r.json()["ids"]
    assert len(ids) == len(lines)
    seqs = [seq_of(i) for i in ids]
    assert seqs == list(range(seqs[0], seqs[0] + len(ids))), f"batch ids not consecutive and ascending: {ids}"

    for slot in ("b1", "b2"):
        mine = [(i, l) for i, l in zip(ids, lines) if l["slot"] == slot]
        events = gw.history(slot, limit=100)["events"]
        assert [e["id"] for e in events] == [i for i, _ in mine]
        for e, (_, l) in zip(events, mine):
            assert e["type"] == l.get("type", "message")
            if isinstance(l["data"], str):
                assert e["data"] == l["data"]
            else:                                   # non-strings are stored as their JSON text
                assert isinstance(e["data"], str) and json.loads(e["data"]) == l["data"]

    # a batch and single publishes share one sequence
    single = gw.publish("b1", "single")
    assert seq_of(single) == seqs[-1] + 1


@pytest.fixture(scope="module")
def shared(ringgate_bin, tmp_path_factory):
    gw = start_shared_gateway(ringgate_bin, tmp_path_factory, "batch", workers=1)
    yield gw
    gw.close()


@pytest.mark.parametrize("where", ["first", "middle", "last"])
@pytest.mark.parametrize("bad", sorted(BAD_LINES))
def test_bad_line_rejects_whole_batch(shared, where, bad):
    gw = shared
    probe = gw.publish("probe", "before")
    before = gw.history("b1", limit=100)
    lines = [json.dumps(l) for l in GOOD]
    pos = {"first": 0, "middle": 2, "last": len(lines)}[where]
    lines.insert(pos, BAD_LINES[bad])
    r = gw.publish_batch(lines)
    check_error(r.status_code, r.content, 400, ("bad_batch", "bad_slot", "bad_type", "bad_request"),
                what=f"{bad} line {where}")
    assert gw.history("b1", limit=100) == before
    assert gw.history("b2", limit=100)["events"] == []
    assert seq_of(gw.publish("probe", "after")) == seq_of(probe) + 1, "the rejected batch appended something"


def test_batch_over_max_batch_bytes(gateway):
    gw = gateway("--max-event-bytes", "1KiB", "--max-batch-bytes", "4KiB", workers=1)
    probe = gw.publish("probe", "before")
    ok = gw.publish_batch([{"slot": "b1", "data": "z" * 100}] * 20)   # ~2.5 KB: fits
    assert ok.status_code == 201, ok.text
    probe = gw.publish("probe", "before")
    r = gw.publish_batch([{"slot": "b1", "data": "z" * 100}] * 50)    # ~6 KB: over the limit
    check_error(r.status_code, r.content, 413, "payload_too_large")
    assert seq_of(gw.publish("probe", "after")) == seq_of(probe) + 1


def test_chunked_bodies(gateway):
    gw = gateway(workers=1)
    # a single event, chunked on the wire
    body = b"3\r\nhel\r\n6\r\nlo wor\r\n2\r\nld\r\n0\r\n\r\n"
    with RawConnection(gw.pub_port) as c:
        c.send(request_bytes("POST", "/v1/slots/ch/events?type=greet", {"Transfer-Encoding": "chunked"}) + body)
        r = c.read_response()
    assert r.status == 201, r.body
    eid = r.json()["id"]
    e = gw.history("ch", limit=1)["events"][0]
    assert (e["id"], e["type"], e["data"]) == (eid, "greet", "hello world")

    # an NDJSON batch streamed by httpx (a generator body is sent chunked)
    def gen():
        for i in range(5):
            yield (json.dumps({"slot": "ch", "data": f"c{i}"}) + "\n").encode()
    r = gw.pub.post("/v1/events", content=gen())
    assert r.status_code == 201, r.text
    assert [e["data"] for e in gw.history("ch", limit=5)["events"]] == [f"c{i}" for i in range(5)]


def test_data_round_trips_exactly(gateway):
    gw = gateway(workers=1)
    samples = ["naïve ☃ 🚀", "  leading and trailing  ", '{"looks":"like json"}', "tab\there", "a\nb", "x\n"]
    marker = gw.publish("rt", "marker")
    ids = [gw.publish("rt", d) for d in samples]
    assert [e["data"] for e in gw.history("rt", after=marker)["events"]] == samples
    with gw.stream("rt", last_event_id=marker) as s:
        s.first_retry()
        got = s.read_events(len(samples), timeout=5)
    assert [(e.id, e.data) for e in got] == list(zip(ids, samples))


def test_batch_limit_below_event_limit(gateway):
    """--max-batch-bytes is its own limit, even when it is below --max-event-bytes (default 64KiB)."""
    gw = gateway("--max-batch-bytes", "16KiB", workers=1)
    probe = gw.publish("probe", "before")
    r = gw.publish_batch([{"slot": "b1", "data": "z" * 1000}] * 20)   # ~20 KB
    check_error(r.status_code, r.content, 413, "payload_too_large")
    assert seq_of(gw.publish("probe", "after")) == seq_of(probe) + 1
