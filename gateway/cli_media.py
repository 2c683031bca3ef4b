"""The media commands of the CLI: ``gateway thumbnails purge [--owner O]``, ``gateway scan``.

``gateway scan --asset ID`` / ``--all`` runs the configured scanners again (after a signature update,
or over versions written before scanning was configured) and prints one JSON line per version.

The image service this grew from had a "purge all thumbnails" button; here it is a command. Thumbnails
are derived data: purging deletes their bytes and records, and the next request (or the next upload's
presets) renders them again. The result is one JSON line on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from gateway.config import Settings


def add_parsers(sub: Any) -> None:
    thumbs = sub.add_parser("thumbnails", help="stored thumbnails").add_subparsers(
        dest="thumbnails_command", required=True
    )
    purge = thumbs.add_parser("purge", help="delete stored thumbnails (they are made again on request)")
    purge.add_argument("--owner", default=None, help="only this owner's, e.g. key:alice")
    scan = sub.add_parser("scan", help="scan versions again with the configured scanners")
    which = scan.add_mutually_exclusive_group(required=True)
    which.add_argument("--asset", action="append", default=[], help="an asset id (repeatable)")
    which.add_argument("--all", action="store_true", help="every asset (a full catalog scan)")
    scan.add_argument("--latest", action="store_true", help="only each asset's latest version")


def run(args: argparse.Namespace, settings: Settings) -> int | None:
    if args.command == "thumbnails" and args.thumbnails_command == "purge":
        purged = asyncio.run(_purge(settings, args.owner))
        print(json.dumps({"purged": purged, "owner": args.owner}))
        return 0
    if args.command == "scan":
        return asyncio.run(_scan(settings, args.asset, every=args.all, latest=args.latest))
    return None


async def _scan(settings: Settings, ids: list[str], *, every: bool, latest: bool) -> int:
    from gateway.cli import opened
    from gateway.errors import GatewayError
    from gateway.service import Services

    if not settings.scanners:
        print(json.dumps({"error": "no scanners are configured"}), file=sys.stderr)
        return 2
    worst = 0
    async with opened(settings) as backends:
        services = Services.of(backends)
        try:
            for asset_id in ids or (await backends.catalog.all_asset_ids() if every else []):
                try:
                    asset, versions = await services.assets.describe(asset_id, owner=None)
                except GatewayError as exc:
                    print(json.dumps({"asset_id": asset_id, "error": exc.message}))
                    worst = max(worst, 1)
                    continue
                for version in versions[-1:] if latest else versions:
                    verdict = await services.scanning.scan(asset, version)
                    print(
                        json.dumps(
                            {
                                "asset_id": asset.id,
                                "version": version.version,
                                "scan": verdict.state,
                                "detail": verdict.detail,
                            }
                        )
                    )
                    worst = max(worst, {"clean": 0, "flagged": 3, "error": 1}[verdict.state])
        finally:
            await services.close()
    return worst


async def _purge(settings: Settings, owner: str | None) -> int:
    from gateway.cli import opened
    from gateway.service import Services

    async with opened(settings) as backends:
        services = Services.of(backends)
        try:
            return await services.thumbnails.purge(owner)
        finally:
            await services.close()
