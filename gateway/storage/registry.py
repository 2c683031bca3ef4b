"""Every configured storage, opened once, with its capabilities declared (not probed per request).

Versions, upload sessions and links record the *name* of the storage they live in; everything that
touches bytes asks ``storages.get(name)`` for the store, never a global one. A version written before
storages had names records none and lives in the default storage. An unknown name (a storage removed
from the config while data still lives there) is a 503 naming the storage, never a silent fallback to
another bucket.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass

from gateway.config import Settings
from gateway.errors import GatewayError, StorageError
from gateway.ports import (
    BlobInventory,
    BlobMover,
    BlobStore,
    HasResumableWrites,
    Presigner,
    ResumableWrites,
)
from gateway.storage import blob_store_for
from gateway.topology import DEFAULT, StorageSpec

log = logging.getLogger("gateway.storage")
PING_TIMEOUT = 4.0  # below the health probe's own limit (service/health.py)


@dataclass(frozen=True)
class Storage:
    name: str
    spec: StorageSpec
    store: BlobStore
    presigner: Presigner | None
    inventory: BlobInventory | None
    resumable: ResumableWrites | None
    mover: BlobMover | None = None

    @property
    def dedup(self) -> bool:
        """Content-addressed (service/dedup.py): configured, and the store can move blobs."""
        return self.spec.dedup and self.mover is not None

    @classmethod
    def of(cls, name: str, spec: StorageSpec, store: BlobStore) -> Storage:
        return cls(
            name=name,
            spec=spec,
            store=store,
            presigner=store if spec.presign and isinstance(store, Presigner) else None,
            inventory=store if isinstance(store, BlobInventory) else None,
            resumable=store.resumable_writes() if isinstance(store, HasResumableWrites) else None,
            mover=store if isinstance(store, BlobMover) else None,
        )


class Storages:
    def __init__(self, storages: dict[str, Storage], default: str) -> None:
        self._by_name = storages
        self.default = default

    def get(self, name: str = "") -> Storage:
        found = self._by_name.get(name or self.default)
        if found is None:
            raise StorageError(f"storage {name[:63]!r} is not configured", code="storage_unavailable")
        return found

    def __iter__(self) -> Iterator[Storage]:
        return iter(self._by_name.values())

    def names(self) -> list[str]:
        return list(self._by_name)

    async def ping_each(self) -> dict[str, str | None]:
        """Each storage's health: None when reachable, else the reason (one down never hides another,
        and one that hangs is cut off at ``PING_TIMEOUT`` without holding up the answer for the rest)."""

        async def one(s: Storage) -> str | None:
            try:
                async with asyncio.timeout(PING_TIMEOUT):
                    await s.store.ping()
            except GatewayError as exc:
                return exc.message
            except TimeoutError:
                return f"storage {s.name} did not answer within {PING_TIMEOUT:g} s"
            return None

        results = await asyncio.gather(*(one(s) for s in self))
        return dict(zip(self.names(), results, strict=True))


def specs_of(settings: Settings) -> dict[str, StorageSpec]:
    """The configured storages; with none, the one URL is the storage named ``default``."""
    return dict(settings.storages) or {DEFAULT: StorageSpec(url=settings.storage_url)}


async def open_storages(
    settings: Settings,
    stack: AsyncExitStack,
    *,
    injected: BlobStore | None = None,
    wrap: Callable[[BlobStore], BlobStore] = lambda s: s,
) -> Storages:
    """Start every storage (closed by ``stack``); ``injected`` replaces the default one (tests)."""
    out: dict[str, Storage] = {}
    for name, spec in specs_of(settings).items():
        store = injected if injected is not None and name == settings.default_storage else None
        store = store or blob_store_for(spec.url, settings, spec)
        await store.start()
        stack.push_async_callback(store.close)
        if settings.auto_init:
            try:
                await store.init()
            except GatewayError as exc:
                if name == settings.default_storage:
                    raise
                # One storage down must not keep the others from serving: /healthcheck names it.
                log.warning("storage %s could not be initialised: %s", name, exc.message)
        out[name] = Storage.of(name, spec, wrap(store))
    return Storages(out, settings.default_storage)
