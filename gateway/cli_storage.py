"""The storage commands of the CLI: ``gateway storages list|check`` and ``gateway adopt``.

Kept out of cli.py so the entry point stays a dispatcher. Progress goes to stderr -- a rich progress
bar on a terminal, one JSON line per batch otherwise (logs, CI) -- and the result to stdout as JSON, so
``gateway adopt … | jq`` works either way.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Callable
from typing import Any

from gateway.config import Settings


def add_parsers(sub: Any) -> None:
    storages = sub.add_parser("storages", help="the configured storages").add_subparsers(
        dest="storages_command", required=True
    )
    storages.add_parser("list", help="name, URL (no credentials) and options of each storage")
    check = storages.add_parser("check", help="try write/read/delete/list/multipart in each storage")
    check.add_argument("names", nargs="*", help="storages to check (default: all)")
    adopt = sub.add_parser("adopt", help="register objects already in a storage as assets (no copy)")
    adopt.add_argument("storage", help="the storage's name")
    adopt.add_argument("--prefix", default="", help="only keys under this prefix (within the storage)")
    adopt.add_argument("--owner", default="public", help="principal id that will own them, e.g. key:alice")


def run(args: argparse.Namespace, settings: Settings) -> int | None:
    """The command's exit status, or None when ``args`` is not one of these commands."""
    if args.command == "storages" and args.storages_command == "list":
        out = settings.redacted()["storages"] or {"default": {"url": settings.redacted()["storage_url"]}}
        print(json.dumps(out, indent=2))
        return 0
    if args.command == "storages":
        return asyncio.run(_check(settings, args.names))
    if args.command == "adopt":
        return asyncio.run(_adopt(settings, args.storage, args.prefix, args.owner))
    return None


async def _check(settings: Settings, names: list[str]) -> int:
    from gateway.cli import opened
    from gateway.storage.check import check_storage

    async with opened(settings) as backends:
        unknown = [n for n in names if n not in backends.storages.names()]
        if unknown:
            print(f"gateway: unknown storage {unknown[0]!r}", file=sys.stderr)
            return 2
        failed = False
        for name in names or backends.storages.names():
            report = await check_storage(backends.storages.get(name))
            failed = failed or not report.ok
            print(json.dumps(report.as_dict()))
    return 1 if failed else 0


async def _adopt(settings: Settings, storage: str, prefix: str, owner: str) -> int:
    from gateway.adopt import AdoptReport, adopt
    from gateway.cli import opened
    from gateway.errors import GatewayError

    async with opened(settings) as backends:
        if storage not in backends.storages.names():
            print(f"gateway: unknown storage {storage!r}", file=sys.stderr)
            return 2
        with _progress(f"adopting {storage}") as show:
            try:
                report: AdoptReport = await adopt(
                    backends, storage, prefix=prefix, owner=owner, progress=show
                )
            except GatewayError as exc:
                print(f"gateway: {exc.message}", file=sys.stderr)
                return 1
    print(json.dumps(report.as_dict()))
    return 0


class _progress:
    """A rich progress line on a terminal (objects, bytes, rate); JSON lines on stderr otherwise."""

    def __init__(self, title: str) -> None:
        self.title = title
        self.bar: Any = None

    def __enter__(self) -> Callable[[Any], None]:
        if sys.stderr.isatty():
            from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

            self.bar = Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                TextColumn("{task.fields[counts]}"),
                TimeElapsedColumn(),
                transient=False,
            )
            self.bar.start()
            task = self.bar.add_task(self.title, counts="")

            def show(report: Any) -> None:
                r = report.as_dict()
                counts = f"{r['seen']} seen, {r['adopted']} adopted, {r['already']} already, {r['bytes']:,} B"
                self.bar.update(task, counts=counts)

            return show

        def line(report: Any) -> None:
            print(json.dumps({"progress": self.title, **report.as_dict()}), file=sys.stderr, flush=True)

        return line

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()
