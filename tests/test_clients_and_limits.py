"""Who the client is (trusted proxies only) and the per-process rate limits, over HTTP."""

from __future__ import annotations

import os
from typing import Any

from tests.helpers import error_code, upload

A, B = {"X-Forwarded-For": "203.0.113.7"}, {"X-Forwarded-For": "198.51.100.9"}


async def one_download_link(client: Any) -> str:
    out = await upload(client, "c.bin", os.urandom(2000), token="1", max_downloads="1")
    return f"/asset-token/{out['token']['token']}"


async def test_forwarded_addresses_count_only_from_trusted_proxies(
    settings_factory: Any, make_client: Any
) -> None:
    trusting = await make_client(settings_factory(trusted_proxies=["127.0.0.1/32", "10.0.0.0/8"]))
    url = await one_download_link(trusting)
    assert (await trusting.get(url, headers=A)).status == 200  # A's retrieval: the one download
    assert (await trusting.get(url, headers=A | {"Range": "bytes=0-9"})).status == 206  # A resumes
    assert (await trusting.get(url, headers=B | {"Range": "bytes=0-9"})).status == 410  # B is someone else
    chain = {"X-Forwarded-For": "192.0.2.1, 203.0.113.7, 10.1.2.3"}  # right-most untrusted: A
    assert (await trusting.get(url, headers=chain | {"Range": "bytes=10-19"})).status == 206
    forwarded = {"Forwarded": 'for=192.0.2.1, for="203.0.113.7:4711";proto=https'}
    assert (await trusting.get(url, headers=forwarded | {"Range": "bytes=20-29"})).status == 206
    forwarded_b = {"Forwarded": "for=198.51.100.9"}
    assert (await trusting.get(url, headers=forwarded_b | {"Range": "bytes=20-29"})).status == 410


async def test_spoofed_headers_from_an_untrusted_peer_change_nothing(client: Any) -> None:
    url = await one_download_link(client)
    assert (await client.get(url, headers=A)).status == 200
    # the header says "B", but the peer (127.0.0.1) is not a trusted proxy: still the same client
    assert (await client.get(url, headers=B | {"Range": "bytes=0-9"})).status == 206
    assert (await client.get(url, headers=B)).status == 410  # and a full GET is still a new download


async def test_upload_and_link_download_rate_limits(settings_factory: Any, make_client: Any) -> None:
    client = await make_client(
        settings_factory(rate_limit_uploads=3, rate_limit_link_downloads=2, trusted_proxies=["127.0.0.1/32"])
    )
    for _ in range(3):
        assert (await client.put("/asset/r.txt", data=b"r", headers=A)).status == 201
    over = await client.put("/asset/r.txt", data=b"r", headers=A)
    assert over.status == 429 and await error_code(over) == "too_many_requests"
    assert 1 <= int(over.headers["Retry-After"]) <= 60
    assert (await client.put("/asset/r.txt", data=b"r", headers=B)).status == 201  # per client
    out = await (await client.put("/asset/l.txt", data=b"l", params={"token": "1"}, headers=B)).json()
    url = f"/asset-token/{out['token']['token']}"
    assert [(await client.get(url, headers=A)).status for _ in range(3)] == [200, 200, 429]
    assert (await client.get(url, headers=B)).status == 200
    metrics = await (await client.get("/metrics")).text()
    assert 'gateway_rate_limited_total{kind="upload"} 1.0' in metrics
    assert 'gateway_rate_limited_total{kind="link_download"} 1.0' in metrics
