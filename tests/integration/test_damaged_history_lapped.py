"""History pulls on a tiny ring under heavy publishing (issue 10, item 2).

Windows are overwritten while the worker copies them. Every answer must be complete, valid
JSON: a 200 history body (a lapped window restarts at the slot's oldest with reset:true), or an
error status with a JSON error. Before, four lapped tries sent the partial buffer as a 200
(`{"slot":"h","events":[{…},…` with no end).
"""
from __future__ import annotations

import json
import threading
import time

import httpx

from rgtest import seq_of

SLOT = "h"
DURATION = 6.0          # seconds of publishing and pulling
BATCH = 100             # events per NDJSON publish
EVENT = 300             # data bytes per event: a batch is about half the 64 KiB ring


def test_every_history_answer_is_complete_json_while_the_ring_laps(gateway):
    gw = gateway("--log-capacity", "64KiB", "--max-event-bytes", "4KiB", workers=2)
    first = gw.publish(SLOT, "first")
    stop = threading.Event()
    published = [0]
    errors: list[str] = []
    answers: list[tuple[int, bytes]] = []
    lock = threading.Lock()

    def publisher(k: int) -> None:
        with httpx.Client(base_url=gw.pub_url, timeout=5.0, trust_env=False) as client:
            n = 0
            while not stop.is_set():
                lines = "".join(json.dumps({"slot": SLOT, "data": f"{k}-{n:08d}-" + "x" * EVENT}) + "\n"
                                for _ in range(BATCH))
                try:
                    r = client.post("/v1/events", content=lines.encode())
                except httpx.HTTPError as e:
                    errors.append(f"publish: {e!r}")
                    return
                if r.status_code != 201:
                    errors.append(f"publish answered {r.status_code}: {r.text[:200]}")
                    return
                n += 1
                with lock:
                    published[0] += BATCH

    def puller(k: int) -> None:
        with httpx.Client(base_url=gw.sub_url, timeout=5.0, trust_env=False) as client:
            i = 0
            while not stop.is_set():
                params = {"limit": "1000"}
                if (i + k) % 2 == 0:
                    params["after"] = first          # long overwritten: a reset window from the oldest
                i += 1
                try:
                    r = client.get(f"/v1/slots/{SLOT}/events", params=params)
                except httpx.HTTPError as e:
                    errors.append(f"pull: {e!r}")
                    return
                with lock:
                    answers.append((r.status_code, r.content))

    threads = [threading.Thread(target=publisher, args=(k,), daemon=True) for k in range(2)]
    threads += [threading.Thread(target=puller, args=(k,), daemon=True) for k in range(3)]
    for t in threads:
        t.start()
    time.sleep(DURATION)
    stop.set()
    for t in threads:
        t.join(10)
    assert not any(t.is_alive() for t in threads), "a client thread did not finish"
    assert not errors, errors[:5]

    bad, resets, statuses = [], 0, {}
    for status, body in answers:
        statuses[status] = statuses.get(status, 0) + 1
        try:
            doc = json.loads(body)
        except ValueError:
            bad.append((status, body[:80] + b"..." + body[-80:]))
            continue
        if status == 200:
            assert set(doc) == {"slot", "events", "next", "oldest", "head", "reset"}, doc.keys()
            seqs = [seq_of(e["id"]) for e in doc["events"]]
            assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs), seqs[:10]
            assert all(e["data"].endswith("x" * 20) or e["data"] == "first" for e in doc["events"])
            resets += doc["reset"] is True
        else:
            assert status == 503 and doc["error"] == "log_overrun", (status, doc)
    print(f"published {published[0]} events; {len(answers)} pulls {statuses}; {resets} with reset:true; "
          f"{len(bad)} not JSON")
    assert not bad, f"{len(bad)} of {len(answers)} answers were not complete JSON, e.g. {bad[:2]}"
    assert len(answers) >= 30, f"only {len(answers)} pulls in {DURATION}s"
    assert resets > 0, "no window was lapped: the test did not reach its case"
    assert published[0] * EVENT > 20 * 64 * 1024, "the ring was not lapped many times over"
    m = gw.metrics()
    assert m.value("ringgate_history_overruns_total") == statuses.get(503, 0)
