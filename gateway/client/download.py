"""Downloads that resume: a share link, a share page URL, a bare token, or an asset id.

Bytes go to ``<name>.part`` beside the target, with ``<name>.part.json`` holding the URL, the ETag and
the expected sha-256 (from ``Repr-Digest``). Run again, the client asks for the rest with ``Range`` and
``If-Range: <etag>``: the server answers 206 with the remainder if the content is unchanged (a resumed
retrieval does not spend another download of a limited link), or 200 with all of it if it changed,
and the part file starts over. The whole file is hashed before it is renamed into place: a mismatch is
an error and the file is not kept. The file name comes from ``Content-Disposition`` and is reduced to a
plain name (no directories, no control characters), so a server cannot write outside the target.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

import aiohttp

from gateway.client.api import Api, ClientError, status_error, unreachable
from gateway.client.progress import Reporter, printable

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
TOKEN = re.compile(r"^[A-Za-z0-9_-]{16,128}$")
CHUNK = 1024 * 1024


@dataclass(frozen=True)
class Target:
    url: str
    credential: bool  # send the API key (asset ids); links are their own credential


def resolve(api: Api, link: str) -> Target:
    """What to GET for LINK: /s/<t> and /asset-token/<t> URLs, bare tokens, asset ids."""
    if link.startswith(("http://", "https://")):
        parts = urlsplit(link)
        path = parts.path
        match = re.fullmatch(r"/s/([^/]+)/?", path)
        if match:
            path = f"/asset-token/{match.group(1)}"
        return Target(f"{parts.scheme}://{parts.netloc}{path}", path.startswith("/asset/"))
    if UUID.match(link):
        return Target(api.url(f"/asset/{link}"), True)
    if TOKEN.match(link):
        return Target(api.url(f"/asset-token/{link}"), False)
    raise ClientError(f"not a link, token or asset id: {printable(link)!r}", 2)


def token_of(link: str) -> str | None:
    """The share token in LINK (a URL or a bare token), if it names one."""
    if link.startswith(("http://", "https://")):
        match = re.fullmatch(r"/(?:s|asset-token)/([^/]+)/?", urlsplit(link).path)
        return match.group(1) if match else None
    return link if TOKEN.match(link) and not UUID.match(link) else None


def safe_name(disposition: str | None, fallback: str) -> str:
    name = None
    if disposition:
        star = re.search(r"filename\*=UTF-8''([^;]+)", disposition, re.IGNORECASE)
        plain = re.search(r'filename="((?:[^"\\]|\\.)*)"', disposition)
        if star:
            name = unquote(star.group(1))
        elif plain:
            name = plain.group(1).replace('\\"', '"')
    name = (name or fallback).replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if c.isprintable()).strip()
    return name if name not in ("", ".", "..") else "download.bin"


def _digest(header: str | None) -> str | None:
    match = re.search(r"sha-256=:([A-Za-z0-9+/=]+):", header or "")
    return base64.b64decode(match.group(1)).hex() if match else None


@dataclass
class Download:
    path: Path
    size: int
    sha256: str
    verified: bool
    resumed_from: int


class Downloader:
    def __init__(self, api: Api, reporter: Reporter, password: str | None = None) -> None:
        self.api = api
        self.reporter = reporter
        self.password = password

    def _headers(self, target: Target) -> dict[str, str]:
        extra = {"Want-Repr-Digest": "sha-256=1"}
        if self.password is not None:
            extra["Share-Password"] = self.password
        return self.api.headers(extra, auth=target.credential)

    async def fetch(self, link: str, out: Path | None) -> Download:
        target = resolve(self.api, link)
        headers = self._headers(target)
        # Where it goes: -o FILE, -o DIR/, or the server's name in the current directory (a HEAD never
        # counts a download).
        final = out
        if final is None or final.is_dir():
            async with self.api.session.head(target.url, headers=headers) as head:
                self._check(head.status, "", head.headers.get("WWW-Authenticate"), link)
                name = safe_name(head.headers.get("Content-Disposition"), "download.bin")
            final = (final or Path.cwd()) / name
        part = final.with_name(final.name + ".part")
        meta_path = final.with_name(final.name + ".part.json")
        have, meta = 0, {}
        if part.exists() and meta_path.exists():
            try:
                meta = json.loads(meta_path.read_text(encoding="utf-8"))
                have = part.stat().st_size if meta.get("url") == target.url and meta.get("etag") else 0
            except (OSError, ValueError):
                have, meta = 0, {}
        if have:
            headers |= {"Range": f"bytes={have}-", "If-Range": str(meta["etag"])}
        try:
            async with self.api.session.get(target.url, headers=headers) as resp:
                if resp.status not in (200, 206):
                    self._check(resp.status, await resp.text(), resp.headers.get("WWW-Authenticate"), link)
                if resp.status == 200:
                    have = 0  # a full answer: the part on disk is stale or absent
                size = int(resp.headers["Content-Range"].rsplit("/", 1)[1]) if resp.status == 206 else None
                size = size if size is not None else resp.content_length or 0
                expected = _digest(resp.headers.get("Repr-Digest")) or meta.get("sha256")
                meta = {"url": target.url, "etag": resp.headers.get("ETag"), "sha256": expected}
                final.parent.mkdir(parents=True, exist_ok=True)
                meta_path.write_text(json.dumps(meta), encoding="utf-8")
                handle = self.reporter.add(final.name, size, have)
                if have:
                    self.reporter.note(f"{final.name}: resuming at {have} of {size} bytes")
                with part.open("r+b" if have else "wb") as f:
                    f.seek(have)
                    f.truncate()
                    done = have
                    async for chunk in resp.content.iter_chunked(CHUNK):
                        await asyncio.to_thread(f.write, chunk)
                        done += len(chunk)
                        self.reporter.update(handle, done)
        except (TimeoutError, aiohttp.ClientConnectionError, aiohttp.ClientPayloadError) as exc:
            raise ClientError(
                f"download interrupted ({printable(str(exc)) or type(exc).__name__}); "
                "run the same command again to resume",
                unreachable(self.api.server, exc).code,
            ) from None
        if part.stat().st_size != size:
            raise ClientError(f"download incomplete ({part.stat().st_size} of {size} bytes); run again")
        actual = await asyncio.to_thread(_sha256, part)
        if expected and actual != expected:
            part.unlink()
            meta_path.unlink(missing_ok=True)
            raise ClientError(f"{final.name}: sha-256 mismatch (expected {expected}, got {actual}); removed")
        part.replace(final)
        meta_path.unlink(missing_ok=True)
        return Download(final, size, actual, expected is not None, have)

    def _check(self, status: int, text: str, challenge: str | None, link: str) -> None:
        if status < 300:
            return
        if status == 401 and challenge and challenge.lower().startswith("basic"):
            what = (
                "wrong password" if self.password is not None else "this link needs a password (--password)"
            )
            raise ClientError(f"{printable(link)}: {what}", 3)
        raise status_error(status, text, "download")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def extract(archive: Path, into: Path) -> list[Path]:
    """A bundle's zip unpacked into ``into``: member names reduced to relative paths inside it."""
    written = []
    root = into.resolve()
    if not zipfile.is_zipfile(archive):
        raise ClientError(f"{printable(archive.name)} is not a zip: --extract is for bundle links")
    with zipfile.ZipFile(archive) as z:
        for info in z.infolist():
            if info.is_dir():
                continue
            parts = [p for p in info.filename.replace("\\", "/").split("/") if p not in ("", ".", "..")]
            if not parts:
                continue
            target = root.joinpath(*("".join(c for c in p if c.isprintable()) or "_" for p in parts))
            if not target.resolve().is_relative_to(root):
                raise ClientError(f"refusing a zip member outside the target: {printable(info.filename)!r}")
            target.parent.mkdir(parents=True, exist_ok=True)
            with z.open(info) as src, target.open("wb") as dst:
                while chunk := src.read(CHUNK):
                    dst.write(chunk)
            written.append(target)
    return written
