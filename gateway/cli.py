"""The command line: serve, init, config, gc, healthcheck, keys; storage commands in cli_storage.py; the
terminal client (upload, download, share, revoke, ls) in gateway/client/, which needs no server settings."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from gateway import cli_crypto, cli_media, cli_storage, cli_sync, cli_transfer
from gateway.catalog import catalog_from_settings
from gateway.client import commands as client_commands
from gateway.config import ConfigError, Settings, load_settings
from gateway.gc import GcReport, collect
from gateway.observability import configure_logging
from gateway.service.context import Backends
from gateway.storage.registry import open_storages
from gateway.workers import WORKER_FLAG, Supervisor


@asynccontextmanager
async def opened(settings: Settings, *, init: bool = False) -> AsyncIterator[Backends]:
    """Every storage and the catalog, started, for one-shot commands (the server: its cleanup_ctx)."""
    async with AsyncExitStack() as stack:
        if init:
            settings = settings.model_copy(update={"auto_init": True})
        storages = await open_storages(settings, stack)
        catalog = catalog_from_settings(settings)
        await catalog.start()
        stack.push_async_callback(catalog.close)
        if init:
            await catalog.init()
        secret = await catalog.shared_secret("client-id")  # as the server has it (scan-source URLs)
        yield Backends.compose(storages, catalog, settings, client_secret=secret)


async def _init(settings: Settings) -> None:
    async with opened(settings, init=True):
        pass


async def _gc(settings: Settings, grace: float) -> GcReport:
    async with opened(settings) as backends:
        return await collect(backends, grace=grace)


def _healthcheck(settings: Settings) -> int:
    import urllib.request

    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host  # noqa: S104
    try:
        with urllib.request.urlopen(f"http://{host}:{settings.port}/healthcheck", timeout=4) as resp:
            return 0 if resp.status == 200 else 1
    except OSError as exc:
        print(f"unhealthy: {exc}", file=sys.stderr)
        return 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gateway", description="Streaming asset gateway")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the HTTP server")
    serve.add_argument("--host", help="listen address (GATEWAY_HOST)")
    serve.add_argument("--port", type=int, help="listen port (GATEWAY_PORT)")
    serve.add_argument(
        "--workers", help="server processes on the port, or 'auto' (GATEWAY_WORKERS; default 1)"
    )
    serve.add_argument(WORKER_FLAG, action="store_true", help=argparse.SUPPRESS)  # started by a supervisor
    sub.add_parser("init", help="create the bucket and table (idempotent)")
    sub.add_parser("config", help="print the effective configuration (secrets redacted)")
    gc = sub.add_parser("gc", help="abort stale partial uploads and delete unreferenced blobs")
    gc.add_argument("--grace", type=float, default=86400.0, help="only touch things older than this (s)")
    sub.add_parser("healthcheck", help="exit 0 when the local server answers /healthcheck (container probes)")
    keys = sub.add_parser("keys", help="API keys").add_subparsers(dest="keys_command", required=True)
    create = keys.add_parser("create", help="print a new API key once, and the line to configure")
    create.add_argument("name", help="the principal (owner) this key authenticates as")
    rotate = keys.add_parser(
        "rotate-kek", help="re-wrap an encrypted storage's data keys with its current kek"
    )
    rotate.add_argument("storage", help="the storage's name")
    cli_storage.add_parsers(sub)
    cli_media.add_parsers(sub)
    cli_sync.add_parsers(sub)
    cli_crypto.add_parsers(sub)
    cli_transfer.add_parsers(sub)
    client_commands.add_parsers(sub)
    args = parser.parse_args(argv)
    if args.command in client_commands.COMMANDS:
        return client_commands.run(args)

    if (status := cli_crypto.run(args)) is not None:  # offline: no settings needed
        return status
    if args.command == "keys" and args.keys_command == "create":
        from gateway.auth import hash_api_key, new_api_key

        name = args.name.strip()
        if not name or ":" in name or any(c.isspace() for c in name):
            parser.error("key names are non-empty and contain no ':' or whitespace")
        key = new_api_key()
        print(f"API key for {name} (shown once; store it now): {key}")
        print("Configure the gateway with (append to any existing entries):")
        print(f"  GATEWAY_API_KEYS={name}:{hash_api_key(key)}")
        print(f"  or add the line '{name}:{hash_api_key(key)}' to the file named by GATEWAY_API_KEYS_FILE")
        return 0

    overrides = {k: v for k in ("host", "port", "workers") if (v := getattr(args, k, None)) is not None}
    try:
        settings = load_settings(**overrides)
        if args.command == "serve":
            from gateway.auth import Authenticator

            Authenticator(settings)  # key files and JWT keys load now: a mistake stops the start
    except ConfigError as exc:
        print(f"gateway: {exc}", file=sys.stderr)
        return 2
    except (OSError, ValueError) as exc:
        print(f"gateway: invalid credentials configuration: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level)

    if args.command == "init":
        asyncio.run(_init(settings))
        print("initialised storage and catalog", file=sys.stderr)
        return 0
    if args.command == "gc":
        report = asyncio.run(_gc(settings, args.grace))
        print(json.dumps(report.__dict__))
        return 0
    if args.command == "healthcheck":
        return _healthcheck(settings)
    if args.command == "config":
        print(json.dumps(settings.redacted(), indent=2))
        return 0
    if (status := cli_storage.run(args, settings)) is not None:
        return status
    if (status := cli_media.run(args, settings)) is not None:
        return status
    if (status := cli_sync.run(args, settings)) is not None:
        return status
    if (status := cli_transfer.run(args, settings)) is not None:
        return status
    if (status := cli_crypto.run_with_settings(args, settings)) is not None:
        return status

    worker = bool(getattr(args, "worker", False))
    if not worker:
        logging.getLogger("gateway").info("starting", extra={"fields": {"settings": settings.redacted()}})
    if settings.worker_count > 1 and not worker:
        return Supervisor(settings, settings.worker_count).run()

    from gateway.http.server import run_server

    asyncio.run(run_server(settings, reuse_port=worker))
    return 0
