"""Writing share-link download history in batches, behind the responses it describes.

Why: a history entry is one catalog write per link response, as much as the claim itself, and it buys
nothing for the client waiting on it (it is written after the bytes went out). So entries wait here for
``INTERVAL`` and go out together, ``BATCH`` per write: one SQLite transaction, or DynamoDB
BatchWriteItem calls of 25. A share-link download then costs its claim, not claim + history.

What it trades: entries show up in ``GET …/downloads`` up to ``INTERVAL`` later, and a process killed
with SIGKILL loses the entries of its last interval (never a download count: counts live in the claim).
A graceful stop flushes (``close``, from the app's cleanup context). If the catalog is down, a failed
batch is logged and dropped, and at most ``MAX_PENDING`` entries wait: history never holds memory hostage.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from gateway.errors import GatewayError
from gateway.ports import Catalog
from gateway.records import DownloadRecord

log = logging.getLogger("gateway.service")
INTERVAL = 0.05  # seconds an entry may wait for company
BATCH = 100  # entries per catalog write
MAX_PENDING = 10_000


class DownloadHistory:
    def __init__(self, catalog: Catalog, *, interval: float = INTERVAL) -> None:
        self.catalog = catalog
        self.interval = interval
        self._pending: list[DownloadRecord] = []
        self._writer: asyncio.Task[None] | None = None
        self.dropped = 0

    def add(self, record: DownloadRecord) -> None:
        if len(self._pending) >= MAX_PENDING:
            self.dropped += 1
            return
        self._pending.append(record)
        if self._writer is None or self._writer.done():
            self._writer = asyncio.get_running_loop().create_task(self._write_soon(), name="download-history")

    async def _write_soon(self, delay: float | None = None) -> None:
        await asyncio.sleep(self.interval if delay is None else delay)
        while self._pending:
            if self.dropped:
                log.warning(
                    "dropped %d link download history entries (the catalog fell behind)", self.dropped
                )
                self.dropped = 0
            batch, self._pending = self._pending[:BATCH], self._pending[BATCH:]
            try:
                await self.catalog.record_downloads(batch)
            except GatewayError as exc:
                log.warning("could not record %d link downloads: %s", len(batch), exc.message)

    async def close(self) -> None:
        """Write what is waiting (a graceful stop loses nothing)."""
        if self._writer is not None and not self._writer.done():
            with contextlib.suppress(Exception):
                await self._writer
        if self._pending:
            await self._write_soon(0)
