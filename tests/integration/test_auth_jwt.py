"""Subscriber authorization (`--subscribe-auth jwt`) against the real binary: tokens minted by
PyJWT, keys made here with `cryptography`. SSE, WebSocket and history; the Authorization
header, the cookie and `?token=`; expiry mid-stream and the resume after it; the metrics; the
start-up checks (exit 64) and that key bytes never reach argv or the logs."""
from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import os
import subprocess
import time

import httpx
import jwt  # PyJWT
import pytest
import websockets
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

import rgtest
from rgtest import SSEStream, check_error, expect_ws_close, proc_cmdline, wait_until

SECRET = "rg-test-secret-" + "s3cr3t" * 6          # 51 bytes; never expected in argv or logs


def now() -> int:
    return int(time.time())


def claims(slots, exp_in: float = 300, **extra) -> dict:
    return {"sub": "tester", "exp": now() + exp_in, "iat": now(), "slots": slots, **extra}


def hs(slots, exp_in: float = 300, **extra) -> str:
    return jwt.encode(claims(slots, exp_in, **extra), SECRET, algorithm="HS256")


@pytest.fixture
def secret_file(tmp_path):
    p = tmp_path / "hs256.secret"
    p.write_text(SECRET + "\n")
    return p


@pytest.fixture(scope="module")
def rsa_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def ec_key():
    return ec.generate_private_key(ec.SECP256R1())


def pem_public(key) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def stream_status(gw, path: str, headers: dict | None = None) -> tuple[int, dict, bytes]:
    s = SSEStream(gw.sub_port, path, headers or {})
    try:
        return s.status, s.headers, getattr(s, "body", b"")
    finally:
        s.close()


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def ws_url(gw, slot: str, query: str = "") -> str:
    return f"ws://127.0.0.1:{gw.sub_port}/v1/slots/{slot}/ws" + (f"?{query}" if query else "")


# ----------------------------------------------------------------------------- HS256: the paths

def test_sse_and_history_401_403_200_and_metrics(gateway, secret_file):
    gw = gateway("--subscribe-auth", "jwt", "--jwt-hs256-secret-file", str(secret_file))
    path = "/v1/slots/news.a/stream"
    # No token: 401 with a Bearer challenge and the JSON error body.
    status, headers, body = stream_status(gw, path)
    doc = check_error(status, body, 401, "unauthorized", "no token")
    assert headers["www-authenticate"].startswith("Bearer"), headers
    assert "error=" not in headers["www-authenticate"], headers      # RFC 6750: no code without a token
    assert "token" in doc["detail"]
    # Garbage, a wrong secret, alg none: invalid.
    for bad in ["not-a-jwt", "a.b.c",
                jwt.encode(claims(["*"]), "another-secret-that-is-long-enough-32b", algorithm="HS256"),
                jwt.encode(claims(["*"]), None, algorithm="none")]:
        status, headers, body = stream_status(gw, path, bearer(bad))
        check_error(status, body, 401, "unauthorized", f"bad token {bad[:20]}")
        assert 'error="invalid_token"' in headers["www-authenticate"], headers
    # Expired (past the 30s default leeway).
    status, headers, body = stream_status(gw, path, bearer(hs(["*"], exp_in=-120)))
    doc = check_error(status, body, 401, "unauthorized", "expired")
    assert "expired" in doc["detail"] and 'error_description="expired"' in headers["www-authenticate"]
    # No exp at all: invalid.
    status, _, body = stream_status(gw, path, bearer(jwt.encode({"slots": ["*"]}, SECRET, algorithm="HS256")))
    check_error(status, body, 401, "unauthorized", "no exp")
    # Valid but another slot: 403.
    status, headers, body = stream_status(gw, path, bearer(hs(["chat", "sport.*"])))
    doc = check_error(status, body, 403, "forbidden", "slot not allowed")
    assert "news.a" in doc["detail"]
    # Valid: the stream is served and gets what is published.
    with SSEStream(gw.sub_port, path, bearer(hs(["news.*"]))) as s:
        assert s.status == 200, s.body if hasattr(s, "body") else s.status
        time.sleep(0.2)
        eid = gw.publish("news.a", "hello")
        ev = s.next_event(5)
        assert ev.id == eid and ev.data == "hello"
    # History: the same checks.
    r = gw.sub.get("/v1/slots/news.a/events")
    check_error(r.status_code, r.content, 401, "unauthorized", "history without a token")
    r = gw.sub.get("/v1/slots/news.a/events", headers=bearer(hs(["chat"])))
    check_error(r.status_code, r.content, 403, "forbidden", "history of another slot")
    r = gw.sub.get("/v1/slots/news.a/events", headers=bearer(hs(["*"])))
    assert r.status_code == 200, r.text
    assert [e["id"] for e in r.json()["events"]] == [eid]
    # Not behind auth: health, readiness, metrics, preflights (which allow Authorization).
    assert gw.sub.get("/healthz").status_code == 200
    assert gw.sub.get("/readyz").status_code == 200
    r = gw.sub.options(path, headers={"Origin": "https://page.example", "Access-Control-Request-Method": "GET",
                                      "Access-Control-Request-Headers": "authorization"})
    assert r.status_code == 204, r.text
    assert "authorization" in r.headers["access-control-allow-headers"].lower()
    m = gw.metrics()
    assert m.value("ringgate_auth_failures_total", reason="missing") == 2        # stream + history
    assert m.value("ringgate_auth_failures_total", reason="invalid") == 5
    assert m.value("ringgate_auth_failures_total", reason="expired") == 1
    assert m.value("ringgate_auth_failures_total", reason="forbidden") == 2
    assert m.value("ringgate_disconnects_total", reason="token_expired") == 0


def test_cookie_and_query_token(gateway, secret_file):
    gw = gateway("--subscribe-auth", "jwt", "--jwt-hs256-secret-file", str(secret_file), "--jwt-cookie", "rg_token")
    token = hs(["c"])
    for headers, query in [({"Cookie": f"theme=dark; rg_token={token}"}, ""), ({}, f"?token={token}")]:
        with SSEStream(gw.sub_port, "/v1/slots/c/stream" + query, headers) as s:
            assert s.status == 200, s.body
            time.sleep(0.2)
            eid = gw.publish("c", "x")
            assert s.next_event(5).id == eid
    # Another cookie name does not count; a bad ?token= is invalid, not missing.
    status, _, body = stream_status(gw, "/v1/slots/c/stream", {"Cookie": f"other={token}"})
    check_error(status, body, 401, "unauthorized", "wrong cookie")
    r = gw.sub.get("/v1/slots/c/events", params={"token": "x.y.z"})
    check_error(r.status_code, r.content, 401, "unauthorized", "bad query token")
    r = gw.sub.get("/v1/slots/c/events", params={"token": token})
    assert r.status_code == 200, r.text
    m = gw.metrics()
    assert m.value("ringgate_auth_failures_total", reason="missing") == 1
    assert m.value("ringgate_auth_failures_total", reason="invalid") == 1


def test_websocket_bearer_header(gateway, secret_file):
    gw = gateway("--subscribe-auth", "jwt", "--jwt-hs256-secret-file", str(secret_file))

    async def scenario():
        with pytest.raises(websockets.InvalidStatus) as refused:
            async with websockets.connect(ws_url(gw, "w")):
                pass
        assert refused.value.response.status_code == 401
        with pytest.raises(websockets.InvalidStatus) as refused:
            async with websockets.connect(ws_url(gw, "w"), additional_headers=bearer(hs(["other"]))):
                pass
        assert refused.value.response.status_code == 403
        async with websockets.connect(ws_url(gw, "w"), additional_headers=bearer(hs(["w"]))) as ws:
            await asyncio.sleep(0.2)
            eid = gw.publish("w", "hi")
            msg = json.loads(await asyncio.wait_for(ws.recv(), 5))
            assert msg["id"] == eid and msg["data"] == "hi"

    asyncio.run(scenario())
    m = gw.metrics()
    assert m.value("ringgate_auth_failures_total", reason="missing") == 1
    assert m.value("ringgate_auth_failures_total", reason="forbidden") == 1


# ----------------------------------------------------------------------------- RS256 / ES256 / JWKS

def test_pem_keys_and_no_algorithm_confusion(gateway, tmp_path, rsa_key, ec_key):
    rsa_pem = tmp_path / "rsa.pub.pem"
    rsa_pem.write_bytes(pem_public(rsa_key))
    gw = gateway("--subscribe-auth", "jwt", "--jwt-public-key-file", str(rsa_pem))
    ok = jwt.encode(claims(["r"]), rsa_key, algorithm="RS256")
    r = gw.sub.get("/v1/slots/r/events", headers=bearer(ok))
    assert r.status_code == 200, r.text
    # The classic confusion: HS256 "signed" with the public key's PEM as the HMAC secret
    # (PyJWT refuses to make one, so it is made by hand).
    def b64(b: bytes) -> str:
        return base64.urlsafe_b64encode(b).rstrip(b"=").decode()
    signing_input = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode()) + "." + b64(json.dumps(claims(["*"])).encode())
    sig = hmac.new(pem_public(rsa_key), signing_input.encode(), hashlib.sha256).digest()
    forged = signing_input + "." + b64(sig)
    r = gw.sub.get("/v1/slots/r/events", headers=bearer(forged))
    doc = check_error(r.status_code, r.content, 401, "unauthorized", "HS256 with the RSA public key as secret")
    assert "HS256" in doc["detail"]
    # An ES256 token is not verifiable by an RSA key.
    r = gw.sub.get("/v1/slots/r/events", headers=bearer(jwt.encode(claims(["r"]), ec_key, algorithm="ES256")))
    check_error(r.status_code, r.content, 401, "unauthorized", "ES256 token, RSA key")
    gw.close()

    ec_pem = tmp_path / "ec.pub.pem"
    ec_pem.write_bytes(pem_public(ec_key))
    gw = gateway("--subscribe-auth", "jwt", "--jwt-public-key-file", str(ec_pem))
    r = gw.sub.get("/v1/slots/e/events", headers=bearer(jwt.encode(claims(["e"]), ec_key, algorithm="ES256")))
    assert r.status_code == 200, r.text
    r = gw.sub.get("/v1/slots/e/events", headers=bearer(ok))
    check_error(r.status_code, r.content, 401, "unauthorized", "RS256 token, EC key")


def test_jwks_kid_audience_issuer(gateway, tmp_path, rsa_key, ec_key):
    rsa_jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(rsa_key.public_key()))
    ec_jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(ec_key.public_key()))
    rsa_jwk.update(kid="r1", alg="RS256", use="sig")
    ec_jwk.update(kid="e1")
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [rsa_jwk, ec_jwk]}))
    gw = gateway("--subscribe-auth", "jwt", "--jwks-file", str(jwks), "--jwt-algorithms", "RS256,ES256",
                 "--jwt-audience", "ringgate", "--jwt-issuer", "https://auth.test")
    good = dict(aud="ringgate", iss="https://auth.test")

    def get(token):
        return gw.sub.get("/v1/slots/k/events", headers=bearer(token))

    assert get(jwt.encode(claims(["k"], **good), rsa_key, algorithm="RS256", headers={"kid": "r1"})).status_code == 200
    assert get(jwt.encode(claims(["k"], **good), ec_key, algorithm="ES256", headers={"kid": "e1"})).status_code == 200
    assert get(jwt.encode(claims(["k"], aud=["x", "ringgate"], iss="https://auth.test"), ec_key,
                          algorithm="ES256")).status_code == 200
    for token, what in [
        (jwt.encode(claims(["k"], **good), ec_key, algorithm="ES256", headers={"kid": "r1"}), "kid of the RSA key"),
        (jwt.encode(claims(["k"], **good), ec_key, algorithm="ES256", headers={"kid": "nope"}), "unknown kid"),
        (jwt.encode(claims(["k"], aud="other", iss="https://auth.test"), ec_key, algorithm="ES256"), "audience"),
        (jwt.encode(claims(["k"], aud="ringgate", iss="https://evil.test"), ec_key, algorithm="ES256"), "issuer"),
        (jwt.encode(claims(["k"], aud="ringgate"), ec_key, algorithm="ES256"), "no issuer"),
        (jwt.encode(claims(["k"], **good, nbf=now() + 600), ec_key, algorithm="ES256"), "nbf in the future"),
    ]:
        r = get(token)
        check_error(r.status_code, r.content, 401, "unauthorized", what)


# ----------------------------------------------------------------------------- expiry

def test_expiry_mid_stream_then_resume_exactly_once(gateway, secret_file):
    gw = gateway("--subscribe-auth", "jwt", "--jwt-hs256-secret-file", str(secret_file), "--jwt-leeway", "0")
    exp = time.time() + 2
    token = jwt.encode({"exp": int(exp) + 1, "slots": ["x"]}, SECRET, algorithm="HS256")
    exp = int(exp) + 1
    got: list[str] = []
    published: list[str] = []
    with SSEStream(gw.sub_port, "/v1/slots/x/stream", bearer(token)) as s:
        assert s.status == 200
        time.sleep(0.2)
        published += [gw.publish("x", f"a{i}") for i in range(5)]
        got += [e.id for e in s.read_events(5, 5)]
        close = s.next_event(10)
        closed_at = time.time()
        assert close is not None and close.event == "close", close
        assert close.json() == {"reason": "token_expired"}
        assert s.next_event(2) is None            # and the server ends the stream
    assert exp - 0.1 <= closed_at <= exp + 1.2, (closed_at - exp)
    published += [gw.publish("x", f"b{i}") for i in range(5)]
    # The old token no longer admits; a fresh one resumes after the last id.
    status, _, body = stream_status(gw, "/v1/slots/x/stream", bearer(token))
    check_error(status, body, 401, "unauthorized", "the expired token")
    with SSEStream(gw.sub_port, "/v1/slots/x/stream", {**bearer(hs(["x"])), "Last-Event-ID": got[-1]}) as s:
        assert s.status == 200
        got += [e.id for e in s.read_events(5, 5)]
        time.sleep(0.2)
        published.append(gw.publish("x", "c0"))
        got.append(s.next_event(5).id)
    assert got == published and len(set(got)) == 11
    m = gw.metrics()
    assert m.value("ringgate_disconnects_total", reason="token_expired") == 1
    assert m.value("ringgate_auth_failures_total", reason="expired") == 1


def test_websocket_expiry_close_code_4001(gateway, secret_file):
    gw = gateway("--subscribe-auth", "jwt", "--jwt-hs256-secret-file", str(secret_file), "--jwt-leeway", "0")
    token = jwt.encode({"exp": now() + 2, "slots": ["w"]}, SECRET, algorithm="HS256")

    async def scenario():
        async with websockets.connect(ws_url(gw, "w"), additional_headers=bearer(token)) as ws:
            await asyncio.sleep(0.2)
            eid = gw.publish("w", "one")
            assert json.loads(await asyncio.wait_for(ws.recv(), 5))["id"] == eid
            await expect_ws_close(ws, "token_expired", 4001, timeout=5)

    asyncio.run(scenario())
    assert gw.metrics().value("ringgate_disconnects_total", reason="token_expired") == 1


# ----------------------------------------------------------------------------- start-up and secrecy

def run_serve(ringgate_bin, *flags: str, env: dict | None = None) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith("RINGGATE_")}
    base.update(env or {})
    return subprocess.run([str(ringgate_bin), "serve", "--ephemeral", "--listen", "127.0.0.1:0",
                           "--publish-listen", "127.0.0.1:0", *flags],
                          capture_output=True, timeout=30, env=base)


def test_bad_auth_configuration_exits_64(ringgate_bin, tmp_path, rsa_key):
    short = tmp_path / "short.secret"
    short.write_text("tiny\n")
    priv = tmp_path / "rsa.key.pem"
    priv.write_bytes(rsa_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    garbage = tmp_path / "garbage.json"
    garbage.write_text("{not json")
    cases = [
        (["--subscribe-auth", "jwt"], "needs a key"),
        (["--subscribe-auth", "jwt", "--jwt-hs256-secret-file", str(tmp_path / "missing")], "cannot open"),
        (["--subscribe-auth", "jwt", "--jwt-hs256-secret-file", str(short)], "at least 32"),
        (["--subscribe-auth", "jwt", "--jwt-public-key-file", str(priv)], "private key"),
        (["--subscribe-auth", "jwt", "--jwks-file", str(garbage)], "not a JWKS"),
        (["--subscribe-auth", "jwt", "--jwt-public-key-file", str(short)], "not a PEM public key"),
        (["--subscribe-auth", "bogus"], "expected none or jwt"),
        (["--jwt-hs256-secret-file", str(short)], "neither --subscribe-auth nor --publish-auth is jwt"),
        (["--publish-auth", "jwt"], "needs a key"),
        (["--publish-auth", "jwt", "--jwt-hs256-secret-file", str(short)], "at least 32"),
        (["--publish-auth", "none"], "expected token or jwt"),
    ]
    for flags, message in cases:
        p = run_serve(ringgate_bin, *flags)
        err = p.stderr.decode()
        assert p.returncode == 64, (flags, p.returncode, err)
        assert message in err, (flags, err)
        assert "BEGIN PRIVATE KEY" not in err and "tiny" not in err.replace(str(short), "")
    p = run_serve(ringgate_bin, "--subscribe-auth", "jwt", "--jwt-algorithms", "HS256,none",
                  "--jwt-hs256-secret-file", str(priv))
    assert p.returncode == 64 and "none is never allowed" in p.stderr.decode(), p.stderr
    # The environment works like the flags.
    p = run_serve(ringgate_bin, env={"RINGGATE_SUBSCRIBE_AUTH": "jwt"})
    assert p.returncode == 64 and "needs a key" in p.stderr.decode(), p.stderr


def test_check_config_shows_paths_not_keys(ringgate_bin, secret_file):
    p = run_serve(ringgate_bin, "--check-config", "--subscribe-auth", "jwt", "--jwt-audience", "ringgate",
                  env={"RINGGATE_JWT_HS256_SECRET_FILE": str(secret_file), "RINGGATE_JWT_COOKIE": "rg"})
    out = p.stdout.decode()
    assert p.returncode == 0, p.stderr
    assert "--subscribe-auth jwt" in out and f"--jwt-hs256-secret-file {secret_file}" in out
    assert "--jwt-audience ringgate" in out and "--jwt-cookie rg" in out and "--jwt-leeway 30000ms" in out
    assert SECRET not in out and SECRET not in p.stderr.decode()


def test_key_bytes_absent_from_argv_and_logs(gateway, secret_file, tmp_path, ec_key):
    gw = gateway("--subscribe-auth", "jwt", "--jwt-hs256-secret-file", str(secret_file),
                 "--jwt-public-key-file", str(_write(tmp_path / "ec.pem", pem_public(ec_key))))
    r = gw.sub.get("/v1/slots/s/events", headers=bearer("garbage"))
    assert r.status_code == 401
    assert gw.sub.get("/v1/slots/s/events", headers=bearer(hs(["s"]))).status_code == 200
    pem_body = pem_public(ec_key).decode().splitlines()[1]
    pids = [gw.pid] + [c.pid for c in gw.children()]
    assert len(pids) >= 4            # supervisor, ingest, 2 workers
    for pid in pids:
        cmdline = " ".join(proc_cmdline(pid))
        assert SECRET not in cmdline and pem_body not in cmdline, cmdline
        assert str(secret_file) in cmdline or pid == gw.pid
        environ = open(f"/proc/{pid}/environ", "rb").read().decode("utf-8", "replace")
        assert SECRET not in environ
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert SECRET not in ps and pem_body not in ps
    gw.close()
    log = gw.stderr_path.read_text()
    assert SECRET not in log and pem_body not in log


def _write(path, data: bytes):
    path.write_bytes(data)
    return path


def test_auth_off_is_unchanged(gateway, secret_file):
    gw = gateway()
    with gw.stream("open") as s:
        time.sleep(0.2)
        eid = gw.publish("open", "free")
        assert s.next_event(5).id == eid
    assert gw.history("open")["events"][0]["id"] == eid
    # A token is ignored when auth is off, even a bad one.
    assert gw.sub.get("/v1/slots/open/events", headers=bearer("garbage")).status_code == 200
    m = gw.metrics()
    assert m.value("ringgate_auth_failures_total", reason="missing") == 0
