"""Uploads in two phases: bytes first (``stage``), catalog second (``commit``).

The catalog write is the moment an asset becomes visible, so a failure at any point before it leaves
nothing readable, and the only cleanup ever needed is deleting blobs this request wrote. A multipart
form stages several files and commits them (and their token) in one catalog transaction, which is why
a form's file count is bounded by the catalog's transaction limit (:func:`max_files_per_commit`).

An *ambiguous* commit -- the catalog call failed or was cancelled, but the write may have happened (an
answer lost on the wire, a cancelled SQLite COMMIT that completed on its thread) -- is read back before
anything is deleted: deleting the blob of an asset that is in fact visible would be data loss.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import math
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from gateway.errors import CatalogError, GatewayError, PayloadTooLarge
from gateway.hashing import DigestingStream, Expected
from gateway.names import guess_content_type, validate_name
from gateway.ports import CatalogLimits
from gateway.records import Asset, Event, NewAsset, Placement, Version
from gateway.service.assets import AssetReader
from gateway.service.context import Backends
from gateway.service.dedup import Dedup
from gateway.service.events import Events, asset_data, token_data
from gateway.service.params import TokenRequest
from gateway.service.quotas import Quotas
from gateway.service.staging import Staged, StagedFiles
from gateway.service.tokens import IssuedToken, Tokens

log = logging.getLogger("gateway.service")
VERSION_RETRIES = 8
# Catalog items one file of a form may need: META, owner entry, version, expiry entry, token pointer.
ITEMS_PER_FILE = 5
ITEMS_PER_COMMIT = 2  # the token item and the expiry-index cursor


def max_files_per_commit(limits: CatalogLimits) -> int:
    """Files one form may carry so that its commit always fits one catalog transaction."""
    return (limits.max_transaction_items - ITEMS_PER_COMMIT) // ITEMS_PER_FILE


class Uploads:
    def __init__(
        self, backends: Backends, assets: AssetReader, tokens: Tokens, quotas: Quotas, events: Events
    ) -> None:
        self.b = backends
        self.events = events
        self.after_commit: list[Callable[[Asset, Version], None]] = []  # e.g. preset thumbnails
        self.initial_scan = ""  # a new version's scan state: 'pending' when scanners are configured
        self.assets = assets
        self.tokens = tokens
        self.quotas = quotas
        self.dedup = Dedup(backends)
        self.files = StagedFiles(quotas, self.dedup, backends)

    async def discard(self, staged: Sequence[Staged]) -> None:
        await self.files.discard(staged)

    @property
    def max_form_files(self) -> int:
        return max_files_per_commit(self.b.limits)

    async def stage(
        self,
        *,
        name: str,
        content_type: str | None,
        chunks: AsyncIterator[bytes],
        size_hint: int | None,
        expected: Expected | None = None,
        asset_id: str | None = None,
        max_size: int | None = None,
        placement: Placement | None = None,
        new_asset: bool | None = None,
    ) -> Staged:
        """Store the bytes of a new asset (or, with ``asset_id``, of a new version of that asset).

        Blob keys are ``<tenant prefix>assets/<asset id>/<random>``: grouped by asset (gc relies on it),
        and unique per upload so racing writers never overwrite each other before the catalog decides.
        ``placement`` (service/placement.py) names the storage and the quota scope; None: the default
        storage, the quota checked at commit. With an announced length (``size_hint``) the quota is held
        before the first byte is read; without, the body may not outgrow the room left.
        """
        validate_name(name)
        new = asset_id is None if new_asset is None else new_asset
        asset_id = asset_id or str(uuid.uuid4())
        storage = self.b.storages.get(placement.storage if placement else "")
        blob_key = f"{placement.prefix if placement else ''}assets/{asset_id}/{uuid.uuid4().hex}"
        limit = self.b.settings.max_upload_size if max_size is None else max_size
        scope = placement.scope if placement else ""
        hold = None
        capped = False  # the body may not outgrow the quota's room: over it is quota_exceeded, not 413
        if scope and self.quotas.limited(scope):
            if size_hint is None:
                room = await self.quotas.room(scope)
                capped = room is not None and room < limit
                limit = limit if room is None else min(limit, room)
            hold = await self.quotas.hold(
                scope, size=size_hint or 0, assets=int(new), asset_id=asset_id, blob_key=blob_key
            )
        stream = DigestingStream(chunks, max_size=limit, expected=expected)
        try:
            await storage.store.write(blob_key, stream, size_hint=size_hint)
        except PayloadTooLarge:
            await asyncio.shield(self.quotas.release(hold))
            if capped:
                await self.quotas.refuse(scope, limit + 1, 0)
            raise
        except BaseException:
            await asyncio.shield(self.quotas.release(hold))
            raise
        return Staged(
            asset_id=asset_id,
            name=name,
            content_type=content_type or guess_content_type(name),
            blob_key=blob_key,
            digests=stream.digests(),
            storage=storage.name,
            scope=scope,
            hold=hold,
        )

    async def commit(
        self,
        staged: Sequence[Staged],
        *,
        owner: str,
        token: TokenRequest | None,
        bundle_name: str | None = None,
        retention: int | None = None,
        metadata: dict[str, Any] | None = None,
        keep_on_failure: bool = False,
        link_id: str | None = None,
    ) -> tuple[list[tuple[Asset, Version]], IssuedToken | None]:
        """Make ``staged`` visible in one catalog transaction. On failure the blobs are deleted, unless
        ``keep_on_failure`` (a resumable upload keeps its bytes to retry the commit). ``link_id``: the
        upload came through that upload link (its ``upload_link.used`` event joins the transaction)."""
        staged = await self.files.prepare(staged, owner=owner, keep=keep_on_failure)
        now = self.b.clock()
        expires_at = None if retention is None else math.ceil(now) + retention  # never shorter than asked
        pairs = [
            (
                Asset(
                    id=s.asset_id,
                    name=s.name,
                    owner=owner,
                    content_type=s.content_type,
                    created=now,
                    expires_at=expires_at,
                    metadata=dict(metadata or {}),
                    scope=s.scope if s.scope != f"owner:{owner}" else "",
                ),
                Version(
                    asset_id=s.asset_id,
                    version=0,
                    size=s.digests.size,
                    sha256=s.digests.sha256,
                    crc32=s.digests.crc32,
                    blob_key=s.blob_key,
                    created=now,
                    content_type=s.content_type,
                    storage=s.storage,
                    shared=s.shared,
                    scan=self.initial_scan,
                ),
            )
            for s in staged
        ]
        issued = None
        if token is not None:
            bundle = len(pairs) > 1
            issued = self.tokens.issue(
                [a for a, _ in pairs], owner, token, bundle=bundle, name=bundle_name if bundle else None
            )
        news = [NewAsset(a, v) for a, v in pairs]
        if issued is not None and news:
            news[0] = NewAsset(news[0].asset, news[0].version, (issued.record,))
        ev = self.events
        events = [ev.new("asset.created", owner, asset_data(a, v)) for a, v in pairs]
        if issued is not None:
            events.append(ev.new("token.created", owner, token_data(issued.record)))
        if link_id is not None:
            used = {"link_id": link_id, "asset_ids": [a.id for a, _ in pairs]}
            events.append(ev.new("upload_link.used", owner, used))
        try:
            await self._write_or_discard(news, [] if keep_on_failure else staged, ev.of(*events))
        except BaseException:
            if keep_on_failure:  # the blobs stay (a resumable upload retries), their holds go
                await asyncio.shield(self.files.undo(staged))
            raise
        self.events.committed(events)
        await self.files.committed(staged)
        for hook in self.after_commit:
            for asset, version in pairs:
                hook(asset, version)
        return pairs, issued

    async def _write_or_discard(
        self, news: Sequence[NewAsset], staged: Sequence[Staged], events: Sequence[Event]
    ) -> None:
        """The catalog write; its outcome decided (read back if need be) before any blob is deleted."""
        write = asyncio.ensure_future(self.b.catalog.create_assets(news, events))
        try:
            await asyncio.shield(write)
        except asyncio.CancelledError:
            # The request is going away, but the write runs on: wait for its real outcome.
            with contextlib.suppress(BaseException):
                await write
            committed = write.done() and not write.cancelled() and write.exception() is None
            if not committed and await self._visible(news[0]) is False:
                await self.discard(staged)
            raise
        except Exception:
            visible = await self._visible(news[0])
            if visible:
                log.warning("commit of %s reported failure but is visible: kept", news[0].asset.id)
                return
            if visible is False:
                await self.discard(staged)
            raise

    async def _visible(self, first: NewAsset) -> bool | None:
        """Whether ``first`` was written (None: cannot tell; then nothing is deleted, gc decides later)."""
        try:
            found = await self.b.catalog.get_asset(first.asset.id)
        except GatewayError:
            log.warning("commit outcome unknown for %s: blobs left for `gateway gc`", first.asset.id)
            return None
        if found is None:
            return False
        return found.latest is None or found.latest.blob_key == first.version.blob_key

    async def upload(
        self,
        *,
        name: str,
        content_type: str | None,
        chunks: AsyncIterator[bytes],
        size_hint: int | None,
        expected: Expected | None,
        owner: str,
        token: TokenRequest | None,
        retention: int | None = None,
        metadata: dict[str, Any] | None = None,
        max_size: int | None = None,
        placement: Placement | None = None,
        link_id: str | None = None,
    ) -> tuple[Asset, Version, IssuedToken | None]:
        staged = await self.stage(
            name=name,
            content_type=content_type,
            chunks=chunks,
            size_hint=size_hint,
            expected=expected,
            max_size=max_size,
            placement=placement,
        )
        [(asset, version)], issued = await self.commit(
            [staged], owner=owner, token=token, retention=retention, metadata=metadata, link_id=link_id
        )
        return asset, version, issued

    async def new_version(
        self,
        asset_id: str,
        *,
        owner: str,
        content_type: str | None,
        chunks: AsyncIterator[bytes],
        size_hint: int | None,
        expected: Expected | None,
        placement: Placement | None = None,
    ) -> tuple[Asset, Version]:
        """Stream a new version; its number is claimed by a conditional catalog write.

        The blob key is unique per upload, so when a concurrent upload wins the number we simply retry
        with the next one (the bytes are already stored); after a few lost races we give up and delete.
        """
        asset, _ = await self.assets.find(asset_id, owner=owner)
        staged = await self.stage(
            name=asset.name,
            content_type=content_type or asset.content_type,
            chunks=chunks,
            size_hint=size_hint,
            expected=expected,
            asset_id=asset.id,
            placement=placement,
        )
        try:
            version = await self.commit_version(asset, staged, owner=owner)
        except BaseException:
            await self.discard([staged])
            raise
        return asset, version

    async def commit_version(self, asset: Asset, staged: Staged, *, owner: str) -> Version:
        """Make ``staged`` the asset's next version; its number is claimed by a conditional write, retried
        with the next number when a concurrent upload won it. The caller discards ``staged`` on failure
        (its quota hold included); the version's bytes count against the asset's own scope."""
        scope = asset.scope or f"owner:{asset.owner}"
        hold = staged.hold
        if hold is not None and hold.scope != scope:
            await self.quotas.release(hold)
            hold = None
        if hold is None and self.quotas.limited(scope):
            hold = await self.quotas.hold(
                scope, size=staged.digests.size, assets=0, asset_id=asset.id, blob_key=staged.blob_key
            )
        elif hold is not None:
            hold = await self.quotas.grow(hold, staged.digests.size)
        shared = staged
        try:
            shared = await self.dedup.share(dataclasses.replace(staged, scope=scope))
            version = await self._claim_version(asset, shared, owner=owner)
        except BaseException:
            await asyncio.shield(self.quotas.release(hold))
            await asyncio.shield(self.dedup.unshare(shared))  # bytes back at the staged key
            raise
        await self.dedup.committed(shared)
        await self.quotas.settle(hold, scope, staged.digests.size, 0)
        return version

    async def _claim_version(self, asset: Asset, staged: Staged, *, owner: str) -> Version:
        for _ in range(VERSION_RETRIES):
            version = Version(
                asset_id=asset.id,
                version=asset.latest_version + 1,
                size=staged.digests.size,
                sha256=staged.digests.sha256,
                crc32=staged.digests.crc32,
                blob_key=staged.blob_key,
                created=self.b.clock(),
                content_type=staged.content_type,
                storage=staged.storage,
                shared=staged.shared,
                scan=self.initial_scan,
            )
            events = self.events.of(
                self.events.new("asset.version_created", asset.owner, asset_data(asset, version))
            )
            if await self.b.catalog.add_version(asset, version, events):
                self.events.committed(events)
                for hook in self.after_commit:
                    hook(asset, version)
                return version
            asset, _ = await self.assets.find(asset.id, owner=owner)
        raise CatalogError("too many concurrent version uploads; try again", code="version_conflict")
