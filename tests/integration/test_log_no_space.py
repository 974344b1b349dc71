"""Issue 10 item 13: a log that does not fit its filesystem is refused at start-up (exit 1,
"no space left on ...: need N bytes"), leaves no file behind, and a fitting one then starts."""
from __future__ import annotations

import os
import subprocess

from logtools import run_expecting_exit


def test_log_larger_than_the_filesystem_exits_1_and_leaves_nothing(gateway, ringgate_bin, tmp_path):
    small = tmp_path / "small"
    small.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(small)], check=True)
    gw = None
    try:
        code, err = run_expecting_exit(ringgate_bin, "--listen", "127.0.0.1:0", "--publish-listen", "127.0.0.1:0",
                                       "--workers", "1", "--data-dir", str(small), "--log-capacity", "16MiB")
        assert code == 1, f"expected exit 1, got {code} (a negative code is a signal); output:\n{err[-3000:]}"
        assert f"no space left on {small}" in err and "need " in err and " bytes" in err, err[-3000:]
        assert os.listdir(small) == [], f"the partial log must be removed, found {os.listdir(small)}"

        gw = gateway("--log-capacity", "4MiB", "--max-slots", "1024", data_dir=small, workers=1, name="fits")
        ident = gw.publish("s", "fits")
        assert [e["id"] for e in gw.history("s")["events"]] == [ident]
    finally:
        if gw is not None:
            gw.close()
        subprocess.run(["umount", "-l", str(small)], check=False)
