"""Cluster mode, issue 12 tests 3 and 4: Redis down for 5 s under publishing (it comes back with
its AOF), and Redis restarted without its data (a new cluster epoch)."""
from __future__ import annotations

import time

import pytest

from clustertest import (RedisServer, ResumingSSE, TimedPublisher, check_exactly_once, cluster,  # noqa: F401
                         history_pairs, record_contents, stream_pairs, try_publish)
from rgtest import check_error, epoch_of, seq_of, wait_until

TIMEOUT_S = 1.0     # --upstream-timeout of these hosts


def readyz_is(host, status: int, **fields):
    def ok():
        code, body = host.readyz()
        return (code, body) if code == status and all(body.get(k) == v for k, v in fields.items()) else None
    return ok


@pytest.mark.timeout(180)
def test_redis_down_5s_publishes_503_only_while_down_and_nothing_acknowledged_is_lost(cluster):
    c = cluster(hosts=2, aof=True, flags=("--upstream-timeout", "1s"), haproxy=False)
    a, b = c.hosts
    slot = "orders"
    start = a.publish(slot, "before")
    for h in c.hosts:
        h.wait_head(slot, start)
        code, body = h.readyz()
        assert (code, body.get("status"), body.get("upstream")) == (200, "ready", "up"), f"{h.name} /readyz: {code} {body}"
        assert isinstance(body.get("lag_events"), int), f"{h.name} /readyz has no lag_events: {body}"
        assert h.metric("ringgate_upstream_up") == 1, f"{h.name}: ringgate_upstream_up is not 1 with Redis up"

    deadline = time.monotonic() + 120
    subs = [ResumingSSE(h.sub_port, slot, deadline, last_event_id=start) for h in (a, b) for _ in range(2)]
    for s in subs:
        s.start()
    for s in subs:
        assert s.connected.wait(5) and s.connects == 1, s.errors
    pubs = [TimedPublisher(h.pub_url, slot, h.name, 0.03, timeout=5.0) for h in (a, b)]
    for p in pubs:
        p.start()
    time.sleep(1.0)

    t_down0 = time.monotonic()
    c.redis.stop()
    t_down1 = time.monotonic()
    for h in c.hosts:
        code, body = wait_until(readyz_is(h, 200, upstream="down", degraded=True), 10.0,
                                what=f"{h.name} /readyz to say upstream down, degraded, with Redis stopped")
        assert body.get("status") == "ready" and isinstance(body.get("lag_events"), int), body
        assert h.metric("ringgate_upstream_up") == 0, f"{h.name}: ringgate_upstream_up is not 0 with Redis stopped"
    t0 = time.monotonic()
    r = a.post(slot, "while down", timeout=10)
    took = time.monotonic() - t0
    check_error(r.status_code, r.text, 503, "upstream_unavailable", what="a publish while Redis is down")
    assert r.headers.get("retry-after"), f"503 upstream_unavailable without Retry-After: {dict(r.headers)}"
    assert took < TIMEOUT_S + 1.0, f"a publish with Redis down took {took:.2f}s (--upstream-timeout 1s)"
    # subscribers keep being served from the local log while Redis is away
    hist = b.history(slot, limit=5)
    assert hist["events"], "history on B is empty while Redis is down"

    time.sleep(max(0.0, 5.0 - (time.monotonic() - t_down1)))
    t_up0 = time.monotonic()
    c.redis.start()
    t_up = {}
    for h in c.hosts:
        wait_until(readyz_is(h, 200, upstream="up"), 20.0, what=f"{h.name} /readyz upstream up after Redis is back")
        t_up[h.name] = time.monotonic()
        assert h.metric("ringgate_upstream_up") == 1
    time.sleep(1.0)
    for p in pubs:
        p.stop()

    attempts = [(p.tag, x) for p in pubs for x in p.attempts]
    for tag, (s0, s1, status, code, eid, data) in attempts:
        if status == 201:
            continue
        assert (status, code) == (503, "upstream_unavailable"), f"publish {data} at {tag}: {status} {code}"
        assert s1 >= t_down0 and s0 <= t_up[tag] + 0.5, \
            f"publish {data} at {tag} got 503 while Redis was up (sent {s0 - t_down0:+.2f}s from the stop, " \
            f"Redis back at {t_up0 - t_down0:.2f}s, host saw it at {t_up[tag] - t_down0:.2f}s)"
    while_down = [x for _, x in attempts if x[0] > t_down1 and x[1] < t_up0]
    assert while_down and all(x[2] == 503 for x in while_down), \
        f"publishes sent and answered while Redis was not running must all be 503: {[x[2:4] for x in while_down][:10]}"
    after = [x for tag, x in attempts if x[0] > t_up[tag]]
    assert after and all(x[2] == 201 for x in after), f"publishes after recovery: {[x[2:4] for x in after]}"

    expected = [p for p in stream_pairs(c.redis.stream_entries(c.key), slot) if seq_of(p[0]) > seq_of(start)]
    acked = {(x[4], x[5]) for _, x in attempts if x[2] == 201}
    lost = acked - set(expected)
    assert not lost, f"{len(lost)} acknowledged events are not in the cluster after Redis came back: {sorted(lost)[:5]}"
    seqs = [seq_of(p[0]) for p in expected]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), "the cluster's seqs have a hole (AOF always lost nothing)"
    for s in subs:
        s.final_id = expected[-1][0]
    wait_until(lambda: all(s.done() or not s.is_alive() for s in subs), 30.0, what="every subscriber to catch up")
    for s in subs:
        s.stop()
    for i, s in enumerate(subs):
        assert not s.resets(), f"subscriber {i} got a reset: {s.resets()}"
        check_exactly_once(s.events, expected, f"subscriber {i} on {'AB'[i // 2]}")


@pytest.mark.timeout(120)
def test_redis_restarted_without_data_new_epoch_and_clients_reset(cluster, tmp_path):
    c = cluster(hosts=2, flags=("--upstream-timeout", "1s"), haproxy=False)
    a, b = c.hosts
    slot = "feed"
    old_epoch = c.epoch()
    old = [a.publish(slot, f"old{i}") for i in range(5)]
    for h in c.hosts:
        h.wait_head(slot, old[-1])
    seen: dict[str, str] = {}
    conflicts: list[str] = []
    for h in c.hosts:
        record_contents(seen, history_pairs(h.history(slot)), f"{h.name} before", conflicts)

    deadline = time.monotonic() + 90
    clients = [ResumingSSE(h.sub_port, slot, deadline, last_event_id=old[1]) for h in (a, b)]
    for cl in clients:
        cl.start()
    wait_until(lambda: all(len(cl.events) == 3 for cl in clients), 10.0, what="clients to read old3..old5")

    port = c.redis.port
    c.redis.stop()
    c.redis = RedisServer(tmp_path, port=port, name="redis-empty").start()   # same address, no data
    new_first = wait_until(lambda: try_publish(a, slot, "new0"), 30.0, interval=0.3,
                           what="a publish at A to be accepted by the wiped Redis")
    new_epoch = c.epoch()
    assert new_epoch and new_epoch != old_epoch, f"cluster epoch {old_epoch} -> {new_epoch} after Redis lost its data"
    assert epoch_of(new_first) == new_epoch, f"A answered {new_first}, the cluster epoch is now {new_epoch}"
    new = [new_first] + [a.publish(slot, f"new{i}") for i in range(1, 4)]
    for h in c.hosts:
        h.wait_head(slot, new[-1], timeout=20)

    for cl in clients:
        cl.final_id = new[-1]
    wait_until(lambda: all(cl.done() or not cl.is_alive() for cl in clients), 30.0,
               what="clients to reach the new epoch's last event")
    for cl in clients:
        cl.stop()
    new_pairs = list(zip(new, [f"new{i}" for i in range(4)]))
    for cl, h in zip(clients, (a, b)):
        resets = cl.resets()
        assert any(r.get("reason") == "epoch" for r in resets), \
            f"client on {h.name} resumed with an id of the old epoch and got no reset reason epoch: {cl.controls}"
        assert cl.events == list(zip(old[2:], ["old2", "old3", "old4"])) + new_pairs, \
            f"client on {h.name}: {cl.events}"
        record_contents(seen, cl.events, f"client on {h.name}", conflicts)
    for h in c.hosts:
        now = h.history(slot)
        assert {epoch_of(e["id"]) for e in now["events"]} == {new_epoch}, \
            f"{h.name} serves a mixture of epochs: {[e['id'] for e in now['events']]}"
        assert history_pairs(now) == new_pairs, f"{h.name} history after the wipe: {history_pairs(now)}"
        stale = h.history(slot, after=old[2])
        assert stale["reset"] is True, f"{h.name}: history after an old-epoch id must say reset: {stale}"
        record_contents(seen, history_pairs(now), f"{h.name} after", conflicts)
    assert not conflicts, f"an id was served with two different contents: {conflicts}"
