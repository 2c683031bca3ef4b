"""Quota usage and holds in the SQLite catalog (items in catalog/quota_items.py).

Each change is one ``BEGIN IMMEDIATE`` transaction that reads the counter, checks the limit and writes:
SQLite's write lock serialises it across processes, as exact as DynamoDB's conditional ``ADD``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gateway.catalog import quota_items as qi
from gateway.catalog.sqlite import _INSERT, _UPSERT, operation
from gateway.ports import Hold, Usage

if TYPE_CHECKING:
    from gateway.catalog.sqlite import SqliteCatalog

_DELETE = "DELETE FROM items WHERE pk = ? AND sk = ?"


class SqliteQuotaLedger:
    def __init__(self, catalog: SqliteCatalog) -> None:
        self.c = catalog
        self.db = catalog.db

    async def _add(
        self, scope: str, d_bytes: int, d_assets: int, max_bytes: int | None, max_assets: int | None
    ) -> bool:
        """Inside a transaction: change the counter if the result fits the limits (growth only)."""
        now = qi.usage_from(await self.c._get(qi.usage_pk(scope), qi.USAGE_SK))
        if d_bytes > 0 and max_bytes is not None and now.bytes + d_bytes > max_bytes:
            return False
        if d_assets > 0 and max_assets is not None and now.assets + d_assets > max_assets:
            return False
        if now.bytes + d_bytes == 0 and now.assets + d_assets == 0:  # nothing stored: no item left
            await self.db.execute(_DELETE, (qi.usage_pk(scope), qi.USAGE_SK))
            return True
        row = {
            "PK": qi.usage_pk(scope),
            "SK": qi.USAGE_SK,
            "kind": "quota_usage",
            "bytes": now.bytes + d_bytes,
            "assets": now.assets + d_assets,
        }
        await self.db.execute(_UPSERT, self.c._encode(row))
        return True

    async def _drop(self, hold: Hold) -> bool:
        """Delete the hold if the caller's copy is the stored one (not a stale one from before a grow)."""
        gone = await self.db.execute(
            _DELETE + " AND json_extract(data, '$.bytes') = ?",
            (qi.usage_pk(hold.scope), qi.hold_sk(hold.hold_id), hold.bytes),
        )
        await self.db.execute(_DELETE, (qi.DUE_PK, qi.due_sk(hold)))
        return gone == 1

    @operation
    async def usage(self, scope: str) -> Usage:
        return qi.usage_from(await self.c._get(qi.usage_pk(scope), qi.USAGE_SK))

    @operation
    async def hold(self, hold: Hold, max_bytes: int | None, max_assets: int | None) -> bool:
        async def body() -> bool:
            if not await self._add(hold.scope, hold.bytes, hold.assets, max_bytes, max_assets):
                return False
            await self.db.executemany(
                _INSERT, [self.c._encode(qi.hold_item(hold)), self.c._encode(qi.due_item(hold))]
            )
            return True

        return await self.c._in_transaction(body)

    @operation
    async def grow(self, hold: Hold, to_bytes: int, max_bytes: int | None) -> bool:
        async def body() -> bool:
            current = await self.c._get(qi.usage_pk(hold.scope), qi.hold_sk(hold.hold_id))
            if current is None or not await self._add(hold.scope, to_bytes - hold.bytes, 0, max_bytes, None):
                return False
            await self.db.execute(_UPSERT, self.c._encode({**current, "bytes": to_bytes}))
            return True

        return await self.c._in_transaction(body)

    @operation
    async def settle(self, hold: Hold, actual_bytes: int) -> bool:
        async def body() -> bool:
            return await self._drop(hold) and await self._add(
                hold.scope, actual_bytes - hold.bytes, 0, None, None
            )

        return await self.c._in_transaction(body)

    @operation
    async def release(self, hold: Hold) -> bool:
        async def body() -> bool:
            return await self._drop(hold) and await self._add(
                hold.scope, -hold.bytes, -hold.assets, None, None
            )

        return await self.c._in_transaction(body)

    @operation
    async def charge(self, scope: str, bytes_: int, assets: int) -> None:
        async def body() -> bool:
            return await self._add(scope, bytes_, assets, None, None)

        await self.c._in_transaction(body)

    @operation
    async def due_holds(self, now: float, limit: int) -> list[Hold]:
        rows = await self.db.fetchall(
            "SELECT pk, sk, data, expires_at, downloads, max_downloads, revoked FROM items "
            "WHERE pk = ? AND sk <= ? ORDER BY sk LIMIT ?",
            (qi.DUE_PK, qi.due_upper(now), limit),
        )
        holds = []
        for pointer in (self.c._decode(tuple(r)) for r in rows):
            item = await self.c._get(qi.usage_pk(pointer["scope"]), qi.hold_sk(pointer["hold_id"]))
            if item is not None:
                holds.append(qi.hold_from(item, pointer["scope"]))
        return holds
