"""Deletion and retention: make unreadable at once, then remove bytes and items; the sweeper finishes.

The sweeper runs in every gateway process (jittered; racing sweepers are harmless). It must never die:
one asset that cannot be purged -- storage refusing a delete, an OSError, a bug -- is logged, counted
(``gateway_sweep_failures``) and skipped, the rest of the batch goes on, and the asset is retried on a
later pass because it stays in the expiry index until its purge succeeds.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable

from gateway.errors import GatewayError, NotFound
from gateway.records import DueAsset
from gateway.service.assets import AssetReader
from gateway.service.context import Backends
from gateway.service.dedup import Dedup
from gateway.service.events import Events, asset_data
from gateway.service.quotas import Quotas

log = logging.getLogger("gateway.retention")
SWEEP_BATCH = 100


class Retention:
    def __init__(
        self,
        backends: Backends,
        assets: AssetReader,
        quotas: Quotas,
        events: Events,
        on_failure: Callable[[], None] | None = None,
    ) -> None:
        self.b = backends
        self.events = events
        self.assets = assets
        self.quotas = quotas
        self.dedup = Dedup(backends)
        self.on_failure = on_failure or (lambda: None)
        self.also: list[Callable[[], Awaitable[int]]] = []  # other sweeps of the same pass (expired uploads)
        self.derived: list[Callable[[str], Awaitable[None]]] = []  # an asset's derived data (thumbnails)

    async def delete(self, asset_id: str, *, owner: str) -> None:
        """Unreadable at once (one transaction), then bytes and items go; the sweeper finishes on failure."""
        asset, _ = await self.assets.find(asset_id, owner=owner)
        now = int(self.b.clock())
        if not await self.b.catalog.expire_asset(asset.id, now):
            raise NotFound("unknown asset", code="asset_not_found")
        try:
            await self.purge(asset.id, due=DueAsset(asset.id, now), reason="asset.deleted")
        except (GatewayError, OSError) as exc:
            log.warning("delete of %s left for the sweeper: %s", asset.id, _reason(exc))

    async def purge(
        self, asset_id: str, *, due: DueAsset | None = None, reason: str = "asset.expired"
    ) -> bool:
        """Delete every version's bytes, then the catalog items.

        Bytes go first: if we die in between, the asset is still listed in the expiry index and the
        next sweep (in any process) finishes the job. Blob deletes are idempotent and the catalog
        delete is conditional, so concurrent sweepers cannot fail each other or lose a delete.
        """
        asset = await self.b.catalog.get_asset(asset_id)
        versions = await self.b.catalog.list_versions(asset_id)
        for version in versions:  # a shared blob goes with its last member (service/dedup.py)
            await self.dedup.delete(version.storage, version.blob_key, version.shared)
        for forget in self.derived:
            await forget(asset_id)
        events = (
            () if asset is None else self.events.of(self.events.new(reason, asset.owner, asset_data(asset)))
        )
        if not await self.b.catalog.delete_asset(asset_id, due=due, events=events):
            return False
        self.events.committed(events)
        if asset is not None:  # only the deleter whose conditional delete won gives the quota back
            await self.quotas.refund(asset.scope or f"owner:{asset.owner}", sum(v.size for v in versions), 1)
        return True

    async def sweep_once(self) -> int:
        """One pass: purge assets whose retention ended, and (without TTL) long-expired tokens."""
        now = self.b.clock()
        purged = 0
        for due in await self.b.catalog.due_assets(now, SWEEP_BATCH):
            try:
                if await self.purge(due.asset_id, due=due):
                    purged += 1
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # one bad asset must never stop retention for the rest
                self.on_failure()
                log.warning("purge of %s failed, retried next sweep: %s", due.asset_id, _reason(exc))
        for sweep in self.also:
            try:
                await sweep()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.on_failure()
                log.warning("sweep failed, retried next pass: %s", _reason(exc))
        if self.b.purger is not None:
            await self.b.purger.purge_expired(now - self.b.settings.expired_token_grace)
        return purged

    async def sweeper(self) -> None:
        """Runs for the life of the process; every process runs one (they are safe together)."""
        interval = self.b.settings.sweep_interval
        while True:
            await asyncio.sleep(interval * (0.5 + secrets.randbelow(1000) / 1000))
            try:
                purged = await self.sweep_once()
                if purged:
                    log.info("retention sweep purged %d assets", purged)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.on_failure()
                log.warning("retention sweep failed, will retry: %s", _reason(exc))


def _reason(exc: BaseException) -> str:
    return exc.message if isinstance(exc, GatewayError) else type(exc).__name__
