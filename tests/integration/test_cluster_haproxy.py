"""deploy/haproxy/haproxy.cfg in front of real hosts (single-host ringgates: what the proxy does
does not depend on cluster mode): streams pass unbuffered, WebSockets upgrade, health checks on
/readyz take a dead host out and bring it back, publishes go through the publish frontend."""
from __future__ import annotations

import json
import os
import subprocess

import httpx
from websockets.sync.client import connect as ws_connect

from clustertest import HAPROXY_CFG, Haproxy, Host, require_tools
from rgtest import SSEComment, SSEEvent, SSERetry, SSEStream, wait_until


def test_shipped_config_is_valid_for_one_to_four_hosts():
    require_tools("haproxy")
    for n in (1, 4):
        env = {f"RG_HOST{i}_{k}": f"127.0.0.1:{10000 + 2 * i + j}" for i in range(1, n + 1)
               for j, k in enumerate(("SUBSCRIBE", "PUBLISH"))}
        env["PATH"] = os.environ.get("PATH", "/usr/sbin:/usr/bin")
        p = subprocess.run(["haproxy", "-c", "-f", str(HAPROXY_CFG)], env=env, capture_output=True, text=True,
                           timeout=10)
        assert p.returncode == 0, f"haproxy -c with {n} hosts: {p.stdout}{p.stderr}"


def test_sse_and_websocket_pass_through_haproxy_unbuffered(tmp_path):
    require_tools("haproxy")
    host = Host("H", "", tmp_path, flags=("--heartbeat", "1s"))
    hp = None
    try:
        host.start()
        hp = Haproxy(tmp_path, [host]).start()
        hp.wait_all_up()
        with SSEStream(hp.sub_port, "/v1/slots/px/stream", timeout=5) as s:
            assert s.status == 200 and s.headers.get("content-type", "").startswith("text/event-stream"), s.headers
            assert isinstance(s.next_item(3), SSERetry)
            # a 1 s heartbeat comment arrives through the proxy on its own: nothing waits to fill a buffer
            item = s.next_item(3)
            assert isinstance(item, SSEComment) and item.text == "hb", f"expected `: hb` through haproxy, got {item!r}"
            eid = host.publish("px", "via haproxy")
            ev = s.next_event(3)
            assert isinstance(ev, SSEEvent) and (ev.id, ev.data) == (eid, "via haproxy"), ev
        with ws_connect(f"ws://127.0.0.1:{hp.sub_port}/v1/slots/px/ws", open_timeout=5) as ws:
            eid = host.publish("px", "ws via haproxy")
            msg = json.loads(ws.recv(timeout=5))
            assert (msg["id"], msg["data"]) == (eid, "ws via haproxy"), msg
        r = httpx.post(f"{hp.pub_url}/v1/slots/px/events", content=b"published through haproxy", timeout=5,
                       trust_env=False)
        assert r.status_code == 201, f"publish through haproxy's publish frontend: {r.status_code} {r.text}"
        h = httpx.get(f"{hp.sub_url}/v1/slots/px/events", params={"limit": "1"}, timeout=5, trust_env=False).json()
        assert h["events"][0]["data"] == "published through haproxy", h
    finally:
        if hp is not None:
            hp.stop()
        host.close()


def test_health_checks_take_a_dead_host_out_and_bring_it_back(tmp_path):
    require_tools("haproxy")
    hosts = [Host(n, "", tmp_path) for n in ("H1", "H2")]
    hp = None
    try:
        for h in hosts:
            h.start()
        hp = Haproxy(tmp_path, hosts).start()
        hp.wait_all_up()
        hosts[1].kill9()
        hp.wait_states({"host2": "DOWN", "host1": "UP"}, 5.0)
        with httpx.Client(base_url=hp.sub_url, timeout=5, trust_env=False) as c:
            codes = [c.get("/readyz", headers={"Connection": "close"}).status_code for _ in range(10)]
        assert codes == [200] * 10, f"/readyz through haproxy with one host dead: {codes}"
        r = httpx.post(f"{hp.pub_url}/v1/slots/px/events", content=b"x", timeout=5, trust_env=False)
        assert r.status_code == 201, f"publish through haproxy with host2 dead: {r.status_code} {r.text}"
        hosts[1].start()            # same ports, same data dir
        hp.wait_states({"host2": "UP"}, 5.0)
    finally:
        if hp is not None:
            hp.stop()
        for h in hosts:
            h.close()


class _HaproxyWithEnv(Haproxy):
    """The shipped config with some RG_* settings of the test's own."""

    def __init__(self, workdir, hosts, extra: dict[str, str]):
        super().__init__(workdir, hosts)
        self.extra = extra

    def env(self) -> dict[str, str]:
        return {**super().env(), **self.extra}


def test_stream_timeout_cuts_a_silent_stream_and_heartbeats_keep_a_live_one(tmp_path):
    """haproxy forwards an SSE body as a tunnel (Ringgate ends it by closing it), so what reaps a
    silent stream is `timeout tunnel` (RG_STREAM_TIMEOUT), and the hosts' heartbeats must beat it:
    with 2 s, a stream from a host beating every 30 s is cut after about 2 s, one from a host
    beating every 500 ms lives on and still delivers."""
    require_tools("haproxy")
    import time
    beating = Host("H", "", tmp_path, flags=("--heartbeat", "500ms"))
    silent = Host("S", "", tmp_path, flags=("--heartbeat", "30s"))
    hp = None
    try:
        beating.start()
        silent.start()
        hp = _HaproxyWithEnv(tmp_path, [beating, silent], {"RG_STREAM_TIMEOUT": "2s"}).start()
        hp.wait_all_up()
        # leastconn: two streams opened one after the other land on the two hosts.
        streams = [SSEStream(hp.sub_port, "/v1/slots/to/stream", timeout=5) for _ in range(2)]
        try:
            on = {h.name: h.metric("ringgate_connections", transport="sse") for h in (beating, silent)}
            assert on == {"H": 1, "S": 1}, on
            t0 = time.monotonic()
            ended: dict[int, float] = {}
            while time.monotonic() - t0 < 5:
                for i, s in enumerate(streams):
                    if i in ended:
                        continue
                    try:
                        if s.next_item(0.05) is None:
                            ended[i] = time.monotonic() - t0
                    except TimeoutError:
                        pass
            assert len(ended) == 1, f"after 5 s with RG_STREAM_TIMEOUT=2s: ended {ended} (want exactly the silent one)"
            (cut, after), = ended.items()
            assert 1.5 <= after <= 4.0, f"the silent stream was cut {after:.2f}s in, not at about 2 s"
            live = streams[1 - cut]
            eid = beating.publish("to", "still here")
            ev = live.next_event(3)
            assert isinstance(ev, SSEEvent) and ev.id == eid, ev
        finally:
            for s in streams:
                s.close()
    finally:
        if hp is not None:
            hp.stop()
        beating.close()
        silent.close()
