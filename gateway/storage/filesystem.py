"""Local-filesystem blob store: the embedded default, so a fresh clone needs nothing else.

Writes go to a temp file beside the target, are fsynced and renamed into place, so a reader (or a
crash) never sees a partial object and a failed write leaves no file. Keys are resolved strictly
inside the root: a key is a ``/``-separated relative path whose parts are checked, and the resolved
path is checked again, so no key can escape however it is spelled. Disk I/O runs on worker threads,
batched into ``chunk_size`` writes so the thread hop is paid per MiB, not per socket read.

Opening a blob for reading is the exception: ``open`` + ``fstat`` are metadata operations that take
microseconds when the inode is cached, less than the thread handoff they would need, and a small
download is mostly that handoff. So they run on the event loop; the reader then offers the open file
(``LocalFile``) for the HTTP layer to sendfile, and reads it on threads for everyone else.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import BinaryIO

from gateway.errors import NotFound, StorageError
from gateway.ports import BlobEntry, ResumableWrites, WriteResult

TMP_PREFIX = ".tmp-"


class FilesystemBlobStore:
    def __init__(self, root: str | os.PathLike[str], *, chunk_size: int = 1024 * 1024) -> None:
        self.root = Path(root).resolve()
        self._root = str(self.root)
        self.chunk_size = chunk_size

    def path_for(self, key: str) -> Path:
        return Path(self.file_for(key))

    def file_for(self, key: str) -> str:
        """The file of ``key`` (plain string operations: this runs for every download)."""
        parts = key.split("/")
        if not key or "\\" in key or "\x00" in key or any(p in ("", ".", "..") for p in parts):
            raise ValueError(f"invalid blob key {key!r}")
        path = os.path.join(self._root, *parts)
        # Lexical check (the parts above already exclude '..'); no realpath per request: a symlink
        # planted inside the data directory needs write access to it, which is game over anyway.
        if not path.startswith(self._root + os.sep):
            raise ValueError(f"blob key escapes the root: {key!r}")
        return path

    def resumable_writes(self) -> ResumableWrites:
        from gateway.storage.resumable_fs import FilesystemResumableWrites

        return FilesystemResumableWrites(self)

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
        """Buffered to ``chunk_size`` per write; a body smaller than that (most uploads) is created,
        written, fsynced and renamed in one thread hop instead of five."""
        target = self.path_for(key)
        tmp = target.with_name(f"{TMP_PREFIX}{target.name}.{secrets.token_hex(8)}")
        fh: BinaryIO | None = None
        size = 0
        try:
            buf = bytearray()
            async for chunk in chunks:
                buf += chunk
                size += len(chunk)
                if len(buf) >= self.chunk_size:
                    if fh is None:
                        fh = await asyncio.to_thread(_create, tmp)
                    await asyncio.to_thread(fh.write, bytes(buf))
                    buf.clear()
            await asyncio.to_thread(_finish, fh, tmp, target, bytes(buf))
        except BaseException:
            await asyncio.shield(asyncio.to_thread(_discard, fh, tmp))
            raise
        return WriteResult(size=size, etag="")

    async def open(self, key: str, offset: int = 0, length: int | None = None) -> _FileReader:
        path = self.file_for(key)
        try:
            fh = open(path, "rb")  # noqa: ASYNC230 -- on the loop on purpose: see the module docstring
        except FileNotFoundError:
            raise NotFound(f"blob {key} not found") from None
        except OSError as exc:
            raise StorageError(f"cannot open blob: {exc.strerror}") from exc
        if offset:
            fh.seek(offset)  # no I/O: sets the position
        return _FileReader(fh, length, self.chunk_size)

    async def delete(self, key: str) -> None:
        path = self.path_for(key)
        await asyncio.to_thread(path.unlink, missing_ok=True)

    async def move(self, src: str, dst: str, *, size: int) -> None:
        """A rename: atomic, and the target directory is created first."""
        source, target = self.path_for(src), self.path_for(dst)

        def rename() -> None:
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(source, target)

        try:
            await asyncio.to_thread(rename)
        except FileNotFoundError:
            raise NotFound(f"blob {src} not found") from None
        except OSError as exc:
            raise StorageError(f"cannot move blob: {exc.strerror}") from exc

    async def exists(self, key: str) -> bool:
        return await asyncio.to_thread(self.path_for(key).is_file)

    async def size_of(self, key: str) -> int:
        """The stored object's size (the Sized capability, ports.py)."""
        try:
            return (await asyncio.to_thread(self.path_for(key).stat)).st_size
        except FileNotFoundError:
            raise NotFound(f"blob {key} not found") from None

    async def list_blobs(self, prefix: str) -> AsyncIterator[BlobEntry]:
        """Committed blobs under ``prefix`` (temp files excluded), one directory listing at a time."""
        base = self.root / prefix if prefix else self.root
        dirs = [base]
        while dirs:
            entries = await asyncio.to_thread(_scan, dirs.pop())
            for path, is_dir, size, mtime in entries:
                if is_dir:
                    dirs.append(path)
                elif not path.name.startswith(TMP_PREFIX):
                    yield BlobEntry(str(path.relative_to(self.root)), size, mtime)

    async def abort_stale_uploads(
        self, older_than: float, keep: Callable[[str], Awaitable[bool]] | None = None
    ) -> int:
        """Temp files left by a process that died mid-upload (a live upload touches its file often)."""

        def sweep() -> int:
            removed = 0
            for tmp in self.root.rglob(f"{TMP_PREFIX}*"):
                try:
                    if tmp.stat().st_mtime < older_than:
                        tmp.unlink()
                        removed += 1
                except FileNotFoundError:
                    pass
            return removed

        return await asyncio.to_thread(sweep)


class _FileReader:
    """Reads on worker threads, ``chunk_size`` at a time; the last read closes the file.

    A small remainder (up to ``WHOLE_CHUNKS`` chunks) is read in one hop: thread hops cost far more than
    the syscalls here, which is what makes zips of many small files fast.
    """

    WHOLE_CHUNKS = 4

    def __init__(self, fh: BinaryIO, length: int | None, chunk_size: int) -> None:
        self._fh = fh
        self._remaining = length
        self._chunk = chunk_size

    def local_file(self) -> BinaryIO:
        return self._fh

    def _read_sync(self) -> bytes:
        if self._remaining is None:
            want = self._chunk
        elif self._remaining <= self._chunk * self.WHOLE_CHUNKS:
            want = self._remaining
        else:
            want = self._chunk
        data = self._fh.read(want) if want else b""
        if self._remaining is not None:
            self._remaining -= len(data)
        if not data or self._remaining == 0:
            self._fh.close()
        return data

    def __aiter__(self) -> _FileReader:
        return self

    async def __anext__(self) -> bytes:
        data = b"" if self._fh.closed else await asyncio.to_thread(self._read_sync)
        if data:
            return data
        if self._remaining:
            raise StorageError("blob is shorter than its catalog entry")
        raise StopAsyncIteration

    async def aclose(self) -> None:
        if not self._fh.closed:
            self._fh.close()  # no I/O to wait for: the file was only read


def _scan(directory: Path) -> list[tuple[Path, bool, int, float]]:
    out = []
    try:
        with os.scandir(directory) as it:
            for entry in it:
                st = entry.stat(follow_symlinks=False)
                out.append((Path(entry.path), entry.is_dir(follow_symlinks=False), st.st_size, st.st_mtime))
    except FileNotFoundError:
        pass
    return out


def _create(tmp: Path) -> BinaryIO:
    tmp.parent.mkdir(parents=True, exist_ok=True)
    return open(tmp, "xb")


def _finish(fh: BinaryIO | None, tmp: Path, target: Path, rest: bytes) -> None:
    """Write the rest, fsync, close, rename into place, fsync the directory: the object is durable."""
    if fh is None:
        fh = _create(tmp)
    with fh:
        if rest:
            fh.write(rest)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, target)
    dir_fd = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _discard(fh: BinaryIO | None, tmp: Path) -> None:
    try:
        if fh is not None:
            fh.close()
    finally:
        tmp.unlink(missing_ok=True)
