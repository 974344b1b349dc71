"""The live status page (issue 14, item 4): `GET /` of the subscriber listener serves one HTML
page from the binary (no build step, nothing external), fed by `GET /v1/status/stream` (one
`event: stats` frame a second, the StatusFrame of openapi.yaml). Checked over HTTP and in
headless Chromium: it renders (a screenshot is saved under tests/artifacts/), its numbers move
when events are published, and its tail box shows a slot's events live."""
from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path

import httpx
import jsonschema
import pytest
import yaml

from rgtest import REPO, SSEEvent, SSEStream, fetch_metrics, wait_until

ARTIFACTS = Path(os.environ.get("RINGGATE_TEST_ARTIFACTS", REPO / "tests" / "artifacts"))
SPEC = yaml.safe_load((REPO / "openapi.yaml").read_text())


def frame_schema() -> dict:
    schemas = SPEC["components"]["schemas"]
    return {**schemas["StatusFrame"], "$defs": schemas}


def stats_frames(stream: SSEStream, n: int, timeout: float) -> list[dict]:
    deadline = time.monotonic() + timeout
    out = []
    while len(out) < n:
        assert time.monotonic() < deadline, f"{len(out)} of {n} stats frames within {timeout}s"
        item = stream.next_item(max(0.05, deadline - time.monotonic()))
        assert item is not None, "the stats stream ended"
        if isinstance(item, SSEEvent):
            assert item.event == "stats" and item.id is None, item
            out.append(json.loads(item.data))
    return out


def test_page_is_self_contained_html(gateway):
    gw = gateway(workers=1)
    r = httpx.get(gw.sub_url + "/", timeout=5, trust_env=False)
    assert r.status_code == 200 and r.headers["content-type"] == "text/html; charset=utf-8", r.headers
    csp = r.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "connect-src 'self'" in csp, csp
    page = r.text
    # nothing fetched from outside: no absolute URL in any src/href, no @import, no CDN
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page, re.I), "the page loads something external"
    assert "@import" not in page and "cdn" not in page.lower()
    assert 'new EventSource(withToken("v1/status/stream"))' in page
    head = httpx.head(gw.sub_url + "/", timeout=5, trust_env=False)
    assert head.status_code == 200 and head.headers["content-length"] == str(len(r.content)) and head.content == b""


def test_stats_stream_frames_match_the_spec_and_move_with_publishes(gateway):
    gw = gateway(workers=2)
    validator = jsonschema.Draft202012Validator(frame_schema())
    with SSEStream(gw.sub_port, "/v1/status/stream", timeout=5) as s:
        assert s.status == 200 and s.headers["content-type"].startswith("text/event-stream")
        first, = stats_frames(s, 1, 3)
        validator.validate(first)
        ids = [gw.publish("st-a", f"a{i}") for i in range(5)] + [gw.publish("st-b", "b")]
        sub = gw.stream("st-a", last_event_id=ids[0])
        sub.read_events(4, 5)
        t0 = time.monotonic()
        later = stats_frames(s, 2, 4)
        took = time.monotonic() - t0
        for f in later:
            validator.validate(f)
        last = later[-1]
        assert last["published"] == first["published"] + 6, (first["published"], last["published"])
        assert last["delivered"]["sse"] >= first["delivered"]["sse"] + 4
        assert last["connections"]["sse"] >= 2          # this stream and `sub`
        assert [x["name"] for x in last["slots"][:2]] == ["st-b", "st-a"], last["slots"]
        assert last["slots"][1]["count"] == 5 and last["log"]["head_seq"] >= 6
        assert {p["role"] for p in last["processes"]} == {"supervisor", "ingest", "worker"}
        assert all(p["turning"] for p in last["processes"]), last["processes"]
        assert 1.0 <= took <= 3.5, f"two frames took {took:.2f}s: they come about once a second"
        sub.close()


def test_status_page_off_is_404_and_the_stream_count_is_limited(gateway):
    off = gateway("--status-page", "false", workers=1, name="off")
    for path in ("/", "/v1/status/stream"):
        r = httpx.get(off.sub_url + path, timeout=5, trust_env=False)
        assert r.status_code == 404 and r.json()["error"] == "not_found", (path, r.status_code)
    bad = subprocess.run([str(off.binary), "serve", "--status-page", "maybe", "--check-config"],
                         capture_output=True, text=True, timeout=10)
    assert bad.returncode == 64 and "--status-page maybe" in bad.stdout + bad.stderr, (bad.returncode, bad.stderr)
    shown = subprocess.run([str(off.binary), "serve", "--status-page", "false", "--check-config"],
                           capture_output=True, text=True, timeout=10)
    assert "--status-page false" in shown.stdout, shown.stdout

    # the default limit is 64 per worker; --max-status-streams 5 here
    default = subprocess.run([str(off.binary), "serve", "--check-config"], capture_output=True, text=True, timeout=10)
    assert "--max-status-streams 64" in default.stdout, default.stdout
    gw = gateway("--max-status-streams", "5", workers=1)
    streams = [SSEStream(gw.sub_port, "/v1/status/stream", timeout=5) for _ in range(5)]
    try:
        assert all(s.status == 200 for s in streams)
        assert fetch_metrics(gw.sub_port).value("ringgate_status_stream_limit_total") == 0
        extra = SSEStream(gw.sub_port, "/v1/status/stream", timeout=5)
        assert extra.status == 503 and b"over_capacity" in extra.body and b"--max-status-streams" in extra.body, \
            (extra.status, extra.body)
        extra.close()
        assert fetch_metrics(gw.sub_port).value("ringgate_status_stream_limit_total") == 1, "the refusal is counted"
        streams.pop().close()
        again = wait_until(lambda: (s := SSEStream(gw.sub_port, "/v1/status/stream", timeout=5)).status == 200 and s,
                           5, what="a status stream once one closed")
        streams.append(again)
    finally:
        for s in streams:
            s.close()


# ----------------------------------------------------------------------------- in Chromium

from selenium.webdriver.common.by import By  # noqa: E402

from browsertest import chromium  # noqa: E402


@pytest.fixture
def browser():
    with chromium("--window-size=1280,1400") as driver:   # the whole page in the screenshot
        yield driver



def number(driver, element_id: str) -> float | None:
    text = driver.find_element(By.ID, element_id).text.replace(",", "")
    try:
        return float(text)
    except ValueError:
        return None


@pytest.mark.timeout(90)
def test_page_renders_live_numbers_and_tails_a_slot_in_chromium(gateway, browser):
    gw = gateway(workers=2)
    gw.publish("warm", "up")
    browser.get(gw.sub_url + "/")
    wait_until(lambda: browser.execute_script("return window.statusFrames") >= 2, 10,
               what="two stats frames rendered")
    assert browser.find_element(By.ID, "conn-state").text == "live"
    before = number(browser, "published-total")
    assert before == 1, before
    assert len(browser.find_elements(By.CSS_SELECTOR, "#processes tbody tr")) == 4   # supervisor, ingest, 2 workers

    # the tail box: a live EventSource on a slot, from the page
    browser.find_element(By.ID, "tail-slot").send_keys("news")
    browser.find_element(By.ID, "tail-go").click()
    wait_until(lambda: (number(browser, "conn-sse") or 0) >= 2, 10, what="the tail's stream counted")

    ids = []
    for i in range(20):
        ids.append(gw.publish("news", f"headline {i}"))
        time.sleep(0.1)
    wait_until(lambda: number(browser, "published-total") == before + 20, 10,
               what="the page's published total to move by 20")
    wait_until(lambda: (number(browser, "publishes-rate") or 0) > 0, 5, what="a publish rate above 0")
    wait_until(lambda: (number(browser, "deliveries-rate") or 0) > 0 or number(browser, "publishes-rate") > 0, 5,
               what="rates on the page")
    tail = browser.find_element(By.ID, "tail-out").text
    assert all(f"{eid}  headline {i}" in tail for i, eid in enumerate(ids)), tail
    first_slot = browser.find_element(By.CSS_SELECTOR, "#slots tbody tr td").text
    assert first_slot == "news", first_slot
    assert browser.find_element(By.ID, "log-head").text.replace(",", "") == str(21)
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"] if hasattr(browser, "get_log") else []
    assert not errors, errors

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / f"status-page-{os.environ.get('RINGGATE_TEST_IO', 'io')}.png"
    assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000, shot
    print(f"screenshot: {shot} ({shot.stat().st_size} bytes)")


def test_with_jwt_auth_the_page_and_its_stream_need_a_token_for_every_slot(gateway, tmp_path):
    import jwt
    secret = "s" * 40
    (tmp_path / "secret").write_text(secret)
    gw = gateway("--subscribe-auth", "jwt", "--jwt-hs256-secret-file", str(tmp_path / "secret"), workers=1)

    def token(slots):
        return jwt.encode({"exp": int(time.time()) + 60, "slots": slots}, secret, algorithm="HS256")

    for path in ("/", "/v1/status/stream"):
        r = httpx.get(gw.sub_url + path, timeout=5, trust_env=False)
        assert r.status_code == 401 and r.json()["error"] == "unauthorized", (path, r.status_code)
        r = httpx.get(gw.sub_url + path, params={"token": token(["news", "news.*"])}, timeout=5, trust_env=False)
        assert r.status_code == 403 and r.json()["error"] == "forbidden", (path, r.status_code, r.text)
    every = token(["*"])
    r = httpx.get(gw.sub_url + "/", params={"token": every}, timeout=5, trust_env=False)
    assert r.status_code == 200 and "withToken" in r.text
    with SSEStream(gw.sub_port, f"/v1/status/stream?token={every}", timeout=5) as s:
        assert s.status == 200
        frame, = stats_frames(s, 1, 3)
        jsonschema.Draft202012Validator(frame_schema()).validate(frame)
    with SSEStream(gw.sub_port, "/v1/status/stream", {"Authorization": f"Bearer {every}"}, timeout=5) as s:
        assert s.status == 200
