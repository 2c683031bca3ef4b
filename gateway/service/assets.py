"""Reading the catalog on behalf of a principal: find, list, describe, open an asset's bytes.

Ownership is decided here and only here: ``owner=None`` means unrestricted (a share link is the
capability), anything else must match, and another owner's asset is indistinguishable from a missing
one (404, nothing about its existence leaks).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable

from gateway.errors import GatewayError, NotFound, StorageError
from gateway.ports import BlobReader
from gateway.records import Asset, Version
from gateway.service.context import Backends

log = logging.getLogger("gateway.service")


class AssetReader:
    def __init__(self, backends: Backends) -> None:
        self.b = backends
        self.on_failover: Callable[[], None] = lambda: None  # a metric: reads served by a backup

    async def find(
        self, asset_id: str, version: int | None = None, *, owner: str | None
    ) -> tuple[Asset, Version]:
        """An asset and one of its versions (default: the latest)."""
        if not is_uuid(asset_id):
            raise NotFound("unknown asset", code="asset_not_found")
        asset = await self.b.catalog.get_asset(asset_id)
        if asset is None or asset.expired(self.b.clock()) or (owner is not None and asset.owner != owner):
            raise NotFound("unknown asset", code="asset_not_found")
        wanted = asset.latest_version if version is None else version
        if asset.latest is not None and asset.latest.version == wanted:
            return asset, asset.latest  # one catalog read for the common case
        found = await self.b.catalog.get_version(asset_id, wanted)
        if found is None:
            raise NotFound(f"asset has no version {wanted}", code="version_not_found")
        return asset, found

    async def describe(self, asset_id: str, *, owner: str | None) -> tuple[Asset, list[Version]]:
        asset, _ = await self.find(asset_id, owner=owner)
        return asset, await self.b.catalog.list_versions(asset_id)

    async def list_assets(
        self, *, owner: str, limit: int, cursor: str | None
    ) -> tuple[list[tuple[Asset, Version]], str | None]:
        cat = self.b.catalog
        ids, next_key = await cat.list_owner_assets(owner, limit, cursor)
        assets = await cat.get_assets(ids)
        now = self.b.clock()
        live = [
            assets[i] for i in ids if i in assets and not assets[i].expired(now) and assets[i].owner == owner
        ]
        missing = [(a.id, a.latest_version) for a in live if a.latest is None]
        versions = await cat.get_versions(missing) if missing else {}
        out = []
        for a in live:
            latest = a.latest or versions.get((a.id, a.latest_version))
            if latest is not None:
                out.append((a, latest))
        return out, next_key

    async def open(self, version: Version, offset: int = 0, length: int | None = None) -> BlobReader:
        """The version's bytes. A blob the catalog lists but storage lacks is reported without its key
        (keys are internal); callers serving a link turn it into 410."""
        storage = self.b.storages.get(version.storage)
        try:
            return await storage.store.open(version.blob_key, offset, length)
        except (NotFound, StorageError) as exc:
            # Read failover (docs/backup.md): the storage's backup holds the same key, same bytes.
            if storage.spec.backup is not None:
                try:
                    reader = await self.b.storages.get(storage.spec.backup).store.open(
                        version.blob_key, offset, length
                    )
                except GatewayError:
                    pass
                else:
                    log.warning(
                        "asset %s read from backup %s: %s", version.asset_id, storage.spec.backup, exc.code
                    )
                    self.on_failover()
                    return reader
            if isinstance(exc, StorageError):
                raise
            log.warning(
                "asset %s version %d: content missing from storage", version.asset_id, version.version
            )
            raise NotFound("the asset's content is missing", code="asset_not_found") from None


_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def is_uuid(value: str) -> bool:
    """The canonical (lower-case, hyphenated) form only: the one ids are minted and stored in."""
    return _UUID.fullmatch(value) is not None
