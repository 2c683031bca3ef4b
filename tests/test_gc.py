"""`gateway gc`: stale partial uploads and unreferenced blobs go; everything referenced stays."""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
from aiohttp.test_utils import TestClient

from gateway.gc import collect
from gateway.http.keys import SERVICE
from tests.conftest import Inspector
from tests.helpers import upload


async def test_gc_removes_orphans_and_stale_uploads(
    client: TestClient[Any, Any], inspector: Inspector, backend_kind: str
) -> None:
    svc = client.app[SERVICE]
    data = os.urandom(1000)
    kept = (await upload(client, "kept.bin", data))["asset"]["id"]
    await client.put(f"/asset/{kept}/content", data=b"v1")

    async def once() -> Any:
        yield b"orphan bytes"

    orphan = f"assets/{uuid.uuid4()}/{uuid.uuid4().hex}"  # bytes whose catalog commit never happened
    await svc.backends.store.write(orphan, once(), size_hint=None)
    store = svc.backends.store.__dict__.get("_inner", svc.backends.store)  # behind the metrics wrapper
    if inspector.settings.storage_url.startswith("s3://"):
        parts = urlsplit(inspector.settings.storage_url)
        s3 = boto3.client("s3", endpoint_url=parse_qs(parts.query)["endpoint"][0])
        up = s3.create_multipart_upload(Bucket=parts.netloc, Key="pfx/assets/x/crashed")  # a kill -9 leftover
        s3.upload_part(
            Bucket=parts.netloc, Key="pfx/assets/x/crashed", UploadId=up["UploadId"], PartNumber=1, Body=b"x"
        )
    else:
        tmp = Path(store.root) / "assets" / "x" / ".tmp-crashed.123"
        tmp.parent.mkdir(parents=True)
        tmp.write_bytes(b"partial")
    assert len(inspector.blob_keys()) == 4 or inspector.multipart_uploads()

    versions = await svc.backends.catalog.list_versions(kept)
    assert all(v.blob_key.startswith(f"assets/{kept}/") for v in versions)  # grouped by asset

    report = await collect(svc.backends, grace=3600)  # everything is young: no blob goes
    assert report.orphans_deleted == 0
    # moto reports a fixed 2010 'Initiated' for every multipart upload, so there the young one goes now
    fake_clock = backend_kind == "moto"
    assert report.aborted_uploads == (1 if fake_clock else 0)

    report = await collect(svc.backends, grace=0, now=time.time() + 5)
    assert report.orphans_deleted == 1 and report.blobs_checked == 3
    assert report.aborted_uploads == (0 if fake_clock else 1)
    assert inspector.multipart_uploads() == []
    assert orphan not in "\n".join(inspector.blob_keys())
    assert not any(".tmp-" in k for k in inspector.blob_keys())
    assert await (await client.get(f"/asset/{kept}?version=0")).read() == data
    assert await (await client.get(f"/asset/{kept}")).read() == b"v1"


def test_gc_command(settings: Any, monkeypatch: Any, capsys: Any) -> None:
    import json

    from gateway.cli import main

    monkeypatch.setenv("GATEWAY_STORAGE_URL", settings.storage_url)
    monkeypatch.setenv("GATEWAY_CATALOG_URL", settings.catalog_url)
    assert main(["init"]) == 0
    assert main(["gc", "--grace", "60"]) == 0
    out = capsys.readouterr().out.strip().splitlines()[-1]
    assert json.loads(out) == {
        "aborted_uploads": 0,
        "staging_deleted": 0,
        "blobs_checked": 0,
        "orphans_deleted": 0,
    }
