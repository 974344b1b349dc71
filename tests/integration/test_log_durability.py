"""Issue 10 item 15: records carry a CRC32C verified at start-up (the log is cut at the first
damaged record, counted and logged), and --fsync none|interval|always flushes the log."""
from __future__ import annotations

from logtools import run_expecting_exit
from rgtest import seq_of, wait_until


def test_damaged_record_cuts_the_log_at_restart(gateway, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    flags = ("--log-capacity", "1MiB", "--max-slots", "64")
    gw = gateway(*flags, data_dir=data, name="before-damage")
    ids = [gw.publish("d", f"event-{i:04d}") for i in range(20)]
    assert gw.stop() == 0

    # One flipped bit inside event 10's data, as a lost page write would leave it.
    path = data / "ring.log"
    raw = bytearray(path.read_bytes())
    at = raw.find(b"event-0010")
    assert at > 0 and raw.find(b"event-0010", at + 1) < 0
    raw[at + 3] ^= 0x01
    path.write_bytes(bytes(raw))

    gw2 = gateway(*flags, data_dir=data, name="after-damage")
    events = gw2.history("d", limit=100)["events"]
    assert [e["id"] for e in events] == ids[:10], "the log must end before the damaged record"
    assert all(e["data"] == f"event-{i:04d}" for i, e in enumerate(events))
    m = gw2.metrics()
    assert m.value("ringgate_log_recovery_total", cause="damaged_record") == 1
    assert m.value("ringgate_log_recovery_discarded_bytes_total") > 0
    assert "damaged record" in gw2.stderr_tail(), gw2.stderr_tail()
    new = gw2.publish("d", "after the cut")
    assert seq_of(new) > seq_of(ids[-1]), "ids handed out before the cut are never reused"
    assert [e["id"] for e in gw2.history("d", limit=100)["events"]] == ids[:10] + [new]


def test_fsync_always_flushes_before_each_answer(gateway, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    gw = gateway("--fsync", "always", "--log-capacity", "1MiB", "--max-slots", "64", data_dir=data, name="always")
    for i in range(5):
        gw.publish("f", f"durable {i}")
    r = gw.publish_batch([{"slot": "f", "data": f"b{i}"} for i in range(10)])
    assert r.status_code == 201, r.text
    # Sequential publishes are each their own loop turn: one flush each, at least.
    assert gw.metrics().value("ringgate_log_fsyncs_total") >= 6


def test_fsync_interval_flushes_in_the_background(gateway, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    gw = gateway("--fsync", "interval", "--fsync-interval", "50ms", "--log-capacity", "1MiB", "--max-slots", "64",
                 data_dir=data, name="interval")
    assert gw.metrics().value("ringgate_log_fsyncs_total") == 0, "nothing to flush before the first publish"
    gw.publish("f", "soon on disk")
    wait_until(lambda: gw.metrics().value("ringgate_log_fsyncs_total") >= 1, 5, what="a background flush")


def test_fsync_needs_a_file_backed_log(ringgate_bin):
    code, err = run_expecting_exit(ringgate_bin, "--listen", "127.0.0.1:0", "--publish-listen", "127.0.0.1:0",
                                   "--ephemeral", "--fsync", "always")
    assert code not in (0, None), err
    assert "--fsync always needs a file-backed log" in err, err
    code, err = run_expecting_exit(ringgate_bin, "--listen", "127.0.0.1:0", "--publish-listen", "127.0.0.1:0",
                                   "--ephemeral", "--fsync", "sometimes")
    assert code not in (0, None) and "expected none, interval or always" in err, err
