"""Shared-blob references in the SQLite catalog: the same item as DynamoDB's (catalog/dynamodb_refs.py),
members kept as a JSON list; each change one ``BEGIN IMMEDIATE`` read-modify-write."""

from __future__ import annotations

from typing import TYPE_CHECKING

from gateway.catalog.dynamodb_refs import SK, ref_pk
from gateway.catalog.sqlite import _INSERT, _UPSERT, operation
from gateway.ports import BlobRef

if TYPE_CHECKING:
    from gateway.catalog.sqlite import SqliteCatalog


class SqliteBlobRefs:
    def __init__(self, catalog: SqliteCatalog) -> None:
        self.c = catalog
        self.db = catalog.db

    @operation
    async def join(self, ref_id: str, member: str) -> BlobRef | None:
        found: BlobRef | None = None

        async def body() -> bool:
            nonlocal found
            item = await self.c._get(ref_pk(ref_id), SK)
            if item is None:
                return False
            members = sorted({*item["members"], member})
            await self.db.execute(_UPSERT, self.c._encode({**item, "members": members}))
            found = BlobRef(ref_id, str(item["blob_key"]), len(members))
            return True

        await self.c._in_transaction(body)
        return found

    @operation
    async def create(self, ref_id: str, blob_key: str, member: str) -> bool:
        async def body() -> bool:
            if await self.c._get(ref_pk(ref_id), SK) is not None:
                return False
            item = {
                "PK": ref_pk(ref_id),
                "SK": SK,
                "kind": "blob_ref",
                "blob_key": blob_key,
                "members": [member],
            }
            await self.db.execute(_INSERT, self.c._encode(item))
            return True

        return await self.c._in_transaction(body)

    @operation
    async def leave(self, ref_id: str, member: str) -> str | None:
        last: str | None = None

        async def body() -> bool:
            nonlocal last
            item = await self.c._get(ref_pk(ref_id), SK)
            if item is None or member not in item["members"]:
                return False
            members = [m for m in item["members"] if m != member]
            if members:
                await self.db.execute(_UPSERT, self.c._encode({**item, "members": members}))
            else:
                await self.db.execute("DELETE FROM items WHERE pk = ? AND sk = ?", (ref_pk(ref_id), SK))
                last = str(item["blob_key"])
            return True

        await self.c._in_transaction(body)
        return last
