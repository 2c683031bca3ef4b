"""Content-addressed storage (service/dedup.py) on both backend pairs, over HTTP: identical uploads within
an owner or tenant share one blob, never across tenants; the last delete removes the bytes; racing
identical uploads from two apps end with one blob; downloads, ranges, zips and tus are unchanged."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import uuid
import zipfile
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from yarl import URL

from gateway.auth import hash_api_key
from gateway.config import Settings
from tests.conftest import Inspector

KEYS = {n: f"gw_{n}_{uuid.uuid4().hex}" for n in ("alice", "bob", "carol", "dave")}


def auth(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {KEYS[name]}"}


class Setup:
    def __init__(self, settings: Settings, blobs: Inspector) -> None:
        self.settings = settings
        self.blobs = blobs  # looks at the dedup storage's bytes
        self.catalog = Inspector(settings)

    def cas(self) -> list[str]:
        return [k for k in self.blobs.blob_keys() if "/cas/" in f"/{k}"]

    def staged(self) -> list[str]:
        return [k for k in self.blobs.blob_keys() if "/assets/" in f"/{k}"]

    def refs(self) -> list[Any]:
        return [i for i in self.catalog.catalog_items() if "BLOBREF#" in json.dumps(i)]


@pytest.fixture
def setup(settings_factory: Any) -> Setup:
    base = settings_factory()
    settings = settings_factory(
        storages={"main": {"url": base.storage_url, "dedup": True}},
        default_storage="main",
        api_keys=[f"{n}:{hash_api_key(k)}" for n, k in KEYS.items()],
        principals={
            "key:bob": {"tenant": "acme"},
            "key:carol": {"tenant": "acme"},
            "key:dave": {"tenant": "beta"},
        },
        tenants={"acme": {}, "beta": {}},
    )
    return Setup(settings, Inspector(base))


async def put(client: TestClient[Any, Any], who: str, name: str, data: bytes) -> dict[str, Any]:
    resp = await client.put(f"/asset/{name}", data=data, headers=auth(who))
    assert resp.status == 201, await resp.text()
    return dict((await resp.json())["asset"])


async def body_of(client: TestClient[Any, Any], who: str, asset_id: str, **headers: str) -> bytes:
    resp = await client.get(f"/asset/{asset_id}", headers={**auth(who), **headers})
    assert resp.status in (200, 206), await resp.text()
    return await resp.read()


async def test_identical_uploads_share_one_blob_until_the_last_delete(setup: Setup, make_client: Any) -> None:
    client = await make_client(setup.settings)
    data = b"same bytes " * 1000
    first = await put(client, "alice", "a.txt", data)
    second = await put(client, "alice", "copy-of-a.txt", data)
    other = await put(client, "alice", "b.txt", b"other bytes")
    assert first["id"] != second["id"] and first["sha256"] == second["sha256"]
    assert len(setup.cas()) == 2 and setup.staged() == []  # two contents, no staged copies left
    for asset in (first, second):
        assert await body_of(client, "alice", asset["id"]) == data
        assert await body_of(client, "alice", asset["id"], Range="bytes=5-14") == data[5:15]
    assert await body_of(client, "alice", other["id"]) == b"other bytes"

    assert (await client.delete(f"/asset/{first['id']}", headers=auth("alice"))).status == 204
    assert len(setup.cas()) == 2  # still held by the copy
    assert await body_of(client, "alice", second["id"]) == data
    assert (await client.delete(f"/asset/{second['id']}", headers=auth("alice"))).status == 204
    assert len(setup.cas()) == 1  # the last member took the bytes with it
    assert len(setup.refs()) == 1


async def test_never_shared_across_tenants(setup: Setup, make_client: Any) -> None:
    client = await make_client(setup.settings)
    data = b"confidential" * 100
    bob = await put(client, "bob", "x.bin", data)
    carol = await put(client, "carol", "y.bin", data)  # same tenant as bob: shared
    assert len(setup.cas()) == 1
    dave = await put(client, "dave", "z.bin", data)  # tenant beta: its own blob, under its own prefix
    alice = await put(client, "alice", "w.bin", data)  # no tenant: her own
    keys = setup.cas()
    assert len(keys) == 3, keys
    assert sum("tenants/acme/" in k for k in keys) == 1 and sum("tenants/beta/" in k for k in keys) == 1
    for who, asset in (("bob", bob), ("carol", carol), ("dave", dave), ("alice", alice)):
        assert await body_of(client, who, asset["id"]) == data
    assert (await client.get(f"/asset/{bob['id']}", headers=auth("dave"))).status == 404


async def test_racing_identical_uploads_from_two_apps_end_with_one_blob(
    setup: Setup, make_client: Any
) -> None:
    apps = [await make_client(setup.settings), await make_client(setup.settings)]
    data = bytes(range(256)) * 64
    assets = await asyncio.gather(*(put(apps[i % 2], "alice", f"r{i}.bin", data) for i in range(12)))
    assert len({a["id"] for a in assets}) == 12
    assert len(setup.cas()) == 1, setup.cas()
    assert setup.staged() == []
    for a in assets[:3]:
        assert await body_of(apps[1], "alice", a["id"]) == data
    await asyncio.gather(
        *(apps[i % 2].delete(f"/asset/{a['id']}", headers=auth("alice")) for i, a in enumerate(assets))
    )
    assert setup.cas() == [] and setup.refs() == []


async def test_new_versions_zips_and_tus_use_the_shared_blob(setup: Setup, make_client: Any) -> None:
    client = await make_client(setup.settings)
    data = b"version content " * 500
    first = await put(client, "alice", "one.txt", data)
    target = await put(client, "alice", "two.txt", b"old")
    resp = await client.put(f"/asset/{target['id']}/content", data=data, headers=auth("alice"))
    assert resp.status in (200, 201), await resp.text()
    assert len(setup.cas()) == 2  # `data` and b"old"

    headers = {"Tus-Resumable": "1.0.0", **auth("alice")}
    resp = await client.post("/files/", headers={**headers, "Upload-Length": str(len(data))})
    assert resp.status == 201, await resp.text()
    patch = {**headers, "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"}
    resp = await client.patch(URL(resp.headers["Location"]).path, data=data, headers=patch)
    assert resp.status == 204, await resp.text()
    assert len(setup.cas()) == 2  # the tus upload joined too
    assert [k for k in setup.blobs.blob_keys() if "tus-" in k] == []

    resp = await client.post("/zip", json={"assets": [first["id"], target["id"]]}, headers=auth("alice"))
    assert resp.status == 200, await resp.text()
    with zipfile.ZipFile(io.BytesIO(await resp.read())) as zf:
        assert [zf.read(n) for n in zf.namelist()] == [data, data]
    assert hashlib.sha256(await body_of(client, "alice", target["id"])).hexdigest() == first["sha256"]
