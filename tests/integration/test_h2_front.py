"""Issue 14 item 3: HTTP/2 to browsers through the TLS front of deploy/haproxy/haproxy-tls.cfg.

Redis + two cluster hosts (the `cluster` fixture, without its plain haproxy) and haproxy with
haproxy-tls.cfg and a self-signed certificate made here with openssl. `haproxy -c` accepts the
file for 1-4 hosts; curl --http2 shows ALPN h2 and an SSE stream that delivers an event by itself
(within 1 s, no heartbeat behind it), uncompressed, with the hosts' CORS headers (history and a
preflight too); heartbeats keep an h2 stream past haproxy's stream timeout while a silent one is
cut; headless Chromium, trusting only this certificate (its SPKI hash), opens 10 EventSources from
a page on another origin over one h2 connection, gets every event in order (large ones too, past
the initial flow-control windows) and fetches history meanwhile, while the same page over plain
HTTP/1.1 straight to a host gets fewer than 10 open (6: the browser's per-host limit). Missing
tools fail the test naming the Debian package; nothing is skipped. Every process started here is
stopped, whatever the outcome.

Runs in both RINGGATE_TEST_IO passes (about 20 s each): what it checks is haproxy's and the
browser's handling of a host's HTTP/1.1 answers (close-delimited SSE responses, each event
flushed at once), which the I/O backend writes and must not change; a skip in one pass would be
the only skip in this file, for 20 s of CI.
"""
from __future__ import annotations

import base64
import os
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest

import rgtest
from clustertest import Host, _stop_process, cluster, free_port, port_listening  # noqa: F401  (fixture)
from browsertest import CHROMEDRIVER, CHROMIUM, serve_page, start_chromium
from rgtest import SSEComment, SSEEvent, SSEParser, SSERetry, wait_until

TLS_CFG = rgtest.REPO / "deploy" / "haproxy" / "haproxy-tls.cfg"
# tool -> the Debian package that ships it
PACKAGES = {"openssl": "openssl", "haproxy": "haproxy", "curl": "curl", "redis-server": "redis-server",
            "redis-cli": "redis-tools", CHROMIUM: "chromium", CHROMEDRIVER: "chromium-driver"}
N_STREAMS = 10


def require(*tools: str) -> None:
    missing = [t for t in tools if (shutil.which(t) if not t.startswith("/") else
                                    (t if os.access(t, os.X_OK) else None)) is None]
    if missing:
        pkgs = " ".join(dict.fromkeys(PACKAGES[t] for t in missing))
        pytest.fail(f"test_h2_front needs {', '.join(missing)}: apt-get install {pkgs} "
                    f"(scripts/ensure-deps.sh test installs them)", pytrace=False)


# ----------------------------------------------------------------------------- certificate

class SelfSignedCert:
    """A self-signed EC certificate for localhost / 127.0.0.1 and the PEM haproxy reads."""

    def __init__(self, workdir: Path):
        require("openssl")
        d = Path(workdir) / "tls"
        d.mkdir(parents=True, exist_ok=True)
        self.cert, self.key, self.pem = d / "cert.pem", d / "key.pem", d / "haproxy.pem"
        p = subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                            "-nodes", "-days", "2", "-keyout", str(self.key), "-out", str(self.cert),
                            "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                           capture_output=True, text=True, timeout=30)
        assert p.returncode == 0, f"openssl req failed: {p.stderr}"
        self.pem.write_bytes(self.cert.read_bytes() + self.key.read_bytes())
        self.pem.chmod(0o600)
        # base64(sha256(SubjectPublicKeyInfo DER)): what --ignore-certificate-errors-spki-list takes
        pub = subprocess.run(["openssl", "x509", "-in", str(self.cert), "-pubkey", "-noout"],
                             capture_output=True, timeout=10, check=True).stdout
        der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "der"], input=pub,
                             capture_output=True, timeout=10, check=True).stdout
        digest = subprocess.run(["openssl", "dgst", "-sha256", "-binary"], input=der,
                                capture_output=True, timeout=10, check=True).stdout
        assert len(digest) == 32, digest
        self.spki_sha256 = base64.b64encode(digest).decode()


# ----------------------------------------------------------------------------- haproxy

class TlsHaproxy:
    """haproxy -db with haproxy-tls.cfg (modelled on clustertest.Haproxy): `-c` first, then
    start, wait for the stats listener, then until every server is UP in the stats CSV."""

    def __init__(self, workdir: Path, hosts: list[Host], cert: SelfSignedCert, cfg: Path = TLS_CFG,
                 extra_env: dict[str, str] | None = None):
        require("haproxy")
        assert 1 <= len(hosts) <= 4
        self.hosts, self.cert, self.cfg = hosts, cert, cfg
        self.extra_env = dict(extra_env or {})
        self.tls_port, self.pub_port, self.stats_port = free_port(), free_port(), free_port()
        self.log_path = Path(workdir) / "haproxy-tls.log"
        self.proc: subprocess.Popen | None = None

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("RG_")}
        env.update({"RG_TLS_CERT": str(self.cert.pem),
                    "RG_TLS_BIND": f"127.0.0.1:{self.tls_port}",
                    "RG_PUBLISH_BIND": f"127.0.0.1:{self.pub_port}",
                    "RG_STATS_BIND": f"127.0.0.1:{self.stats_port}"})
        for i, h in enumerate(self.hosts, 1):
            env[f"RG_HOST{i}_SUBSCRIBE"] = f"127.0.0.1:{h.sub_port}"
            env[f"RG_HOST{i}_PUBLISH"] = f"127.0.0.1:{h.pub_port}"
        env.update(self.extra_env)
        return env

    def start(self, timeout: float = 10.0) -> "TlsHaproxy":
        check = subprocess.run(["haproxy", "-c", "-f", str(self.cfg)], env=self.env(),
                               capture_output=True, text=True, timeout=10)
        assert check.returncode == 0, f"haproxy -c rejects {self.cfg}:\n{check.stdout}{check.stderr}"
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(["haproxy", "-db", "-f", str(self.cfg)], env=self.env(),
                                     stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        wait_until(lambda: self.proc.poll() is not None or port_listening(self.stats_port), timeout,
                   what="haproxy's stats listener")
        assert self.proc.poll() is None, f"haproxy exited with {self.proc.returncode}:\n{self.log_text()}"
        self.wait_all_up()
        return self

    def server_states(self) -> dict[tuple[str, str], str]:
        r = httpx.get(f"http://127.0.0.1:{self.stats_port}/stats;csv", timeout=3.0, trust_env=False)
        lines = r.text.lstrip("# ").splitlines()
        cols = lines[0].split(",")
        ip, isv, ist = cols.index("pxname"), cols.index("svname"), cols.index("status")
        return {(f[ip], f[isv]): f[ist].split(" ")[0] for f in (l.split(",") for l in lines[1:])
                if len(f) > ist and f[isv] not in ("FRONTEND", "BACKEND")}

    def wait_all_up(self, timeout: float = 15.0) -> None:
        names = [f"host{i}" for i in range(1, len(self.hosts) + 1)]

        def ok():
            st = self.server_states()
            return all(st.get((be, n)) == "UP" for n in names for be in ("ringgate_subscribe", "ringgate_publish"))
        try:
            wait_until(ok, timeout, interval=0.2, what="haproxy to see every host UP")
        except AssertionError as e:
            raise AssertionError(f"{e}; haproxy reports {self.server_states()}") from None

    @property
    def tls_url(self) -> str:
        return f"https://localhost:{self.tls_port}"

    @property
    def pub_url(self) -> str:
        return f"http://127.0.0.1:{self.pub_port}"

    def publish(self, slot: str, data: str) -> str:
        r = httpx.post(f"{self.pub_url}/v1/slots/{slot}/events", content=data.encode(), timeout=5.0, trust_env=False)
        assert r.status_code == 201, f"publish through haproxy's publish frontend: {r.status_code} {r.text}"
        return r.json()["id"]

    def log_text(self) -> str:
        try:
            return self.log_path.read_text("utf-8", "replace")
        except FileNotFoundError:
            return "(no haproxy log)"

    def stop(self) -> None:
        _stop_process(self.proc, signal.SIGTERM, 5.0)
        if getattr(self, "_log", None):
            self._log.close()


@pytest.fixture
def tls_front(cluster, tmp_path):
    """Factory: tls_front(hosts=2, flags=(), extra_env=None, host_flags=None) -> (Cluster, TlsHaproxy)
    (hosts A, B, ... behind haproxy's host1, host2, ...), stopped after the test."""
    require("curl", "redis-server", "redis-cli")
    fronts: list[TlsHaproxy] = []

    def start(hosts: int = 2, flags: tuple[str, ...] = (), extra_env: dict[str, str] | None = None,
              host_flags: dict[str, tuple[str, ...]] | None = None):
        c = cluster(hosts=hosts, haproxy=False, flags=flags, host_flags=host_flags)
        front = TlsHaproxy(tmp_path, c.hosts, SelfSignedCert(tmp_path), extra_env=extra_env)
        fronts.append(front)
        front.start()
        return c, front

    yield start
    for f in fronts:
        f.stop()


# ----------------------------------------------------------------------------- curl

class CurlStream:
    """`curl --http2 -k -N -v URL` in the background: every SSE item it prints, with the
    monotonic time it arrived; curl's verbose output (ALPN, response head) in a file."""

    def __init__(self, url: str, workdir: Path, extra: tuple[str, ...] = ()):
        self.err_path = Path(workdir) / f"curl-{free_port()}.stderr"
        self._err = open(self.err_path, "wb")
        self.proc = subprocess.Popen(["curl", "--http2", "-k", "-sS", "-N", "-v", "--max-time", "30",
                                      *extra, url], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=self._err, start_new_session=True)
        self.items: list[tuple[float, object]] = []
        self.eof_at: float | None = None
        self._parser = SSEParser()
        self._thread = threading.Thread(target=self._pump, daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        fd = self.proc.stdout.fileno()
        while True:
            chunk = os.read(fd, 65536)
            now = time.monotonic()
            if not chunk:
                self.eof_at = now
                return
            for item in self._parser.feed(chunk):
                self.items.append((now, item))

    def verbose(self) -> str:
        self._err.flush()
        return self.err_path.read_text("utf-8", "replace")

    def events(self) -> list[tuple[float, SSEEvent]]:
        return [(t, i) for t, i in self.items if isinstance(i, SSEEvent)]

    def close(self) -> None:
        _stop_process(self.proc, signal.SIGTERM, 3.0)
        self._thread.join(3)
        self._err.close()


def curl_head(url: str, *args: str) -> tuple[str, dict[str, str], str]:
    """One request with curl: (status line, lower-cased headers, body)."""
    p = subprocess.run(["curl", "-k", "-sS", "-D", "-", "--max-time", "10", *args, url],
                       capture_output=True, text=True, timeout=15)
    assert p.returncode == 0, f"curl {' '.join(args)} {url}: {p.returncode} {p.stderr}"
    head, _, body = p.stdout.replace("\r\n", "\n").partition("\n\n")
    lines = head.splitlines()
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return lines[0], headers, body


# ----------------------------------------------------------------------------- tests: config

def test_tls_config_is_valid_for_one_to_four_hosts(tmp_path):
    require("haproxy")
    cert = SelfSignedCert(tmp_path)
    for n in (1, 2, 3, 4):
        env = {f"RG_HOST{i}_{k}": f"127.0.0.1:{10000 + 2 * i + j}" for i in range(1, n + 1)
               for j, k in enumerate(("SUBSCRIBE", "PUBLISH"))}
        env["PATH"] = os.environ.get("PATH", "/usr/sbin:/usr/bin")
        env["RG_TLS_CERT"] = str(cert.pem)
        p = subprocess.run(["haproxy", "-c", "-f", str(TLS_CFG)], env=env, capture_output=True, text=True, timeout=10)
        assert p.returncode == 0, f"haproxy -c of {TLS_CFG} with {n} hosts: {p.stdout}{p.stderr}"
        assert "WARNING" not in p.stdout + p.stderr, f"haproxy -c warns with {n} hosts: {p.stdout}{p.stderr}"
    # the certificate is the operator's: without RG_TLS_CERT the file is refused, naming the bind's crt
    del env["RG_TLS_CERT"]
    p = subprocess.run(["haproxy", "-c", "-f", str(TLS_CFG)], env=env, capture_output=True, text=True, timeout=10)
    assert p.returncode != 0 and "crt" in p.stdout + p.stderr, f"haproxy -c without RG_TLS_CERT: {p.stdout}{p.stderr}"
    text = TLS_CFG.read_text()
    assert 'ssl crt "${RG_TLS_CERT}" alpn h2,http/1.1' in text
    assert "compression" not in [l.split()[0] for l in text.splitlines() if l.strip() and not l.lstrip().startswith("#")]


# ----------------------------------------------------------------------------- tests: curl

@pytest.mark.timeout(60)
def test_curl_gets_h2_and_an_unbuffered_stream_with_cors(tls_front, tmp_path):
    c, front = tls_front(hosts=2)
    # --compressed: curl asks for gzip/deflate/br as a browser does
    s = CurlStream(f"{front.tls_url}/v1/slots/h2c/stream", tmp_path,
                   ("--compressed", "-H", "Origin: http://page.example"))
    try:
        wait_until(lambda: any(isinstance(i, SSERetry) for _, i in s.items) or s.eof_at, 10,
                   what="the stream's retry: frame through the TLS front")
        v = s.verbose()
        assert "ALPN: server accepted h2" in v, f"curl did not negotiate h2:\n{v}"
        assert "< HTTP/2 200" in v, f"no HTTP/2 200 response head:\n{v}"
        assert "< content-type: text/event-stream" in v.lower(), v
        assert "< access-control-allow-origin: *" in v.lower(), f"CORS header lost on the h2 stream:\n{v}"
        head = v.lower().split("< http/2 200", 1)[1]
        assert "connection:" not in head, f"a Connection header on h2:\n{v}"
        assert "content-encoding" not in head, f"the front compresses the stream:\n{v}"
        time.sleep(0.3)
        t0 = time.monotonic()
        eid = front.publish("h2c", "through the TLS front")
        wait_until(lambda: s.events() or s.eof_at, 5, what="the event on the curl --http2 stream")
        (t1, ev), = s.events()
        assert (ev.id, ev.data) == (eid, "through the TLS front"), ev
        took = t1 - t0
        # the default 15 s heartbeat has not fired: the event came on its own, not flushed by a
        # later frame, and within 1 s of the publish (the publish's round trip included)
        assert took < 1.0, f"the event took {took:.3f} s through the TLS front"
        assert not any(isinstance(i, SSEComment) for _, i in s.items), s.items
        print(f"\ncurl --http2: event {took * 1000:.1f} ms after the publish was sent")
    finally:
        s.close()

    # history and a preflight over h2, from a page's origin: the hosts' CORS headers survive.
    # The hosts apply the event from the stream each on its own: the one the front picks for
    # the pull may not hold it yet when the other's stream already delivered it (a CI run's pull
    # came before), so the pull waits until both have it.
    for host in c.hosts:
        host.wait_head("h2c", eid, timeout=5.0)
    status, h, body = curl_head(f"{front.tls_url}/v1/slots/h2c/events?limit=5", "--http2", "--compressed",
                                "-H", "Origin: http://page.example")
    assert status.startswith("HTTP/2 200"), status
    assert "content-encoding" not in h, f"the front compresses history: {h}"
    assert h.get("access-control-allow-origin") == "*" and h.get("access-control-expose-headers") == "Content-Type", h
    assert '"data":"through the TLS front"' in body, body
    status, h, _ = curl_head(f"{front.tls_url}/v1/slots/h2c/events", "--http2", "-X", "OPTIONS",
                             "-H", "Origin: http://page.example", "-H", "Access-Control-Request-Method: GET",
                             "-H", "Access-Control-Request-Headers: last-event-id")
    assert status.startswith("HTTP/2 204"), status
    assert "Last-Event-ID" in h.get("access-control-allow-headers", ""), h
    assert "GET" in h.get("access-control-allow-methods", ""), h
    # http/1.1 clients still work on the same port (ALPN's second choice)
    status, h, body = curl_head(f"{front.tls_url}/readyz", "--http1.1")
    assert status.startswith("HTTP/1.1 200") and h.get("access-control-allow-origin") == "*", (status, h)


@pytest.mark.timeout(60)
def test_heartbeats_keep_h2_streams_past_the_stream_timeout(tls_front, tmp_path):
    # RG_STREAM_TIMEOUT (haproxy's `timeout tunnel`) 2 s; host A beats every 1 s, host B every
    # 30 s. Two streams: leastconn puts one on each host. After 5 s the stream on A lives on
    # (each `: hb` is activity) and still delivers; the one on B was cut by haproxy (`sD`)
    # after 2 s of silence: the timeout is real, and heartbeats are what keep a stream.
    c, front = tls_front(hosts=2, extra_env={"RG_STREAM_TIMEOUT": "2s"},
                         host_flags={"A": ("--heartbeat", "1s"), "B": ("--heartbeat", "30s")})
    t0 = time.monotonic()
    streams = []
    try:
        for i in range(2):
            streams.append(CurlStream(f"{front.tls_url}/v1/slots/h2hb/stream?n={i}", tmp_path))
            wait_until(lambda: streams[-1].items or streams[-1].eof_at, 5, what=f"stream {i} to start")
        time.sleep(5.0)
        alive = [s for s in streams if s.eof_at is None]
        cut = [s for s in streams if s.eof_at is not None]
        assert len(alive) == 1 and len(cut) == 1, \
            f"alive {len(alive)}, ended {len(cut)}: {[s.items for s in streams]}\n{front.log_text()[-2000:]}"
        hbs = [i for _, i in alive[0].items if isinstance(i, SSEComment) and i.text == "hb"]
        assert len(hbs) >= 3, alive[0].items
        lived = cut[0].eof_at - t0
        assert 1.5 < lived < 4.5, f"the silent stream ended after {lived:.2f} s (stream timeout 2 s)"
        assert not any(isinstance(i, SSEComment) for _, i in cut[0].items), cut[0].items
        lines = [l for l in front.log_text().splitlines() if "/v1/slots/h2hb/stream" in l]
        assert len(lines) == 1 and "ringgate_subscribe/host2" in lines[0] and " sD" in lines[0] \
            and "HTTP/2.0" in lines[0], lines
        eid = front.publish("h2hb", "after 5 s")
        wait_until(lambda: alive[0].events() or alive[0].eof_at, 3, what="the event after 5 s of heartbeats")
        assert [(e.id, e.data) for _, e in alive[0].events()] == [(eid, "after 5 s")]
        print(f"\nstream timeout 2 s: the 1 s-heartbeat stream lived 5 s+ ({len(hbs)} heartbeats), "
              f"the 30 s-heartbeat one was cut after {lived:.2f} s")
    finally:
        for s in streams:
            s.close()


# ----------------------------------------------------------------------------- tests: the browser

PAGE = b"""<!doctype html><html><head><meta charset="utf-8"><title>h2 page</title></head>
<body><script>
window.streams = [];
window.openMany = function (urls) {
  urls.forEach(function (url) {
    const st = {url: url, opened: false, got: [], errors: []};
    const es = new EventSource(url);
    st.es = es;
    es.onopen = () => { st.opened = true; };
    // a large event is kept as its length and last characters (the data itself is not needed)
    es.onmessage = (e) => { st.got.push([e.lastEventId,
      e.data.length > 200 ? "len " + e.data.length + " " + e.data.slice(-8) : e.data]); };
    es.onerror = () => { st.errors.push(es.readyState); };
    window.streams.push(st);
  });
};
window.state = () => window.streams.map((s) => ({opened: s.opened, got: s.got, errors: s.errors}));
window.closeAll = () => { window.streams.forEach((s) => s.es.close()); window.streams = []; };
window.fetchJSON = function (url, timeoutMs, done) {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), timeoutMs);
  const t0 = performance.now();
  fetch(url, {signal: ac.signal})
    .then((r) => r.json().then((body) => { clearTimeout(timer);
      done({ok: true, status: r.status, body: body, ms: performance.now() - t0, url: r.url}); }))
    .catch((e) => { clearTimeout(timer); done({ok: false, error: String(e), ms: performance.now() - t0}); });
};
window.protocols = () => performance.getEntriesByType("resource").map((e) => [e.name, e.nextHopProtocol]);
</script></body></html>"""


@pytest.fixture
def page_url():
    """The test page on its own loopback port: another origin than the gateway's."""
    with serve_page(PAGE) as url:
        yield url

def start_browser(spki_sha256: str):
    # trust this test's certificate only (by its key), not every certificate
    return start_chromium(f"--ignore-certificate-errors-spki-list={spki_sha256}")

def established_to(port: int) -> int:
    """Established IPv4 TCP connections whose remote end is 127.0.0.1:port (the browser's side)."""
    n = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        f = line.split()
        if f[3] == "01" and int(f[2].split(":")[1], 16) == port:
            n += 1
    return n


def fetch_json(driver, url: str, timeout_ms: int = 5000) -> dict:
    return driver.execute_async_script(
        "window.fetchJSON(arguments[0], arguments[1], arguments[arguments.length - 1]);", url, timeout_ms)


@pytest.mark.timeout(120)
def test_browser_multiplexes_ten_eventsources_over_h2(tls_front, page_url, tmp_path):
    c, front = tls_front(hosts=2)
    cert = front.cert
    driver = start_browser(cert.spki_sha256)
    try:
        driver.get(page_url)
        origin = driver.execute_script("return location.origin")
        assert origin != front.tls_url and origin.startswith("http://127.0.0.1:"), origin
        slot = "h2b"
        urls = [f"{front.tls_url}/v1/slots/{slot}/stream?n={i}" for i in range(N_STREAMS)]
        driver.execute_script("window.openMany(arguments[0]);", urls)
        t_open = time.monotonic()
        try:
            wait_until(lambda: all(s["opened"] for s in driver.execute_script("return window.state()")), 10,
                       interval=0.1, what=f"{N_STREAMS} EventSources over h2 to open")
        except AssertionError as e:
            st = driver.execute_script("return window.state()")
            raise AssertionError(f"{e}: {sum(s['opened'] for s in st)} of {N_STREAMS} open; streams: {st}; "
                                 f"haproxy log:\n{front.log_text()[-3000:]}") from None
        open_s = time.monotonic() - t_open
        # Chromium may open a few sockets at once before the first one's ALPN says h2 (CI saw 4);
        # the spare ones stay idle. Which connection carried each stream is read from haproxy's
        # log below; this count is only reported.
        conns = established_to(front.tls_port)

        published = [(front.publish(slot, f"ev {i}"), f"ev {i}") for i in range(5)]
        # then 3 events of 60,000 bytes: 1.8 MB on the one connection, far past h2's initial
        # 64 KiB windows, so they arrive only if the flow-control windows keep reopening
        big = 60000
        for i in range(3):
            tail = f"big-{i:04d}"
            published.append((front.publish(slot, "x" * (big - len(tail)) + tail), f"len {big} {tail}"))

        def all_got():
            st = driver.execute_script("return window.state()")
            return st if all(len(s["got"]) >= len(published) for s in st) else None
        try:
            st = wait_until(all_got, 10, interval=0.1, what="every EventSource to get every event")
        except AssertionError as e:
            raise AssertionError(f"{e}; streams: {driver.execute_script('return window.state()')}") from None
        for i, s in enumerate(st):
            assert [tuple(g) for g in s["got"]] == published, f"EventSource {i}: {s['got']} != {published}"
            assert s["errors"] == [], f"EventSource {i} errors: {s['errors']}"

        # a fetch from the same page while the 10 streams are open
        hist = fetch_json(driver, f"{front.tls_url}/v1/slots/{slot}/events?limit=10", 5000)
        assert hist["ok"] and hist["status"] == 200, hist
        assert [(e["id"], e["data"] if len(e["data"]) <= 200 else f"len {len(e['data'])} {e['data'][-8:]}")
                for e in hist["body"]["events"]] == published, hist["body"]["next"]
        # Resource Timing hides nextHopProtocol ("") for another origin's answers without
        # Timing-Allow-Origin, so the protocol is read from haproxy's log (option httplog) below
        protos = dict(driver.execute_script("return window.protocols()"))
        fetch_ms = hist["ms"]

        # closing the streams ends them in haproxy, which logs each with its protocol
        driver.execute_script("window.closeAll();")
        def logged():
            lines = [l for l in front.log_text().splitlines() if f"/v1/slots/{slot}/stream?n=" in l]
            return lines if len(lines) >= N_STREAMS else None
        lines = wait_until(logged, 10, interval=0.2, what="haproxy to log the 10 streams")
        assert all("HTTP/2.0" in l for l in lines), "\n".join(lines)
        fetched = [l for l in front.log_text().splitlines() if f"/v1/slots/{slot}/events?limit=10" in l]
        assert len(fetched) == 1 and "HTTP/2.0" in fetched[0] and " 200 " in fetched[0], fetched
        assert all("subscribers_tls~" in l for l in lines), "\n".join(lines)
        # each line starts with the client's address: one browser connection carried them all
        clients = {l.split()[0].split(">", 1)[-1] for l in lines + fetched}
        assert len(clients) == 1, f"streams and fetch came on {len(clients)} connections: {clients}"
        hosts_used = {h for l in lines for h in ("ringgate_subscribe/host1", "ringgate_subscribe/host2") if h in l}

        # the contrast: the same page, 10 EventSources over plain HTTP/1.1 straight to one host
        driver.get(page_url)
        host = c.hosts[0]
        h1_urls = [f"{host.sub_url}/v1/slots/{slot}/stream?n={i}" for i in range(N_STREAMS)]
        driver.execute_script("window.openMany(arguments[0]);", h1_urls)
        time.sleep(3.0)
        h1_open = sum(1 for s in driver.execute_script("return window.state()") if s["opened"])
        h1_fetch = fetch_json(driver, f"{host.sub_url}/v1/slots/{slot}/events?limit=1", 2000)
        driver.execute_script("window.closeAll();")
        print(f"\nh2 front: {N_STREAMS}/{N_STREAMS} EventSources open in {open_s:.2f} s, all on one TLS connection ({conns} browser sockets open to the front), "
              f"every one got {len(published)} events in order (3 of 60,000 bytes), history fetch "
              f"{fetch_ms:.0f} ms (nextHopProtocol {protos.get(hist['url'])!r}), streams spread over {sorted(hosts_used)}; "
              f"HTTP/1.1 straight to a host: {h1_open}/{N_STREAMS} open after 3 s, history fetch: {'ok' if h1_fetch['ok'] else h1_fetch['error']} "
              f"after {h1_fetch['ms']:.0f} ms")
        assert h1_open < N_STREAMS, f"{h1_open} EventSources open over HTTP/1.1: the browser's limit did not apply"
    finally:
        driver.quit()
