"""A link's download history for its owner: time, bytes, status, and a keyed hash of the client."""

from __future__ import annotations

import asyncio
import os
from typing import Any

from tests.helpers import error_code, upload


async def history_of(client: Any, aid: str, token_id: str, *, entries: int) -> list[dict[str, Any]]:
    """The history once it holds ``entries`` (bounded wait): an entry is written when its response has
    ended, which is after the client has read it, so a fast reader can get there first."""
    for _ in range(100):
        got = await client.get(f"/asset/{aid}/tokens/{token_id}/downloads")
        history: list[dict[str, Any]] = (await got.json())["downloads"]
        if len(history) >= entries:
            return history
        await asyncio.sleep(0.05)
    return history


async def test_history_of_a_link(settings_factory: Any, make_client: Any) -> None:
    client = await make_client(settings_factory(trusted_proxies=["127.0.0.1/32"]))
    data = os.urandom(3000)
    out = await upload(client, "h.bin", data, token="1")
    aid, token = out["asset"]["id"], out["token"]
    url = f"/asset-token/{token['token']}"
    a, b = {"X-Forwarded-For": "203.0.113.7"}, {"X-Forwarded-For": "198.51.100.9"}
    assert (await client.get(url, headers=a)).status == 200
    assert (await client.get(url, headers=a | {"Range": "bytes=0-99"})).status == 206
    assert (await client.get(url, headers=b)).status == 200
    assert (await client.head(url, headers=b)).status == 200  # not a download: not in the history
    history = await history_of(client, aid, token["token_id"], entries=3)
    assert [(h["status"], h["bytes"]) for h in history] == [(200, 3000), (206, 100), (200, 3000)]
    clients = [h["client"] for h in history]
    assert clients[1] == clients[2] != clients[0]  # the same address, and another
    assert all("203.0.113.7" not in c and "198.51.100.9" not in c and len(c) == 32 for c in clients)
    limited = await (await client.get(f"/asset/{aid}/tokens/{token['token_id']}/downloads?limit=1")).json()
    assert len(limited["downloads"]) == 1
    bad = await client.get(f"/asset/{aid}/tokens/{token['token_id']}/downloads?limit=0")
    assert bad.status == 400 and await error_code(bad) == "invalid_limit"
    unknown = await client.get(f"/asset/{aid}/tokens/{'0' * 16}/downloads")
    assert unknown.status == 404


async def test_interrupted_transfer_shows_what_was_sent(client: Any) -> None:
    data = os.urandom(48 * 1024 * 1024)  # more than loopback socket buffers hold
    out = await upload(client, "big.bin", data, token="1")
    resp = await client.get(f"/asset-token/{out['token']['token']}")
    await resp.content.readexactly(64 * 1024)
    resp.close()
    [entry] = await history_of(client, out["asset"]["id"], out["token"]["token_id"], entries=1)
    assert entry["status"] == 200 and 64 * 1024 <= entry["bytes"] < len(data)


async def test_history_can_be_off(settings_factory: Any, make_client: Any) -> None:
    client = await make_client(settings_factory(download_history_days=0))
    out = await upload(client, "o.bin", b"off", token="1")
    assert (await client.get(f"/asset-token/{out['token']['token']}")).status == 200
    await asyncio.sleep(0.5)  # an entry, were one written, lands after the response: give it the time
    got = await client.get(f"/asset/{out['asset']['id']}/tokens/{out['token']['token_id']}/downloads")
    assert (await got.json())["downloads"] == []
