"""Faults: a gateway killed mid-upload, and S3 or DynamoDB failing in every way a network can fail."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from gateway.config import Settings
from tests.conftest import Inspector
from tests.faultproxy import (
    Action,
    Reset,
    Respond,
    Stall,
    Truncate,
    dynamodb_op,
    endpoint_of,
    fault_proxy,
    is_get_object,
    is_upload_part,
    via,
)
from tests.helpers import chunked, error_code, running_gateway, upload

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


# -- a backend that fails (tests/faultproxy.py between the gateway and S3 or DynamoDB) ----------------
# Short timeouts and few attempts so a stalled backend is given up on within seconds.
QUICK = {"backend_read_timeout": 1.0, "backend_max_attempts": 3}
ATTEMPTS = QUICK["backend_max_attempts"]
STALL = Stall(seconds=3.0)
FAILURES = [Respond(500), Reset(), STALL]


def quick(settings: Settings) -> Settings:
    return settings.model_copy(update=QUICK)


def assert_nothing_stored(settings: Settings) -> None:
    inspector = Inspector(settings)
    assert inspector.multipart_uploads() == []
    assert inspector.blob_keys() == []
    assert inspector.catalog_items() == []


@pytest.mark.parametrize("failure", FAILURES, ids=repr)
async def test_storage_failing_mid_upload_gives_502_and_stores_nothing(
    remote_settings: Settings, make_client: Any, failure: Action
) -> None:
    parts = {"seen": 0}

    def rule(request: web.Request) -> Action | None:
        if is_upload_part(request):
            parts["seen"] += 1
            return failure if parts["seen"] > 1 else None  # the first part lands, then storage breaks
        return None

    async with fault_proxy(endpoint_of(remote_settings.storage_url), rule) as proxy:
        client = await make_client(via(quick(remote_settings), storage=proxy))
        resp = await client.put("/asset/broken.bin", data=chunked(os.urandom(12 * MiB)))
        assert resp.status == 502
        assert await error_code(resp) == ("storage_timeout" if failure == STALL else "storage_error")
        # part 2 (and part 3, if it was already in flight) each tried exactly ATTEMPTS times, then given up
        assert parts["seen"] - 1 in (ATTEMPTS, 2 * ATTEMPTS)
    assert_nothing_stored(remote_settings)


@pytest.mark.parametrize("failure", [Respond(503), Reset(), STALL], ids=repr)
async def test_transient_storage_errors_on_upload_are_retried(
    remote_settings: Settings, make_client: Any, failure: Action
) -> None:
    left = {"failures": ATTEMPTS - 1}

    def rule(request: web.Request) -> Action | None:
        if is_upload_part(request) and left["failures"]:
            left["failures"] -= 1
            return failure
        return None

    async with fault_proxy(endpoint_of(remote_settings.storage_url), rule) as proxy:
        client = await make_client(via(quick(remote_settings), storage=proxy))
        data = os.urandom(11 * MiB)
        resp = await client.put("/asset/flaky.bin", data=chunked(data))
        assert resp.status == 201, await resp.text()
        assert left["failures"] == 0
        got = await client.get(f"/asset/{(await resp.json())['asset']['id']}")
        assert await got.read() == data


@pytest.mark.parametrize("failure", [Respond(503), Reset(), STALL, Truncate(after=MiB + 123)], ids=repr)
async def test_transient_storage_errors_on_download_are_retried(
    remote_settings: Settings, make_client: Any, failure: Action
) -> None:
    """Before the headers botocore retries; a body broken mid-stream is resumed from the next byte."""
    armed = {"failures": 0, "gets": 0}

    def rule(request: web.Request) -> Action | None:
        if is_get_object(request):
            armed["gets"] += 1
            if armed["failures"]:
                armed["failures"] -= 1
                return failure
        return None

    async with fault_proxy(endpoint_of(remote_settings.storage_url), rule) as proxy:
        client = await make_client(via(quick(remote_settings), storage=proxy))
        data = os.urandom(6 * MiB)
        asset = (await upload(client, "r.bin", data))["asset"]["id"]
        for headers, want in [({}, data), ({"Range": "bytes=1000-4000000"}, data[1000:4000001])]:
            armed |= {"failures": 1, "gets": 0}
            got = await client.get(f"/asset/{asset}", headers=headers)
            assert got.status == (206 if headers else 200)
            assert await got.read() == want
            assert armed == {"failures": 0, "gets": 2}


async def test_download_broken_for_good_aborts_the_connection(
    remote_settings: Settings, make_client: Any
) -> None:
    """Past the headers there is no status left to send: the client must see a broken body, not a short
    one that looks complete (Content-Length is exact, and the connection is dropped)."""
    gets = {"n": 0, "armed": False}

    def rule(request: web.Request) -> Action | None:
        if is_get_object(request) and gets["armed"]:
            gets["n"] += 1
            return Truncate(after=100_000)
        return None

    async with fault_proxy(endpoint_of(remote_settings.storage_url), rule) as proxy:
        client = await make_client(via(quick(remote_settings), storage=proxy))
        asset = (await upload(client, "b.bin", os.urandom(3 * MiB)))["asset"]["id"]
        gets["armed"] = True
        got = await client.get(f"/asset/{asset}")
        assert got.status == 200 and got.content_length == 3 * MiB
        with pytest.raises(aiohttp.ClientPayloadError):
            await got.read()
        assert gets["n"] == 1 + 3  # the first GET and three resumes (_S3Reader.RESUMES, per download)


async def test_catalog_failing_after_bytes_written_cleans_up_the_blob(
    remote_settings: Settings, make_client: Any
) -> None:
    """DynamoDB answers 500 to the commit transaction: the uploaded object must be deleted again."""
    commits = {"n": 0}

    def rule(request: web.Request) -> Action | None:
        if dynamodb_op(request) == "TransactWriteItems":
            commits["n"] += 1
            return Respond(500)
        return None

    async with fault_proxy(endpoint_of(remote_settings.catalog_url), rule) as proxy:
        client = await make_client(via(quick(remote_settings), catalog=proxy))
        resp = await client.put("/asset/c.bin", data=chunked(os.urandom(12 * MiB)), params={"token": "1"})
        assert resp.status == 503 and await error_code(resp) == "catalog_unavailable"
        assert commits["n"] == ATTEMPTS
    assert_nothing_stored(remote_settings)


@pytest.mark.parametrize("failure", FAILURES, ids=repr)
async def test_catalog_failing_on_reads(remote_settings: Settings, make_client: Any, failure: Action) -> None:
    """DynamoDB down (500, resets, stalls) while serving: 503 JSON after bounded attempts, and a share
    link whose claim could not be recorded is not consumed; once it answers again, all is as before."""
    broken = {"on": False, "reads": 0}

    def rule(request: web.Request) -> Action | None:
        if broken["on"] and dynamodb_op(request) in ("GetItem", "UpdateItem"):
            broken["reads"] += 1
            return failure
        return None

    async with fault_proxy(endpoint_of(remote_settings.catalog_url), rule) as proxy:
        client = await make_client(via(quick(remote_settings), catalog=proxy))
        body = await upload(client, "d.bin", b"data", token="1", max_downloads="1")
        asset, link = body["asset"]["id"], f"/asset-token/{body['token']['token']}"
        broken["on"] = True
        for url in (f"/asset/{asset}", link):
            resp = await client.get(url)
            assert resp.status == 503 and await error_code(resp) == "catalog_unavailable"
        assert broken["reads"] == 2 * ATTEMPTS
        broken["on"] = False
        got = await client.get(link)
        assert got.status == 200 and await got.read() == b"data"  # the failed tries did not count
        assert (await client.get(link)).status == 410


@pytest.mark.parametrize("failure", FAILURES, ids=repr)
async def test_storage_failing_before_a_download_starts_gives_502(
    remote_settings: Settings, make_client: Any, failure: Action
) -> None:
    """Nothing sent yet, so the client gets a proper JSON error, for a full and for an empty object
    (the latter is a HeadObject: no Range can ask S3 for zero bytes)."""
    broken = {"on": False}

    def rule(request: web.Request) -> Action | None:
        reads = is_get_object(request) or request.method == "HEAD"
        return failure if broken["on"] and reads else None

    async with fault_proxy(endpoint_of(remote_settings.storage_url), rule) as proxy:
        client = await make_client(via(quick(remote_settings), storage=proxy))
        ids = [
            (await upload(client, name, data))["asset"]["id"] for name, data in (("f", b"full"), ("e", b""))
        ]
        broken["on"] = True
        for asset in ids:
            resp = await client.get(f"/asset/{asset}")
            assert resp.status == 502
            assert await error_code(resp) == ("storage_timeout" if failure == STALL else "storage_error")
