"""``gateway sync SRC DST``: the command around ``gateway/sync.py``.

SRC and DST are named storages (``[storages.<name>]``, with their credentials and roles) or URLs
(``s3://bucket/prefix?region=…&endpoint=…``, ``file:///path``). On a terminal, progress is a bar of
objects and one of bytes (rate, ETA) on stderr; otherwise one JSON line per object on stdout
(``--only-show-errors``: failures only), then a summary line. Exit status 1 when anything failed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from contextlib import AsyncExitStack
from typing import Any, TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from gateway.config import Settings
from gateway.ports import BlobStore
from gateway.sync import Listener, SyncOptions, sync
from gateway.topology import StorageSpec


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("sync", help="copy what SRC has and DST lacks (like aws s3 sync), streaming")
    p.add_argument("src", help="a storage name or URL (s3://bucket/prefix?…, file:///path)")
    p.add_argument("dst", help="a storage name or URL")
    p.add_argument("--prefix", default="", help="only keys under this prefix")
    p.add_argument("--size-only", action="store_true", help="equal when the sizes are equal (no reads)")
    p.add_argument("--delete", action="store_true", help="delete what DST has and SRC does not")
    p.add_argument("--dry-run", action="store_true", help="say what would be done, do nothing")
    p.add_argument("--only-show-errors", action="store_true", help="print failures and the summary only")
    p.add_argument("--concurrency", type=int, default=4, help="objects in flight (default 4)")


def run(args: argparse.Namespace, settings: Settings) -> int | None:
    if args.command != "sync":
        return None
    if not 1 <= args.concurrency <= 256:
        print("gateway: --concurrency is 1 to 256", file=sys.stderr)
        return 2
    try:
        src, dst = _spec(settings, args.src), _spec(settings, args.dst)
    except ValueError as exc:
        print(f"gateway: {exc}", file=sys.stderr)
        return 2
    options = SyncOptions(args.prefix, args.size_only, args.delete, args.dry_run, args.concurrency)
    return asyncio.run(_run(settings, src, dst, options, only_errors=args.only_show_errors))


def _spec(settings: Settings, name_or_url: str) -> StorageSpec:
    if name_or_url in settings.storages:
        return settings.storages[name_or_url]
    if name_or_url.startswith(("s3://", "file://")):
        return StorageSpec(url=name_or_url)
    raise ValueError(f"{name_or_url[:80]!r} is neither a configured storage nor an s3:// or file:// URL")


async def _run(
    settings: Settings, src: StorageSpec, dst: StorageSpec, options: SyncOptions, *, only_errors: bool
) -> int:
    from gateway.errors import GatewayError
    from gateway.storage import blob_store_for

    async with AsyncExitStack() as stack:
        stores: list[BlobStore] = []
        for spec in (src, dst):
            store = blob_store_for(spec.url, settings, spec)
            await store.start()
            stack.push_async_callback(store.close)
            stores.append(store)
        listener: _Bars | _Lines = (
            _Bars(sys.stderr) if sys.stderr.isatty() else _Lines(sys.stdout, only_errors)
        )
        try:
            with listener:
                report = await sync(stores[0], stores[1], options, listener)
        except GatewayError as exc:
            print(json.dumps({"error": exc.message}), file=sys.stderr)
            return 1
    summary = {"summary": report.as_dict() | {"dry_run": options.dry_run}}
    print(json.dumps(summary))
    return 1 if report.failed else 0


class _Lines(Listener):
    def __init__(self, out: TextIO, only_errors: bool) -> None:
        self.out = out
        self.only_errors = only_errors

    def __enter__(self) -> _Lines:
        return self

    def __exit__(self, *exc: object) -> None:
        self.out.flush()

    def done(self, action: str, key: str, size: int, error: str | None = None) -> None:
        if error is None and self.only_errors:
            return
        line: dict[str, Any] = {"action": action, "key": key, "size": size}
        if error is not None:
            line["error"] = error
        print(json.dumps(line), file=self.out, flush=True)


class _Bars(Listener):
    def __init__(self, out: TextIO) -> None:
        self.bars = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.percentage:>3.0f}%"),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=Console(file=out),
        )
        self.objects: TaskID | None = None
        self.bytes: TaskID | None = None
        self.errors: list[str] = []

    def __enter__(self) -> _Bars:
        self.bars.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bars.stop()
        for line in self.errors:
            print(line, file=sys.stderr)

    def planned(self, objects: int, size: int) -> None:
        self.objects = self.bars.add_task("objects", total=max(objects, 1))
        self.bytes = self.bars.add_task("bytes", total=max(size, 1))

    def progress(self, key: str, nbytes: int) -> None:
        if self.bytes is not None:
            self.bars.advance(self.bytes, nbytes)

    def done(self, action: str, key: str, size: int, error: str | None = None) -> None:
        if self.objects is not None and action in ("copy", "would-copy"):
            self.bars.advance(self.objects, 1)
        if error is not None:
            self.errors.append(f"failed {action} {key!r}: {error}")
