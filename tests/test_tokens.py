"""Token lifecycle over HTTP on both backend pairs: mint, list, revoke, redirects, retention."""

from __future__ import annotations

import asyncio
import math
import os
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from gateway.http.keys import SERVICE
from tests.conftest import Inspector
from tests.helpers import error_code, upload


async def test_mint_list_and_use(client: TestClient[Any, Any], inspector: Inspector) -> None:
    data = os.urandom(100)
    aid = (await upload(client, "m.bin", data))["asset"]["id"]
    resp = await client.post(f"/asset/{aid}/tokens", json={"expiry": "2h", "max_downloads": 3})
    body = await resp.json()
    assert resp.status == 201, body
    token = body["token"]
    assert token["asset_id"] == aid and token["max_downloads"] == 3
    assert abs(token["expiry"] - (time.time() + 7200)) < 5
    got = await client.get(f"/asset-token/{token['token']}")
    assert got.status == 200 and await got.read() == data

    second = (await (await client.post(f"/asset/{aid}/tokens")).json())["token"]  # empty body: defaults
    listing = await (await client.get(f"/asset/{aid}/tokens")).json()
    by_id = {t["token_id"]: t for t in listing["tokens"]}
    assert set(by_id) == {token["token_id"], second["token_id"]}
    assert by_id[token["token_id"]]["downloads"] == 1 and by_id[token["token_id"]]["max_downloads"] == 3
    raw_listing = repr(listing)
    assert token["token"] not in raw_listing and second["token"] not in raw_listing
    raw_catalog = repr(inspector.catalog_items())
    assert token["token"] not in raw_catalog and second["token"] not in raw_catalog


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"expiry": "0"}, 400, "invalid_expiry"),
        ({"expiry": "forever"}, 400, "invalid_expiry"),
        ({"expiry": "100 years"}, 400, "invalid_expiry"),
        ({"max_downloads": 0}, 400, "invalid_max_downloads"),
        ({"max_downloads": "x"}, 400, "invalid_max_downloads"),
        ({"surprise": 1}, 400, "invalid_json"),
    ],
)
async def test_mint_bad_input(
    client: TestClient[Any, Any], body: dict[str, Any], status: int, code: str
) -> None:
    aid = (await upload(client, "m.bin", b"x"))["asset"]["id"]
    resp = await client.post(f"/asset/{aid}/tokens", json=body)
    assert resp.status == status and await error_code(resp) == code


async def test_mint_and_list_unknown_asset(client: TestClient[Any, Any]) -> None:
    for path in ("/asset/6b84149d-332c-4152-bb73-0ca9da463eaf/tokens", "/asset/nope/tokens"):
        assert (await client.post(path, json={})).status == 404
        assert (await client.get(path)).status == 404
    resp = await client.post("/asset/x/tokens", data=b"{bad", headers={"Content-Type": "application/json"})
    assert resp.status == 400


async def test_revoke_by_secret(client: TestClient[Any, Any]) -> None:
    body = await upload(client, "r.bin", b"data", token="1")
    secret, aid = body["token"]["token"], body["asset"]["id"]
    assert (await client.delete(f"/asset-token/{secret}")).status == 204
    resp = await client.get(f"/asset-token/{secret}")
    assert resp.status == 410 and await error_code(resp) == "token_revoked"
    again = await client.delete(f"/asset-token/{secret}")
    assert again.status == 410 and await error_code(again) == "token_revoked"
    assert (await client.delete("/asset-token/" + "A" * 32)).status == 404
    assert (await client.delete("/asset-token/bad%20token")).status == 404
    assert (await (await client.get(f"/asset/{aid}/tokens")).json())["tokens"] == []


async def test_revoke_by_id(client: TestClient[Any, Any]) -> None:
    body = await upload(client, "r.bin", b"data", token="1")
    other = await upload(client, "o.bin", b"other", token="1")
    aid, tid, secret = body["asset"]["id"], body["token"]["token_id"], body["token"]["token"]
    # another asset's token id is unknown here
    assert (await client.delete(f"/asset/{aid}/tokens/{other['token']['token_id']}")).status == 404
    assert (await client.delete(f"/asset/{aid}/tokens/zzz")).status == 404
    assert (await client.delete(f"/asset/{aid}/tokens/{tid}")).status == 204
    assert (await client.get(f"/asset-token/{secret}")).status == 410
    assert (await client.delete(f"/asset/{aid}/tokens/{tid}")).status == 410
    assert (await client.get(f"/asset-token/{other['token']['token']}")).status == 200


async def test_retention_asset_and_tokens_die_then_swept(
    client: TestClient[Any, Any], inspector: Inspector
) -> None:
    svc = client.app[SERVICE]
    data = os.urandom(5000)
    body = await upload(client, "tmp.bin", data, token="1", expiry="1d", expires="1h")
    aid, secret = body["asset"]["id"], body["token"]["token"]
    assert body["asset"]["expires"] == body["token"]["expiry"]  # the token dies with the asset
    minted = await (await client.post(f"/asset/{aid}/tokens", json={"expiry": "3d"})).json()
    assert minted["token"]["expiry"] == body["asset"]["expires"]
    keep = (await upload(client, "keep.bin", b"keep", token="1"))["asset"]["id"]
    assert (await client.get(f"/asset/{aid}")).status == 200

    real = svc.backends.clock
    svc.backends.clock = lambda: real() + 3601  # type: ignore[method-assign]
    resp = await client.get(f"/asset/{aid}")
    assert resp.status == 404
    resp = await client.get(f"/asset-token/{secret}")
    assert resp.status == 410
    assert len(inspector.blob_keys()) == 2  # unreadable at once, bytes still there until the sweep

    results = await asyncio.gather(*(svc.retention.sweep_once() for _ in range(3)))  # racing sweepers
    assert sum(results) == 1
    keys = inspector.blob_keys()
    assert len(keys) == 1 and aid not in keys[0]
    raw = repr(inspector.catalog_items())
    assert aid not in raw and keep in raw
    assert (await client.get(f"/asset-token/{secret}")).status == 404
    assert (await client.get(f"/asset/{keep}")).status == 200
    assert await svc.retention.sweep_once() == 0


async def test_retention_bad_input(client: TestClient[Any, Any], inspector: Inspector) -> None:
    resp = await client.put("/asset/a.bin", data=b"x", params={"expires": "soon"})
    assert resp.status == 400 and await error_code(resp) == "invalid_expires"
    assert inspector.blob_keys() == [] and inspector.catalog_items() == []


async def test_sweeper_runs_in_the_server(settings_factory: Any, make_client: Any) -> None:
    settings = settings_factory(sweep_interval=0.2)
    client = await make_client(settings)
    inspector = Inspector(settings)
    await upload(client, "short.bin", b"bye", expires="1s")

    def leftovers() -> bool:  # bytes go first, then the catalog items: wait for both
        return bool(inspector.blob_keys()) or any("short.bin" in repr(i) for i in inspector.catalog_items())

    deadline = time.monotonic() + 10
    while leftovers() and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    assert inspector.blob_keys() == []
    assert all("short.bin" not in repr(i) for i in inspector.catalog_items())


async def test_expired_tokens_are_purged_without_ttl(settings_factory: Any, make_client: Any) -> None:
    """SQLite has no TTL: the sweeper deletes tokens once they are past expiry + grace."""
    settings = settings_factory(expired_token_grace=0)
    client = await make_client(settings)
    svc = client.app[SERVICE]
    body = await upload(client, "t.bin", b"x", token="1", expiry="60s")
    real = svc.backends.clock
    svc.backends.clock = lambda: real() + 61  # type: ignore[method-assign]
    assert (await client.get(f"/asset-token/{body['token']['token']}")).status == 410
    await svc.retention.sweep_once()
    items = Inspector(settings).catalog_items()
    if settings.catalog_url.startswith("sqlite"):
        assert not [
            i for i in items if str(i["PK"]).startswith("TOKEN#") or str(i["SK"]).startswith("TOKEN#")
        ]
        assert (await client.get(f"/asset-token/{body['token']['token']}")).status == 404


async def test_redirect_mode(settings_factory: Any, make_client: Any) -> None:
    settings = settings_factory(redirect_downloads=True, presign_max_seconds=120)
    client = await make_client(settings)
    # A frozen clock, mid-second: rounding to whole seconds must neither shorten the token's life nor
    # let the presigned URL outlive it.
    now = math.floor(time.time()) + 0.25
    client.app[SERVICE].backends.clock = lambda: now  # type: ignore[method-assign]
    data = os.urandom(3000)
    body = await upload(client, "na%C3%AFve.csv", data, token="1", max_downloads="1", expiry="60s")
    url = f"/asset-token/{body['token']['token']}"
    head = await client.head(url)
    assert head.status == 200  # HEAD is answered here and not counted
    resp = await client.get(url, allow_redirects=False)
    if settings.storage_url.startswith("file://"):
        assert resp.status == 200 and await resp.read() == data  # cannot presign: proxies
    else:
        assert resp.status == 302 and resp.headers["Cache-Control"] == "no-store"
        location = resp.headers["Location"]
        query = parse_qs(urlsplit(location).query)
        assert body["token"]["expiry"] == math.ceil(now) + 60  # never shorter than asked
        assert int(query["X-Amz-Expires"][0]) == 60  # min(cap 120, remaining), never past the token
        assert query["response-content-type"] == [body["asset"]["content_type"]]
        assert "filename*=UTF-8''na%C3%AFve.csv" in query["response-content-disposition"][0]
        async with aiohttp.ClientSession() as direct, direct.get(location) as got:
            assert got.status == 200 and await got.read() == data
    again = await client.get(url, allow_redirects=False)
    assert again.status == 410  # the redirect counted as the one download
