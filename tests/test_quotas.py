"""Quotas per owner and tenant (service/quotas.py) on both backend pairs, driven over HTTP (curl where a
real client shows the point: a refused upload sends no bytes). What is checked each time: the status and
JSON error, the usage counter, and that a refused upload left no blob and no asset behind."""

from __future__ import annotations

import asyncio
import hashlib
import json
import subprocess
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient
from yarl import URL

from gateway.auth import hash_api_key
from gateway.http.keys import SERVICE
from tests.conftest import Inspector

KEYS = {n: f"gw_{n}_{uuid.uuid4().hex}" for n in ("alice", "bob", "carol", "erin")}


def auth(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {KEYS[name]}"}


@pytest.fixture
def quota_settings(settings_factory: Any) -> Any:
    def make(**extra: Any) -> Any:
        base: dict[str, Any] = {
            "api_keys": [f"{n}:{hash_api_key(k)}" for n, k in KEYS.items()],
            "principals": {
                "key:alice": {"max_bytes": 1000, "max_assets": 5},
                "key:bob": {"tenant": "acme"},
                "key:carol": {"tenant": "acme"},
            },
            "tenants": {"acme": {"max_bytes": 10_000, "max_assets": 3}},
        }
        return settings_factory(**(base | extra))

    return make


async def usage(client: TestClient[Any, Any], who: str) -> dict[str, Any]:
    resp = await client.get("/usage", headers=auth(who))
    assert resp.status == 200, await resp.text()
    return dict(await resp.json())


async def put(client: TestClient[Any, Any], who: str, name: str, data: bytes) -> aiohttp.ClientResponse:
    return await client.put(f"/asset/{name}", data=data, headers=auth(who))


def asset_blobs(inspector: Inspector) -> list[str]:
    return [k for k in inspector.blob_keys() if "/assets/" in f"/{k}"]


async def test_bytes_quota_counts_uploads_and_refuses_the_one_that_does_not_fit(
    quota_settings: Any, make_client: Any
) -> None:
    settings = quota_settings()
    inspector = Inspector(settings)
    client = await make_client(settings)
    assert await usage(client, "alice") == {
        "scope": "owner:key:alice",
        "bytes": 0,
        "assets": 0,
        "max_bytes": 1000,
        "max_assets": 5,
        "remaining_bytes": 1000,
        "remaining_assets": 5,
    }
    first = await put(client, "alice", "a.bin", b"a" * 600)
    assert first.status == 201, await first.text()
    resp = await put(client, "alice", "b.bin", b"b" * 500)
    body = await resp.json()
    assert resp.status == 413, body
    assert body["error"]["code"] == "quota_exceeded"
    assert body["error"]["used"] == {"bytes": 600, "assets": 1}
    assert body["error"]["allowed"] == {"bytes": 1000, "assets": 5}
    assert len(asset_blobs(inspector)) == 1  # the refused upload stored nothing
    u = await usage(client, "alice")
    assert (u["bytes"], u["assets"], u["remaining_bytes"]) == (600, 1, 400)
    assert (await put(client, "alice", "c.bin", b"c" * 400)).status == 201  # exactly the room left
    assert (await usage(client, "alice"))["remaining_bytes"] == 0
    # another owner has its own counter (and no limit)
    assert (await put(client, "erin", "e.bin", b"e" * 5000)).status == 201
    u = await usage(client, "erin")
    assert (u["bytes"], u["assets"], u["max_bytes"], u["remaining_bytes"]) == (5000, 1, None, None)


async def test_unannounced_length_is_enforced_at_commit_and_stores_nothing(
    quota_settings: Any, make_client: Any
) -> None:
    settings = quota_settings()
    inspector = Inspector(settings)
    client = await make_client(settings)
    assert (await put(client, "alice", "a.bin", b"a" * 900)).status == 201

    async def chunked(size: int) -> Any:
        async def gen() -> Any:
            for _ in range(size // 50):
                yield b"x" * 50

        return await client.put("/asset/chunked.bin", data=gen(), headers=auth("alice"))

    resp = await chunked(200)  # no Content-Length: refused once it outgrows the room (100 bytes)
    body = await resp.json()
    assert resp.status == 413, body
    assert body["error"]["code"] == "quota_exceeded"
    assert body["error"]["used"] == {"bytes": 900, "assets": 1}
    assert len(asset_blobs(inspector)) == 1
    u = await usage(client, "alice")
    assert (u["bytes"], u["assets"]) == (900, 1)
    resp = await chunked(100)  # exactly the room
    assert resp.status == 201, await resp.text()
    assert (await usage(client, "alice"))["bytes"] == 1000


async def test_asset_count_limit_new_versions_and_deletes(quota_settings: Any, make_client: Any) -> None:
    client = await make_client(quota_settings())
    ids = []
    for i in range(3):  # the tenant acme allows 3 assets, shared by bob and carol
        resp = await put(client, "bob" if i % 2 else "carol", f"f{i}.txt", b"x" * 10)
        assert resp.status == 201, await resp.text()
        ids.append(((await resp.json())["asset"]["id"], "bob" if i % 2 else "carol"))
    resp = await put(client, "bob", "f3.txt", b"y")
    body = await resp.json()
    assert resp.status == 413 and body["error"]["code"] == "quota_exceeded", body
    assert "asset count" in body["error"]["message"]
    assert body["error"]["used"] == {"bytes": 30, "assets": 3}
    assert await usage(client, "bob") == await usage(client, "carol")  # one scope: the tenant
    assert (await usage(client, "bob"))["scope"] == "tenant:acme"
    # a new version adds bytes, not an asset
    asset_id, owner = ids[0]
    resp = await client.put(f"/asset/{asset_id}/content", data=b"z" * 100, headers=auth(owner))
    assert resp.status in (200, 201), await resp.text()
    u = await usage(client, owner)
    assert (u["bytes"], u["assets"]) == (130, 3)
    # deleting gives back every version's bytes and the asset
    assert (await client.delete(f"/asset/{asset_id}", headers=auth(owner))).status == 204
    u = await usage(client, owner)
    assert (u["bytes"], u["assets"]) == (20, 2)
    assert (await put(client, "bob", "f3.txt", b"y")).status == 201


async def test_a_form_over_quota_stores_none_of_its_files(quota_settings: Any, make_client: Any) -> None:
    settings = quota_settings()
    inspector = Inspector(settings)
    client = await make_client(settings)
    form = aiohttp.FormData()
    for i in range(3):
        form.add_field("file", b"f" * 400, filename=f"part{i}.bin")
    resp = await client.post("/asset", data=form, headers=auth("alice"))
    body = await resp.json()
    assert resp.status == 413 and body["error"]["code"] == "quota_exceeded", body
    assert asset_blobs(inspector) == []
    assert (await usage(client, "alice"))["bytes"] == 0
    assert not [i for i in inspector.catalog_items() if "HOLD" in json.dumps(i)]  # holds released


async def test_racing_uploads_across_two_processes_never_pass_the_quota(
    quota_settings: Any, make_client: Any
) -> None:
    """Two gateway apps (as two processes: nothing shared but the catalog), 24 uploads of 100 bytes at once
    against room for 10: exactly 10 succeed, whichever app they hit."""
    settings = quota_settings(principals={"key:alice": {"max_bytes": 1000}})
    inspector = Inspector(settings)
    apps = [await make_client(settings), await make_client(settings)]
    results = await asyncio.gather(
        *(put(apps[i % 2], "alice", f"r{i}.bin", bytes([i]) * 100) for i in range(24))
    )
    statuses = sorted(r.status for r in results)
    assert statuses.count(201) == 10 and statuses.count(413) == 14, statuses
    u = await usage(apps[0], "alice")
    assert (u["bytes"], u["assets"]) == (1000, 10)
    assert len(asset_blobs(inspector)) == 10
    assert not [i for i in inspector.catalog_items() if "HOLD" in json.dumps(i)]


async def test_tus_creation_is_refused_when_its_length_cannot_fit(
    quota_settings: Any, make_client: Any
) -> None:
    client = await make_client(quota_settings())
    headers = {"Tus-Resumable": "1.0.0", **auth("alice")}
    resp = await client.post("/files/", headers={**headers, "Upload-Length": "1001"})
    body = await resp.json()
    assert resp.status == 413 and body["error"]["code"] == "quota_exceeded", body
    resp = await client.post("/files/", headers={**headers, "Upload-Length": "300"})
    assert resp.status == 201, await resp.text()
    location = URL(resp.headers["Location"]).path
    patch = {**headers, "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"}
    resp = await client.patch(location, data=b"t" * 300, headers=patch)
    assert resp.status == 204, await resp.text()
    u = await usage(client, "alice")
    assert (u["bytes"], u["assets"]) == (300, 1)


async def test_curl_sends_no_byte_of_an_upload_over_quota(
    quota_settings: Any, make_client: Any, tmp_path: Path
) -> None:
    client = await make_client(quota_settings(principals={"key:alice": {"max_bytes": 1_000_000}}))
    big = tmp_path / "big.bin"
    big.write_bytes(b"\x01" * 3_000_000)  # curl asks for 100-continue above 1 MiB
    url = str(client.make_url("/asset/big.bin"))

    def curl() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["curl", "-sS", "-T", str(big), "-H", f"Authorization: Bearer {KEYS['alice']}",
             "-w", "\n%{http_code} %{size_upload}", url],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip

    done = await asyncio.get_running_loop().run_in_executor(None, curl)
    body, figures = done.stdout.rsplit("\n", 1)
    assert figures.split() == ["413", "0"], done.stdout + done.stderr
    assert json.loads(body)["error"]["code"] == "quota_exceeded"


async def test_holds_of_a_dead_process_are_reconciled(quota_settings: Any, make_client: Any) -> None:
    """A process that died between hold and settle: the sweeper settles a hold whose upload committed
    (to its exact size) and releases one whose upload never did."""
    client = await make_client(quota_settings())
    svc = client.app[SERVICE]
    resp = await put(client, "alice", "done.bin", b"d" * 200)
    version = (await resp.json())["asset"]
    meta = await (await client.get(f"/asset/{version['id']}/meta", headers=auth("alice"))).json()
    asset = await svc.backends.catalog.get_asset(version["id"])
    assert asset is not None and asset.latest is not None
    blob_key = asset.latest.blob_key
    assert meta["versions"][0]["size"] == 200
    committed = await svc.quotas.hold(
        "owner:key:alice", size=300, assets=0, asset_id=asset.id, blob_key=blob_key
    )  # as if it had been held for the upload that did commit, then the process died
    lost = await svc.quotas.hold(
        "owner:key:alice", size=400, assets=1, asset_id=str(uuid.uuid4()), blob_key="assets/x/y"
    )
    assert committed is not None and lost is not None
    assert (await usage(client, "alice"))["bytes"] == 900  # held room counts until reconciled
    assert await svc.quotas.reconcile() == 0  # not expired yet
    start = svc.backends.clock
    svc.backends.clock = lambda: start() + svc.backends.settings.quota_hold_seconds + 5
    assert await svc.quotas.reconcile() == 2
    u = await usage(client, "alice")
    # 200 (the upload's own settle) + 200 (the committed hold, corrected to the version's size) - lost
    assert (u["bytes"], u["assets"]) == (400, 1)
    assert await svc.quotas.reconcile() == 0


async def test_usage_needs_credentials_and_downloads_are_unaffected(
    quota_settings: Any, make_client: Any
) -> None:
    client = await make_client(quota_settings())
    assert (await client.get("/usage")).status in (401, 403)
    resp = await put(client, "alice", "a.bin", b"q" * 1000)
    asset = (await resp.json())["asset"]
    got = await client.get(f"/asset/{asset['id']}", headers=auth("alice"))
    assert hashlib.sha256(await got.read()).hexdigest() == asset["sha256"]
