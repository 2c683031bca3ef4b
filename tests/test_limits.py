"""Backend limits and failures the service must design for, on every backend pair (and the real lane).

- DynamoDB's 100-action transactions: forms, bundles and deletions that would exceed them (issue item 6);
- the sweeper surviving anything one asset throws at it (7);
- redirect mode counting only real transfers (13);
- commits whose outcome is ambiguous (14): the blob of a visible asset is never deleted.
"""

from __future__ import annotations

import asyncio
import io
import os
import zipfile
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from gateway.config import Settings
from gateway.errors import CatalogError
from gateway.http.keys import METRICS, SERVICE
from gateway.ports import Catalog
from gateway.service.uploads import max_files_per_commit
from tests.conftest import Inspector
from tests.faultproxy import LoseAnswer, dynamodb_op, endpoint_of, fault_proxy, via
from tests.helpers import error_code, upload


def form(n: int, **fields: str) -> aiohttp.FormData:
    data = aiohttp.FormData()
    for key, value in fields.items():
        data.add_field(key, value)
    for i in range(n):
        data.add_field("file", f"file {i}".encode(), filename=f"f{i}.txt", content_type="text/plain")
    return data


# -- 6: the transaction limit, designed for ---------------------------------------------------------------
async def test_06_biggest_form_with_token_and_retention_commits(client: TestClient[Any, Any]) -> None:
    limit = client.app[SERVICE].uploads.max_form_files
    assert limit == max_files_per_commit(client.app[SERVICE].backends.limits) == 19
    resp = await client.post("/asset", data=form(limit, token="1", expires="1d", max_downloads="2"))
    out = await resp.json()
    assert resp.status == 201, out
    assert len(out["assets"]) == limit and len(out["token"]["asset_ids"]) == limit
    got = await client.get(f"/asset-token/{out['token']['token']}")
    with zipfile.ZipFile(io.BytesIO(await got.read())) as zf:
        assert len(zf.namelist()) == limit


async def test_06_one_file_too_many_is_refused_before_its_bytes(
    client: TestClient[Any, Any], inspector: Inspector
) -> None:
    limit = client.app[SERVICE].uploads.max_form_files
    resp = await client.post("/asset", data=form(limit + 1, token="1"))
    assert resp.status == 400 and await error_code(resp) == "too_many_files"
    assert inspector.blob_keys() == [] and inspector.multipart_uploads() == []


async def test_06_bundle_of_many_assets(client: TestClient[Any, Any]) -> None:
    ids = [(await upload(client, f"m{i}.txt", f"member {i}".encode()))["asset"]["id"] for i in range(130)]
    resp = await client.post("/bundle", json={"assets": ids, "name": "many.zip", "max_downloads": 1})
    out = await resp.json()
    assert resp.status == 201, out
    listed = await (await client.get(f"/asset/{ids[-1]}/tokens")).json()
    assert [t["token_id"] for t in listed["tokens"]] == [out["token"]["token_id"]]
    got = await client.get(f"/asset-token/{out['token']['token']}")
    with zipfile.ZipFile(io.BytesIO(await got.read())) as zf:
        assert len(zf.namelist()) == 130 and zf.read("m129.txt") == b"member 129"
    assert (await client.delete(f"/asset/{ids[0]}/tokens/{out['token']['token_id']}")).status == 204
    assert (await client.get(f"/asset-token/{out['token']['token']}")).status == 410


async def test_06_delete_asset_with_many_versions_and_tokens(
    client: TestClient[Any, Any], inspector: Inspector
) -> None:
    aid = (await upload(client, "v.txt", b"v0", token="1"))["asset"]["id"]
    for n in range(1, 110):
        resp = await client.put(f"/asset/{aid}/content", data=f"v{n}".encode())
        assert resp.status == 201
    for _ in range(5):
        assert (await client.post(f"/asset/{aid}/tokens", json={})).status == 201
    assert (await client.delete(f"/asset/{aid}")).status == 204
    assert (await client.get(f"/asset/{aid}")).status == 404
    assert inspector.blob_keys() == []
    leftovers = [i for i in inspector.catalog_items() if "EXPIRY#CURSOR" not in repr(i)]
    assert leftovers == []


async def test_06_catalog_refuses_oversized_transactions(catalog: Catalog) -> None:
    """The same limit on both adapters, so the embedded default catches what DynamoDB would refuse."""
    from tests.test_catalog import make_asset, make_token

    news = [make_asset() for _ in range(34)]  # 3 items each: 102
    with pytest.raises(CatalogError):
        await catalog.create_assets(news)
    assert await catalog.get_asset(news[0].asset.id) is None  # all or nothing
    await catalog.create_assets(news[:33])
    token = make_token(tuple(n.asset.id for n in news[:33]))
    await catalog.put_token(token)  # fits: 34 items
    more = [make_asset() for _ in range(99)]
    for start in range(0, 99, 33):
        await catalog.create_assets(more[start : start + 33])
    big = make_token(tuple(n.asset.id for n in news[:33] + more))  # 132 pointers: written in parts
    await catalog.put_token(big)
    assert await catalog.get_token(big.token_hash) is not None
    assert [t.token_hash for t in await catalog.list_tokens(more[-1].asset.id)] == [big.token_hash]


# -- 7: the sweeper never dies ----------------------------------------------------------------------------
async def test_07_one_bad_asset_does_not_stop_retention(client: TestClient[Any, Any]) -> None:
    svc = client.app[SERVICE]
    bad = (await upload(client, "bad.txt", b"bad", expires="1s"))["asset"]["id"]
    good = (await upload(client, "good.txt", b"good", expires="1s"))["asset"]["id"]
    _, bad_version = await svc.assets.find(bad, owner=None)
    real_delete = svc.backends.store.delete

    async def flaky(key: str) -> None:
        if key == bad_version.blob_key:
            raise OSError(5, "Input/output error")
        await real_delete(key)

    svc.backends.store.delete = flaky  # type: ignore[method-assign]
    real_clock = svc.backends.clock
    svc.backends.clock = lambda: real_clock() + 5
    try:
        assert await svc.retention.sweep_once() == 1  # the good one went, the bad one was skipped
    finally:
        svc.backends.store.delete = real_delete  # type: ignore[method-assign]
    assert client.app[METRICS].sweep_failures._value.get() == 1
    assert await svc.backends.catalog.get_asset(good) is None
    assert await svc.backends.catalog.get_asset(bad) is not None
    assert await svc.retention.sweep_once() == 1  # retried on the next pass
    assert await svc.backends.catalog.get_asset(bad) is None


async def test_07_sweeper_task_survives_unexpected_errors(settings_factory: Any, make_client: Any) -> None:
    client = await make_client(settings_factory(sweep_interval=0.05))
    svc = client.app[SERVICE]
    real_due = svc.backends.catalog.due_assets
    calls = {"n": 0}

    async def broken_once(now: float, limit: int) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            raise OSError("disk went away")
        return await real_due(now, limit)

    svc.backends.catalog.due_assets = broken_once  # type: ignore[method-assign]
    aid = (await upload(client, "soon.txt", b"soon", expires="1s"))["asset"]["id"]
    for _ in range(200):
        if calls["n"] > 1 and await real_due_missing(svc, aid):
            break
        await asyncio.sleep(0.05)
    assert calls["n"] > 1 and await real_due_missing(svc, aid)


async def real_due_missing(svc: Any, aid: str) -> bool:
    return await svc.backends.catalog.get_asset(aid) is None


# -- 13: redirect mode counts only real transfers ---------------------------------------------------------
async def test_13_redirect_claims_only_for_a_transfer(remote_settings: Settings, make_client: Any) -> None:
    client = await make_client(remote_settings.model_copy(update={"redirect_downloads": True}))
    data = os.urandom(1000)
    out = await upload(client, "r.bin", data, token="1", max_downloads="1")
    url = f"/asset-token/{out['token']['token']}"
    etag = f'"{out["asset"]["sha256"]}"'
    assert (await client.get(url, headers={"If-None-Match": etag}, allow_redirects=False)).status == 304
    assert (await client.get(url, headers={"Range": "bytes=5000-"}, allow_redirects=False)).status == 416
    resp = await client.get(url, allow_redirects=False)
    assert resp.status == 302
    expires_in = int(parse_qs(urlsplit(resp.headers["Location"]).query)["X-Amz-Expires"][0])
    assert expires_in == 15  # seconds by default: the window in which the URL outlives the link's rules
    assert (await client.get(url, allow_redirects=False)).status == 410


# -- 14: ambiguous commits --------------------------------------------------------------------------------
async def test_14_commit_that_reports_failure_but_happened_keeps_the_asset(
    client: TestClient[Any, Any], inspector: Inspector
) -> None:
    svc = client.app[SERVICE]
    real = svc.backends.catalog.create_assets

    async def lost_answer(items: Any, events: Any = ()) -> None:
        await real(items, events)
        raise CatalogError("the answer was lost")

    svc.backends.catalog.create_assets = lost_answer  # type: ignore[method-assign]
    try:
        out = await upload(client, "kept.bin", b"kept")
    finally:
        svc.backends.catalog.create_assets = real  # type: ignore[method-assign]
    got = await client.get(f"/asset/{out['asset']['id']}")
    assert got.status == 200 and await got.read() == b"kept"


async def test_14_cancelled_after_commit_keeps_the_blob(
    client: TestClient[Any, Any], inspector: Inspector
) -> None:
    svc = client.app[SERVICE]
    real = svc.backends.catalog.create_assets
    written: list[str] = []

    async def committed_then_cancelled(items: Any, events: Any = ()) -> None:
        await real(items, events)
        written.append(items[0].asset.id)
        raise asyncio.CancelledError  # as when the request is cancelled while COMMIT completes

    svc.backends.catalog.create_assets = committed_then_cancelled  # type: ignore[method-assign]
    try:
        with pytest.raises(aiohttp.ClientError):
            await client.put("/asset/c.bin", data=b"cancelled")
    finally:
        svc.backends.catalog.create_assets = real  # type: ignore[method-assign]
    [aid] = written
    got = await client.get(f"/asset/{aid}")
    assert got.status == 200 and await got.read() == b"cancelled"  # visible, and its blob is still there
    assert len(inspector.blob_keys()) == 1


async def test_14_lost_transaction_answer_over_the_network(
    remote_settings: Settings, make_client: Any, inspector: Inspector
) -> None:
    """DynamoDB applies the transaction but the answer never arrives; botocore retries."""
    lost = {"n": 0}

    def rule(request: Any) -> LoseAnswer | None:
        if dynamodb_op(request) == "TransactWriteItems" and lost["n"] == 0:
            lost["n"] += 1
            return LoseAnswer()
        return None

    async with fault_proxy(endpoint_of(remote_settings.catalog_url), rule) as proxy:
        client = await make_client(via(remote_settings, catalog=proxy))
        data = os.urandom(2000)
        out = await upload(client, "lost.bin", data, token="1")
        assert lost["n"] == 1
        got = await client.get(f"/asset-token/{out['token']['token']}")
        assert got.status == 200 and await got.read() == data
