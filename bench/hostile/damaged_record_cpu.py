# Issue 10 measurement (not a test): run with the test venv, e.g.
#   .venv/bin/python bench/hostile/damaged_record_cpu.py .build/release/ringgate
# It starts the given binary on loopback through tests/integration/rgtest.py and prints numbers.
import sys, pathlib
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "tests" / "integration"))
import time, tempfile, pathlib
from rgtest import Gateway
import test_damaged_records as t
binary = pathlib.Path(sys.argv[1])
tmp = pathlib.Path(tempfile.mkdtemp())
gw = Gateway(["--log-capacity", "1MiB"], workers=2, data_dir=tmp / "data", log_dir=tmp, name="probe", binary=binary).start()
try:
    ids, datas = t.publish_twenty(gw, "a")
    t.damage_data_length(gw.data_path, "a", datas[9])
    # one SSE catch-up across the damaged record, on each worker if SO_REUSEPORT spreads them
    streams = []
    for _ in range(4):
        try:
            s = gw.stream("a", query=f"after={ids[4]}", timeout=3)
            streams.append(s)
            got = s.read_events(15, timeout=2)
            print("sse got", len(got), "events")
        except Exception as e:
            print("sse:", type(e).__name__, str(e)[:80])
    print("cpu share over 2 s:", t.worker_cpu_share(gw))
    for s in streams: s.close()
finally:
    gw.close()
