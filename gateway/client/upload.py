"""Resumable uploads with tus 1.0: the same command, run again, continues where the last one stopped.

For each file the client remembers its upload URL in ``<user cache>/gateway/uploads.json`` under a
fingerprint of the server, the file's absolute path, size and modification time (a changed file is a new
upload). Starting, it asks the server (HEAD) how much arrived -- the server keeps every byte that reached
it, even from a killed client -- and sends the rest in one streamed PATCH. A dropped connection is
retried with backoff from the server's offset; Ctrl-C or kill leaves the state for the next run. The
state file is rewritten atomically (temp file + rename) so a kill never corrupts it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import mimetypes
import os
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from yarl import URL

from gateway.client.api import Api, ClientError, status_error, unreachable
from gateway.client.progress import Reporter

TUS = {"Tus-Resumable": "1.0.0"}
READ_SIZE = 1024 * 1024
RETRY_DELAYS = (0.5, 1, 2, 4, 8)


@dataclass(frozen=True)
class Uploaded:
    path: Path
    asset_id: str
    resumed_from: int = 0  # bytes the server already had when this run started


class UploadState:
    """fingerprint -> upload URL, in one JSON file (entries older than a week are dropped)."""

    MAX_AGE = 7 * 86400

    def __init__(self, path: Path) -> None:
        self.path = path

    def _read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def get(self, key: str) -> str | None:
        entry = self._read().get(key)
        return entry.get("url") if isinstance(entry, dict) and isinstance(entry.get("url"), str) else None

    def put(self, key: str, url: str | None) -> None:
        data = self._read()
        now = time.time()
        data = {k: v for k, v in data.items() if isinstance(v, dict) and now - v.get("at", 0) < self.MAX_AGE}
        if url is None:
            data.pop(key, None)
        else:
            data[key] = {"url": url, "at": now}
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = self.path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data), encoding="utf-8")
        tmp.replace(self.path)


def fingerprint(server: str, path: Path) -> tuple[str, int]:
    """(key of this upload in the state file, the file's size)."""
    st = path.stat()
    raw = f"{server}|{path.resolve()}|{st.st_size}|{st.st_mtime_ns}"
    return hashlib.sha256(raw.encode()).hexdigest(), st.st_size


def _metadata(pairs: dict[str, str]) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in pairs.items() if v)


async def _file_chunks(path: Path, offset: int, sent: Callable[[int], None]) -> AsyncIterator[bytes]:
    with path.open("rb") as f:
        f.seek(offset)
        while chunk := await asyncio.to_thread(f.read, READ_SIZE):
            yield chunk
            offset += len(chunk)
            sent(offset)


class Uploader:
    def __init__(self, api: Api, reporter: Reporter, endpoint: str = "/files/") -> None:
        self.api = api
        self.reporter = reporter
        self.endpoint = endpoint
        self.state = UploadState(api.config.uploads_file)

    async def upload(self, path: Path) -> Uploaded:
        key, size = fingerprint(self.api.server, path)
        url = self.state.get(key)
        offset = await self._offset(url) if url else None
        if url and offset is None:
            self.state.put(key, None)
            url = None
        handle = self.reporter.add(path.name, size, offset or 0)
        if url is not None and offset is not None:
            if offset > 0:
                self.reporter.note(f"{path.name}: resuming at {offset} of {size} bytes")
            if offset >= size:
                return await self._finished(path, key, url, offset)
        else:
            url, asset_id = await self._create(path, size)
            if asset_id is not None:  # an empty file is complete at creation
                self.reporter.update(handle, size)
                return Uploaded(path, asset_id, 0)
            self.state.put(key, url)
            offset = 0
        attempt, resumed_from = 0, offset
        while True:
            try:
                done = await self._patch(path, url, offset, lambda n: self.reporter.update(handle, n))
            except (TimeoutError, aiohttp.ClientConnectionError, aiohttp.ClientPayloadError) as exc:
                if attempt >= len(RETRY_DELAYS):
                    raise unreachable(self.api.server, exc) from None
                await asyncio.sleep(RETRY_DELAYS[attempt])
                attempt += 1
                with contextlib.suppress(aiohttp.ClientConnectionError, asyncio.TimeoutError):
                    now = await self._offset(url)
                    if now is None:
                        self.state.put(key, None)
                        raise ClientError(f"{path.name}: the unfinished upload expired; run again") from None
                    offset = now
                    self.reporter.note(f"{path.name}: connection lost, resuming at {offset} of {size} bytes")
                continue
            if isinstance(done, str):
                self.state.put(key, None)
                self.reporter.update(handle, size)
                return Uploaded(path, done, resumed_from)
            offset, attempt = done, 0
            if offset >= size:
                return await self._finished(path, key, url, resumed_from)

    async def _offset(self, url: str) -> int | None:
        """How much of the upload the server has; None when it no longer knows it."""
        async with self.api.session.head(url, headers=self.api.headers(TUS)) as resp:
            if resp.status in (404, 410, 403):
                return None
            if resp.status >= 300:
                raise status_error(resp.status, "", "resuming an upload")
            return int(resp.headers["Upload-Offset"])

    async def _create(self, path: Path, size: int) -> tuple[str, str | None]:
        content_type = mimetypes.guess_type(path.name)[0] or ""
        headers = TUS | {
            "Upload-Length": str(size),
            "Upload-Metadata": _metadata({"filename": path.name, "filetype": content_type}),
        }
        async with self.api.session.post(
            self.api.url(self.endpoint), headers=self.api.headers(headers)
        ) as resp:
            if resp.status != 201:
                raise status_error(resp.status, await resp.text(), f"uploading {path.name}")
            location = str(resp.url.join(URL(resp.headers["Location"])))
            return location, resp.headers.get("Asset-Id")

    async def _patch(self, path: Path, url: str, offset: int, sent: Callable[[int], None]) -> int | str:
        """Send from ``offset`` to the end; the new offset, or the asset id once complete."""
        headers = TUS | {"Upload-Offset": str(offset), "Content-Type": "application/offset+octet-stream"}
        async with self.api.session.patch(
            url, data=_file_chunks(path, offset, sent), headers=self.api.headers(headers)
        ) as resp:
            if resp.status in (409, 423, 408) or resp.status >= 500:
                raise aiohttp.ClientConnectionError(f"HTTP {resp.status}")  # retried from the offset
            if resp.status != 204:
                raise status_error(resp.status, await resp.text(), f"uploading {path.name}")
            return resp.headers.get("Asset-Id") or int(resp.headers["Upload-Offset"])

    async def _finished(self, path: Path, key: str, url: str, resumed_from: int) -> Uploaded:
        """An upload that completed earlier (say, killed right after its last byte): its asset."""
        async with self.api.session.get(url, headers=self.api.headers(TUS)) as resp:
            if resp.status != 200:
                raise status_error(resp.status, await resp.text(), f"uploading {path.name}")
            body = await resp.json()
        self.state.put(key, None)
        return Uploaded(path, str(body["asset"]["id"]), resumed_from)
