"""Review of issue 10, finding 1: a recovery cut below the committed tail while a batch was
open must not let a live worker deliver the rolled-back batch.

The state a dying ingest leaves is made by hand: a worker is stopped (SIGSTOP) while it waits at
the tail after event 5; events 6-8 are appended; the ingest is stopped and the log header is put
back to "committed up to 5" (tail, latest, nextSeq) with tailIntent still past 8 -- exactly an
ingest that died before its batch's one tail publish. Event 3's data gets one flipped bit, so the
restarted ingest's recovery scan cuts the log below the old tail. The header fields are at fixed
offsets of the v2 layout (tailIntent 128, tail 192, latest 256, nextSeq 320; LogDescriptor).
"""
from __future__ import annotations

import os
import signal
import struct
import uuid

import httpx

from rgtest import seq_of, wait_until

TAIL_INTENT, TAIL, LATEST, NEXT_SEQ = 128, 192, 256, 320


def read_u64(path, offset: int) -> int:
    with open(path, "rb") as f:
        return struct.unpack("<Q", os.pread(f.fileno(), 8, offset))[0]


def write_u64(path, offset: int, value: int) -> None:
    with open(path, "r+b") as f:
        os.pwrite(f.fileno(), struct.pack("<Q", value), offset)


def flip_a_byte_of(path, payload: str) -> None:
    with open(path, "r+b") as f:
        data = f.read()
        at = data.find(payload.encode())
        assert at >= 0 and data.find(payload.encode(), at + 1) < 0, f"{payload!r} must occur once"
        os.pwrite(f.fileno(), bytes([data[at] ^ 0x01]), at)


def role_pid(gw, role: str) -> int | None:
    return next((c.pid for c in gw.children() if c.role == role), None)


def test_live_worker_never_delivers_a_rolled_back_batch(gateway, tmp_path):
    data_dir = tmp_path / "data"
    # The worker is stopped for a few seconds: the watchdog must not take it for hung.
    gw = gateway("--watchdog-timeout", "120s", workers=1, data_dir=data_dir, name="rollback-live")
    log = data_dir / "ring.log"
    token = uuid.uuid4().hex
    worker = role_pid(gw, "worker")
    stopped: list[int] = []
    try:
        with gw.stream("live", timeout=10.0) as s:
            ids = [gw.publish("live", f"rb-{token}-{i}") for i in range(1, 6)]
            assert [e.id for e in s.read_events(5, timeout=10.0)] == ids
            committed = {f: read_u64(log, f) for f in (TAIL, LATEST, NEXT_SEQ)}
            assert committed[NEXT_SEQ] == seq_of(ids[-1]) + 1

            os.kill(worker, signal.SIGSTOP)
            stopped.append(worker)
            late = [gw.publish("live", f"rb-{token}-{i}") for i in range(6, 9)]
            ingest = role_pid(gw, "ingest")
            os.kill(ingest, signal.SIGSTOP)
            for field, value in committed.items():
                write_u64(log, field, value)      # 6-8 were staged, never committed
            assert read_u64(log, TAIL_INTENT) > committed[TAIL]
            flip_a_byte_of(log, f"rb-{token}-3")
            os.kill(ingest, signal.SIGKILL)
            wait_until(lambda: role_pid(gw, "ingest") not in (None, ingest), 15, what="a restarted ingest")
            wait_until(lambda: httpx.get(f"{gw.pub_url}/healthz", timeout=1, trust_env=False).status_code == 200,
                       15, what="the restarted ingest to serve")
            os.kill(worker, signal.SIGCONT)
            stopped.clear()

            after = gw.publish("live", f"after-{token}")
            event = s.next_event(timeout=10.0)
            assert event is not None, "the event published after the restart was not delivered"
            assert event.data == f"after-{token}", (
                f"the subscriber got {event.data!r} ({event.id}): an event of the rolled-back batch")
            assert event.id == after
            assert seq_of(after) > seq_of(late[-1]), "seqs of events past the stale tail must not be reused"
            s.assert_quiet(0.5)
    finally:
        for pid in stopped:
            os.kill(pid, signal.SIGCONT)
