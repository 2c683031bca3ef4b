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


class PatchBody:
    """The PATCH body: bounded by the room left in the upload, hashed for the running digest and for the
    client's Upload-Checksum (checked at the end, before anything of it may count)."""

    def __init__(
        self, source: AsyncIterator[bytes], room: int, checksum: ChunkChecksum | None, running: RunningDigest
    ) -> None:
        self._source = source
        self._room = room
        self._checksum = checksum
        self._hash = CHECKSUMS[checksum.algorithm]() if checksum else None
        self._running = running
        self._ended = False
        self._pending: asyncio.Future[None] | None = None  # the digest of the batch last handed out

    def __aiter__(self) -> PatchBody:
        return self

    async def __anext__(self) -> bytes:
        """The next batch of about ``BATCH`` bytes. Batches are digested on a worker thread (hashlib and
        zlib-ng release the GIL on large buffers) while the store writes them and the event loop receives
        the next: one batch's digest runs at a time, in order, so the running digest sees every byte in
        sequence. The last batch is handed out only after the client's checksum is verified."""
        if self._ended:
            raise StopAsyncIteration
        batch: list[bytes] = []
        size = 0
        while size < BATCH:
            try:
                chunk = await self._source.__anext__()
            except StopAsyncIteration:
                self._ended = True
                break
            if len(chunk) > self._room:
                raise PayloadTooLarge("the body goes past the upload's length")
            self._room -= len(chunk)
            batch.append(chunk)
            size += len(chunk)
        data = batch[0] if len(batch) == 1 else b"".join(batch)
        await self.settle()
        if data:
            self._pending = asyncio.ensure_future(asyncio.to_thread(self._digest, data))
        if self._ended:
            await self.settle()
            if self._checksum is not None and self._hash is not None:
                if not secrets.compare_digest(self._hash.digest(), self._checksum.digest):
                    raise ChunkChecksumMismatch("Upload-Checksum does not match the body")
            if not data:
                raise StopAsyncIteration
        return data

    async def settle(self) -> None:
        """Wait for the digest in flight (the running digest is exact once this returns)."""
        if self._pending is not None:
            pending, self._pending = self._pending, None
            await pending

    def _digest(self, data: bytes) -> None:
        if self._hash is not None:
            self._hash.update(data)
        self._running.update(data)
