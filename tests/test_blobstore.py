"""BlobStore conformance: both adapters must pass the same tests."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator

import pytest

from gateway.config import MiB
from gateway.errors import NotFound
from gateway.ports import BlobStore
from gateway.storage.filesystem import FilesystemBlobStore
from tests.conftest import Inspector

PART = 5 * MiB


async def chunks_of(data: bytes, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]
        await asyncio.sleep(0)


async def read_all(store: BlobStore, key: str, offset: int = 0, length: int | None = None) -> bytes:
    reader = await store.open(key, offset, length)
    out = bytearray()
    try:
        async for chunk in reader:
            out += chunk
    finally:
        await reader.aclose()
    return bytes(out)


@pytest.mark.parametrize("size", [0, 1, PART - 1, PART, PART + 1, 2 * PART + 12345])
async def test_roundtrip_sizes(store: BlobStore, size: int) -> None:
    data = os.urandom(size)
    result = await store.write(f"k/{size}", chunks_of(data), size_hint=None)
    assert result.size == size
    got = await read_all(store, f"k/{size}")
    assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()
    assert await store.exists(f"k/{size}")


async def test_ranged_reads(store: BlobStore) -> None:
    data = os.urandom(PART + 100)
    await store.write("ranged", chunks_of(data), size_hint=len(data))
    assert await read_all(store, "ranged", 10, 5) == data[10:15]
    assert await read_all(store, "ranged", PART - 3, 10) == data[PART - 3 : PART + 7]
    assert await read_all(store, "ranged", PART + 90) == data[PART + 90 :]


async def test_zero_length_reads(store: BlobStore) -> None:
    """An empty object, or an empty slice of one: S3 has no Range for zero bytes (real engines say 416)."""
    await store.write("empty", chunks_of(b""), size_hint=0)
    await store.write("full", chunks_of(b"abc"), size_hint=3)
    assert await read_all(store, "empty", 0, 0) == b""
    assert await read_all(store, "full", 1, 0) == b""
    with pytest.raises(NotFound):
        await store.open("no/such/key", 0, 0)


async def test_missing_key_and_idempotent_delete(store: BlobStore) -> None:
    with pytest.raises(NotFound):
        await store.open("no/such/key")
    assert not await store.exists("no/such/key")
    await store.delete("no/such/key")
    await store.write("gone", chunks_of(b"abc"), size_hint=3)
    await store.delete("gone")
    assert not await store.exists("gone")


async def test_unread_reader_can_be_closed(store: BlobStore) -> None:
    await store.write("closeme", chunks_of(os.urandom(1000)), size_hint=1000)
    reader = await store.open("closeme")
    await reader.aclose()


class Boom(Exception):
    pass


async def failing_after(data: bytes, fail_at: int) -> AsyncIterator[bytes]:
    sent = 0
    async for chunk in chunks_of(data, 256 * 1024):
        if sent + len(chunk) > fail_at:
            raise Boom()
        sent += len(chunk)
        yield chunk


@pytest.mark.parametrize("fail_at", [100, PART + 10, 2 * PART + 5])
async def test_failed_source_stores_nothing(store: BlobStore, inspector: Inspector, fail_at: int) -> None:
    data = os.urandom(3 * PART)
    with pytest.raises(Boom):
        await store.write("partial", failing_after(data, fail_at), size_hint=None)
    assert not await store.exists("partial")
    assert inspector.blob_keys() == []  # no temp file either
    assert inspector.multipart_uploads() == []


async def test_cancelled_write_stores_nothing(store: BlobStore, inspector: Inspector) -> None:
    gate = asyncio.Event()

    async def slow() -> AsyncIterator[bytes]:
        yield os.urandom(PART + 1)
        gate.set()
        await asyncio.sleep(3600)
        yield b""

    task = asyncio.create_task(store.write("cancelled", slow(), size_hint=None))
    await gate.wait()
    await asyncio.sleep(0.2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert inspector.blob_keys() == []
    assert inspector.multipart_uploads() == []


@pytest.mark.parametrize("key", ["../x", "a/../../x", "/etc/passwd", "a//b", "a/./b", "", "a\\..\\b"])
async def test_filesystem_keys_cannot_escape(tmp_path: object, key: str) -> None:
    store = FilesystemBlobStore(str(tmp_path))
    with pytest.raises(ValueError):
        store.path_for(key)


def test_s3_part_size_fits_ten_thousand_parts() -> None:
    from gateway.storage.s3 import MAX_PARTS, S3BlobStore

    s3 = S3BlobStore(bucket="b", part_size=8 * MiB, max_object_size=5 * 1024**4)
    assert s3.part_size_for(None) * MAX_PARTS >= 5 * 1024**4
    assert s3.part_size_for(1000) == 8 * MiB
    assert s3.part_size_for(200 * 1024**3) * MAX_PARTS >= 200 * 1024**3
