"""Issue 10 item 16: an NDJSON batch becomes visible all at once or not at all — when a line
cannot be appended, and when the ingest is killed (-9) in the middle of a 50,000-line batch."""
from __future__ import annotations

import json
import os
import signal
import threading
import time

import httpx
import pytest

from rgtest import wait_until

LINES = 50_000


def test_batch_refused_by_the_slot_directory_appends_nothing(gateway):
    gw = gateway("--max-slots", "2", name="dir-full")
    first = gw.publish("a", "a0")
    gw.publish("b", "b0")
    # Two lines for a known slot, then one for a third slot that does not fit the directory.
    r = gw.publish_batch([{"slot": "a", "data": "a1"}, {"slot": "a", "data": "a2"}, {"slot": "c", "data": "c0"}])
    assert r.status_code == 507, r.text
    body = r.json()
    assert body["error"] == "slot_directory_full" and "nothing was appended" in body["detail"], body
    assert [e["id"] for e in gw.history("a")["events"]] == [first], "no line of a refused batch may be visible"
    assert gw.metrics().value("ringgate_publish_batch_refused_total") == 1


def test_batch_larger_than_the_ring_is_refused_whole(gateway):
    gw = gateway("--log-capacity", "1MiB", "--max-event-bytes", "200KiB", name="ring-small")
    gw.publish("a", "a0")
    line = {"slot": "a", "data": "x" * (100 << 10)}
    r = gw.publish_batch([line] * 12)    # 1.2 MiB of events into a 1 MiB ring
    assert r.status_code == 413, r.text
    assert "nothing was appended" in r.json()["detail"] and "--log-capacity" in r.json()["detail"], r.text
    assert len(gw.history("a")["events"]) == 1


def ingest_pid(gw) -> int | None:
    return next((c.pid for c in gw.children() if c.role == "ingest"), None)


@pytest.mark.timeout(240)
def test_kill_9_of_the_ingest_mid_batch_shows_all_or_nothing(gateway):
    gw = gateway("--max-limit", "100000", "--log-capacity", "64MiB", workers=1, name="kill-batch")
    outcomes = []
    for attempt in range(8):
        slot = f"k{attempt}"
        body = "".join(json.dumps({"slot": slot, "data": f"line {i} of the batch"}) + "\n" for i in range(LINES)).encode()
        head_before = gw.metrics().value("ringgate_log_head_seq")
        victim = ingest_pid(gw)
        answer: dict = {}

        def post():
            try:
                with httpx.Client(timeout=20.0, trust_env=False) as c:
                    answer["status"] = c.post(f"{gw.pub_url}/v1/events", content=body,
                                              headers={"Content-Type": "application/x-ndjson"}).status_code
            except httpx.HTTPError as e:
                answer["error"] = repr(e)

        t = threading.Thread(target=post)
        t.start()
        # Kill as soon as any line is visible, or after a delay that grows with the attempt.
        deadline = time.monotonic() + 0.01 + attempt * 0.015
        while time.monotonic() < deadline and gw.metrics().value("ringgate_log_head_seq") == head_before:
            pass
        os.kill(victim, signal.SIGKILL)
        t.join(30)
        assert not t.is_alive()
        wait_until(lambda: ingest_pid(gw) not in (None, victim), 15, what="a restarted ingest")
        wait_until(lambda: httpx.get(f"{gw.pub_url}/healthz", timeout=1, trust_env=False).status_code == 200, 15,
                   what="the restarted ingest to serve")
        visible = len(gw.history(slot, limit=LINES)["events"])
        outcomes.append((answer.get("status"), visible))
        assert visible in (0, LINES), f"attempt {attempt}: {visible} of {LINES} lines visible; client saw {answer}"
        if answer.get("status") == 201:
            assert visible == LINES, f"attempt {attempt}: acknowledged batch lost ({visible} visible)"
    print(f"(status, visible lines) per attempt: {outcomes}")
    # Whatever happened, the log goes on: a publish after the kills is served.
    ident = gw.publish("after", "kills")
    assert [e["id"] for e in gw.history("after")["events"]] == [ident]
