"""Secured mode on both backend pairs: every endpoint × every kind of bad or foreign credential."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import time
from pathlib import Path
from typing import Any

import aiohttp
import jwt
import pytest
from aiohttp.test_utils import TestClient
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from gateway.auth import hash_api_key
from tests.helpers import error_code

ALICE_KEY, BOB_KEY = "gw_alice-secret-key-0123456789", "gw_bob-secret-key-0123456789"
SECRET = "hs256-test-secret-that-is-long-enough!"
ISS, AUD = "https://issuer.test", "gateway"
SECRET_BYTES = b"alice's secret bytes 8c1f"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def claims(sub: str = "carol", **extra: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"sub": sub, "iss": ISS, "aud": AUD, "iat": now, "exp": now + 600, "tenant": "acme"} | extra


def hs(payload: dict[str, Any], secret: str = SECRET) -> str:
    return jwt.encode(payload, secret, algorithm="HS256")


def unsigned(payload: dict[str, Any]) -> str:
    return f"{b64(json.dumps({'alg': 'none', 'typ': 'JWT'}).encode())}.{b64(json.dumps(payload).encode())}."


def hs_with_key_bytes(payload: dict[str, Any], key: bytes) -> str:
    """The classic confusion attack: sign HS256 with the server's *public* key as the HMAC secret."""
    head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64(json.dumps(payload).encode())
    sig = hmac.new(key, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64(sig)}"


@pytest.fixture(scope="module")
def rsa_keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, bytes, Path]:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    path = tmp_path_factory.mktemp("keys") / "public.pem"
    path.write_bytes(public_pem)
    return private, public_pem, path


def auth_settings(**extra: Any) -> dict[str, Any]:
    return {
        "api_keys": [f"alice:{hash_api_key(ALICE_KEY)}", f"bob:{hash_api_key(BOB_KEY)}"],
        "jwt_issuer": ISS,
        "jwt_audience": AUD,
        "jwt_metadata_claims": ["tenant"],
    } | extra


@pytest.fixture
async def hs_client(settings_factory: Any, make_client: Any) -> TestClient[Any, Any]:
    return await make_client(  # type: ignore[no-any-return]
        settings_factory(**auth_settings(jwt_algorithms=["HS256"], jwt_secret=SECRET))
    )


@pytest.fixture
async def rs_client(settings_factory: Any, make_client: Any, rsa_keys: Any) -> TestClient[Any, Any]:
    return await make_client(  # type: ignore[no-any-return]
        settings_factory(**auth_settings(jwt_algorithms=["RS256"], jwt_public_key_file=str(rsa_keys[2])))
    )


def bearer(credential: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {credential}"}


async def alice_fixture(client: TestClient[Any, Any]) -> dict[str, str]:
    """An asset of alice's with a token, for the matrix to aim at."""
    resp = await client.put("/asset/alice-private.txt", data=SECRET_BYTES, headers=bearer(ALICE_KEY))
    assert resp.status == 201, await resp.text()
    aid = (await resp.json())["asset"]["id"]
    resp = await client.post(f"/asset/{aid}/tokens", json={}, headers=bearer(ALICE_KEY))
    token = (await resp.json())["token"]
    return {"id": aid, "token": token["token"], "token_id": token["token_id"]}


def endpoints(a: dict[str, str]) -> list[tuple[str, str, dict[str, Any]]]:
    form = aiohttp.FormData()
    form.add_field("file", b"x", filename="x.txt")
    return [
        ("GET", f"/asset/{a['id']}", {}),
        ("HEAD", f"/asset/{a['id']}", {}),
        ("GET", f"/asset/{a['id']}?version=0", {}),
        ("GET", f"/asset/{a['id']}/meta", {}),
        ("PUT", f"/asset/{a['id']}/content", {"data": b"overwrite"}),
        ("POST", f"/asset/{a['id']}/tokens", {"json": {}}),
        ("GET", f"/asset/{a['id']}/tokens", {}),
        ("DELETE", f"/asset/{a['id']}/tokens/{a['token_id']}", {}),
        ("POST", "/zip", {"json": {"assets": [a["id"]]}}),
        ("POST", "/bundle", {"json": {"assets": [a["id"]]}}),
        ("DELETE", f"/asset/{a['id']}", {}),
        ("GET", "/assets", {}),
        ("POST", "/asset/new.txt", {"data": b"new"}),
        ("PUT", "/asset/new.txt", {"data": b"new"}),
        ("POST", "/asset", {"data": form}),
        ("DELETE", f"/asset-token/{a['token']}", {}),
    ]


BAD = ["none", "garbage", "bad_key", "expired_jwt", "wrong_signature", "wrong_issuer", "wrong_audience",
       "alg_none", "no_sub", "basic_scheme"]  # fmt: skip


def bad_headers(kind: str) -> dict[str, str]:
    return {
        "none": {},
        "garbage": {"Authorization": "Bearer"},
        "bad_key": bearer("gw_not-a-configured-key"),
        "expired_jwt": bearer(hs(claims(exp=int(time.time()) - 3600))),
        "wrong_signature": bearer(hs(claims(), secret="another-secret-of-sufficient-length")),
        "wrong_issuer": bearer(hs(claims(iss="https://evil.test"))),
        "wrong_audience": bearer(hs(claims(aud="someone-else"))),
        "alg_none": bearer(unsigned(claims())),
        "no_sub": bearer(hs({k: v for k, v in claims().items() if k != "sub"})),
        "basic_scheme": {"Authorization": "Basic " + base64.b64encode(b"alice:pw").decode()},
    }[kind]


@pytest.mark.parametrize("kind", BAD)
async def test_bad_credentials_get_401_everywhere(hs_client: TestClient[Any, Any], kind: str) -> None:
    a = await alice_fixture(hs_client)
    for method, path, kwargs in endpoints(a):
        resp = await hs_client.request(method, path, headers=bad_headers(kind), **kwargs)
        body = await resp.read()
        assert resp.status == 401, (kind, method, path, resp.status, body)
        assert resp.headers["WWW-Authenticate"].startswith("Bearer")
        assert SECRET_BYTES not in body and b"alice-private" not in body
        if method != "HEAD":
            assert json.loads(body)["error"]["code"] == "unauthorized"
    # nothing was changed by any of it
    got = await hs_client.get(f"/asset/{a['id']}", headers=bearer(ALICE_KEY))
    assert got.status == 200 and await got.read() == SECRET_BYTES


async def test_another_owner_sees_nothing(hs_client: TestClient[Any, Any]) -> None:
    a = await alice_fixture(hs_client)
    for who in (bearer(BOB_KEY), bearer(hs(claims(sub="mallory")))):
        for method, path, kwargs in endpoints(a):
            resp = await hs_client.request(method, path, headers=who, **kwargs)
            body = await resp.read()
            assert SECRET_BYTES not in body and b"alice-private" not in body, (method, path)
            if path.startswith(("/asset/new.txt", "/assets")) or (method, path) == ("POST", "/asset"):
                assert resp.status in (200, 201), (method, path, resp.status)  # their own space
            elif path.startswith("/asset-token/"):
                assert resp.status in (204, 410)  # the token itself is the credential
            else:
                assert resp.status == 404, (method, path, resp.status, body)
                if method != "HEAD":
                    assert json.loads(body)["error"]["code"].endswith("not_found")
        a = await alice_fixture(hs_client)  # fresh token (the previous one was revoked above)
    # alice still has everything
    meta = await (await hs_client.get(f"/asset/{a['id']}/meta", headers=bearer(ALICE_KEY))).json()
    assert meta["owner"] == "key:alice" and meta["latest_version"] == 0


async def test_alg_confusion_is_refused(rs_client: TestClient[Any, Any], rsa_keys: Any) -> None:
    private, public_pem, _ = rsa_keys
    good = jwt.encode(claims(sub="dave"), private, algorithm="RS256")
    resp = await rs_client.put("/asset/ok.txt", data=b"ok", headers=bearer(good))
    assert resp.status == 201
    for token in (
        hs_with_key_bytes(claims(sub="dave"), public_pem),
        unsigned(claims(sub="dave")),
        hs(claims()),
    ):
        resp = await rs_client.put("/asset/x.txt", data=b"x", headers=bearer(token))
        assert resp.status == 401 and await error_code(resp) == "unauthorized"


async def test_jwt_owner_and_claims_in_metadata(hs_client: TestClient[Any, Any]) -> None:
    token = hs(claims(sub="erin"))
    resp = await hs_client.put("/asset/e.txt", data=b"e", headers=bearer(token))
    aid = (await resp.json())["asset"]["id"]
    meta = await (await hs_client.get(f"/asset/{aid}/meta", headers=bearer(token))).json()
    assert meta["owner"] == f"jwt:{ISS}:erin" and meta["metadata"] == {"tenant": "acme"}
    expired_soon = hs(claims(sub="erin", exp=int(time.time()) - 10))  # inside the 30 s leeway
    assert (await hs_client.get(f"/asset/{aid}", headers=bearer(expired_soon))).status == 200


async def test_public_routes_need_no_credentials(hs_client: TestClient[Any, Any]) -> None:
    a = await alice_fixture(hs_client)
    assert (await hs_client.get("/healthcheck")).status == 200
    resp = await hs_client.get(f"/asset-token/{a['token']}")
    assert resp.status == 200 and await resp.read() == SECRET_BYTES
    assert (await hs_client.head(f"/asset-token/{a['token']}")).status == 200


async def test_listing_is_per_owner_and_paginated(hs_client: TestClient[Any, Any]) -> None:
    names = [f"f{i}.txt" for i in range(5)]
    for name in names:
        assert (
            await hs_client.put(f"/asset/{name}", data=name.encode(), headers=bearer(ALICE_KEY))
        ).status == 201
    await hs_client.put("/asset/bobs.txt", data=b"b", headers=bearer(BOB_KEY))
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params = {"limit": "2"} | ({"cursor": cursor} if cursor else {})
        page = await (await hs_client.get("/assets", params=params, headers=bearer(ALICE_KEY))).json()
        seen += [a["name"] for a in page["assets"]]
        pages += 1
        cursor = page["next_cursor"]
        if not cursor:
            break
        assert pages < 10
    assert seen == names[::-1]  # newest first, nothing twice, nothing of bob's
    bob = await (await hs_client.get("/assets", headers=bearer(BOB_KEY))).json()
    assert [a["name"] for a in bob["assets"]] == ["bobs.txt"] and bob["next_cursor"] is None
    for params in (
        {"limit": "0"},
        {"limit": "100000"},
        {"limit": "x"},
        {"cursor": "!!!"},
        {"cursor": b64(b"OWNER#x")},
    ):
        resp = await hs_client.get("/assets", params=params, headers=bearer(ALICE_KEY))
        assert resp.status == 400, params


async def test_open_mode_is_unchanged(client: TestClient[Any, Any]) -> None:
    resp = await client.put("/asset/open.txt", data=b"open")
    aid = (await resp.json())["asset"]["id"]
    assert (await client.get(f"/asset/{aid}")).status == 200  # no credentials anywhere
    assert (await client.get(f"/asset/{aid}", headers=bearer("anything"))).status == 200


def test_key_hashes_only_in_configuration(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from gateway.cli import main

    assert main(["keys", "create", "svc"]) == 0
    out = capsys.readouterr().out
    key = out.split("): ")[1].split()[0]
    assert key.startswith("gw_") and len(key) >= 40
    assert f"svc:{hash_api_key(key)}" in out
    monkeypatch.setenv("GATEWAY_API_KEYS", f"svc:{hash_api_key(key)},other:{'0' * 64}")
    from gateway.auth import Authenticator
    from gateway.config import Settings

    auth = Authenticator(Settings())
    assert auth.secured and auth.authenticate(f"Bearer {key}").id == "key:svc"
    assert os.environ["GATEWAY_API_KEYS"].count(key) == 0


def same_backends(base: Any, **extra: Any) -> Any:
    """Secured settings on the very table/bucket (or files) of ``base``, validated like any settings."""
    return type(base).model_validate(base.model_dump() | auth_settings(**extra))


async def test_principal_namespaces_and_owner_aliases(settings_factory: Any, make_client: Any) -> None:
    """A JWT subject can pose neither as an API key nor as the open-mode owner; aliases are explicit."""
    base = settings_factory()
    open_client = await make_client(base)
    open_id = (await (await open_client.put("/asset/open.txt", data=b"open")).json())["asset"]["id"]
    secured = await make_client(same_backends(base, jwt_algorithms=["HS256"], jwt_secret=SECRET))
    a = await alice_fixture(secured)
    for sub in ("alice", "key:alice", "public", "key:alice:x"):
        who = bearer(hs(claims(sub=sub)))
        for aid in (a["id"], open_id):
            assert (await secured.get(f"/asset/{aid}", headers=who)).status == 404, (sub, aid)
    assert (await secured.get(f"/asset/{open_id}", headers=bearer(ALICE_KEY))).status == 404
    # an operator who moves from open mode to alice's key keeps the old uploads with an alias
    aliased = await make_client(base.model_copy(update=auth_settings(owner_aliases=["key:alice=public"])))
    got = await aliased.get(f"/asset/{open_id}", headers=bearer(ALICE_KEY))
    assert got.status == 200 and await got.read() == b"open"
    assert (await aliased.get(f"/asset/{open_id}", headers=bearer(BOB_KEY))).status == 404


async def test_metrics_public_by_default_and_protectable(settings_factory: Any, make_client: Any) -> None:
    default = await make_client(settings_factory(**auth_settings()))
    assert (await default.get("/metrics")).status == 200
    closed = await make_client(settings_factory(**auth_settings(metrics_public=False)))
    resp = await closed.get("/metrics")
    assert resp.status == 401 and await error_code(resp) == "unauthorized"
    assert (await closed.get("/metrics", headers=bearer(ALICE_KEY))).status == 200
    assert (await closed.get("/healthcheck")).status == 200
