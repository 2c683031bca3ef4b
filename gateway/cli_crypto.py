"""``gateway decrypt --key KEY IN OUT`` (offline) and ``gateway keys rotate-kek STORAGE``.

Rotation: set the storage's ``kek`` to the new key and list the old one in ``old_keks`` (both are then
read), run ``gateway keys rotate-kek STORAGE`` -- every object's data key is unwrapped and wrapped again
by the new KEK, its header rewritten and its chunks copied as they are (no re-encryption) -- then drop
``old_keks``. One JSON summary line on stdout.


For storages encrypted to a public key (``kek = "rsa:/path/public.pem"``), the gateway can write but
never read; whoever holds the private key recovers the file with this command (a local KEK file works
too). Every chunk is authenticated: an altered file stops with exit status 1 and no partial output.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("decrypt", help="decrypt an object exported from an encrypted storage")
    p.add_argument("--key", required=True, help="the RSA private key (PEM) or the local KEK file")
    p.add_argument("input", help="the encrypted object, as stored")
    p.add_argument("output", help="where the plaintext goes")


def run(args: argparse.Namespace) -> int | None:
    if args.command != "decrypt":
        return None
    from gateway.errors import GatewayError
    from gateway.storage.envelope import decrypt_file

    key = Path(args.key).read_bytes()
    pem = key if b"PRIVATE KEY" in key else None
    local = None if pem else (key if len(key) == 32 else None)
    if pem is None and local is None:
        import base64

        try:
            local = base64.b64decode(key.strip(), validate=True)
        except ValueError:
            print("gateway: --key is a PEM private key or a 32-byte KEK file", file=sys.stderr)
            return 2
    partial = Path(args.output + ".part")
    try:
        with Path(args.input).open("rb") as src, partial.open("wb") as dst:
            size = decrypt_file(src, dst, private_key_pem=pem, local_key=local)
        os.replace(partial, args.output)
    except (GatewayError, ValueError, KeyError) as exc:
        partial.unlink(missing_ok=True)
        print(f"gateway: {getattr(exc, 'message', exc)}", file=sys.stderr)
        return 1
    print(f"decrypted {size} bytes to {args.output}", file=sys.stderr)
    return 0


def run_with_settings(args: argparse.Namespace, settings: Any) -> int | None:
    if args.command != "keys" or args.keys_command != "rotate-kek":
        return None
    import asyncio

    return asyncio.run(_rotate(settings, args.storage))


async def _rotate(settings: Any, name: str) -> int:
    import json

    from gateway.cli import opened
    from gateway.errors import GatewayError
    from gateway.storage.envelope import EnvelopeInventory

    async with opened(settings) as backends:
        if name not in backends.storages.names():
            print(f"gateway: unknown storage {name!r}", file=sys.stderr)
            return 2
        store = backends.storages.get(name).store
        if not isinstance(store, EnvelopeInventory):
            print(f"gateway: storage {name!r} is not an encrypted, listable storage", file=sys.stderr)
            return 2
        counts = {"rewrapped": 0, "current": 0, "failed": 0}
        async for entry in store.list_blobs(""):
            try:
                counts["rewrapped" if await store.rewrap(entry.key) else "current"] += 1
            except GatewayError as exc:
                counts["failed"] += 1
                print(json.dumps({"key": entry.key, "error": exc.message}), file=sys.stderr)
        print(json.dumps(counts))
    return 1 if counts["failed"] else 0
