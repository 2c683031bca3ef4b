"""SQLite catalog: the embedded default, holding the same items as the DynamoDB table.

One ``items`` table keyed by (pk, sk) like the DynamoDB table. Attributes that conditions and atomic
counters act on (expires_at, downloads, max_downloads, revoked) are real columns so the conditional
updates are single SQL statements, exactly as atomic as DynamoDB's; the rest of each item is JSON.
WAL mode plus a busy timeout make it safe for several gateway processes on one host; multi-item
writes use ``BEGIN IMMEDIATE`` transactions, the analogue of TransactWriteItems.

How statements reach the file is ``catalog/sqlite_db.py``'s business: each public operation here is
one ``db.op``, run synchronously on the event loop when no lock is in the way and on a thread (one
operation at a time) when one is. Operations are written so either is correct: one statement, or one
transaction, or reads only -- several transactions in one operation (bundles of hundreds of assets, the
sweeps) run on the thread directly.

Why one module over 350 lines: like the DynamoDB adapter, it is one engine's translation of all three
catalog ports, sharing one pair of connections (sqlite_db.py), one encoding and one transaction helper.
"""

from __future__ import annotations

import functools
import json
import secrets
import sqlite3
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, cast

from gateway.catalog import items as it
from gateway.catalog import outbox_items as ob
from gateway.catalog import transactions as tx
from gateway.catalog.sqlite_db import SqliteDb
from gateway.errors import CatalogError
from gateway.ports import BlobRefs, CatalogLimits, Outbox, QuotaLedger, UploadLinks, UploadSessions
from gateway.records import Asset, DownloadRecord, DueAsset, Event, NewAsset, Retrieval, Token, Version

if TYPE_CHECKING:
    from gateway.catalog.thumbnail_catalog import ThumbnailCatalog
    from gateway.catalog.transfer_catalog import TransferCatalog

_COLUMNS = ("expires_at", "downloads", "max_downloads", "revoked")
_INSERT = (
    "INSERT INTO items (pk, sk, data, expires_at, downloads, max_downloads, revoked) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)"
)
_UPSERT = _INSERT.replace("INSERT", "INSERT OR REPLACE", 1)
_CLAIM = (
    "UPDATE items SET downloads = downloads + 1 "
    "WHERE pk = ? AND sk = ? AND revoked = 0 AND expires_at > ? "
    "AND (max_downloads IS NULL OR downloads < max_downloads)"
)
F = TypeVar("F", bound=Callable[..., Coroutine[Any, Any, Any]])


# Decoding a row (JSON, then the record) is most of a point read's cost, and the rows read most (an asset
# being downloaded, a link being used) repeat. A row is its own key: any change to it (a new version, a
# counted download, a revocation) is a different row, and the records are frozen, so this never serves
# stale data; it only skips decoding the same bytes twice.
@functools.lru_cache(maxsize=1024)  # rows are a few KiB at most: a few MiB of memory at worst
def _asset_of(row: tuple[Any, ...]) -> Asset:
    return it.asset_from(SqliteCatalog._decode(row))


@functools.lru_cache(maxsize=1024)
def _token_of(row: tuple[Any, ...]) -> Token:
    return it.token_from(SqliteCatalog._decode(row))


class _HasDb(Protocol):
    db: SqliteDb


def operation(fn: F) -> F:
    """One catalog operation: fast path first, the thread when a lock is in the way (sqlite_db.py)."""

    @functools.wraps(fn)
    async def wrapper(self: _HasDb, *args: Any, **kwargs: Any) -> Any:
        return await self.db.op(lambda: fn(self, *args, **kwargs))

    return cast(F, wrapper)


def on_thread(fn: F) -> F:
    """An operation whose work grows with the data, or that spans several transactions: never on the loop."""

    @functools.wraps(fn)
    async def wrapper(self: _HasDb, *args: Any, **kwargs: Any) -> Any:
        return await self.db.op(lambda: fn(self, *args, **kwargs), fast=False)

    return cast(F, wrapper)


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
    # DynamoDB's figure, enforced here too: a change that would fail there fails in the embedded
    # default and in the shared conformance tests, not first in production.
    limits = CatalogLimits(max_transaction_items=100)

    def __init__(self, path: str) -> None:
        self.path = path
        self.db = SqliteDb(path)

    async def start(self) -> None:
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        try:
            await self.db.start()
        except sqlite3.Error as exc:
            raise CatalogError(f"cannot open catalog: {exc}") from exc
        await self.init()  # the embedded catalog always ensures its schema

    async def close(self) -> None:
        await self.db.close()

    @on_thread
    async def init(self) -> None:
        try:
            await self.db.script(SCHEMA)
        except sqlite3.Error as exc:
            raise CatalogError(f"cannot create catalog schema: {exc}") from exc

    def upload_links(self) -> UploadLinks:
        from gateway.catalog.sqlite_links import SqliteUploadLinks

        return SqliteUploadLinks(self)

    def quota_ledger(self) -> QuotaLedger:
        from gateway.catalog.sqlite_quotas import SqliteQuotaLedger

        return SqliteQuotaLedger(self)

    def blob_refs(self) -> BlobRefs:
        from gateway.catalog.sqlite_refs import SqliteBlobRefs

        return SqliteBlobRefs(self)

    def upload_sessions(self) -> UploadSessions:
        from gateway.catalog.sqlite_sessions import SqliteUploadSessions

        return SqliteUploadSessions(self)

    def thumbnails(self) -> ThumbnailCatalog:
        from gateway.catalog.sqlite_items import SqliteItems
        from gateway.catalog.thumbnail_catalog import ThumbnailCatalog

        return ThumbnailCatalog(SqliteItems(self))

    def transfers(self) -> TransferCatalog:
        from gateway.catalog.sqlite_items import SqliteItems
        from gateway.catalog.transfer_catalog import TransferCatalog

        return TransferCatalog(SqliteItems(self))

    def outbox(self) -> Outbox:
        from gateway.catalog.outbox import OutboxCatalog
        from gateway.catalog.sqlite_items import SqliteItems

        return OutboxCatalog(SqliteItems(self))

    @operation
    async def ping(self) -> None:
        try:
            await self.db.fetchall("SELECT 1 FROM items LIMIT 1")
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
        row = await self._row(pk, sk)
        return None if row is None else self._decode(row)

    async def _row(self, pk: str, sk: str) -> tuple[Any, ...] | None:
        try:
            return await self.db.fetchone(
                "SELECT pk, sk, data, expires_at, downloads, max_downloads, revoked "
                "FROM items WHERE pk = ? AND sk = ?",
                (pk, sk),
            )
        except sqlite3.Error as exc:
            raise CatalogError(f"catalog read failed: {exc}") from exc

    async def _query(self, pk: str, sk_prefix: str = "") -> list[it.Item]:
        try:
            rows = await self.db.fetchall(
                "SELECT pk, sk, data, expires_at, downloads, max_downloads, revoked FROM items "
                "WHERE pk = ? AND sk >= ? AND sk < ? ORDER BY sk",
                (pk, sk_prefix, sk_prefix + "\uffff"),
            )
        except sqlite3.Error as exc:
            raise CatalogError(f"catalog read failed: {exc}") from exc
        return [self._decode(tuple(r)) for r in rows]

    async def _insert_all(self, items: Sequence[it.Item], cursor_day: int | None = None) -> None:
        """Insert every item or none (each must be new: the analogue of attribute_not_exists)."""
        tx.check_transaction(len(items) + (cursor_day is not None), self.limits.max_transaction_items)

        async def body() -> bool:
            await self.db.executemany(
                _INSERT,
                [self._encode(i) for i in items],
            )
            if cursor_day is not None:
                await self.db.execute(
                    "INSERT OR IGNORE INTO items (pk, sk, data) VALUES (?, ?, ?)",
                    (it.EXPIRY_CURSOR_PK, it.EXPIRY_CURSOR_SK, json.dumps({"day": cursor_day})),
                )
            return True

        await self._in_transaction(body)

    async def _write(self, sql: str, params: Sequence[Any]) -> int:
        try:
            return await self.db.execute(sql, params)
        except sqlite3.Error as exc:
            raise CatalogError(f"catalog write failed: {exc}") from exc

    # -- port ----------------------------------------------------------------------------------------
    @operation
    async def create_assets(self, items: Sequence[NewAsset], events: Sequence[Event] = ()) -> None:
        rows: list[it.Item] = ob.event_items(list(events))
        for new in items:
            rows += it.new_asset_rows(new.asset, new.version, new.tokens)
        days = [it.expiry_day(n.asset.expires_at) for n in items if n.asset.expires_at is not None]
        await self._insert_all(rows, cursor_day=min(days) if days else None)

    @operation
    async def get_asset(self, asset_id: str) -> Asset | None:
        row = await self._row(it.asset_pk(asset_id), it.META)
        return None if row is None else _asset_of(row)

    @operation
    async def get_version(self, asset_id: str, version: int) -> Version | None:
        item = await self._get(it.asset_pk(asset_id), it.version_sk(version))
        return None if item is None else it.version_from(item)

    async def _get_many(self, keys: Sequence[tuple[str, str]]) -> list[it.Item]:
        out: list[it.Item] = []
        for start in range(0, len(keys), 400):
            batch = keys[start : start + 400]
            values = ",".join("(?, ?)" for _ in batch)  # placeholders only, never data
            sql = f"SELECT pk, sk, data, expires_at, downloads, max_downloads, revoked FROM items WHERE (pk, sk) IN (VALUES {values})"  # noqa: E501, S608
            try:
                rows = await self.db.fetchall(sql, [v for key in batch for v in key])
                out += [self._decode(tuple(r)) for r in rows]
            except sqlite3.Error as exc:
                raise CatalogError(f"catalog read failed: {exc}") from exc
        return out

    @operation
    async def get_assets(self, asset_ids: Sequence[str]) -> dict[str, Asset]:
        items = await self._get_many([(it.asset_pk(a), it.META) for a in dict.fromkeys(asset_ids)])
        return {i["asset_id"]: it.asset_from(i) for i in items}

    @operation
    async def get_versions(self, keys: Sequence[tuple[str, int]]) -> dict[tuple[str, int], Version]:
        items = await self._get_many([(it.asset_pk(a), it.version_sk(v)) for a, v in dict.fromkeys(keys)])
        return {(v.asset_id, v.version): v for v in map(it.version_from, items)}

    async def put_token(self, token: Token, events: Sequence[Event] = ()) -> None:
        limit = self.limits.max_transaction_items
        extra = ob.event_items(list(events))

        async def put() -> None:
            await tx.put_token_in_parts(token, limit, self._insert_all, self._delete_keys, extra)

        # One transaction can go on the fast path; a bundle's several cannot be retried from the middle.
        await self.db.op(put, fast=len(it.token_items(token)) + len(extra) <= limit)

    async def _delete_keys(self, keys: Sequence[tx.Key]) -> None:
        """Delete in transactions of at most the limit each (the analogue of BatchWriteItem)."""
        limit = self.limits.max_transaction_items
        for start in range(0, len(keys), limit):
            batch = keys[start : start + limit]

            async def body(batch: Sequence[tx.Key] = batch) -> bool:
                await self.db.executemany("DELETE FROM items WHERE pk = ? AND sk = ?", batch)
                return True

            await self._in_transaction(body)

    @operation
    async def get_token(self, token_hash: str) -> Token | None:
        row = await self._row(it.token_pk(token_hash), it.TOKEN_SK)
        return None if row is None else _token_of(row)

    @operation
    async def claim_download(self, token_hash: str, now: float) -> Token | None:
        try:
            row = await self.db.fetchone(
                _CLAIM + " RETURNING pk, sk, data, expires_at, downloads, max_downloads, revoked",
                (it.token_pk(token_hash), it.TOKEN_SK, int(now)),
            )
        except sqlite3.Error as exc:
            raise CatalogError(f"catalog update failed: {exc}") from exc
        return None if row is None else it.token_from(self._decode(tuple(row)))

    @operation
    async def release_download(self, token_hash: str) -> None:
        await self._write(
            "UPDATE items SET downloads = downloads - 1 WHERE pk = ? AND sk = ? AND downloads > 0",
            (it.token_pk(token_hash), it.TOKEN_SK),
        )

    @operation
    async def open_retrieval(self, retrieval: Retrieval, now: float) -> bool:
        async def body() -> bool:
            if await self.db.execute(_CLAIM, (it.token_pk(retrieval.token_hash), it.TOKEN_SK, int(now))) != 1:
                return False
            await self.db.execute(
                _UPSERT,
                self._encode(it.retrieval_item(retrieval)),
            )
            return True

        return await self._in_transaction(body)

    @operation
    async def charge_retrieval(
        self, token_hash: str, client: str, amount: int, limit: int, now: float, expires_at: int
    ) -> bool:
        pk = it.token_pk(token_hash)
        changed = await self._write(
            "UPDATE items SET data = json_set(data, '$.charged', json_extract(data, '$.charged') + ?), "
            "expires_at = ? WHERE pk = ? AND sk = ? AND expires_at > ? "
            "AND json_extract(data, '$.charged') <= ? AND EXISTS (SELECT 1 FROM items AS t "
            "WHERE t.pk = ? AND t.sk = ? AND t.revoked = 0 AND t.expires_at > ?)",
            (
                amount,
                expires_at,
                pk,
                it.retrieval_sk(client),
                int(now),
                limit - amount,
                pk,
                it.TOKEN_SK,
                int(now),
            ),
        )
        return changed == 1

    @operation
    async def refund_retrieval(self, token_hash: str, client: str, amount: int) -> None:
        await self._write(
            "UPDATE items SET data = json_set(data, '$.charged', json_extract(data, '$.charged') - ?) "
            "WHERE pk = ? AND sk = ? AND json_extract(data, '$.charged') >= ?",
            (amount, it.token_pk(token_hash), it.retrieval_sk(client), amount),
        )

    @on_thread
    async def shared_secret(self, name: str) -> bytes:
        key = (it.CONFIG_PK, it.secret_sk(name))
        value = json.dumps({"kind": "secret", "value": secrets.token_hex(32)})
        await self._write("INSERT OR IGNORE INTO items (pk, sk, data) VALUES (?, ?, ?)", (*key, value))
        item = await self._get(*key)
        assert item is not None
        return bytes.fromhex(item["value"])

    @operation
    async def record_downloads(self, records: Sequence[DownloadRecord]) -> None:
        rows = [self._encode(it.download_item(r, secrets.token_hex(4))) for r in records]

        async def body() -> bool:
            await self.db.executemany(_INSERT, rows)
            return True

        await self._in_transaction(body)

    @operation
    async def list_downloads(self, token_hash: str, limit: int) -> list[DownloadRecord]:
        pk = it.token_pk(token_hash)
        try:
            rows = await self.db.fetchall(
                "SELECT pk, sk, data, expires_at, downloads, max_downloads, revoked FROM items "
                "WHERE pk = ? AND sk >= ? AND sk < ? ORDER BY sk DESC LIMIT ?",
                (pk, it.DOWNLOAD_SK_PREFIX, it.DOWNLOAD_SK_PREFIX + "\uffff", limit),
            )
        except sqlite3.Error as exc:
            raise CatalogError(f"catalog read failed: {exc}") from exc
        return [it.download_from(self._decode(tuple(r))) for r in rows]

    @operation
    async def wrong_guesses(self, token_hash: str, minute: int) -> int:
        item = await self._get(it.token_pk(token_hash), it.guesses_sk(minute))
        return 0 if item is None else int(item["guesses"])

    @operation
    async def add_wrong_guess(self, token_hash: str, minute: int, limit: int) -> bool:
        key = (it.token_pk(token_hash), it.guesses_sk(minute))
        counted = False

        async def body() -> bool:
            nonlocal counted
            await self.db.execute(
                "INSERT OR IGNORE INTO items (pk, sk, data, expires_at) VALUES (?, ?, ?, ?)",
                (*key, json.dumps({"kind": "guesses", "guesses": 0}), (minute + 2) * 60),
            )
            counted = (
                await self.db.execute(
                    "UPDATE items SET data = json_set(data, '$.guesses', "
                    "json_extract(data, '$.guesses') + 1) "
                    "WHERE pk = ? AND sk = ? AND json_extract(data, '$.guesses') < ?",
                    (*key, limit),
                )
                == 1
            )
            return True

        await self._in_transaction(body)
        return counted

    @operation
    async def revoke_token(self, token_hash: str, events: Sequence[Event] = ()) -> bool:
        async def body() -> bool:
            changed = await self.db.execute(
                "UPDATE items SET revoked = 1 WHERE pk = ? AND sk = ? AND revoked = 0",
                (it.token_pk(token_hash), it.TOKEN_SK),
            )
            if changed != 1:
                return False
            await self._insert_events(events)
            return True

        return await self._in_transaction(body)

    async def _insert_events(self, events: Sequence[Event]) -> None:
        """Inside a transaction: the events of the change it makes (catalog/outbox_items.py)."""
        if events:
            await self.db.executemany(_INSERT, [self._encode(i) for i in ob.event_items(list(events))])

    @operation
    async def list_tokens(self, asset_id: str) -> list[Token]:
        tokens = []
        for pointer in await self._query(it.asset_pk(asset_id), "TOKEN#"):
            item = await self._get(it.token_pk(pointer["token_hash"]), it.TOKEN_SK)
            if item is not None:
                tokens.append(it.token_from(item))
        return tokens

    @operation
    async def find_token_hash(self, asset_id: str, token_id: str) -> str | None:
        item = await self._get(it.asset_pk(asset_id), f"TOKEN#{token_id}")
        return None if item is None else str(item["token_hash"])

    @operation
    async def list_versions(self, asset_id: str) -> list[Version]:
        return [it.version_from(i) for i in await self._query(it.asset_pk(asset_id), "V#")]

    @on_thread
    async def delete_asset(
        self, asset_id: str, *, due: DueAsset | None = None, events: Sequence[Event] = ()
    ) -> bool:
        owned = await self._query(it.asset_pk(asset_id))
        first, final = tx.delete_plan(owned, due, self.limits.max_transaction_items - len(events))
        await self._delete_keys(first)
        tx.check_transaction(len(final) + 1 + len(events), self.limits.max_transaction_items)
        found = False

        async def body() -> bool:
            nonlocal found
            found = (
                await self.db.execute(
                    "DELETE FROM items WHERE pk = ? AND sk = ?", (it.asset_pk(asset_id), it.META)
                )
                == 1
            )
            await self.db.executemany("DELETE FROM items WHERE pk = ? AND sk = ?", final)
            if found:
                await self._insert_events(events)
            return True  # commit either way: a leftover expiry entry goes even if the asset is gone

        await self._in_transaction(body)
        return found

    async def _in_transaction(self, body: Callable[[], Awaitable[bool]]) -> bool:
        """Run ``body`` inside BEGIN IMMEDIATE; commit when it returns True, roll back otherwise."""
        try:
            return await self.db.transaction(body)
        except sqlite3.IntegrityError as exc:
            raise CatalogError(f"catalog conflict: {exc}") from exc
        except sqlite3.Error as exc:
            raise CatalogError(f"catalog write failed: {exc}") from exc

    @operation
    async def set_crc32(self, asset_id: str, version: int, crc32: int, sha256: str | None = None) -> None:
        sha = sha256 or ""

        async def body() -> bool:
            await self.db.execute(
                "UPDATE items SET data = json_set(data, '$.crc32', ?, '$.sha256', "
                "CASE WHEN ? = '' THEN json_extract(data, '$.sha256') ELSE ? END) WHERE pk = ? AND sk = ?",
                (crc32, sha, sha, it.asset_pk(asset_id), it.version_sk(version)),
            )
            await self.db.execute(  # and the asset's copy, if this is still its latest version
                "UPDATE items SET data = json_set(data, '$.latest.crc32', ?, '$.latest.sha256', "
                "CASE WHEN ? = '' THEN json_extract(data, '$.latest.sha256') ELSE ? END) "
                "WHERE pk = ? AND sk = ? AND json_extract(data, '$.latest.version') = ?",
                (crc32, sha, sha, it.asset_pk(asset_id), it.META, version),
            )
            return True

        await self._in_transaction(body)

    @operation
    async def set_scan(self, asset_id: str, version: int, state: str, detail: str) -> bool:
        async def body() -> bool:
            changed = await self.db.execute(
                "UPDATE items SET data = json_set(data, '$.scan', ?, '$.scan_detail', ?) "
                "WHERE pk = ? AND sk = ?",
                (state, detail, it.asset_pk(asset_id), it.version_sk(version)),
            )
            if changed != 1:
                return False
            await self.db.execute(  # and the asset's copy, if this is still its latest version
                "UPDATE items SET data = json_set(data, '$.latest.scan', ?, '$.latest.scan_detail', ?) "
                "WHERE pk = ? AND sk = ? AND json_extract(data, '$.latest.version') = ?",
                (state, detail, it.asset_pk(asset_id), it.META, version),
            )
            return True

        return await self._in_transaction(body)

    @on_thread
    async def all_asset_ids(self) -> list[str]:
        rows = await self.db.fetchall(
            "SELECT pk FROM items WHERE sk = ? AND pk >= 'ASSET#' AND pk < 'ASSET$'", (it.META,)
        )
        return [str(r[0]).removeprefix("ASSET#") for r in rows]

    @operation
    async def add_version(self, asset: Asset, version: Version, events: Sequence[Event] = ()) -> bool:
        async def body() -> bool:
            changed = await self.db.execute(
                "UPDATE items SET data = json_set(data, '$.latest_version', ?, '$.latest', json(?)) "
                "WHERE pk = ? AND sk = ? AND json_extract(data, '$.latest_version') = ?",
                (
                    version.version,
                    json.dumps(it.version_fields(version)),
                    it.asset_pk(asset.id),
                    it.META,
                    asset.latest_version,
                ),
            )
            if changed != 1:
                return False
            await self.db.execute(
                _INSERT,
                self._encode(it.version_item(version)),
            )
            await self._insert_events(events)
            return True

        return await self._in_transaction(body)

    @operation
    async def expire_asset(self, asset_id: str, at: int) -> bool:
        async def body() -> bool:
            changed = await self.db.execute(
                "UPDATE items SET data = json_set(data, '$.asset_expires_at', ?) WHERE pk = ? AND sk = ?",
                (at, it.asset_pk(asset_id), it.META),
            )
            if changed != 1:
                return False
            pk, sk = it.expiry_key(asset_id, at)
            entry = {"kind": "expiry", "asset_id": asset_id, "due": at}
            await self.db.execute(
                "INSERT OR REPLACE INTO items (pk, sk, data) VALUES (?, ?, ?)", (pk, sk, json.dumps(entry))
            )
            await self.db.execute(
                "INSERT OR IGNORE INTO items (pk, sk, data) VALUES (?, ?, ?)",
                (it.EXPIRY_CURSOR_PK, it.EXPIRY_CURSOR_SK, json.dumps({"day": it.expiry_day(at)})),
            )
            return True

        return await self._in_transaction(body)

    @operation
    async def list_owner_assets(
        self, owner: str, limit: int, before: str | None
    ) -> tuple[list[str], str | None]:
        try:
            rows = await self.db.fetchall(
                "SELECT sk, data FROM items WHERE pk = ? AND sk > ? AND sk < ? ORDER BY sk DESC LIMIT ?",
                (it.owner_pk(owner), it.OWNER_SK_PREFIX, before or it.OWNER_SK_PREFIX + "\uffff", limit + 1),
            )
        except sqlite3.Error as exc:
            raise CatalogError(f"catalog read failed: {exc}") from exc
        more = len(rows) > limit
        rows = rows[:limit]
        return [json.loads(r[1])["asset_id"] for r in rows], (rows[-1][0] if more and rows else None)

    @on_thread
    async def due_assets(self, now: float, limit: int) -> list[DueAsset]:
        cursor = await self._get(it.EXPIRY_CURSOR_PK, it.EXPIRY_CURSOR_SK)
        bound = it.due_upper_bound(now)

        async def query_day(day: int) -> list[DueAsset]:
            return [it.due_from(i) for i in await self._query(it.expiry_pk(day)) if i["SK"] <= bound]

        async def advance(day: int) -> None:
            await self._write(
                "UPDATE items SET data = json_set(data, '$.day', ?) "
                "WHERE pk = ? AND sk = ? AND json_extract(data, '$.day') = ?",
                (day + 1, it.EXPIRY_CURSOR_PK, it.EXPIRY_CURSOR_SK, day),
            )

        start = None if cursor is None else int(cursor["day"])
        return await it.walk_due(start, now, limit, query_day, advance)

    @on_thread
    async def purge_expired(self, now: float) -> int:
        """Delete token items and pointers whose expiry passed (SQLite has no TTL); uses the index."""
        return await self._write(
            "DELETE FROM items WHERE expires_at IS NOT NULL AND expires_at <= ?", (int(now),)
        )
