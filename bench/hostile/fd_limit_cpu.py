# Issue 10 measurement (not a test): run with the test venv, e.g.
#   .venv/bin/python bench/hostile/fd_limit_cpu.py .build/release/ringgate
# It starts the given binary on loopback through tests/integration/rgtest.py and prints numbers.
import sys, pathlib
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "tests" / "integration"))
import tempfile, time, socket
from pathlib import Path
import rgtest
from rgtest import Gateway, SSEStream, RawConnection, request_bytes, proc_cpu_seconds
from test_limits_fd import cpu_while_arriving
binary = Path(sys.argv[1])
gw = Gateway(["--heartbeat", "30s"], workers=1, log_dir=Path(tempfile.mkdtemp()), name="cpu", binary=binary,
             prefix=["prlimit", "--nofile=160:160", "--"]).start()
try:
    w = gw.workers()[0]
    ingest = next(c.pid for c in gw.children() if c.role == "ingest")
    streams = []
    for i in range(200):
        try:
            s = SSEStream(gw.sub_port, "/v1/slots/fd/stream", timeout=2.0)
        except TimeoutError:
            break
        if s.status != 200:
            break
        streams.append(s)
    cpu, st = cpu_while_arriving(w, gw.sub_port, "/v1/slots/fd/stream")
    print(f"{binary}: worker streams={len(streams)} cpu={cpu*100:.1f}% answers={sorted(set(map(str, st)))[:5]}")
    conns = []
    for i in range(200):
        try:
            c = RawConnection(gw.pub_port, timeout=2.0)
            c.send(request_bytes("GET", "/healthz"))
            r = c.read_response(2.0)
        except (TimeoutError, OSError, rgtest.HTTPError):
            break
        if r.status != 200: break
        conns.append(c)
    cpu, st = cpu_while_arriving(ingest, gw.pub_port, "/healthz")
    print(f"{binary}: ingest conns={len(conns)} cpu={cpu*100:.1f}% answers={sorted(set(map(str, st)))[:5]}")
finally:
    gw.close()
