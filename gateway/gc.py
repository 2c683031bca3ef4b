"""Garbage collection for what a crash can leave behind (``gateway gc``, or on a schedule).

A process killed mid-upload (``kill -9``, OOM, node loss) cannot abort its own multipart upload or remove
its temp file, and one killed between writing bytes and the catalog commit leaves a blob nothing refers
to. Neither is ever *visible* (visibility is the catalog commit), so this is about cost, not
correctness. Resumable uploads are the sweeper's (their sessions say what to abort); gc only takes what
outlived every possible session: multipart uploads and staging data older than the upload expiry.
Only things older than a grace period are touched, so uploads in progress on live processes are safe.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from gateway.service.context import Backends

ASSET_PREFIX = "assets/"
UPLOADS_PREFIX = "uploads/"  # resumable uploads' staging data (service/resumable.py)


def resumable_upload_of(key: str) -> str | None:
    """The upload id in a resumable upload's keys (``uploads/<id>.part|.bin``, ``assets/<a>/tus-<id>``)."""
    name = key.rsplit("/", 1)[-1]
    if key.startswith(UPLOADS_PREFIX):
        return name.split(".", 1)[0]
    return name.removeprefix("tus-") if name.startswith("tus-") else None


@dataclass
class GcReport:
    aborted_uploads: int = 0
    staging_deleted: int = 0
    blobs_checked: int = 0
    orphans_deleted: int = 0


async def collect(backends: Backends, *, grace: float, now: float | None = None) -> GcReport:
    """Only stores that declared the inventory capability can be collected (the filesystem and S3 do)."""
    report = GcReport()
    inventory, catalog = backends.inventory, backends.catalog
    if inventory is None:
        return report
    now = time.time() if now is None else now
    cutoff = now - grace
    sessions = backends.sessions

    async def in_progress(key: str) -> bool:
        """A resumable upload's multipart upload lives as long as its session does."""
        upload_id = resumable_upload_of(key)
        return bool(upload_id and sessions and await sessions.get_upload(upload_id) is not None)

    report.aborted_uploads = await inventory.abort_stale_uploads(cutoff, in_progress)
    live_resumable = now - backends.settings.resumable_expiry - grace
    async for blob in inventory.list_blobs(UPLOADS_PREFIX):
        # Staging data of an upload the catalog no longer knows (its sweep never ran): past any expiry.
        upload_id = blob.key.removeprefix(UPLOADS_PREFIX).split(".", 1)[0]
        if blob.modified < live_resumable and (
            sessions is None or await sessions.get_upload(upload_id) is None
        ):
            await backends.store.delete(blob.key)
            report.staging_deleted += 1
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
