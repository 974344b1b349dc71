# Issue 10 measurement (not a test): run with the test venv, e.g.
#   .venv/bin/python bench/hostile/upload_rss.py .build/release/ringgate
# It starts the given binary on loopback through tests/integration/rgtest.py and prints numbers.
import sys, pathlib
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "tests" / "integration"))
import tempfile, time, threading, socket
from pathlib import Path
from rgtest import Gateway, proc_rss_bytes
binary = Path(sys.argv[1])
gw = Gateway(["--publish-token", "s3cret"], workers=1, log_dir=Path(tempfile.mkdtemp()), name="rss", binary=binary).start()
try:
    pid = next(c.pid for c in gw.children() if c.role == "ingest")
    before = proc_rss_bytes(pid)
    body = b"x" * 16_000_000
    head = b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: 16000000\r\n\r\n"
    statuses = []
    def client():
        s = socket.create_connection(("127.0.0.1", gw.pub_port), timeout=20)
        try:
            s.sendall(head)
            try:
                s.sendall(body)
            except OSError:
                pass
            statuses.append(s.recv(200)[:12])
        except OSError as e:
            statuses.append(repr(e)[:30])
        finally:
            s.close()
    ts = [threading.Thread(target=client) for _ in range(40)]
    t0 = time.monotonic()
    for t in ts: t.start()
    peak = before
    while any(t.is_alive() for t in ts) and time.monotonic() - t0 < 30:
        peak = max(peak, proc_rss_bytes(pid)); time.sleep(0.05)
    for t in ts: t.join(5)
    print(f"{binary}: ingest VmRSS before {before/1e6:.1f} MB, peak {peak/1e6:.1f} MB, clients done in {time.monotonic()-t0:.1f}s, answers {sorted(set(map(str, statuses)))}")
finally:
    gw.close()
