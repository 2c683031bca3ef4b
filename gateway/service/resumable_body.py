"""The body of one tus PATCH: bounded by the room left in the upload, checked against the client's
``Upload-Checksum`` before any of it may count, and fed to the upload's running digest.

The running digest (sha256 + CRC32, as every asset records) is why a finished resumable upload usually
needs no second read: a process that saw every byte so far carries the hash on. Hash state cannot be
stored in the catalog, so a PATCH landing on another process (or after a restart) starts without one, and
completion then reads the blob back once (service/resumable.py).
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from gateway.errors import ChunkChecksumMismatch, PayloadTooLarge
from gateway.hashing import crc32

BATCH = 1024 * 1024
CHECKSUMS = {"sha1": hashlib.sha1, "sha256": hashlib.sha256, "md5": hashlib.md5}


@dataclass(frozen=True)
class ChunkChecksum:
    algorithm: str  # a key of CHECKSUMS
    digest: bytes


class RunningDigest:
    """The running digest of one upload's bytes, in order."""

    def __init__(self, offset: int = 0, sha: Any = None, crc: int = 0) -> None:
        self.offset = offset
        self.sha = sha or hashlib.sha256()
        self.crc = crc

    def copy(self) -> RunningDigest:
        return RunningDigest(self.offset, self.sha.copy(), self.crc)

    def update(self, chunk: bytes) -> None:
        self.sha.update(chunk)
        self.crc = crc32(chunk, self.crc)
        self.offset += len(chunk)


class RunningDigests:
    """This process's running digests, by upload, each good for exactly the offset it reached.

    Bounded (least recently used go first): a digest that is gone or stale only costs a read-back.
    """

    def __init__(self, capacity: int = 1024) -> None:
        self._capacity = capacity
        self._by_upload: OrderedDict[str, RunningDigest] = OrderedDict()

    def resume(self, upload_id: str, offset: int) -> RunningDigest | None:
        """A digest to go on from ``offset`` (a copy: a failed request must not spoil the kept one), a
        fresh one at 0, or None when this process has not seen the bytes before ``offset``."""
        found = self._by_upload.get(upload_id)
        if found is not None and found.offset == offset:
            return found.copy()
        return RunningDigest() if offset == 0 else None

    def at(self, upload_id: str, offset: int) -> RunningDigest | None:
        found = self._by_upload.get(upload_id)
        return found if found is not None and found.offset == offset else None

    def keep(self, upload_id: str, digest: RunningDigest) -> None:
        self._by_upload[upload_id] = digest
        self._by_upload.move_to_end(upload_id)
        while len(self._by_upload) > self._capacity:
            self._by_upload.popitem(last=False)

    def drop(self, upload_id: str) -> None:
        self._by_upload.pop(upload_id, None)


class PatchBody:
    """The PATCH body: bounded by the room left in the upload, hashed for the running digest and for the
    client's Upload-Checksum (checked when the body ends, which is before the stores let any of a
    checksummed request count).

    Chunks go to the store as they arrive -- none is held back, so a body that breaks off keeps every
    byte that reached the store -- while the digests run on a worker thread over batches of about
    ``BATCH`` bytes (hashlib and zlib-ng release the GIL on large buffers): one batch at a time, in
    order, so the running digest sees every byte in sequence.
    """

    def __init__(
        self, source: AsyncIterator[bytes], room: int, checksum: ChunkChecksum | None, running: RunningDigest
    ) -> None:
        self._source = source
        self._room = room
        self._checksum = checksum
        self._hash = CHECKSUMS[checksum.algorithm]() if checksum else None
        self._running = running
        self._batch: list[bytes] = []  # handed out, not yet digested
        self._batched = 0
        self._pending: asyncio.Future[None] | None = None  # the digest of the previous batch

    def __aiter__(self) -> PatchBody:
        return self

    async def __anext__(self) -> bytes:
        try:
            chunk = await self._source.__anext__()
        except StopAsyncIteration:
            await self.settle()
            if self._checksum is not None and self._hash is not None:
                if not secrets.compare_digest(self._hash.digest(), self._checksum.digest):
                    raise ChunkChecksumMismatch("Upload-Checksum does not match the body") from None
            raise
        if len(chunk) > self._room:
            raise PayloadTooLarge("the body goes past the upload's length")
        self._room -= len(chunk)
        self._batch.append(chunk)
        self._batched += len(chunk)
        if self._batched >= BATCH:
            await self._wait()
            self._pending = asyncio.ensure_future(asyncio.to_thread(self._digest, self._take()))
        return chunk

    async def settle(self) -> None:
        """Digest everything handed out so far (the running digest is exact once this returns)."""
        await self._wait()
        if self._batch:
            await asyncio.to_thread(self._digest, self._take())

    async def _wait(self) -> None:
        if self._pending is not None:
            pending, self._pending = self._pending, None
            await pending

    def _take(self) -> list[bytes]:
        batch, self._batch, self._batched = self._batch, [], 0
        return batch

    def _digest(self, batch: list[bytes]) -> None:
        for data in batch:
            if self._hash is not None:
                self._hash.update(data)
            self._running.update(data)
