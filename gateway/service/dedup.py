"""Content-addressed storage (``dedup = true`` on a storage): identical uploads share one blob.

An upload still streams to its own staging key (``<prefix>assets/<asset>/<random>``) -- nothing about
the digest is known before the last byte. At commit, before the catalog write, :meth:`Dedup.share`
keeps or discards it by digest:

- the scope (owner or tenant, never across tenants) already holds that content: the upload *joins*
  the existing blob's reference (one conditional catalog write) and its staged copy is deleted once the
  commit succeeded;
- it does not: the staged blob is *moved* (a rename on disk, a server-side copy on S3) to
  ``<prefix>cas/<scope hash>/<sha256>/<generation>`` and the reference created with it as the only
  member. Two uploads racing here both move; the one whose create loses joins the winner and deletes
  its own copy.

The reference item lists its *members* (one per upload, recorded in the version's ``shared`` field), so
the last delete -- and only it -- removes the bytes, and a retried purge cannot count anything twice.
The generation suffix makes a new blob after the last member left a new key: a delete of the old bytes
racing a fresh upload of the same content can never remove the new one.

If the commit fails, :meth:`unshare` undoes the step: leaves the reference, and when that was the last
member moves the bytes back to the staging key (a resumable upload retries its commit from there) or
deletes them. A process killed between share and commit leaves a member nobody holds: its blob is
kept forever (a leak, never a loss); the staged copy is reclaimed by ``gateway gc`` as any orphan.
Stored sizes, sha256/ETag, CRC-32 and Range downloads are those of the content: only the key differs.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import logging
import uuid
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from gateway.errors import GatewayError
from gateway.service.context import Backends

if TYPE_CHECKING:
    from gateway.service.staging import Staged

log = logging.getLogger("gateway.dedup")
RACE_RETRIES = 4


class Dedup:
    def __init__(self, backends: Backends) -> None:
        self.b = backends

    def applies(self, staged: Staged) -> bool:
        return (
            self.b.blob_refs is not None
            and not staged.shared
            and bool(staged.digests.sha256)
            and self.b.storages.get(staged.storage).dedup
        )

    async def share(self, staged: Staged) -> Staged:
        """The staged upload, now pointing at the shared blob of its content (see the module doc)."""
        if not self.applies(staged):
            return staged
        refs, storage = self.b.blob_refs, self.b.storages.get(staged.storage)
        assert refs is not None and storage.mover is not None
        scope = hashlib.sha256(staged.scope.encode()).hexdigest()[:32]
        sha = staged.digests.sha256
        ref_id = f"{storage.name}#{scope}#{sha}"
        member = uuid.uuid4().hex
        prefix = staged.blob_key.partition("assets/")[0]
        moved_to = ""
        for _ in range(RACE_RETRIES):
            ref = await refs.join(ref_id, member)
            if ref is not None:
                if moved_to:  # we lost a create race: our moved copy is surplus
                    await storage.store.delete(moved_to)
                return dataclasses.replace(
                    staged, blob_key=ref.blob_key, shared=f"{ref_id} {member}", origin=staged.blob_key,
                    moved=False,
                )  # fmt: skip
            if not moved_to:
                moved_to = f"{prefix}cas/{scope}/{sha}/{uuid.uuid4().hex}"
                await storage.mover.move(staged.blob_key, moved_to, size=staged.digests.size)
            if await refs.create(ref_id, moved_to, member):
                return dataclasses.replace(
                    staged, blob_key=moved_to, shared=f"{ref_id} {member}", origin=staged.blob_key,
                    moved=True,
                )  # fmt: skip
        # joins and creates kept losing (deletes racing creates): store it unshared, at its moved key
        log.warning("dedup of %s gave up after %d races: stored unshared", staged.asset_id, RACE_RETRIES)
        return dataclasses.replace(staged, blob_key=moved_to, origin=staged.blob_key, moved=True)

    async def committed(self, staged: Staged) -> None:
        """After the catalog commit: the staged copy of a joined upload goes."""
        if staged.origin and not staged.moved:
            with contextlib.suppress(GatewayError, OSError):
                await self.b.storages.get(staged.storage).store.delete(staged.origin)

    async def unshare(self, staged: Staged) -> Staged:
        """The commit failed: undo :meth:`share`; the staged upload with its bytes at its own key again."""
        if not staged.origin:
            return staged
        storage = self.b.storages.get(staged.storage)
        last = await self.release(staged.storage, staged.shared) if staged.shared else staged.blob_key
        if staged.moved:
            if last:
                assert storage.mover is not None
                await storage.mover.move(staged.blob_key, staged.origin, size=staged.digests.size)
            else:  # others joined the blob we created: it is theirs now; ours is a copy of it
                await _copy_back(self.b, staged)
        return dataclasses.replace(staged, blob_key=staged.origin, shared="", origin="", moved=False)

    async def release(self, storage_name: str, shared: str) -> str | None:
        """Leave a shared blob (``Version.shared``); its key when that was the last member (the caller
        deletes or moves it), else None. Idempotent."""
        refs = self.b.blob_refs
        if refs is None or not shared:
            return None
        ref_id, _, member = shared.partition(" ")
        return await refs.leave(ref_id, member)

    async def delete(self, storage_name: str, blob_key: str, shared: str) -> None:
        """Delete a version's bytes: a private blob at once, a shared one when its last member leaves."""
        store = self.b.storages.get(storage_name).store
        if not shared:
            await store.delete(blob_key)
            return
        last = await self.release(storage_name, shared)
        if last:
            await asyncio.shield(store.delete(last))


async def _copy_back(backends: Backends, staged: Staged) -> None:
    """Stream the shared blob back to the staging key (rare: a failed commit of a blob others joined)."""
    store = backends.storages.get(staged.storage).store
    reader = await store.open(staged.blob_key)

    async def chunks() -> AsyncIterator[bytes]:
        try:
            async for chunk in reader:
                yield chunk
        finally:
            await reader.aclose()

    await store.write(staged.origin, chunks(), size_hint=staged.digests.size)
