"""Integrity and safe serving of downloads: Repr-Digest, inline only for safe types, a download origin."""

from __future__ import annotations

import base64
import hashlib
import os
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.helpers import error_code, upload


def digest_of(data: bytes) -> str:
    return f"sha-256=:{base64.b64encode(hashlib.sha256(data).digest()).decode()}:"


async def test_repr_digest_on_every_transfer_of_a_file(client: TestClient[Any, Any]) -> None:
    data = os.urandom(5000)
    out = await upload(client, "d.bin", data, token="1")
    for url in (f"/asset/{out['asset']['id']}", f"/asset-token/{out['token']['token']}"):
        full = await client.get(url)
        assert full.status == 200 and await full.read() == data
        assert full.headers["Repr-Digest"] == digest_of(data)
        part = await client.get(url, headers={"Range": "bytes=10-19"})
        assert part.status == 206 and part.headers["Repr-Digest"] == digest_of(data)  # the representation's
        head = await client.head(url)
        assert head.headers["Repr-Digest"] == digest_of(data)
    declined = await client.get(f"/asset/{out['asset']['id']}", headers={"Want-Repr-Digest": "sha-256=0"})
    assert "Repr-Digest" not in declined.headers
    other = await client.get(f"/asset/{out['asset']['id']}", headers={"Want-Repr-Digest": "sha-512=3"})
    assert other.headers["Repr-Digest"] == digest_of(data)


async def test_zips_send_no_digest_they_do_not_know(client: TestClient[Any, Any]) -> None:
    aid = (await upload(client, "z.txt", b"z"))["asset"]["id"]
    resp = await client.post("/zip", json={"assets": [aid]})
    assert resp.status == 200 and "Repr-Digest" not in resp.headers


@pytest.mark.parametrize(
    ("name", "content_type", "inline"),
    [
        ("p.png", "image/png", True),
        ("v.mp4", "video/mp4", True),
        ("a.pdf", "application/pdf", True),
        ("t.txt", "text/plain; charset=utf-8", True),
        ("s.svg", "image/svg+xml", False),
        ("h.html", "text/html", False),
        ("x.xml", "application/xml", False),
        ("j.js", "text/javascript", False),
        ("u.bin", "application/octet-stream", False),
    ],
)
async def test_inline_only_for_safe_types(
    client: TestClient[Any, Any], name: str, content_type: str, inline: bool
) -> None:
    resp = await client.put(
        f"/asset/{name}", data=b"<script>alert(1)</script>", headers={"Content-Type": content_type}
    )
    out = await resp.json()
    for url in (f"/asset/{out['asset']['id']}", None):
        if url is None:
            token = await (await client.post(f"/asset/{out['asset']['id']}/tokens", json={})).json()
            url = f"/asset-token/{token['token']['token']}"
        plain = await client.get(url)
        assert plain.headers["Content-Disposition"].startswith("attachment;")
        asked = await client.get(url, params={"inline": "1"})
        expected = "inline;" if inline else "attachment;"
        assert asked.headers["Content-Disposition"].startswith(expected), (
            name,
            asked.headers["Content-Disposition"],
        )
        for resp in (plain, asked):
            assert resp.headers["Content-Security-Policy"] == "sandbox"
            assert resp.headers["X-Content-Type-Options"] == "nosniff"
    bad = await client.get(f"/asset/{out['asset']['id']}", params={"inline": "maybe"})
    assert bad.status == 400 and await error_code(bad) == "invalid_inline"


async def test_links_can_live_on_a_separate_download_origin(settings_factory: Any, make_client: Any) -> None:
    client = await make_client(settings_factory(download_base_url="https://dl.example.test/"))
    out = await upload(client, "o.txt", b"o", token="1")
    assert out["token"]["url"] == f"https://dl.example.test/asset-token/{out['token']['token']}"
    minted = await (await client.post(f"/asset/{out['asset']['id']}/tokens", json={})).json()
    assert minted["token"]["url"].startswith("https://dl.example.test/asset-token/")
