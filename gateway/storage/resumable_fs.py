"""Resumable writes on the local filesystem: one append-only staging file per upload.

The catalog's offset is the truth: each append first truncates the staging file to it (bytes past it
are from a request that never got to checkpoint them), writes at that offset, and fsyncs before every
checkpoint, so an acknowledged offset survives a crash of the process or the machine. Completion renames
the staging file into place (fsynced directory), so a finished blob appears whole or not at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from gateway.errors import StorageError
from gateway.ports import Checkpoint, Partial

if TYPE_CHECKING:
    from gateway.storage.filesystem import FilesystemBlobStore

# Bytes between fsync + checkpoint within one request (every request also ends with one). Writes go to
# explicit offsets, so a request that lost its lease learns it at its next checkpoint and stops; until
# then it can only rewrite the same offsets of the same upload.
SYNC_EVERY = 64 * 1024 * 1024
MAX_BUFFERS = 512  # per pwritev: under IOV_MAX (1024) however small the chunks a client sends


class FilesystemResumableWrites:
    def __init__(self, store: FilesystemBlobStore) -> None:
        self.store = store

    def part_size_for(self, length: int | None) -> int:
        return SYNC_EVERY

    async def append(
        self,
        key: str,
        staging: str,
        part_size: int,
        at: Partial,
        chunks: AsyncIterator[bytes],
        checkpoint: Checkpoint,
        *,
        keep_partial: bool,
    ) -> Partial:
        path = self.store.path_for(staging)
        fd = await asyncio.to_thread(_open_at, path, at.offset)
        written = at.offset  # bytes in the file
        durable = at
        buf: list[bytes] = []  # received, not yet written: written in one pwritev, no copies
        buffered = 0

        async def flush() -> None:
            nonlocal written, buffered
            if buf:
                await asyncio.to_thread(_pwritev_all, fd, list(buf), written)
                written += buffered
                buf.clear()
                buffered = 0

        async def sync() -> None:
            nonlocal durable
            await flush()
            await asyncio.to_thread(os.fsync, fd)
            durable = Partial(written, "", 0)
            await checkpoint(durable)

        try:
            unsynced = 0
            try:
                async for chunk in chunks:
                    unsynced += len(chunk)
                    buf.append(chunk)
                    buffered += len(chunk)
                    if buffered >= self.store.chunk_size or len(buf) >= MAX_BUFFERS:
                        await flush()
                    if unsynced >= part_size and keep_partial:
                        await sync()
                        unsynced = 0
            except BaseException:  # the client went away (the handler is cancelled) or broke its body
                if keep_partial:
                    await asyncio.shield(sync())
                raise
            await sync()
            return durable
        finally:
            await asyncio.shield(asyncio.to_thread(os.close, fd))

    async def complete(self, key: str, staging: str, part_size: int, at: Partial) -> None:
        source, target = self.store.path_for(staging), self.store.path_for(key)

        def move() -> None:
            target.parent.mkdir(parents=True, exist_ok=True)
            if not source.exists():
                if target.is_file() and target.stat().st_size == at.offset:
                    return  # completed before, but not recorded (a crash in between): done
                if at.offset:
                    raise StorageError("the upload's staging file is missing")
                source.parent.mkdir(parents=True, exist_ok=True)
                source.touch()  # a zero-byte upload never appended
            os.replace(source, target)
            dir_fd = os.open(target.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)

        await asyncio.to_thread(move)

    async def abort(self, key: str, staging: str, at: Partial) -> None:
        with contextlib.suppress(FileNotFoundError):
            await asyncio.to_thread(self.store.path_for(staging).unlink)


def _pwritev_all(fd: int, buffers: list[bytes], offset: int) -> None:
    done = os.pwritev(fd, buffers, offset)
    rest = memoryview(b"".join(buffers))[done:] if done < sum(map(len, buffers)) else memoryview(b"")
    offset += done
    while rest:  # a short write (rare on regular files): the remainder, byte-exact
        n = os.pwrite(fd, rest, offset)
        rest, offset = rest[n:], offset + n


def _open_at(path: os.PathLike[str], offset: int) -> int:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        if os.fstat(fd).st_size < offset:
            raise StorageError(f"staging file is shorter than the upload's offset {offset}")
        os.ftruncate(fd, offset)
    except BaseException:
        os.close(fd)
        raise
    return fd
