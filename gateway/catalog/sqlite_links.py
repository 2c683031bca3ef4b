"""Upload links in the SQLite catalog (items in catalog/link_items.py), sharing the catalog's
connections (each method is one ``db.op``, see catalog/sqlite_db.py). The claim is one UPDATE whose
WHERE clause is the whole rule, as atomic across processes as DynamoDB's ConditionExpression (the
counter lives in the item's JSON, hence ``json_extract``)."""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING

from gateway.catalog import link_items as li
from gateway.catalog.sqlite import operation
from gateway.errors import CatalogError
from gateway.records import UploadLink

if TYPE_CHECKING:
    from gateway.catalog.sqlite import SqliteCatalog

_CLAIM = (
    "UPDATE items SET data = json_set(data, '$.uploads', json_extract(data, '$.uploads') + 1) "
    "WHERE pk = ? AND sk = ? AND revoked = 0 AND expires_at > ? "
    "AND (json_extract(data, '$.max_uploads') IS NULL "
    "OR json_extract(data, '$.uploads') < json_extract(data, '$.max_uploads'))"
)
_RELEASE = (
    "UPDATE items SET data = json_set(data, '$.uploads', json_extract(data, '$.uploads') - 1) "
    "WHERE pk = ? AND sk = ? AND json_extract(data, '$.uploads') > 0"
)
_ROW = " RETURNING pk, sk, data, expires_at, downloads, max_downloads, revoked"
_REVOKE = "UPDATE items SET revoked = 1 WHERE pk = ? AND sk = ? AND revoked = 0"


class SqliteUploadLinks:
    def __init__(self, catalog: SqliteCatalog) -> None:
        self.c = catalog
        self.db = catalog.db

    @operation
    async def create_link(self, link: UploadLink) -> None:
        await self.c._insert_all([li.link_item(link), li.pointer_item(link)])

    @operation
    async def get_link(self, token_hash: str) -> UploadLink | None:
        item = await self.c._get(li.link_pk(token_hash), li.LINK_SK)
        return None if item is None else li.link_from(item)

    @operation
    async def claim_upload(self, token_hash: str, now: float) -> UploadLink | None:
        try:  # one statement: the claim and the state it produced
            row = await self.c.db.fetchone(_CLAIM + _ROW, (li.link_pk(token_hash), li.LINK_SK, now))
        except sqlite3.Error as exc:
            raise CatalogError(f"catalog update failed: {exc}") from exc
        return None if row is None else li.link_from(self.c._decode(row))

    @operation
    async def release_upload(self, token_hash: str) -> None:
        await self.c._write(_RELEASE, (li.link_pk(token_hash), li.LINK_SK))

    @operation
    async def list_links(self, owner: str) -> list[UploadLink]:
        pointers = await self.c._query(li.owner_links_pk(owner), "ULINK#")
        keys = [(li.link_pk(p["token_hash"]), li.LINK_SK) for p in pointers]
        found = {i["PK"]: i for i in await self.c._get_many(keys)}
        return [li.link_from(found[pk]) for pk, _ in keys if pk in found]

    @operation
    async def find_link_hash(self, owner: str, link_id: str) -> str | None:
        pointer = await self.c._get(li.owner_links_pk(owner), li.pointer_sk(link_id))
        return None if pointer is None else str(pointer["token_hash"])

    @operation
    async def revoke_link(self, token_hash: str) -> bool:
        return await self.c._write(_REVOKE, (li.link_pk(token_hash), li.LINK_SK)) == 1
