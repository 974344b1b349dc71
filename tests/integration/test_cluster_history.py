"""Cluster mode, issue 12 tests 5 and 7: a host that was away while the stream was trimmed past
its cursor (an exact `gap` reset), diverged history (a new epoch, never two events under one id),
and `--upstream-wait-replicas` without a replica."""
from __future__ import annotations

import time

import pytest

from clustertest import (ResumingSSE, cluster, entry_id, events_bytes, history_pairs,  # noqa: F401
                         record_contents, try_publish)
from rgtest import SSEStream, check_error, epoch_of, seq_of, wait_until


@pytest.mark.timeout(120)
def test_host_back_after_trim_past_its_cursor_resets_with_exact_gap(cluster):
    c = cluster(hosts=2, flags=("--upstream-retain", "1000"), haproxy=False)
    a, b = c.hosts
    slot = "ticks"
    ids = [a.publish(slot, f"t{i}") for i in range(10)]
    b.wait_head(slot, ids[-1])
    b.stop()
    for k in range(15):
        ids += a.publish_batch([{"slot": slot, "data": f"t{10 + k * 100 + j}"} for j in range(100)])
    seqs = [seq_of(x) for x in ids]
    assert seqs == list(range(seqs[0], seqs[0] + 1510)), "1510 publishes at A did not get dense seqs"
    c.redis.cli("XTRIM", c.key, "MAXLEN", "1000")
    entries = c.redis.stream_entries(c.key)
    assert len(entries) == 1000 and entry_id(entries[0][1]) == ids[510], \
        f"after XTRIM MAXLEN 1000 the stream starts at {entries[0][1] if entries else None}, expected {ids[510]}"

    b.start()
    b.wait_head(slot, ids[-1], timeout=30)
    with b.stream(slot, last_event_id=ids[9]) as st:
        got = st.read_events(1001, timeout=30)
    reset = got[0]
    assert reset.event == "reset", f"resume after {ids[9]} on B (away while 500 events were trimmed): {reset}"
    body = reset.json()
    assert body.get("reason") == "gap" and body.get("dropped") == 500, \
        f"B must say exactly what it never received (seqs {seqs[10]}..{seqs[509]}): reset {body}"
    assert [(e.id, e.data) for e in got[1:]] == [(x, f"t{i}") for i, x in enumerate(ids) if i >= 510], \
        "after the gap reset B must send every retained event in order"
    assert [e.event for e in got[1:]] == ["message"] * 1000

    # A stream of several slots across the same gap: one reset for the whole stream (the
    # seqs B never held belong to no slot it can name), then the retained events by slot.
    with SSEStream(b.sub_port, f"/v1/stream?slot={slot}&slot=quiet", {"Last-Event-ID": ids[9]}, timeout=5) as st:
        assert st.status == 200, st.status
        got = st.read_events(1001, timeout=30)
    assert got[0].event == "reset", f"resume of {slot},quiet after {ids[9]} on B: first frame {got[0]}"
    body = got[0].json()
    assert (body.get("reason"), body.get("slot", "absent"), body.get("dropped")) == ("gap", None, 500), \
        f"the gap reset of a stream of several slots: {body}"
    assert [(e.id, e.event, e.data) for e in got[1:]] == \
        [(x, slot, f"t{i}") for i, x in enumerate(ids) if i >= 510], "a stream of several slots after the gap"

    m = b.metrics()
    assert m.value("ringgate_upstream_gaps_total") >= 1, "B recorded no gap"
    assert m.value("ringgate_upstream_gap_dropped_events_total") == 500, \
        f"gap_dropped_events_total on B is {m.value('ringgate_upstream_gap_dropped_events_total')}, 500 were trimmed"
    assert m.value("ringgate_resets_total", reason="gap") >= 2, "the two gap resets were not counted"
    after = ids[600]
    assert events_bytes(b.history_raw(slot, after=after, limit=200)) == \
        events_bytes(a.history_raw(slot, after=after, limit=200)), "A and B serve the retained range differently"


@pytest.mark.timeout(120)
def test_diverged_history_reinitialises_hosts_and_never_serves_two_events_under_one_id(cluster):
    c = cluster(hosts=2, flags=("--upstream-timeout", "1s"), haproxy=False)
    a, b = c.hosts
    slot = "acct"
    old_epoch = c.epoch()
    ids = [a.publish(slot, f"v{i}") for i in range(20)]
    for h in c.hosts:
        h.wait_head(slot, ids[-1])
    seen: dict[str, str] = {}
    conflicts: list[str] = []
    for h in c.hosts:
        record_contents(seen, history_pairs(h.history(slot)), f"{h.name} before", conflicts)
    deadline = time.monotonic() + 90
    clients = [ResumingSSE(h.sub_port, slot, deadline, last_event_id=ids[-1]) for h in (a, b)]
    for cl in clients:
        cl.start()
    for cl in clients:
        assert cl.connected.wait(5) and cl.connects == 1, cl.errors

    # as after a failover to a replica that missed the last writes: the counter goes back
    c.redis.cli("SET", f"{c.key}:seq", "15")
    try:
        r = a.post(slot, "diverged", timeout=10)
        if r.status_code == 201:
            record_contents(seen, [(r.json()["id"], "diverged")], "A's 201 for the diverged publish", conflicts)
    except Exception:
        pass    # refused or cut by the re-initialisation: both are fine, a wrong id is not
    new_epoch = wait_until(lambda: (e := c.epoch()) != old_epoch and e, 15.0,
                           what=f"a new epoch in {c.key}:meta after an entry with seq 16 <= the hosts' head 20")
    new_first = wait_until(lambda: try_publish(b, slot, "after"), 30.0, interval=0.3,
                           what="a publish at B once the hosts re-initialised")
    assert epoch_of(new_first) == new_epoch and seq_of(new_first) == 1, \
        f"the first publish of epoch {new_epoch} got {new_first} (a new epoch's seqs start at 1)"
    for h in c.hosts:
        h.wait_head(slot, new_first, timeout=20)
    for cl in clients:
        cl.final_id = new_first
    wait_until(lambda: all(cl.done() or not cl.is_alive() for cl in clients), 30.0,
               what="clients to reach the new epoch's first event")
    for cl in clients:
        cl.stop()
    for cl, h in zip(clients, (a, b)):
        assert any(r.get("reason") == "epoch" for r in cl.resets()), \
            f"client on {h.name} got no reset after its host re-initialised: {cl.controls}"
        assert cl.events and cl.events[-1] == (new_first, "after"), f"client on {h.name}: {cl.events}"
        record_contents(seen, cl.events, f"client on {h.name}", conflicts)
    for h in c.hosts:
        now = h.history(slot)
        assert {epoch_of(e["id"]) for e in now["events"]} == {new_epoch}, \
            f"{h.name} mixes epochs after re-initialising: {[e['id'] for e in now['events']]}"
        record_contents(seen, history_pairs(now), f"{h.name} after", conflicts)
        assert h.metric("ringgate_upstream_reinitializations_total") >= 1, f"{h.name} counted no re-initialisation"
    assert not conflicts, f"two different events under one id: {conflicts}"


def test_wait_replicas_without_a_replica_refuses_publishes(cluster):
    c = cluster(hosts=1, flags=("--upstream-wait-replicas", "1", "--upstream-timeout", "500ms"), haproxy=False)
    a = c.hosts[0]
    t0 = time.monotonic()
    r = a.post("acks", "needs a replica", timeout=10)
    took = time.monotonic() - t0
    check_error(r.status_code, r.text, 503, "upstream_not_replicated",
                what="publish with --upstream-wait-replicas 1 and a Redis without replicas")
    assert took < 3.0, f"the refusal took {took:.2f}s (--upstream-timeout 500ms)"
