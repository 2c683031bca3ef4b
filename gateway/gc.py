"""Garbage collection for what a crash can leave behind (``gateway gc``, or on a schedule).

A process killed mid-upload (``kill -9``, OOM, node loss) cannot abort its own multipart upload or remove
its temp file, and one killed between writing bytes and the catalog commit leaves a blob nothing refers
to. Neither is ever *visible* (visibility is the catalog commit), so this is about cost, not
correctness. Resumable uploads are the sweeper's (their sessions say what to abort); gc only takes what
outlived every possible session: multipart uploads and staging data older than the upload expiry.
Only things older than a grace period are touched, so uploads in progress on live processes are safe.

Every storage is walked (``gc = false`` in a storage's config opts out: a customer's bucket we only
adopted from). A key is ours only by its shape -- ``[<tenant prefix>]assets/<uuid>/<name>`` or
``[<prefix>]uploads/<32 hex>.part|.bin`` -- and it is deleted only when no version *of that storage*
names it. Content-addressed blobs (``cas/``) are never touched here: their reference counts decide.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

from gateway.service.assets import is_uuid
from gateway.service.context import Backends
from gateway.storage.registry import Storage

_STAGING = re.compile(r"[0-9a-f]{32}\.(?:part|bin)")


def resumable_upload_of(key: str) -> str | None:
    """The upload id in a resumable upload's keys (``…uploads/<id>.part|.bin``, ``…assets/<a>/tus-<id>``)."""
    parts = key.split("/")
    if len(parts) >= 2 and parts[-2] == "uploads":
        return parts[-1].split(".", 1)[0]
    return parts[-1].removeprefix("tus-") if parts[-1].startswith("tus-") else None


def _asset_of(key: str) -> str | None:
    parts = key.split("/")
    if len(parts) >= 3 and parts[-3] == "assets" and is_uuid(parts[-2]) and parts[-1]:
        return parts[-2]
    return None


def _staging_of(key: str) -> str | None:
    parts = key.split("/")
    if len(parts) >= 2 and parts[-2] == "uploads" and _STAGING.fullmatch(parts[-1]):
        return parts[-1].split(".", 1)[0]
    return None


@dataclass
class GcReport:
    aborted_uploads: int = 0
    staging_deleted: int = 0
    blobs_checked: int = 0
    orphans_deleted: int = 0


async def collect(backends: Backends, *, grace: float, now: float | None = None) -> GcReport:
    """Every storage that declared the inventory capability (the filesystem and S3 do) and allows gc.

    Backup storages are never collected: their objects are copies of other storages' versions, which no
    version record names (service/backups.py)."""
    report = GcReport()
    now = time.time() if now is None else now
    backups = {s.spec.backup for s in backends.storages if s.spec.backup}
    for storage in backends.storages:
        if storage.inventory is not None and storage.spec.gc and storage.name not in backups:
            await _collect_one(
                backends, storage, report, now - grace, now - grace - backends.settings.resumable_expiry
            )
    return report


async def _collect_one(
    backends: Backends, storage: Storage, report: GcReport, cutoff: float, live_resumable: float
) -> None:
    inventory, catalog, sessions = storage.inventory, backends.catalog, backends.sessions
    assert inventory is not None
    default = backends.storages.default

    async def in_progress(key: str) -> bool:
        """A resumable upload's multipart upload lives as long as its session does."""
        upload_id = resumable_upload_of(key)
        return bool(upload_id and sessions and await sessions.get_upload(upload_id) is not None)

    report.aborted_uploads += await inventory.abort_stale_uploads(cutoff, in_progress)
    referenced: dict[str, set[str]] = {}
    async for blob in inventory.list_blobs(""):
        upload_id = _staging_of(blob.key)
        if upload_id is not None:
            # Staging data of an upload the catalog no longer knows (its sweep never ran): past any expiry.
            if blob.modified < live_resumable and (
                sessions is None or await sessions.get_upload(upload_id) is None
            ):
                await storage.store.delete(blob.key)
                report.staging_deleted += 1
            continue
        asset_id = _asset_of(blob.key)
        if asset_id is None:
            continue  # not ours (adopted objects, content-addressed blobs, other tenants' files)
        report.blobs_checked += 1
        if blob.modified >= cutoff:
            continue  # may belong to an upload that has not committed yet
        if asset_id not in referenced:
            referenced = {
                asset_id: {
                    v.blob_key
                    for v in await catalog.list_versions(asset_id)
                    if (v.storage or default) == storage.name
                }
            }
        if blob.key not in referenced[asset_id]:
            await storage.store.delete(blob.key)
            report.orphans_deleted += 1
