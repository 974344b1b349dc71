# Issue 10 measurement (not a test): run with the test venv, e.g.
#   .venv/bin/python bench/hostile/idle_connection_memory.py .build/release/ringgate
# It starts the given binary on loopback through tests/integration/rgtest.py and prints numbers.
import sys, pathlib
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "tests" / "integration"))
import time, socket, pathlib, tempfile, resource
from rgtest import Gateway
resource.setrlimit(resource.RLIMIT_NOFILE, (20000, 20000))
N = int(sys.argv[2]) if len(sys.argv) > 2 else 3000
def pss_kib(pid):
    # Pss without the log mapping (memfd "ringgate-log")
    total = 0; cur_log = False
    for line in open(f"/proc/{pid}/smaps"):
        parts = line.split()
        if len(parts) >= 6 and "-" in parts[0] and ":" in parts[3] if len(parts) > 3 else False:
            cur_log = "ringgate-log" in line or "ring.log" in line
        elif line.startswith("Pss:") and not cur_log:
            total += int(parts[1])
    return total
binary = pathlib.Path(sys.argv[1]); tmp = pathlib.Path(tempfile.mkdtemp())
gw = Gateway(["--log-capacity", "16MiB"], workers=2, log_dir=tmp, name="idle", binary=binary).start()
try:
    pids = [c.pid for c in gw.children()] + [gw.proc.pid]
    time.sleep(0.5)
    before = sum(pss_kib(p) for p in pids)
    socks = []
    req = b"GET /v1/slots/idle/stream HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n"
    for i in range(N):
        s = socket.create_connection(("127.0.0.1", gw.sub_port)); s.sendall(req); socks.append(s)
    for s in socks:
        s.settimeout(5); s.recv(4096)
    time.sleep(1.5)
    after = sum(pss_kib(p) for p in pids)
    print(f"{binary}: {N} idle SSE: Pss {before} -> {after} KiB, {(after-before)*1024/N:.0f} B/connection")
finally:
    gw.close()
