"""Resumable upload sessions in the SQLite catalog: the same items as DynamoDB (catalog/session_items.py).

It shares the catalog's connection and lock (one connection per process; see catalog/sqlite.py), so it
is created by :meth:`SqliteCatalog.upload_sessions` rather than opened on its own. The compare-and-swap
on ``rev`` is one UPDATE statement, as atomic across processes as DynamoDB's ConditionExpression.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from typing import TYPE_CHECKING

from gateway.catalog import session_items as si
from gateway.errors import CatalogError
from gateway.records import UploadSession

if TYPE_CHECKING:
    from gateway.catalog.sqlite import SqliteCatalog

_DUE = "SELECT sk FROM items WHERE pk = ? AND sk <= ? ORDER BY sk LIMIT ?"
_SWAP = (
    "UPDATE items SET data = ?, expires_at = ? WHERE pk = ? AND sk = ? AND json_extract(data, '$.rev') = ?"
)


class SqliteUploadSessions:
    def __init__(self, catalog: SqliteCatalog) -> None:
        self.c = catalog

    async def create_upload(self, session: UploadSession) -> None:
        async with self.c._lock:
            await self.c._insert_all([si.session_item(session), si.due_item(session)])

    async def get_upload(self, upload_id: str) -> UploadSession | None:
        async with self.c._lock:
            item = await self.c._get(si.upload_pk(upload_id), si.STATE_SK)
        return None if item is None else si.session_from(item)

    async def swap_upload(self, session: UploadSession) -> UploadSession | None:
        new = dataclasses.replace(session, rev=session.rev + 1)
        pk, sk, data, expires_at, *_ = self.c._encode(si.session_item(new))
        async with self.c._lock:
            changed = await self.c._write(_SWAP, (data, expires_at, pk, sk, session.rev))
        return new if changed == 1 else None

    async def delete_upload(self, session: UploadSession) -> None:
        async with self.c._lock:
            await self.c._delete_keys(
                [(si.upload_pk(session.id), si.STATE_SK), (si.DUE_PK, si.due_sk(session))]
            )

    async def due_uploads(self, now: float, limit: int) -> list[UploadSession]:
        out: list[UploadSession] = []
        async with self.c._lock:
            try:
                async with self.c.db.execute(_DUE, (si.DUE_PK, si.due_upper_bound(now), limit)) as cur:
                    rows = await cur.fetchall()
            except sqlite3.Error as exc:
                raise CatalogError(f"catalog read failed: {exc}") from exc
            for (sk,) in rows:
                upload_id = sk.split("#", 1)[1]
                item = await self.c._get(si.upload_pk(upload_id), si.STATE_SK)
                if item is None:  # the session went without its entry (a crash between the two)
                    await self.c._delete_keys([(si.DUE_PK, sk)])
                else:
                    out.append(si.session_from(item))
        return out
