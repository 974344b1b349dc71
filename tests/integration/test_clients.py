"""Scenario 7: real third-party clients — curl -N and httpx-sse — and the three ways to resume."""
from __future__ import annotations

import re
import shutil
import subprocess
import time

import httpx
import pytest
from httpx_sse import connect_sse

from rgtest import LineReader, SSEEvent, SSEParser, SSERetry, describe_mismatch


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl not installed")
def test_curl_reads_the_stream(gateway):
    gw = gateway(workers=2)
    marker = gw.publish("c", "marker")
    p = subprocess.Popen(["curl", "-sSN", "--noproxy", "*", "--max-time", "20",
                          "-H", f"Last-Event-ID: {marker}", f"{gw.sub_url}/v1/slots/c/stream"],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
                         start_new_session=True)
    try:
        out = LineReader(p.stdout)
        first = out.readline(5)
        assert first is not None and re.fullmatch(r"retry: (\d+)\r?\n", first), f"first line {first!r}"
        assert 1000 <= int(re.search(r"\d+", first).group()) <= 2000

        ids = [gw.publish("c", f"curl {i}", type="tick" if i == 1 else None) for i in range(3)]
        parser, events = SSEParser(), []
        deadline = time.monotonic() + 5
        while len(events) < 3:
            line = out.readline(max(0.01, deadline - time.monotonic()))
            assert line is not None, f"curl ended early; got {out.lines}"
            events += [i for i in parser.feed(line.encode()) if isinstance(i, SSEEvent)]
        assert [(e.id, e.event, e.data) for e in events] == \
            [(ids[0], "message", "curl 0"), (ids[1], "tick", "curl 1"), (ids[2], "message", "curl 2")]
    finally:
        p.kill()
        p.wait(5)


def sse_events(url: str, n: int, last_event_id: str) -> tuple[list, list]:
    """Read n events (non-empty data) with httpx-sse; returns (events, retry values seen)."""
    events, retries = [], []
    with httpx.Client(timeout=httpx.Timeout(5.0), trust_env=False) as client:
        with connect_sse(client, "GET", url, headers={"Last-Event-ID": last_event_id}) as es:
            assert es.response.status_code == 200
            for sse in es.iter_sse():
                if sse.retry is not None:
                    retries.append(sse.retry)
                if sse.data == "":          # the retry frame, or a heartbeat after an id
                    continue
                events.append(sse)
                if len(events) == n:
                    break
    return events, retries


def test_httpx_sse_reads_and_resumes(gateway):
    gw = gateway(workers=2)
    url = f"{gw.sub_url}/v1/slots/hs/stream"
    marker = gw.publish("hs", "marker")
    ids = [gw.publish("hs", f"e{i}") for i in range(10)]

    first, retries = sse_events(url, 4, marker)
    assert retries and 1000 <= retries[0] <= 2000, f"retry field {retries}"
    assert [(e.id, e.data) for e in first] == [(ids[i], f"e{i}") for i in range(4)]

    ids += [gw.publish("hs", f"e{i}") for i in range(10, 16)]
    rest, _ = sse_events(url, 12, first[-1].id)          # resume where we stopped
    got = [(e.id, e.data) for e in first + rest]
    expected = [(ids[i], f"e{i}") for i in range(16)]
    assert got == expected, describe_mismatch(got, expected)


def test_after_and_lastEventId_params_resume_like_the_header(gateway):
    gw = gateway(workers=2)
    ids = [gw.publish("r", f"r{i}") for i in range(10)]
    results = {}
    for how, kwargs in {"header": {"last_event_id": ids[2]},
                        "after": {"query": f"after={ids[2]}"},
                        "lastEventId": {"query": f"lastEventId={ids[2]}"}}.items():
        with gw.stream("r", **kwargs) as s:
            assert isinstance(s.next_item(5), SSERetry)
            results[how] = [(e.id, e.data) for e in s.read_events(7, timeout=5)]
            s.assert_quiet(0.2)
    expected = [(ids[i], f"r{i}") for i in range(3, 10)]
    assert results == {"header": expected, "after": expected, "lastEventId": expected}
