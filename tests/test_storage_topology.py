"""Many storages: profiles × purposes × regions, tenants (a customer's bucket, isolated prefixes), SSE-KMS,
an assumed role, health per storage; downloads, zips, redirects, deletes, retention and gc each go to the
storage a version records. Driven over HTTP, bytes checked in the buckets and files themselves.
"""

from __future__ import annotations

import io
import os
import time
import uuid
import zipfile
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from gateway.gc import collect
from gateway.http.keys import SERVICE
from gateway.topology import PrincipalSpec
from tests.conftest import remote_endpoints
from tests.topology_setup import EXTERNAL_ID, ROLE_ARN, Topology, auth, build


@pytest.fixture
def topo(remote_kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> Topology:
    s3, ddb = remote_endpoints(remote_kind, request)
    return build(remote_kind, s3, ddb, tmp_path)


@pytest.fixture
async def gw(topo: Topology, make_client: Any) -> TestClient[Any, Any]:
    return await make_client(topo.settings)  # type: ignore[no-any-return]


async def put(gw: TestClient[Any, Any], who: str, data: bytes, name: str = "f.bin", **params: Any) -> Any:
    resp = await gw.put(f"/asset/{name}", data=data, params=params, headers=auth(who))
    body = await resp.json()
    assert resp.status == 201, body
    return body


async def content(gw: TestClient[Any, Any], who: str, asset_id: str) -> bytes:
    resp = await gw.get(f"/asset/{asset_id}", headers=auth(who))
    assert resp.status == 200, await resp.text()
    return await resp.read()


def only_key(topo: Topology, storage: str, asset_id: str) -> str:
    [key] = [k for k in topo.keys_in(storage) if f"assets/{asset_id}/" in k]
    return key


async def test_profile_purpose_and_region_choose_the_bucket(gw: TestClient[Any, Any], topo: Topology) -> None:
    data = os.urandom(70_000)
    # alice's own region is us-west: her uploads land in the us-west bucket unless she asks otherwise
    west = (await put(gw, "alice", data))["asset"]["id"]
    east = (await put(gw, "alice", data[::-1], region="us-east"))["asset"]["id"]
    thumb = (await put(gw, "alice", b"thumb", purpose="thumbnails"))["asset"]["id"]
    local = (await put(gw, "alice", b"on disk", profile="local"))["asset"]["id"]
    dave = (await put(gw, "dave", b"dave's"))["asset"]["id"]  # no region of his own: the profile default
    assert only_key(topo, "us-west-general", west).startswith("assets/")
    assert only_key(topo, "us-east-general", east).startswith("gw/assets/")  # the storage URL's prefix
    assert only_key(topo, "us-east-thumbs", thumb)
    assert (topo.files / only_key(topo, "files", local)).read_bytes() == b"on disk"
    assert only_key(topo, "us-east-general", dave)
    for asset_id, expected in [(west, data), (east, data[::-1]), (thumb, b"thumb"), (local, b"on disk")]:
        assert await content(gw, "alice", asset_id) == expected
    if topo.kind == "moto":  # RGW has one region; moto keeps the buckets' regions apart
        s3 = topo.s3("us-west-2")
        bucket, _ = topo.buckets["us-west-general"]
        assert s3.get_bucket_location(Bucket=bucket)["LocationConstraint"] == "us-west-2"


@pytest.mark.parametrize(
    ("who", "params", "status", "code"),
    [
        ("alice", {"profile": "nope"}, 400, "unknown_profile"),
        ("alice", {"purpose": "pdf-rendering"}, 400, "unknown_purpose"),
        ("alice", {"region": "eu-central"}, 400, "unknown_region"),
        ("alice", {"profile": "local", "region": "us-west"}, 400, "unknown_region"),
        ("alice", {"profile": "../etc"}, 400, "unknown_profile"),
        ("dave", {"profile": "local"}, 403, "profile_forbidden"),
    ],
)
async def test_bad_choices_are_refused_before_any_byte(
    gw: TestClient[Any, Any], topo: Topology, who: str, params: dict[str, str], status: int, code: str
) -> None:
    before = {s: topo.keys_in(s) for s in ("us-east-general", "us-west-general", "files")}
    resp = await gw.put("/asset/x.bin", data=b"x" * 1000, params=params, headers=auth(who))
    assert resp.status == status
    assert (await resp.json())["error"]["code"] == code
    assert {s: topo.keys_in(s) for s in before} == before


async def test_every_upload_kind_honours_the_choice(gw: TestClient[Any, Any], topo: Topology) -> None:
    """JSON, multipart form (fields before the file), tus metadata, new versions, upload links."""
    import base64

    resp = await gw.post(
        "/asset",
        json={"name": "j.bin", "data": {"image": base64.b64encode(b"json").decode()}, "profile": "local"},
        headers=auth("alice"),
    )
    assert resp.status == 201, await resp.text()
    assert only_key(topo, "files", (await resp.json())["asset"]["id"])

    form = aiohttp.FormData()
    form.add_field("region", "us-east")
    form.add_field("file", b"form bytes", filename="f.txt")
    resp = await gw.post("/asset", data=form, headers=auth("alice"))
    assert resp.status == 201, await resp.text()
    form_id = (await resp.json())["asset"]["id"]
    assert only_key(topo, "us-east-general", form_id)

    late = aiohttp.FormData()
    late.add_field("file", b"x", filename="f.txt")
    late.add_field("region", "us-east")
    resp = await gw.post("/asset", data=late, headers=auth("alice"))
    assert resp.status == 400 and (await resp.json())["error"]["code"] == "invalid_field"

    # a new version goes where this request chose, the old one stays where it was
    resp = await gw.put(
        f"/asset/{form_id}/content", data=b"v1 on disk", params={"profile": "local"}, headers=auth("alice")
    )
    assert resp.status == 201, await resp.text()
    assert await content(gw, "alice", form_id) == b"v1 on disk"
    resp = await gw.get(f"/asset/{form_id}", params={"version": 0}, headers=auth("alice"))
    assert await resp.read() == b"form bytes"

    meta = (
        "filename " + base64.b64encode(b"t.bin").decode() + ",profile " + base64.b64encode(b"local").decode()
    )
    resp = await gw.post(
        "/files/",
        headers=auth("alice") | {"Tus-Resumable": "1.0.0", "Upload-Length": "3", "Upload-Metadata": meta},
    )
    assert resp.status == 201, await resp.text()
    location = resp.headers["Location"]
    path = urlsplit(location).path
    resp = await gw.patch(
        path,
        data=b"tus",
        headers=auth("alice")
        | {"Tus-Resumable": "1.0.0", "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"},
    )
    assert resp.status == 204, await resp.text()
    assert any(k.endswith("/tus-" + path.rsplit("/", 1)[1]) for k in topo.keys_in("files"))

    resp = await gw.post("/upload-links", json={"region": "us-east"}, headers=auth("alice"))
    assert resp.status == 201, await resp.text()
    link = (await resp.json())["upload_link"]["url"]
    resp = await gw.put(urlsplit(link).path + "/through-link.bin", data=b"via link")
    assert resp.status == 201, await resp.text()
    assert only_key(topo, "us-east-general", (await resp.json())["asset"]["id"])


async def test_tenants_get_their_own_bucket_or_an_isolated_prefix(
    gw: TestClient[Any, Any], topo: Topology
) -> None:
    acme = (await put(gw, "bob", b"customer data"))["asset"]["id"]
    beta = (await put(gw, "carol", b"tenant beta"))["asset"]["id"]
    key = only_key(topo, "customer", acme)
    assert key.startswith("gateway/assets/")  # the path the customer granted, nothing outside it
    assert only_key(topo, "us-east-general", beta).startswith("gw/tenants/beta/assets/")
    assert await content(gw, "bob", acme) == b"customer data"
    # names never become keys: a file named like another tenant's path lands under carol's prefix
    evil = (await put(gw, "carol", b"evil", name="tenants-acme-assets.bin"))["asset"]["id"]
    assert only_key(topo, "us-east-general", evil).startswith("gw/tenants/beta/assets/")
    # another tenant cannot read it
    assert (await gw.get(f"/asset/{acme}", headers=auth("carol"))).status == 404
    if topo.kind == "moto":  # the role was assumed, with the external id the customer asked for
        from moto.sts.models import sts_backends

        roles = [
            r for b in sts_backends.values() for r in b["global"].assumed_roles if r.role_arn == ROLE_ARN
        ]
        assert roles and all(r.external_id == EXTERNAL_ID for r in roles)


async def test_sse_kms_objects_carry_the_key(gw: TestClient[Any, Any], topo: Topology) -> None:
    if "kms" not in topo.buckets:
        pytest.skip("the real lane's radosgw has no KMS configured; moto checks SSE-KMS")
    small = (await put(gw, "alice", b"secret", profile="secure"))["asset"]["id"]
    big = (await put(gw, "alice", os.urandom(6 * 1024 * 1024), profile="secure"))["asset"]["id"]  # multipart
    key_id = topo.settings.storages["kms"].kms_key_id
    for asset_id in (small, big):
        head = topo.head("kms", only_key(topo, "kms", asset_id))
        assert head["ServerSideEncryption"] == "aws:kms"
        assert key_id and head["SSEKMSKeyId"].endswith(key_id)
    assert await content(gw, "alice", small) == b"secret"


async def test_a_zip_mixes_three_storages_with_exact_length(gw: TestClient[Any, Any], topo: Topology) -> None:
    parts = {
        "west.bin": (os.urandom(300_000), {}),
        "east.bin": (os.urandom(200_000), {"region": "us-east"}),
        "disk.txt": (b"from the filesystem\n" * 500, {"profile": "local"}),
    }
    ids = {}
    for name, (data, params) in parts.items():
        ids[name] = (await put(gw, "alice", data, name=name, **params))["asset"]["id"]
    resp = await gw.post(
        "/zip", json={"assets": list(ids.values()), "name": "mixed.zip"}, headers=auth("alice")
    )
    assert resp.status == 200, await resp.text()
    body = await resp.read()
    assert int(resp.headers["Content-Length"]) == len(body)
    with zipfile.ZipFile(io.BytesIO(body)) as zf:
        assert {n: zf.read(n) for n in zf.namelist()} == {n: d for n, (d, _) in parts.items()}


async def test_redirects_presign_for_the_versions_bucket_and_region(topo: Topology, make_client: Any) -> None:
    gw = await make_client(topo.settings.model_copy(update={"redirect_downloads": True}))
    data = os.urandom(5000)
    body = await put(gw, "alice", data, token=1)  # alice: us-west
    token_url = urlsplit(body["token"]["url"]).path
    resp = await gw.get(token_url, allow_redirects=False)
    assert resp.status == 302
    location = resp.headers["Location"]
    bucket, region = topo.buckets["us-west-general"]
    assert f"/{bucket}/" in location
    credential = parse_qs(urlsplit(location).query)["X-Amz-Credential"][0]
    assert f"/{region}/s3/aws4_request" in credential
    async with aiohttp.ClientSession() as http, http.get(location) as direct:
        assert direct.status == 200 and await direct.read() == data
    # a filesystem storage cannot presign: the same kind of link is proxied
    body = await put(gw, "alice", b"proxied", profile="local", token=1)
    resp = await gw.get(urlsplit(body["token"]["url"]).path, allow_redirects=False)
    assert resp.status == 200 and await resp.read() == b"proxied"


async def test_delete_retention_and_gc_reach_every_storage(gw: TestClient[Any, Any], topo: Topology) -> None:
    svc = gw.app[SERVICE]
    where = {"us-west-general": {}, "us-east-general": {"region": "us-east"}, "files": {"profile": "local"}}
    deleted, expiring = {}, {}
    for storage, params in where.items():
        deleted[storage] = (await put(gw, "alice", b"delete me", **params))["asset"]["id"]
        expiring[storage] = (await put(gw, "alice", b"expire me", expires="1s", **params))["asset"]["id"]
        await gw.put(
            f"/asset/{deleted[storage]}/content", data=b"v1", headers=auth("alice")
        )  # alice: us-west
    for asset_id in deleted.values():
        assert (await gw.delete(f"/asset/{asset_id}", headers=auth("alice"))).status == 204
    svc.backends.clock = lambda: time.time() + 5
    assert await svc.retention.sweep_once() == len(expiring)
    for storage in where:
        left = "\n".join(topo.keys_in(storage))
        for asset_id in [*deleted.values(), *expiring.values()]:
            assert asset_id not in left, storage

    async def once() -> Any:
        yield b"orphan"

    orphans = {}
    for storage in where:
        orphans[storage] = f"assets/{uuid.uuid4()}/{uuid.uuid4().hex}"
        await svc.backends.storages.get(storage).store.write(orphans[storage], once(), size_hint=None)
    customer_orphan = f"assets/{uuid.uuid4()}/{uuid.uuid4().hex}"
    await svc.backends.storages.get("customer").store.write(customer_orphan, once(), size_hint=None)
    kept = (await put(gw, "alice", b"kept", region="us-east"))["asset"]["id"]
    report = await collect(svc.backends, grace=0, now=time.time() + 5)
    assert report.orphans_deleted == len(orphans)
    for storage, orphan in orphans.items():
        assert not any(k.endswith(orphan) for k in topo.keys_in(storage))
    assert any(k.endswith(customer_orphan) for k in topo.keys_in("customer"))  # gc = false: never touched
    assert await content(gw, "alice", kept) == b"kept"


async def test_health_names_the_storage_that_is_down(
    topo: Topology, make_client: Any, tmp_path: Path
) -> None:
    storages = dict(topo.settings.storages)
    storages["broken"] = storages["us-west-general"].model_copy(
        update={"url": "s3://nowhere?region=us-east-1&endpoint=http://127.0.0.1:9"}
    )
    profiles = dict(topo.settings.profiles)
    profiles["broken"] = profiles["local"].model_copy(update={"purposes": {"general": "broken"}})
    settings = topo.settings.model_copy(
        update={"storages": storages, "profiles": profiles, "health_cache_seconds": 0}
    )
    gw = await make_client(settings.model_copy(update={"principals": {"key:alice": PrincipalSpec()}}))
    resp = await gw.get("/healthcheck")
    body = await resp.json()
    assert resp.status == 200, body  # the default storage and the catalog are up
    assert body["storages"]["broken"] != "ok" and body["storages"]["us-east-general"] == "ok"
    assert (await put(gw, "alice", b"fine"))["asset"]["id"]  # the others' traffic goes on
    resp = await gw.put("/asset/x.bin", data=b"x", params={"profile": "broken"}, headers=auth("alice"))
    assert resp.status in (502, 503) and (await resp.json())["error"]["code"].startswith("storage")
