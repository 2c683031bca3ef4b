"""Upload links in the SQLite catalog (items in catalog/link_items.py), sharing the catalog's connection
and lock. The claim is one UPDATE whose WHERE clause is the whole rule, as atomic across processes as
DynamoDB's ConditionExpression (the counter lives in the item's JSON, hence ``json_extract``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from gateway.catalog import link_items as li
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
_REVOKE = "UPDATE items SET revoked = 1 WHERE pk = ? AND sk = ? AND revoked = 0"


class SqliteUploadLinks:
    def __init__(self, catalog: SqliteCatalog) -> None:
        self.c = catalog

    async def create_link(self, link: UploadLink) -> None:
        async with self.c._lock:
            await self.c._insert_all([li.link_item(link), li.pointer_item(link)])

    async def get_link(self, token_hash: str) -> UploadLink | None:
        async with self.c._lock:
            item = await self.c._get(li.link_pk(token_hash), li.LINK_SK)
        return None if item is None else li.link_from(item)

    async def claim_upload(self, token_hash: str, now: float) -> UploadLink | None:
        async with self.c._lock:
            if await self.c._write(_CLAIM, (li.link_pk(token_hash), li.LINK_SK, now)) != 1:
                return None
            item = await self.c._get(li.link_pk(token_hash), li.LINK_SK)
        return None if item is None else li.link_from(item)

    async def release_upload(self, token_hash: str) -> None:
        async with self.c._lock:
            await self.c._write(_RELEASE, (li.link_pk(token_hash), li.LINK_SK))

    async def list_links(self, owner: str) -> list[UploadLink]:
        async with self.c._lock:
            pointers = await self.c._query(li.owner_links_pk(owner), "ULINK#")
            found = [await self.c._get(li.link_pk(p["token_hash"]), li.LINK_SK) for p in pointers]
        return [li.link_from(i) for i in found if i is not None]

    async def find_link_hash(self, owner: str, link_id: str) -> str | None:
        async with self.c._lock:
            pointer = await self.c._get(li.owner_links_pk(owner), li.pointer_sk(link_id))
        return None if pointer is None else str(pointer["token_hash"])

    async def revoke_link(self, token_hash: str) -> bool:
        async with self.c._lock:
            return await self.c._write(_REVOKE, (li.link_pk(token_hash), li.LINK_SK)) == 1
