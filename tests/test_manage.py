"""Versions, metadata, deletion (both backend pairs, open mode)."""

from __future__ import annotations

import asyncio
import os
from typing import Any

from aiohttp.test_utils import TestClient

from gateway.errors import StorageError
from gateway.http.keys import SERVICE
from tests.conftest import Inspector
from tests.helpers import chunked, error_code, upload


async def test_versions_roundtrip(client: TestClient[Any, Any]) -> None:
    body = await upload(client, "doc.txt", b"version zero", token="1")
    aid = body["asset"]["id"]
    resp = await client.put(f"/asset/{aid}/content", data=chunked(os.urandom(6 * 1024 * 1024)))
    v1 = await resp.json()
    assert resp.status == 201 and v1["asset"]["version"] == 1 and v1["asset"]["name"] == "doc.txt"
    resp = await client.put(f"/asset/{aid}/content", data=b"v2", headers={"Content-Type": "text/plain"})
    assert (await resp.json())["asset"]["version"] == 2
    assert await (await client.get(f"/asset/{aid}")).read() == b"v2"
    assert await (await client.get(f"/asset/{aid}?version=0")).read() == b"version zero"
    assert (await client.get(f"/asset/{aid}?version=1")).headers["Content-Length"] == str(6 * 1024 * 1024)
    assert await (await client.get(f"/asset-token/{body['token']['token']}")).read() == b"v2"  # newest
    meta = await (await client.get(f"/asset/{aid}/meta")).json()
    assert meta["latest_version"] == 2 and [v["version"] for v in meta["versions"]] == [0, 1, 2]
    assert meta["versions"][2]["content_type"] == "text/plain" and meta["owner"] == "public"


async def test_concurrent_versions_get_distinct_numbers(
    client: TestClient[Any, Any], inspector: Inspector
) -> None:
    aid = (await upload(client, "race.txt", b"v0"))["asset"]["id"]
    payloads = [f"payload {i}".encode() for i in range(6)]
    results = await asyncio.gather(*(client.put(f"/asset/{aid}/content", data=p) for p in payloads))
    numbers = [(await r.json())["asset"]["version"] for r in results]
    assert sorted(numbers) == [1, 2, 3, 4, 5, 6]
    for number, payload in zip(numbers, payloads, strict=True):
        assert await (await client.get(f"/asset/{aid}?version={number}")).read() == payload
    assert len(inspector.blob_keys()) == 7  # no orphans from lost races


async def test_version_errors_store_nothing(client: TestClient[Any, Any], inspector: Inspector) -> None:
    resp = await client.put("/asset/6b84149d-332c-4152-bb73-0ca9da463eaf/content", data=b"x")
    assert resp.status == 404
    aid = (await upload(client, "a.txt", b"a"))["asset"]["id"]
    resp = await client.put(
        f"/asset/{aid}/content", data=b"x", headers={"Content-MD5": "AAAAAAAAAAAAAAAAAAAAAA=="}
    )
    assert resp.status == 400 and await error_code(resp) == "checksum_mismatch"
    assert len(inspector.blob_keys()) == 1
    assert (await (await client.get(f"/asset/{aid}/meta")).json())["latest_version"] == 0


async def test_delete_removes_everything(client: TestClient[Any, Any], inspector: Inspector) -> None:
    body = await upload(client, "gone.txt", b"bye", token="1")
    aid = body["asset"]["id"]
    await client.put(f"/asset/{aid}/content", data=b"bye again")
    keep = (await upload(client, "keep.txt", b"keep"))["asset"]["id"]
    assert (await client.delete(f"/asset/{aid}")).status == 204
    assert (await client.get(f"/asset/{aid}")).status == 404
    assert (await client.get(f"/asset/{aid}/meta")).status == 404
    assert (await client.get(f"/asset-token/{body['token']['token']}")).status in (404, 410)
    assert (await client.delete(f"/asset/{aid}")).status == 404
    assert len(inspector.blob_keys()) == 1
    raw = repr(inspector.catalog_items())
    assert aid not in raw and keep in raw


async def test_delete_with_failing_storage_is_finished_by_the_sweeper(
    client: TestClient[Any, Any], inspector: Inspector
) -> None:
    aid = (await upload(client, "stuck.txt", b"stuck"))["asset"]["id"]
    svc = client.app[SERVICE]
    real_delete = svc.backends.store.delete

    async def broken(key: str) -> None:
        raise StorageError("storage unreachable")

    svc.backends.store.delete = broken  # type: ignore[method-assign]
    try:
        assert (await client.delete(f"/asset/{aid}")).status == 204
        assert (await client.get(f"/asset/{aid}")).status == 404  # nothing readable remains
        assert len(inspector.blob_keys()) == 1
    finally:
        svc.backends.store.delete = real_delete  # type: ignore[method-assign]
    assert await svc.retention.sweep_once() == 1
    assert inspector.blob_keys() == []
    assert aid not in repr(inspector.catalog_items())


async def test_listing_needs_a_principal_in_open_mode(client: TestClient[Any, Any]) -> None:
    await upload(client, "a.txt", b"a")
    resp = await client.get("/assets")
    assert resp.status == 403 and await error_code(resp) == "forbidden"
