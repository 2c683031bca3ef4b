"""Password-protected links: minting everywhere a link is minted, HTTP Basic or Share-Password to
download, nothing counted without the password, guessing throttled across processes."""

from __future__ import annotations

import base64
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp.test_utils import TestClient

from gateway.config import Settings
from tests.helpers import error_code, running_gateway, upload

SECRET = "correct horse battery staple"


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def same_backends(base: Settings, **extra: Any) -> Settings:
    return type(base).model_validate(base.model_dump() | extra)


async def test_password_on_every_way_to_mint(client: TestClient[Any, Any], inspector: Any) -> None:
    data = os.urandom(300)
    raw = await client.put("/asset/r.bin", data=data, headers={"Share-Password": SECRET})
    links = [(await raw.json())["token"]]  # a password alone asks for a link
    form = aiohttp.FormData()
    form.add_field("password", SECRET)
    form.add_field("file", data, filename="f.bin")
    links.append((await (await client.post("/asset", data=form)).json())["token"])
    js = await client.post("/asset", json={"name": "j.bin", "data": {"image": "AAEC"}, "password": SECRET})
    links.append((await js.json())["token"])
    aid = (await upload(client, "m.bin", data))["asset"]["id"]
    links.append(
        (await (await client.post(f"/asset/{aid}/tokens", json={"password": SECRET})).json())["token"]
    )
    bundle = await client.post("/bundle", json={"assets": [aid], "password": SECRET})
    links.append((await bundle.json())["token"])
    for link in links:
        assert link["password"] is True
        url = f"/asset-token/{link['token']}"
        for method in ("GET", "HEAD"):
            resp = await client.request(method, url)
            assert resp.status == 401, (link, method)
            assert resp.headers["WWW-Authenticate"].startswith('Basic realm="share"')
        assert (await client.get(url, headers=basic("anyone", SECRET))).status == 200
        assert (await client.get(url, headers={"Share-Password": SECRET})).status == 200
    listed = await (await client.get(f"/asset/{aid}/tokens")).json()
    assert all(t["password"] for t in listed["tokens"])
    assert SECRET not in repr(inspector.catalog_items())  # only an argon2id hash is stored
    assert "$argon2id$" in repr(inspector.catalog_items())
    query = await client.put("/asset/q.bin", data=b"q", params={"password": SECRET})
    assert query.status == 400 and await error_code(query) == "invalid_password"


async def test_no_password_no_download_counted(client: TestClient[Any, Any]) -> None:
    data = os.urandom(1000)
    out = await upload(client, "once.bin", data)
    minted = await client.post(
        f"/asset/{out['asset']['id']}/tokens", json={"password": SECRET, "max_downloads": 1}
    )
    url = f"/asset-token/{(await minted.json())['token']['token']}"
    for headers in ({}, {"Share-Password": "wrong"}, {"Authorization": "Basic !!!"}):
        resp = await client.get(url, headers=headers)
        assert resp.status == 401, headers
    got = await client.get(url, headers=basic("", SECRET))
    assert got.status == 200 and await got.read() == data  # the one download was still there
    assert (await client.get(url, headers=basic("", SECRET))).status == 410


async def test_guessing_is_throttled_across_processes(settings: Settings, make_client: Any) -> None:
    one = await make_client(same_backends(settings, password_attempts_per_minute=4))
    two = await make_client(same_backends(settings, password_attempts_per_minute=4))
    resp = await one.put("/asset/g.bin", data=b"guarded", headers={"Share-Password": SECRET})
    url = f"/asset-token/{(await resp.json())['token']['token']}"
    statuses = []
    for n in range(6):
        client = one if n % 2 else two  # two gateways, one shared catalog
        statuses.append((await client.get(url, headers={"Share-Password": f"guess {n}"})).status)
    assert statuses == [401, 401, 401, 401, 429, 429], statuses
    throttled = await one.get(url, headers={"Share-Password": SECRET})
    assert throttled.status == 429 and await error_code(throttled) == "too_many_requests"
    assert 1 <= int(throttled.headers["Retry-After"]) <= 60  # until the minute ends; even the right one


def test_curl_dash_u(backend_kind: str, settings: Settings, tmp_path: Path) -> None:
    env = {"GATEWAY_AUTO_INIT": "true", "GATEWAY_STORAGE_URL": settings.storage_url,
           "GATEWAY_CATALOG_URL": settings.catalog_url}  # fmt: skip
    with running_gateway(tmp_path, env) as base:
        data = tmp_path / "doc.pdf"
        data.write_bytes(os.urandom(5000))
        up = subprocess.run(
            ["curl", "-sS", "-T", str(data), "-H", f"Share-Password: {SECRET}", f"{base}/asset/doc.pdf"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        url = json.loads(up.stdout)["token"]["url"]
        assert url.startswith(base)
        denied = subprocess.run(
            ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", url], capture_output=True, text=True
        )
        assert denied.stdout == "401"
        got = subprocess.run(
            ["curl", "-sS", "-f", "-u", f":{SECRET}", "-o", str(tmp_path / "got.pdf"), url],
            capture_output=True,
        )
        assert got.returncode == 0, got.stderr
        assert (tmp_path / "got.pdf").read_bytes() == data.read_bytes()
