"""Cluster mode, issue 12 tests 1, 2 and 6: one global order, the same ids on every host,
exact resume through haproxy after `kill -9` of a host, a late host with the cluster's ids."""
from __future__ import annotations

import json
import os
import signal
import re
import time

import httpx
import pytest
from websockets.sync.client import connect as ws_connect

from clustertest import (HttpxSSEReader, ResumingSSE, TimedPublisher, by_seq, check_exactly_once,
                         cluster, entry_id, events_bytes, stream_pairs)  # noqa: F401  (cluster: fixture)
from rgtest import epoch_of, seq_of, wait_until


def test_publish_at_a_reaches_sse_and_websocket_on_b_and_c_under_one_id(cluster):
    c = cluster(hosts=3)
    a, b, cc = c.hosts
    epoch = c.epoch()
    assert epoch and re.fullmatch(r"[0-9a-f]{8}", epoch), f"{c.key}:meta epoch is {epoch!r}"
    slot = "news"

    sse = [HttpxSSEReader(f"{h.sub_url}/v1/slots/{slot}/stream", n=15) for h in (b, cc)]
    for r in sse:
        r.start()
    for r, h in zip(sse, (b, cc)):
        assert r.connected.wait(5) and r.status == 200, f"SSE on {h.name}: {r.status} {r.errors}"
    ws = [ws_connect(f"ws://127.0.0.1:{h.sub_port}/v1/slots/{slot}/ws", open_timeout=5) for h in (b, cc)]
    try:
        first = a.publish(slot, "hello from A", type="greeting")
        assert epoch_of(first) == epoch, f"A answered {first}, the cluster epoch is {epoch}"
        for sock, h in zip(ws, (b, cc)):
            msg = json.loads(sock.recv(timeout=10))
            assert (msg.get("id"), msg.get("type"), msg.get("data")) == (first, "greeting", "hello from A"), \
                f"WebSocket on {h.name} got {msg} for the event A acknowledged as {first}"

        # more, from every host (single POSTs and one NDJSON batch): one order, dense seqs
        ids = [first]
        for i in range(9):
            ids.append((a, b, cc)[i % 3].publish(slot, f"e{i}"))
        ids += b.publish_batch([{"slot": slot, "data": f"batch{i}"} for i in range(5)])
        seqs = [seq_of(x) for x in ids]
        assert seqs == list(range(seqs[0], seqs[0] + len(ids))), \
            f"publishes one after the other through A, B, C got seqs {seqs}: not one dense order"
        assert {epoch_of(x) for x in ids} == {epoch}, f"ids {ids} are not all of the cluster epoch {epoch}"

        for r, h in zip(sse, (b, cc)):
            r.join(15)
            got = [e[0] for e in r.events]
            assert got == ids, f"httpx-sse subscriber on {h.name} got ids {got}, publishers got {ids}; {r.errors}"
            assert r.events[0][1:] == ("greeting", "hello from A"), r.events[0]
        for sock, h in zip(ws, (b, cc)):
            got = [json.loads(sock.recv(timeout=10))["id"] for _ in ids[1:]]
            assert got == ids[1:], f"WebSocket on {h.name} got {got}, publishers got {ids[1:]}"
    finally:
        for sock in ws:
            sock.close()

    for h in c.hosts:
        h.wait_head(slot, ids[-1])
    for after, limit in ((None, 100), (ids[3], 5), (ids[-1], 10)):
        bodies = {h.name: h.history_raw(slot, after=after, limit=limit) for h in c.hosts}
        assert len(set(bodies.values())) == 1, \
            f"history window after={after} limit={limit} differs between hosts: {bodies}"
    # and through haproxy: whichever host answers, the same bytes
    newest = a.history_raw(slot, limit=100)
    for _ in range(3):
        through = httpx.get(f"{c.haproxy.sub_url}/v1/slots/{slot}/events", params={"limit": "100"},
                            timeout=5, trust_env=False)
        assert through.status_code == 200 and through.content == newest, \
            f"history through haproxy answered {through.status_code}: {through.text[:300]}"
    # the cluster's log in Redis says the same
    entries = [(entry_id(f), f["data"]) for _, f in c.redis.stream_entries(c.key) if f["slot"] == slot]
    assert [e[0] for e in entries] == ids, f"the Redis stream holds {entries}, publishers got {ids}"


@pytest.mark.timeout(180)
def test_kill9_of_a_host_clients_resume_through_haproxy_exactly_once(cluster):
    c = cluster(hosts=3)
    a, b, cc = c.hosts
    slot = "live"
    start = a.publish(slot, "start")
    for h in c.hosts:
        h.wait_head(slot, start)

    deadline = time.monotonic() + 120
    clients = [ResumingSSE(c.haproxy.sub_port, slot, deadline, last_event_id=start) for _ in range(50)]
    for cl in clients:
        cl.start()
    for cl in clients:
        assert cl.connected.wait(10) and cl.connects == 1, f"a client could not connect through haproxy: {cl.errors}"
    on_b = wait_until(lambda: int(b.metric("ringgate_connections", transport="sse") or 0), 5.0,
                      what="some of the 50 streams on host B (haproxy balance leastconn)")

    pubs = [TimedPublisher(a.pub_url, slot, "A", 0.02), TimedPublisher(cc.pub_url, slot, "C", 0.02)]
    for p in pubs:
        p.start()
    time.sleep(1.0)                 # a workload before the kill, not a timing assertion
    b.kill9()
    c.haproxy.wait_states({"host2": "DOWN"}, 10.0)
    time.sleep(1.5)                 # and some after it
    for p in pubs:
        p.stop()

    refused = [x for p in pubs for x in p.attempts if x[2] != 201]
    assert not refused, f"publishes to A and C (which stayed up) were refused: {refused[:5]}"
    acked = by_seq([x for p in pubs for x in p.acked()])
    expected = [p for p in stream_pairs(c.redis.stream_entries(c.key), slot) if seq_of(p[0]) > seq_of(start)]
    assert expected == acked, f"the Redis stream after {start} is not what was acknowledged: " \
                              f"{len(expected)} entries, {len(acked)} acknowledged"
    for cl in clients:
        cl.final_id = expected[-1][0]
    wait_until(lambda: all(cl.done() or not cl.is_alive() for cl in clients), 60.0,
               what="every client to receive the last acknowledged event")
    for cl in clients:
        cl.stop()
    for i, cl in enumerate(clients):
        assert not cl.resets(), f"client {i} got a reset though every event is retained: {cl.resets()}"
        check_exactly_once(cl.events, expected, f"client {i} ({cl.connects} connections)")
    resumed = sum(1 for cl in clients if cl.connects > 1)
    assert resumed >= on_b, f"{on_b} streams were on host B when it was killed, only {resumed} clients reconnected"


def test_late_host_with_empty_data_dir_serves_retained_history_with_cluster_ids(cluster):
    c = cluster(hosts=2, flags=("--upstream-retain", "1000"), haproxy=False)
    a, b = c.hosts
    epoch = c.epoch()
    lines = [{"slot": "s1" if i % 3 else "s2", "type": "t", "data": f"d{i}"} for i in range(1200)]
    ids: list[str] = []
    for k in range(12):
        ids += (a if k % 2 == 0 else b).publish_batch(lines[k * 100:(k + 1) * 100])
    c.redis.cli("XTRIM", c.key, "MAXLEN", "1000")
    entries = c.redis.stream_entries(c.key)
    assert len(entries) == 1000 and entry_id(entries[0][1]) == ids[200], \
        f"after XTRIM the stream starts at {entries[0] if entries else None}, expected {ids[200]}"
    heads = {s: [x for x, l in zip(ids, lines) if l["slot"] == s][-1] for s in ("s1", "s2")}
    for h in c.hosts:
        for s, head in heads.items():
            h.wait_head(s, head)

    late = c.add_host("L", flags=("--upstream-retain", "1000")).start()
    for s, head in heads.items():
        late.wait_head(s, head, timeout=20)
    for s in ("s1", "s2"):
        slot_ids = [x for x, l in zip(ids, lines) if l["slot"] == s]
        retained = [x for x in slot_ids if seq_of(x) > seq_of(ids[199])]
        old_body, late_body = a.history_raw(s, after=retained[0], limit=1000), late.history_raw(s, after=retained[0], limit=1000)
        assert events_bytes(late_body) == events_bytes(old_body), \
            f"slot {s}: the late host's window after {retained[0]} differs from host A's"
        lj, aj = json.loads(late_body), json.loads(old_body)
        assert (lj["next"], lj["head"]) == (aj["next"], aj["head"]), (lj["next"], lj["head"], aj["next"], aj["head"])
        assert [e["id"] for e in lj["events"]] == retained[1:], f"slot {s} on the late host: wrong ids"
        assert lj["oldest"] == retained[0], \
            f"slot {s}: the late host's oldest is {lj['oldest']}, the stream's oldest retained is {retained[0]}"
        newest = late.history(s, limit=50)
        assert [e["id"] for e in newest["events"]] == retained[-50:] and all(epoch_of(e["id"]) == epoch for e in newest["events"])

    # a client resuming on the late host from an id older than what it holds: told so, then everything
    s1 = [x for x, l in zip(ids, lines) if l["slot"] == "s1"]
    s1_retained = [x for x in s1 if seq_of(x) > seq_of(ids[199])]
    old_id = s1[10]
    with late.stream("s1", last_event_id=old_id) as st:
        first = st.next_event(10)
        assert first is not None and first.event == "reset", f"resume from {old_id} on the late host: {first}"
        assert first.json()["reason"] == "gap", f"reset for seqs the late host never held: {first.data}"
        got = [e.id for e in st.read_events(len(s1_retained), timeout=15)]
        assert got == s1_retained, f"after the reset: {got[:3]}... expected {s1_retained[:3]}..."


def test_a_resume_id_from_a_host_further_along_waits_for_this_host_instead_of_a_reset(cluster):
    """A client that last read from A reconnects to C while C's tail is behind (its ingest is
    paused): C must not take A's id for a foreign one (no `reset`, no replay of the slot), and
    once C catches up the client gets exactly the events after its id."""
    c = cluster(hosts=2)
    a, cc = c.hosts
    slot = "ahead"
    first = a.publish(slot, "before")
    cc.wait_head(slot, first)
    ingest = [k.pid for k in cc.gw.children() if k.role == "ingest"]
    assert len(ingest) == 1, f"host {cc.name} has ingest processes {ingest}"
    os.kill(ingest[0], signal.SIGSTOP)
    try:
        seen = a.publish(slot, "seen at A")      # A applied it; C's tail is paused
        assert cc.history(slot)["head"] == first, "C applied an event while its ingest was stopped"
        stream = cc.stream(slot, last_event_id=seen)
        body = cc.history(slot, after=seen)
        assert body["reset"] is False and body["events"] == [] and body["next"] == seen, \
            f"a history pull on C after {seen} (ahead of C's head {first}) answered {body}"
    finally:
        os.kill(ingest[0], signal.SIGCONT)
    try:
        later = a.publish(slot, "after")
        events = stream.read_events(1, timeout=10)
        got = [(e.event, e.id, e.data) for e in events]
        assert got == [("message", later, "after")], \
            f"resumed on C after {seen} (from A, ahead of C then) and got {got}; want only {later}"
        stream.assert_quiet(0.5)
    finally:
        stream.close()
