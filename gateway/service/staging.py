"""Staged files between their bytes and their commit: quota holds and content addressing applied, and
undone, in one place (service/uploads.py calls these around its catalog write).

Why a module of its own: every upload route -- raw, form, JSON, tus, upload links -- reaches its commit
with :class:`Staged` files that may hold quota room (service/quotas.py) and may share a blob by digest
(service/dedup.py). Getting them ready, undoing that when the commit fails (deleting, or for a resumable
upload keeping its bytes at their staging key), and settling after it must be the same code for all.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from gateway.errors import GatewayError
from gateway.hashing import Digests
from gateway.ports import Hold
from gateway.service.context import Backends
from gateway.service.dedup import Dedup
from gateway.service.quotas import Quotas

log = logging.getLogger("gateway.service")


@dataclass(frozen=True)
class Staged:
    """Bytes that are stored but not yet visible."""

    asset_id: str
    name: str
    content_type: str
    blob_key: str
    digests: Digests
    storage: str = ""  # the named storage holding blob_key
    scope: str = ""  # quota scope ('': the committing owner's), service/quotas.py
    hold: Hold | None = None  # room reserved for it before its bytes were read
    shared: str = ""  # content-addressed: its member in the shared blob at blob_key (service/dedup.py)
    origin: str = ""  # content-addressed: where it was staged (deleted once committed, unless moved)
    moved: bool = False  # content-addressed: the staged bytes became the shared blob


class StagedFiles:
    def __init__(self, quotas: Quotas, dedup: Dedup, backends: Backends) -> None:
        self.quotas = quotas
        self.dedup = dedup
        self.b = backends

    async def prepare(self, staged: Sequence[Staged], *, owner: str, keep: bool) -> list[Staged]:
        """Before the catalog write: holds grown to the real sizes, blobs shared by digest. Raises (413
        quota_exceeded…) with everything undone: deleted, or with ``keep`` bytes left where they were."""
        held = await self._held(staged, owner, keep)
        return await self._shared(held, keep)

    async def committed(self, staged: Sequence[Staged]) -> None:
        """After the catalog write: staged copies of joined blobs go, holds settle (or usage counts)."""
        counted: dict[str, list[int]] = {}  # scopes without a hold: one counter update each
        for s in staged:
            await self.dedup.committed(s)
            if s.hold is not None:
                await self.quotas.settle(s.hold, s.scope, s.digests.size, 1)
            else:
                figures = counted.setdefault(s.scope, [0, 0])
                figures[0] += s.digests.size
                figures[1] += 1
        for scope, (size, count) in counted.items():
            await self.quotas.settle(None, scope, size, count)

    async def discard(self, staged: Sequence[Staged]) -> None:
        """Delete staged blobs and give their quota holds back; shielded so a cancelled request still
        cleans up."""

        async def _drop() -> None:
            for s in staged:
                await self.quotas.release(s.hold)
                with contextlib.suppress(Exception):
                    await self.dedup.delete(s.storage, s.blob_key, s.shared)
                if s.origin and not s.moved:
                    with contextlib.suppress(Exception):
                        await self.b.storages.get(s.storage).store.delete(s.origin)

        await asyncio.shield(_drop())

    async def _shared(self, staged: Sequence[Staged], keep: bool) -> list[Staged]:
        """Content-addressed storages: each staged file kept or discarded by digest (service/dedup.py)."""
        out: list[Staged] = []
        try:
            for s in staged:
                out.append(await self.dedup.share(s))
        except BaseException:
            rest = [*out, *staged[len(out) :]]
            if keep:
                await asyncio.shield(self.undo(rest))
            else:
                await self.discard(rest)
            raise
        return out

    async def undo(self, staged: Sequence[Staged]) -> None:
        """A kept upload's failed commit: bytes back at their staging keys, holds given back."""
        for s in staged:
            await self.quotas.release(s.hold)
            try:
                await self.dedup.unshare(s)
            except (GatewayError, OSError) as exc:
                log.warning("could not undo dedup of %s: %s", s.asset_id, exc)

    async def _held(self, staged: Sequence[Staged], owner: str, keep: bool) -> list[Staged]:
        """Every staged file with a hold as large as its bytes, where its scope has a quota: the exact,
        conditional check of uploads whose length was not announced. Refused → all discarded, 413."""
        out: list[Staged] = []
        try:
            for s in staged:
                scope = s.scope or f"owner:{owner}"
                hold = s.hold
                if hold is None and self.quotas.limited(scope):
                    hold = await self.quotas.hold(
                        scope, size=s.digests.size, assets=1, asset_id=s.asset_id, blob_key=s.blob_key
                    )
                elif hold is not None:
                    hold = await self.quotas.grow(hold, s.digests.size)
                out.append(dataclasses.replace(s, scope=scope, hold=hold))
        except BaseException:
            rest = [*out, *staged[len(out) :]]
            if keep:
                for s in rest:
                    await asyncio.shield(self.quotas.release(s.hold))
            else:
                await self.discard(rest)
            raise
        return out
