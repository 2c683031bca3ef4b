"""Backends as the service sees them: composed once at start-up, capabilities declared, not probed.

Like tusd's store composer: which optional capabilities a backend has (presigned URLs, enumerating blobs,
purging expired items itself) and what limits it imposes (items per catalog transaction) are decided
here, once, from the adapters. Everything downstream asks ``backends.storages.get(name).presigner`` or
``backends.limits`` instead of ``isinstance`` checks and backend constants scattered through the code.
Storage capabilities are per storage (``storage/registry.py``): one deployment may mix S3 and files.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from gateway.config import Settings
from gateway.ports import (
    BlobRefs,
    BlobStore,
    Catalog,
    CatalogLimits,
    ExpiredItemPurger,
    HasBlobRefs,
    HasOutbox,
    HasQuotaLedger,
    HasThumbnails,
    HasTransfers,
    HasUploadLinks,
    HasUploadSessions,
    Outbox,
    QuotaLedger,
    ThumbnailRecords,
    TransferRecords,
    UploadLinks,
    UploadSessions,
)
from gateway.storage.registry import Storages


@dataclass
class Backends:  # mutable only so tests can move the clock
    storages: Storages
    catalog: Catalog
    settings: Settings
    limits: CatalogLimits
    purger: ExpiredItemPurger | None = None
    sessions: UploadSessions | None = None  # tus uploads need this and a storage's resumable writes
    upload_links: UploadLinks | None = None
    quota_ledger: QuotaLedger | None = None
    blob_refs: BlobRefs | None = None  # content-addressed storages (service/dedup.py)
    outbox: Outbox | None = None  # events and their delivery (service/events.py, service/dispatch.py)
    thumbs: ThumbnailRecords | None = None  # stored thumbnails (service/thumbnails.py)
    jobs: TransferRecords | None = None  # transfer jobs (service/transfers.py)
    clock: Callable[[], float] = field(default=time.time)
    client_secret: bytes = b""  # keys the hashes of client addresses (catalog.shared_secret)

    @property
    def store(self) -> BlobStore:
        """The default storage's store (where versions that name no storage live)."""
        return self.storages.get().store

    @classmethod
    def compose(
        cls,
        storages: Storages,
        catalog: Catalog,
        settings: Settings,
        *,
        clock: Callable[[], float] = time.time,
        client_secret: bytes = b"",
    ) -> Backends:
        return cls(
            storages=storages,
            catalog=catalog,
            settings=settings,
            limits=catalog.limits,
            purger=catalog if isinstance(catalog, ExpiredItemPurger) else None,
            sessions=catalog.upload_sessions() if isinstance(catalog, HasUploadSessions) else None,
            upload_links=catalog.upload_links() if isinstance(catalog, HasUploadLinks) else None,
            quota_ledger=catalog.quota_ledger() if isinstance(catalog, HasQuotaLedger) else None,
            blob_refs=catalog.blob_refs() if isinstance(catalog, HasBlobRefs) else None,
            outbox=catalog.outbox() if isinstance(catalog, HasOutbox) else None,
            thumbs=catalog.thumbnails() if isinstance(catalog, HasThumbnails) else None,
            jobs=catalog.transfers() if isinstance(catalog, HasTransfers) else None,
            clock=clock,
            client_secret=client_secret,
        )
