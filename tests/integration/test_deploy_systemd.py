"""deploy/ringgate.service: `systemd-analyze verify` accepts the unit as shipped, and the unit suits
the drain (KillMode=mixed, TimeoutStopSec at least the drain delay + 10 s) and the real binary
(its Environment= settings pass `ringgate serve --check-config`).

`systemd-analyze verify` checks that ExecStart's binary exists and is executable, and the unit
names /usr/local/bin/ringgate. So the unit, unchanged, is verified under `--root` of a temporary
tree that holds the binary under test at usr/local/bin/ringgate (a hard link, or a copy) and a
copy of this host's /usr/lib/systemd/system (for the targets it orders against). verify exits 0
on an unknown directive or a value it cannot parse (it prints a warning and ignores the line),
so any output at all counts as a failure.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

import rgtest
from rgtest import REPO, binary_path

UNIT = REPO / "deploy" / "ringgate.service"
HOST_UNITS = Path("/usr/lib/systemd/system")

pytestmark = pytest.mark.skipif(rgtest.IO_BACKEND == "epoll",
                                reason="static checks of the unit file (no server runs): io_uring pass only")


def unit_directives(text: str) -> dict[str, dict[str, list[str]]]:
    sections: dict[str, dict[str, list[str]]] = {}
    current = None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        key, _, value = line.partition("=")
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def seconds(value: str) -> float:
    """A systemd time span (`20`, `20s`, `1min 30s`, `500ms`)."""
    units = {"": 1, "s": 1, "sec": 1, "ms": 0.001, "m": 60, "min": 60, "h": 3600}
    total = 0.0
    for num, unit in re.findall(r"(\d+(?:\.\d+)?)\s*([a-z]*)", value):
        total += float(num) * units[unit]
    return total


def verify(unit_text: str, root: Path) -> tuple[int, str]:
    """`systemd-analyze verify --root=ROOT ringgate.service` with `unit_text` as the unit."""
    if shutil.which("systemd-analyze") is None:
        pytest.fail("systemd-analyze is not installed (Debian package systemd)")
    binary = binary_path()
    if not binary.is_file():
        pytest.skip(f"no ringgate binary at {binary}")
    if not (root / "usr/lib/systemd/system").exists():
        (root / "usr/local/bin").mkdir(parents=True)
        (root / "etc/systemd/system").mkdir(parents=True)
        try:
            os.link(binary, root / "usr/local/bin/ringgate")
        except OSError:
            shutil.copy2(binary, root / "usr/local/bin/ringgate")
        shutil.copytree(HOST_UNITS, root / "usr/lib/systemd/system", symlinks=True)
    (root / "etc/systemd/system/ringgate.service").write_text(unit_text)
    r = subprocess.run(["systemd-analyze", "verify", f"--root={root}", "ringgate.service"],
                       capture_output=True, text=True, timeout=60)
    return r.returncode, (r.stdout + r.stderr).strip()


def test_systemd_analyze_verify_accepts_the_unit(tmp_path):
    code, out = verify(UNIT.read_text(), tmp_path / "root")
    assert code == 0 and out == "", f"systemd-analyze verify (exit {code}):\n{out}"


@pytest.mark.parametrize("mistake, words", [
    (("KillMode=mixed", "KilMode=mixed"), "Unknown key"),
    (("TimeoutStopSec=", "TimeoutStopSec=twenty"), "Failed to parse"),
    (("ExecStart=/usr/local/bin/ringgate", "ExecStart=/usr/local/bin/ringgat"), "not executable"),
], ids=["misspelt-directive", "bad-time", "wrong-binary-path"])
def test_the_verify_check_catches_a_broken_unit(tmp_path, mistake, words):
    """The check above can fail: the same run on a copy with one mistake reports it."""
    old, new = mistake
    lines = UNIT.read_text().splitlines(keepends=True)
    at = [i for i, line in enumerate(lines) if line.startswith(old)]
    assert len(at) == 1, f"the unit has no single directive line {old!r} to break"
    lines[at[0]] = lines[at[0]].replace(old, new, 1)
    code, out = verify("".join(lines), tmp_path / "root")
    assert code != 0 or out != "", f"verify said nothing about {new!r}"
    assert words in out, out


def test_unit_suits_the_drain_and_the_binary():
    service = unit_directives(UNIT.read_text())["Service"]
    assert service.get("KillMode") == ["mixed"], "SIGTERM must go to the supervisor only (it drains)"
    assert service.get("KillSignal", ["SIGTERM"]) == ["SIGTERM"]
    exec_start = service["ExecStart"][-1].split()
    assert exec_start[:2] == ["/usr/local/bin/ringgate", "serve"], exec_start
    env = {}
    for line in service.get("Environment", []):
        for item in line.split():
            k, _, v = item.strip('"').partition("=")
            env[k] = v
    # What the binary resolves from the unit's own settings (EnvironmentFile adds to them).
    base = {k: v for k, v in os.environ.items() if not k.startswith("RINGGATE_")}
    r = subprocess.run([str(binary_path()), "serve", "--check-config", *exec_start[2:]],
                       env={**base, **env}, capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, f"ringgate serve --check-config with the unit's Environment=: {r.returncode}\n{r.stdout}{r.stderr}"
    m = re.search(r"^--drain-delay (\d+)ms$", r.stdout, re.M)
    assert m, r.stdout
    drain_delay = int(m.group(1)) / 1000
    stop = seconds(service["TimeoutStopSec"][-1])
    assert stop >= drain_delay + 10, f"TimeoutStopSec={stop}s < drain delay {drain_delay}s + 10 s"
    filt = " ".join(service.get("SystemCallFilter", []))
    for call in ("io_uring_setup", "io_uring_enter", "io_uring_register"):
        assert call in filt.split(), f"SystemCallFilter lacks {call}: the workers could not use io_uring"
    assert "exits within 5 s" not in UNIT.read_text()
