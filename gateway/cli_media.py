"""The media commands of the CLI: ``gateway thumbnails purge [--owner O]``.

The image service this grew from had a "purge all thumbnails" button; here it is a command. Thumbnails
are derived data: purging deletes their bytes and records, and the next request (or the next upload's
presets) renders them again. The result is one JSON line on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any

from gateway.config import Settings


def add_parsers(sub: Any) -> None:
    thumbs = sub.add_parser("thumbnails", help="stored thumbnails").add_subparsers(
        dest="thumbnails_command", required=True
    )
    purge = thumbs.add_parser("purge", help="delete stored thumbnails (they are made again on request)")
    purge.add_argument("--owner", default=None, help="only this owner's, e.g. key:alice")


def run(args: argparse.Namespace, settings: Settings) -> int | None:
    if args.command == "thumbnails" and args.thumbnails_command == "purge":
        purged = asyncio.run(_purge(settings, args.owner))
        print(json.dumps({"purged": purged, "owner": args.owner}))
        return 0
    return None


async def _purge(settings: Settings, owner: str | None) -> int:
    from gateway.cli import opened
    from gateway.service import Services

    async with opened(settings) as backends:
        services = Services.of(backends)
        try:
            return await services.thumbnails.purge(owner)
        finally:
            await services.close()
