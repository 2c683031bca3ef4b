"""Faults: a gateway killed mid-upload, and a storage backend that fails (a fault-injecting proxy)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

from gateway.config import Settings
from tests.conftest import Inspector
from tests.helpers import chunked, running_gateway

MiB = 1024 * 1024


def test_kill_9_mid_upload_then_gc(backend_kind: str, settings: Settings, tmp_path: Path) -> None:
    env = {
        "GATEWAY_AUTO_INIT": "true",
        "GATEWAY_STORAGE_URL": settings.storage_url,
        "GATEWAY_CATALOG_URL": settings.catalog_url,
        "GATEWAY_S3_PART_SIZE": str(5 * MiB),
    }
    with running_gateway(tmp_path, env, "victim.log") as base:
        port = int(base.rsplit(":", 1)[1])
        sock = socket.create_connection(("127.0.0.1", port))
        sock.sendall(
            f"PUT /asset/doomed.bin HTTP/1.1\r\nHost: x\r\nContent-Length: {30 * MiB}\r\n\r\n".encode()
        )
        sock.sendall(os.urandom(12 * MiB))  # two S3 parts' worth, or a temp file on disk
        time.sleep(1.0)
        os.kill(base.proc.pid, signal.SIGKILL)
        sock.close()
        time.sleep(0.5)
    inspector = Inspector(settings)
    assert inspector.catalog_items() == [] or all("doomed" not in repr(i) for i in inspector.catalog_items())
    leftovers = inspector.multipart_uploads() if backend_kind != "local" else inspector.blob_keys()
    assert leftovers, "a killed upload leaves something for gc (else this test proves nothing)"
    with running_gateway(tmp_path, env, "after.log") as base:  # restart: nothing partial is visible
        with socket.create_connection(("127.0.0.1", int(base.rsplit(":", 1)[1]))):
            pass
    gc_env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")} | env
    out = subprocess.run(
        [sys.executable, "-m", "gateway", "gc", "--grace", "0"],
        env=gc_env,
        capture_output=True,
        text=True,
        check=True,
    )
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["aborted_uploads"] == 1
    assert inspector.multipart_uploads() == [] and inspector.blob_keys() == []


# -- a storage backend that fails ---------------------------------------------------------------------
Fault = Callable[[web.Request], int | None]  # status to answer instead of forwarding, or None


async def faulty_proxy(upstream: str, fault: Fault) -> AsyncIterator[str]:
    session = aiohttp.ClientSession(auto_decompress=False)

    async def forward(request: web.Request) -> web.StreamResponse:
        status = fault(request)
        if status is not None:
            await request.read()
            body = b"<Error><Code>InternalError</Code><Message>injected</Message></Error>"
            return web.Response(status=status, body=body, content_type="application/xml")
        # Host stays as the gateway sent it: it is part of the SigV4 signature real S3 engines check.
        headers = {k: v for k, v in request.headers.items() if k.lower() != "content-length"}
        async with session.request(
            request.method, upstream + request.path_qs, headers=headers, data=await request.read()
        ) as up:
            body = await up.read()
            drop = ("content-length", "transfer-encoding", "content-encoding", "connection")
            out = {k: v for k, v in up.headers.items() if k.lower() not in drop}
            return web.Response(status=up.status, body=body, headers=out)

    app = web.Application(client_max_size=64 * MiB)
    app.router.add_route("*", "/{tail:.*}", forward)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield str(server.make_url("")).rstrip("/")
    finally:
        await server.close()
        await session.close()


def via(settings: Settings, proxy: str) -> Settings:
    parts = urlsplit(settings.storage_url)
    endpoint = parse_qs(parts.query)["endpoint"][0]
    return settings.model_copy(update={"storage_url": settings.storage_url.replace(endpoint, proxy)})


def is_upload_part(request: web.Request) -> bool:
    return request.method == "PUT" and "partNumber" in request.query


async def test_storage_failing_mid_upload_gives_502_and_stores_nothing(
    remote_settings: Settings, make_client: Any
) -> None:
    calls = {"parts": 0}

    def fault(request: web.Request) -> int | None:
        if is_upload_part(request):
            calls["parts"] += 1
            return 500 if calls["parts"] > 1 else None  # the first part lands, then storage breaks
        return None

    async for proxy in faulty_proxy(
        parse_qs(urlsplit(remote_settings.storage_url).query)["endpoint"][0], fault
    ):
        client = await make_client(via(remote_settings, proxy))
        resp = await client.put("/asset/broken.bin", data=chunked(os.urandom(12 * MiB)))
        assert resp.status == 502
        body = await resp.json()
        assert body["error"]["code"] == "storage_error"
        assert 2 < calls["parts"] <= 2 + 4  # retried within bounds, then given up
    inspector = Inspector(remote_settings)
    assert (
        inspector.multipart_uploads() == []
        and inspector.blob_keys() == []
        and inspector.catalog_items() == []
    )


async def test_transient_storage_errors_are_retried(remote_settings: Settings, make_client: Any) -> None:
    failures = {"left": 2}

    def fault(request: web.Request) -> int | None:
        if is_upload_part(request) and failures["left"]:
            failures["left"] -= 1
            return 503
        return None

    async for proxy in faulty_proxy(
        parse_qs(urlsplit(remote_settings.storage_url).query)["endpoint"][0], fault
    ):
        client = await make_client(via(remote_settings, proxy))
        data = os.urandom(11 * MiB)
        resp = await client.put("/asset/flaky.bin", data=chunked(data))
        assert resp.status == 201, await resp.text()
        got = await client.get(f"/asset/{(await resp.json())['asset']['id']}")
        assert await got.read() == data
        assert failures["left"] == 0
