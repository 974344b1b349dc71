"""Publisher authorization by JWT (`--publish-auth jwt`) against the real binary: a token's
`publish` claim names the slots it may publish to (exact names and `prefix.*`), single events
and NDJSON batches (a batch is refused whole when one line's slot is not allowed), the static
`--publish-token` beside it, expiry of a token the ingest remembers, a refusal answered from the
head before the body is sent, and the metrics. Tokens minted by PyJWT."""
from __future__ import annotations

import json
import socket
import time

import jwt  # PyJWT
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from rgtest import check_error

SECRET = "rg-publish-secret-" + "p4ss" * 8           # 50 bytes
SERVICE_TOKEN = "service-static-token"


def publisher(publish, exp_in: float = 300, **extra) -> str:
    return jwt.encode({"sub": "backend", "exp": int(time.time() + exp_in), "iat": int(time.time()),
                       "publish": publish, **extra}, SECRET, algorithm="HS256")


@pytest.fixture
def secret_file(tmp_path):
    p = tmp_path / "hs256.secret"
    p.write_text(SECRET + "\n")
    return p


def slot_ids(gw, slot: str) -> list[str]:
    return [e["id"] for e in gw.history(slot)["events"]]


def test_publish_claim_grants_slots_single_and_batch(gateway, secret_file):
    gw = gateway("--publish-auth", "jwt", "--jwt-hs256-secret-file", str(secret_file),
                 "--publish-token", SERVICE_TOKEN, workers=1)
    tok = publisher(["news.*", "alerts"])
    # A single publish to a slot the claim names, by prefix and exactly.
    a = gw.publish("news.a", "one", token=tok)
    b = gw.publish("alerts", "two", token=tok)
    # Another slot: 403 naming it, nothing appended.
    r = gw.post_event("sport", "no", token=tok)
    doc = check_error(r.status_code, r.content, 403, "forbidden", "slot outside the publish claim")
    assert "sport" in doc["detail"], doc
    assert 'error="insufficient_scope"' in r.headers["www-authenticate"], r.headers
    r = gw.post_event("news", "no", token=tok)            # news.* does not match news itself
    check_error(r.status_code, r.content, 403, "forbidden", "news is not news.*")
    # A reader's token (slots, no publish claim) publishes nowhere.
    reader = jwt.encode({"exp": int(time.time() + 300), "slots": ["*"]}, SECRET, algorithm="HS256")
    r = gw.post_event("news.a", "no", token=reader)
    check_error(r.status_code, r.content, 403, "forbidden", "subscriber token")
    # A batch of allowed slots is appended; one line outside the claim refuses the whole batch.
    r = gw.publish_batch([{"slot": "news.b", "data": "three"}, {"slot": "alerts", "data": "four"}], token=tok)
    assert r.status_code == 201, r.text
    batch_ids = r.json()["ids"]
    r = gw.publish_batch([{"slot": "news.c", "data": "x"}, {"slot": "sport", "data": "y"}], token=tok)
    doc = check_error(r.status_code, r.content, 403, "forbidden", "batch with a forbidden line")
    assert "line 2" in doc["detail"] and "sport" in doc["detail"] and "nothing was appended" in doc["detail"], doc
    assert gw.history("news.c")["events"] == [] and gw.history("sport")["events"] == []
    # The static token still publishes anywhere.
    s = gw.publish("sport", "service", token=SERVICE_TOKEN)
    r = gw.publish_batch([{"slot": "sport", "data": "svc-batch"}], token=SERVICE_TOKEN)
    assert r.status_code == 201, r.text
    assert slot_ids(gw, "news.a") == [a]
    assert slot_ids(gw, "alerts") == [b, batch_ids[1]]
    assert slot_ids(gw, "news.b") == [batch_ids[0]]
    assert slot_ids(gw, "sport") == [s, r.json()["ids"][0]]
    # No token, a wrong one, a badly signed JWT, an expired one (default 30 s leeway): 401.
    r = gw.post_event("news.a", "no")
    check_error(r.status_code, r.content, 401, "unauthorized", "no token")
    assert "error=" not in r.headers["www-authenticate"], r.headers
    for bad in ["wrong-static-token", "a.b.c",
                jwt.encode({"exp": int(time.time() + 300), "publish": ["*"]}, "another-secret-that-is-long-enough-32b",
                           algorithm="HS256")]:
        r = gw.post_event("news.a", "no", token=bad)
        check_error(r.status_code, r.content, 401, "unauthorized", f"bad token {bad[:16]}")
        assert 'error="invalid_token"' in r.headers["www-authenticate"], r.headers
    r = gw.post_event("news.a", "no", token=publisher(["*"], exp_in=-120))
    doc = check_error(r.status_code, r.content, 401, "unauthorized", "expired")
    assert "expired" in doc["detail"], doc
    r = gw.publish_batch([{"slot": "news.a", "data": "no"}], token=publisher(["*"], exp_in=-120))
    check_error(r.status_code, r.content, 401, "unauthorized", "expired batch")
    assert slot_ids(gw, "news.a") == [a], "no refused publish was appended"
    m = gw.metrics()
    assert m.value("ringgate_publish_auth_failures_total", reason="missing") == 1
    assert m.value("ringgate_publish_auth_failures_total", reason="invalid") == 3
    assert m.value("ringgate_publish_auth_failures_total", reason="expired") == 2
    assert m.value("ringgate_publish_auth_failures_total", reason="forbidden") == 4
    assert m.value("ringgate_publish_rejected_total") == 10
    assert m.value("ringgate_auth_failures_total", reason="forbidden") == 0, "subscriber counters are apart"


def test_remembered_token_still_expires_on_a_keep_alive_connection(gateway, secret_file):
    gw = gateway("--publish-auth", "jwt", "--jwt-hs256-secret-file", str(secret_file), "--jwt-leeway", "0", workers=1)
    exp = int(time.time()) + 2
    tok = jwt.encode({"exp": exp, "publish": ["t"]}, SECRET, algorithm="HS256")
    with socket.create_connection(("127.0.0.1", gw.pub_port), timeout=5) as c:
        f = c.makefile("rb")

        def post(data: str) -> tuple[int, dict]:
            c.sendall(f"POST /v1/slots/t/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {tok}\r\n"
                      f"Content-Length: {len(data)}\r\n\r\n{data}".encode())
            status = int(f.readline().split()[1])
            length = 0
            while (line := f.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode().partition(":")
                if name.lower() == "content-length":
                    length = int(value)
            return status, json.loads(f.read(length))

        ok = [post(f"e{i}") for i in range(3)]                   # the same token, one connection
        assert [s for s, _ in ok] == [201, 201, 201], ok
        while time.time() < exp + 0.3:
            time.sleep(0.1)
        status, doc = post("late")
        assert status == 401 and doc["error"] == "unauthorized" and "expired" in doc["detail"], (status, doc)
    assert [e["data"] for e in gw.history("t")["events"]] == ["e0", "e1", "e2"]
    assert gw.metrics().value("ringgate_publish_auth_failures_total", reason="expired") == 1


def test_forbidden_upload_is_refused_from_its_head(gateway, secret_file):
    """The slot is in the path: a 403 comes back before any of the body is sent."""
    gw = gateway("--publish-auth", "jwt", "--jwt-hs256-secret-file", str(secret_file), workers=1)
    tok = publisher(["allowed"])
    with socket.create_connection(("127.0.0.1", gw.pub_port), timeout=5) as c:
        c.sendall(f"POST /v1/slots/elsewhere/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {tok}\r\n"
                  f"Content-Length: 100000\r\n\r\n".encode())
        head = c.recv(4096).decode()
        assert head.startswith("HTTP/1.1 403"), head
        assert '"error":"forbidden"' in head and "elsewhere" in head, head
    assert gw.history("elsewhere")["events"] == []


def test_es256_publisher_key_and_subscribe_auth_off(gateway, tmp_path):
    """The verifier is the same as subscribers' (PEM, JWKS, algorithm allow-list); with
    --subscribe-auth none readers need no token while publishers do."""
    key = ec.generate_private_key(ec.SECP256R1())
    pem = tmp_path / "ec.pub.pem"
    pem.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo))
    gw = gateway("--publish-auth", "jwt", "--jwt-public-key-file", str(pem), workers=1)
    tok = jwt.encode({"exp": int(time.time() + 300), "publish": ["*"]}, key, algorithm="ES256")
    eid = gw.publish("any.slot", "signed", token=tok)
    assert slot_ids(gw, "any.slot") == [eid], "readers need no token with --subscribe-auth none"
    hs = jwt.encode({"exp": int(time.time() + 300), "publish": ["*"]}, SECRET, algorithm="HS256")
    r = gw.post_event("any.slot", "hs", token=hs)
    check_error(r.status_code, r.content, 401, "unauthorized", "HS256 with only an ES256 key")
