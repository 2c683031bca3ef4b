"""Statelessness across processes: two `gateway serve` processes on one backend share every rule."""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import zipfile
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gateway.config import Settings
from tests.helpers import running_gateway

LIMIT = 7
REQUESTS = 40


@pytest.mark.parametrize("topology", ["two-nodes", "two-workers"])
async def test_download_limit_exact_across_two_processes(
    backend_kind: str, settings: Settings, tmp_path: Path, topology: str
) -> None:
    """Two separate servers, or one `gateway serve --workers 2` (the kernel spreads the connections,
    one per request here, over both workers): the limit is exact either way."""
    env = {"GATEWAY_AUTO_INIT": "true"}
    if backend_kind != "local":
        env |= {"GATEWAY_STORAGE_URL": settings.storage_url, "GATEWAY_CATALOG_URL": settings.catalog_url}
    data = os.urandom(256 * 1024)
    with contextlib.ExitStack() as stack:
        if topology == "two-nodes":
            node_a = stack.enter_context(running_gateway(tmp_path, env, "a.log"))
            node_b = stack.enter_context(running_gateway(tmp_path, env, "b.log"))
        else:
            node_a = node_b = stack.enter_context(running_gateway(tmp_path, env | {"GATEWAY_WORKERS": "2"}))
        fresh_connections = aiohttp.TCPConnector(force_close=True)
        async with aiohttp.ClientSession(connector=fresh_connections) as http:
            async with http.put(
                f"{node_a}/asset/shared.bin", data=data, params={"token": "1", "max_downloads": str(LIMIT)}
            ) as resp:
                assert resp.status == 201
                secret = (await resp.json())["token"]["token"]

            async def fetch(i: int) -> int:
                node = node_a if i % 2 else node_b
                async with http.get(f"{node}/asset-token/{secret}") as resp:
                    if resp.status == 200:
                        assert await resp.read() == data
                    return resp.status

            statuses = await asyncio.gather(*(fetch(i) for i in range(REQUESTS)))
            assert statuses.count(200) == LIMIT
            assert statuses.count(410) == REQUESTS - LIMIT

            # revoke through one node, refused at once by the other
            async with http.put(f"{node_b}/asset/r.bin", data=b"r", params={"token": "1"}) as resp:
                other = (await resp.json())["token"]["token"]
            async with http.delete(f"{node_a}/asset-token/{other}") as resp:
                assert resp.status == 204
            async with http.get(f"{node_b}/asset-token/{other}") as resp:
                assert resp.status == 410
            if topology == "two-workers":  # /metrics from any worker counts every worker's responses
                async with http.get(f"{node_a}/metrics") as resp:
                    text = await resp.text()
                served = _sample(
                    text, 'gateway_requests_total{method="GET",route="token-download",status="200"}'
                )
                assert served == LIMIT


def _sample(exposition: str, name: str) -> float:
    for line in exposition.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in /metrics")


async def test_two_nodes_share_everything(backend_kind: str, settings: Settings, tmp_path: Path) -> None:
    """Upload through one node; download, mint, revoke, version, zip, delete and hit limits through the
    other. Nothing a node knows lives in its own memory."""
    env = {"GATEWAY_AUTO_INIT": "true", "GATEWAY_S3_PART_SIZE": str(5 * 1024 * 1024)}
    if backend_kind != "local":
        env |= {"GATEWAY_STORAGE_URL": settings.storage_url, "GATEWAY_CATALOG_URL": settings.catalog_url}
    big = os.urandom(12 * 1024 * 1024 + 17)  # three S3 parts
    with (
        running_gateway(tmp_path, env, "a.log") as a,
        running_gateway(tmp_path, env, "b.log") as b,
    ):
        async with aiohttp.ClientSession() as http:

            async def chunks() -> Any:
                for i in range(0, len(big), 1 << 20):
                    yield big[i : i + (1 << 20)]

            async with http.put(f"{a}/asset/big.bin", data=chunks()) as resp:
                assert resp.status == 201
                asset = (await resp.json())["asset"]["id"]
            async with http.get(f"{b}/asset/{asset}") as resp:
                assert resp.status == 200 and await resp.read() == big
            async with http.get(f"{b}/asset/{asset}", headers={"Range": "bytes=5242870-5242900"}) as resp:
                assert resp.status == 206 and await resp.read() == big[5242870:5242901]

            # a link minted on B, listed on A, used up across both
            async with http.post(
                f"{b}/asset/{asset}/tokens", json={"max_downloads": 2, "expiry": "1h"}
            ) as resp:
                assert resp.status == 201
                minted = (await resp.json())["token"]
            async with http.get(f"{a}/asset/{asset}/tokens") as resp:
                assert [t["token_id"] for t in (await resp.json())["tokens"]] == [minted["token_id"]]
            link = f"/asset-token/{minted['token']}"
            for node in (a, b):
                async with http.get(f"{node}{link}") as resp:
                    assert resp.status == 200 and await resp.read() == big
            for node in (a, b):
                async with http.get(f"{node}{link}") as resp:
                    assert resp.status == 410 and (await resp.json())["error"]["code"] == "token_exhausted"

            # minted on A, revoked by id on B, refused on A
            async with http.post(f"{a}/asset/{asset}/tokens", json={}) as resp:
                other = (await resp.json())["token"]
            async with http.delete(f"{b}/asset/{asset}/tokens/{other['token_id']}") as resp:
                assert resp.status == 204
            async with http.get(f"{a}/asset-token/{other['token']}") as resp:
                assert resp.status == 410 and (await resp.json())["error"]["code"] == "token_revoked"

            # a new version through B is the latest on A; a zip through A holds assets from both nodes
            async with http.put(f"{b}/asset/{asset}/content", data=b"v1") as resp:
                assert resp.status == 201 and (await resp.json())["asset"]["version"] == 1
            async with http.get(f"{a}/asset/{asset}") as resp:
                assert await resp.read() == b"v1"
            async with http.put(f"{b}/asset/small.txt", data=b"small") as resp:
                small = (await resp.json())["asset"]["id"]
            members = [{"id": asset, "version": 0, "path": "big.bin"}, small]
            async with http.post(f"{a}/zip", json={"assets": members}) as resp:
                assert resp.status == 200
                archive = zipfile.ZipFile(io.BytesIO(await resp.read()))
            assert archive.read("big.bin") == big and archive.read("small.txt") == b"small"

            # deleted through A: gone on B at once
            async with http.delete(f"{a}/asset/{asset}") as resp:
                assert resp.status == 204
            async with http.get(f"{b}/asset/{asset}") as resp:
                assert resp.status == 404
