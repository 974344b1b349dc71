# Issue 10 measurement (not a test): run with the test venv, e.g.
#   .venv/bin/python bench/hostile/history_ab.py .build/release/ringgate
# It starts the given binary on loopback through tests/integration/rgtest.py and prints numbers.
import sys, pathlib
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "tests" / "integration"))
import time, pathlib, tempfile, json, statistics
from rgtest import Gateway
import httpx
binary = pathlib.Path(sys.argv[1]); tmp = pathlib.Path(tempfile.mkdtemp())
gw = Gateway([], workers=2, log_dir=tmp, name="hist", binary=binary).start()
try:
    pub = httpx.Client(base_url=f"http://127.0.0.1:{gw.pub_port}")
    for b in range(100):
        body = "".join(json.dumps({"slot": "h", "data": f"event {b*1000+i} " + "x"*40}) + "\n" for i in range(1000))
        r = pub.post("/v1/events", content=body.encode()); assert r.status_code == 201, r.text
    sub = httpx.Client(base_url=f"http://127.0.0.1:{gw.sub_port}")
    first = sub.get("/v1/slots/h/events?limit=1").json()
    mid = None
    ts = []
    for i in range(300):
        t0 = time.perf_counter(); r = sub.get("/v1/slots/h/events?limit=1000"); ts.append(time.perf_counter() - t0)
        assert r.status_code == 200 and len(r.json()["events"]) == 1000
    ts.sort()
    print(f"{binary}: newest 1000 of 100000: p50 {ts[len(ts)//2]*1e6:.0f} us p99 {ts[int(len(ts)*0.99)]*1e6:.0f} us")
finally:
    gw.close()
