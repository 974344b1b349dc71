"""Helpers for Ringgate's integration tests: start the real binary, talk to it.

Everything here is bounded in time: every read has a deadline, every loop ends.
Nothing in this module depends on pytest except `Gateway` failing with a clear message.
"""
from __future__ import annotations

import asyncio
import json
import os
import queue
import re
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

import httpx
import websockets

REPO = Path(__file__).resolve().parents[2]
DEFAULT_BIN = REPO / ".build" / "release" / "ringgate"

READY_RE = re.compile(
    r"^ringgate ready subscribe=(?P<sh>\S+):(?P<sp>\d+) publish=(?P<ph>\S+):(?P<pp>\d+)"
    r" workers=(?P<w>\d+)(?: io=(?P<io>\S+))? data=(?P<data>.*)$"
)
ID_RE = re.compile(r"^(?P<epoch>[0-9a-f]{8})-(?P<seq>[1-9][0-9]*)$")


# The I/O backend every gateway a test starts runs on (`make test` runs the suite once per
# backend); unset = the binary's default (auto). A test that passes its own --io keeps it.
IO_BACKEND = os.environ.get("RINGGATE_TEST_IO") or None


def binary_path() -> Path:
    return Path(os.environ.get("RINGGATE_BIN", str(DEFAULT_BIN)))


# ----------------------------------------------------------------------------- ids

def parse_id(event_id: str) -> tuple[str, int]:
    """`5f3a9c01-42` -> ("5f3a9c01", 42); raises ValueError on anything else."""
    m = ID_RE.match(event_id or "")
    if not m:
        raise ValueError(f"not an EPOCH-SEQ id: {event_id!r}")
    return m["epoch"], int(m["seq"])


def seq_of(event_id: str) -> int:
    return parse_id(event_id)[1]


def epoch_of(event_id: str) -> str:
    return parse_id(event_id)[0]


def wait_until(pred, timeout: float, interval: float = 0.05, what: str = "condition"):
    """Poll `pred` until it returns a truthy value (returned) or `timeout` passes (AssertionError)."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = pred()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what} (last value: {last!r})")
        time.sleep(interval)


async def expect_ws_close(ws, reason: str, code: int, timeout: float = 5.0,
                          retry_max_ms: int | None = None) -> None:
    """On a `websockets` client: the close notice `{"event":"close","reason":reason}`, then the
    close frame with `code`, and no message between them. With `retry_max_ms` (a shutdown, whose
    notice says when to come back) the notice must also carry `retry_ms` in 0...retry_max_ms."""
    notice = json.loads(await asyncio.wait_for(ws.recv(), timeout))
    if retry_max_ms is None:
        assert notice == {"event": "close", "reason": reason}, notice
    else:
        retry = notice.pop("retry_ms", None)
        assert notice == {"event": "close", "reason": reason}, notice
        assert isinstance(retry, int) and 0 <= retry <= retry_max_ms, retry
    try:
        message = await asyncio.wait_for(ws.recv(), timeout)
    except websockets.ConnectionClosed as closed:
        assert closed.rcvd is not None and closed.rcvd.code == code, closed
    else:
        raise AssertionError(f"a message after the close notice: {message!r}")


# ----------------------------------------------------------------------------- SSE parsing

@dataclass
class SSEEvent:
    id: str | None          # the frame's own `id:` field (None when the frame had none)
    event: str              # `event:` field, "message" when absent
    data: str               # `data:` lines joined with "\n"
    data_lines: int = 0     # how many `data:` lines the frame had

    def json(self):
        return json.loads(self.data)


@dataclass
class SSEComment:
    text: str               # the comment without ":" and one leading space


@dataclass
class SSERetry:
    ms: int


SSEItem = SSEEvent | SSEComment | SSERetry


class SSEParser:
    """Incremental text/event-stream parser (WHATWG rules for lines and fields).

    Differences from a browser, on purpose, so tests can see the wire: comments and
    `retry:` fields are reported as items; an event is reported for every frame that had
    an `id`, `event` or `data` field (a browser drops frames with no data).
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self._reset_frame()
        self.last_event_id = ""

    def _reset_frame(self) -> None:
        self._id: str | None = None
        self._event: str | None = None
        self._data: list[str] = []
        self._has_fields = False

    def feed(self, chunk: bytes, eof: bool = False) -> list[SSEItem]:
        self._buf += chunk
        out: list[SSEItem] = []
        while True:
            i_n = self._buf.find(b"\n")
            i_r = self._buf.find(b"\r")
            if i_n < 0 and i_r < 0:
                break
            if i_r >= 0 and (i_n < 0 or i_r < i_n):
                # CR: either CRLF or a lone CR; a CR at the very end may be the start of CRLF.
                if i_r == len(self._buf) - 1 and not eof:
                    break
                end = i_r
                skip = 2 if i_r + 1 < len(self._buf) and self._buf[i_r + 1] == 0x0A else 1
            else:
                end, skip = i_n, 1
            raw = bytes(self._buf[:end])
            del self._buf[: end + skip]
            self._line(raw.decode("utf-8"), out)
        return out

    def _line(self, line: str, out: list[SSEItem]) -> None:
        if line == "":
            if self._has_fields:
                out.append(SSEEvent(self._id, self._event or "message", "\n".join(self._data), len(self._data)))
            self._reset_frame()
            return
        if line.startswith(":"):
            text = line[1:]
            out.append(SSEComment(text[1:] if text.startswith(" ") else text))
            return
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
            self._has_fields = True
        elif name == "event":
            self._event = value
            self._has_fields = True
        elif name == "id":
            if "\0" not in value:
                self._id = value
                self.last_event_id = value
            self._has_fields = True
        elif name == "retry":
            if value.isdigit():
                out.append(SSERetry(int(value)))
        # other fields are ignored, as a browser does


# ----------------------------------------------------------------------------- raw HTTP

class HTTPError(Exception):
    pass


@dataclass
class Response:
    status: int
    reason: str
    headers: dict[str, str]      # lower-case names; repeated headers joined with ", "
    body: bytes

    def json(self):
        return json.loads(self.body)


class RawConnection:
    """One TCP connection; send arbitrary bytes, read HTTP/1.1 responses with deadlines."""

    def __init__(self, port: int, host: str = "127.0.0.1", timeout: float = 5.0, rcvbuf: int | None = None):
        self.sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)   # before connect, so it sticks
        self.sock.settimeout(timeout)
        self.sock.connect((host, port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.local_port = self.sock.getsockname()[1]
        self.timeout = timeout
        self.buf = bytearray()
        self.eof = False

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, data: bytes) -> None:
        """Send everything; a peer that closes early (after answering) is not an error here."""
        try:
            self.sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def recv_some(self, deadline: float) -> bytes:
        """Receive into the buffer; returns what arrived, b"" at EOF; TimeoutError at the deadline."""
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("deadline passed")
        self.sock.settimeout(left)
        try:
            data = self.sock.recv(65536)
        except socket.timeout as e:
            raise TimeoutError("read timed out") from e
        except ConnectionResetError:
            data = b""
        if not data:
            self.eof = True
        self.buf += data
        return data

    def _take_until(self, marker: bytes, deadline: float, limit: int = 1 << 20) -> bytes:
        while True:
            i = self.buf.find(marker)
            if i >= 0:
                out = bytes(self.buf[:i])
                del self.buf[: i + len(marker)]
                return out
            if len(self.buf) > limit:
                raise HTTPError(f"no {marker!r} within {limit} bytes")
            if self.eof or not self.recv_some(deadline):
                raise HTTPError(f"connection closed before {marker!r}; have {bytes(self.buf[:200])!r}")

    def _take(self, n: int, deadline: float) -> bytes:
        while len(self.buf) < n:
            if self.eof or not self.recv_some(deadline):
                raise HTTPError(f"connection closed with {len(self.buf)} of {n} body bytes")
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def read_head(self, deadline: float) -> tuple[int, str, dict[str, str]]:
        head = self._take_until(b"\r\n\r\n", deadline, limit=64 * 1024).decode("latin-1")
        lines = head.split("\r\n")
        m = re.match(r"^HTTP/1\.[01] (\d{3})(?: (.*))?$", lines[0])
        if not m:
            raise HTTPError(f"bad status line {lines[0]!r}")
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            key = name.strip().lower()
            value = value.strip()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        return int(m.group(1)), m.group(2) or "", headers

    def read_response(self, timeout: float | None = None) -> Response:
        """Read one whole response (Content-Length, chunked, or until close)."""
        deadline = time.monotonic() + (timeout or self.timeout)
        status, reason, headers = self.read_head(deadline)
        if "chunked" in headers.get("transfer-encoding", "").lower():
            body = bytearray()
            while True:
                size_line = self._take_until(b"\r\n", deadline).decode("latin-1")
                size = int(size_line.split(";")[0].strip(), 16)
                if size == 0:
                    while self._take_until(b"\r\n", deadline):  # trailers
                        pass
                    break
                body += self._take(size, deadline)
                self._take_until(b"\r\n", deadline)
            return Response(status, reason, headers, bytes(body))
        if "content-length" in headers:
            return Response(status, reason, headers, self._take(int(headers["content-length"]), deadline))
        if status in (204, 304) or 100 <= status < 200:
            return Response(status, reason, headers, b"")
        while not self.eof:
            self.recv_some(deadline)
        body = bytes(self.buf)
        self.buf.clear()
        return Response(status, reason, headers, body)


def request_bytes(method: str, target: str, headers: dict[str, str] | None = None,
                  body: bytes | None = None, host: str = "127.0.0.1") -> bytes:
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}"]
    for k, v in (headers or {}).items():
        lines.append(f"{k}: {v}")
    if body is not None and not any(k.lower() in ("content-length", "transfer-encoding") for k in (headers or {})):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")


def raw_request(port: int, data: bytes, timeout: float = 5.0) -> Response:
    """Send raw bytes on a fresh connection and read one response."""
    with RawConnection(port, timeout=timeout) as c:
        c.send(data)
        return c.read_response(timeout)


# ----------------------------------------------------------------------------- SSE client (raw)

class SSEStream:
    """A raw-socket SSE subscriber: exact bytes on the wire, comments visible, deadlines on reads.

    `next_item(timeout)` returns the next SSEEvent / SSEComment / SSERetry, None once the server
    closed the stream, or raises TimeoutError.
    """

    def __init__(self, port: int, path: str, headers: dict[str, str] | None = None,
                 timeout: float = 5.0, host: str = "127.0.0.1", conn: "RawConnection | None" = None):
        self.conn = conn if conn is not None else RawConnection(port, host, timeout)
        self.local_port = self.conn.local_port
        self.path = path
        hdrs = {"Accept": "text/event-stream"}
        hdrs.update(headers or {})
        self.conn.send(request_bytes("GET", path, hdrs))
        deadline = time.monotonic() + timeout
        self.status, self.reason, self.headers = self.conn.read_head(deadline)
        self.chunked = "chunked" in self.headers.get("transfer-encoding", "").lower()
        self.content_length = int(self.headers["content-length"]) if "content-length" in self.headers else None
        self.parser = SSEParser()
        self.pending: list[SSEItem] = []
        self.closed = False
        self.raw = bytearray()          # decoded body bytes seen so far (for wire-level checks)
        self._chunk_left = 0            # bytes left in the current chunk
        self._need_crlf = False
        if self.status != 200:
            # a non-stream answer: read its body so callers can see the error
            self.body = self._read_error_body(deadline)

    def _read_error_body(self, deadline: float) -> bytes:
        try:
            if self.content_length is not None:
                return self.conn._take(self.content_length, deadline)
        except (HTTPError, TimeoutError):
            pass
        return bytes(self.conn.buf)

    def close(self) -> None:
        self.closed = True
        self.conn.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _body_bytes(self, deadline: float) -> bytes | None:
        """Next decoded body bytes; None at end of body / connection."""
        c = self.conn
        if not self.chunked:
            if not c.buf:
                if c.eof or not c.recv_some(deadline):
                    return None
            out = bytes(c.buf)
            c.buf.clear()
            return out
        while True:
            if self._need_crlf:
                while len(c.buf) < 2:
                    if c.eof or not c.recv_some(deadline):
                        return None
                if bytes(c.buf[:2]) != b"\r\n":
                    raise HTTPError(f"bad chunk terminator {bytes(c.buf[:2])!r}")
                del c.buf[:2]
                self._need_crlf = False
            if self._chunk_left == 0:
                i = c.buf.find(b"\r\n")
                while i < 0:
                    if c.eof or not c.recv_some(deadline):
                        return None
                    i = c.buf.find(b"\r\n")
                size = int(bytes(c.buf[:i]).split(b";")[0].strip(), 16)
                del c.buf[: i + 2]
                if size == 0:
                    return None
                self._chunk_left = size
            if not c.buf:
                if c.eof or not c.recv_some(deadline):
                    return None
            n = min(self._chunk_left, len(c.buf))
            out = bytes(c.buf[:n])
            del c.buf[:n]
            self._chunk_left -= n
            if self._chunk_left == 0:
                self._need_crlf = True
            return out

    def next_item(self, timeout: float = 5.0) -> SSEItem | None:
        if self.status != 200:
            raise HTTPError(f"stream answered {self.status}: {getattr(self, 'body', b'')!r}")
        deadline = time.monotonic() + timeout
        while not self.pending:
            if self.closed:
                return None
            try:
                data = self._body_bytes(deadline)
            except (ConnectionResetError, BrokenPipeError):
                data = None
            if data is None:
                self.pending.extend(self.parser.feed(b"", eof=True))
                self.closed = True
                break
            self.raw += data
            self.pending.extend(self.parser.feed(data))
        if self.pending:
            return self.pending.pop(0)
        return None

    def next_event(self, timeout: float = 5.0) -> SSEEvent | None:
        """Next event frame (comments and retry skipped); None when the stream ended."""
        deadline = time.monotonic() + timeout
        while True:
            item = self.next_item(max(0.0, deadline - time.monotonic()) or 0.001)
            if item is None or isinstance(item, SSEEvent):
                return item

    def read_events(self, n: int, timeout: float = 5.0) -> list[SSEEvent]:
        """Exactly n events within `timeout` overall (AssertionError otherwise)."""
        deadline = time.monotonic() + timeout
        out: list[SSEEvent] = []
        while len(out) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"got {len(out)} of {n} events within {timeout}s: {out[-3:]}")
            try:
                ev = self.next_event(left)
            except TimeoutError:
                continue
            if ev is None:
                raise AssertionError(f"stream closed after {len(out)} of {n} events: {out[-3:]}")
            out.append(ev)
        return out

    def first_retry(self, timeout: float = 5.0) -> SSERetry:
        item = self.next_item(timeout)
        assert isinstance(item, SSERetry), f"first frame must be `retry:`, got {item!r}"
        return item

    def assert_quiet(self, seconds: float) -> None:
        """No event frame (comments are fine) for `seconds`."""
        deadline = time.monotonic() + seconds
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            try:
                item = self.next_item(left)
            except TimeoutError:
                return
            assert not isinstance(item, SSEEvent), f"unexpected extra event {item!r}"
            if item is None:
                return


# ----------------------------------------------------------------------------- metrics

_SAMPLE_RE = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>.*)\})?\s+(?P<value>\S+)(?:\s+\d+)?$")
_LABEL_RE = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*,?')


class Metrics:
    """Prometheus text exposition, parsed into (name, labels, value) samples."""

    def __init__(self, text: str):
        self.text = text
        self.samples: list[tuple[str, dict[str, str], float]] = []
        for line in text.splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            m = _SAMPLE_RE.match(line)
            if not m:
                raise ValueError(f"not a Prometheus sample line: {line!r}")
            labels = {}
            if m["labels"]:
                pos = 0
                s = m["labels"]
                while pos < len(s):
                    lm = _LABEL_RE.match(s, pos)
                    if not lm:
                        raise ValueError(f"bad labels in {line!r}")
                    labels[lm.group(1)] = bytes(lm.group(2), "utf-8").decode("unicode_escape")
                    pos = lm.end()
            self.samples.append((m["name"], labels, float(m["value"])))

    def names(self) -> set[str]:
        return {n for n, _, _ in self.samples}

    def get(self, name: str, **labels: str) -> float | None:
        """Sum of the samples named `name` whose labels include `labels`; None if there are none."""
        vals = [v for n, ls, v in self.samples
                if n == name and all(ls.get(k) == v2 for k, v2 in labels.items())]
        return sum(vals) if vals else None

    def value(self, name: str, **labels: str) -> float:
        v = self.get(name, **labels)
        assert v is not None, f"metric {name}{labels or ''} missing from /metrics:\n{self.text}"
        return v


# ----------------------------------------------------------------------------- /proc

def proc_stat(pid: int) -> tuple[str, str, int]:
    """(comm, state, ppid) of a pid, from /proc/PID/stat (comm may contain spaces and parens)."""
    text = Path(f"/proc/{pid}/stat").read_text()
    lp, rp = text.index("("), text.rindex(")")
    rest = text[rp + 2:].split()
    return text[lp + 1: rp], rest[0], int(rest[1])


def proc_cmdline(pid: int) -> list[str]:
    raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    return [a.decode("utf-8", "replace") for a in raw.split(b"\0")[:-1]] if raw else []


def pid_alive(pid: int) -> bool:
    """True while the pid exists and is not a zombie."""
    try:
        return proc_stat(pid)[1] != "Z"
    except (FileNotFoundError, ProcessLookupError, ValueError):
        return False


def proc_cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (utime + stime of /proc/PID/stat)."""
    text = Path(f"/proc/{pid}/stat").read_text()
    rest = text[text.rindex(")") + 2:].split()
    return (int(rest[11]) + int(rest[12])) / os.sysconf("SC_CLK_TCK")


def proc_rss_bytes(pid: int) -> int:
    """Resident memory of a process (VmRSS of /proc/PID/status)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise ValueError(f"no VmRSS for pid {pid}")


def children_of(ppid: int) -> list[int]:
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            _, state, pp = proc_stat(int(d))
        except (FileNotFoundError, ProcessLookupError, ValueError, IndexError):
            continue
        if pp == ppid and state != "Z":
            out.append(int(d))
    return sorted(out)


@dataclass
class Child:
    pid: int
    role: str              # argv[1]: "ingest", "worker", ...
    index: int | None      # --index N for workers
    argv: list[str] = field(default_factory=list)


def describe_child(pid: int) -> Child | None:
    try:
        argv = proc_cmdline(pid)
    except (FileNotFoundError, ProcessLookupError):
        return None
    if len(argv) < 2:
        return None
    # argv[1] is the role; tolerate an interpreter in front (a script run via its #! line)
    role = next((a for a in argv[1:3] if a in ("serve", "ingest", "worker")), argv[1])
    index = None
    for i, a in enumerate(argv):
        if a == "--index" and i + 1 < len(argv) and argv[i + 1].isdigit():
            index = int(argv[i + 1])
        elif a.startswith("--index=") and a[8:].isdigit():
            index = int(a[8:])
    return Child(pid, role, index, argv)


def _tcp_table(with_queues: bool = False) -> Iterator[tuple]:
    """(local port, remote port, state hex, inode[, tx_queue, rx_queue]) for every IPv4 and IPv6
    TCP socket, from /proc/net/tcp*."""
    for path in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(path).read_text().splitlines()[1:]
        except FileNotFoundError:
            continue
        for line in lines:
            f = line.split()
            if len(f) < 10:
                continue
            row = (int(f[1].rsplit(":", 1)[1], 16), int(f[2].rsplit(":", 1)[1], 16), f[3], int(f[9]))
            if with_queues:
                tx, rx = f[4].split(":")
                row += (int(tx, 16), int(rx, 16))
            yield row


def server_socket_inode(server_port: int, client_port: int) -> int | None:
    """Inode of the server side of the loopback connection server_port <-> client_port."""
    for lport, rport, state, inode in _tcp_table():
        if lport == server_port and rport == client_port and inode != 0 and state != "0A":
            return inode
    return None


def pid_holding_socket(inode: int, pids: Iterable[int]) -> int | None:
    target = f"socket:[{inode}]"
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except (FileNotFoundError, PermissionError, ProcessLookupError):
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") == target:
                    return pid
            except OSError:
                continue
    return None


# ----------------------------------------------------------------------------- the gateway

LIVE_GATEWAYS: "set[Gateway]" = set()     # started and not yet closed
TEST_GATEWAYS: "list[Gateway]" = []     # started by the current test (for failure reports)


class Gateway:
    """`ringgate serve` on loopback, with its stderr in a file and helpers to talk to it."""

    def __init__(self, flags: Iterable[str] = (), workers: int = 2, data_dir: Path | None = None,
                 log_dir: Path = Path("/tmp"), name: str = "gw", binary: Path | None = None,
                 prefix: Iterable[str] = ()):
        self.flags = list(flags)
        # Runs before the binary and execs it (e.g. ["prlimit", "--nofile=300:300", "--"]),
        # so the supervisor's pid is still the process we started.
        self.prefix = list(prefix)
        self.nworkers = workers
        self.data_dir = data_dir
        self.name = name
        self.binary = binary or binary_path()
        self.stderr_path = Path(log_dir) / f"{name}.stderr.log"
        self.proc: subprocess.Popen | None = None
        self.stdout_lines: list[str] = []
        self.ready_line: str | None = None
        self._lines: "queue.Queue[str | None]" = queue.Queue()
        self._pub: httpx.Client | None = None
        self._sub: httpx.Client | None = None
        self.seen_children: dict[int, list[str]] = {}
        self.exit_code: int | None = None
        # Set before start(): added to the gateway's environment after the RINGGATE_* filter
        # (e.g. RINGGATE_UPSTREAM_PASSWORD for a cluster test).
        self.extra_env: dict[str, str] = {}

    # --- lifecycle
    def argv(self) -> list[str]:
        argv = self.prefix + [str(self.binary), "serve", "--listen", "127.0.0.1:0", "--publish-listen", "127.0.0.1:0",
                              "--workers", str(self.nworkers)]
        argv += ["--data-dir", str(self.data_dir)] if self.data_dir is not None else ["--ephemeral"]
        if IO_BACKEND and "--io" not in self.flags:
            argv += ["--io", IO_BACKEND]
        # The suite stops gateways with SIGTERM: without a drain delay they stop as they did
        # before the drain existed. The drain's own tests pass --drain-delay.
        if "--drain-delay" not in self.flags:
            argv += ["--drain-delay", "0"]
        return argv + self.flags

    def start(self, ready_timeout: float = 15.0) -> "Gateway":
        # The suite's backend travels as --io (RINGGATE_TEST_IO above), so no RINGGATE_* of the
        # runner's environment leaks into a gateway.
        env = {k: v for k, v in os.environ.items() if not k.startswith("RINGGATE_")}
        env.update(self.extra_env)
        self._stderr_file = open(self.stderr_path, "ab")
        self._stderr_file.write(f"=== {' '.join(self.argv())}\n".encode())
        self._stderr_file.flush()
        self.proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=self._stderr_file, env=env, start_new_session=True)
        LIVE_GATEWAYS.add(self)
        threading.Thread(target=self._pump_stdout, args=(self.proc,), daemon=True).start()
        deadline = time.monotonic() + ready_timeout
        while self.ready_line is None:
            left = deadline - time.monotonic()
            if left <= 0:
                self._fail(f"no ready line within {ready_timeout}s")
            try:
                line = self._lines.get(timeout=min(left, 0.2))
            except queue.Empty:
                continue
            if line is None:
                self.proc.wait(timeout=5)
                self._fail(f"exited with {self.proc.returncode} before the ready line")
            m = READY_RE.match(line.strip())
            if m:
                self.ready_line = line.strip()
                self.sub_port, self.pub_port = int(m["sp"]), int(m["pp"])
                self.ready_workers, self.data_path = int(m["w"]), m["data"]
                self.io_backend = m["io"]
                if IO_BACKEND and "--io" not in self.flags and self.io_backend != IO_BACKEND:
                    self._fail(f"asked for --io {IO_BACKEND}, the ready line says io={self.io_backend}")
        self.sub_url = f"http://127.0.0.1:{self.sub_port}"
        self.pub_url = f"http://127.0.0.1:{self.pub_port}"
        self._pub = httpx.Client(base_url=self.pub_url, timeout=5.0, trust_env=False)
        self._sub = httpx.Client(base_url=self.sub_url, timeout=5.0, trust_env=False)
        # the ready line means both listeners are up; also wait for every worker to exist
        try:
            wait_until(lambda: len(self.workers()) >= self.nworkers, 10.0, what=f"{self.nworkers} worker processes")
        except AssertionError as e:
            self._fail(str(e))
        return self

    def _pump_stdout(self, proc: subprocess.Popen) -> None:
        for raw in iter(proc.stdout.readline, b""):
            line = raw.decode("utf-8", "replace")
            self.stdout_lines.append(line)
            self._lines.put(line)
        self._lines.put(None)

    def _fail(self, why: str):
        tail = self.stderr_tail()
        self.close()
        raise AssertionError(f"ringgate serve ({self.name}) {why}\nargv: {' '.join(self.argv())}\n"
                             f"stdout: {''.join(self.stdout_lines)[-2000:]}\n--- stderr tail ---\n{tail}")

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def send_signal(self, sig: int) -> None:
        if self.alive():
            os.kill(self.proc.pid, sig)

    def wait(self, timeout: float) -> int | None:
        """Exit code, or None if still running after `timeout`."""
        try:
            self.exit_code = self.proc.wait(timeout=timeout)
            return self.exit_code
        except subprocess.TimeoutExpired:
            return None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int | None:
        """Signal the supervisor and wait for it; returns its exit code (None if it hung)."""
        self.remember_children()
        self.send_signal(sig)
        return self.wait(timeout)

    def close(self) -> None:
        """Teardown: SIGTERM, 10 s, then SIGKILL the whole process group; never leaks children."""
        if self.proc is None:
            return
        for c in (self._pub, self._sub):
            if c is not None:
                c.close()
        self._pub = self._sub = None
        if self.alive():
            self.remember_children()
            try:
                os.kill(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            if self.wait(10.0) is None:
                self._killpg()
                self.wait(5.0)
        self._killpg()
        for pid, argv in self.seen_children.items():   # children that left the group
            try:
                if proc_cmdline(pid) == argv:
                    os.kill(pid, signal.SIGKILL)
            except (FileNotFoundError, ProcessLookupError, PermissionError):
                pass
        try:
            self.proc.stdout.close()
        except Exception:
            pass
        self._stderr_file.close()
        LIVE_GATEWAYS.discard(self)

    def _killpg(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)   # we started it with its own session: pgid == pid
        except (ProcessLookupError, PermissionError):
            pass

    def stderr_tail(self, nbytes: int = 6000) -> str:
        try:
            data = self.stderr_path.read_bytes()
        except FileNotFoundError:
            return "(no stderr file)"
        return data[-nbytes:].decode("utf-8", "replace")

    # --- processes
    def children(self) -> list[Child]:
        out = []
        for pid in children_of(self.pid):
            c = describe_child(pid)
            if c is not None:
                out.append(c)
        return out

    def remember_children(self) -> None:
        for c in self.children():
            self.seen_children[c.pid] = c.argv

    def workers(self) -> dict[int, int]:
        """{worker index: pid}"""
        kids = self.children()
        for c in kids:
            self.seen_children[c.pid] = c.argv
        return {c.index: c.pid for c in kids if c.role == "worker"}

    def worker_pid_for(self, client_port: int, timeout: float = 3.0) -> int:
        """Pid of the worker holding the server side of our connection from `client_port`."""
        def find():
            inode = server_socket_inode(self.sub_port, client_port)
            if inode is None:
                return None
            return pid_holding_socket(inode, list(self.workers().values()))
        return wait_until(find, timeout, what=f"the worker serving client port {client_port}")

    # --- HTTP helpers
    @property
    def pub(self) -> httpx.Client:
        return self._pub

    @property
    def sub(self) -> httpx.Client:
        return self._sub

    def publish(self, slot: str, data: str | bytes, type: str | None = None, token: str | None = None) -> str:
        r = self.post_event(slot, data, type=type, token=token)
        assert r.status_code == 201, f"publish to {slot!r} answered {r.status_code}: {r.text}"
        body = r.json()
        assert body.get("slot") == slot, body
        parse_id(body["id"])
        return body["id"]

    def post_event(self, slot: str, data: str | bytes, type: str | None = None,
                   token: str | None = None, headers: dict[str, str] | None = None) -> httpx.Response:
        params = {"type": type} if type is not None else None
        h = dict(headers or {})
        if token is not None:
            h["Authorization"] = f"Bearer {token}"
        content = data.encode() if isinstance(data, str) else data
        return self.pub.post(f"/v1/slots/{slot}/events", params=params, content=content, headers=h)

    def publish_batch(self, lines: list[str | dict], token: str | None = None) -> httpx.Response:
        body = "".join((json.dumps(l) if isinstance(l, dict) else l) + "\n" for l in lines)
        h = {"Content-Type": "application/x-ndjson"}
        if token is not None:
            h["Authorization"] = f"Bearer {token}"
        return self.pub.post("/v1/events", content=body.encode(), headers=h)

    def history(self, slot: str, after: str | None = None, limit: int | None = None) -> dict:
        r = self.get_history(slot, after=after, limit=limit)
        assert r.status_code == 200, f"history of {slot!r} answered {r.status_code}: {r.text}"
        assert r.headers.get("content-type", "").startswith("application/json"), r.headers
        return r.json()

    def get_history(self, slot: str, after: str | None = None, limit: int | None = None) -> httpx.Response:
        params = {}
        if after is not None:
            params["after"] = after
        if limit is not None:
            params["limit"] = str(limit)
        return self.sub.get(f"/v1/slots/{slot}/events", params=params)

    def metrics(self) -> Metrics:
        r = self.sub.get("/metrics")
        assert r.status_code == 200, f"/metrics answered {r.status_code}: {r.text}"
        return Metrics(r.text)

    def stream(self, slot: str, last_event_id: str | None = None, query: str = "",
               timeout: float = 5.0, headers: dict[str, str] | None = None) -> SSEStream:
        h = dict(headers or {})
        if last_event_id is not None:
            h["Last-Event-ID"] = last_event_id
        path = f"/v1/slots/{slot}/stream" + (f"?{query}" if query else "")
        s = SSEStream(self.sub_port, path, h, timeout=timeout)
        assert s.status == 200, f"GET {path} answered {s.status}: {getattr(s, 'body', b'')!r}"
        ctype = s.headers.get("content-type", "")
        assert ctype.split(";")[0].strip() == "text/event-stream", f"content-type {ctype!r}"
        return s


def start_shared_gateway(binary: Path, tmp_path_factory, name: str, *flags: str, workers: int = 2) -> Gateway:
    """For module-scoped fixtures: one gateway shared by many small tests (close it yourself)."""
    gw = Gateway(flags, workers=workers, log_dir=tmp_path_factory.mktemp(name), name=name, binary=binary)
    return gw.start()


def check_error(status: int, body: bytes | str, expected_status: int, codes: str | Iterable[str] | None = None,
                what: str = "") -> dict:
    """Assert an error response: the status, and a JSON {"error":…, "detail":…} body."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    assert status == expected_status, f"{what}: expected {expected_status}, got {status}: {text[:500]}"
    try:
        doc = json.loads(text)
    except ValueError:
        raise AssertionError(f"{what}: error body is not JSON: {text[:500]!r}")
    assert isinstance(doc, dict) and isinstance(doc.get("error"), str) and isinstance(doc.get("detail"), str), \
        f"{what}: error body must be {{\"error\":…,\"detail\":…}}, got {doc!r}"
    if codes is not None:
        allowed = {codes} if isinstance(codes, str) else set(codes)
        assert doc["error"] in allowed, f"{what}: error code {doc['error']!r}, expected one of {sorted(allowed)}"
    return doc


class LineReader:
    """Read a subprocess's stdout lines from a thread, with timeouts."""

    def __init__(self, stream):
        self.q: "queue.Queue[str | None]" = queue.Queue()
        self.lines: list[str] = []
        threading.Thread(target=self._run, args=(stream,), daemon=True).start()

    def _run(self, stream) -> None:
        try:
            for raw in iter(stream.readline, b""):
                self.q.put(raw.decode("utf-8", "replace"))
        except ValueError:
            pass
        self.q.put(None)

    def readline(self, timeout: float) -> str | None:
        """Next line (with its newline); None at EOF; TimeoutError after `timeout`."""
        try:
            line = self.q.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(f"no line within {timeout}s")
        if line is not None:
            self.lines.append(line)
        return line


# ----------------------------------------------------------------------------- multi-client helpers

def open_streams(gw: Gateway, slot: str, enough, max_conns: int = 200, **stream_kwargs) -> dict[int, list[SSEStream]]:
    """Open SSE streams (each past its `retry:` frame) until `enough({worker pid: [streams]})`.

    Which worker serves each stream is read from /proc. AssertionError (streams closed) when
    `max_conns` connections were not enough.
    """
    by_worker: dict[int, list[SSEStream]] = {}
    for _ in range(max_conns):
        s = gw.stream(slot, **stream_kwargs)
        s.first_retry()
        by_worker.setdefault(gw.worker_pid_for(s.local_port), []).append(s)
        if enough(by_worker):
            return by_worker
    counts = {pid: len(v) for pid, v in by_worker.items()}
    for v in by_worker.values():
        for s in v:
            s.close()
    raise AssertionError(f"{max_conns} connections were not enough; per worker pid: {counts}")


class Publisher(threading.Thread):
    """Publishes `prefix<N>` to one slot every `interval` seconds until stopped; keeps the ids.

    `round`: (slot, type) pairs published round-robin instead (type None: the default), with
    `data(i, slot)` as the data; `published` keeps (id, slot, type, data) of every 201."""

    def __init__(self, gw: Gateway, slot: str | None = None, interval: float = 0.005, prefix: str = "n",
                 round: list[tuple[str, str | None]] | None = None, data=None):
        super().__init__(daemon=True)
        self.url, self.interval = gw.pub_url, interval
        self.round = round or [(slot, None)]
        self.data = data or (lambda i, slot: f"{prefix}{i}")
        self.ids: list[str] = []
        self.datas: list[str] = []
        self.published: list[tuple[str, str, str | None, str]] = []
        self.errors: list[str] = []
        self.halt = threading.Event()

    def run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=5.0, trust_env=False) as c:
            i = 0
            while not self.halt.is_set():
                slot, typ = self.round[i % len(self.round)]
                data = self.data(i, slot)
                try:
                    r = c.post(f"/v1/slots/{slot}/events", params={"type": typ} if typ else None,
                               content=data.encode())
                    if r.status_code == 201:
                        eid = r.json()["id"]
                        self.published.append((eid, slot, typ, data))
                        self.ids.append(eid)
                        self.datas.append(data)
                    else:
                        self.errors.append(f"{r.status_code} {r.text[:200]}")
                except httpx.HTTPError as e:
                    self.errors.append(repr(e))
                i += 1
                self.halt.wait(self.interval)

    def stop(self) -> None:
        self.halt.set()
        self.join(10)


class ResumingClient(threading.Thread):
    """Reads a stream; when it ends, reconnects with `Last-Event-ID` (as a browser does).

    Stops once it has seen seq >= `final_seq` (set by the test), or at `deadline`.
    """

    def __init__(self, gw: Gateway, slot: str, stream: SSEStream, deadline: float):
        super().__init__(daemon=True)
        self.port, self.slot, self.stream, self.deadline = gw.sub_port, slot, stream, deadline
        self.events: list[tuple[str, str]] = []
        self.anomalies: list[str] = []
        self.errors: list[str] = []
        self.reconnects = 0
        self.final_seq: int | None = None
        self.done = False
        self.halt = threading.Event()

    def _finished(self) -> bool:
        return self.final_seq is not None and bool(self.events) and seq_of(self.events[-1][0]) >= self.final_seq

    def run(self) -> None:
        s = self.stream
        try:
            while s is not None and not self.halt.is_set() and time.monotonic() < self.deadline:
                if self._finished():
                    self.done = True
                    break
                try:
                    item = s.next_item(0.5)
                except TimeoutError:
                    continue
                except (OSError, HTTPError) as e:
                    self.errors.append(f"read: {e!r}")
                    item = None
                if item is None:
                    s.close()
                    s = self._reconnect()
                elif isinstance(item, SSEEvent):
                    if item.event == "message":
                        self.events.append((item.id, item.data))
                    else:
                        self.anomalies.append(f"{item.event}: {item.data}")
        finally:
            if s is not None:
                s.close()

    def _reconnect(self) -> SSEStream | None:
        while not self.halt.is_set() and time.monotonic() < self.deadline:
            hdrs = {"Last-Event-ID": self.events[-1][0]} if self.events else {}
            try:
                s = SSEStream(self.port, f"/v1/slots/{self.slot}/stream", hdrs, timeout=3.0)
                if s.status == 200:
                    self.reconnects += 1
                    return s
                self.anomalies.append(f"reconnect answered {s.status}")
                s.close()
            except (OSError, HTTPError, TimeoutError) as e:
                self.errors.append(f"reconnect: {e!r}")
            time.sleep(0.1)
        return None


def describe_mismatch(got: list, expected: list) -> str:
    """Short explanation of how two sequences differ (first divergence, missing, duplicates)."""
    if got == expected:
        return "equal"
    i = next((k for k, (a, b) in enumerate(zip(got, expected)) if a != b), min(len(got), len(expected)))
    seen, dups = set(), []
    for g in got:
        if g in seen:
            dups.append(g)
        seen.add(g)
    missing = [e for e in expected if e not in seen]
    return (f"got {len(got)}, expected {len(expected)}; first difference at {i}: "
            f"got {got[i:i + 3]} expected {expected[i:i + 3]}; missing {len(missing)} {missing[:5]}; "
            f"duplicates {len(dups)} {dups[:5]}")


# =============================================================================
# Slow, stalled, half-open and hostile clients (helpers for test_slow_*.py).
# Additions only: nothing above this line depends on anything below it.
# =============================================================================

import selectors as _selectors
import struct as _struct
import subprocess as _subprocess

SIOCINQ = 0x541B            # FIONREAD: bytes waiting in a socket's receive queue


def small_rcvbuf_connection(port: int, rcvbuf: int, host: str = "127.0.0.1", timeout: float = 5.0) -> RawConnection:
    """A RawConnection whose SO_RCVBUF is set *before* connect, so the advertised window stays small."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.settimeout(timeout)
    sock.connect((host, port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    conn = RawConnection.__new__(RawConnection)
    conn.sock, conn.local_port, conn.timeout = sock, sock.getsockname()[1], timeout
    conn.buf, conn.eof = bytearray(), False
    return conn


class RcvbufSSEStream(SSEStream):
    """SSEStream over a socket with a small SO_RCVBUF (set before connect).

    Only the response head is read by the constructor (one recv of at most `head_recv` bytes
    may also pull a little body, kept in the buffer), so a test can then stop reading.
    """

    def __init__(self, port: int, path: str, rcvbuf: int = 4096, headers: dict[str, str] | None = None,
                 timeout: float = 5.0, host: str = "127.0.0.1"):
        super().__init__(port, path, headers, timeout, host,
                         conn=small_rcvbuf_connection(port, rcvbuf, host, timeout))

    def rcvbuf(self) -> int:
        return self.conn.sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)


def socket_inq(sock: socket.socket) -> int:
    """Bytes sitting unread in a socket's receive queue."""
    import fcntl
    return _struct.unpack("i", fcntl.ioctl(sock.fileno(), SIOCINQ, b"\0\0\0\0"))[0]


def tcp_queues(local_port: int, remote_port: int) -> tuple[int, int, str] | None:
    """(tx_queue, rx_queue, state hex) of the socket local_port <-> remote_port, from /proc/net/tcp*."""
    for lport, rport, state, _inode, tx, rx in _tcp_table(with_queues=True):
        if lport == local_port and rport == remote_port:
            return tx, rx, state
    return None


TCP_STATES = {"01": "ESTABLISHED", "02": "SYN_SENT", "03": "SYN_RECV", "04": "FIN_WAIT1", "05": "FIN_WAIT2",
              "06": "TIME_WAIT", "07": "CLOSE", "08": "CLOSE_WAIT", "09": "LAST_ACK", "0A": "LISTEN",
              "0B": "CLOSING"}


def fetch_metrics(port: int, timeout: float = 5.0) -> Metrics:
    """GET /metrics on a fresh connection with `Connection: close` (holds no keep-alive slot)."""
    r = raw_request(port, request_bytes("GET", "/metrics", {"Connection": "close"}), timeout=timeout)
    assert r.status == 200, f"/metrics answered {r.status}: {r.body[:300]!r}"
    return Metrics(r.body.decode())


DISCONNECT_REASONS = ("slow_consumer", "send_timeout", "half_open", "header_timeout", "max_lifetime",
                      "peer_closed", "shutdown", "over_capacity", "protocol_error")


def disconnects(m: Metrics) -> dict[str, int]:
    """{reason: count} of ringgate_disconnects_total (every reason present in the exposition)."""
    out: dict[str, int] = {}
    for n, ls, v in m.samples:
        if n == "ringgate_disconnects_total" and "reason" in ls:
            out[ls["reason"]] = out.get(ls["reason"], 0) + int(v)
    return out


def disconnects_delta(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    """Non-zero per-reason differences."""
    keys = set(after) | set(before)
    return {k: after.get(k, 0) - before.get(k, 0) for k in sorted(keys) if after.get(k, 0) != before.get(k, 0)}


def wait_sse_zero(port: int, timeout: float = 5.0, transports: tuple[str, ...] = ("sse",)) -> Metrics:
    """Poll (fresh connections) until ringgate_connections{transport} is 0 for each of `transports`."""
    def ok():
        m = fetch_metrics(port)
        return m if all((m.get("ringgate_connections", transport=t) or 0) == 0 for t in transports) else None
    try:
        return wait_until(ok, timeout, interval=0.1, what=f"ringgate_connections{{transport in {transports}}} == 0")
    except AssertionError as e:
        m = fetch_metrics(port)
        got = {t: m.get("ringgate_connections", transport=t) for t in transports}
        raise AssertionError(f"{e}; connections now {got}; disconnects {disconnects(m)}") from None


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    v = sorted(values)
    k = min(len(v) - 1, max(0, int(round(p / 100.0 * (len(v) - 1)))))
    return v[k]


# ----------------------------------------------------------------------------- memory

def _smaps_pss_kib(pid: int, exclude: tuple[str, ...]) -> tuple[int, int]:
    """(Pss kB of mappings not named like any of `exclude`, Pss kB of the excluded ones)."""
    kept = skipped = 0
    skipping = False
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            first = line.split(None, 1)[0]
            if "-" in first and ":" not in first:          # a mapping header: ADDR-ADDR perms off dev inode [name]
                parts = line.split(None, 5)
                name = parts[5].strip() if len(parts) > 5 else ""
                skipping = any(x in name for x in exclude)
            elif first == "Pss:":
                kb = int(line.split()[1])
                if skipping:
                    skipped += kb
                else:
                    kept += kb
    return kept, skipped


def server_memory(gw: "Gateway", exclude: tuple[str, ...] = ("ring.log", "memfd:")) -> dict:
    """Pss of the supervisor and every child, without the ring-log mapping.

    {"total_kib": N, "excluded_kib": M, "per_pid": {pid: (role, kib)}}
    """
    pids = [(gw.pid, "serve")] + [(c.pid, c.role + (f"#{c.index}" if c.index is not None else ""))
                                  for c in gw.children()]
    per_pid, total, excl = {}, 0, 0
    for pid, role in pids:
        try:
            kept, skipped = _smaps_pss_kib(pid, exclude)
        except (FileNotFoundError, ProcessLookupError):
            continue
        per_pid[pid] = (role, kept)
        total += kept
        excl += skipped
    return {"total_kib": total, "excluded_kib": excl, "per_pid": per_pid}


# ----------------------------------------------------------------------------- many readers, one thread

class StreamSet(threading.Thread):
    """Reads many SSEStreams from one thread with a selector (cheap enough for 100+ clients).

    Per stream index: `events[i]` = [(recv monotonic time, SSEEvent)], `eof[i]` = time of EOF or None.
    Only identity-encoded (non-chunked) stream bodies are supported.
    """

    def __init__(self, streams: list[SSEStream]):
        super().__init__(daemon=True)
        self.streams = list(streams)
        self.events: list[list[tuple[float, SSEEvent]]] = [[] for _ in self.streams]
        self.eof: list[float | None] = [None] * len(self.streams)
        self.errors: list[str] = []
        self.halt = threading.Event()
        self.lock = threading.Lock()
        for s in self.streams:
            assert not s.chunked, "StreamSet reads identity-encoded SSE bodies only"

    def _feed(self, i: int, data: bytes, eof: bool = False) -> None:
        s = self.streams[i]
        now = time.monotonic()
        items = s.pending + s.parser.feed(data, eof=eof)
        s.pending = []
        with self.lock:
            for it in items:
                if isinstance(it, SSEEvent):
                    self.events[i].append((now, it))
            if eof:
                self.eof[i] = now

    def run(self) -> None:
        sel = _selectors.DefaultSelector()
        try:
            for i, s in enumerate(self.streams):
                left = bytes(s.conn.buf)
                s.conn.buf.clear()
                self._feed(i, left)
                if s.conn.eof:
                    self._feed(i, b"", eof=True)
                    continue
                s.conn.sock.setblocking(False)
                sel.register(s.conn.sock, _selectors.EVENT_READ, i)
            while not self.halt.is_set() and sel.get_map():
                for key, _ in sel.select(0.1):
                    i = key.data
                    try:
                        data = key.fileobj.recv(1 << 18)
                    except (BlockingIOError, InterruptedError):
                        continue
                    except (ConnectionResetError, OSError) as e:
                        self.errors.append(f"stream {i}: {e!r}")
                        data = b""
                    if data:
                        self._feed(i, data)
                    else:
                        sel.unregister(key.fileobj)
                        self._feed(i, b"", eof=True)
        finally:
            sel.close()

    def ids(self, i: int, event: str = "message") -> list[str]:
        with self.lock:
            return [e.id for _, e in self.events[i] if e.event == event]

    def count(self, i: int) -> int:
        with self.lock:
            return len(self.events[i])

    def stop(self) -> None:
        self.halt.set()
        self.join(10)

    def close(self) -> None:
        self.stop()
        for s in self.streams:
            s.close()


class SizedPublisher(threading.Thread):
    """Publishes events of `size` bytes to one slot every `interval` s; keeps (id, t_sent, t_acked).

    The data starts with `<index>:<monotonic_ns at send>` so receivers can compute latency.
    """

    def __init__(self, gw: "Gateway", slot: str, size: int = 2048, interval: float = 0.01,
                 limit: int | None = None):
        super().__init__(daemon=True)
        self.url, self.slot, self.size, self.interval, self.limit = gw.pub_url, slot, size, interval, limit
        self.ids: list[str] = []
        self.sent: dict[str, int] = {}
        self.errors: list[str] = []
        self.halt = threading.Event()
        self.lock = threading.Lock()

    def payload(self, i: int) -> bytes:
        head = f"{i}:{time.monotonic_ns()}:".encode()
        return head + b"x" * max(0, self.size - len(head))

    def run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=5.0, trust_env=False) as c:
            i = 0
            nxt = time.monotonic()
            while not self.halt.is_set() and (self.limit is None or i < self.limit):
                body = self.payload(i)
                t0 = int(body.split(b":", 2)[1])
                try:
                    r = c.post(f"/v1/slots/{self.slot}/events", content=body)
                    if r.status_code == 201:
                        with self.lock:
                            eid = r.json()["id"]
                            self.ids.append(eid)
                            self.sent[eid] = t0
                    else:
                        self.errors.append(f"{r.status_code} {r.text[:200]}")
                except httpx.HTTPError as e:
                    self.errors.append(repr(e))
                i += 1
                nxt += self.interval
                delay = nxt - time.monotonic()
                if delay > 0:
                    self.halt.wait(delay)
                else:
                    nxt = time.monotonic()

    def snapshot(self) -> list[str]:
        with self.lock:
            return list(self.ids)

    def stop(self) -> None:
        self.halt.set()
        self.join(10)


def event_sent_ns(data: str) -> int:
    """The monotonic_ns a SizedPublisher put into an event's data."""
    return int(data.split(":", 2)[1])


# ----------------------------------------------------------------------------- network namespace

class NetnsPeer:
    """A network namespace joined to the host by a veth pair, with a private /30 of the test's own.

    host side `host_if` = `host_ip`, namespace side `ns_if` = `ns_ip`. `close()` removes both
    (safe to call twice, and after a partial setup). Needs root (CAP_NET_ADMIN + CAP_SYS_ADMIN).
    """

    def __init__(self, tag: str | None = None, host_ip: str = "10.213.7.1", ns_ip: str = "10.213.7.2",
                 prefix: int = 30):
        tag = tag or str(os.getpid())
        self.ns = f"rg-{tag}"
        self.host_if = f"rgh{tag}"[:15]
        self.ns_if = f"rgn{tag}"[:15]
        self.host_ip, self.ns_ip, self.prefix = host_ip, ns_ip, prefix
        self.created_ns = self.created_link = False

    @staticmethod
    def run(*argv: str, check: bool = True, timeout: float = 10.0) -> _subprocess.CompletedProcess:
        p = _subprocess.run(list(argv), stdin=_subprocess.DEVNULL, stdout=_subprocess.PIPE,
                            stderr=_subprocess.PIPE, timeout=timeout, text=True)
        if check and p.returncode != 0:
            raise OSError(f"`{' '.join(argv)}` exited {p.returncode}: {p.stderr.strip() or p.stdout.strip()}")
        return p

    def setup(self) -> "NetnsPeer":
        self.close()           # leftovers of an earlier run with the same tag
        self.run("ip", "netns", "add", self.ns)
        self.created_ns = True
        self.run("ip", "link", "add", self.host_if, "type", "veth", "peer", "name", self.ns_if)
        self.created_link = True
        self.run("ip", "link", "set", self.ns_if, "netns", self.ns)
        self.run("ip", "addr", "add", f"{self.host_ip}/{self.prefix}", "dev", self.host_if)
        self.run("ip", "link", "set", self.host_if, "up")
        self.in_ns("ip", "addr", "add", f"{self.ns_ip}/{self.prefix}", "dev", self.ns_if)
        self.in_ns("ip", "link", "set", self.ns_if, "up")
        self.in_ns("ip", "link", "set", "lo", "up")
        return self

    def in_ns(self, *argv: str, check: bool = True) -> _subprocess.CompletedProcess:
        return self.run("ip", "netns", "exec", self.ns, *argv, check=check)

    def popen(self, argv: list[str], **kw) -> _subprocess.Popen:
        """Start a process inside the namespace (`ip netns exec` execs it: the pid is the process's)."""
        return _subprocess.Popen(["ip", "netns", "exec", self.ns] + list(argv), **kw)

    def route_to_ns_dev(self) -> str:
        """`ip route get <ns_ip>` on the host (must name `host_if`, never a default route)."""
        return self.run("ip", "route", "get", self.ns_ip).stdout.strip()

    def close(self) -> None:
        self.run("ip", "link", "del", self.host_if, check=False)
        self.run("ip", "netns", "del", self.ns, check=False)
        self.created_ns = self.created_link = False


def ss_tcp_info(local_port: int, remote_port: int) -> dict[str, int] | None:
    """Kernel TCP_INFO counters of the established socket local_port <-> remote_port, via `ss -tin`.

    Returns the integer `name:value` fields ss prints (bytes_acked, bytes_sent, snd_wnd, unacked, …),
    or None when there is no such socket.
    """
    out = _subprocess.run(["ss", "-tinH", "state", "established",
                           f"( sport = :{local_port} and dport = :{remote_port} )"],
                          stdin=_subprocess.DEVNULL, capture_output=True, text=True, timeout=5).stdout
    if not out.strip():
        return None
    return {k: int(v) for k, v in re.findall(r"\b([a-z_]+):(\d+)\b", out)}
