"""Issue 10 item 14: an idle `serve` with the default 256 MiB log and 2 workers holds under
96 MiB Pss over its 4 processes: the log's pages become resident only as events are written."""
from __future__ import annotations

import time

import pytest

from logtools import pss_kib
from rgtest import server_memory

LIMIT_MIB = 96
LOG_RESIDENT_LIMIT_MIB = 8   # the few pages written so far, far below the 290 MiB mapping


@pytest.mark.parametrize("backing", ["file", "ephemeral", "file-reopened"])
def test_idle_serve_with_the_default_log_stays_small(gateway, tmp_path, backing):
    data = None
    if backing.startswith("file"):
        data = tmp_path / "data"
        data.mkdir()
    if backing == "file-reopened":
        # A used log, reopened: the recovery scan must not fault in the directory or the ring.
        first = gateway(data_dir=data, workers=2, name="idle-first-run")
        for i in range(100):
            first.publish(f"s{i % 10}", f"event {i}")
        assert first.stop() == 0
    gw = gateway(data_dir=data, workers=2, name=f"idle-{backing}")
    time.sleep(0.5)   # let start-up finish; nothing is published
    pids = [gw.pid] + [c.pid for c in gw.children()]
    assert len(pids) == 4, f"expected supervisor + ingest + 2 workers, got {pids}"
    per_process = {pid: pss_kib(pid) for pid in pids}
    total_mib = sum(per_process.values()) / 1024
    print(f"idle Pss ({backing}): {total_mib:.1f} MiB over {per_process}")
    assert total_mib < LIMIT_MIB, f"idle serve ({backing}) holds {total_mib:.1f} MiB Pss (limit {LIMIT_MIB}): {per_process}"
    log_mib = server_memory(gw)["excluded_kib"] / 1024
    print(f"  of which the log mapping: {log_mib:.1f} MiB")
    assert log_mib < LOG_RESIDENT_LIMIT_MIB, f"{log_mib:.1f} MiB of the log mapping is resident ({backing})"
    # ... and it works: a publish is served.
    ident = gw.publish("m", "one")
    assert [e["id"] for e in gw.history("m")["events"]] == [ident]
