"""``gateway sync SRC DST``: make DST hold what SRC holds, object by object, streaming.

The regional asset server backed each region's bucket up with a nightly
``aws s3 sync s3://sp-assets-us s3://sp-assets-na-snapshots --size-only``; this is that command, for any
pair of storages the gateway knows (S3 and filesystem, named storages or URLs, in any combination).

What is equal (skipped), as ``aws s3 sync`` decides it and one step stricter by default:
- ``--size-only``: same key and same size (aws's ``--size-only``: nothing else is compared);
- default: same key, same size **and the same content**, compared by reading both sides and hashing
  (SHA-256) when the sizes match. That costs a read of each equal object per run; ``--size-only`` is the
  cheap mode for data that never changes in place (like the regional backups).
Objects are copied by streaming the source into the destination (multipart on S3 for big objects), so
memory stays bounded whatever the object size; ``--concurrency`` objects at a time. A failed copy is
retried (3 attempts, backoff) and then reported; the run goes on, and exits non-zero at the end.
Running again resumes: what was copied is now equal and skipped. ``--delete`` removes destination
objects the source does not have (only under ``--prefix``); ``--dry-run`` says what would happen.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from gateway.errors import GatewayError
from gateway.ports import BlobEntry, BlobInventory, BlobStore

ATTEMPTS = 3


@dataclass(frozen=True)
class SyncOptions:
    prefix: str = ""
    size_only: bool = False
    delete: bool = False
    dry_run: bool = False
    concurrency: int = 4


@dataclass
class SyncReport:
    copied: int = 0
    copied_bytes: int = 0
    deleted: int = 0
    skipped: int = 0
    failed: int = 0
    errors: list[dict[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "copied": self.copied,
            "copied_bytes": self.copied_bytes,
            "deleted": self.deleted,
            "skipped": self.skipped,
            "failed": self.failed,
        }


class Listener:
    """What a run reports as it goes (the CLI draws bars or prints JSON lines)."""

    def planned(self, objects: int, size: int) -> None: ...

    def progress(self, key: str, nbytes: int) -> None: ...

    def done(self, action: str, key: str, size: int, error: str | None = None) -> None: ...


async def listing(store: BlobStore, prefix: str) -> dict[str, BlobEntry]:
    if not isinstance(store, BlobInventory):
        raise GatewayError("this storage cannot list its objects", code="not_listable")
    out: dict[str, BlobEntry] = {}
    try:
        async for entry in store.list_blobs(prefix):
            if entry.key.startswith(prefix):
                out[entry.key] = entry
    except FileNotFoundError:  # a directory that does not exist yet holds nothing
        return {}
    return out


async def _digest(store: BlobStore, key: str) -> str:
    sha = hashlib.sha256()
    reader = await store.open(key)
    try:
        async for chunk in reader:
            sha.update(chunk)
    finally:
        await reader.aclose()
    return sha.hexdigest()


async def _same(src: BlobStore, dst: BlobStore, s: BlobEntry, d: BlobEntry, size_only: bool) -> bool:
    if s.size != d.size:
        return False
    if size_only:
        return True
    a, b = await asyncio.gather(_digest(src, s.key), _digest(dst, d.key))
    return a == b


async def sync(
    src: BlobStore, dst: BlobStore, options: SyncOptions, listener: Listener | None = None
) -> SyncReport:
    ear = listener or Listener()
    report = SyncReport()
    source, target = await asyncio.gather(listing(src, options.prefix), listing(dst, options.prefix))
    slots = asyncio.Semaphore(options.concurrency)

    async def decide(entry: BlobEntry) -> BlobEntry | None:
        other = target.get(entry.key)
        if other is not None:
            async with slots:
                if await _same(src, dst, entry, other, options.size_only):
                    return None
        return entry

    decided = await asyncio.gather(*(decide(e) for e in source.values()), return_exceptions=True)
    to_copy: list[BlobEntry] = []
    for entry, outcome in zip(source.values(), decided, strict=True):
        if isinstance(outcome, BaseException):
            _fail(report, ear, "compare", entry, outcome)
        elif outcome is None:
            report.skipped += 1
        else:
            to_copy.append(outcome)
    to_delete = [k for k in target if k not in source] if options.delete else []
    ear.planned(len(to_copy), sum(e.size for e in to_copy))

    async def copy(entry: BlobEntry) -> None:
        async with slots:
            if options.dry_run:
                ear.done("would-copy", entry.key, entry.size)
                return
            for attempt in range(1, ATTEMPTS + 1):
                try:
                    await _copy_one(src, dst, entry, ear)
                    report.copied += 1
                    report.copied_bytes += entry.size
                    ear.done("copy", entry.key, entry.size)
                    return
                except ValueError as exc:  # a key the destination refuses (e.g. '..' on a filesystem)
                    _fail(report, ear, "copy", entry, exc)
                    return
                except (GatewayError, OSError) as exc:
                    if attempt == ATTEMPTS:
                        _fail(report, ear, "copy", entry, exc)
                        return
                    await asyncio.sleep(0.2 * 2**attempt)

    async def remove(key: str) -> None:
        async with slots:
            if options.dry_run:
                ear.done("would-delete", key, target[key].size)
                return
            try:
                await dst.delete(key)
                report.deleted += 1
                ear.done("delete", key, target[key].size)
            except (GatewayError, OSError, ValueError) as exc:
                _fail(report, ear, "delete", target[key], exc)

    await asyncio.gather(*(copy(e) for e in to_copy), *(remove(k) for k in to_delete))
    return report


async def _copy_one(src: BlobStore, dst: BlobStore, entry: BlobEntry, ear: Listener) -> None:
    reader = await src.open(entry.key)

    async def chunks() -> AsyncIterator[bytes]:
        async for chunk in reader:
            ear.progress(entry.key, len(chunk))
            yield chunk

    try:
        written = await dst.write(entry.key, chunks(), size_hint=entry.size)
    finally:
        await reader.aclose()
    if written.size != entry.size:  # the source changed under us, or a store lied: never call it done
        await dst.delete(entry.key)
        raise GatewayError(f"copied {written.size} bytes of {entry.size}", code="size_mismatch")


def _fail(report: SyncReport, ear: Listener, action: str, entry: BlobEntry, exc: BaseException) -> None:
    reason = getattr(exc, "message", None) or (str(exc)[:200] if isinstance(exc, ValueError) else "")
    reason = reason or type(exc).__name__
    report.failed += 1
    report.errors.append({"action": action, "key": entry.key, "error": reason})
    ear.done(action, entry.key, entry.size, error=reason)
