"""Thumbnail records, written once over the item primitives (``item_store.py``).

    PK                  SK                                  what
    ASSET#<id>          THUMB#<version 8 digits>#<spec>     a stored thumbnail: blob key, size, ETag
    THUMBS#<0..3>       <owner>#<asset id>#<version>#<spec> index for purging (all, or one owner's)

The record lives in the asset's partition, so deleting the asset removes it with everything else; the
index entry is removed by ``forget`` (the sweeper calls it with the blobs). An owner's entries sort
together, so ``gateway thumbnails purge --owner`` reads only theirs.
"""

from __future__ import annotations

import hashlib

from gateway.catalog.item_store import Item, ItemStore
from gateway.records import Thumbnail

SHARDS = 4


def _sk(version: int, key: str) -> str:
    return f"THUMB#{version:08d}#{key}"


def _index_key(t: Thumbnail) -> tuple[str, str]:
    shard = hashlib.sha256(t.asset_id.encode()).digest()[0] % SHARDS
    return f"THUMBS#{shard}", f"{t.owner}#{t.asset_id}#{t.version:08d}#{t.key}"


def _item(t: Thumbnail) -> Item:
    return {
        "PK": f"ASSET#{t.asset_id}",
        "SK": _sk(t.version, t.key),
        "kind": "thumbnail",
        "asset_id": t.asset_id,
        "version": t.version,
        "key": t.key,
        "owner": t.owner,
        "storage": t.storage,
        "blob_key": t.blob_key,
        "size": t.size,
        "content_type": t.content_type,
        "etag": t.etag,
        "created": t.created,
    }


def _from(item: Item) -> Thumbnail:
    return Thumbnail(
        asset_id=item["asset_id"],
        version=int(item["version"]),
        key=item["key"],
        owner=item["owner"],
        storage=str(item.get("storage", "")),
        blob_key=item["blob_key"],
        size=int(item["size"]),
        content_type=item["content_type"],
        etag=item["etag"],
        created=float(item["created"]),
    )


class ThumbnailCatalog:
    def __init__(self, store: ItemStore) -> None:
        self.s = store

    async def get(self, asset_id: str, version: int, key: str) -> Thumbnail | None:
        item = await self.s.get(f"ASSET#{asset_id}", _sk(version, key))
        return None if item is None else _from(item)

    async def put(self, t: Thumbnail) -> None:
        pk, sk = _index_key(t)
        pointer = {
            "PK": pk,
            "SK": sk,
            "kind": "thumbnail_index",
            **{k: v for k, v in _item(t).items() if k not in ("PK", "SK", "kind")},
        }
        await self.s.write([_item(t), pointer], [])

    async def of_asset(self, asset_id: str) -> list[Thumbnail]:
        return [_from(i) for i in await self.s.query(f"ASSET#{asset_id}", "THUMB#")]

    async def indexed(self, owner: str | None = None) -> list[Thumbnail]:
        out: list[Thumbnail] = []
        for shard in range(SHARDS):
            out += [_from(i) for i in await self.s.query(f"THUMBS#{shard}", f"{owner}#" if owner else "")]
        return out

    async def forget(self, thumbs: list[Thumbnail]) -> None:
        """Remove records and index entries (the blobs are the caller's: gone first)."""
        keys = [k for t in thumbs for k in ((f"ASSET#{t.asset_id}", _sk(t.version, t.key)), _index_key(t))]
        for start in range(0, len(keys), self.s.limit):
            await self.s.write([], keys[start : start + self.s.limit])
