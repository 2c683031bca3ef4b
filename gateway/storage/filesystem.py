"""Local-filesystem blob store: the embedded default, so a fresh clone needs nothing else.

Writes go to a temp file beside the target, are fsynced and renamed into place, so a reader (or a
crash) never sees a partial object and a failed write leaves no file. Keys are resolved strictly
inside the root: a key is a ``/``-separated relative path whose parts are checked, and the resolved
path is checked again, so no key can escape however it is spelled. Disk I/O runs on worker threads,
batched into ``chunk_size`` writes so the thread hop is paid per MiB, not per socket read.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import BinaryIO

from gateway.errors import NotFound, StorageError
from gateway.ports import WriteResult

TMP_PREFIX = ".tmp-"


class FilesystemBlobStore:
    def __init__(self, root: str | os.PathLike[str], *, chunk_size: int = 1024 * 1024) -> None:
        self.root = Path(root).resolve()
        self.chunk_size = chunk_size

    def path_for(self, key: str) -> Path:
        parts = key.split("/")
        if not key or any(p in ("", ".", "..") or "\\" in p or "\x00" in p for p in parts):
            raise ValueError(f"invalid blob key {key!r}")
        path = self.root.joinpath(*parts)
        if os.path.commonpath([self.root, path.resolve()]) != str(self.root):
            raise ValueError(f"blob key escapes the root: {key!r}")
        return path

    async def init(self) -> None:
        await asyncio.to_thread(self.root.mkdir, parents=True, exist_ok=True)

    async def ping(self) -> None:
        ok = await asyncio.to_thread(lambda: self.root.is_dir() and os.access(self.root, os.W_OK))
        if not ok:
            raise StorageError(f"storage directory {self.root} is missing or not writable")

    async def start(self) -> None:
        await self.init()  # the embedded store always ensures its root exists

    async def close(self) -> None:
        return None

    async def write(self, key: str, chunks: AsyncIterator[bytes], *, size_hint: int | None) -> WriteResult:
        target = self.path_for(key)
        await asyncio.to_thread(target.parent.mkdir, parents=True, exist_ok=True)
        tmp = target.with_name(f"{TMP_PREFIX}{target.name}.{secrets.token_hex(8)}")
        fh: BinaryIO = await asyncio.to_thread(open, tmp, "xb")
        size = 0
        try:
            buf = bytearray()
            async for chunk in chunks:
                buf += chunk
                size += len(chunk)
                if len(buf) >= self.chunk_size:
                    await asyncio.to_thread(fh.write, bytes(buf))
                    buf.clear()
            if buf:
                await asyncio.to_thread(fh.write, bytes(buf))
            await asyncio.to_thread(_sync_close, fh)
            await asyncio.to_thread(_rename_durably, tmp, target)
        except BaseException:
            await asyncio.shield(asyncio.to_thread(_discard, fh, tmp))
            raise
        return WriteResult(size=size, etag="")

    async def open(self, key: str, offset: int = 0, length: int | None = None) -> _FileReader:
        path = self.path_for(key)
        try:
            fh: BinaryIO = await asyncio.to_thread(open, path, "rb")
        except FileNotFoundError:
            raise NotFound(f"blob {key} not found") from None
        except OSError as exc:
            raise StorageError(f"cannot open blob: {exc.strerror}") from exc
        if offset:
            await asyncio.to_thread(fh.seek, offset)
        return _FileReader(fh, length, self.chunk_size)

    async def delete(self, key: str) -> None:
        path = self.path_for(key)
        await asyncio.to_thread(path.unlink, missing_ok=True)

    async def exists(self, key: str) -> bool:
        return await asyncio.to_thread(self.path_for(key).is_file)


class _FileReader:
    def __init__(self, fh: BinaryIO, length: int | None, chunk_size: int) -> None:
        self._fh = fh
        self._remaining = length
        self._chunk = chunk_size

    def __aiter__(self) -> _FileReader:
        return self

    async def __anext__(self) -> bytes:
        if self._fh.closed or self._remaining == 0:
            raise StopAsyncIteration
        want = self._chunk if self._remaining is None else min(self._chunk, self._remaining)
        data = await asyncio.to_thread(self._fh.read, want)
        if not data:
            await self.aclose()
            if self._remaining:
                raise StorageError("blob is shorter than its catalog entry")
            raise StopAsyncIteration
        if self._remaining is not None:
            self._remaining -= len(data)
        return data

    async def aclose(self) -> None:
        if not self._fh.closed:
            await asyncio.to_thread(self._fh.close)


def _sync_close(fh: BinaryIO) -> None:
    fh.flush()
    os.fsync(fh.fileno())
    fh.close()


def _rename_durably(tmp: Path, target: Path) -> None:
    os.replace(tmp, target)
    dir_fd = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _discard(fh: BinaryIO, tmp: Path) -> None:
    try:
        fh.close()
    finally:
        tmp.unlink(missing_ok=True)
