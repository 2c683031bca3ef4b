"""Quotas: stored bytes and asset count per owner or tenant, exact under concurrency across processes.

The scope of a quota is the upload's placement scope (``owner:<principal>`` or ``tenant:<name>``,
service/placement.py); its limits come from the tenant's or principal's config, else the deployment's
``quota_max_bytes`` / ``quota_max_assets``. Usage is one counter item per scope in the catalog.

How an upload is counted, **reserve then settle** (every step one catalog transaction):

1. *Before any byte is read*, when the length is announced (``Content-Length``, tus ``Upload-Length``):
   a **hold** for that many bytes (and one asset, for a new asset) is added to the counter, conditionally
   on the result staying within the limits -- a second upload racing for the same last megabyte gets
   ``413 quota_exceeded`` at once, from any process. With no announced length the hold is for the asset
   alone and the body may grow only up to the room left at that moment.
2. *Before the catalog commit*, the hold grows to the actual size if it was smaller, again conditionally:
   this is where a chunked upload is refused, its staged bytes deleted.
3. *After the commit*, the hold is **settled** (dropped, the counter corrected to the exact size); after
   a failure it is **released** (dropped, its room given back).

A process killed between 1 and 3 leaves its hold, an item with an expiry: the sweeper settles it if the
upload did commit (its blob key is an asset's version) and releases it otherwise. Until then the room
stays taken, never the other way round: the counter can be briefly over, never under. Deleting an asset
gives its bytes back after the catalog delete (whose conditional write only one deleter wins).

Without any limit for a scope, no hold is taken (no extra catalog write on the upload path); usage is
still counted, one unconditional update after the commit, so ``GET /usage`` is always meaningful and a
limit added later starts from the truth. Deduplicated blobs count once per asset: quotas are logical bytes.
"""

from __future__ import annotations

import logging
import math
import secrets
from dataclasses import dataclass

from gateway.errors import GatewayError, QuotaExceeded
from gateway.ports import Hold, QuotaLedger, Usage
from gateway.service.context import Backends
from gateway.service.placement import Placer
from gateway.topology import Quota

log = logging.getLogger("gateway.quotas")
SWEEP_BATCH = 100


@dataclass(frozen=True)
class Report:
    scope: str
    used: Usage
    quota: Quota

    def as_dict(self) -> dict[str, object]:
        return {
            "scope": self.scope,
            "bytes": self.used.bytes,
            "assets": self.used.assets,
            "max_bytes": self.quota.max_bytes,
            "max_assets": self.quota.max_assets,
        }


class Quotas:
    def __init__(self, backends: Backends, placer: Placer, ledger: QuotaLedger | None) -> None:
        self.b = backends
        self.placer = placer
        self.ledger = ledger

    def limits(self, scope: str) -> Quota:
        return self.placer.quota_of(scope)

    def limited(self, scope: str) -> bool:
        q = self.limits(scope)
        return self.ledger is not None and (q.max_bytes is not None or q.max_assets is not None)

    async def report(self, scope: str) -> Report:
        used = Usage() if self.ledger is None else await self.ledger.usage(scope)
        return Report(scope, used, self.limits(scope))

    async def room(self, scope: str) -> int | None:
        """Bytes the scope may still add (None: no byte limit)."""
        q = self.limits(scope)
        if q.max_bytes is None or self.ledger is None:
            return None
        return max(0, q.max_bytes - (await self.ledger.usage(scope)).bytes)

    async def precheck(self, scope: str, size: int, assets: int) -> None:
        """Early refusal without a hold (a tus upload announcing its length): exactness is at commit."""
        if not self.limited(scope):
            return
        used = await self.ledger.usage(scope)  # type: ignore[union-attr]
        self._check(scope, Usage(used.bytes + size, used.assets + assets), used)

    async def hold(self, scope: str, *, size: int, assets: int, asset_id: str, blob_key: str) -> Hold | None:
        """Reserve room (None when the scope has no limit); raises 413 quota_exceeded when it does not fit."""
        if not self.limited(scope):
            return None
        assert self.ledger is not None
        ttl = self.b.settings.quota_hold_seconds
        hold = Hold(
            scope=scope,
            hold_id=secrets.token_hex(16),
            bytes=size,
            assets=assets,
            expires=math.ceil(self.b.clock()) + ttl,
            asset_id=asset_id,
            blob_key=blob_key,
        )
        q = self.limits(scope)
        if not await self.ledger.hold(hold, q.max_bytes, q.max_assets):
            await self.refuse(scope, size, assets)
        return hold

    async def grow(self, hold: Hold, size: int) -> Hold:
        if size <= hold.bytes:
            return hold
        assert self.ledger is not None
        if not await self.ledger.grow(hold, size, self.limits(hold.scope).max_bytes):
            await self.refuse(hold.scope, size - hold.bytes, 0)
        return Hold(**{**vars(hold), "bytes": size})

    async def settle(self, hold: Hold | None, scope: str, size: int, assets: int) -> None:
        """After a commit: settle the hold, or (no limit) count the upload. Never fails the upload."""
        if self.ledger is None:
            return
        try:
            if hold is None:
                await self.ledger.charge(scope, size, assets)
            elif not await self.ledger.settle(hold, size):
                log.warning("quota hold %s was already reconciled", hold.hold_id)
        except GatewayError as exc:  # committed: the upload stands; the sweeper settles the hold
            log.warning("quota settle for %s left to the sweeper: %s", scope, exc.message)

    async def release(self, hold: Hold | None) -> None:
        if hold is None or self.ledger is None:
            return
        try:
            await self.ledger.release(hold)
        except GatewayError as exc:
            log.warning("quota release left to the sweeper: %s", exc.message)

    async def refund(self, scope: str, size: int, assets: int) -> None:
        """An asset (or its bytes) went away."""
        if self.ledger is not None and (size or assets):
            await self.ledger.charge(scope, -size, -assets)

    async def reconcile(self) -> int:
        """Holds left by dead processes: settled if their upload committed, released if not."""
        if self.ledger is None:
            return 0
        done = 0
        for hold in await self.ledger.due_holds(self.b.clock(), SWEEP_BATCH):
            committed = next(
                (
                    v
                    for v in await self.b.catalog.list_versions(hold.asset_id)
                    if hold.blob_key and v.blob_key == hold.blob_key
                ),
                None,
            )
            if committed is not None:
                done += await self.ledger.settle(hold, committed.size)
            else:
                done += await self.ledger.release(hold)
        return done

    async def refuse(self, scope: str, size: int, assets: int) -> None:
        """Raise 413 with the figures as they are now (when they fit now, the race for them was lost)."""
        assert self.ledger is not None
        used = await self.ledger.usage(scope)
        self._check(scope, Usage(used.bytes + size, used.assets + assets), used, always=True)

    def _check(self, scope: str, after: Usage, used: Usage, *, always: bool = False) -> None:
        q = self.limits(scope)
        over_bytes = q.max_bytes is not None and after.bytes > q.max_bytes
        over_assets = q.max_assets is not None and after.assets > q.max_assets
        if over_bytes or over_assets or always:
            what = "asset count" if over_assets and not over_bytes else "stored bytes"
            raise QuotaExceeded(
                f"quota exceeded: the {what} limit of this {scope.partition(':')[0]} would be passed",
                used={"bytes": used.bytes, "assets": used.assets},
                allowed={"bytes": q.max_bytes, "assets": q.max_assets},
            )
