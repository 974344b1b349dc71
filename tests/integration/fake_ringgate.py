#!/usr/bin/env python3
"""A slow, simple stand-in for the `ringgate` binary, written to the README's v1 interface.

It exists only to check the integration suite itself while the real binary is being written:
    RINGGATE_BIN=tests/integration/fake_ringgate.py .venv/bin/pytest tests/integration -q
Same process shape (supervisor, `ingest`, `worker --index N`), same wire formats; the "ring" is a
JSON-lines file whose retention is computed from --log-capacity. Not a reference implementation.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request

SLOT_RE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
TYPE_RE = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
ID_RE = re.compile(r"^([0-9a-f]{8})-([1-9][0-9]*)$")
STOP = threading.Event()
APPEND_LOCK = threading.Lock()


def size(s: str) -> int:
    n = 0
    for k in ("KiB", "MiB", "GiB"):
        if s.endswith(k):
            return int(s[:-3]) << (10 * (1 + ("KiB", "MiB", "GiB").index(k)))
    return int(s) if s else n


def dur(s: str) -> float:
    for suf, mul in (("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600)):
        if s.endswith(suf) and s[: -len(suf)].isdigit():
            return int(s[: -len(suf)]) * mul
    return float(s)


# ------------------------------------------------------------------ the log (JSON lines)

class Log:
    def __init__(self, path: str):
        self.path = path
        with open(path) as f:
            self.header = json.loads(f.readline())
        self.epoch, self.capacity = self.header["epoch"], self.header["capacity"]
        self.events: list[dict] = []
        self._off = len(json.dumps(self.header)) + 1
        self.lock = threading.Lock()

    @staticmethod
    def create(path: str, capacity: int) -> None:
        if not os.path.exists(path):
            with open(path, "w") as f:
                f.write(json.dumps({"epoch": "%08x" % random.getrandbits(32), "capacity": capacity}) + "\n")

    def refresh(self) -> None:
        with self.lock:
            with open(self.path) as f:
                f.seek(self._off)
                data = f.read()
            end = data.rfind("\n")
            if end >= 0:
                for line in data[: end + 1].splitlines():
                    self.events.append(json.loads(line))
                self._off += len(data[: end + 1].encode())

    def retained(self) -> list[dict]:
        total, i = 0, len(self.events)
        while i > 0:
            rec = 32 + len(self.events[i - 1]["type"]) + len(self.events[i - 1]["data"].encode())
            rec = (rec + 7) // 8 * 8
            if total + rec > self.capacity:
                break
            total += rec
            i -= 1
        return self.events[i:]

    def append(self, items: list[tuple[str, str, str]]) -> list[str]:
        with APPEND_LOCK:
            return self._append(items)

    def _append(self, items):
        self.refresh()
        seq = self.events[-1]["seq"] if self.events else 0
        now = int(time.time() * 1000)
        lines, ids = [], []
        for slot, typ, data in items:
            seq += 1
            lines.append(json.dumps({"seq": seq, "slot": slot, "type": typ, "data": data, "time": now}))
            ids.append(f"{self.epoch}-{seq}")
        with open(self.path, "a") as f:
            f.write("".join(l + "\n" for l in lines))
        self.refresh()
        return ids

    def eid(self, e: dict) -> str:
        return f"{self.epoch}-{e['seq']}"


# ------------------------------------------------------------------ HTTP plumbing

class Bad(Exception):
    def __init__(self, status, code, detail="", headers=None):
        self.status, self.code, self.detail, self.headers = status, code, detail, headers or {}


REASONS = {200: "OK", 201: "Created", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found",
           405: "Method Not Allowed", 408: "Request Timeout", 411: "Length Required", 413: "Payload Too Large",
           414: "URI Too Long", 415: "Unsupported Media Type", 431: "Request Header Fields Too Large"}


def respond(sock, status, body, ctype="application/json", headers=None):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    h = f"HTTP/1.1 {status} {REASONS.get(status, 'X')}\r\nContent-Type: {ctype}\r\nContent-Length: {len(raw)}\r\n"
    for k, v in (headers or {}).items():
        h += f"{k}: {v}\r\n"
    sock.sendall(h.encode() + b"\r\n" + raw)


class Conn:
    def __init__(self, sock, cfg):
        self.sock, self.cfg, self.buf = sock, cfg, b""

    def recv(self, deadline):
        self.sock.settimeout(max(0.01, deadline - time.monotonic()))
        d = self.sock.recv(65536)
        if not d:
            raise EOFError
        self.buf += d

    def request(self):
        deadline = time.monotonic() + self.cfg["header_timeout"]
        while b"\r\n\r\n" not in self.buf:
            first = self.buf.split(b"\r\n", 1)[0]
            if len(first) > 8192:
                raise Bad(414, "uri_too_long", "request line over 8 KiB")
            if len(self.buf) > 16384:
                raise Bad(431, "headers_too_large", "request head over 16 KiB")
            try:
                self.recv(deadline)
            except socket.timeout:
                if self.buf:
                    raise Bad(408, "request_timeout", "head not complete")
                raise EOFError
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        if len(lines[0]) > 8192:
            raise Bad(414, "uri_too_long", "request line over 8 KiB")
        if len(head) > 16384:
            raise Bad(431, "headers_too_large", "request head over 16 KiB")
        m = re.match(r"^([A-Z]+) (\S+) HTTP/1\.[01]$", lines[0])
        if not m:
            raise Bad(400, "bad_request", "malformed request line")
        hdrs = {}
        for l in lines[1:]:
            k, _, v = l.partition(":")
            hdrs[k.strip().lower()] = v.strip()
        body = None
        if "chunked" in hdrs.get("transfer-encoding", ""):
            body = b""
            while True:
                while b"\r\n" not in self.buf:
                    self.recv(time.monotonic() + 5)
                line, self.buf = self.buf.split(b"\r\n", 1)
                n = int(line.split(b";")[0], 16)
                while len(self.buf) < n + 2:
                    self.recv(time.monotonic() + 5)
                if n == 0:
                    self.buf = self.buf[2:]
                    break
                body += self.buf[:n]
                self.buf = self.buf[n + 2:]
        elif "content-length" in hdrs:
            n = int(hdrs["content-length"])
            while len(self.buf) < n:
                self.recv(time.monotonic() + 5)
            body, self.buf = self.buf[:n], self.buf[n:]
        u = urllib.parse.urlsplit(m.group(2))
        q = dict(urllib.parse.parse_qsl(u.query, keep_blank_values=True))
        return m.group(1), urllib.parse.unquote(u.path), q, hdrs, body


def serve_conn(sock, cfg, handler):
    c = Conn(sock, cfg)
    try:
        while not STOP.is_set():
            try:
                method, path, q, hdrs, body = c.request()
                handler(sock, method, path, q, hdrs, body)
                if hdrs.get("connection", "").lower() == "close":
                    break
            except Bad as b:
                respond(sock, b.status, {"error": b.code, "detail": b.detail}, headers=b.headers)
                if b.status in (400, 408, 414, 431, 411):
                    break
    except (EOFError, OSError, StreamDone):
        pass
    finally:
        try:
            sock.close()
        except OSError:
            pass


class StreamDone(Exception):
    pass


def accept_loop(lsock, cfg, handler):
    lsock.settimeout(0.2)
    while not STOP.is_set():
        try:
            s, _ = lsock.accept()
        except socket.timeout:
            continue
        except OSError:
            return
        threading.Thread(target=serve_conn, args=(s, cfg, handler), daemon=True).start()


def stats_write(cfg, name, stats):
    tmp = f"{cfg['log']}.stats.{name}.tmp"
    with open(tmp, "w") as f:
        json.dump(stats, f)
    os.replace(tmp, f"{cfg['log']}.stats.{name}")


def slot_of(path, suffix):
    m = re.match(r"^/v1/slots/([^/]*)/" + suffix + "$", path)
    if not m:
        return None
    if not SLOT_RE.match(m.group(1)):
        raise Bad(400, "bad_slot", "bad slot name")
    return m.group(1)


# ------------------------------------------------------------------ ingest

def ingest(cfg, lsock):
    log = Log(cfg["log"])

    def handler(sock, method, path, q, hdrs, body):
        is_one = re.match(r"^/v1/slots/[^/]*/events$", path)
        if path != "/v1/events" and not is_one:
            raise Bad(404, "not_found", path)
        if method != "POST":
            raise Bad(405, "method_not_allowed", method, {"Allow": "POST"})
        if cfg["token"] and hdrs.get("authorization") != f"Bearer {cfg['token']}":
            raise Bad(401, "unauthorized", "token")
        if body is None:
            raise Bad(411, "length_required", "no body length")
        if is_one:
            slot = slot_of(path, "events")
            typ = q.get("type", "message")
            if not TYPE_RE.match(typ):
                raise Bad(400, "bad_type", typ)
            if len(body) > cfg["max_event"]:
                raise Bad(413, "payload_too_large", "event")
            try:
                data = body.decode("utf-8")
            except UnicodeDecodeError:
                raise Bad(415, "not_utf8", "data")
            ids = log.append([(slot, typ, data)])
            respond(sock, 201, {"id": ids[0], "slot": slot})
            return
        if len(body) > cfg["max_batch"]:
            raise Bad(413, "payload_too_large", "batch")
        items = []
        for line in body.decode("utf-8", "replace").splitlines():
            if not line.strip():
                continue
            try:
                o = json.loads(line)
                assert isinstance(o, dict) and isinstance(o.get("slot"), str) and SLOT_RE.match(o["slot"])
                typ = o.get("type", "message")
                assert isinstance(typ, str) and TYPE_RE.match(typ) and "data" in o
            except (ValueError, AssertionError):
                raise Bad(400, "bad_batch", line[:80])
            d = o["data"] if isinstance(o["data"], str) else json.dumps(o["data"])
            items.append((o["slot"], typ, d))
        respond(sock, 201, {"ids": log.append(items)})

    accept_loop(lsock, cfg, handler)


# ------------------------------------------------------------------ worker

def worker(cfg, lsock, index):
    log = Log(cfg["log"])
    stats = {"connections": 0, "delivered": 0, "history": 0}
    streams = []
    lock = threading.Lock()

    def parse_after(v):
        m = ID_RE.match(v or "")
        if not m:
            raise Bad(400, "bad_id", v)
        return m.group(1), int(m.group(2))

    def window(slot, after):
        """(events after the cursor, reset info or None)"""
        log.refresh()
        evs = [e for e in log.retained() if e["slot"] == slot]
        if after is None:
            return evs, None
        ep, seq = after
        if ep != log.epoch:
            return evs, "epoch"
        if evs and seq < evs[0]["seq"] - 1 and any(e["slot"] == slot and seq < e["seq"] < evs[0]["seq"] for e in log.events):
            return evs, "lapped"
        return [e for e in evs if e["seq"] > seq], None

    def handler(sock, method, path, q, hdrs, body):
        if path in ("/healthz", "/readyz", "/metrics"):
            if method != "GET":
                raise Bad(405, "method_not_allowed", method, {"Allow": "GET"})
            if path == "/metrics":
                return respond(sock, 200, metrics().encode(), "text/plain; version=0.0.4")
            return respond(sock, 200, {"status": "ok" if path == "/healthz" else "ready"})
        if re.match(r"^/v1/slots/[^/]*/(events|stream)$", path) is None:
            raise Bad(404, "not_found", path)
        if method != "GET":
            raise Bad(405, "method_not_allowed", method, {"Allow": "GET"})
        if path.endswith("/events"):
            slot = slot_of(path, "events")
            lim = q.get("limit", str(min(100, cfg["max_limit"])))
            if not lim.isdigit() or not 1 <= int(lim) <= cfg["max_limit"]:
                raise Bad(400, "bad_limit", lim)
            lim = int(lim)
            after = parse_after(q["after"]) if "after" in q else None
            evs, reset = window(slot, after)
            evs = evs[-lim:] if after is None else evs[:lim]
            allv = [e for e in log.retained() if e["slot"] == slot]
            with lock:
                stats["history"] += 1
            out = [{"id": log.eid(e), "type": e["type"], "data": e["data"], "time": e["time"]} for e in evs]
            nxt = out[-1]["id"] if out else q.get("after")
            return respond(sock, 200, {"slot": slot, "events": out, "next": nxt,
                                       "oldest": log.eid(allv[0]) if allv else None,
                                       "head": log.eid(allv[-1]) if allv else None, "reset": reset is not None})
        slot = slot_of(path, "stream")
        cur = hdrs.get("last-event-id") or q.get("after") or q.get("lastEventId")
        after = parse_after(cur) if cur else None
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n")

        def send(text):
            b = text.encode()
            sock.sendall(b"%x\r\n" % len(b) + b + b"\r\n")

        send(f"retry: {random.randint(1000, 2000)}\n\n")
        with lock:
            stats["connections"] += 1
            streams.append(sock)
        try:
            if after is None:
                log.refresh()
                after = (log.epoch, log.events[-1]["seq"] if log.events else 0)
            evs, reset = window(slot, after)
            if reset:
                allv = evs
                send("event: reset\ndata: " + json.dumps({"reason": reset, "oldest": log.eid(allv[0]) if allv else None,
                     "head": log.eid(allv[-1]) if allv else None,
                     "dropped": (allv[0]["seq"] - after[1] - 1) if reset == "lapped" and allv else 0}) + "\n\n")
            last_send = time.monotonic()
            cursor = after[1] if not reset else 0
            while True:
                if STOP.is_set():
                    send('event: close\ndata: {"reason":"shutdown"}\n\n')
                    sock.sendall(b"0\r\n\r\n")
                    raise StreamDone
                evs, _ = window(slot, (log.epoch, cursor))
                for e in evs:
                    send(f"id: {log.eid(e)}\nevent: {e['type']}\n" + "".join(f"data: {l}\n" for l in e["data"].split("\n")) + "\n")
                    cursor = e["seq"]
                    with lock:
                        stats["delivered"] += 1
                    last_send = time.monotonic()
                if time.monotonic() - last_send >= cfg["heartbeat"]:
                    send(": hb\n\n")
                    last_send = time.monotonic()
                r, _, _ = select.select([sock], [], [], 0.01)
                if r and not sock.recv(1, socket.MSG_PEEK):
                    raise StreamDone                     # the peer closed
        finally:
            with lock:
                stats["connections"] -= 1

    def metrics():
        log.refresh()
        tot = {"connections": 0, "delivered": 0, "history": 0}
        d = os.path.dirname(cfg["log"]) or "."
        base = os.path.basename(cfg["log"]) + ".stats."
        for fn in os.listdir(d):
            if fn.startswith(base) and not fn.endswith(".tmp"):
                try:
                    with open(os.path.join(d, fn)) as f:
                        for k, v in json.load(f).items():
                            tot[k] += v
                except (ValueError, OSError):
                    pass
        try:
            restarts = int(open(cfg["log"] + ".restarts").read())
        except (OSError, ValueError):
            restarts = 0
        ret = log.retained()
        return "".join([
            "# TYPE ringgate_connections gauge\n",
            f'ringgate_connections{{transport="sse"}} {tot["connections"]}\n',
            f"ringgate_events_appended_total {len(log.events)}\n",
            f'ringgate_events_delivered_total{{transport="sse"}} {tot["delivered"]}\n',
            f"ringgate_history_requests_total {tot['history']}\n",
            f"ringgate_log_head_seq {log.events[-1]['seq'] if log.events else 0}\n",
            f"ringgate_log_oldest_seq {ret[0]['seq'] if ret else 0}\n",
            f"ringgate_log_capacity_bytes {log.capacity}\n",
            f'ringgate_process_restarts_total{{role="worker"}} {restarts}\n',
        ])

    def stats_loop():
        while True:
            with lock:
                s = dict(stats)
            stats_write(cfg, f"worker{index}", s)
            time.sleep(0.05)

    threading.Thread(target=stats_loop, daemon=True).start()
    accept_loop(lsock, cfg, handler)
    deadline = time.monotonic() + 2
    while stats["connections"] > 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    stats_write(cfg, f"worker{index}", {"connections": 0, "delivered": stats["delivered"], "history": stats["history"]})


# ------------------------------------------------------------------ supervisor and CLI

def serve(a):
    cap = size(a.log_capacity)
    if a.ephemeral:
        path = os.path.join(tempfile.mkdtemp(prefix="fake-ringgate-"), "ring.log")
    else:
        os.makedirs(a.data_dir, exist_ok=True)
        path = os.path.join(a.data_dir, "ring.log")
    Log.create(path, cap)
    for fn in os.listdir(os.path.dirname(path)):
        if fn.startswith(os.path.basename(path) + ".stats") or fn.endswith(".restarts"):
            os.unlink(os.path.join(os.path.dirname(path), fn))
    cfg = {"log": path, "token": a.publish_token, "max_event": size(a.max_event_bytes), "max_limit": a.max_limit,
           "heartbeat": dur(a.heartbeat), "header_timeout": dur(a.header_timeout), "max_batch": size(a.max_batch_bytes)}
    socks = []
    for addr in (a.listen, a.publish_listen):
        host, port = addr.rsplit(":", 1)
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((host, int(port)))
        s.listen(1024)
        socks.append(s)
    env = dict(os.environ, FAKE_RG_CONFIG=json.dumps(cfg))

    def spawn(role, index=None):
        fd = socks[1 if role == "ingest" else 0].fileno()
        argv = [sys.executable, os.path.abspath(__file__), role, "--fd", str(fd)]
        if index is not None:
            argv += ["--index", str(index)]
        return subprocess.Popen(argv, pass_fds=[fd], env=env)

    kids = {("ingest", None): spawn("ingest")}
    for i in range(a.workers):
        kids[("worker", i)] = spawn("worker", i)
    restarts = 0
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    time.sleep(0.3)
    print(f"ringgate ready subscribe={a.listen.rsplit(':', 1)[0]}:{socks[0].getsockname()[1]} "
          f"publish={a.publish_listen.rsplit(':', 1)[0]}:{socks[1].getsockname()[1]} workers={a.workers} data={path}",
          flush=True)
    while not stop.is_set():
        for key, p in list(kids.items()):
            if p.poll() is not None:
                print(f"child {key} exited {p.returncode}; restarting", file=sys.stderr)
                time.sleep(0.2)
                kids[key] = spawn(*key)
                restarts += 1
                with open(path + ".restarts", "w") as f:
                    f.write(str(restarts))
        stop.wait(0.05)
    for p in kids.values():
        p.send_signal(signal.SIGTERM)
    for p in kids.values():
        try:
            p.wait(4)
        except subprocess.TimeoutExpired:
            p.kill()
    if a.ephemeral:
        shutil.rmtree(os.path.dirname(path), ignore_errors=True)
    sys.exit(0)


def child(role, a):
    cfg = json.loads(os.environ["FAKE_RG_CONFIG"])
    signal.signal(signal.SIGTERM, lambda *_: STOP.set())
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    lsock = socket.socket(fileno=a.fd)
    t = threading.Thread(target=ingest if role == "ingest" else worker,
                         args=(cfg, lsock) if role == "ingest" else (cfg, lsock, a.index), daemon=True)
    t.start()
    while t.is_alive():
        t.join(0.1)


def cli_publish(a):
    data = a.data if a.data is not None else sys.stdin.buffer.read().decode()
    url = f"{a.url}/v1/slots/{a.slot}/events" + (f"?type={a.type}" if a.type else "")
    req = urllib.request.Request(url, data=data.encode(), method="POST")
    if a.token:
        req.add_header("Authorization", f"Bearer {a.token}")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            print(json.loads(r.read())["id"])
    except urllib.error.HTTPError as e:
        print(e.read().decode(), file=sys.stderr)
        sys.exit(1)


def cli_tail(a):
    req = urllib.request.Request(f"{a.url}/v1/slots/{a.slot}/stream")
    if a.after:
        req.add_header("Last-Event-ID", a.after)
    with urllib.request.urlopen(req) as r:
        eid, typ, data = None, "message", []
        for raw in r:
            line = raw.decode().rstrip("\n")
            if line == "":
                if data:
                    print(f"{eid} {typ} {chr(10).join(data)}", flush=True)
                eid, typ, data = None, "message", []
            elif line.startswith("id: "):
                eid = line[4:]
            elif line.startswith("event: "):
                typ = line[7:]
            elif line.startswith("data: "):
                data.append(line[6:])


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve")
    for flag, default in [("--listen", "0.0.0.0:8080"), ("--publish-listen", "127.0.0.1:8081"),
                          ("--data-dir", "./ringgate-data"), ("--log-capacity", "256MiB"),
                          ("--max-event-bytes", "64KiB"), ("--heartbeat", "15s"), ("--header-timeout", "10s"),
                          ("--publish-token", None), ("--max-batch-bytes", "16MiB"), ("--send-timeout", "10s"),
                          ("--max-lifetime", "24h"), ("--lag-policy", "resync")]:
        s.add_argument(flag, default=default)
    s.add_argument("--workers", type=int, default=os.cpu_count())
    s.add_argument("--max-limit", type=int, default=1000)
    s.add_argument("--ephemeral", action="store_true")
    for role in ("ingest", "worker"):
        c = sub.add_parser(role)
        c.add_argument("--fd", type=int, required=True)
        c.add_argument("--index", type=int, default=0)
    pb = sub.add_parser("publish")
    pb.add_argument("slot")
    pb.add_argument("data", nargs="?")
    pb.add_argument("--type")
    pb.add_argument("--url", default="http://127.0.0.1:8081")
    pb.add_argument("--token")
    tl = sub.add_parser("tail")
    tl.add_argument("slot")
    tl.add_argument("--after")
    tl.add_argument("--url", default="http://127.0.0.1:8080")
    a = p.parse_args()
    if a.cmd == "serve":
        serve(a)
    elif a.cmd in ("ingest", "worker"):
        child(a.cmd, a)
    elif a.cmd == "publish":
        cli_publish(a)
    else:
        cli_tail(a)


if __name__ == "__main__":
    main()
