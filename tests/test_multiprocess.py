"""Statelessness across processes: two `gateway serve` processes on one backend, one token limit."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import aiohttp

from gateway.config import Settings
from tests.helpers import running_gateway

LIMIT = 7
REQUESTS = 40


async def test_download_limit_exact_across_two_processes(
    backend_kind: str, settings: Settings, tmp_path: Path
) -> None:
    env = {"GATEWAY_AUTO_INIT": "true"}
    if backend_kind != "local":
        env |= {"GATEWAY_STORAGE_URL": settings.storage_url, "GATEWAY_CATALOG_URL": settings.catalog_url}
    data = os.urandom(256 * 1024)
    with (
        running_gateway(tmp_path, env, "a.log") as node_a,
        running_gateway(tmp_path, env, "b.log") as node_b,
    ):
        async with aiohttp.ClientSession() as http:
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
