"""SQLite catalog: the embedded default, holding the same items as the DynamoDB table.

One ``items`` table keyed by (pk, sk) like the DynamoDB table. Attributes that conditions and atomic
counters act on (expires_at, downloads, max_downloads, revoked) are real columns so the conditional
updates are single SQL statements, exactly as atomic as DynamoDB's; the rest of each item is JSON.
WAL mode plus a busy timeout make it safe for several gateway processes on one host; multi-item
writes use ``BEGIN IMMEDIATE`` transactions, the analogue of TransactWriteItems.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiosqlite

from gateway.catalog import items as it
from gateway.errors import CatalogError
from gateway.records import Asset, NewAsset, Token, Version

_COLUMNS = ("expires_at", "downloads", "max_downloads", "revoked")

SCHEMA = """
CREATE TABLE IF NOT EXISTS items (
    pk TEXT NOT NULL,
    sk TEXT NOT NULL,
    data TEXT NOT NULL,
    expires_at INTEGER,
    downloads INTEGER,
    max_downloads INTEGER,
    revoked INTEGER,
    PRIMARY KEY (pk, sk)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS items_expires ON items (expires_at) WHERE expires_at IS NOT NULL;
"""


class SqliteCatalog:
    def __init__(self, path: str) -> None:
        self.path = path
        self._db: aiosqlite.Connection | None = None

    @property
    def db(self) -> aiosqlite.Connection:
        if self._db is None:
            raise RuntimeError("SqliteCatalog used before start()")
        return self._db

    async def start(self) -> None:
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._db = await aiosqlite.connect(self.path, isolation_level=None, timeout=30)
        await self._db.execute("PRAGMA journal_mode=WAL")
        await self._db.execute("PRAGMA synchronous=NORMAL")
        await self._db.execute("PRAGMA busy_timeout=30000")
        await self.init()  # the embedded catalog always ensures its schema

    async def close(self) -> None:
        if self._db is not None:
            await self._db.close()
            self._db = None

    async def init(self) -> None:
        try:
            await self.db.executescript(SCHEMA)
        except sqlite3.Error as exc:
            raise CatalogError(f"cannot create catalog schema: {exc}") from exc

    async def ping(self) -> None:
        try:
            await self.db.execute("SELECT 1 FROM items LIMIT 1")
        except (sqlite3.Error, ValueError) as exc:
            raise CatalogError(f"catalog unreachable: {exc}") from exc

    # -- encoding ------------------------------------------------------------------------------------
    @staticmethod
    def _encode(item: it.Item) -> tuple[Any, ...]:
        rest = {k: v for k, v in item.items() if k not in ("PK", "SK", *_COLUMNS)}
        cols = [item.get(c) for c in _COLUMNS]
        return (item["PK"], item["SK"], json.dumps(rest, separators=(",", ":")), *cols)

    @staticmethod
    def _decode(row: sqlite3.Row | tuple[Any, ...]) -> it.Item:
        pk, sk, data, *cols = row
        item: it.Item = json.loads(data)
        item["PK"], item["SK"] = pk, sk
        for name, value in zip(_COLUMNS, cols, strict=True):
            if value is not None:
                item[name] = value
        return item

    async def _get(self, pk: str, sk: str) -> it.Item | None:
        try:
            async with self.db.execute(
                "SELECT pk, sk, data, expires_at, downloads, max_downloads, revoked "
                "FROM items WHERE pk = ? AND sk = ?",
                (pk, sk),
            ) as cur:
                row = await cur.fetchone()
        except sqlite3.Error as exc:
            raise CatalogError(f"catalog read failed: {exc}") from exc
        return None if row is None else self._decode(tuple(row))

    async def _insert_all(self, items: Sequence[it.Item]) -> None:
        """Insert every item or none (each must be new: the analogue of attribute_not_exists)."""
        try:
            await self.db.execute("BEGIN IMMEDIATE")
            try:
                await self.db.executemany(
                    "INSERT INTO items (pk, sk, data, expires_at, downloads, max_downloads, revoked) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [self._encode(i) for i in items],
                )
            except BaseException:
                await self.db.execute("ROLLBACK")
                raise
            await self.db.execute("COMMIT")
        except sqlite3.IntegrityError as exc:
            raise CatalogError(f"catalog conflict: {exc}") from exc
        except sqlite3.Error as exc:
            raise CatalogError(f"catalog write failed: {exc}") from exc

    # -- port ----------------------------------------------------------------------------------------
    async def create_assets(self, items: Sequence[NewAsset]) -> None:
        rows: list[it.Item] = []
        for new in items:
            rows += [it.asset_item(new.asset), it.owner_item(new.asset), it.version_item(new.version)]
            for token in new.tokens:
                rows += it.token_items(token)
        await self._insert_all(rows)

    async def get_asset(self, asset_id: str) -> Asset | None:
        item = await self._get(it.asset_pk(asset_id), it.META)
        return None if item is None else it.asset_from(item)

    async def get_version(self, asset_id: str, version: int) -> Version | None:
        item = await self._get(it.asset_pk(asset_id), it.version_sk(version))
        return None if item is None else it.version_from(item)

    async def put_token(self, token: Token) -> None:
        await self._insert_all(it.token_items(token))

    async def get_token(self, token_hash: str) -> Token | None:
        item = await self._get(it.token_pk(token_hash), it.TOKEN_SK)
        return None if item is None else it.token_from(item)

    async def claim_download(self, token_hash: str, now: float) -> Token | None:
        try:
            async with self.db.execute(
                "UPDATE items SET downloads = downloads + 1 "
                "WHERE pk = ? AND sk = ? AND revoked = 0 AND expires_at > ? "
                "AND (max_downloads IS NULL OR downloads < max_downloads) "
                "RETURNING pk, sk, data, expires_at, downloads, max_downloads, revoked",
                (it.token_pk(token_hash), it.TOKEN_SK, int(now)),
            ) as cur:
                row = await cur.fetchone()
        except sqlite3.Error as exc:
            raise CatalogError(f"catalog update failed: {exc}") from exc
        return None if row is None else it.token_from(self._decode(tuple(row)))
