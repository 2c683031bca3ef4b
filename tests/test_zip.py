"""Zips on the fly: verified by Python's zipfile, unzip, 7z and bsdtar, on both backend pairs."""

from __future__ import annotations

import io
import os
import struct
import subprocess
import zipfile
import zlib
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from gateway.http.keys import SERVICE
from gateway.ziplayout import MAX16, Member, layout, unique_names
from tests.conftest import backend_settings
from tests.helpers import error_code, upload

TOOLS = [["unzip", "-tq"], ["7z", "t"], ["bsdtar", "-tf"]]


def check_with_tools(path: Path) -> None:
    for tool in TOOLS:
        proc = subprocess.run([*tool, str(path)], capture_output=True, timeout=600)
        assert proc.returncode == 0, (tool, proc.stdout[-2000:], proc.stderr[-2000:])


def check_zip(blob: bytes, expected: dict[str, bytes], tmp_path: Path) -> zipfile.ZipFile:
    zf = zipfile.ZipFile(io.BytesIO(blob))
    assert zf.testzip() is None
    assert zf.namelist() == list(expected)
    for name, data in expected.items():
        assert zf.read(name) == data
        info = zf.getinfo(name)
        assert info.compress_type == zipfile.ZIP_STORED and info.flag_bits & 0x800
        assert not info.flag_bits & 0x8  # no data descriptors
    path = tmp_path / "out.zip"
    path.write_bytes(blob)
    check_with_tools(path)
    return zf


async def test_zip_of_several_assets(client: TestClient[Any, Any], tmp_path: Path) -> None:
    files = [("report.csv", os.urandom(5000)), ("report.csv", b"second"), ("REPORT.csv", b"third"),
             ("empty.txt", b""), ("日本語 ✓.txt", b"unicode"), ("noext", os.urandom(70_000))]  # fmt: skip
    ids = [(await upload(client, quote(n, safe=""), d))["asset"]["id"] for n, d in files]
    resp = await client.post("/zip", json={"assets": ids, "name": "bundle ✓.zip"})
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "application/zip"
    assert "filename*=UTF-8''bundle%20%E2%9C%93.zip" in resp.headers["Content-Disposition"]
    blob = await resp.read()
    assert int(resp.headers["Content-Length"]) == len(blob)
    names = ["report.csv", "report (1).csv", "REPORT (2).csv", "empty.txt", "日本語 ✓.txt", "noext"]
    check_zip(blob, dict(zip(names, [d for _, d in files], strict=True)), tmp_path)


async def test_zip_paths_versions_and_mtime(client: TestClient[Any, Any], tmp_path: Path) -> None:
    a = await upload(client, "a.txt", b"alpha")
    b = await upload(client, "b.txt", b"beta")
    spec = [{"id": a["asset"]["id"], "path": "docs/first.txt", "version": 0}, {"id": b["asset"]["id"]}]
    resp = await client.post("/zip", json={"assets": spec})
    blob = await resp.read()
    zf = check_zip(blob, {"docs/first.txt": b"alpha", "b.txt": b"beta"}, tmp_path)
    assert "files.zip" in resp.headers["Content-Disposition"]
    assert zf.getinfo("b.txt").date_time[0] >= 2026


async def test_zip_of_one_member(client: TestClient[Any, Any], tmp_path: Path) -> None:
    aid = (await upload(client, "only.bin", b"x" * 1000))["asset"]["id"]
    resp = await client.post("/zip", json={"assets": [aid]})
    check_zip(await resp.read(), {"only.bin": b"x" * 1000}, tmp_path)


async def test_zip_of_two_thousand_members(client: TestClient[Any, Any], tmp_path: Path) -> None:
    ids = [(await upload(client, f"f{i}.txt", f"file {i}".encode()))["asset"]["id"] for i in range(20)]
    resp = await client.post("/zip", json={"assets": ids * 100})
    blob = await resp.read()
    zf = zipfile.ZipFile(io.BytesIO(blob))
    assert zf.testzip() is None and len(zf.namelist()) == 2000 and len(set(zf.namelist())) == 2000
    assert zf.read("f7 (99).txt") == b"file 7"
    (tmp_path / "many.zip").write_bytes(blob)
    check_with_tools(tmp_path / "many.zip")


UNKNOWN = "6b84149d-332c-4152-bb73-0ca9da463eaf"


@pytest.mark.parametrize(
    ("members", "name", "status"),
    [
        ([UNKNOWN], None, 404),
        (["not-an-id"], None, 404),
        (["ID", UNKNOWN], None, 404),
        ([], None, 400),
        ("ID", None, 400),
        ([{"id": "ID", "path": "/etc/passwd"}], None, 400),
        ([{"id": "ID", "path": "a/../../b"}], None, 400),
        ([{"id": "ID", "path": "a//b"}], None, 400),
        ([{"id": "ID", "version": 7}], None, 404),
        (["ID"], "../x.zip", 400),
    ],
)
async def test_zip_refusals_come_before_any_byte(
    client: TestClient[Any, Any], members: Any, name: str | None, status: int
) -> None:
    aid = (await upload(client, "ok.txt", b"ok"))["asset"]["id"]

    def fill(m: Any) -> Any:
        if m == "ID":
            return aid
        if isinstance(m, dict):
            return {k: fill(v) for k, v in m.items()}
        if isinstance(m, list):
            return [fill(x) for x in m]
        return m

    body: dict[str, Any] = {"assets": fill(members)} | ({"name": name} if name else {})
    resp = await client.post("/zip", json=body)
    assert resp.status == status
    assert resp.content_type == "application/json" and (await resp.json())["error"]["code"]


async def test_zip_request_must_be_json(client: TestClient[Any, Any]) -> None:
    resp = await client.post("/zip", data=b"assets=1", headers={"Content-Type": "text/plain"})
    assert resp.status == 415 and await error_code(resp) == "unsupported_media_type"
    resp = await client.post(
        "/zip", data=b"x" * (9 * 1024 * 1024), headers={"Content-Type": "application/json"}
    )
    assert resp.status == 413


async def test_bundle_link_streams_zip_counts_once_and_ranges(
    client: TestClient[Any, Any], tmp_path: Path
) -> None:
    files = {"one.bin": os.urandom(30_000), "two.bin": os.urandom(10)}
    ids = [(await upload(client, n, d))["asset"]["id"] for n, d in files.items()]
    resp = await client.post(
        "/bundle", json={"assets": ids, "expiry": "1d", "max_downloads": 3, "name": "b.zip"}
    )
    body = await resp.json()
    assert resp.status == 201, body
    token = body["token"]
    assert token["asset_id"] is None and token["asset_ids"] == ids and token["max_downloads"] == 3
    url = f"/asset-token/{token['token']}"
    head = await client.head(url)
    assert head.status == 200 and head.headers["Content-Type"] == "application/zip"
    full = await (await client.get(url)).read()  # download 1
    assert int(head.headers["Content-Length"]) == len(full)
    check_zip(full, files, tmp_path)
    # Range on a zip: the layout is deterministic, so any window is exact
    resp = await client.get(url, headers={"Range": "bytes=20-30099", "If-Range": head.headers["ETag"]})
    assert resp.status == 206 and await resp.read() == full[20:30100]  # inside retrieval 1: free
    assert resp.headers["Content-Range"] == f"bytes 20-30099/{len(full)}"
    assert (await client.get(url, headers={"If-None-Match": head.headers["ETag"]})).status == 304  # free
    assert (await client.get(url)).status == 200  # 2: a full GET is always a new retrieval
    assert (await client.get(url)).status == 200  # 3
    gone = await client.get(url)
    assert gone.status == 410 and await error_code(gone) == "token_exhausted"


async def test_multipart_upload_bundle_token_downloads_zip(
    client: TestClient[Any, Any], tmp_path: Path
) -> None:
    fd = aiohttp.FormData()
    fd.add_field("token", "1")
    fd.add_field("name", "upload.zip")
    fd.add_field("file", b"first", filename="a.txt")
    fd.add_field("file", b"second", filename="a.txt")
    body = await (await client.post("/asset", data=fd)).json()
    resp = await client.get(f"/asset-token/{body['token']['token']}")
    assert resp.status == 200 and "upload.zip" in resp.headers["Content-Disposition"]
    check_zip(await resp.read(), {"a.txt": b"first", "a (1).txt": b"second"}, tmp_path)


async def test_bundle_errors(client: TestClient[Any, Any]) -> None:
    aid = (await upload(client, "x.bin", b"x"))["asset"]["id"]
    unknown = "6b84149d-332c-4152-bb73-0ca9da463eaf"
    assert (await client.post("/bundle", json={"assets": [aid, unknown]})).status == 404
    assert (await client.post("/bundle", json={"assets": [aid], "expiry": "0"})).status == 400
    assert (await client.post("/bundle", json={"assets": [aid], "max_downloads": 0})).status == 400


async def test_zip_storage_failure_mid_stream_aborts(client: TestClient[Any, Any]) -> None:
    """A member vanishing behind the catalog's back must not yield a well-formed zip without it."""
    first = await upload(client, "first.bin", os.urandom(3 * 1024 * 1024))
    second = await upload(client, "second.bin", os.urandom(1000))
    svc = client.app[SERVICE]
    _, version = await svc.assets.find(second["asset"]["id"], owner=None)
    await svc.backends.store.delete(version.blob_key)
    resp = await client.post("/zip", json={"assets": [first["asset"]["id"], second["asset"]["id"]]})
    assert resp.status == 200  # headers went out before the second member was opened
    with pytest.raises(aiohttp.ClientPayloadError):
        await resp.read()


# -- layout, without I/O -----------------------------------------------------------------------------
def assemble(members: list[Member[bytes]]) -> bytes:
    zl = layout(members)
    out = bytearray()
    for seg in zl.range(0, zl.size - 1):
        out += seg if isinstance(seg, bytes) else seg.source[seg.offset : seg.offset + seg.length]
    assert len(out) == zl.size
    return bytes(out)


def test_zip64_by_member_count() -> None:
    members = [Member(f"{i}", 1, zlib.crc32(b"z"), 1.7e9, b"z") for i in range(MAX16 + 10)]
    blob = assemble(members)
    zf = zipfile.ZipFile(io.BytesIO(blob))
    assert len(zf.infolist()) == MAX16 + 10 and zf.read("65540") == b"z"
    assert struct.unpack("<I", blob[-22:-18])[0] == 0x06054B50
    assert b"PK\x06\x06" in blob[-200:]  # ZIP64 end of central directory record
    small = assemble(members[:10])
    assert b"PK\x06\x06" not in small  # ...and only when needed


def test_unique_names() -> None:
    names = ["a.txt", "a.txt", "A.TXT", "b", "b", ".env", ".env", "dir/x.tar.gz", "dir/x.tar.gz"]
    assert unique_names(names) == [
        "a.txt", "a (1).txt", "A (2).TXT", "b", "b (1)", ".env", ".env (1)",
        "dir/x.tar.gz", "dir/x.tar (1).gz",
    ]  # fmt: skip


def test_range_slices_are_exact() -> None:
    data = {f"m{i}": os.urandom(i * 37) for i in range(8)}
    members = [Member(n, len(d), zlib.crc32(d), 1.7e9, d) for n, d in data.items()]
    blob = assemble(members)
    zl = layout(members)
    for start, end in [(0, 0), (0, 29), (31, 400), (len(blob) - 22, len(blob) - 1), (5, len(blob) - 1)]:
        got = b"".join(
            s if isinstance(s, bytes) else s.source[s.offset : s.offset + s.length]
            for s in zl.range(start, end)
        )
        assert got == blob[start : end + 1]


@pytest.mark.slow
async def test_zip64_over_four_gib(make_client: Any, tmp_path: Path) -> None:
    """Members whose combined size passes 4 GiB: ZIP64 offsets, one member itself over 4 GiB.

    Local pair only: moto keeps objects in RAM, and the zip path above storage is the same code.
    """
    client = await make_client(backend_settings("local", tmp_path, None))
    big = 4 * 1024**3 + 4096

    async def zeros(total: int) -> Any:
        block = bytes(1024 * 1024)
        sent = 0
        while sent < total:
            n = min(len(block), total - sent)
            yield block[:n]
            sent += n

    small = await upload(client, "first.txt", b"hello")
    resp = await client.put("/asset/zeros.bin", data=zeros(big), timeout=aiohttp.ClientTimeout(total=None))
    assert resp.status == 201, await resp.text()
    huge = (await resp.json())["asset"]["id"]
    tail = await upload(client, "after.txt", b"after the big one")
    ids = [small["asset"]["id"], huge, tail["asset"]["id"]]
    resp = await client.post("/zip", json={"assets": ids}, timeout=aiohttp.ClientTimeout(total=None))
    assert resp.status == 200
    path = tmp_path / "big.zip"
    with path.open("wb") as fh:
        async for chunk in resp.content.iter_chunked(1024 * 1024):
            fh.write(chunk)
    assert path.stat().st_size == int(resp.headers["Content-Length"])
    with zipfile.ZipFile(path) as zf:
        infos = zf.infolist()
        assert [i.filename for i in infos] == ["first.txt", "zeros.bin", "after.txt"]
        assert infos[1].file_size == big and infos[2].header_offset > 0xFFFFFFFF
        assert zf.read("first.txt") == b"hello" and zf.read("after.txt") == b"after the big one"
        with zf.open("zeros.bin") as member:  # reading to the end checks the CRC
            while member.read(16 * 1024 * 1024):
                pass
    with path.open("rb") as fh:  # the first member stays zip32 (version needed 2.0)
        assert struct.unpack("<IH", fh.read(6)) == (0x04034B50, 20)
    check_with_tools(path)


def strip_crc(settings: Any, asset_id: str, *, keep_copy: bool) -> None:
    """Make a version look imported from elsewhere: no CRC-32 in its catalog item, nor in the asset's
    copy of it (``keep_copy``), or an asset item from before that copy existed (not ``keep_copy``)."""
    from urllib.parse import parse_qs, urlsplit

    url = settings.catalog_url
    meta_change = "json_remove(data, '$.latest.crc32')" if keep_copy else "json_remove(data, '$.latest')"
    if url.startswith("sqlite://"):
        import sqlite3

        with sqlite3.connect(url.split("://", 1)[1][1:]) as db:
            db.execute(
                "UPDATE items SET data = json_remove(data, '$.crc32') WHERE pk = ? AND sk LIKE 'V#%'",
                (f"ASSET#{asset_id}",),
            )
            db.execute(
                f"UPDATE items SET data = {meta_change} WHERE pk = ? AND sk = 'META'", (f"ASSET#{asset_id}",)
            )
        return
    import boto3

    parts = urlsplit(url)
    ddb = boto3.client("dynamodb", endpoint_url=parse_qs(parts.query)["endpoint"][0])
    ddb.update_item(
        TableName=parts.netloc,
        Key={"PK": {"S": f"ASSET#{asset_id}"}, "SK": {"S": "V#00000000"}},
        UpdateExpression="REMOVE crc32",
    )
    ddb.update_item(
        TableName=parts.netloc,
        Key={"PK": {"S": f"ASSET#{asset_id}"}, "SK": {"S": "META"}},
        UpdateExpression="REMOVE latest.crc32" if keep_copy else "REMOVE latest",
    )


@pytest.mark.parametrize("keep_copy", [True, False], ids=["copy-without-crc", "item-without-copy"])
async def test_member_without_crc_is_read_once_and_backfilled(
    client: TestClient[Any, Any], settings: Any, tmp_path: Path, keep_copy: bool
) -> None:
    data = os.urandom(200_000)
    aid = (await upload(client, "old.bin", data))["asset"]["id"]
    strip_crc(settings, aid, keep_copy=keep_copy)
    svc = client.app[SERVICE]
    assert (await svc.backends.catalog.get_version(aid, 0)).crc32 is None
    asset = await svc.backends.catalog.get_asset(aid)
    assert asset is not None and (asset.latest.crc32 is None if keep_copy else asset.latest is None)
    resp = await client.post("/zip", json={"assets": [aid]})
    assert resp.status == 200
    check_zip(await resp.read(), {"old.bin": data}, tmp_path)  # exact length, correct CRC
    assert (await svc.backends.catalog.get_version(aid, 0)).crc32 == zlib.crc32(
        data
    )  # recorded for next time
    asset = await svc.backends.catalog.get_asset(aid)
    assert asset is not None and (
        asset.latest.crc32 == zlib.crc32(data) if keep_copy else asset.latest is None
    )
