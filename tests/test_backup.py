"""Continuous backup: every version is copied to the storage's backup, durably, and read from it when
the primary fails; deleting the asset deletes the copies unless the backup retains them."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
import urllib.request
import uuid
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import boto3
from aiohttp import web

from gateway.http.keys import SERVICE
from tests.faultproxy import Action, Respond, endpoint_of, fault_proxy, is_get_object
from tests.helpers import free_port, running_gateway, upload

FAST = {"outbox_poll_interval": 0.05, "webhook_retry_base": 0.1, "webhook_retry_max_delay": 0.3}


class Copies:
    """The backup storage, looked at behind the gateway's back."""

    def __init__(self, url: str) -> None:
        self.url = url

    def read(self, key: str) -> bytes | None:
        if self.url.startswith("file://"):
            path = Path(self.url.removeprefix("file://")) / key
            return path.read_bytes() if path.exists() else None
        from urllib.parse import parse_qs, urlsplit

        parts = urlsplit(self.url)
        s3 = boto3.client("s3", endpoint_url=parse_qs(parts.query)["endpoint"][0], region_name="us-east-1")
        try:
            body = s3.get_object(Bucket=parts.netloc, Key=f"{parts.path.strip('/')}/{key}")["Body"]
            return bytes(body.read())
        except s3.exceptions.NoSuchKey:
            return None


def backup_url(primary: str, tmp_path: Path) -> str:
    if primary.startswith("file://"):
        return f"file://{tmp_path}/backup"
    bucket = primary.split("/")[2].split("?")[0]
    return primary.replace(f"s3://{bucket}/", f"s3://{bucket}-bk/", 1)


def with_backup(settings: Any, tmp_path: Path, *, retain: bool = False, primary: str | None = None) -> Any:
    url = primary or settings.storage_url
    storages = {
        "main": {"url": url, "backup": "copy"},
        "copy": {"url": backup_url(settings.storage_url, tmp_path), "retain": retain},
    }
    return type(settings)(**(settings.model_dump() | {"storages": storages, "default_storage": "main"}))


async def wait_copied(copies: Copies, key: str) -> bytes:
    for _ in range(300):
        data = await asyncio.to_thread(copies.read, key)
        if data is not None:
            return data
        await asyncio.sleep(0.05)
    raise AssertionError(f"{key} never reached the backup")


async def key_of(client: Any, aid: str) -> str:
    _, version = await client.app[SERVICE].assets.find(aid, owner=None)
    return str(version.blob_key)


async def test_copied_served_on_failure_and_deleted_with_the_asset(
    settings_factory: Any, make_client: Any, tmp_path: Path, inspector: Any
) -> None:
    settings = with_backup(settings_factory(**FAST), tmp_path)
    client = await make_client(settings)
    copies = Copies(settings.storages["copy"].url)
    data = os.urandom(700_000)
    out = await upload(client, "precious.bin", data, token="1")
    aid = out["asset"]["id"]
    key = await key_of(client, aid)
    assert await wait_copied(copies, key) == data
    svc = client.app[SERVICE]
    await svc.backends.storages.get("main").store.delete(key)  # the primary loses it
    got = await client.get(f"/asset/{aid}")
    assert got.status == 200 and await got.read() == data
    ranged = await client.get(f"/asset-token/{out['token']['token']}", headers={"Range": "bytes=100-199"})
    assert ranged.status == 206 and await ranged.read() == data[100:200]
    metrics = await (await client.get("/metrics")).text()
    assert "gateway_backup_reads_total 2.0" in metrics
    assert (await client.delete(f"/asset/{aid}")).status == 204
    assert await asyncio.to_thread(copies.read, key) is None  # copies go with the asset


async def test_a_retaining_backup_keeps_copies(
    settings_factory: Any, make_client: Any, tmp_path: Path
) -> None:
    settings = with_backup(settings_factory(**FAST), tmp_path, retain=True)
    client = await make_client(settings)
    copies = Copies(settings.storages["copy"].url)
    aid = (await upload(client, "keep.txt", b"keep me"))["asset"]["id"]
    key = await key_of(client, aid)
    await wait_copied(copies, key)
    resp = await client.put(f"/asset/{aid}/content", data=b"second version")
    assert resp.status in (200, 201)
    second = await key_of(client, aid)
    assert await wait_copied(copies, second) == b"second version"  # new versions are copied too
    assert (await client.delete(f"/asset/{aid}")).status == 204
    assert await asyncio.to_thread(copies.read, key) == b"keep me"


async def test_primary_broken_by_the_fault_proxy_is_read_from_the_backup(
    remote_settings: Any, make_client: Any, tmp_path: Path
) -> None:
    broken = {"on": False}

    def rule(request: web.Request) -> Action | None:
        return Respond(500) if broken["on"] and is_get_object(request) else None

    async with fault_proxy(endpoint_of(remote_settings.storage_url), rule) as proxy:
        base = remote_settings.model_copy(update=FAST)
        primary = base.storage_url.replace(endpoint_of(base.storage_url), proxy)
        settings = with_backup(base.model_copy(update={"backend_max_attempts": 2}), tmp_path, primary=primary)
        client = await make_client(settings)
        data = os.urandom(300_000)
        aid = (await upload(client, "x.bin", data))["asset"]["id"]
        await wait_copied(Copies(settings.storages["copy"].url), await key_of(client, aid))
        broken["on"] = True
        got = await client.get(f"/asset/{aid}")
        assert got.status == 200 and await got.read() == data and got.headers["ETag"]


def test_pending_copies_survive_kill_9(tmp_path: Path, moto_endpoint: str) -> None:
    bucket = f"bk-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1").create_bucket(Bucket=bucket)
    dead = f"s3://{bucket}/copies?region=us-east-1&endpoint=http://127.0.0.1:{free_port()}"
    alive = f"s3://{bucket}/copies?region=us-east-1&endpoint={moto_endpoint}"

    def env(backup: str) -> dict[str, str]:
        storages = {"main": {"url": f"file://{tmp_path}/blobs", "backup": "copy"}, "copy": {"url": backup}}
        return {
            "GATEWAY_STORAGES": json.dumps(storages),
            "GATEWAY_DEFAULT_STORAGE": "main",
            "GATEWAY_CATALOG_URL": f"sqlite:///{tmp_path}/catalog.db",
            "GATEWAY_OUTBOX_POLL_INTERVAL": "0.1",
            "GATEWAY_OUTBOX_LEASE": "1",
            "GATEWAY_WEBHOOK_RETRY_BASE": "0.2",
            "GATEWAY_WEBHOOK_RETRY_MAX_DELAY": "0.5",
            "GATEWAY_BACKEND_MAX_ATTEMPTS": "1",
            "GATEWAY_BACKEND_CONNECT_TIMEOUT": "1",
        }

    payloads = {f"f{i}.bin": os.urandom(50_000) for i in range(3)}
    with ExitStack() as stack:
        first = stack.enter_context(running_gateway(tmp_path, env(dead), "first.log"))
        for name, data in payloads.items():
            req = urllib.request.Request(f"{first}/asset/{name}", data=data, method="PUT")
            with urllib.request.urlopen(req) as resp:
                assert resp.status == 201
        first.proc.send_signal(signal.SIGKILL)
        first.proc.wait()
    copies = Copies(alive)
    blobs = {
        p.read_bytes(): str(p.relative_to(tmp_path / "blobs"))
        for p in (tmp_path / "blobs").rglob("*")
        if p.is_file()
    }
    assert len(blobs) == 3
    with running_gateway(tmp_path, env(alive), "second.log"):
        for data, key in blobs.items():
            for _ in range(300):
                if copies.read(key) is not None:
                    break
                time.sleep(0.05)
            assert copies.read(key) == data
