"""Garbage collection for what a crash can leave behind (``gateway gc``, or on a schedule).

A process killed mid-upload (``kill -9``, OOM, node loss) cannot abort its own multipart upload or remove
its temp file, and one killed between writing bytes and the catalog commit leaves a blob nothing refers
to. Neither is ever *visible* (visibility is the catalog commit), so this is about cost, not
correctness. Only things older than a grace period are touched, so uploads in progress on live
processes are safe.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from gateway.service.context import Backends

ASSET_PREFIX = "assets/"


@dataclass
class GcReport:
    aborted_uploads: int = 0
    blobs_checked: int = 0
    orphans_deleted: int = 0


async def collect(backends: Backends, *, grace: float, now: float | None = None) -> GcReport:
    """Only stores that declared the inventory capability can be collected (the filesystem and S3 do)."""
    report = GcReport()
    inventory, catalog = backends.inventory, backends.catalog
    if inventory is None:
        return report
    cutoff = (time.time() if now is None else now) - grace
    report.aborted_uploads = await inventory.abort_stale_uploads(cutoff)
    referenced: dict[str, set[str]] = {}
    async for blob in inventory.list_blobs(ASSET_PREFIX):
        report.blobs_checked += 1
        if blob.modified >= cutoff:
            continue  # may belong to an upload that has not committed yet
        parts = blob.key.split("/")
        if len(parts) != 3:
            continue  # not ours
        asset_id = parts[1]
        if asset_id not in referenced:
            referenced = {asset_id: {v.blob_key for v in await catalog.list_versions(asset_id)}}
        if blob.key not in referenced[asset_id]:
            await backends.store.delete(blob.key)
            report.orphans_deleted += 1
    return report
