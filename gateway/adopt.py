"""``gateway adopt STORAGE``: register objects already in a storage as assets, without copying a byte.

The customer who brings a bucket full of uploads, the user bucket whose ``originals/`` directory predates
the gateway: their objects become assets of ``--owner`` that download, zip and share like any other.

- **No copy, no read**: a version records the object's key, storage and size; its CRC-32 and sha256 are
  filled the first time a zip needs them (``service/zips.py``), as for any imported data. Until then
  the asset's ``sha256`` is empty, its ETag is derived from its identity, and no ``Repr-Digest`` is sent.
- **Idempotent and resumable**: the asset id is a UUIDv5 of (storage, key), so a second run -- or a run
  after a crash -- finds what was adopted (one batch read per 25 objects) and registers only the rest.
- **Never ours twice**: keys the gateway itself writes (``assets/<uuid>/…``, ``uploads/``, ``cas/``,
  probes) are skipped, so adopting a storage the gateway also writes to cannot register a blob twice.
- Objects whose name is not a valid file name are registered under a cleaned name (``..`` and control
  characters replaced); the key itself is kept exactly.
"""

from __future__ import annotations

import unicodedata
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from gateway.errors import GatewayError
from gateway.gc import _asset_of, _staging_of
from gateway.names import guess_content_type, validate_name
from gateway.ports import BlobEntry
from gateway.records import Asset, NewAsset, Version
from gateway.service.context import Backends
from gateway.storage.check import PROBE_PREFIX

NAMESPACE = uuid.UUID("6f1b1f9e-2f9c-4f4a-9d55-1f0c0a7d2a11")  # adopted asset ids: uuid5(NAMESPACE, …)
BATCH = 25  # objects per catalog transaction (3 items each, under the 100-item limit)


@dataclass
class AdoptReport:
    seen: int = 0
    adopted: int = 0
    already: int = 0
    skipped: int = 0  # the gateway's own keys
    bytes: int = 0  # of the objects adopted by this run

    def as_dict(self) -> dict[str, int]:
        return dict(vars(self))


def adopted_id(storage: str, key: str) -> str:
    return str(uuid.uuid5(NAMESPACE, f"{storage}\n{key}"))


def display_name(key: str) -> str:
    name = key.rstrip("/").rsplit("/", 1)[-1]
    name = "".join(
        "_" if unicodedata.category(c) in ("Cc", "Cf", "Cs", "Zl", "Zp") else c for c in name
    ).replace("..", "_")
    name = name.encode("utf-8", "surrogatepass")[:255].decode("utf-8", "ignore").strip() or "object"
    try:
        return validate_name(name)
    except GatewayError:
        return "object"


def _ours(key: str) -> bool:
    return (
        _asset_of(key) is not None
        or _staging_of(key) is not None
        or key.startswith(PROBE_PREFIX)
        or "/.gateway-probe/" in key
        or key.startswith("cas/")
        or "/cas/" in key
    )


async def adopt(
    backends: Backends,
    storage_name: str,
    *,
    prefix: str = "",
    owner: str,
    progress: Callable[[AdoptReport], None] = lambda r: None,
) -> AdoptReport:
    storage = backends.storages.get(storage_name)
    if storage.inventory is None:
        raise GatewayError(f"storage {storage.name} cannot list its objects", code="not_supported")
    report = AdoptReport()
    batch: list[BlobEntry] = []

    async def flush() -> None:
        ids = [adopted_id(storage.name, b.key) for b in batch]
        known = await backends.catalog.get_assets(ids)
        news = [
            _new_asset(storage.name, b, i, owner) for b, i in zip(batch, ids, strict=True) if i not in known
        ]
        report.already += len(batch) - len(news)
        if news:
            try:
                await backends.catalog.create_assets(news)
            except GatewayError:  # another adopt raced us on one of them: one by one, skipping those
                mine = []
                for new in news:
                    if await backends.catalog.get_asset(new.asset.id) is None:
                        await backends.catalog.create_assets([new])
                        mine.append(new)
                report.already += len(news) - len(mine)
                news = mine
            report.adopted += len(news)
            report.bytes += sum(n.version.size for n in news)
            if backends.quota_ledger is not None:  # adopted bytes count, as uploads do (service/quotas.py)
                await backends.quota_ledger.charge(
                    f"owner:{owner}", sum(n.version.size for n in news), len(news)
                )
        batch.clear()
        progress(report)

    async for blob in storage.inventory.list_blobs(prefix):
        report.seen += 1
        if _ours(blob.key):
            report.skipped += 1
            continue
        batch.append(blob)
        if len(batch) >= BATCH:
            await flush()
    if batch:
        await flush()
    progress(report)
    return report


def _new_asset(storage: str, blob: BlobEntry, asset_id: str, owner: str) -> NewAsset:
    name = display_name(blob.key)
    content_type = guess_content_type(name)
    version = Version(
        asset_id=asset_id,
        version=0,
        size=blob.size,
        sha256="",  # unknown until read (a zip fills it, with the CRC)
        crc32=None,
        blob_key=blob.key,
        created=blob.modified,
        content_type=content_type,
        storage=storage,
    )
    asset = Asset(
        id=asset_id,
        name=name,
        owner=owner,
        content_type=content_type,
        created=blob.modified,
        latest_version=0,
        metadata={"adopted_from": storage},
    )
    return NewAsset(asset, version)
