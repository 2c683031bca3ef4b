"""Four item primitives every catalog engine provides, so newer capabilities are written once.

The first capabilities (assets, tokens, uploads, links, quotas) have one module per engine. Later ones
(the outbox, thumbnails) need nothing an engine does differently beyond these primitives, so they are
written once over :class:`ItemStore` (``outbox.py``, ``thumbnail_catalog.py``), and each engine implements
the primitives once (``sqlite_items.py``, ``dynamodb_items.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

Item = dict[str, Any]
Key = tuple[str, str]
Held = tuple[str, str, int]  # (pk, sk, lease_ms) that must still hold for a write to apply


class ItemStore(Protocol):
    limit: int  # items per transaction

    async def query(self, pk: str, prefix: str = "") -> list[Item]: ...

    async def query_upto(self, pk: str, upto: str, limit: int) -> list[Item]:
        """The first ``limit`` items of a partition whose sort key is <= ``upto``, in key order."""

    async def get(self, pk: str, sk: str) -> Item | None: ...

    async def write(self, puts: Sequence[Item], deletes: Sequence[Key], held: Held | None = None) -> bool:
        """One transaction of upserts and deletes; False (nothing written) when ``held`` no longer holds."""

    async def swap_lease(self, pk: str, sk: str, seen: int, new: int) -> bool:
        """Set ``lease_ms`` to ``new`` if the item exists and its ``lease_ms`` is still ``seen``."""
