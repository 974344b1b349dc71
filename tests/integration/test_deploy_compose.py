"""deploy/compose.yaml: Redis, two gateways in cluster mode and haproxy, checked by what runs here
(no Docker engine, no `docker compose`).

The file parses (Compose spec: no `version:`), holds exactly the four services; the gateways'
environment, with the image's ENV/ENTRYPOINT/CMD (deploy/Dockerfile, read by test_deploy_image's
parser), passes `ringgate serve --check-config` and each variable is really read; their stop grace
covers the drain. haproxy's own `haproxy -c` accepts deploy/haproxy/haproxy.cfg with the service's
RG_* environment, whose addresses name the gateway services and the ports they listen on; the
volume mounts that file where the command reads it. A real redis-server started with the
service's command answers CONFIG GET as the durability table wants. Only the subscriber port is
published beyond loopback. Static checks: skipped in the epoll pass of make test."""
from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess

import pytest
import yaml

import rgtest
from deploytest import check_config, ms, settings, unread_variables
from test_deploy_image import parse_dockerfile

REPO = rgtest.REPO
COMPOSE = REPO / "deploy" / "compose.yaml"
COMPOSE_DIR = COMPOSE.parent
DOCKERFILE = REPO / "deploy" / "Dockerfile"
HAPROXY_CFG = REPO / "deploy" / "haproxy" / "haproxy.cfg"
GATEWAYS = ("ringgate1", "ringgate2")
OPERATOR_ENV = {"RINGGATE_PUBLISH_TOKEN": "dummy-token"}

pytestmark = pytest.mark.skipif(rgtest.IO_BACKEND == "epoll",
                                reason="static checks of deploy/compose.yaml (no gateway runs): io_uring pass only")


# ----------------------------------------------------------------------------- reading the file

_VAR = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[?\-])(?P<arg>[^}]*))?\}|\$\$")


def interpolate(value, env: dict[str, str]):
    """Compose's `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?error}`, `${VAR?error}`, `$$`."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def sub(m):
        if m.group(0) == "$$":
            return "$"
        name, op, arg = m["name"], m["op"], m["arg"]
        have = env.get(name)
        unset = have is None or (have == "" and op and op.startswith(":"))
        if op and op.endswith("?") and unset:
            raise ValueError(f"required variable {name} is missing a value: {arg}")
        if op and op.endswith("-") and unset:
            return arg
        return have or ""
    return _VAR.sub(sub, value)


def load(env: dict[str, str] = OPERATOR_ENV) -> dict:
    return interpolate(yaml.safe_load(COMPOSE.read_text()), env)


@pytest.fixture(scope="module")
def compose() -> dict:
    return load()


@pytest.fixture(scope="module")
def runtime():
    return parse_dockerfile(DOCKERFILE.read_text())[-1]


def environment(service: dict) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(e.split("=", 1) if "=" in e else (e, os.environ.get(e, "")) for e in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


def command_list(value) -> list[str]:
    return value.split() if isinstance(value, str) else list(value)


def seconds(text) -> float:
    """A Compose duration (`20s`, `1m30s`, `500ms`)."""
    total, rest = 0.0, str(text)
    for num, unit in re.findall(r"(\d+(?:\.\d+)?)(us|ms|s|m|h)", rest):
        total += float(num) * {"us": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}[unit]
    assert re.fullmatch(r"((\d+(\.\d+)?)(us|ms|s|m|h))+", rest), f"not a duration: {text!r}"
    return total


def ports(service: dict) -> list[tuple[str | None, int, int]]:
    """(host_ip, published, target) of short (`[IP:]HOST:CONTAINER`) and long syntax entries."""
    out = []
    for p in service.get("ports", []):
        if isinstance(p, dict):
            out.append((p.get("host_ip"), int(p["published"]), int(p["target"])))
            continue
        text = str(p).split("/", 1)[0]
        parts = text.rsplit(":", 2)
        assert len(parts) >= 2, f"port {p!r} publishes a random host port"
        ip = parts[0] if len(parts) == 3 else None
        out.append((ip, int(parts[-2]), int(parts[-1])))
    return out


def volume_mounts(service: dict) -> list[dict]:
    out = []
    for v in service.get("volumes", []):
        if isinstance(v, dict):
            out.append({"source": v.get("source"), "target": v["target"], "read_only": bool(v.get("read_only"))})
            continue
        parts = v.split(":")
        out.append({"source": parts[0], "target": parts[1],
                    "read_only": len(parts) > 2 and "ro" in parts[2].split(",")})
    return out






def gateway_run(service: dict, runtime) -> tuple[list[str], dict[str, str]]:
    """The container's argv (ENTRYPOINT + the service's command, else CMD; an entrypoint in the
    service replaces the image's and drops CMD) and environment (the image's ENV, then the service's)."""
    if "entrypoint" in service:
        argv = command_list(service["entrypoint"]) + command_list(service.get("command", []))
    else:
        argv = runtime.one("ENTRYPOINT").exec_form() + (
            command_list(service["command"]) if "command" in service else runtime.one("CMD").exec_form())
    return argv, {**runtime.env(), **environment(service)}


@pytest.fixture(scope="module")
def resolved(compose, runtime, tmp_path_factory) -> dict[str, dict[str, str]]:
    cwd = tmp_path_factory.mktemp("cc")
    return {name: settings(check_config(*gateway_run(compose["services"][name], runtime), cwd))
            for name in GATEWAYS}




def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ----------------------------------------------------------------------------- the file

def test_the_file_parses_and_holds_exactly_the_four_services():
    raw = yaml.safe_load(COMPOSE.read_text())
    assert "version" not in raw, "the Compose spec has no `version:` key (obsolete)"
    assert sorted(raw["services"]) == sorted(["redis", *GATEWAYS, "haproxy"]), sorted(raw["services"])
    assert "docker compose -f deploy/compose.yaml up --build" in COMPOSE.read_text().split("services:")[0]
    # every named volume is declared
    declared = set(raw.get("volumes") or {})
    for name, s in raw["services"].items():
        for m in volume_mounts(s):
            src = m["source"]
            if src and not src.startswith((".", "/", "~")):
                assert src in declared, f"{name} mounts volume {src!r}, not declared under volumes:"


def test_the_publish_token_comes_from_the_operator():
    with pytest.raises(ValueError, match="RINGGATE_PUBLISH_TOKEN"):
        load({})
    for name in GATEWAYS:
        raw = yaml.safe_load(COMPOSE.read_text())["services"][name]["environment"]["RINGGATE_PUBLISH_TOKEN"]
        assert re.fullmatch(r"\$\{RINGGATE_PUBLISH_TOKEN:\?[^}]+\}", raw), raw
        assert environment(load()["services"][name])["RINGGATE_PUBLISH_TOKEN"] == OPERATOR_ENV["RINGGATE_PUBLISH_TOKEN"]


# ----------------------------------------------------------------------------- the gateways

@pytest.mark.parametrize("name", GATEWAYS)
def test_a_gateway_is_built_from_the_dockerfile_and_its_settings_pass_check_config(name, compose, resolved):
    s = compose["services"][name]
    build = s["build"]
    assert (COMPOSE_DIR / build["context"]).resolve() == REPO, build
    assert ((COMPOSE_DIR / build["context"]) / build["dockerfile"]).resolve() == DOCKERFILE, build
    got = resolved[name]
    assert got["--listen"] == "0.0.0.0:8080" and got["--publish-listen"] == "0.0.0.0:8081", got
    assert got.get("publish-token") == "set", "the publish listener binds every interface: it needs the token"
    m = re.fullmatch(r"redis://(?P<host>[^:/@]+):(?P<port>\d+)(/\d+)?\?key=(?P<key>\w+)", got["--upstream"])
    assert m, got["--upstream"]
    assert m["host"] == "redis" and m["host"] in compose["services"], m["host"]
    redis_cmd = command_list(compose["services"]["redis"]["command"])
    redis_port = redis_cmd[redis_cmd.index("--port") + 1] if "--port" in redis_cmd else "6379"
    assert m["port"] == redis_port
    assert s["depends_on"]["redis"]["condition"] == "service_healthy", s["depends_on"]
    assert "ports" not in s, f"{name} publishes ports itself: clients go through haproxy"


def test_the_two_gateways_share_one_cluster_and_keep_their_own_logs(compose, resolved):
    a, b = (resolved[n] for n in GATEWAYS)
    assert a["--upstream"] == b["--upstream"]
    data = {}
    for name in GATEWAYS:
        mounts = {m["target"]: m["source"] for m in volume_mounts(compose["services"][name])}
        src = mounts.get(resolved[name]["--data-dir"])
        assert src, f"{name}: no volume at its data dir {resolved[name]['--data-dir']}: {mounts}"
        data[name] = src
    assert len(set(data.values())) == 2, f"the gateways share a data volume: {data}"


@pytest.mark.parametrize("name", GATEWAYS)
def test_every_variable_a_gateway_sets_is_read(name, compose, runtime, tmp_path):
    """serve ignores an unknown RINGGATE_* name: without the variable the printed settings (or the
    exit code) must change; a value that equals this machine's default (RINGGATE_WORKERS 2 on 2
    cores) is shown to be read by a bogus value instead."""
    argv, env = gateway_run(compose["services"][name], runtime)
    unread = unread_variables(argv, env, environment(compose["services"][name]), tmp_path)
    assert not unread, f"{name}: ringgate serve does not read {unread} (misspelt?)"


@pytest.mark.parametrize("name", GATEWAYS)
def test_the_stop_grace_period_covers_the_drain(name, compose, resolved):
    grace = seconds(compose["services"][name]["stop_grace_period"])
    need = ms(resolved[name]["--drain-delay"]) + ms(resolved[name]["--drain-spread"]) + 10
    assert grace >= need, f"{name}: stop_grace_period {grace}s < drain-delay + drain-spread + 10 s = {need}s"
    assert compose["services"][name].get("stop_signal", "SIGTERM") == "SIGTERM"


# ----------------------------------------------------------------------------- haproxy

def haproxy_check(env: dict[str, str], *flags: str) -> subprocess.CompletedProcess:
    if shutil.which("haproxy") is None:
        pytest.fail("haproxy is not installed (scripts/ensure-deps.sh test)")
    clean = {k: v for k, v in os.environ.items() if not k.startswith("RG_")}
    return subprocess.run(["haproxy", *flags, "-c", "-f", str(HAPROXY_CFG)], env={**clean, **env},
                          capture_output=True, text=True, timeout=30)


def test_haproxy_accepts_the_config_with_the_services_environment(compose):
    env = environment(compose["services"]["haproxy"])
    # haproxy resolves server names at check time, and the service names exist only on the
    # Compose network: the same environment with each name replaced by 127.0.0.1 must be clean ...
    local = {k: re.sub(rf"^({'|'.join(GATEWAYS)}):", "127.0.0.1:", v) for k, v in env.items()}
    r = haproxy_check(local)
    out = r.stdout + r.stderr
    assert r.returncode == 0 and "Configuration file is valid" in out, out
    assert "[WARNING]" not in out and "[ALERT]" not in out, out
    # ... and with the names themselves (-dr: an unresolvable name only disables the server),
    # every complaint is about a gateway service's name, nothing else.
    r = haproxy_check(env, "-dr")
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    complaints = [l for l in out.splitlines() if "[WARNING]" in l or "[ALERT]" in l]
    for line in complaints:
        m = re.search(r"could not resolve address '([^']+)'", line)
        assert m and m.group(1) in GATEWAYS, line


def test_haproxy_names_every_gateway_at_the_ports_it_listens_on(compose, resolved):
    env = environment(compose["services"]["haproxy"])
    hosts = sorted({m.group(1) for k in env if (m := re.fullmatch(r"RG_HOST(\d)_SUBSCRIBE", k))})
    assert len(hosts) == len(GATEWAYS), env
    seen = []
    for n in hosts:
        sub_host, _, sub_port = env[f"RG_HOST{n}_SUBSCRIBE"].rpartition(":")
        pub_host, _, pub_port = env[f"RG_HOST{n}_PUBLISH"].rpartition(":")
        assert sub_host == pub_host and sub_host in GATEWAYS, (n, sub_host, pub_host)
        assert sub_port == resolved[sub_host]["--listen"].rsplit(":", 1)[1], (n, sub_port)
        assert pub_port == resolved[sub_host]["--publish-listen"].rsplit(":", 1)[1], (n, pub_port)
        seen.append(sub_host)
    assert sorted(seen) == sorted(GATEWAYS), f"each gateway once: {seen}"
    assert hosts == [str(i) for i in range(1, len(hosts) + 1)], "RG_HOST1.. without a hole (host1 is required)"
    unknown = [k for k in env if not re.fullmatch(
        r"RG_HOST[1-4]_(SUBSCRIBE|PUBLISH)|RG_(SUBSCRIBE|PUBLISH|STATS)_BIND|RG_MAXCONN", k)]
    assert not unknown, f"haproxy.cfg reads no {unknown}"
    depends = compose["services"]["haproxy"].get("depends_on", [])
    assert set(GATEWAYS) <= set(depends), depends


def test_haproxy_mounts_that_very_config_where_its_command_reads_it(compose):
    s = compose["services"]["haproxy"]
    assert re.fullmatch(r"haproxy:(2\.6|lts)(\S*)", s["image"]), s["image"]
    cmd = command_list(s["command"])
    assert cmd[0] == "haproxy" and "-f" in cmd, cmd
    path = cmd[cmd.index("-f") + 1]
    mounts = [m for m in volume_mounts(s) if m["target"] == path]
    assert len(mounts) == 1, f"nothing mounted at {path}: {volume_mounts(s)}"
    assert (COMPOSE_DIR / mounts[0]["source"]).resolve() == HAPROXY_CFG, mounts[0]
    assert mounts[0]["read_only"], "mount the config read-only"


def test_only_the_subscriber_port_is_published_beyond_loopback(compose):
    env = environment(compose["services"]["haproxy"])
    published = {}
    for name, s in compose["services"].items():
        for ip, host_port, target in ports(s):
            assert name == "haproxy", f"{name} publishes {host_port}"
            published[host_port] = (ip, target)
    assert sorted(published) == [8080, 8081, 8404], published
    bind_port = {k: int(env[k].rsplit(":", 1)[1]) for k in ("RG_SUBSCRIBE_BIND", "RG_PUBLISH_BIND", "RG_STATS_BIND")}
    assert published[8080] == (None, bind_port["RG_SUBSCRIBE_BIND"]) or published[8080][0] in ("0.0.0.0", "::")
    assert published[8080][1] == bind_port["RG_SUBSCRIBE_BIND"]
    assert published[8081] == ("127.0.0.1", bind_port["RG_PUBLISH_BIND"]), published[8081]
    assert published[8404] == ("127.0.0.1", bind_port["RG_STATS_BIND"]), published[8404]


# ----------------------------------------------------------------------------- redis

def test_redis_runs_with_the_services_command_and_persists_as_the_readme_says(compose, tmp_path):
    s = compose["services"]["redis"]
    assert re.fullmatch(r"redis:7[\w.\-]*", s["image"]), s["image"]
    assert [m["target"] for m in volume_mounts(s)] == ["/data"], "the image's working dir /data holds the AOF"
    cmd = command_list(s["command"])
    assert cmd[0] == "redis-server", cmd
    # What cannot run here: the container's port and /data. Drop them, add a free port and tmp dir.
    args, i = [], 1
    while i < len(cmd):
        if cmd[i] in ("--port", "--dir", "--bind", "--daemonize"):
            i += 2
            continue
        args.append(cmd[i])
        i += 1
    server = shutil.which("redis-server")
    cli = shutil.which("redis-cli")
    if server is None or cli is None:
        pytest.fail("redis-server / redis-cli are not installed (scripts/ensure-deps.sh test)")
    port = free_port()
    proc = subprocess.Popen([server, *args, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(tmp_path),
                             "--daemonize", "no"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        def ask(*words):
            r = subprocess.run([cli, "-p", str(port), *words], capture_output=True, text=True, timeout=5)
            return r.stdout.split()
        rgtest.wait_until(lambda: proc.poll() is not None or ask("PING") == ["PONG"], 10, what="redis-server up")
        assert proc.poll() is None, proc.stdout.read()
        assert ask("CONFIG", "GET", "appendonly") == ["appendonly", "yes"]
        assert ask("CONFIG", "GET", "appendfsync") == ["appendfsync", "everysec"]
        assert ask("CONFIG", "GET", "maxmemory-policy") == ["maxmemory-policy", "noeviction"]
        # the healthcheck's own command (inside the container it reaches the default port)
        test = command_list(s["healthcheck"]["test"])
        assert test[0] == "CMD" and test[1:] == ["redis-cli", "ping"], test
        r = subprocess.run([cli, "-p", str(port), *test[2:]], capture_output=True, text=True, timeout=5)
        assert r.returncode == 0 and r.stdout.strip() == "PONG", r.stdout + r.stderr
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
