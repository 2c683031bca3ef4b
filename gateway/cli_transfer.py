"""``gateway transfer``: a transfer job run by hand (the transfer service's queue message, as a command).

    gateway transfer --from STORAGE --key K [--key K…] --to STORAGE:TEMPLATE[@EXPIRES] [--to …]
    gateway transfer --asset ID [--asset ID…] --owner key:alice --to … [--delete-source]

The job is recorded like an API one (``GET /transfers/{id}`` shows it) and run in this process until it
is done or has failed for good; one JSON line per attempt on stdout, exit status 1 when it failed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from gateway.config import Settings


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("transfer", help="copy assets or a storage's keys to target storages (a job)")
    p.add_argument("--asset", action="append", default=[], help="an asset id (repeatable)")
    p.add_argument("--owner", default=None, help="the assets' owner (with --asset), e.g. key:alice")
    p.add_argument("--from", dest="source", default=None, help="a storage whose raw keys are copied")
    p.add_argument("--key", action="append", default=[], help="a key in --from (repeatable)")
    p.add_argument("--to", action="append", default=[], required=True, help="STORAGE:TEMPLATE[@EXPIRES]")
    p.add_argument("--delete-source", action="store_true", help="delete the sources once every copy is made")


def run(args: argparse.Namespace, settings: Settings) -> int | None:
    if args.command != "transfer":
        return None
    if (
        bool(args.asset) == bool(args.source)
        or (args.source and not args.key)
        or (args.asset and not args.owner)
    ):
        print("gateway: give --asset … --owner O, or --from STORAGE --key …", file=sys.stderr)
        return 2
    return asyncio.run(_run(settings, args))


async def _run(settings: Settings, args: argparse.Namespace) -> int:
    from gateway.cli import opened
    from gateway.errors import GatewayError
    from gateway.service import Services
    from gateway.service.transfers import Target, expiry_seconds

    async with opened(settings) as backends:
        services = Services.of(backends)
        try:
            targets = []
            for spec in args.to:
                storage, _, rest = spec.partition(":")
                path, _, expires = rest.partition("@")
                targets.append(Target(storage, path, expiry_seconds(expires or None)))
            job = await services.transfers.create(
                args.owner or "operator",
                targets,
                assets=args.asset,
                storage=args.source,
                keys=args.key,
                delete_source=args.delete_source,
            )
            while job["state"] not in ("done", "failed"):
                await services.transfers.run(job)
                print(json.dumps({k: job[k] for k in ("id", "state", "attempts")}), flush=True)
                if job["state"] not in ("done", "failed"):
                    await asyncio.sleep(min(0.5 * 2 ** job["attempts"], 30))
        except GatewayError as exc:
            print(json.dumps({"error": exc.message, "code": exc.code}), file=sys.stderr)
            return 1
        finally:
            await services.close()
    print(json.dumps({"transfer": job}))
    return 0 if job["state"] == "done" else 1
