"""Scanning against a real clamd and a real moderation server, through the HTTP API on every backend pair.

The EICAR test string must be flagged by clamd and then be unservable on every route; a clean file must
become servable; a scanner that is down must never let a file through when scanning is required.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from standardwebhooks.webhooks import Webhook

from gateway.http.app import create_app
from tests.clamd import EICAR, running_clamd
from tests.helpers import error_code, free_port, running_gateway, upload
from tests.webhook_receiver import Receiver, wait_for

FAST = {
    "outbox_poll_interval": 0.05,
    "webhook_retry_base": 0.1,
    "webhook_retry_max_delay": 0.3,
    "webhook_allow_private": True,
}


@pytest.fixture(scope="module")
def clamd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_clamd(tmp_path_factory.mktemp("clamd"), free_port()) as address:
        yield address


async def scan_state(client: TestClient[Any, Any], aid: str, want: set[str]) -> dict[str, Any]:
    meta: dict[str, Any] = {}

    async def fetch() -> None:
        nonlocal meta
        meta = await (await client.get(f"/asset/{aid}/meta")).json()

    for _ in range(400):
        await fetch()
        if meta.get("asset", meta).get("scan") in want:
            break
        await asyncio.sleep(0.05)
    return meta.get("asset", meta)


async def test_eicar_flagged_by_clamd_and_blocked_everywhere(
    settings_factory: Any, make_client: Any, clamd: str
) -> None:
    receiver = await Receiver().start()
    secret = "whsec_" + base64.b64encode(os.urandom(32)).decode()
    try:
        settings = settings_factory(
            scanners=[{"kind": "clamav", "address": clamd}],
            event_sinks={"audit": {"url": receiver.url, "secret": secret, "types": ["scan.flagged"]}},
            redirect_downloads=True,  # a presigned redirect must not route around the block
            **FAST,
        )
        client = await make_client(settings)
        bad = await upload(client, "eicar.png", EICAR, token="1", max_downloads="1")
        good = await upload(client, "fine.txt", b"perfectly harmless", token="1")
        bad_id, good_id = bad["asset"]["id"], good["asset"]["id"]
        assert bad["asset"]["scan"] == "pending"  # written with the version
        meta = await scan_state(client, bad_id, {"flagged"})
        assert meta["scan"] == "flagged" and "Eicar-Test-Signature" in meta["scan_detail"]
        assert (await scan_state(client, good_id, {"clean"}))["scan"] == "clean"

        link = f"/asset-token/{bad['token']['token']}"
        blocked = [
            await client.get(f"/asset/{bad_id}"),
            await client.head(f"/asset/{bad_id}"),
            await client.get(link),
            await client.get(link, headers={"Range": "bytes=0-3"}),
            await client.get(f"{link}/thumbnail"),
            await client.get(f"/asset/{bad_id}/thumbnail", params={"w": 64}),
            await client.post("/zip", json={"assets": [good_id, bad_id]}),
        ]
        bundle = await (await client.post("/bundle", json={"assets": [good_id, bad_id]})).json()
        blocked.append(await client.get(f"/asset-token/{bundle['token']['token']}"))
        assert [r.status for r in blocked] == [451] * len(blocked)
        assert await error_code(blocked[0]) == "content_blocked"
        assert EICAR not in b"".join([await r.read() for r in blocked])
        ok = await client.get(f"/asset-token/{good['token']['token']}")
        assert ok.status == 200 and await ok.read() == b"perfectly harmless"
        listed = await (await client.get(f"/asset/{bad_id}/tokens")).json()
        assert listed["tokens"][0]["downloads"] == 0  # blocked responses never counted

        await wait_for(lambda: receiver.received, what="scan.flagged event")
        [event] = receiver.verified(secret).values()
        assert event["type"] == "scan.flagged" and event["data"]["asset_id"] == bad_id
    finally:
        await receiver.stop()


async def test_required_scanning_never_serves_unscanned(
    settings_factory: Any, make_client: Any, tmp_path: Path
) -> None:
    port = free_port()  # nothing listens yet: clamd is "down"
    settings = settings_factory(
        scanners=[{"kind": "clamav", "address": f"tcp://127.0.0.1:{port}", "timeout": 5}],
        scan_required=True,
        **FAST,
    )
    client = await make_client(settings)
    out = await upload(client, "doc.txt", b"waiting for a verdict")
    aid = out["asset"]["id"]
    first = await client.get(f"/asset/{aid}")
    assert first.status in (409, 503) and first.headers["Retry-After"]
    assert await error_code(first) in ("scan_pending", "scan_unavailable")
    meta = await scan_state(client, aid, {"error"})
    assert meta["scan"] == "error" and "ConnectionRefusedError" in meta["scan_detail"]
    down = await client.get(f"/asset/{aid}")
    assert down.status == 503 and await error_code(down) == "scan_unavailable"
    with running_clamd(tmp_path, port):  # clamd comes up: the retried scan gets its verdict
        meta = await scan_state(client, aid, {"clean"})
        assert meta["scan"] == "clean"
    resp = await client.get(f"/asset/{aid}")
    assert resp.status == 200 and await resp.read() == b"waiting for a verdict"


async def test_too_big_for_clamd_is_error_not_clean(
    settings_factory: Any, make_client: Any, clamd: str
) -> None:
    settings = settings_factory(
        scanners=[{"kind": "clamav", "address": clamd, "stream_max_bytes": 1000}], **FAST
    )
    client = await make_client(settings)
    aid = (await upload(client, "big.bin", os.urandom(5000)))["asset"]["id"]
    meta = await scan_state(client, aid, {"error"})
    assert meta["scan"] == "error" and "StreamMaxLength" in meta["scan_detail"]
    assert (await client.get(f"/asset/{aid}")).status == 200  # not required: served, and reported


async def test_moderation_webhook_verdicts(settings_factory: Any, aiohttp_client: Any) -> None:
    secret = "whsec_" + base64.b64encode(os.urandom(32)).decode()
    fetched: dict[str, str] = {}

    async def verdict(request: web.Request) -> web.Response:
        body = await request.read()
        ask = Webhook(secret).verify(body, {k.lower(): v for k, v in request.headers.items()})
        async with aiohttp.ClientSession() as http, http.get(ask["url"]) as resp:
            assert resp.status == 200
            data = await resp.read()
        fetched[ask["asset_id"]] = hashlib.sha256(data).hexdigest()
        flagged = b"nsfw" in data
        return web.json_response(
            {"verdict": "flagged" if flagged else "clean", "reason": "nsfw" if flagged else ""}
        )

    app = web.Application()
    app.router.add_post("/verdict", verdict)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    vport = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        port = free_port()
        settings = settings_factory(
            scanners=[{"kind": "webhook", "url": f"http://127.0.0.1:{vport}/verdict", "secret": secret}],
            public_base_url=f"http://127.0.0.1:{port}",
            **FAST,
        )
        client = await aiohttp_client(create_app(settings), server_kwargs={"port": port})
        nsfw = (await upload(client, "x.jpg", b"nsfw pixels"))["asset"]["id"]
        fine = (await upload(client, "y.jpg", b"a cat"))["asset"]["id"]
        assert (await scan_state(client, nsfw, {"flagged"}))["scan_detail"] == "webhook: nsfw"
        assert (await scan_state(client, fine, {"clean"}))["scan"] == "clean"
        assert fetched[nsfw] == hashlib.sha256(b"nsfw pixels").hexdigest()  # the exact bytes, by the URL
        assert (await client.get(f"/asset/{nsfw}")).status == 451
        assert await (await client.get(f"/asset/{fine}")).read() == b"a cat"
        tampered = await client.get(f"/scan-source/{fine}/0", params={"expires": "9999999999", "sig": "00"})
        assert tampered.status == 404
    finally:
        await runner.cleanup()


def test_rescan_command_flags_what_was_stored_before(tmp_path: Path, clamd: str) -> None:
    env = {
        "GATEWAY_STORAGE_URL": f"file://{tmp_path}/blobs",
        "GATEWAY_CATALOG_URL": f"sqlite:///{tmp_path}/catalog.db",
    }
    import urllib.error
    import urllib.request

    def put(base: str, name: str, data: bytes) -> str:
        req = urllib.request.Request(f"{base}/asset/{name}", data=data, method="PUT")
        with urllib.request.urlopen(req) as resp:
            return str(json.loads(resp.read())["asset"]["id"])

    with running_gateway(tmp_path, env, "before.log") as base:  # no scanners yet
        bad, good = put(base, "old.txt", EICAR), put(base, "old-ok.txt", b"fine")
    scanned = env | {"GATEWAY_SCANNERS": json.dumps([{"kind": "clamav", "address": clamd}])}
    run = subprocess.run(
        [sys.executable, "-m", "gateway", "scan", "--all"],
        env={k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")} | scanned,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = {json.loads(line)["asset_id"]: json.loads(line) for line in run.stdout.splitlines()}
    assert run.returncode == 3, run.stderr  # something was flagged
    assert lines[bad]["scan"] == "flagged" and lines[good]["scan"] == "clean"
    with running_gateway(tmp_path, scanned, "after.log") as base:
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{base}/asset/{bad}")
        assert refused.value.code == 451
        with urllib.request.urlopen(f"{base}/asset/{good}") as resp:
            assert resp.read() == b"fine"
