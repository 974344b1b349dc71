"""Sends COUNT single publishes to SLOT on CONNS keep-alive connections, DEPTH pipelined
requests in flight per connection, and waits for every answer. Prints the statuses seen.
With --batch N each request is an NDJSON batch of N events to /v1/events (COUNT requests).
Usage: pipelined_publish.py HOST:PORT COUNT [--conns 4] [--depth 32] [--batch N] [--token T]"""
from __future__ import annotations

import argparse
import selectors
import socket
import sys


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("addr")
    ap.add_argument("count", type=int)
    ap.add_argument("--conns", type=int, default=4)
    ap.add_argument("--depth", type=int, default=32)
    ap.add_argument("--slot", default="prof")
    ap.add_argument("--token")
    ap.add_argument("--batch", type=int, default=0)
    a = ap.parse_args()
    host, port = a.addr.rsplit(":", 1)
    auth = f"Authorization: Bearer {a.token}\r\n" if a.token else ""
    def request(n: int) -> bytes:
        if a.batch:
            body = "".join(f'{{"slot":"{a.slot}","data":"t=0 n={n * a.batch + k}"}}\n' for k in range(a.batch))
            return (f"POST /v1/events HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/x-ndjson\r\n{auth}"
                    f"Content-Length: {len(body)}\r\n\r\n{body}").encode()
        body = f"t=0 n={n}"
        return (f"POST /v1/slots/{a.slot}/events HTTP/1.1\r\nHost: {host}\r\nContent-Type: text/plain\r\n{auth}"
                f"Content-Length: {len(body)}\r\n\r\n{body}").encode()
    sel = selectors.DefaultSelector()
    per = [a.count // a.conns + (1 if i < a.count % a.conns else 0) for i in range(a.conns)]
    state = []
    for i in range(a.conns):
        s = socket.create_connection((host, int(port)))
        s.setblocking(False)
        st = {"sock": s, "left": per[i], "inflight": 0, "buf": b"", "answered": 0}
        state.append(st)
        sel.register(s, selectors.EVENT_READ, st)
    statuses: dict[str, int] = {}
    sent = 0
    def top_up(st):
        nonlocal sent
        out = []
        while st["left"] > 0 and st["inflight"] < a.depth:
            out.append(request(sent))
            sent += 1
            st["left"] -= 1
            st["inflight"] += 1
        if out:
            st["sock"].setblocking(True)
            st["sock"].sendall(b"".join(out))
            st["sock"].setblocking(False)
    for st in state:
        top_up(st)
    done = 0
    while done < a.count:
        for key, _ in sel.select(timeout=60):
            st = key.data
            data = st["sock"].recv(1 << 20)
            if not data:
                sys.exit(f"connection closed after {done} answers")
            st["buf"] += data
            while True:
                end = st["buf"].find(b"\r\n\r\n")
                if end < 0:
                    break
                head = st["buf"][:end].decode()
                length = 0
                for line in head.split("\r\n")[1:]:
                    k, _, v = line.partition(":")
                    if k.lower() == "content-length":
                        length = int(v)
                if len(st["buf"]) < end + 4 + length:
                    break
                status = head.split(" ", 2)[1]
                statuses[status] = statuses.get(status, 0) + 1
                st["buf"] = st["buf"][end + 4 + length:]
                st["inflight"] -= 1
                done += 1
            top_up(st)
    print(" ".join(f"{k}:{v}" for k, v in sorted(statuses.items())))


if __name__ == "__main__":
    main()
