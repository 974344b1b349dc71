"""What the deployment-kit tests share: `ringgate serve --check-config` run on a setup's argv and
environment, and its output read back as settings."""
from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import rgtest


def check_config(argv: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    """`argv` as a setup would run it (`ringgate serve …`, the image's /usr/local/bin/ringgate),
    with only `env`'s RINGGATE_* variables, plus `--check-config`, on the binary under test."""
    binary = rgtest.binary_path()
    assert binary.is_file(), f"no ringgate binary at {binary} (make release, or set RINGGATE_BIN)"
    assert argv[0] == "ringgate", argv
    clean = {k: v for k, v in os.environ.items() if not k.startswith("RINGGATE_")}
    return subprocess.run([str(binary), *argv[1:], "--check-config"], env={**clean, **env}, cwd=cwd,
                          capture_output=True, text=True, timeout=30)


def settings(r: subprocess.CompletedProcess) -> dict[str, str]:
    """{"--flag": value} of a valid check-config (and "publish-token": "set")."""
    assert r.returncode == 0, f"ringgate serve --check-config exited {r.returncode}:\n{r.stdout}{r.stderr}"
    out = {}
    for line in r.stdout.splitlines():
        if line.startswith("--"):
            flag, _, value = line.partition(" ")
            out[flag] = value
        elif line == "publish token: set":
            out["publish-token"] = "set"
    return out


def ms(value: str) -> float:
    """Seconds of a check-config duration (`5000ms`)."""
    m = re.fullmatch(r"(\d+)ms", value)
    assert m, value
    return int(m.group(1)) / 1000


def unread_variables(argv: list[str], env: dict[str, str], names, cwd: Path) -> list[str]:
    """Which of `names` (variables of `env`) `serve` does not read: neither leaving it out nor a
    bogus value changes check-config's answer (a value equal to the default shows only the latter)."""
    full = check_config(argv, env, cwd)
    assert full.returncode == 0, full.stdout + full.stderr
    unread = []
    for name in names:
        without = check_config(argv, {k: v for k, v in env.items() if k != name}, cwd)
        if (without.returncode, without.stdout) != (full.returncode, full.stdout):
            continue
        bogus = check_config(argv, {**env, name: "bogus:value/x"}, cwd)
        if (bogus.returncode, bogus.stdout) != (full.returncode, full.stdout):
            continue
        unread.append(name)
    return unread
