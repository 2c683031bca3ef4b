"""Resumable upload sessions in the SQLite catalog: the same items as DynamoDB (catalog/session_items.py).

It shares the catalog's connections (each method is one ``db.op``; see catalog/sqlite_db.py), so it is
created by :meth:`SqliteCatalog.upload_sessions` rather than opened on its own. The compare-and-swap
on ``rev`` is one UPDATE statement, as atomic across processes as DynamoDB's ConditionExpression.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from typing import TYPE_CHECKING

from gateway.catalog import session_items as si
from gateway.catalog.sqlite import on_thread, operation
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
        self.db = catalog.db

    @operation
    async def create_upload(self, session: UploadSession) -> None:
        await self.c._insert_all([si.session_item(session), si.due_item(session)])

    @operation
    async def get_upload(self, upload_id: str) -> UploadSession | None:
        item = await self.c._get(si.upload_pk(upload_id), si.STATE_SK)
        return None if item is None else si.session_from(item)

    @operation
    async def swap_upload(self, session: UploadSession) -> UploadSession | None:
        new = dataclasses.replace(session, rev=session.rev + 1)
        pk, sk, data, expires_at, *_ = self.c._encode(si.session_item(new))
        changed = await self.c._write(_SWAP, (data, expires_at, pk, sk, session.rev))
        return new if changed == 1 else None

    @operation
    async def delete_upload(self, session: UploadSession) -> None:
        await self.c._delete_keys([(si.upload_pk(session.id), si.STATE_SK), (si.DUE_PK, si.due_sk(session))])

    @on_thread
    async def due_uploads(self, now: float, limit: int) -> list[UploadSession]:
        out: list[UploadSession] = []
        try:
            rows = await self.c.db.fetchall(_DUE, (si.DUE_PK, si.due_upper_bound(now), limit))
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
