"""How the SQLite catalog talks to its file: on the event loop when that cannot wait, on a thread when it can.

Why not one connection on a worker thread (what aiosqlite does, and what this replaced): every call then
costs two thread handoffs and a GIL round trip (~100 µs and a context switch each way), and one
connection means one call at a time, so a process served about a thousand catalog reads a second
however idle its cores were. A primary-key lookup in a WAL database costs 5–20 µs, less than the
handoff, and in WAL mode readers never wait for writers.

So each catalog operation runs first on the **fast connection**, synchronously on the event loop, with
``busy_timeout = 0``: it never waits for a lock. If SQLite answers BUSY (another process, or this one's
slow connection, holds the write lock), nothing has been applied (BUSY comes from ``BEGIN IMMEDIATE`` or
a single autocommit statement, before any change), the fast transaction is rolled back, and the
operation is tried again after a pause of a fraction of a millisecond (``FAST_RETRIES``: with several
workers, writes meet each other's locks all the time, and each holds it for ~0.1 ms). After those, it
runs on the **slow connection** in a dedicated thread, one operation at a time (an asyncio lock), with a
30 s busy timeout: the writer retry the multi-process setup needs, off the loop. Scans
whose cost grows with the data (sweeps, purges, deleting an asset with many links) go to the slow
connection directly (``op(fast=False)``).

An operation on the fast path must not suspend (it runs start to finish in one ``send``); if one ever
did, that is a bug, and it fails loudly rather than interleaving with another operation's transaction.

The fast connection never checkpoints inside a request (``wal_autocheckpoint = 0``, a checkpoint fsyncs
the database): every ``CHECKPOINT_EVERY`` fast writes a RESTART checkpoint runs on the thread instead,
which keeps the write-ahead log from growing (reads go on meanwhile; writes wait for it).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import secrets
import sqlite3
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")
Row = tuple[Any, ...]
CHECKPOINT_EVERY = 500  # fast write operations between checkpoints (about the autocheckpoint's 1000 pages)
SLOW_BUSY_TIMEOUT_MS = 30_000
# Pauses between fast attempts that met a lock before the thread takes over: another process's write
# transaction holds it for ~0.1 ms, while SQLite's own busy handler sleeps in whole milliseconds.
FAST_RETRIES = (0.0002, 0.0005, 0.001, 0.002, 0.004)
_BUSY_CODES = (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


class _Busy(Exception):
    """The fast connection met a lock: rerun the operation on the slow connection."""


_ON_SLOW: contextvars.ContextVar[bool] = contextvars.ContextVar("sqlite_on_slow", default=False)


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in _BUSY_CODES
    return "locked" in str(exc) or "busy" in str(exc)


def _connect(path: str, busy_ms: int, autocheckpoint: int) -> sqlite3.Connection:
    con = sqlite3.connect(
        path,
        isolation_level=None,
        check_same_thread=False,
        timeout=busy_ms / 1000,
        uri=path.startswith("file:"),
    )
    # Switching a new file to WAL needs a moment of exclusive access, and SQLite answers "database is
    # locked" at once (no busy handler) while another process does the same: `--workers N` start
    # together on a fresh file. Retried here, on this (worker) thread, for up to ~5 s.
    for attempt in range(50):
        try:
            con.execute("PRAGMA journal_mode=WAL")
            break
        except sqlite3.OperationalError as exc:
            if not _is_busy(exc) or attempt == 49:
                con.close()
                raise
            time.sleep(0.1)
    con.execute("PRAGMA synchronous=NORMAL")
    con.execute(f"PRAGMA busy_timeout={int(busy_ms)}")
    con.execute(f"PRAGMA wal_autocheckpoint={int(autocheckpoint)}")
    return con


class SqliteDb:
    def __init__(self, path: str) -> None:
        # ":memory:" would give each connection a database of its own; a named shared-cache memory
        # database is one database for both (it lives while either connection is open).
        self.path = (
            f"file:gateway-{secrets.token_hex(8)}?mode=memory&cache=shared" if path == ":memory:" else path
        )
        self._fast: sqlite3.Connection | None = None
        self._slow: sqlite3.Connection | None = None
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite")
        self._lock = asyncio.Lock()
        self._fast_writes = 0
        self._checkpoint: asyncio.Future[None] | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        # The slow connection first: it creates the file and switches it to WAL, waiting for a lock.
        self._slow = await loop.run_in_executor(self._thread, _connect, self.path, SLOW_BUSY_TIMEOUT_MS, 1000)
        self._fast = await loop.run_in_executor(self._thread, _connect, self.path, 0, 0)

    async def close(self) -> None:
        if self._checkpoint is not None:
            with contextlib.suppress(Exception):
                await self._checkpoint
        loop = asyncio.get_running_loop()
        for con in (self._fast, self._slow):
            if con is not None:
                await loop.run_in_executor(self._thread, con.close)
        self._fast = self._slow = None
        self._thread.shutdown(wait=False)

    # -- running operations ----------------------------------------------------------------------
    async def op(self, fn: Callable[[], Coroutine[Any, Any, T]], *, fast: bool = True) -> T:
        """Run ``fn`` (which uses the statement methods below) fast if it can, else on the thread."""
        if fast and not _ON_SLOW.get():
            for pause in FAST_RETRIES:
                done, value = self._attempt_fast(fn)
                if done:
                    return value  # type: ignore[return-value]
                running = self._checkpoint
                if running is not None and not running.done():
                    await asyncio.shield(running)  # our own checkpoint holds writers off: wait it out
                else:
                    await asyncio.sleep(pause)  # another writer holds the lock for ~0.1 ms
        async with self._lock:
            token = _ON_SLOW.set(True)
            try:
                return await fn()
            finally:
                _ON_SLOW.reset(token)

    def _attempt_fast(self, fn: Callable[[], Coroutine[Any, Any, T]]) -> tuple[bool, T | None]:
        """(True, result), or (False, None) when a lock was met and nothing was applied."""
        con = self._conn(False)
        before = con.total_changes
        coro = fn()
        try:
            coro.send(None)
        except StopIteration as done:
            if con.total_changes != before:
                self._wrote()
            return True, done.value
        except _Busy:
            if con.in_transaction:
                con.execute("ROLLBACK")  # nothing of this attempt stays
            elif con.total_changes != before:
                # A statement committed before the lock was met: running it all again could apply
                # it twice. Operations are one statement or one transaction, so this is a bug.
                raise RuntimeError("catalog operation met a lock after a fast-path commit") from None
            return False, None
        coro.close()
        raise RuntimeError("a catalog operation suspended on the event-loop connection")

    def _conn(self, slow: bool) -> sqlite3.Connection:
        con = self._slow if slow else self._fast
        if con is None:
            raise RuntimeError("SqliteCatalog used before start()")
        return con

    def _wrote(self) -> None:
        self._fast_writes += 1
        if self._fast_writes >= CHECKPOINT_EVERY and (self._checkpoint is None or self._checkpoint.done()):
            self._fast_writes = 0
            self._checkpoint = asyncio.ensure_future(self._checkpoint_wal())

    async def _checkpoint_wal(self) -> None:
        """On the thread's connection, between its operations (never inside one's transaction).

        RESTART, not PASSIVE: a passive checkpoint racing the loop's writes never finds the log fully
        copied when the next write starts, so the log is never reused and grows without end (measured:
        +13 KiB per write). RESTART holds off writers for the copy (fast writes meet the lock, retry,
        and queue behind this on the thread), then the next write starts the log from its beginning."""

        def run() -> None:
            with contextlib.suppress(sqlite3.Error):
                self._conn(True).execute("PRAGMA wal_checkpoint(RESTART)").fetchall()

        async with self._lock:
            await asyncio.get_running_loop().run_in_executor(self._thread, run)

    async def _run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        if _ON_SLOW.get():
            con = self._conn(True)
            return await asyncio.get_running_loop().run_in_executor(self._thread, work, con)
        try:
            return work(self._conn(False))
        except sqlite3.OperationalError as exc:
            if _is_busy(exc):
                raise _Busy from exc
            raise

    # -- statements (every cursor consumed: an unfinished SELECT would hold its read snapshot) --------
    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return await self._run(lambda con: con.execute(sql, params).fetchall())

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        rows = await self.fetchall(sql, params)
        return rows[0] if rows else None

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one statement; the number of rows it changed."""

        def work(con: sqlite3.Connection) -> int:
            cur = con.execute(sql, params)
            cur.fetchall()
            return cur.rowcount

        return await self._run(work)

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        await self._run(lambda con: con.executemany(sql, rows).fetchall())

    async def script(self, sql: str) -> None:
        await self._run(lambda con: con.executescript(sql))

    async def transaction(self, body: Callable[[], Awaitable[bool]]) -> bool:
        """Run ``body`` inside BEGIN IMMEDIATE; commit when it returns True, roll back otherwise."""
        await self.execute("BEGIN IMMEDIATE")
        try:
            ok = await body()
        except BaseException:
            await self._end("ROLLBACK")
            raise
        await self._end("COMMIT" if ok else "ROLLBACK")
        return ok

    async def _end(self, sql: str) -> None:
        if not _ON_SLOW.get():
            if self._conn(False).in_transaction:
                self._conn(False).execute(sql)
            return
        # On the thread, cancellation must not leave the outcome unknown: the statement runs there
        # either way, so wait for it, then let the cancellation through (the caller reads the outcome).
        con = self._conn(True)

        def end(con: sqlite3.Connection = con) -> None:
            if con.in_transaction:
                con.execute(sql)

        done = asyncio.get_running_loop().run_in_executor(self._thread, end)
        try:
            await asyncio.shield(done)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await done
            raise
