"""deploy/Dockerfile, checked by what runs here (Docker cannot: only its client is installed).
A small parser of our own reads the Dockerfile into stages; the runtime stage is bookworm-slim,
installs exactly deploy/runtime-packages.txt (its own extraction command, run on the file),
runs as a non-root user, has VOLUME/STOPSIGNAL/EXPOSE/HEALTHCHECK. Then the real binary runs
with the image's ENV + ENTRYPOINT + CMD and --check-config (the settings are accepted), and the
HEALTHCHECK command line itself runs against a real gateway: exit 0 while it serves, 1 once
it is gone. (The binary's run-time libraries on a bare Debian are make check-dist's job.)
Static checks run once: skipped in the epoll pass of make test."""
from __future__ import annotations

import json
import re
import shlex
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import rgtest

REPO = rgtest.REPO
DOCKERFILE = REPO / "deploy" / "Dockerfile"
PACKAGES = REPO / "deploy" / "runtime-packages.txt"
DOCKERIGNORE = REPO / ".dockerignore"

pytestmark = pytest.mark.skipif(rgtest.IO_BACKEND == "epoll",
                                reason="checks the Dockerfile and runs ringgate with the image's own settings: "
                                       "independent of the I/O backend, checked once in the io_uring pass")


# ----------------------------------------------------------------------------- parser

@dataclass
class Instruction:
    keyword: str      # upper case
    flags: dict       # --name=value options before the arguments (FROM --platform, COPY --from ...)
    args: str         # the rest, continuation lines joined
    line: int

    def exec_form(self) -> list[str] | None:
        """The JSON array form (["a", "b"]), or None for the shell form."""
        text = self.args.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except json.JSONDecodeError:
                return None
            if isinstance(value, list) and all(isinstance(v, str) for v in value):
                return value
        return None


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]

    def one(self, keyword: str) -> Instruction:
        found = self.all(keyword)
        assert len(found) == 1, f"expected one {keyword} in the stage FROM {self.base}, found {len(found)}"
        return found[0]

    def env(self) -> dict[str, str]:
        out = {}
        for i in self.all("ENV"):
            words = shlex.split(i.args)
            if len(words) == 2 and "=" not in words[0]:      # legacy `ENV KEY value`
                out[words[0]] = words[1]
                continue
            for w in words:
                k, sep, v = w.partition("=")
                assert sep, f"line {i.line}: ENV word {w!r} is not KEY=value"
                out[k] = v
        return out


def parse_dockerfile(text: str) -> list[Stage]:
    """Instructions with `\\` continuations and `#` comment lines (also inside a continued
    instruction, as Docker allows); a parser directive line is a comment here too."""
    stages: list[Stage] = []
    pending: list[str] = []
    start = 0
    logical: list[tuple[int, str]] = []
    for n, raw in enumerate(text.splitlines(), 1):
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue
        if not pending:
            start = n
        if stripped.endswith("\\"):
            pending.append(stripped[:-1].rstrip())
            continue
        pending.append(stripped)
        logical.append((start, " ".join(p for p in pending if p)))
        pending = []
    assert not pending, "the Dockerfile ends inside a continued instruction"
    for line, text in logical:
        keyword, _, rest = text.partition(" ")
        keyword = keyword.upper()
        flags = {}
        while keyword in ("FROM", "COPY", "ADD", "RUN", "HEALTHCHECK") and rest.startswith("--"):
            word, _, rest = rest.partition(" ")
            k, _, v = word[2:].partition("=")
            flags[k] = v
            rest = rest.lstrip()
        inst = Instruction(keyword, flags, rest.strip(), line)
        if keyword == "FROM":
            words = inst.args.split()
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(words[0], name))
        else:
            assert stages, f"line {line}: {keyword} before the first FROM"
        stages[-1].instructions.append(inst)
    return stages


def runtime_packages() -> list[str]:
    out = []
    for line in PACKAGES.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            out.append(line)
    return out


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return parse_dockerfile(DOCKERFILE.read_text())


@pytest.fixture(scope="module")
def runtime(stages) -> Stage:
    return stages[-1]


# ----------------------------------------------------------------------------- the parser itself

def test_parser_reads_continuations_comments_flags_and_stages():
    text = ("# syntax=docker/dockerfile:1\nFROM a:1 AS one\nRUN x \\\n  # inner comment\n  && y\n\n"
            "FROM b\nCOPY --from=one /o /p\nENV A=1 \\\n    B=\"two words\"\nCMD [\"serve\"]\n")
    s = parse_dockerfile(text)
    assert [(st.base, st.name) for st in s] == [("a:1", "one"), ("b", None)]
    assert s[0].one("RUN").args == "x && y"
    assert s[1].one("COPY").flags == {"from": "one"} and s[1].one("COPY").args == "/o /p"
    assert s[1].env() == {"A": "1", "B": "two words"}
    assert s[1].one("CMD").exec_form() == ["serve"]


# ----------------------------------------------------------------------------- the Dockerfile

def test_build_stage_makes_the_static_release_binary(stages):
    assert len(stages) == 2, [s.base for s in stages]
    build = stages[0]
    assert build.base.startswith("swift:6.3") and "bookworm" in build.base, build.base
    runs = " ".join(i.args for i in build.all("RUN"))
    assert re.search(r"apt-get install[^&]*--no-install-recommends[^&]*\bliburing-dev\b", runs), runs
    assert re.search(r"apt-get install[^&]*\blibhiredis-dev\b", runs), runs
    assert "swift build -c release --static-swift-stdlib --product ringgate" in runs
    copies = [c for c in stages[1].all("COPY") if c.flags.get("from") == build.name]
    assert copies and copies[0].args.split()[-1] == "/usr/local/bin/ringgate", copies


def test_runtime_stage_is_bookworm_slim_with_exactly_the_runtime_packages(runtime):
    assert runtime.base == "debian:bookworm-slim"
    copy = [c for c in runtime.all("COPY") if c.args.split()[0] == "deploy/runtime-packages.txt"]
    assert len(copy) == 1, "the runtime stage must COPY deploy/runtime-packages.txt in"
    in_image = copy[0].args.split()[-1]
    installs = [r for r in runtime.all("RUN") if "apt-get install" in r.args]
    assert len(installs) == 1, [r.args for r in installs]
    run = installs[0].args
    assert "--no-install-recommends" in run
    assert "rm -rf /var/lib/apt/lists/*" in run
    # Nothing but the file's names: after `install`, only options.
    tail = run.split("apt-get install", 1)[1].split("&&", 1)[0].split()
    assert all(w.startswith("-") for w in tail), f"apt-get install names packages itself: {tail}"
    # The command that turns the file into the package list, run on the repository's file.
    m = re.search(r"(sed .*?)\|\s*xargs apt-get install", run)
    assert m and in_image in m.group(1), run
    listing = m.group(1).replace(in_image, str(PACKAGES))
    got = subprocess.run(["bash", "-c", f"set -o pipefail; {listing}"], capture_output=True, text=True,
                         check=True, timeout=10).stdout.split()
    assert got == runtime_packages() == ["liburing2", "libhiredis0.14"]
    # check-dist reads the same file for its debootstrap --include
    assert "deploy/runtime-packages.txt" in (REPO / "scripts" / "check-dist.sh").read_text()


def test_runtime_stage_runs_as_a_fixed_non_root_user(runtime):
    user = runtime.one("USER").args
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and int(uid) != 0 and gid.isdigit() and int(gid) != 0, user
    runs = " ".join(r.args for r in runtime.all("RUN"))
    assert f"--uid {uid}" in runs and f"--gid {gid}" in runs, "the user must be created with that uid/gid"
    # USER comes after every RUN (apt needs root) and before ENTRYPOINT
    order = [i.keyword for i in runtime.instructions]
    assert order.index("USER") > max(i for i, k in enumerate(order) if k == "RUN")


def test_runtime_stage_data_volume_signals_ports_and_settings(runtime):
    env = runtime.env()
    assert env["RINGGATE_DATA_DIR"] == "/var/lib/ringgate"
    assert runtime.one("VOLUME").exec_form() == [env["RINGGATE_DATA_DIR"]]
    assert runtime.one("STOPSIGNAL").args == "SIGTERM"
    assert runtime.one("EXPOSE").args.split() == ["8080", "8081"]
    assert env["RINGGATE_LISTEN"] == "0.0.0.0:8080" and env["RINGGATE_PUBLISH_LISTEN"] == "0.0.0.0:8081"
    assert runtime.one("ENTRYPOINT").exec_form() == ["ringgate"]
    assert runtime.one("CMD").exec_form() == ["serve"]


def test_healthcheck_uses_ringgate_health_and_no_curl(runtime):
    hc = runtime.one("HEALTHCHECK")
    assert hc.args.startswith("CMD "), hc.args
    argv = Instruction("CMD", {}, hc.args[4:], hc.line).exec_form()
    assert argv and argv[:2] == ["ringgate", "health"], hc.args
    assert argv[argv.index("--path") + 1] == "/readyz"
    assert "timeout" in hc.flags and "interval" in hc.flags
    everything = " ".join(i.args for i in runtime.instructions)
    assert "curl" not in everything and "wget" not in everything


def test_dockerignore_keeps_build_output_and_venv_out():
    entries = {l.strip() for l in DOCKERIGNORE.read_text().splitlines() if l.strip() and not l.startswith("#")}
    assert {".build", ".venv", "dist", "bench/results", ".git"} <= entries


# ----------------------------------------------------------------------------- the binary with the image's settings

def image_env(runtime: Stage) -> dict[str, str]:
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("RINGGATE_")}
    env.update(runtime.env())
    return env


def test_image_settings_are_accepted_by_the_binary(runtime, ringgate_bin):
    entry = runtime.one("ENTRYPOINT").exec_form()
    cmd = runtime.one("CMD").exec_form()
    assert entry[0] == "ringgate"   # /usr/local/bin/ringgate in the image: here the binary under test
    argv = [str(ringgate_bin)] + entry[1:] + cmd + ["--check-config"]
    r = subprocess.run(argv, env=image_env(runtime), capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr
    resolved = r.stdout.splitlines()
    assert "--listen 0.0.0.0:8080" in resolved, r.stdout
    assert "--publish-listen 0.0.0.0:8081" in resolved, r.stdout
    assert "--data-dir /var/lib/ringgate" in resolved, r.stdout
    # and a setting the image does not make valid is refused, with the variable named
    bad = dict(image_env(runtime), RINGGATE_LISTEN="0.0.0.0:http")
    r = subprocess.run(argv, env=bad, capture_output=True, text=True, timeout=30)
    assert r.returncode == 64 and "0.0.0.0:http" in r.stdout + r.stderr, r.stdout + r.stderr


def test_the_healthcheck_command_itself_passes_on_a_serving_gateway_and_fails_once_it_is_gone(runtime, gateway, ringgate_bin):
    hc = runtime.one("HEALTHCHECK")
    argv = Instruction("CMD", {}, hc.args[4:], hc.line).exec_form()
    url = argv[argv.index("--url") + 1]
    # The health URL is the image's subscriber listener; the test's gateway has a free port.
    image_port = runtime.env()["RINGGATE_LISTEN"].rsplit(":", 1)[1]
    assert url == f"http://127.0.0.1:{image_port}", url
    gw = gateway("--drain-delay", "0s")
    probe = [str(ringgate_bin)] + argv[1:]
    probe[probe.index(url)] = f"http://127.0.0.1:{gw.sub_port}"
    serving = subprocess.run(probe, capture_output=True, text=True, timeout=10)
    assert serving.returncode == 0, serving.stdout + serving.stderr
    assert gw.stop(timeout=15) == 0
    gone = subprocess.run(probe, capture_output=True, text=True, timeout=10)
    assert gone.returncode == 1, f"HEALTHCHECK exited {gone.returncode} with nothing listening: {gone.stderr}"
