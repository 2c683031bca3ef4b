"""The item primitives (``item_store.py``) on SQLite, for the outbox and thumbnails: the same items as
DynamoDB's, each write one ``BEGIN IMMEDIATE`` transaction, the lease a single conditional UPDATE."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from gateway.catalog import transactions as tx
from gateway.catalog.item_store import Held, Item, Key
from gateway.catalog.sqlite import _UPSERT, operation

if TYPE_CHECKING:
    from gateway.catalog.sqlite import SqliteCatalog

_LEASE = "CAST(json_extract(data, '$.lease_ms') AS INTEGER)"


class SqliteItems:
    def __init__(self, catalog: SqliteCatalog) -> None:
        self.c = catalog
        self.db = catalog.db
        self.limit = catalog.limits.max_transaction_items

    @operation
    async def query(self, pk: str, prefix: str = "") -> list[Item]:
        return await self.c._query(pk, prefix)

    @operation
    async def query_upto(self, pk: str, upto: str, limit: int) -> list[Item]:
        rows = await self.db.fetchall(
            "SELECT pk, sk, data, expires_at, downloads, max_downloads, revoked FROM items "
            "WHERE pk = ? AND sk <= ? ORDER BY sk LIMIT ?",
            (pk, upto, limit),
        )
        return [self.c._decode(tuple(r)) for r in rows]

    @operation
    async def get(self, pk: str, sk: str) -> Item | None:
        return await self.c._get(pk, sk)

    @operation
    async def write(self, puts: Sequence[Item], deletes: Sequence[Key], held: Held | None = None) -> bool:
        tx.check_transaction(len(puts) + len(deletes), self.limit)

        async def body() -> bool:
            if held is not None:
                row = await self.db.fetchone(
                    f"SELECT 1 FROM items WHERE pk = ? AND sk = ? AND {_LEASE} = ?",  # noqa: S608
                    held,
                )
                if row is None:
                    return False
            await self.db.executemany(_UPSERT, [self.c._encode(i) for i in puts])
            await self.db.executemany("DELETE FROM items WHERE pk = ? AND sk = ?", deletes)
            return True

        return await self.c._in_transaction(body)

    @operation
    async def swap_lease(self, pk: str, sk: str, seen: int, new: int) -> bool:
        changed = await self.c._write(
            f"UPDATE items SET data = json_set(data, '$.lease_ms', ?) "  # noqa: S608
            f"WHERE pk = ? AND sk = ? AND {_LEASE} = ?",
            (new, pk, sk, seen),
        )
        return changed == 1
