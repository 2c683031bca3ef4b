"""`gateway storages check` and `gateway adopt`, run as the CLI runs them, against moto / RGW buckets;
and the storage-topology examples of the docs, parsed by the real settings loader."""

from __future__ import annotations

import asyncio
import json
import tomllib
import zipfile
from concurrent.futures import ThreadPoolExecutor
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest

from gateway.cli import main
from gateway.config import Settings
from gateway.http.app import create_app
from tests.conftest import remote_endpoints
from tests.topology_setup import Topology, auth, build

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def topo(remote_kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> Topology:
    s3, ddb = remote_endpoints(remote_kind, request)
    return build(remote_kind, s3, ddb, tmp_path)


def use_env(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> None:
    """The CLI reads the environment: the same topology, as JSON-valued GATEWAY_* variables."""
    dumped = settings.model_dump(mode="json")
    for key in ("storages", "profiles", "tenants", "principals", "api_keys"):
        monkeypatch.setenv(f"GATEWAY_{key.upper()}", json.dumps(dumped[key]))
    for key in ("catalog_url", "default_storage"):
        monkeypatch.setenv(f"GATEWAY_{key.upper()}", str(dumped[key]))
    monkeypatch.setenv("GATEWAY_LOG_LEVEL", "WARNING")


def test_storages_check_reports_each_permission(
    topo: Topology, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    use_env(monkeypatch, topo.settings)
    assert main(["init"]) == 0  # creates the buckets of the configured storages (not "outside")
    storages = dict(topo.settings.storages)
    bucket, region = topo.buckets["customer"]
    # a storage outside what was granted: on RGW the customer's policy covers gateway/ only; on moto
    # (no policy enforcement) a bucket that does not exist stands in for the refusal
    outside = f"s3://{bucket}/other?region={region}&endpoint={topo.endpoint}"
    if topo.kind == "moto":
        outside = f"s3://missing-{bucket}?region=us-east-1&endpoint={topo.endpoint}"
    storages["outside"] = storages["customer"].model_copy(update={"url": outside})
    settings = topo.settings.model_copy(update={"storages": storages})
    use_env(monkeypatch, settings)
    capsys.readouterr()
    assert main(["storages", "check"]) == 1
    reports = {r["storage"]: r for r in map(json.loads, capsys.readouterr().out.splitlines())}
    assert set(reports) == set(storages)
    for name in set(storages) - {"outside"}:
        assert reports[name]["ok"] is True, reports[name]
        for permission in ("write", "read", "delete", "list", "multipart"):
            assert reports[name][permission] == "ok", (name, permission, reports[name])
    bad = reports["outside"]
    assert bad["ok"] is False
    assert ("AccessDenied" if topo.kind == "real" else "NoSuchBucket") in bad["write"]
    assert bad["read"] == "not tried (write failed)"
    assert main(["storages", "check", "customer"]) == 0
    assert main(["storages", "check", "nope"]) == 2
    # nothing of the probes is left behind
    assert not [k for k in topo.keys_in("customer") if "gateway-probe" in k]


async def test_adopt_registers_existing_objects_once(
    topo: Topology, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], aiohttp_client: Any
) -> None:
    bucket, region = topo.buckets["customer"]
    s3 = topo.s3(region, customer=True)
    bodies = {
        f"gateway/originals/{i:04d}/photo-{i}.jpg": f"image {i}".encode() * (i % 7 + 1) for i in range(300)
    }
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda kv: s3.put_object(Bucket=bucket, Key=kv[0], Body=kv[1]), bodies.items()))
    use_env(monkeypatch, topo.settings)
    assert await asyncio.to_thread(main, ["init"]) == 0

    # a first run stopped half-way (only one prefix), then the whole: every object exactly once
    assert (
        await asyncio.to_thread(main, ["adopt", "customer", "--prefix", "originals/00", "--owner", "key:bob"])
        == 0
    )
    first = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert first["adopted"] == 100 and first["already"] == 0
    assert await asyncio.to_thread(main, ["adopt", "customer", "--owner", "key:bob"]) == 0
    out = capsys.readouterr()
    assert out.out, out.err[-2000:]
    second = json.loads(out.out.splitlines()[-1])
    assert second == {"seen": 300, "adopted": 200, "already": 100, "skipped": 0, "bytes": second["bytes"]}
    assert second["bytes"] == sum(
        len(v) for k, v in bodies.items() if not k.startswith("gateway/originals/00")
    )
    assert await asyncio.to_thread(main, ["adopt", "customer", "--owner", "key:bob"]) == 0
    third = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert third["adopted"] == 0 and third["already"] == 300

    gw = await aiohttp_client(create_app(topo.settings))
    ids: list[str] = []
    cursor = None
    while True:
        params = {"limit": 1000} | ({"cursor": cursor} if cursor else {})
        resp = await gw.get("/assets", params=params, headers=auth("bob"))
        body = await resp.json()
        assert resp.status == 200, body
        ids += [a["id"] for a in body["assets"]]
        cursor = body.get("next_cursor")
        if not cursor:
            break
    assert len(ids) == len(set(ids)) == 300
    resp = await gw.get(f"/asset/{ids[0]}", headers=auth("bob"))
    data = await resp.read()
    assert resp.status == 200 and data in bodies.values()
    assert resp.headers["ETag"].startswith('"adopted-') and "Repr-Digest" not in resp.headers
    assert (await gw.get(f"/asset/{ids[0]}", headers=auth("carol"))).status == 404  # bob's only

    resp = await gw.post("/zip", json={"assets": ids[:3]}, headers=auth("bob"))  # fills CRC and sha256
    assert resp.status == 200, await resp.text()
    with zipfile.ZipFile(BytesIO(await resp.read())) as zf:
        assert all(zf.read(n) in bodies.values() for n in zf.namelist())
    meta = await (await gw.get(f"/asset/{ids[0]}/meta", headers=auth("bob"))).json()
    import hashlib

    assert meta["versions"][0]["sha256"] == hashlib.sha256(data).hexdigest()
    resp = await gw.get(f"/asset/{ids[0]}", headers=auth("bob"))
    assert resp.headers["ETag"] == f'"{hashlib.sha256(data).hexdigest()}"'


@pytest.mark.parametrize(
    "example", sorted((ROOT / "deploy" / "examples").glob("*.toml")), ids=lambda p: p.name
)
def test_documented_topologies_load(example: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The TOML of docs/storage-topology.md, as shipped in deploy/examples, is valid configuration."""
    from gateway.config import load_settings

    monkeypatch.setenv("GATEWAY_CONFIG_FILE", str(example))
    for name in tomllib.loads(example.read_text()).get("x_required_env", []):
        monkeypatch.setenv(name, "placeholder")
    settings = load_settings()
    assert len(settings.storages) >= 4 and settings.profiles and settings.tenants
    doc = (ROOT / "docs" / "storage-topology.md").read_text()
    assert example.read_text().strip() in doc  # the page shows exactly what is tested
