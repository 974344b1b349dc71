"""openapi.yaml against the real binary (issue 14, item 5).

* the spec is a valid OpenAPI 3.1 document (schemathesis's own validation, and every component
  schema is a valid JSON Schema 2020-12);
* README's interface routes are all in the spec, and every spec path answers something other
  than 404 on the real server (both ways);
* schemathesis (property-based, deterministic seed, bounded examples) against both listeners:
  no 5xx, documented status codes, content types, response schemas and response headers;
  a second gateway with --publish-token exercises the 401 paths;
* the streaming endpoints, which schemathesis cannot read, by hand: SSE frames and WebSocket
  messages of real streams validate against the frame schemas of the spec;
* afterwards both gateways are alive and /healthz answers 200.
"""
from __future__ import annotations

import asyncio
import json
import os
import re
import sys
import time
from pathlib import Path

import jsonschema
import jwt  # PyJWT
import pytest
import requests
import websockets
import yaml
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis.errors import Unsatisfiable

import schemathesis
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (content_type_conformance, response_headers_conformance,
                                               response_schema_conformance, status_code_conformance)

from rgtest import (REPO, SSEComment, SSEEvent, SSERetry, SSEStream, start_shared_gateway, wait_until)

SPEC_PATH = REPO / "openapi.yaml"
README = REPO / "README.md"
TOKEN = "oa-s3cret"
JWT_SECRET = "oa-jwt-secret-" + "k" * 32
SEED = 20261202
# per operation and generation mode; RINGGATE_OPENAPI_EXAMPLES=500 for a longer hunt
EXAMPLES = int(os.environ.get("RINGGATE_OPENAPI_EXAMPLES", "60"))
SUB_URL_DOC = "http://localhost:8080"
PUB_URL_DOC = "http://127.0.0.1:8081"
# Not fuzzed: they never end (SSE) or switch protocols (WebSocket); tested by hand below.
STREAMING = {("GET", "/v1/slots/{slot}/stream"), ("GET", "/v1/slots/{slot}/ws"), ("GET", "/v1/status/stream"),
             ("GET", "/v1/stream"), ("GET", "/v1/ws")}
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance, response_headers_conformance]
STATS: dict[str, int] = {}


@schemathesis.serializer("application/x-ndjson")
def _ndjson(ctx, value):
    """The spec describes an NDJSON body as an array of lines: one JSON text per item."""
    if isinstance(value, list):
        return "".join(json.dumps(v) + "\n" for v in value).encode()
    return json.dumps(value).encode()


# ----------------------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def spec() -> dict:
    return yaml.safe_load(SPEC_PATH.read_text())


@pytest.fixture(scope="module")
def gw(ringgate_bin, tmp_path_factory):
    g = start_shared_gateway(ringgate_bin, tmp_path_factory, "openapi",
                             "--heartbeat", "1s", "--max-lifetime", "4s")
    try:
        for i in range(3):
            g.publish("news", f"n{i}")
        yield g
    finally:
        g.close()


@pytest.fixture(scope="module")
def gw_token(ringgate_bin, tmp_path_factory):
    g = start_shared_gateway(ringgate_bin, tmp_path_factory, "openapi-token", "--publish-token", TOKEN,
                             "--cors-origins", "https://app.example", workers=1)
    try:
        yield g
    finally:
        g.close()


@pytest.fixture(scope="module")
def gw_jwt(ringgate_bin, tmp_path_factory):
    secret = tmp_path_factory.mktemp("openapi-jwt") / "hs256.secret"
    secret.write_text(JWT_SECRET)
    g = start_shared_gateway(ringgate_bin, tmp_path_factory, "openapi-jwt", "--publish-auth", "jwt",
                             "--jwt-hs256-secret-file", str(secret), workers=1)
    try:
        yield g
    finally:
        g.close()


def component_validator(spec: dict, name: str) -> jsonschema.Draft202012Validator:
    """A validator for components/schemas/NAME, its $refs resolved inside the spec."""
    root = dict(spec)
    root["$ref"] = f"#/components/schemas/{name}"
    return jsonschema.Draft202012Validator(root)


def operations(spec: dict):
    for path, item in spec["paths"].items():
        for method, op in item.items():
            if method in ("get", "post", "options", "head", "put", "delete", "patch"):
                yield method.upper(), path, op


def listener_urls(spec: dict, path: str, method: str, gw) -> list[str]:
    op = spec["paths"][path][method.lower()]
    urls = [s["url"] for s in op.get("servers", spec["servers"])]
    return [{SUB_URL_DOC: gw.sub_url, PUB_URL_DOC: gw.pub_url}[u] for u in urls]


# ----------------------------------------------------------------------------- the document

def test_spec_is_valid(spec):
    assert spec["openapi"] == "3.1.0"
    assert [s["url"] for s in spec["servers"]] == [SUB_URL_DOC, PUB_URL_DOC]
    schema = schemathesis.openapi.from_path(SPEC_PATH)
    schema.validate()                             # the OpenAPI 3.1 meta-schema
    ops = [r.ok() for r in schema.get_all_operations()]   # every operation resolves
    assert len(ops) == len(list(operations(spec)))
    for name, s in spec["components"]["schemas"].items():
        jsonschema.Draft202012Validator.check_schema(s)
        component_validator(spec, name)           # resolvable
    for method, path, op in operations(spec):
        assert op.get("operationId"), (method, path)
        for code, resp in op["responses"].items():
            if "$ref" in resp:
                ref = resp["$ref"].rsplit("/", 1)[-1]
                assert ref in spec["components"]["responses"], ref
    # the publish operations name the publish listener
    for method, path in [("POST", "/v1/slots/{slot}/events"), ("POST", "/v1/events")]:
        assert [s["url"] for s in spec["paths"][path][method.lower()]["servers"]] == [PUB_URL_DOC]
    # examples validate against their schemas
    examples = [("HistoryPage", spec["paths"]["/v1/slots/{slot}/events"]["get"]["responses"]["200"]
                 ["content"]["application/json"]["examples"]["window"]["value"]),
                ("SlotsHistoryPage", spec["paths"]["/v1/events"]["get"]["responses"]["200"]
                 ["content"]["application/json"]["example"]),
                ("SSEResetData", spec["components"]["schemas"]["SSEResetData"]["example"]),
                ("SSECloseData", spec["components"]["schemas"]["SSECloseData"]["example"]),
                ("Error", spec["components"]["schemas"]["Error"]["example"])]
    for name, value in examples:
        component_validator(spec, name).validate(value)


def test_error_codes_match_readme(spec):
    """Every code of README's Errors table is in the ErrorCode enum."""
    text = README.read_text()
    errors = text[text.index("### Errors"):text.index("### Metrics")]
    codes = set()
    for line in errors.splitlines():
        if line.startswith("| 4") or line.startswith("| 5"):
            codes |= set(re.findall(r"`([a-z_]+)`", line.split("|")[2]))
    assert codes, "no codes parsed from README"
    assert codes <= set(spec["components"]["schemas"]["ErrorCode"]["enum"]), \
        codes - set(spec["components"]["schemas"]["ErrorCode"]["enum"])


def readme_routes() -> set[tuple[str, str]]:
    text = README.read_text()
    section = text[text.index("## Interface (v1)"):]
    section = section[:section.index("### Metrics")]
    routes = set()
    for method, path in re.findall(r"`(GET|POST|HEAD|PUT|DELETE|OPTIONS) (/[^`\s?\[]*)", section):
        routes.add((method, path))
    return routes


def test_readme_routes_are_in_spec(spec):
    routes = readme_routes()
    assert len(routes) >= 7, routes
    in_spec = {(m, p) for m, p, _ in operations(spec)}
    missing = routes - in_spec
    assert not missing, f"README routes missing from openapi.yaml: {sorted(missing)}"
    # OPTIONS (preflight) is in README without a path: every subscriber read route has one
    for path in ("/v1/slots/{slot}/events", "/v1/slots/{slot}/stream", "/v1/events", "/v1/stream", "/v1/ws",
                 "/healthz", "/readyz", "/metrics"):
        assert ("OPTIONS", path) in in_spec, path


def served_openapi(gw) -> requests.Response:
    return requests.get(gw.sub_url + "/openapi.yaml", timeout=5)


def test_every_spec_path_answers(spec, gw):
    """Each (method, path) of the spec is a route of the real server, on each of its listeners."""
    not_routed = []
    for method, path, op in operations(spec):
        concrete = path.replace("{slot}", "news")
        for base in listener_urls(spec, path, method, gw):
            headers = {"Origin": "https://app.example"} if method == "OPTIONS" else {}
            if method == "GET" and path.endswith("/stream"):
                if path == "/v1/stream":
                    concrete += "?slot=news"
                s = SSEStream(int(base.rsplit(":", 1)[1]), concrete, timeout=3)
                status = s.status
                s.close()
            else:
                data = (b'{"slot":"news","data":"x"}\n' if path == "/v1/events" else b"x") if method == "POST" else None
                status = requests.request(method, base + concrete, data=data, headers=headers, timeout=5).status_code
            if status == 404:
                not_routed.append(f"{method} {base}{concrete}")
    assert not not_routed, f"paths of openapi.yaml the server does not route: {not_routed}"


def test_openapi_yaml_is_served(gw):
    r = served_openapi(gw)
    assert r.status_code == 200 and r.headers["content-type"] == "application/yaml", (r.status_code, r.headers)
    assert yaml.safe_load(r.text) == yaml.safe_load(SPEC_PATH.read_text())


# ----------------------------------------------------------------------------- schemathesis

def fuzzable(case) -> bool:
    # "." and ".." are valid slot names, but the HTTP client removes dot segments from the path
    # (RFC 3986), so they would reach another route; the server itself accepts them.
    return (case.path_parameters or {}).get("slot") not in (".", "..")


def error_body_check(ctx, response, case):
    """Negative mode: whatever is refused is refused with a JSON error body, never a 5xx."""
    if response.status_code >= 400:
        doc = json.loads(response.content)
        assert isinstance(doc, dict) and isinstance(doc.get("error"), str) and isinstance(doc.get("detail"), str), doc
    return None


def only_401(ctx, response, case):
    if case.operation.method.upper() != "POST":
        return None           # /healthz of the ingest needs no token
    assert response.status_code == 401, f"without the token: {response.status_code} {response.content[:200]!r}"
    return None


def fuzz(gw, listener: str, *, headers: dict | None = None, extra_checks=(), modes=None,
         label: str = "", spec_path: Path = SPEC_PATH, excluded_checks=()) -> dict[str, int]:
    """Run schemathesis on every non-streaming operation of `listener` ("sub" or "pub");
    returns {operation: generated cases}."""
    schema = schemathesis.openapi.from_path(spec_path)
    base = gw.sub_url if listener == "sub" else gw.pub_url
    doc_url = SUB_URL_DOC if listener == "sub" else PUB_URL_DOC
    raw = yaml.safe_load(Path(spec_path).read_text())
    session = requests.Session()
    session.trust_env = False
    counts: dict[str, int] = {}
    for result in schema.get_all_operations():
        op = result.ok()
        key = (op.method.upper(), op.path)
        if key in STREAMING:
            continue
        servers = [s["url"] for s in raw["paths"][op.path][op.method.lower()].get("servers", raw["servers"])]
        if doc_url not in servers:
            continue
        for mode in modes or (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            checks = list(CHECKS) if mode == GenerationMode.POSITIVE else [not_a_server_error, error_body_check]
            checks = [c for c in checks if c not in excluded_checks] + list(extra_checks)
            n = [0]

            @seed(SEED)
            @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=False,
                      phases=[Phase.explicit, Phase.generate], print_blob=False,
                      suppress_health_check=list(HealthCheck))
            @given(case=op.as_strategy(generation_mode=mode).filter(fuzzable))
            def run(case):
                n[0] += 1
                response = case.call(base_url=base, session=session, headers=headers, timeout=10)
                case.validate_response(response, checks=checks, headers=headers)

            try:
                run()
            except Unsatisfiable:
                if mode == GenerationMode.POSITIVE:
                    raise
                continue          # nothing to negate: an operation without parameters or body
            name = f"{label}{listener} {op.method.upper()} {op.path} [{mode.value}]"
            counts[name] = n[0]
    if not label.startswith("broken"):
        STATS.update(counts)
    for name, n in counts.items():
        print(f"schemathesis {name}: {n} cases", file=sys.stderr)
    return counts


@pytest.mark.timeout(150)
def test_schemathesis_subscriber(gw):
    t0 = time.monotonic()
    counts = fuzz(gw, "sub")
    assert any("GET /v1/slots/{slot}/events" in k for k in counts), counts
    assert all(n > 0 for n in counts.values()), counts
    print(f"subscriber: {sum(counts.values())} cases in {time.monotonic() - t0:.1f}s", file=sys.stderr)


@pytest.mark.timeout(150)
def test_schemathesis_publish(gw):
    t0 = time.monotonic()
    counts = fuzz(gw, "pub")
    assert any("POST /v1/events" in k for k in counts) and any("POST /v1/slots/{slot}/events" in k for k in counts)
    assert all(n > 0 for n in counts.values()), counts
    print(f"publish: {sum(counts.values())} cases in {time.monotonic() - t0:.1f}s", file=sys.stderr)


@pytest.mark.timeout(150)
def test_schemathesis_publish_token(gw_token):
    t0 = time.monotonic()
    publish_ops = lambda c: {k: v for k, v in c.items() if "POST" in k}
    # without the token every publish is 401 (whatever else is wrong with it)
    c1 = publish_ops(fuzz(gw_token, "pub", extra_checks=[only_401], label="no-token "))
    # with it, as without --publish-token
    c2 = publish_ops(fuzz(gw_token, "pub", headers={"Authorization": f"Bearer {TOKEN}"},
                          modes=(GenerationMode.POSITIVE,), label="token "))
    assert c1 and c2
    # its subscriber listener has a CORS list: preflights from other origins are 403
    # (a request without Origin gets no CORS headers there, so headers are not checked)
    c3 = fuzz(gw_token, "sub", modes=(GenerationMode.POSITIVE,), label="cors-list ",
              excluded_checks=(response_headers_conformance,))
    assert c3
    r = gw_token.sub.options("/v1/slots/news/events", headers={"Origin": "https://evil.example"})
    assert r.status_code == 403 and r.json()["error"] == "origin_not_allowed", r.text
    r = gw_token.sub.options("/v1/slots/news/events", headers={"Origin": "https://app.example"})
    assert r.status_code == 204 and r.headers["access-control-allow-origin"] == "https://app.example", r.headers
    r = gw_token.pub.post("/v1/slots/news/events", content=b"x", headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 401 and r.headers.get("www-authenticate") == "Bearer", r
    print(f"token + cors list: {sum(c1.values()) + sum(c2.values()) + sum(c3.values())} cases in {time.monotonic() - t0:.1f}s", file=sys.stderr)


@pytest.mark.timeout(150)
def test_schemathesis_publish_jwt(gw_jwt):
    """--publish-auth jwt with a token that may publish to slots starting with 0 only: the
    generated publishes get 201, 400, 403 (another slot) and so on, each as the spec says."""
    t0 = time.monotonic()
    token = jwt.encode({"exp": int(time.time()) + 3600, "publish": ["0*"]}, JWT_SECRET, algorithm="HS256")
    statuses: dict[int, int] = {}

    def tally(ctx, response, case):
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        return None

    c = fuzz(gw_jwt, "pub", headers={"Authorization": f"Bearer {token}"}, modes=(GenerationMode.POSITIVE,),
             extra_checks=[tally], label="jwt ")
    assert any("POST" in k for k in c), c
    assert statuses.get(403, 0) > 0, f"no publish outside the claim was generated: {statuses}"
    assert statuses.get(201, 0) > 0, f"no publish inside the claim was generated: {statuses}"
    print(f"publish jwt: {sum(c.values())} cases, statuses {sorted(statuses.items())} in {time.monotonic() - t0:.1f}s",
          file=sys.stderr)


@pytest.mark.parametrize("path", [
    "/v1/slots/news/events?limit=2",
    "/healthz", "/readyz",
])
def test_head_matches_get(gw, path):
    """The spec says read routes answer HEAD with the head of the GET answer."""
    g = requests.get(gw.sub_url + path, timeout=5)
    h = requests.head(gw.sub_url + path, timeout=5)
    assert h.status_code == g.status_code == 200
    assert h.content == b""
    assert h.headers.get("content-type") == g.headers.get("content-type")
    assert h.headers.get("content-length") == str(len(g.content)), (h.headers, len(g.content))


# ----------------------------------------------------------------------------- streams, by hand

def sse_frame(item) -> dict:
    """An SSE item as the spec's SSEFrame object (data of control frames parsed as JSON)."""
    if isinstance(item, SSERetry):
        return {"retry": item.ms}
    if isinstance(item, SSEComment):
        return {"comment": item.text}
    assert isinstance(item, SSEEvent)
    if item.id is None:          # control frames carry no id
        return {"event": item.event, "data": json.loads(item.data)}
    return {"id": item.id, "event": item.event, "data": item.data}


def other_epoch_id(gw) -> str:
    epoch = gw.history("news", limit=1)["head"].split("-")[0]
    return ("0" if epoch[0] != "0" else "1") + epoch[1:] + "-1"


def classified_frames(s, frame, kinds: dict, seconds: float = 10) -> list[tuple[str, dict]]:
    """Every frame of stream `s` until it ends (or `seconds`), each valid against `frame` and
    matching exactly one of `kinds` (a oneOf): [(kind, frame object)]."""
    out = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        item = s.next_item(timeout=max(0.1, deadline - time.monotonic()))
        if item is None:
            break
        f = sse_frame(item)
        frame.validate(f)
        matched = [n for n, v in kinds.items() if v.is_valid(f)]
        assert len(matched) == 1, (f, matched)          # oneOf: exactly one kind
        out.append((matched[0], f))
    return out


def test_sse_frames_match_spec(spec, gw):
    frame = component_validator(spec, "SSEFrame")
    kinds = {n: component_validator(spec, n) for n in
             ("SSERetryFrame", "SSECommentFrame", "SSEEventFrame", "SSEResetFrame", "SSECloseFrame")}
    stream_op = spec["paths"]["/v1/slots/{slot}/stream"]["get"]
    # resume from another log's id: reset (epoch), then the retained events, then live ones
    s = gw.stream("news", query=f"after={other_epoch_id(gw)}")
    seen: dict[str, dict] = {}
    try:
        for k, h in stream_op["responses"]["200"]["headers"].items():
            value = s.headers.get(k.lower())
            assert value is not None, f"stream response without {k}"
            jsonschema.Draft202012Validator(dict(spec, **{"$ref": h["$ref"]}) if "$ref" in h
                                            else h["schema"]).validate(value)
        gw.publish("news", "line one\nline two", type="update")
        gw.publish("news", "")
        for kind, f in classified_frames(s, frame, kinds):
            seen.setdefault(kind, f)
    finally:
        s.close()
    # retry first, a reset for the other epoch, events, a heartbeat (1s), a close (max lifetime 4s)
    assert set(seen) == set(kinds), f"frame kinds seen: {sorted(seen)}"
    assert 1000 <= seen["SSERetryFrame"]["retry"] <= 2000
    assert seen["SSEResetFrame"]["data"]["reason"] == "epoch"
    assert seen["SSECloseFrame"]["data"]["reason"] == "max_lifetime"


def test_sse_frame_schema_catches_bad_frames(spec):
    frame = component_validator(spec, "SSEFrame")
    for bad in ({"id": "nothex-1", "event": "message", "data": "x"},
                {"event": "reset", "data": {"reason": "lapped", "oldest": None, "head": None}},  # no dropped
                {"event": "close", "data": {"reason": "bored"}},
                {"retry": "soon"}, {"comment": "other"}):
        assert not frame.is_valid(bad), bad


def test_ws_messages_match_spec(spec, gw):
    message = component_validator(spec, "WSMessage")

    async def run():
        got = []
        url = gw.sub_url.replace("http://", "ws://") + f"/v1/slots/news/ws?after={other_epoch_id(gw)}"
        async with websockets.connect(url, open_timeout=5, ping_interval=None) as ws:
            assert ws.response.status_code == 101
            hs = spec["paths"]["/v1/slots/{slot}/ws"]["get"]["responses"]["101"]["headers"]
            for name, h in hs.items():
                jsonschema.Draft202012Validator(h["schema"]).validate(ws.response.headers[name])
            gw.publish("news", "ws one")
            gw.publish("news", "typed", type="update")
            try:
                while len(got) < 200:
                    got.append(json.loads(await asyncio.wait_for(ws.recv(), 8)))
            except websockets.ConnectionClosed:
                pass
        return got

    msgs = asyncio.run(run())
    for m in msgs:
        message.validate(m)
    assert msgs[0]["event"] == "reset" and msgs[0]["reason"] == "epoch", msgs[0]
    assert any("id" in m for m in msgs)
    assert any(m.get("type") == "update" and "event" not in m for m in msgs), "a typed event is an event"
    assert msgs[-1] == {"event": "close", "reason": "max_lifetime"}, msgs[-1]


def test_sse_frames_of_several_slots_match_spec(spec, gw):
    """`GET /v1/stream?slot=news&slot=sport`: the reset of the whole stream (another log's id),
    events of both slots named by `event:` (`sport/update` for a typed one), then the close."""
    frame = component_validator(spec, "SSESlotsFrame")
    kinds = {n: component_validator(spec, n) for n in
             ("SSERetryFrame", "SSECommentFrame", "SSESlotEventFrame", "SSEResetFrame", "SSECloseFrame")}
    s = SSEStream(gw.sub_port, f"/v1/stream?slot=news&slot=sport&after={other_epoch_id(gw)}", timeout=5)
    assert s.status == 200, s.status
    try:
        gw.publish("sport", "goal", type="update")
        gw.publish("news", "two\nlines")
        frames = classified_frames(s, frame, kinds)
    finally:
        s.close()
    seen = {k for k, _ in frames}
    assert seen == set(kinds), f"frame kinds seen: {sorted(seen)}"
    resets = [f for k, f in frames if k == "SSEResetFrame"]
    assert resets[0]["data"]["reason"] == "epoch" and resets[0]["data"]["slot"] is None, resets
    names = [f["event"] for k, f in frames if k == "SSESlotEventFrame"]
    assert "sport/update" in names and "news" in names, names
    assert {n.split("/")[0] for n in names} <= {"news", "sport"}, names
    # the single-slot schema would not take `sport/update` as an event type
    assert not component_validator(spec, "SSEEventFrame").is_valid(
        next(f for k, f in frames if k == "SSESlotEventFrame" and "/" in f["event"]))


def test_ws_messages_of_several_slots_match_spec(spec, gw):
    message = component_validator(spec, "WSSlotsMessage")

    async def run():
        got = []
        url = gw.sub_url.replace("http://", "ws://") + f"/v1/ws?slot=news,sport&after={other_epoch_id(gw)}"
        async with websockets.connect(url, open_timeout=5, ping_interval=None) as ws:
            assert ws.response.status_code == 101
            gw.publish("sport", "ws goal", type="update")
            gw.publish("news", "ws news")
            try:
                while len(got) < 500:
                    got.append(json.loads(await asyncio.wait_for(ws.recv(), 8)))
            except websockets.ConnectionClosed:
                pass
        return got

    msgs = asyncio.run(run())
    for m in msgs:
        message.validate(m)
    assert msgs[0]["event"] == "reset" and msgs[0]["reason"] == "epoch" and msgs[0]["slot"] is None, msgs[0]
    events = [m for m in msgs if "id" in m]
    assert {m["slot"] for m in events} == {"news", "sport"}, events
    assert any(m["slot"] == "sport" and m["type"] == "update" and m["data"] == "ws goal" for m in events)
    assert not component_validator(spec, "WSMessage").is_valid(events[0]), "one slot's messages have no slot member"
    assert msgs[-1] == {"event": "close", "reason": "max_lifetime"}, msgs[-1]


# ----------------------------------------------------------------------------- afterwards

def _break_status(spec):
    get = spec["paths"]["/v1/slots/{slot}/events"]["get"]
    get["responses"]["201"] = get["responses"].pop("200")


def _break_header(spec):
    spec["paths"]["/readyz"]["get"]["responses"]["200"]["headers"]["X-Not-Sent"] = \
        {"required": True, "schema": {"type": "string"}}


def _break_schema(spec):
    spec["components"]["schemas"]["HealthStatus"]["properties"]["status"] = {"const": "fine"}


def _break_content_type(spec):
    content = spec["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
    content["application/json"] = content.pop("text/plain")


@pytest.mark.parametrize("breakage, expected", [
    (_break_status, "Undocumented status code"),
    (_break_header, "Missing required response headers"),
    (_break_schema, "Response violates schema"),
    (_break_content_type, "Undocumented Content-Type"),
], ids=["status", "header", "schema", "content-type"])
def test_a_broken_spec_fails(gw, tmp_path, breakage, expected):
    """The schemathesis run can fail: each kind of wrong spec is caught against the real server."""
    broken = yaml.safe_load(SPEC_PATH.read_text())
    breakage(broken)
    p = tmp_path / "broken.yaml"
    p.write_text(yaml.safe_dump(broken))
    with pytest.raises(BaseException) as e:       # schemathesis raises a FailureGroup (BaseExceptionGroup)
        fuzz(gw, "sub", modes=(GenerationMode.POSITIVE,), spec_path=p, label="broken ")
    text = "\n".join([str(e.value)] + [str(x) for x in getattr(e.value, "exceptions", ())])
    assert expected in text, text[:2000]


def test_gateways_still_alive(gw, gw_token):
    for g in (gw, gw_token):
        assert g.alive(), g.stderr_tail()
        assert g.sub.get("/healthz").status_code == 200
        assert g.pub.get("/healthz").status_code == 200
        assert len(g.workers()) >= g.nworkers
        m = g.metrics()
        restarts = {(role, reason): m.get("ringgate_process_restarts_total", role=role, reason=reason)
                    for role in ("worker", "ingest") for reason in ("crash", "watchdog")}
        assert all(v == 0 for v in restarts.values()), f"children restarted (a crash?): {restarts}"
    print(f"schemathesis total: {sum(STATS.values())} cases over {len(STATS)} operation runs", file=sys.stderr)
