"""``gateway upload|download|share|revoke|ls``: argument parsing, output, exit codes.

Results go to stdout (the link, one per line; or JSON with ``--json``), progress and notes to stderr,
errors as one line ``gateway: …`` with the exit codes of :mod:`gateway.client.api`.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp

from gateway.client import config as client_config
from gateway.client.api import EXIT_INTERRUPTED, EXIT_UNREACHABLE, EXIT_USAGE, Api, ClientError, unreachable
from gateway.client.download import UUID, Downloader, extract, token_of
from gateway.client.progress import Reporter, printable
from gateway.client.upload import Uploader

COMMANDS = ("upload", "download", "share", "revoke", "ls")


def add_parsers(sub: Any) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--server", help="gateway URL (GATEWAY_URL; default http://127.0.0.1:8080)")
    common.add_argument("--api-key", help="bearer credential (GATEWAY_API_KEY; prefer the variable)")
    common.add_argument("--json", action="store_true", help="print the result as JSON")
    common.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    link = argparse.ArgumentParser(add_help=False)
    link.add_argument("--expiry", help="how long the link lives: 2d, 4 hours, PT20M, …")
    link.add_argument("--max-downloads", type=int, help="downloads the link allows")
    link.add_argument(
        "--password", action="store_true", help="protect the link (asked for, or GATEWAY_SHARE_PASSWORD)"
    )

    up = sub.add_parser("upload", parents=[common, link], help="upload files (resumable) and print a link")
    up.add_argument("files", nargs="+", type=Path)
    up.add_argument("--zip-name", default="files.zip", help="name of the zip when several files are shared")
    up.add_argument("--no-link", action="store_true", help="upload only; print the asset ids")
    up.add_argument("--qr", action="store_true", help="also print the link as a QR code")

    down = sub.add_parser("download", parents=[common], help="download a link or asset (resumes)")
    down.add_argument("link", help="share link or page URL, token, or asset id")
    down.add_argument("-o", "--output", help="file, or directory (existing, or ending in /) to write to")
    down.add_argument("--password", action="store_true", help="the link's password (asked for)")
    down.add_argument("--extract", type=Path, metavar="DIR", help="unpack a bundle's zip into DIR")

    share = sub.add_parser("share", parents=[common, link], help="a new link to assets (several: a zip)")
    share.add_argument("ids", nargs="+")
    share.add_argument("--zip-name", default="files.zip")
    share.add_argument("--qr", action="store_true", help="also print the link as a QR code")

    revoke = sub.add_parser("revoke", parents=[common], help="stop a link, or every link of an asset")
    revoke.add_argument("target", help="share link, page URL or token; or an asset id (all its links)")

    ls = sub.add_parser("ls", parents=[common], help="your assets, newest first")
    ls.add_argument("--limit", type=int, default=50, help="how many (default 50)")


def run(args: argparse.Namespace) -> int:
    try:
        cfg = client_config.load(args.server, args.api_key)
    except client_config.ConfigProblem as exc:
        return _fail(str(exc), EXIT_USAGE)
    try:
        return asyncio.run(_run(args, cfg))
    except ClientError as exc:
        return _fail(exc.message, exc.code)
    except aiohttp.ClientConnectionError as exc:
        return _fail(unreachable(cfg.server, exc).message, EXIT_UNREACHABLE)
    except KeyboardInterrupt:
        return _fail("interrupted; run the same command again to resume", EXIT_INTERRUPTED)
    except OSError as exc:
        return _fail(f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), 1)


def _fail(message: str, code: int) -> int:
    print(f"gateway: {printable(message)}", file=sys.stderr)
    return code


def _output(raw: str | None) -> Path | None:
    """-o as given: a directory when it exists or ends with a slash (created then), else a file."""
    if raw is None:
        return None
    if raw.endswith(("/", os.sep)) or os.path.isdir(raw):
        Path(raw).mkdir(parents=True, exist_ok=True)
    return Path(raw)


def _password(args: argparse.Namespace, prompt: str) -> str | None:
    if not getattr(args, "password", False):
        return None
    if value := os.environ.get("GATEWAY_SHARE_PASSWORD"):
        return value
    if not sys.stdin.isatty():
        raise ClientError("--password needs a terminal to ask on, or GATEWAY_SHARE_PASSWORD", EXIT_USAGE)
    return getpass.getpass(prompt)


def _link_body(args: argparse.Namespace) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if args.expiry:
        body["expiry"] = args.expiry
    if args.max_downloads is not None:
        body["max_downloads"] = args.max_downloads
    if (password := _password(args, "Password for the link: ")) is not None:
        body["password"] = password
    return body


async def _mint(api: Api, ids: list[str], args: argparse.Namespace) -> dict[str, Any]:
    body = _link_body(args)
    if len(ids) == 1:
        answer = await api.json("POST", f"/asset/{ids[0]}/tokens", body, what="creating the link")
    else:
        bundle = {"assets": ids, "name": args.zip_name} | body
        answer = await api.json("POST", "/bundle", bundle, what="creating the link")
    return dict(answer["token"])


def _show_link(token: dict[str, Any], args: argparse.Namespace) -> None:
    print(token["page_url"])
    if args.qr:
        import segno

        segno.make(token["page_url"], error="m").terminal(out=sys.stdout, compact=True)


async def _run(args: argparse.Namespace, cfg: client_config.ClientConfig) -> int:
    async with Api(cfg) as api:
        quiet = args.quiet or (args.json and not sys.stderr.isatty())
        if args.command == "upload":
            for path in args.files:
                if not path.is_file():
                    raise ClientError(f"not a file: {printable(str(path))}", EXIT_USAGE)
            with Reporter(quiet=quiet) as reporter:
                uploader = Uploader(api, reporter)
                done = [await uploader.upload(p) for p in args.files]
            ids = [u.asset_id for u in done]
            token = None if args.no_link else await _mint(api, ids, args)
            if args.json:
                files = [
                    {"file": str(u.path), "asset_id": u.asset_id, "resumed_from": u.resumed_from}
                    for u in done
                ]
                print(json.dumps({"assets": files, "token": token}))
            elif token is not None:
                _show_link(token, args)
            else:
                print("\n".join(ids))
            return 0
        if args.command == "download":
            password = _password(args, "Password: ")
            with Reporter(quiet=quiet) as reporter:
                got = await Downloader(api, reporter, password).fetch(args.link, _output(args.output))
            members = extract(got.path, args.extract) if args.extract else []
            if args.json:
                out: dict[str, Any] = {
                    "path": str(got.path),
                    "size": got.size,
                    "sha256": got.sha256,
                    "verified": got.verified,
                    "resumed_from": got.resumed_from,
                }
                if args.extract:
                    out["extracted"] = [str(m) for m in members]
                print(json.dumps(out))
            else:
                print(got.path)
                for m in members:
                    print(m)
            return 0
        if args.command == "share":
            token = await _mint(api, args.ids, args)
            print(json.dumps({"token": token}) if args.json else token["page_url"])
            if args.qr and not args.json:
                _show_link(token, args)
            return 0
        if args.command == "revoke":
            return await _revoke(api, args)
        if args.command == "ls":
            return await _ls(api, args)
    raise ClientError(f"unknown command {args.command}", EXIT_USAGE)


async def _revoke(api: Api, args: argparse.Namespace) -> int:
    target = args.target
    if UUID.match(target):
        listed = await api.json("GET", f"/asset/{target}/tokens", what="listing the asset's links")
        ids = [t["token_id"] for t in listed.get("tokens", [])]
        for token_id in ids:
            await api.json("DELETE", f"/asset/{target}/tokens/{token_id}", what="revoking a link")
        print(json.dumps({"revoked": len(ids)}) if args.json else f"revoked {len(ids)} link(s)")
        return 0
    token = token_of(target)
    if token is None:
        raise ClientError(f"not a link, token or asset id: {printable(target)!r}", EXIT_USAGE)
    await api.json("DELETE", f"/asset-token/{token}", what="revoking the link")
    print(json.dumps({"revoked": 1}) if args.json else "revoked")
    return 0


async def _ls(api: Api, args: argparse.Namespace) -> int:
    assets: list[dict[str, Any]] = []
    cursor = None
    while len(assets) < args.limit:
        query = f"/assets?limit={min(100, args.limit - len(assets))}"
        query += f"&cursor={quote(cursor)}" if cursor else ""
        page = await api.json("GET", query, what="listing assets")
        assets += page.get("assets", [])
        cursor = page.get("next_cursor")
        if not cursor:
            break
    if args.json:
        print(json.dumps({"assets": assets}))
        return 0
    for a in assets:
        print(
            f"{a['id']}  {a.get('size', 0):>12}  {a.get('created', '')}  {printable(str(a.get('name', '')))}"
        )
    return 0
