"""Small helpers shared by HTTP tests."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from typing import Any

from aiohttp.test_utils import TestClient


async def chunked(data: bytes, size: int = 100_000) -> AsyncIterator[bytes]:
    """A body aiohttp sends with Transfer-Encoding: chunked (no Content-Length)."""
    for i in range(0, len(data), size):
        yield data[i : i + size]


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def upload(client: TestClient[Any, Any], name: str, data: bytes, **params: Any) -> dict[str, Any]:
    resp = await client.put(f"/asset/{name}", data=data, params=params)
    body = await resp.json()
    assert resp.status == 201, body
    return body  # type: ignore[no-any-return]


async def error_code(resp: Any) -> str:
    assert resp.content_type == "application/json"
    body = await resp.json()
    return str(body["error"]["code"])
