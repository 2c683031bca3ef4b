"""Counted links in real hands: resumed and segmented downloads with curl, wget and aria2c.

A served gateway (a real process) on every backend pair, real download tools, and real archive tools for
the bundle zips. The rule under test (docs/api.md, "What counts as a download"): a limit of N is N
retrievals; one client's resumptions and segments belong to its retrieval; a second full download is a
second download.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
import urllib.request
import zipfile
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp.test_utils import TestClient

from gateway.config import Settings
from gateway.service.tokens import ALLOWANCE
from tests.helpers import Served, running_gateway, upload

MiB = 1024 * 1024


def served_env(settings: Settings) -> dict[str, str]:
    return {
        "GATEWAY_AUTO_INIT": "true",
        "GATEWAY_STORAGE_URL": settings.storage_url,
        "GATEWAY_CATALOG_URL": settings.catalog_url,
    }


def put(base: str, name: str, data: bytes, **params: str) -> dict[str, Any]:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    req = urllib.request.Request(f"{base}/asset/{name}?{query}", data=data, method="PUT")
    with urllib.request.urlopen(req, timeout=60) as resp:
        return json.loads(resp.read())  # type: ignore[no-any-return]


def post_json(base: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    req = urllib.request.Request(
        f"{base}{path}",
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=60) as resp:
        return json.loads(resp.read())  # type: ignore[no-any-return]


def status_of(url: str) -> int:
    proc = subprocess.run(
        ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", url],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return int(proc.stdout)


def cut_short(url: str, target: Path, keep: int = 1_500_000) -> None:
    """A full download that breaks off after ``keep`` bytes (the server sees the connection drop), its
    partial file left behind as a browser or a killed curl would leave it."""
    with urllib.request.urlopen(url, timeout=60) as resp:
        target.write_bytes(resp.read(keep))


def one_link(base: Served, size: int) -> tuple[bytes, str]:
    data = os.urandom(size)
    out = put(base, "big.bin", data, token="1", max_downloads="1")
    return data, f"{base}/asset-token/{out['token']['token']}"


def test_curl_resume_after_a_cut_on_a_one_download_link(
    backend_kind: str, settings: Settings, tmp_path: Path
) -> None:
    with running_gateway(tmp_path, served_env(settings)) as base:
        data, url = one_link(base, 16 * MiB)
        target = tmp_path / "curl.bin"
        cut_short(url, target)
        partial = target.stat().st_size
        assert 0 < partial < len(data), partial
        done = subprocess.run(
            ["curl", "-sS", "-f", "-C", "-", "-o", str(target), url], capture_output=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        assert hashlib.sha256(target.read_bytes()).digest() == hashlib.sha256(data).digest()
        assert status_of(url) == 410  # a second full download


def test_wget_continue_after_a_cut(backend_kind: str, settings: Settings, tmp_path: Path) -> None:
    with running_gateway(tmp_path, served_env(settings)) as base:
        data, url = one_link(base, 16 * MiB)
        target = tmp_path / "wget.bin"
        cut_short(url, target)
        assert 0 < target.stat().st_size < len(data)
        done = subprocess.run(["wget", "-q", "-c", "-O", str(target), url], capture_output=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert target.read_bytes() == data
        assert status_of(url) == 410


def aria2(url: str, directory: Path, name: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        ["aria2c", "-q", "-x4", "-s4", "-k1M", "--max-tries=2", "--retry-wait=0", "--allow-overwrite=true",
         "--auto-file-renaming=false", "-d", str(directory), "-o", name, url],
        capture_output=True, timeout=120,
    )  # fmt: skip


def test_aria2c_segments_a_one_download_file(backend_kind: str, settings: Settings, tmp_path: Path) -> None:
    with running_gateway(tmp_path, served_env(settings)) as base:
        data, url = one_link(base, 12 * MiB)
        got = aria2(url, tmp_path, "a.bin")
        assert got.returncode == 0, got.stdout + got.stderr
        assert (tmp_path / "a.bin").read_bytes() == data
        assert status_of(url) == 410
        again = aria2(url, tmp_path, "b.bin")
        assert again.returncode != 0 and not (tmp_path / "b.bin").exists()


def test_bundle_zip_segmented_and_resumed(backend_kind: str, settings: Settings, tmp_path: Path) -> None:
    with running_gateway(tmp_path, served_env(settings)) as base:
        files = {f"part{i}.bin": os.urandom(3 * MiB + i) for i in range(3)}
        ids = [put(base, name, data)["asset"]["id"] for name, data in files.items()]
        links = [
            post_json(base, "/bundle", {"assets": ids, "name": "set.zip", "max_downloads": 1})["token"]["url"]
            for _ in range(2)
        ]
        local = [link.replace("http://gateway.test", base) for link in links]
        # aria2c -x4 on a one-download bundle: a zip every reader accepts, then 410
        got = aria2(local[0], tmp_path, "seg.zip")
        assert got.returncode == 0, got.stdout + got.stderr
        check_archive(tmp_path / "seg.zip", files)
        assert status_of(local[0]) == 410
        # curl cut short, then resumed, on the other one
        target = tmp_path / "resumed.zip"
        cut_short(local[1], target)
        assert 0 < target.stat().st_size < sum(map(len, files.values()))
        done = subprocess.run(
            ["curl", "-sS", "-f", "-C", "-", "-o", str(target), local[1]], capture_output=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        check_archive(target, files)
        assert status_of(local[1]) == 410


def check_archive(path: Path, files: dict[str, bytes]) -> None:
    for cmd in (["unzip", "-tq", str(path)], ["7z", "t", str(path)], ["bsdtar", "-tf", str(path)]):
        proc = subprocess.run(cmd, capture_output=True, timeout=60)
        assert proc.returncode == 0, (cmd, proc.stdout[-500:], proc.stderr[-500:])
    with zipfile.ZipFile(path) as zf:
        assert {n: zf.read(n) for n in zf.namelist()} == files


async def test_racing_resumptions_stay_within_one_allowance(client: TestClient[Any, Any]) -> None:
    size = 200_000
    out = await upload(client, "r.bin", os.urandom(size), token="1", max_downloads="1")
    url = f"/asset-token/{out['token']['token']}"
    first = await client.get(url, headers={"Range": "bytes=0-0"})  # opens the one retrieval
    assert first.status == 206
    half = size // 2

    async def resume(n: int) -> tuple[int, int]:
        start = (n * 7919) % half
        async with client.get(url, headers={"Range": f"bytes={start}-{start + half - 1}"}) as resp:
            body = await resp.read()
            return resp.status, len(body) if resp.status == 206 else 0

    results = await asyncio.gather(*(resume(n) for n in range(20)))
    served = sum(n for _, n in results)
    assert {s for s, _ in results} <= {206, 410}
    assert 1 + served <= ALLOWANCE * size  # never more than one retrieval's allowance
    assert sum(1 for s, _ in results if s == 206) == (ALLOWANCE * size - 1) // half
    tokens = await (await client.get(f"/asset/{out['asset']['id']}/tokens")).json()
    assert tokens["tokens"] == []  # its one download is spent (listed tokens are the usable ones)
    assert (await client.get(url)).status == 410


async def test_interrupted_transfer_is_refunded(client: TestClient[Any, Any]) -> None:
    size, step = 48 * MiB, 8 * MiB  # far more than loopback socket buffers hold
    data = os.urandom(size)
    out = await upload(client, "i.bin", data, token="1", max_downloads="1")
    url = f"/asset-token/{out['token']['token']}"
    resp = await client.get(url)
    assert resp.status == 200
    await resp.content.readexactly(64 * 1024)
    resp.close()  # hang up early: what was not handed to the socket is given back to the retrieval
    await asyncio.sleep(0.5)
    # the whole file again by ranges fits only because of the refund (allowance 2 x size)
    for start in range(0, size, step):
        part = await client.get(url, headers={"Range": f"bytes={start}-{start + step - 1}"})
        assert part.status == 206 and await part.read() == data[start : start + step]
    assert (await client.get(url, headers={"Range": "bytes=0-"})).status == 410  # 1 + 1 + ~1 copies: past it


async def test_revoked_link_refuses_resumption(client: TestClient[Any, Any]) -> None:
    out = await upload(client, "v.bin", os.urandom(1000), token="1", max_downloads="1")
    url = f"/asset-token/{out['token']['token']}"
    assert (await client.get(url, headers={"Range": "bytes=0-9"})).status == 206
    assert (await client.delete(url)).status == 204
    resp = await client.get(url, headers={"Range": "bytes=10-"})
    assert resp.status == 410


async def test_exhausted_link_still_resumes_inside_the_retrieval(client: TestClient[Any, Any]) -> None:
    """A full GET always needs a new retrieval (410 once spent); a range from the same address inside
    its window does not. (Another address's range is refused: test_clients_and_limits.)"""
    out = await upload(client, "x.bin", os.urandom(1000), token="1", max_downloads="1")
    url = f"/asset-token/{out['token']['token']}"
    assert (await client.get(url)).status == 200
    assert (await client.get(url)).status == 410
    assert (await client.head(url)).status == 410
    async with aiohttp.ClientSession() as session:  # same address: still inside its retrieval
        resp = await session.get(str(client.make_url(url)), headers={"Range": "bytes=0-99"})
        assert resp.status == 206
