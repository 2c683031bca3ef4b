"""The tus 1.0.0 protocol at the HTTP level, as a careful and as a careless or hostile client speaks it.

Real tus clients (tuspy, tus-js-client) drive tests/test_tus_clients.py; here each rule of the protocol
and each failure gets its own request, with the backend's raw state inspected afterwards: a refused or
failed request stores nothing and leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import itertools
import os
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

from gateway.auth import hash_api_key
from gateway.errors import CatalogError
from gateway.gc import collect
from gateway.http.keys import SERVICE
from tests.helpers import error_code, sha

MiB = 1024 * 1024
TUS = {"Tus-Resumable": "1.0.0"}
OCTETS = TUS | {"Content-Type": "application/offset+octet-stream"}


def meta(**values: str) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in values.items())


async def create(client: Any, length: int | None, **metadata: str) -> str:
    headers = TUS | {"Upload-Metadata": meta(**metadata)} if metadata else dict(TUS)
    headers |= {"Upload-Length": str(length)} if length is not None else {"Upload-Defer-Length": "1"}
    resp = await client.post("/files/", headers=headers)
    assert resp.status == 201, await resp.text()
    assert resp.headers["Tus-Resumable"] == "1.0.0"
    return urlsplit(resp.headers["Location"]).path


async def patch(client: Any, url: str, offset: int, data: Any, **headers: str) -> Any:
    return await client.patch(url, data=data, headers=OCTETS | {"Upload-Offset": str(offset)} | headers)


async def raw_patch(
    client: Any, url: str, length: int, first: bytes
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A raw-socket PATCH from offset 0 announcing ``length`` bytes; only ``first`` is sent."""
    reader, writer = await asyncio.open_connection(client.host, client.port)
    head = (
        f"PATCH {url} HTTP/1.1\r\nHost: x\r\nTus-Resumable: 1.0.0\r\nUpload-Offset: 0\r\n"
        f"Content-Type: application/offset+octet-stream\r\nContent-Length: {length}\r\n\r\n"
    )
    writer.write(head.encode() + first)
    await writer.drain()
    return reader, writer


async def offset_of(client: Any, url: str) -> int:
    resp = await client.head(url, headers=TUS)
    assert resp.status == 200
    return int(resp.headers["Upload-Offset"])


def upload_keys(inspector: Any) -> list[str]:
    return [k for k in inspector.blob_keys() if "uploads/" in k]


def upload_items(inspector: Any) -> list[Any]:
    return [i for i in inspector.catalog_items() if "UPLOAD" in str(i["PK"])]


async def test_options_advertises_the_protocol(client: Any) -> None:
    resp = await client.options("/files/")
    assert resp.status == 204
    assert resp.headers["Tus-Version"] == "1.0.0"
    extensions = set(resp.headers["Tus-Extension"].split(","))
    assert {"creation", "creation-with-upload", "creation-defer-length", "termination"} <= extensions
    assert {"expiration", "checksum", "concatenation"} <= extensions
    assert {"sha1", "sha256", "md5"} <= set(resp.headers["Tus-Checksum-Algorithm"].split(","))
    assert int(resp.headers["Tus-Max-Size"]) > 0


async def test_upload_in_chunks_becomes_an_asset(client: Any, inspector: Any) -> None:
    data = os.urandom(12 * MiB + 3)  # parts of 5 MiB in tests: two full parts and a staged tail
    url = await create(client, len(data), filename="report.pdf", token="1", max_downloads="2")
    head = await client.head(url, headers=TUS)
    assert head.headers["Upload-Length"] == str(len(data)) and "Upload-Expires" in head.headers
    assert "report.pdf" in base64.b64decode(head.headers["Upload-Metadata"].split(" ")[1]).decode()
    offset, last = 0, None
    for size in (1 * MiB, 3 * MiB + 1, 6 * MiB, len(data)):  # chunks smaller and larger than a part
        chunk = data[offset : offset + size]
        last = await patch(client, url, offset, chunk)
        assert last.status == 204, await last.text()
        offset += len(chunk)
        assert int(last.headers["Upload-Offset"]) == offset == await offset_of(client, url)
        if offset == len(data):
            break
    assert last is not None and "Asset-Id" in last.headers and "Asset-Token" in last.headers
    got = await client.get(urlsplit(last.headers["Asset-Token-Url"]).path)
    assert got.status == 200 and sha(await got.read()) == sha(data)
    status = await (await client.get(url)).json()
    assert status["asset"]["id"] == last.headers["Asset-Id"] and status["asset"]["sha256"] == sha(data)
    assert status["token"] is None  # the secret is never shown again
    meta_resp = await (await client.get(f"/asset/{last.headers['Asset-Id']}/meta")).json()
    assert meta_resp["name"] == "report.pdf" and meta_resp["content_type"] == "application/pdf"
    assert not inspector.multipart_uploads() and not upload_keys(inspector)


async def test_zero_byte_upload_completes_at_creation(client: Any) -> None:
    resp = await client.post(
        "/files/", headers=TUS | {"Upload-Length": "0", "Upload-Metadata": meta(filename="empty.txt")}
    )
    assert resp.status == 201 and "Asset-Id" in resp.headers
    got = await client.get(f"/asset/{resp.headers['Asset-Id']}")
    assert got.status == 200 and await got.read() == b""


async def test_creation_with_upload_and_deferred_length(client: Any) -> None:
    data = os.urandom(300_000)
    resp = await client.post(
        "/files/",
        data=data[:100_000],
        headers=OCTETS | {"Upload-Defer-Length": "1", "Upload-Metadata": meta(filename="d.bin")},
    )
    assert resp.status == 201 and resp.headers["Upload-Offset"] == "100000"
    url = urlsplit(resp.headers["Location"]).path
    assert (await client.head(url, headers=TUS)).headers["Upload-Defer-Length"] == "1"
    mid = await patch(client, url, 100_000, data[100_000:200_000])
    assert mid.status == 204 and "Asset-Id" not in mid.headers
    end = await patch(client, url, 200_000, data[200_000:], **{"Upload-Length": str(len(data))})
    assert end.status == 204 and "Asset-Id" in end.headers
    got = await client.get(f"/asset/{end.headers['Asset-Id']}")
    assert sha(await got.read()) == sha(data)


async def test_protocol_errors_have_tus_statuses(client: Any, inspector: Any) -> None:
    no_version = await client.post("/files/", headers={"Upload-Length": "5"})
    assert no_version.status == 412 and no_version.headers["Tus-Version"] == "1.0.0"
    assert (await client.post("/files/", headers=TUS)).status == 400  # neither length nor deferral
    both = TUS | {"Upload-Length": "5", "Upload-Defer-Length": "1"}
    assert (await client.post("/files/", headers=both)).status == 400
    for bad in ("-1", "1e3", "0x10", " ", "9" * 40):
        resp = await client.post("/files/", headers=TUS | {"Upload-Length": bad})
        assert resp.status == 400 and await error_code(resp) == "invalid_header", bad
    huge = await client.post("/files/", headers=TUS | {"Upload-Length": str(2**62)})
    assert huge.status == 413
    bare = await client.post("/files/", headers=TUS | {"Upload-Length": "5", "Upload-Metadata": "filename"})
    assert bare.status == 201  # a key without a value is valid tus (the default name is used)
    for bad_meta in (
        "filename !!!",
        "a QQ==,a QQ==",
        "k " + "QQ==" * 2000,
        "x\u00e9 QQ==",
        "k QQ== QQ==",
        " , ",
    ):
        resp = await client.post("/files/", headers=TUS | {"Upload-Length": "5", "Upload-Metadata": bad_meta})
        assert resp.status == 400 and await error_code(resp) == "invalid_metadata", bad_meta
    not_utf8 = TUS | {
        "Upload-Length": "5",
        "Upload-Metadata": "filename " + base64.b64encode(b"\xff\xfe").decode(),
    }
    assert (await client.post("/files/", headers=not_utf8)).status == 400
    traversal = TUS | {"Upload-Length": "5", "Upload-Metadata": meta(filename="../../etc/passwd")}
    assert (await client.post("/files/", headers=traversal)).status == 400
    crlf = TUS | {
        "Upload-Length": "5",
        "Upload-Metadata": meta(filename="a.txt", filetype="text/html\r\nX: y"),
    }
    assert (await client.post("/files/", headers=crlf)).status == 400
    url = await create(client, 10, filename="e.bin")
    assert (await patch(client, url, 3, b"abc")).status == 409  # offset mismatch
    wrong_type = await client.patch(url, data=b"abc", headers=TUS | {"Upload-Offset": "0"})
    assert wrong_type.status == 415
    missing_offset = await client.patch(url, data=b"abc", headers=OCTETS)
    assert missing_offset.status == 400
    too_long = await patch(client, url, 0, b"x" * 11)
    assert too_long.status == 413 and await offset_of(client, url) == 0
    unknown = await client.head("/files/" + "0" * 32, headers=TUS)
    assert unknown.status == 404
    assert (await client.head("/files/../../etc", headers=TUS)).status == 404
    dots = await client.head("/files/%2e%2e", headers=TUS)  # the client resolves it to "/": the page
    assert dots.content_type == "text/html" and "Tus-Resumable" not in dots.headers


async def test_checksums_are_verified_before_anything_counts(client: Any) -> None:
    data = os.urandom(7 * MiB)
    url = await create(client, len(data), filename="c.bin")
    for alg, fn in (("sha1", hashlib.sha1), ("md5", hashlib.md5), ("sha256", hashlib.sha256)):
        wrong = base64.b64encode(fn(b"something else").digest()).decode()
        bad = await patch(client, url, 0, data[: 6 * MiB], **{"Upload-Checksum": f"{alg} {wrong}"})
        assert bad.status == 460, alg
        assert await offset_of(client, url) == 0
    unknown = await patch(client, url, 0, data, **{"Upload-Checksum": "crc32 AAAAAA=="})
    assert unknown.status == 400
    good = base64.b64encode(hashlib.sha1(data[: 6 * MiB]).digest()).decode()
    ok = await patch(client, url, 0, data[: 6 * MiB], **{"Upload-Checksum": f"sha1 {good}"})
    assert ok.status == 204 and ok.headers["Upload-Offset"] == str(6 * MiB)
    rest = base64.b64encode(hashlib.sha256(data[6 * MiB :]).digest()).decode()
    end = await patch(client, url, 6 * MiB, data[6 * MiB :], **{"Upload-Checksum": f"sha256 {rest}"})
    assert end.status == 204
    got = await client.get(f"/asset/{end.headers['Asset-Id']}")
    assert sha(await got.read()) == sha(data)


async def test_two_patches_on_one_upload_never_both_apply(client: Any) -> None:
    data = os.urandom(2 * MiB)
    url = await create(client, len(data), filename="race.bin")
    release = asyncio.Event()

    async def slow() -> AsyncIterator[bytes]:
        yield data[: MiB // 2]
        await release.wait()
        yield data[MiB // 2 : MiB]

    first = asyncio.create_task(patch(client, url, 0, slow()))
    await asyncio.sleep(0.3)
    second = await patch(client, url, 0, data[:MiB])
    assert second.status == 409
    release.set()
    assert (await first).status == 204
    assert await offset_of(client, url) == MiB
    end = await patch(client, url, MiB, data[MiB:])
    got = await client.get(f"/asset/{end.headers['Asset-Id']}")
    assert sha(await got.read()) == sha(data)


async def test_a_broken_patch_keeps_what_arrived(client: Any) -> None:
    data = os.urandom(3 * MiB)
    url = await create(client, len(data), filename="broken.bin")

    # A client that announces the whole rest, sends part of it, and drops the connection.
    _reader, writer = await raw_patch(client, url, len(data), data[: MiB + 300_000])
    await asyncio.sleep(0.3)
    writer.transport.abort()
    for _ in range(100):  # the server notices the broken body and checkpoints what it got
        got = await offset_of(client, url)
        if got:
            break
        await asyncio.sleep(0.05)
    assert 0 < got <= MiB + 300_000  # whatever reached the server before it broke
    end = await patch(client, url, got, data[got:])
    assert end.status == 204
    body = await (await client.get(f"/asset/{end.headers['Asset-Id']}")).read()
    assert sha(body) == sha(data)


async def test_terminate_and_expiry_reclaim_everything(client: Any, inspector: Any) -> None:
    data = os.urandom(6 * MiB)
    url = await create(client, 20 * MiB, filename="t.bin")
    assert (await patch(client, url, 0, data)).status == 204  # one full part + a staged tail on S3
    delete = await client.delete(url, headers=TUS)
    assert delete.status == 204
    assert (await client.head(url, headers=TUS)).status == 404
    assert not inspector.multipart_uploads() and not upload_keys(inspector) and not upload_items(inspector)

    svc = client.app[SERVICE]
    url = await create(client, 20 * MiB, filename="x.bin")
    assert (await patch(client, url, 0, data)).status == 204
    real_clock = svc.backends.clock
    svc.backends.clock = lambda: real_clock() + svc.backends.settings.resumable_expiry + 1
    try:
        expired = await client.head(url, headers=TUS)
        assert expired.status == 410
        assert (await patch(client, url, len(data), b"more")).status == 410
        await svc.retention.sweep_once()
    finally:
        svc.backends.clock = real_clock
    assert (await client.head(url, headers=TUS)).status == 404
    assert not inspector.multipart_uploads() and not upload_keys(inspector) and not upload_items(inspector)


async def test_concatenation_of_partial_uploads(client: Any, inspector: Any) -> None:
    data = os.urandom(11 * MiB)
    cuts = [0, 6 * MiB, 6 * MiB + 1, len(data)]  # a big part, a one-byte part, the rest
    parts = []
    for a, b in itertools.pairwise(cuts):
        resp = await client.post(
            "/files/",
            data=data[a:b],
            headers=OCTETS | {"Upload-Length": str(b - a), "Upload-Concat": "partial"},
        )
        assert resp.status == 201 and "Asset-Id" not in resp.headers
        parts.append(resp.headers["Location"])
        assert (await client.head(urlsplit(resp.headers["Location"]).path, headers=TUS)).headers[
            "Upload-Concat"
        ] == "partial"
    final = await client.post(
        "/files/",
        headers=TUS
        | {"Upload-Concat": "final;" + " ".join(parts), "Upload-Metadata": meta(filename="all.bin")},
    )
    assert final.status == 201, await final.text()
    got = await client.get(f"/asset/{final.headers['Asset-Id']}")
    assert sha(await got.read()) == sha(data)
    assert not upload_keys(inspector) and not inspector.multipart_uploads()
    again = await client.post("/files/", headers=TUS | {"Upload-Concat": "final;" + parts[0]})
    assert again.status == 404  # a part is consumed by its final upload
    unfinished = await client.post(
        "/files/", headers=TUS | {"Upload-Length": "9", "Upload-Concat": "partial"}
    )
    bad = await client.post(
        "/files/", headers=TUS | {"Upload-Concat": "final;" + unfinished.headers["Location"]}
    )
    assert bad.status == 400 and await error_code(bad) == "invalid_concat"
    too_many = await client.post(
        "/files/", headers=TUS | {"Upload-Concat": "final;" + " ".join(["x"] * 1001)}
    )
    assert too_many.status == 400 and await error_code(too_many) == "invalid_concat"
    assert (await client.post("/files/", headers=TUS | {"Upload-Concat": "final;"})).status == 400
    assert (await client.post("/files/", headers=TUS | {"Upload-Concat": "middle"})).status == 400
    # The same part listed twice is that part twice, within the size limit like any upload.
    twice = await client.post(
        "/files/", data=b"ab", headers=OCTETS | {"Upload-Length": "2", "Upload-Concat": "partial"}
    )
    part = twice.headers["Location"]
    doubled = await client.post("/files/", headers=TUS | {"Upload-Concat": f"final;{part} {part}"})
    assert doubled.status == 201
    assert await (await client.get(f"/asset/{doubled.headers['Asset-Id']}")).read() == b"abab"


async def test_link_parameters_and_new_versions(client: Any) -> None:
    data = b"secret report"
    resp = await client.post(
        "/files/",
        data=data,
        headers=OCTETS
        | {
            "Upload-Length": str(len(data)),
            "Upload-Metadata": meta(
                filename="r.txt", password="hunter2hunter2", max_downloads="1", expires="1h"
            ),
        },
    )
    assert resp.status == 201 and "Asset-Token" in resp.headers
    head = await client.head(urlsplit(resp.headers["Location"]).path, headers=TUS)
    assert "hunter2" not in head.headers.get("Upload-Metadata", "")  # never stored as sent
    described = await (await client.get(f"/asset/{resp.headers['Asset-Id']}/meta")).json()
    assert described["expires"] is not None  # `expires` metadata: the asset's retention
    link = urlsplit(resp.headers["Asset-Token-Url"]).path
    assert (await client.get(link)).status == 401
    got = await client.get(link, headers={"Share-Password": "hunter2hunter2"})
    assert got.status == 200 and await got.read() == data
    bad = await client.post(
        "/files/", headers=TUS | {"Upload-Length": "3", "Upload-Metadata": meta(filename="x", expiry="never")}
    )
    assert bad.status == 400 and await error_code(bad) == "invalid_expiry"

    aid = resp.headers["Asset-Id"]
    v2 = await client.post(
        "/files/", data=b"v2", headers=OCTETS | {"Upload-Length": "2", "Upload-Metadata": meta(asset=aid)}
    )
    assert v2.status == 201 and v2.headers["Asset-Id"] == aid
    assert await (await client.get(f"/asset/{aid}")).read() == b"v2"
    missing = await client.post(
        "/files/", headers=TUS | {"Upload-Length": "2", "Upload-Metadata": meta(asset="nope")}
    )
    assert missing.status == 404


async def test_uploads_belong_to_their_creator(settings_factory: Any, make_client: Any) -> None:
    keys = [f"alice:{hash_api_key('a' * 32)}", f"bob:{hash_api_key('b' * 32)}"]
    client = await make_client(settings_factory(api_keys=keys))
    alice = {"Authorization": "Bearer " + "a" * 32}
    bob = {"Authorization": "Bearer " + "b" * 32}
    assert (await client.post("/files/", headers=TUS | {"Upload-Length": "3"})).status == 401
    resp = await client.post("/files/", headers=TUS | alice | {"Upload-Length": "3"})
    url = urlsplit(resp.headers["Location"]).path
    assert (await client.head(url, headers=TUS | bob)).status == 404
    assert (await patch(client, url, 0, b"abc", **bob)).status == 404
    assert (await client.delete(url, headers=TUS | bob)).status == 404
    assert (await client.options("/files/")).status == 204  # discovery needs no credentials
    done = await patch(client, url, 0, b"abc", **alice)
    assert done.status == 204
    assert (await client.get(f"/asset/{done.headers['Asset-Id']}", headers=bob)).status == 404


async def test_gc_keeps_live_uploads_and_takes_what_outlived_them(client: Any, inspector: Any) -> None:
    svc = client.app[SERVICE]
    url = await create(client, 20 * MiB, filename="live.bin")
    data = os.urandom(20 * MiB)
    assert (await patch(client, url, 0, data[: 6 * MiB])).status == 204
    report = await collect(svc.backends, grace=0)  # even with no grace at all
    assert report.aborted_uploads == 0 and report.staging_deleted == 0
    assert (await patch(client, url, 6 * MiB, data[6 * MiB :])).status == 204  # it lost nothing

    async def once() -> AsyncIterator[bytes]:
        yield b"left by a session the catalog forgot"

    await svc.backends.store.write(f"uploads/{'f' * 32}.part", once(), size_hint=None)
    later = time.time() + svc.backends.settings.resumable_expiry + 2 * 86400
    report = await collect(svc.backends, grace=86400, now=later)
    assert report.staging_deleted == 1 and not upload_keys(inspector)


async def test_a_completion_cut_short_is_finished_by_the_next_request(client: Any) -> None:
    svc = client.app[SERVICE]
    data = os.urandom(300_000)
    url = await create(client, len(data), filename="late.bin")
    catalog = svc.backends.catalog

    async def down(items: Any, events: Any = ()) -> None:
        raise CatalogError("catalog unreachable")

    catalog.create_assets = down  # the bytes are whole, the catalog commit fails
    try:
        failed = await patch(client, url, 0, data)
        assert failed.status == 503
    finally:
        del catalog.create_assets
    head = await client.head(url, headers=TUS)  # finishes it: the bytes were kept
    assert head.status == 200 and head.headers["Upload-Offset"] == str(len(data))
    status = await (await client.get(url)).json()
    assert status["asset"]["sha256"] == sha(data)
    got = await client.get(f"/asset/{status['asset']['id']}")
    assert await got.read() == data


async def test_a_stalled_patch_is_cut_off_and_keeps_what_arrived(
    settings_factory: Any, make_client: Any
) -> None:
    client = await make_client(settings_factory(body_idle_timeout=0.5))
    data = os.urandom(2 * MiB)
    url = await create(client, len(data), filename="slow.bin")
    reader, writer = await raw_patch(client, url, len(data), data[:300_000])  # then nothing: it stalls
    status_line = await asyncio.wait_for(reader.readline(), timeout=10)
    assert b" 408 " in status_line
    writer.close()
    got = await offset_of(client, url)
    assert 0 < got <= 300_000  # what arrived before the stall counts
    end = await patch(client, url, got, data[got:])
    body = await (await client.get(f"/asset/{end.headers['Asset-Id']}")).read()
    assert sha(body) == sha(data)


async def test_a_body_of_thousands_of_tiny_chunks(client: Any) -> None:
    data = os.urandom(300_000)
    url = await create(client, len(data), filename="tiny.bin")

    async def tiny() -> AsyncIterator[bytes]:
        for i in range(0, len(data), 100):  # 3,000 chunks of 100 bytes, chunked encoding
            yield data[i : i + 100]

    end = await patch(client, url, 0, tiny())
    assert end.status == 204
    assert sha(await (await client.get(f"/asset/{end.headers['Asset-Id']}")).read()) == sha(data)
