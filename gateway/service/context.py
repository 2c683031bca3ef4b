"""Backends as the service sees them: composed once at start-up, capabilities declared, not probed.

Like tusd's store composer: which optional capabilities a backend has (presigned URLs, enumerating blobs,
purging expired items itself) and what limits it imposes (items per catalog transaction) are decided
here, once, from the adapters. Everything downstream asks ``backends.presigner`` or
``backends.limits`` instead of ``isinstance`` checks and backend constants scattered through the code.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from gateway.config import Settings
from gateway.ports import (
    BlobInventory,
    BlobStore,
    Catalog,
    CatalogLimits,
    ExpiredItemPurger,
    HasResumableWrites,
    HasUploadLinks,
    HasUploadSessions,
    Presigner,
    ResumableWrites,
    UploadLinks,
    UploadSessions,
)


@dataclass
class Backends:  # mutable only so tests can move the clock
    store: BlobStore
    catalog: Catalog
    settings: Settings
    limits: CatalogLimits
    presigner: Presigner | None = None
    inventory: BlobInventory | None = None
    purger: ExpiredItemPurger | None = None
    resumable: ResumableWrites | None = None  # tus uploads need both of these
    sessions: UploadSessions | None = None
    upload_links: UploadLinks | None = None
    clock: Callable[[], float] = field(default=time.time)
    client_secret: bytes = b""  # keys the hashes of client addresses (catalog.shared_secret)

    @classmethod
    def compose(
        cls,
        store: BlobStore,
        catalog: Catalog,
        settings: Settings,
        *,
        clock: Callable[[], float] = time.time,
        client_secret: bytes = b"",
    ) -> Backends:
        return cls(
            store=store,
            catalog=catalog,
            settings=settings,
            limits=catalog.limits,
            presigner=store if isinstance(store, Presigner) else None,
            inventory=store if isinstance(store, BlobInventory) else None,
            purger=catalog if isinstance(catalog, ExpiredItemPurger) else None,
            resumable=store.resumable_writes() if isinstance(store, HasResumableWrites) else None,
            sessions=catalog.upload_sessions() if isinstance(catalog, HasUploadSessions) else None,
            upload_links=catalog.upload_links() if isinstance(catalog, HasUploadLinks) else None,
            clock=clock,
            client_secret=client_secret,
        )
