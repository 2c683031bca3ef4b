"""Uploads through real HTTP on both backend pairs, checking the bytes that come back."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from gateway.config import MiB
from tests.conftest import Inspector
from tests.helpers import chunked, error_code, sha, upload

PART = 5 * MiB


@pytest.mark.parametrize("size", [0, 1, PART - 1, PART + 1, 2 * PART + 777])
@pytest.mark.parametrize("method", ["PUT", "POST"])
async def test_raw_upload_roundtrip(client: TestClient[Any, Any], size: int, method: str) -> None:
    data = os.urandom(size)
    resp = await client.request(method, "/asset/blob.bin", data=data)
    body = await resp.json()
    assert resp.status == 201, body
    asset = body["asset"]
    assert asset["size"] == size and asset["sha256"] == sha(data) and asset["version"] == 0
    assert asset["name"] == "blob.bin" and body["token"] is None and body["error"] is None
    got = await client.get(f"/asset/{asset['id']}")
    assert got.status == 200
    assert await got.read() == data


async def test_chunked_upload_without_length(client: TestClient[Any, Any]) -> None:
    data = os.urandom(PART + 4321)
    resp = await client.put("/asset/c.bin", data=chunked(data))
    body = await resp.json()
    assert resp.status == 201, body
    got = await client.get(f"/asset/{body['asset']['id']}")
    assert await got.read() == data


async def test_content_type_from_request_or_name(client: TestClient[Any, Any]) -> None:
    body = await (await client.put("/asset/x.csv", data=b"a", headers={"Content-Type": "text/csv"})).json()
    assert body["asset"]["content_type"] == "text/csv"
    body = await (await client.put("/asset/pic.png", data=b"a", skip_auto_headers=["Content-Type"])).json()
    assert body["asset"]["content_type"] == "image/png"
    body = await (await client.put("/asset/noext", data=b"a", skip_auto_headers=["Content-Type"])).json()
    assert body["asset"]["content_type"] == "application/octet-stream"


async def test_token_minted_at_upload(client: TestClient[Any, Any]) -> None:
    before = int(time.time())
    body = await upload(client, "t.txt", b"hello", token="1", expiry="20", max_downloads="2")
    token = body["token"]
    assert token["asset_id"] == body["asset"]["id"] and token["max_downloads"] == 2
    assert before + 20 * 60 <= token["expiry"] <= int(time.time()) + 20 * 60 + 1
    assert token["url"] == f"http://gateway.test/asset-token/{token['token']}"
    assert len(token["token"]) >= 22  # >= 128 bits of base64url
    got = await client.get(f"/asset-token/{token['token']}")
    assert got.status == 200 and await got.read() == b"hello"


@pytest.mark.parametrize(
    ("expiry", "seconds"),
    [("90s", 90), ("15m", 900), ("2h", 7200), ("3d", 259200), ("4 days", 345600), ("PT20M", 1200),
     ("P1DT2H", 93600), ("4 years 3 months 2 weeks 1 day", (4 * 365 + 90 + 15) * 86400)],
)  # fmt: skip
async def test_expiry_formats(client: TestClient[Any, Any], expiry: str, seconds: int) -> None:
    before = int(time.time())
    body = await upload(client, "e.txt", b"x", token="true", expiry=expiry)
    assert before + seconds <= body["token"]["expiry"] <= int(time.time()) + seconds + 1


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"token": "1", "expiry": "abc"}, "invalid_expiry"),
        ({"token": "1", "expiry": "0"}, "invalid_expiry"),
        ({"token": "1", "expiry": "-5"}, "invalid_expiry"),
        ({"token": "1", "expiry": "99 years"}, "invalid_expiry"),
        ({"token": "1", "max_downloads": "0"}, "invalid_max_downloads"),
        ({"token": "1", "max_downloads": "-1"}, "invalid_max_downloads"),
        ({"token": "1", "max_downloads": "many"}, "invalid_max_downloads"),
        ({"token": "maybe"}, "invalid_token_flag"),
    ],
)
async def test_bad_token_params_store_nothing(
    client: TestClient[Any, Any], inspector: Inspector, params: dict[str, str], code: str
) -> None:
    resp = await client.put("/asset/a.txt", data=b"data", params=params)
    assert resp.status == 400
    assert await error_code(resp) == code
    assert inspector.blob_keys() == [] and inspector.catalog_items() == []


@pytest.mark.parametrize(
    ("path_name", "status", "code"),
    [
        # a '..' segment is resolved away by the client before sending: PUT / (the upload page is GET only)
        ("%2E%2E", 405, "method_not_allowed"),
        ("a%2Fb", 400, "invalid_name"),
        ("a%5Cb", 400, "invalid_name"),
        ("x%00y", 400, "invalid_name"),
        ("tab%09name", 400, "invalid_name"),
        ("new%0Aline", 400, "invalid_name"),
        ("a..b", 400, "invalid_name"),
        ("%20", 400, "invalid_name"),
        ("n" * 256, 400, "invalid_name"),
    ],
)
async def test_bad_names(
    client: TestClient[Any, Any], inspector: Inspector, path_name: str, status: int, code: str
) -> None:
    resp = await client.put(f"/asset/{path_name}", data=b"data")
    assert resp.status == status
    assert await error_code(resp) == code
    assert inspector.blob_keys() == [] and inspector.catalog_items() == []


async def test_unicode_name_accepted(client: TestClient[Any, Any]) -> None:
    body = await upload(client, "r%C3%A9sum%C3%A9%20%E2%9C%93.txt", b"ok")
    assert body["asset"]["name"] == "résumé ✓.txt"


async def test_too_large_announced_is_refused_before_reading(settings_factory: Any, make_client: Any) -> None:
    settings = settings_factory(max_upload_size=1000)
    client = await make_client(settings)
    resp = await client.put("/asset/big.bin", data=os.urandom(1001))
    assert resp.status == 413
    assert await error_code(resp) == "payload_too_large"
    assert Inspector(settings).blob_keys() == [] and Inspector(settings).catalog_items() == []


async def test_too_large_chunked_is_aborted(settings_factory: Any, make_client: Any) -> None:
    settings = settings_factory(max_upload_size=PART + 10)
    client = await make_client(settings)
    resp = await client.put("/asset/big.bin", data=chunked(os.urandom(2 * PART)))
    assert resp.status == 413
    inspector = Inspector(settings)
    assert inspector.blob_keys() == [] and inspector.catalog_items() == []
    assert inspector.multipart_uploads() == []


async def test_checksum_headers(client: TestClient[Any, Any], inspector: Inspector) -> None:
    data = os.urandom(1000)
    md5 = base64.b64encode(hashlib.md5(data).digest()).decode()
    sha256 = base64.b64encode(hashlib.sha256(data).digest()).decode()
    for headers in (
        {"Content-MD5": md5},
        {"Digest": f"sha-256={sha256}"},
        {"Repr-Digest": f"sha-256=:{sha256}:"},
        {"Digest": f"SHA-256={sha256}", "Content-MD5": md5},
    ):
        resp = await client.put("/asset/ok.bin", data=data, headers=headers)
        assert resp.status == 201, (headers, await resp.text())
    stored = len(inspector.catalog_items())
    wrong_md5 = base64.b64encode(hashlib.md5(b"other").digest()).decode()
    wrong_sha = base64.b64encode(hashlib.sha256(b"other").digest()).decode()
    for headers in (
        {"Content-MD5": wrong_md5},
        {"Digest": f"sha-256={wrong_sha}"},
        {"Repr-Digest": f"sha-256=:{wrong_sha}:"},
    ):
        resp = await client.put("/asset/bad.bin", data=chunked(data, 100), headers=headers)
        assert resp.status == 400
        assert await error_code(resp) == "checksum_mismatch"
    for headers in ({"Content-MD5": "not-base64!"}, {"Repr-Digest": "sha-256=abc"}):
        resp = await client.put("/asset/bad.bin", data=data, headers=headers)
        assert resp.status == 400 and await error_code(resp) == "invalid_digest"
    assert len(inspector.catalog_items()) == stored
    assert len(inspector.blob_keys()) == 4
    assert inspector.multipart_uploads() == []


async def test_checksum_mismatch_on_multipart_upload(
    client: TestClient[Any, Any], inspector: Inspector
) -> None:
    data = os.urandom(2 * PART + 3)
    wrong = base64.b64encode(hashlib.sha256(b"x").digest()).decode()
    resp = await client.put("/asset/big.bin", data=chunked(data), headers={"Digest": f"sha-256={wrong}"})
    assert resp.status == 400
    assert inspector.blob_keys() == [] and inspector.catalog_items() == []
    assert inspector.multipart_uploads() == []


def form(*parts: tuple[str, Any, dict[str, str]]) -> aiohttp.FormData:
    fd = aiohttp.FormData(default_to_multipart=True)
    for name, value, extra in parts:
        fd.add_field(name, value, **extra)
    return fd


@pytest.mark.parametrize("fields_first", [True, False])
async def test_multipart_single_file(client: TestClient[Any, Any], fields_first: bool) -> None:
    data = os.urandom(PART + 99)
    fields = [("token", "1", {}), ("expiry", "20", {}), ("max_downloads", "3", {})]
    file = ("file", data, {"filename": "something.txt", "content_type": "text/csv"})
    parts = [*fields, file] if fields_first else [file, *fields]
    resp = await client.post("/asset", data=form(*parts))
    body = await resp.json()
    assert resp.status == 201, body
    assert body["asset"]["name"] == "something.txt" and body["asset"]["content_type"] == "text/csv"
    assert body["token"]["max_downloads"] == 3
    got = await client.get(f"/asset-token/{body['token']['token']}")
    assert await got.read() == data


async def test_multipart_several_files_make_a_bundle_token(client: TestClient[Any, Any]) -> None:
    files = {f"f{i}.bin": os.urandom(1000 * i) for i in range(3)}
    parts = [("file", d, {"filename": n}) for n, d in files.items()]
    resp = await client.post("/asset", data=form(*parts, ("token", "1", {})))
    body = await resp.json()
    assert resp.status == 201, body
    assert [a["name"] for a in body["assets"]] == list(files)
    assert sorted(body["token"]["asset_ids"]) == sorted(a["id"] for a in body["assets"])
    assert body["token"]["asset_id"] is None
    for asset in body["assets"]:
        got = await client.get(f"/asset/{asset['id']}")
        assert await got.read() == files[asset["name"]]


async def test_multipart_bad_field_after_files_stores_nothing(
    client: TestClient[Any, Any], inspector: Inspector
) -> None:
    parts = [("file", os.urandom(PART + 1), {"filename": "a.bin"}), ("file", b"x", {"filename": "b.bin"})]
    resp = await client.post("/asset", data=form(*parts, ("token", "1", {}), ("expiry", "never", {})))
    assert resp.status == 400 and await error_code(resp) == "invalid_expiry"
    assert inspector.blob_keys() == [] and inspector.catalog_items() == []
    assert inspector.multipart_uploads() == []


async def test_multipart_errors(client: TestClient[Any, Any], inspector: Inspector) -> None:
    resp = await client.post("/asset", data=form(("token", "1", {})))
    assert resp.status == 400 and await error_code(resp) == "missing_file"
    resp = await client.post(
        "/asset", data=b"garbage", headers={"Content-Type": "multipart/form-data; boundary=zzz"}
    )
    assert resp.status == 400
    resp = await client.post("/asset", data=b"garbage", headers={"Content-Type": "multipart/form-data"})
    assert resp.status == 400
    resp = await client.post("/asset", data=form(("file", b"x", {"filename": "../evil"})))
    assert resp.status == 400 and await error_code(resp) == "invalid_name"
    resp = await client.post("/asset", data=b"x", headers={"Content-Type": "text/plain"})
    assert resp.status == 415 and await error_code(resp) == "unsupported_media_type"
    assert inspector.blob_keys() == [] and inspector.catalog_items() == []


async def test_json_upload(client: TestClient[Any, Any]) -> None:
    data = os.urandom(3000)
    payload = {"name": "pin.png", "data": {"image": base64.b64encode(data).decode()}, "token": True}
    resp = await client.post("/asset", json=payload)
    body = await resp.json()
    assert resp.status == 201, body
    assert body["asset"]["content_type"] == "image/png" and body["token"] is not None
    got = await client.get(f"/asset/{body['asset']['id']}")
    assert await got.read() == data


@pytest.mark.parametrize(
    "payload",
    [
        b"{not json",
        json.dumps({"name": "a.png"}).encode(),
        json.dumps({"name": "a.png", "data": {"image": "@@@"}}).encode(),
        json.dumps({"name": "../a.png", "data": {"image": "AAAA"}}).encode(),
        json.dumps({"name": "a.png", "data": {"image": "AAAA"}, "expiry": "soon", "token": 1}).encode(),
    ],
)
async def test_json_upload_errors(client: TestClient[Any, Any], inspector: Inspector, payload: bytes) -> None:
    resp = await client.post("/asset", data=payload, headers={"Content-Type": "application/json"})
    assert resp.status == 400
    assert (await resp.json())["error"]["code"]
    assert inspector.blob_keys() == [] and inspector.catalog_items() == []


async def test_json_upload_size_cap(settings_factory: Any, make_client: Any) -> None:
    client = await make_client(settings_factory(max_json_upload_size=100))
    payload = {"name": "a.png", "data": {"image": base64.b64encode(os.urandom(200)).decode()}}
    resp = await client.post("/asset", json=payload)
    assert resp.status == 413


async def test_catalog_failure_cleans_up_blob(client: TestClient[Any, Any], inspector: Inspector) -> None:
    from gateway.errors import CatalogError
    from gateway.http.keys import SERVICE

    svc = client.app[SERVICE]
    original = svc.backends.catalog.create_assets

    async def broken(*args: Any, **kwargs: Any) -> None:
        raise CatalogError("catalog down")

    svc.backends.catalog.create_assets = broken  # type: ignore[method-assign]
    try:
        resp = await client.put("/asset/a.bin", data=os.urandom(PART + 5))
        assert resp.status == 503 and await error_code(resp) == "catalog_unavailable"
    finally:
        svc.backends.catalog.create_assets = original  # type: ignore[method-assign]
    assert inspector.blob_keys() == [] and inspector.catalog_items() == []


async def test_non_ascii_digits_are_bad_input_not_500(client: TestClient[Any, Any]) -> None:
    for params in ({"token": "1", "expiry": "¹"}, {"token": "1", "max_downloads": "²"}):
        resp = await client.put("/asset/a.txt", data=b"x", params=params)
        assert resp.status == 400, params
    aid = (await upload(client, "v.txt", b"v"))["asset"]["id"]
    assert (await client.get(f"/asset/{aid}", params={"version": "¹"})).status == 400
