"""The real cluster on loopback for the cluster tests: redis-server, N `ringgate serve --upstream`
hosts and haproxy in front with the shipped deploy/haproxy/haproxy.cfg.

Everything started here is stopped by the `cluster` fixture (SIGTERM, then SIGKILL), whatever
the test's outcome. Every wait is bounded. A missing redis-server / redis-cli / haproxy fails
the test with what to install; nothing is skipped.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

import rgtest
from rgtest import Gateway, HTTPError, SSEEvent, SSERetry, SSEStream, parse_id, seq_of, wait_until

HAPROXY_CFG = rgtest.REPO / "deploy" / "haproxy" / "haproxy.cfg"
INSTALL_HINT = ("scripts/ensure-deps.sh test installs them (Debian: apt-get install redis-server "
                "redis-tools haproxy)")


def require_tools(*names: str) -> None:
    missing = [n for n in names if shutil.which(n) is None]
    if missing:
        pytest.fail(f"the cluster tests need {', '.join(missing)} on PATH; {INSTALL_HINT}", pytrace=False)


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


_HANDED_OUT: set[int] = set()


def free_port() -> int:
    """A free loopback port below the kernel's ephemeral range: these ports are bound later by
    another process (a host, haproxy, Redis), and a port from the ephemeral range could meanwhile
    become the local port of some outgoing connection."""
    import random
    high = min(_ephemeral_low(), 65536)
    for _ in range(1000):
        port = random.randrange(10000, high)
        if port in _HANDED_OUT:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _HANDED_OUT.add(port)
        return port
    raise AssertionError("no free loopback port below the ephemeral range")


def port_listening(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _stop_process(proc: subprocess.Popen | None, sig: int = signal.SIGTERM, timeout: float = 10.0) -> None:
    """Signal, wait, then SIGKILL the process group (each one runs in its own session)."""
    if proc is None:
        return
    if proc.poll() is None:
        try:
            proc.send_signal(sig)
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        pass


# ----------------------------------------------------------------------------- Redis

class RedisServer:
    """Debian's redis-server on a loopback port: no persistence, or AOF `appendfsync always` in
    its own directory (`aof=True`) so that a restart on the same port comes back with its data."""

    def __init__(self, workdir: Path, port: int | None = None, aof: bool = False,
                 password: str | None = None, name: str = "redis"):
        self.workdir = Path(workdir) / name
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.aof, self.password, self.name = aof, password, name
        self.log_path = self.workdir / "redis.log"
        self.proc: subprocess.Popen | None = None

    def argv(self) -> list[str]:
        argv = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                "--dir", str(self.workdir), "--daemonize", "no", "--logfile", ""]
        argv += (["--appendonly", "yes", "--appendfsync", "always"] if self.aof else ["--appendonly", "no"])
        if self.password is not None:
            argv += ["--requirepass", self.password]
        return argv

    def start(self, timeout: float = 10.0) -> "RedisServer":
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"redis-server exited with {self.proc.returncode} at start-up:\n"
                                     f"{self.log_tail()}")
            try:
                if self.cli("PING", timeout=1.0) == "PONG":
                    return self
            except (AssertionError, subprocess.TimeoutExpired):
                pass      # not listening yet, or still loading its AOF
            if time.monotonic() > deadline:
                raise AssertionError(f"redis-server on port {self.port} did not answer PING within "
                                     f"{timeout}s:\n{self.log_tail()}")
            time.sleep(0.05)

    def url(self, key: str, user: str | None = None, password: str | None = None) -> str:
        auth = ""
        if password is not None:
            auth = f"{user or ''}:{password}@"
        return f"redis://{auth}127.0.0.1:{self.port}?key={key}"

    def cli(self, *args: str, as_json: bool = False, timeout: float = 5.0,
            user: str | None = None, password: str | None = None) -> str | object:
        """One command through redis-cli; `as_json` parses its --json (RESP3) output."""
        argv = ["redis-cli", "-h", "127.0.0.1", "-p", str(self.port)]
        if user is not None:
            argv += ["--user", user]
        if as_json:
            argv.append("--json")
        env = dict(os.environ)
        pw = password if password is not None else self.password
        if pw is not None:
            env["REDISCLI_AUTH"] = pw
        p = subprocess.run(argv + list(args), stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=timeout, env=env)
        out = p.stdout.strip()
        if p.returncode != 0 or out.startswith("ERR") or out.startswith("(error)") or "NOAUTH" in out \
                or "WRONGPASS" in out or "NOPERM" in out:
            raise AssertionError(f"redis-cli {' '.join(args)} failed ({p.returncode}): {out} {p.stderr.strip()}")
        return json.loads(out) if as_json else out

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM: Redis writes and fsyncs its AOF and exits; SIGKILL after `timeout`."""
        _stop_process(self.proc, signal.SIGTERM, timeout)
        if getattr(self, "_log", None):
            self._log.close()
        assert not port_listening(self.port), f"redis port {self.port} still listening after stop"

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, n: int = 3000) -> str:
        try:
            return self.log_path.read_bytes()[-n:].decode("utf-8", "replace")
        except FileNotFoundError:
            return "(no redis log)"

    # --- the cluster's keys (see the design: NAME, NAME:seq, NAME:meta)
    def cluster_epoch(self, key: str) -> str | None:
        out = self.cli("HGET", f"{key}:meta", "epoch")
        return out or None

    def stream_entries(self, key: str) -> list[tuple[str, dict[str, str]]]:
        """[(stream id, {field: value})] of the whole stream, oldest first."""
        rows = self.cli("XRANGE", key, "-", "+", as_json=True)
        out = []
        for sid, flat in rows or []:
            if isinstance(flat, dict):
                fields = {str(k): str(v) for k, v in flat.items()}
            else:
                fields = {str(flat[i]): str(flat[i + 1]) for i in range(0, len(flat), 2)}
            out.append((sid, fields))
        return out


def entry_id(fields: dict[str, str]) -> str:
    """The event id a stream entry is served under: `<epoch>-<seq>`."""
    return f"{fields['epoch']}-{int(fields['seq'])}"


# ----------------------------------------------------------------------------- hosts

class Host:
    """One `ringgate serve --upstream ...` host with fixed ports (so haproxy's addresses and a
    restart on the same data dir keep working) and its own data dir."""

    def __init__(self, name: str, upstream: str, workdir: Path, flags: tuple[str, ...] = (),
                 env: dict[str, str] | None = None, workers: int = 2):
        self.name, self.upstream = name, upstream
        self.data_dir = Path(workdir) / name / "data"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir = Path(workdir) / name
        self.sub_port, self.pub_port = free_port(), free_port()
        self.flags, self.env, self.workers = tuple(flags), dict(env or {}), workers
        self.gw: Gateway | None = None

    def gateway(self) -> Gateway:
        flags = ["--listen", f"127.0.0.1:{self.sub_port}", "--publish-listen", f"127.0.0.1:{self.pub_port}",
                 "--log-capacity", "16MiB"]
        if self.upstream:
            flags += ["--upstream", self.upstream]
        gw = Gateway(flags + list(self.flags), workers=self.workers, data_dir=self.data_dir,
                     log_dir=self.log_dir, name=self.name)
        gw.extra_env = dict(self.env)
        return gw

    def start(self, ready_timeout: float = 20.0) -> "Host":
        self.gw = self.gateway()
        rgtest.TEST_GATEWAYS.append(self.gw)
        self.gw.start(ready_timeout=ready_timeout)
        return self

    @property
    def sub_url(self) -> str:
        return f"http://127.0.0.1:{self.sub_port}"

    @property
    def pub_url(self) -> str:
        return f"http://127.0.0.1:{self.pub_port}"

    def alive(self) -> bool:
        return self.gw is not None and self.gw.alive()

    def stop(self) -> None:
        """SIGTERM and wait (the clean way a host leaves)."""
        assert self.gw is not None
        code = self.gw.stop(signal.SIGTERM, 15.0)
        assert code is not None, f"host {self.name} did not exit within 15 s of SIGTERM"
        self.gw.close()

    def kill9(self) -> None:
        """`kill -9` of the host: its supervisor and every child, at once."""
        gw = self.gw
        assert gw is not None and gw.alive(), f"host {self.name} is not running"
        gw.remember_children()
        pids = [gw.pid] + list(gw.seen_children)
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        gw.wait(5.0)
        wait_until(lambda: not any(rgtest.pid_alive(p) for p in pids), 5.0,
                   what=f"every process of host {self.name} gone after SIGKILL")
        gw.close()

    def close(self) -> None:
        if self.gw is not None:
            self.gw.close()

    # --- what a client of this host sees
    def publish(self, slot: str, data: str, type: str | None = None, timeout: float = 10.0) -> str:
        r = self.post(slot, data, type=type, timeout=timeout)
        assert r.status_code == 201, f"publish at {self.name} answered {r.status_code}: {r.text}"
        return r.json()["id"]

    def post(self, slot: str, data: str, type: str | None = None, timeout: float = 10.0) -> httpx.Response:
        params = {"type": type} if type else None
        with httpx.Client(base_url=self.pub_url, timeout=timeout, trust_env=False) as c:
            return c.post(f"/v1/slots/{slot}/events", params=params, content=data.encode())

    def publish_batch(self, lines: list[dict], timeout: float = 10.0) -> list[str]:
        body = "".join(json.dumps(l) + "\n" for l in lines).encode()
        with httpx.Client(base_url=self.pub_url, timeout=timeout, trust_env=False) as c:
            r = c.post("/v1/events", content=body, headers={"Content-Type": "application/x-ndjson"})
        assert r.status_code == 201, f"batch of {len(lines)} at {self.name} answered {r.status_code}: {r.text}"
        return r.json()["ids"]

    def history_raw(self, slot: str, after: str | None = None, limit: int = 1000) -> bytes:
        params = {"limit": str(limit)}
        if after is not None:
            params["after"] = after
        with httpx.Client(base_url=self.sub_url, timeout=5.0, trust_env=False) as c:
            r = c.get(f"/v1/slots/{slot}/events", params=params)
        assert r.status_code == 200, f"history of {slot} on {self.name} answered {r.status_code}: {r.text}"
        return r.content

    def history(self, slot: str, after: str | None = None, limit: int = 1000) -> dict:
        return json.loads(self.history_raw(slot, after, limit))

    def readyz(self) -> tuple[int, dict]:
        with httpx.Client(base_url=self.sub_url, timeout=3.0, trust_env=False) as c:
            r = c.get("/readyz", headers={"Connection": "close"})
        try:
            return r.status_code, r.json()
        except ValueError:
            return r.status_code, {"unparsed": r.text}

    def metrics(self) -> rgtest.Metrics:
        return rgtest.fetch_metrics(self.sub_port)

    def metric(self, name: str, **labels: str) -> float | None:
        return self.metrics().get(name, **labels)

    def wait_head(self, slot: str, event_id: str, timeout: float = 10.0) -> dict:
        """Until this host's history of `slot` has `event_id` as its head (it applied it)."""
        def ok():
            # While a host re-initialises, its stopping workers answer new connections 503
            # over_capacity with Retry-After (as any stopping worker does): a client retries.
            with httpx.Client(base_url=self.sub_url, timeout=5.0, trust_env=False) as c:
                r = c.get(f"/v1/slots/{slot}/events", params={"limit": "1"})
            if r.status_code == 503 and "Retry-After" in r.headers:
                return None
            assert r.status_code == 200, f"history of {slot} on {self.name} answered {r.status_code}: {r.text}"
            h = r.json()
            return h if h.get("head") == event_id else None
        try:
            return wait_until(ok, timeout, interval=0.05, what=f"host {self.name} to apply {event_id} to {slot}")
        except AssertionError as e:
            raise AssertionError(f"{e}; its history now: {self.history(slot, limit=3)}") from None

    def stream(self, slot: str, last_event_id: str | None = None, timeout: float = 5.0) -> SSEStream:
        h = {"Last-Event-ID": last_event_id} if last_event_id else {}
        s = SSEStream(self.sub_port, f"/v1/slots/{slot}/stream", h, timeout=timeout)
        assert s.status == 200, f"stream of {slot} on {self.name} answered {s.status}: {getattr(s, 'body', b'')!r}"
        return s


def events_bytes(history_body: bytes) -> bytes:
    """The raw `"events":[...]` member of a history body (what must be byte-identical across hosts
    even when their `oldest` differs)."""
    start = history_body.index(b'"events":')
    end = history_body.index(b',"next":', start)
    return history_body[start:end]


# ----------------------------------------------------------------------------- haproxy

class Haproxy:
    """Debian's haproxy with deploy/haproxy/haproxy.cfg, the hosts' addresses in its environment."""

    def __init__(self, workdir: Path, hosts: list[Host]):
        assert 1 <= len(hosts) <= 4, "the shipped haproxy.cfg has host blocks 1-4"
        self.hosts = hosts
        self.sub_port, self.pub_port, self.stats_port = free_port(), free_port(), free_port()
        self.log_path = Path(workdir) / "haproxy.log"
        self.proc: subprocess.Popen | None = None

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("RG_")}
        env.update({"RG_SUBSCRIBE_BIND": f"127.0.0.1:{self.sub_port}",
                    "RG_PUBLISH_BIND": f"127.0.0.1:{self.pub_port}",
                    "RG_STATS_BIND": f"127.0.0.1:{self.stats_port}"})
        for i, h in enumerate(self.hosts, 1):
            env[f"RG_HOST{i}_SUBSCRIBE"] = f"127.0.0.1:{h.sub_port}"
            env[f"RG_HOST{i}_PUBLISH"] = f"127.0.0.1:{h.pub_port}"
        return env

    def start(self, timeout: float = 10.0) -> "Haproxy":
        check = subprocess.run(["haproxy", "-c", "-f", str(HAPROXY_CFG)], env=self.env(),
                               capture_output=True, text=True, timeout=10)
        assert check.returncode == 0, f"haproxy -c rejects {HAPROXY_CFG}:\n{check.stdout}{check.stderr}"
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(["haproxy", "-db", "-f", str(HAPROXY_CFG)], env=self.env(),
                                     stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        wait_until(lambda: self.proc.poll() is not None or port_listening(self.stats_port), timeout,
                   what="haproxy's stats listener")
        assert self.proc.poll() is None, f"haproxy exited with {self.proc.returncode}:\n{self.log_tail()}"
        return self

    def stop(self) -> None:
        # SIGUSR1 is haproxy's graceful stop (waits for open streams); SIGTERM stops at once.
        _stop_process(self.proc, signal.SIGTERM, 5.0)
        if getattr(self, "_log", None):
            self._log.close()

    def server_states(self) -> dict[tuple[str, str], str]:
        """{(backend, server): status} from haproxy's CSV stats ("UP", "DOWN", "MAINT", ...)."""
        r = httpx.get(f"http://127.0.0.1:{self.stats_port}/stats;csv", timeout=3.0, trust_env=False)
        lines = r.text.lstrip("# ").splitlines()
        cols = lines[0].split(",")
        ip, isv, ist = cols.index("pxname"), cols.index("svname"), cols.index("status")
        out = {}
        for line in lines[1:]:
            f = line.split(",")
            if len(f) > ist and f[isv] not in ("FRONTEND", "BACKEND"):
                out[(f[ip], f[isv])] = f[ist].split(" ")[0]
        return out

    def wait_states(self, want: dict[str, str], timeout: float = 15.0) -> None:
        """Until every named host (host1..) is in `want[name]` in both backends."""
        def ok():
            st = self.server_states()
            return all(st.get((be, name)) == state for name, state in want.items()
                       for be in ("ringgate_subscribe", "ringgate_publish"))
        try:
            wait_until(ok, timeout, interval=0.2, what=f"haproxy to see {want}")
        except AssertionError as e:
            raise AssertionError(f"{e}; haproxy reports {self.server_states()}") from None

    def wait_all_up(self, timeout: float = 15.0) -> None:
        self.wait_states({f"host{i}": "UP" for i in range(1, len(self.hosts) + 1)}, timeout)

    @property
    def sub_url(self) -> str:
        return f"http://127.0.0.1:{self.sub_port}"

    @property
    def pub_url(self) -> str:
        return f"http://127.0.0.1:{self.pub_port}"

    def log_tail(self, n: int = 3000) -> str:
        try:
            return self.log_path.read_bytes()[-n:].decode("utf-8", "replace")
        except FileNotFoundError:
            return "(no haproxy log)"


# ----------------------------------------------------------------------------- the whole cluster

@dataclass
class Cluster:
    redis: RedisServer
    key: str
    hosts: list[Host]
    haproxy: Haproxy | None
    workdir: Path
    extra: list = field(default_factory=list)      # more hosts / redis started by the test

    def host(self, name: str) -> Host:
        return next(h for h in self.hosts + [x for x in self.extra if isinstance(x, Host)] if h.name == name)

    def add_host(self, name: str, flags: tuple[str, ...] = (), upstream: str | None = None,
                 env: dict[str, str] | None = None) -> Host:
        """A host not behind haproxy (e.g. started late); stopped with the cluster."""
        h = Host(name, upstream or self.redis.url(self.key), self.workdir, flags, env)
        self.extra.append(h)
        return h

    def epoch(self) -> str | None:
        return self.redis.cluster_epoch(self.key)

    def stop(self) -> None:
        if self.haproxy is not None:
            self.haproxy.stop()
        for h in self.hosts + [x for x in self.extra if isinstance(x, Host)]:
            h.close()
        for r in [self.redis] + [x for x in self.extra if isinstance(x, RedisServer)]:
            if r.proc is not None:
                _stop_process(r.proc, signal.SIGKILL, 1.0)


@pytest.fixture
def cluster(tmp_path, request):
    """Factory: cluster(hosts=3, aof=False, flags=(), haproxy=True, password=None) -> a started Cluster.

    Redis first, then the hosts (each waits for its ready line), then haproxy (waits until it
    sees every host UP through /readyz). Everything is stopped after the test.
    """
    require_tools("redis-server", "redis-cli", "haproxy")
    started: list[Cluster] = []

    def start(hosts: int = 3, aof: bool = False, flags: tuple[str, ...] = (), haproxy: bool = True,
              password: str | None = None, key: str | None = None,
              host_flags: dict[str, tuple[str, ...]] | None = None,
              host_urls: dict[str, str] | None = None) -> Cluster:
        key = key or f"rg{os.getpid()}{len(started)}"
        redis = RedisServer(tmp_path, aof=aof, password=password)
        c = Cluster(redis, key, [], None, tmp_path)
        started.append(c)
        redis.start()
        for i in range(hosts):
            name = "ABCD"[i]
            url = (host_urls or {}).get(name) or redis.url(key, password=password)
            h = Host(name, url, tmp_path, tuple(flags) + tuple((host_flags or {}).get(name, ())))
            c.hosts.append(h)
            h.start()
        if haproxy:
            c.haproxy = Haproxy(tmp_path, c.hosts).start()
            c.haproxy.wait_all_up()
        return c

    yield start
    for c in started:
        c.stop()


# ----------------------------------------------------------------------------- clients

class ResumingSSE(threading.Thread):
    """An SSE client the way a browser's EventSource behaves: when its stream ends (or the
    connection breaks), it reconnects to the same address (haproxy, or one host) with
    `Last-Event-ID` of the last event it got. Keeps every frame it saw, in order.

    `events`: [(id, data)] of `message` events; `controls`: [(event, parsed data)] of reset/close.
    Stops when it has an event with seq >= `final_seq` (set by the test), or at `deadline`.
    """

    def __init__(self, port: int, slot: str, deadline: float, last_event_id: str | None = None,
                 event_type: str = "message", honor_retry: bool = False):
        super().__init__(daemon=True)
        self.port, self.slot, self.deadline = port, slot, deadline
        # honor_retry: wait the stream's last `retry:` before reconnecting, as EventSource does
        # (off by default: the other tests reconnect at once to stay quick).
        self.honor_retry = honor_retry
        self.retry_ms: int | None = None
        self.reconnect_waits: list[float] = []   # seconds waited before each reconnect (honor_retry)
        self.last_event_id = last_event_id
        self.event_type = event_type
        self.events: list[tuple[str, str]] = []
        self.controls: list[tuple[str, object]] = []
        self.errors: list[str] = []
        self.connects = 0
        self.final_id: str | None = None
        self.connected = threading.Event()
        self.halt = threading.Event()
        self.lock = threading.Lock()

    def done(self) -> bool:
        return self.final_id is not None and self.last_event_id == self.final_id

    def _open(self) -> SSEStream | None:
        while not self.halt.is_set() and time.monotonic() < self.deadline:
            hdrs = {"Last-Event-ID": self.last_event_id} if self.last_event_id else {}
            try:
                s = SSEStream(self.port, f"/v1/slots/{self.slot}/stream", hdrs, timeout=3.0)
                if s.status == 200:
                    self.connects += 1
                    return s
                self.errors.append(f"connect answered {s.status}")
                s.close()
            except (OSError, HTTPError, TimeoutError) as e:
                self.errors.append(f"connect: {e!r}")
            time.sleep(0.2)       # EventSource's retry is 1-2 s; shorter keeps the test quick
        return None

    def run(self) -> None:
        s = self._open()
        self.connected.set()
        try:
            while s is not None and not self.halt.is_set() and time.monotonic() < self.deadline:
                if self.done():
                    break
                try:
                    item = s.next_item(0.3)
                except TimeoutError:
                    continue
                except (OSError, HTTPError) as e:
                    self.errors.append(f"read: {e!r}")
                    item = None
                if item is None:
                    s.close()
                    if self.honor_retry and self.retry_ms is not None:
                        self.reconnect_waits.append(self.retry_ms / 1000)
                        self.halt.wait(self.retry_ms / 1000)
                    s = self._open()
                    continue
                if isinstance(item, SSERetry):
                    self.retry_ms = item.ms
                    continue
                if not isinstance(item, SSEEvent):
                    continue
                with self.lock:
                    if item.event in ("reset", "close"):
                        try:
                            body = json.loads(item.data)
                        except ValueError:
                            body = item.data
                        self.controls.append((item.event, body))
                    else:
                        self.events.append((item.id, item.data))
                    if item.id:
                        self.last_event_id = item.id
        finally:
            if s is not None:
                s.close()

    def resets(self) -> list[dict]:
        with self.lock:
            return [b for e, b in self.controls if e == "reset"]

    def stop(self) -> None:
        self.halt.set()
        self.join(10)


class TimedPublisher(threading.Thread):
    """Publishes `<tag>-<n>` to one slot every `interval` s at one address (a host, or haproxy);
    records each attempt: (sent monotonic, answered monotonic, status, error code, id)."""

    def __init__(self, url: str, slot: str, tag: str, interval: float = 0.02, timeout: float = 5.0):
        super().__init__(daemon=True)
        self.url, self.slot, self.tag, self.interval, self.timeout = url, slot, tag, interval, timeout
        self.attempts: list[tuple[float, float, int, str | None, str | None, str]] = []
        self.halt = threading.Event()

    def run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=self.timeout, trust_env=False) as c:
            i = 0
            while not self.halt.is_set():
                data = f"{self.tag}-{i}"
                t0 = time.monotonic()
                try:
                    r = c.post(f"/v1/slots/{self.slot}/events", content=data.encode())
                    t1 = time.monotonic()
                    if r.status_code == 201:
                        self.attempts.append((t0, t1, 201, None, r.json()["id"], data))
                    else:
                        try:
                            code = r.json().get("error")
                        except ValueError:
                            code = r.text[:100]
                        self.attempts.append((t0, t1, r.status_code, code, None, data))
                except httpx.HTTPError as e:
                    self.attempts.append((t0, time.monotonic(), 0, repr(e), None, data))
                i += 1
                self.halt.wait(self.interval)

    def acked(self) -> list[tuple[str, str]]:
        """[(id, data)] of every 201."""
        return [(a[4], a[5]) for a in self.attempts if a[2] == 201]

    def stop(self) -> None:
        self.halt.set()
        self.join(15)


def by_seq(pairs) -> list[tuple[str, str]]:
    return sorted(pairs, key=lambda p: seq_of(p[0]))


def check_exactly_once(got: list[tuple[str, str]], expected: list[tuple[str, str]], who: str) -> None:
    """`got` must be `expected` exactly: every event once, in order, nothing else."""
    assert got == expected, f"{who} did not get every event exactly once in order: " \
                            f"{rgtest.describe_mismatch(got, expected)}"


def record_contents(seen: dict[str, str], pairs, where: str, conflicts: list[str]) -> None:
    """Adds (id, content) pairs to `seen`; an id with two different contents is a conflict."""
    for eid, content in pairs:
        if eid in seen and seen[eid] != content:
            conflicts.append(f"{eid}: {seen[eid]!r} elsewhere, {content!r} at {where}")
        seen.setdefault(eid, content)


def history_pairs(h: dict) -> list[tuple[str, str]]:
    """[(id, data)] of a history body's events."""
    return [(e["id"], e["data"]) for e in h["events"]]


def stream_pairs(entries, slot: str) -> list[tuple[str, str]]:
    """[(id, data)] of the Redis stream entries of one slot (the cluster's truth)."""
    return [(entry_id(f), f["data"]) for _, f in entries if f["slot"] == slot]


class HttpxSSEReader(threading.Thread):
    """A subscriber on httpx + httpx-sse (a real client library, not the raw parser): reads
    `n` events with an id from `url`, then stops."""

    def __init__(self, url: str, n: int, read_timeout: float = 15.0):
        super().__init__(daemon=True)
        self.url, self.n, self.read_timeout = url, n, read_timeout
        self.events: list[tuple[str, str, str]] = []      # (id, event, data)
        self.errors: list[str] = []
        self.status: int | None = None
        self.connected = threading.Event()

    def run(self) -> None:
        from httpx_sse import connect_sse
        try:
            with httpx.Client(timeout=httpx.Timeout(5.0, read=self.read_timeout), trust_env=False) as c:
                with connect_sse(c, "GET", self.url) as es:
                    self.status = es.response.status_code
                    self.connected.set()
                    for ev in es.iter_sse():
                        if not ev.id:          # the `retry:` frame, heartbeats
                            continue
                        self.events.append((ev.id, ev.event, ev.data))
                        if len(self.events) >= self.n:
                            break
        except Exception as e:       # reported by the test with the events it got
            self.errors.append(repr(e))
        finally:
            self.connected.set()


def try_publish(host: Host, slot: str, data: str) -> str | None:
    """The id of a 201, or None (any refusal or a connection the host did not take)."""
    try:
        r = host.post(slot, data, timeout=5.0)
    except httpx.HTTPError:
        return None
    return r.json()["id"] if r.status_code == 201 else None
