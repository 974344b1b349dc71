"""Issue 10 item 11: the HTTP engine's limits are named settings (flag + RINGGATE_* variable,
validated with a precise error, handed to every child), and parse errors are counted by status."""
from __future__ import annotations

import os
import subprocess

import pytest

from rgtest import binary_path, raw_request, request_bytes, wait_until

BAD = [
    ("--max-pending-body-bytes", "0", "--max-pending-body-bytes 0: expected a size from 1 to"),
    ("--max-pending-body-bytes", "lots", "--max-pending-body-bytes lots: expected a size"),
    ("--body-timeout", "soon", "--body-timeout soon: expected a duration like 500ms, 15s, 5m, 24h"),
    ("--max-pipelined-requests", "0", "--max-pipelined-requests 0: expected a whole number from 1 to 100000"),
    ("--max-response-queue-bytes", "2GiB", "--max-response-queue-bytes 2GiB: expected a size from 1 to"),
    ("--admin-reserve-connections", "10001", "--admin-reserve-connections 10001: expected a whole number from 0 to 10000"),
    ("--send-buffers", "0", "--send-buffers 0: expected a whole number from 1 to 1000000"),
    ("--shared-frames", "some", "--shared-frames some: expected a whole number from 0 to 65536"),
    ("--shared-frames", "70000", "--shared-frames 70000: expected a whole number from 0 to 65536"),
    ("--recv-buffers", "100", "--recv-buffers 100: must be a power of two"),
    ("--recv-buffer-bytes", "100", "--recv-buffer-bytes 100: expected a size from 512 to 1048576 bytes"),
    ("--ingest-max-connections", "0", "--ingest-max-connections 0: expected a whole number from 1 to 1000000"),
    ("--ingest-recv-buffer-bytes", "2MiB", "--ingest-recv-buffer-bytes 2MiB: expected a size from 512 to 1048576"),
    ("--ingest-send-buffers", "x", "--ingest-send-buffers x: expected a whole number from 1 to 1000000"),
    ("--max-batch-events", "0", "--max-batch-events 0: expected a whole number from 1 to 100000000"),
    ("--ring-entries", "100", "--ring-entries 100: must be a power of two"),
    ("--ring-entries", "8", "--ring-entries 8: expected a whole number from 16 to 32768"),
    # Review finding 4: a body budget below the largest body would answer such uploads 503 forever.
    ("--max-pending-body-bytes", "8MiB",
     "--max-pending-body-bytes 8388608 is below --max-batch-bytes 16777216: an upload of the largest allowed body could never be buffered"),
]

GOOD = {
    "--max-pending-body-bytes": "32MiB", "--body-timeout": "3s", "--max-pipelined-requests": "7",
    "--max-response-queue-bytes": "1MiB", "--admin-reserve-connections": "3", "--send-buffers": "128",
    "--recv-buffers": "64", "--recv-buffer-bytes": "8KiB", "--ingest-max-connections": "256",
    "--ingest-recv-buffer-bytes": "32KiB", "--ingest-send-buffers": "16", "--max-batch-events": "5000",
    "--ring-entries": "1024", "--shared-frames": "8",
}
CHILD_VALUES = {
    "--max-pending-body-bytes": str(32 << 20), "--body-timeout": "3000ms", "--max-pipelined-requests": "7",
    "--max-response-queue-bytes": str(1 << 20), "--admin-reserve-connections": "3", "--send-buffers": "128",
    "--recv-buffers": "64", "--recv-buffer-bytes": "8192", "--ingest-max-connections": "256",
    "--ingest-recv-buffer-bytes": str(32 << 10), "--ingest-send-buffers": "16", "--max-batch-events": "5000",
    "--ring-entries": "1024", "--shared-frames": "8",
}


def serve(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    e = {k: v for k, v in os.environ.items() if not k.startswith("RINGGATE_")}
    e.update(env or {})
    return subprocess.run([str(binary_path()), "serve", "--listen", "127.0.0.1:0", "--publish-listen", "127.0.0.1:0",
                           "--ephemeral", "--workers", "1", *args],
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=20, env=e)


@pytest.mark.parametrize("flag,value,message", BAD, ids=[f"{f}={v}" for f, v, _ in BAD])
def test_bad_limit_setting_is_refused_with_a_precise_error(ringgate_bin, flag, value, message):
    p = serve(flag, value)
    assert p.returncode != 0, p.stdout
    assert message in p.stderr, p.stderr


def test_limit_setting_from_the_environment_is_validated(ringgate_bin):
    p = serve(env={"RINGGATE_MAX_PIPELINED_REQUESTS": "0"})
    assert p.returncode != 0
    assert "--max-pipelined-requests 0: expected a whole number from 1 to 100000" in p.stderr, p.stderr


def test_limit_settings_reach_every_child(gateway):
    flags = [x for kv in GOOD.items() for x in kv]
    gw = gateway(*flags, workers=1)
    kids = gw.children()
    assert {c.role for c in kids} >= {"ingest", "worker"}, kids
    for c in kids:
        for flag, value in CHILD_VALUES.items():
            assert flag in c.argv, (c.role, flag, c.argv)
            assert c.argv[c.argv.index(flag) + 1] == value, (c.role, flag, c.argv)
    # Works with them: a publish and a history pull.
    eid = gw.publish("set", "x")
    assert gw.history("set")["events"][0]["id"] == eid


def test_parse_errors_are_counted_by_status(gateway):
    gw = gateway("--header-timeout", "1s", workers=1)
    assert raw_request(gw.sub_port, b"GARBAGE\r\n\r\n").status == 400
    assert raw_request(gw.pub_port, b"GARBAGE\r\n\r\n").status == 400
    assert raw_request(gw.sub_port, request_bytes("GET", "/x?" + "a" * 9000)).status == 414
    assert raw_request(gw.sub_port, request_bytes("GET", "/x", {"X-Big": "b" * 17000})).status == 431
    assert raw_request(gw.pub_port, request_bytes("POST", "/v1/events", {"Content-Length": str(1 << 30)})).status == 413
    assert raw_request(gw.sub_port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n", timeout=5.0).status == 408
    m = wait_until(lambda: (lambda m: m if m.value("ringgate_http_errors_total", status="408") >= 1 else None)(gw.metrics()),
                   5.0, what="the 408 counted")
    assert m.value("ringgate_http_errors_total", status="400") == 2
    assert m.value("ringgate_http_errors_total", status="414") == 1
    assert m.value("ringgate_http_errors_total", status="431") == 1
    assert m.value("ringgate_http_errors_total", status="413") == 1
    assert m.value("ringgate_http_errors_total", status="408") == 1
    assert m.value("ringgate_submission_queue_full_total") == 0


def test_batch_over_max_batch_events_is_refused_whole(gateway):
    """`--max-batch-events` bounds the lines of one NDJSON batch: one line more is a 400 that
    names the limit, and nothing of that batch is appended; a batch at the limit is accepted."""
    gw = gateway("--max-batch-events", "5", workers=1)
    over = gw.publish_batch([{"slot": "lines", "data": f"e{i}"} for i in range(6)])
    assert over.status_code == 400, over.text
    assert "more than 5 events" in over.json()["detail"], over.json()
    assert gw.history("lines")["events"] == []
    at = gw.publish_batch([{"slot": "lines", "data": f"e{i}"} for i in range(5)])
    assert at.status_code == 201, at.text
    assert [e["data"] for e in gw.history("lines")["events"]] == [f"e{i}" for i in range(5)]
