"""Continuous backup: every committed version is copied to its storage's ``backup`` storage.

A storage names its backup (``[storages.main] backup = "main-copy"``); each version written there is
copied, under the same key, to the backup storage, asynchronously and durably: the copy is the delivery
of the version's ``asset.created`` / ``asset.version_created`` event to an internal subscription
(``internal:backup``), so it is written in the commit's transaction, claimed with a lease by whichever
gateway process is alive, retried with backoff while the backup storage fails, and never lost across a
crash (the same guarantees as webhooks: ``service/dispatch.py``). Copies stream (multipart on S3).

Deleting an asset deletes its copies too, unless the backup storage says ``retain = true`` (a
snapshot that must outlive mistakes). Reads fail over: when the primary cannot serve a version
(``AssetReader.open``), the backup's copy is served instead -- same key, same bytes, same headers --
and ``gateway_backup_reads_total`` counts it.
"""

from __future__ import annotations

import logging

from gateway.errors import GatewayError, NotFound
from gateway.records import Event, Subscription, Version
from gateway.service.assets import AssetReader
from gateway.service.context import Backends
from gateway.sinks import Outcome
from gateway.storage.registry import Storage

log = logging.getLogger("gateway.backups")
SUBSCRIPTION = Subscription(
    id="int_backup",
    owner="",
    url="internal:backup",
    secret="",
    types=("asset.created", "asset.version_created"),
    created=0.0,
    description="backups (internal)",
)


class Backups:
    def __init__(self, backends: Backends, assets: AssetReader) -> None:
        self.b = backends
        self.assets = assets
        self.enabled = any(s.spec.backup for s in backends.storages)

    def target(self, storage: str) -> Storage | None:
        spec = self.b.storages.get(storage).spec
        return None if spec.backup is None else self.b.storages.get(spec.backup)

    async def handle(self, event: Event) -> Outcome:
        """The internal subscription's sink: copy one version; a failure is retried by the outbox."""
        try:
            _, version = await self.assets.find(
                str(event.data["asset_id"]), int(event.data["version"]), owner=None
            )
        except NotFound:
            return Outcome(True)  # deleted meanwhile: nothing to keep
        except (GatewayError, KeyError, ValueError) as exc:
            return Outcome(False, error=f"backup: {type(exc).__name__}")
        target = self.target(version.storage)
        if target is None:
            return Outcome(True)
        try:
            await self.copy(version, target)
        except NotFound:
            return Outcome(True)  # the primary no longer has it (deleted after the event)
        except (GatewayError, OSError) as exc:
            return Outcome(
                False, error=f"backup to {target.name}: {getattr(exc, 'message', type(exc).__name__)}"[:200]
            )
        return Outcome(True)

    async def copy(self, version: Version, target: Storage) -> None:
        source = await self.b.storages.get(version.storage).store.open(version.blob_key)
        try:
            written = await target.store.write(version.blob_key, source.__aiter__(), size_hint=version.size)
        finally:
            await source.aclose()
        if written.size != version.size:
            await target.store.delete(version.blob_key)
            raise GatewayError(f"backup copy has {written.size} of {version.size} bytes", code="backup_short")

    async def forget_asset(self, asset_id: str) -> None:
        """The asset is being deleted: its copies go too, unless the backup storage retains them."""
        for version in await self.b.catalog.list_versions(asset_id):
            target = self.target(version.storage)
            if target is not None and not target.spec.retain:
                await target.store.delete(version.blob_key)
