"""Thumbnails: named presets made after each image upload, other sizes on demand, all stored once.

A thumbnail is asked for by preset (``?preset=small``) or by size (``?w=&h=&fit=&format=``); sizes outside
``thumbnail_max_dimension`` (or any size but the presets when ``thumbnail_on_demand`` is off) are a 400,
so a client cannot make the gateway render and store an unbounded number of variants. The first request
for a (version, spec) renders it, stores the bytes beside the original (or in the profile's
``thumbnails`` storage: ``Placer.thumbnails_of``) and records it in the catalog; later requests serve the
stored bytes with their ETag. Concurrent requests for the same thumbnail in one process wait for one
render (single flight).

Rendering is ``gateway/imaging.py``'s, in a worker thread, at most ``thumbnail_concurrency`` at once; the
source is read from storage into a spooled temporary file (memory up to ``SPOOL``, then disk), never
more than ``thumbnail_max_source_bytes``. Thumbnails go with their asset (``forget_asset``, called by
retention before the asset's items) and can be purged in bulk (``gateway thumbnails purge``).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import tempfile
from collections.abc import AsyncIterator
from typing import BinaryIO, cast

from gateway import imaging
from gateway.errors import BadRequest, GatewayError, NotFound, Unprocessable
from gateway.imaging import ImageRefused, ThumbSpec
from gateway.names import likely_type
from gateway.ports import BlobReader, ThumbnailRecords
from gateway.records import Asset, Placement, Thumbnail, Version
from gateway.service.assets import AssetReader
from gateway.service.context import Backends
from gateway.service.events import Events, asset_data
from gateway.service.placement import Placer

log = logging.getLogger("gateway.thumbnails")
SPOOL = 8 * 1024 * 1024
_SIZE = re.compile(r"([1-9][0-9]{0,4})x([1-9][0-9]{0,4})")
FORMAT_ALIASES = {"webp": "webp", "jpeg": "jpeg", "jpg": "jpeg", "png": "png"}


class Thumbnails:
    def __init__(self, backends: Backends, assets: AssetReader, placer: Placer, events: Events) -> None:
        self.b = backends
        self.assets = assets
        self.placer = placer
        self.events = events
        self.s = backends.settings
        self._slots = asyncio.Semaphore(self.s.thumbnail_concurrency)
        self._flights: dict[tuple[str, int, str], asyncio.Future[Thumbnail]] = {}
        self._background: set[asyncio.Task[None]] = set()
        self.presets = {name: self._preset(name, size) for name, size in self.s.thumbnail_presets.items()}

    @property
    def records(self) -> ThumbnailRecords:
        if self.b.thumbs is None:
            raise NotFound("thumbnails are not available with this catalog", code="thumbnails_unavailable")
        return self.b.thumbs

    @staticmethod
    def _preset(name: str, size: str) -> ThumbSpec:
        m = _SIZE.fullmatch(size.strip())
        if m is None:
            raise ValueError(f"thumbnail preset {name!r}: {size!r} is not WxH")
        return ThumbSpec(int(m.group(1)), int(m.group(2)))

    # -- what may be asked ---------------------------------------------------------------------------
    def spec(
        self,
        *,
        preset: str | None = None,
        w: str | None = None,
        h: str | None = None,
        fit: str | None = None,
        fmt: str | None = None,
    ) -> ThumbSpec:
        fit = fit or "cover"
        if fit not in ("cover", "contain"):
            raise BadRequest("fit is cover or contain", code="invalid_thumbnail")
        out_format = FORMAT_ALIASES.get((fmt or "webp").lower())
        if out_format is None:
            raise BadRequest("format is webp, jpeg or png", code="invalid_thumbnail")
        if preset is not None:
            found = self.presets.get(preset)
            if found is None:
                raise BadRequest(f"unknown thumbnail preset {preset[:40]!r}", code="invalid_thumbnail")
            if w is not None or h is not None:
                raise BadRequest("ask for a preset or a size, not both", code="invalid_thumbnail")
            return ThumbSpec(found.width, found.height, fit, out_format)  # type: ignore[arg-type]
        if w is None and h is None:
            raise BadRequest("ask for ?preset= or ?w=&h=", code="invalid_thumbnail")
        width, height = self._dimension(w or h), self._dimension(h or w)
        spec = ThumbSpec(width, height, fit, out_format)  # type: ignore[arg-type]
        if not self.s.thumbnail_on_demand and (width, height) not in {
            (p.width, p.height) for p in self.presets.values()
        }:
            raise BadRequest("only the preset sizes are served here", code="invalid_thumbnail")
        return spec

    def _dimension(self, raw: str | None) -> int:
        top = self.s.thumbnail_max_dimension
        if raw is None or not raw.isdecimal() or len(raw) > 5 or not 16 <= int(raw) <= top:
            raise BadRequest(f"w and h are integers from 16 to {top}", code="invalid_thumbnail")
        return int(raw)

    # -- getting one -------------------------------------------------------------------------------
    async def get(self, asset: Asset, version: Version, spec: ThumbSpec) -> Thumbnail:
        found = await self.records.get(asset.id, version.version, spec.key)
        if found is not None:
            return found
        key = (asset.id, version.version, spec.key)
        flight = self._flights.get(key)
        if flight is None:
            flight = asyncio.ensure_future(self._make(asset, version, spec))
            self._flights[key] = flight
            flight.add_done_callback(lambda _: self._flights.pop(key, None))
        return await asyncio.shield(flight)

    async def open(self, thumb: Thumbnail, offset: int = 0, length: int | None = None) -> BlobReader:
        return await self.b.storages.get(thumb.storage).store.open(thumb.blob_key, offset, length)

    async def _make(self, asset: Asset, version: Version, spec: ThumbSpec) -> Thumbnail:
        if version.size > self.s.thumbnail_max_source_bytes:
            raise Unprocessable(
                f"the image is over {self.s.thumbnail_max_source_bytes} bytes", code="image_too_large"
            )
        with tempfile.SpooledTemporaryFile(max_size=SPOOL) as source:
            reader = await self.assets.open(version)
            try:
                async for chunk in reader:
                    await asyncio.to_thread(source.write, chunk)  # may have rolled over to disk
            finally:
                await reader.aclose()
            source.seek(0)
            async with self._slots:
                try:
                    data = await asyncio.to_thread(
                        imaging.render, cast(BinaryIO, source), spec, max_pixels=self.s.thumbnail_max_pixels
                    )
                except ImageRefused as exc:
                    raise Unprocessable(exc.message, code=exc.code) from None
        placement = self.placer.thumbnails_of(Placement(storage=version.storage, scope=asset.scope))
        prefix = version.blob_key[: version.blob_key.find("assets/")] if "assets/" in version.blob_key else ""
        blob_key = f"{prefix}thumbnails/{asset.id}/{version.version}/{spec.key}"
        store = self.b.storages.get(placement.storage).store
        await store.write(blob_key, _once(data), size_hint=len(data))
        thumb = Thumbnail(
            asset_id=asset.id,
            version=version.version,
            key=spec.key,
            owner=asset.owner,
            storage=placement.storage,
            blob_key=blob_key,
            size=len(data),
            content_type=spec.content_type,
            etag=f'"{hashlib.sha256(data).hexdigest()[:40]}"',
            created=self.b.clock(),
        )
        try:
            await self.records.put(thumb)
        except BaseException:  # never bytes without a record: purge and delete could not find them
            await asyncio.shield(store.delete(blob_key))
            raise
        data_out = asset_data(asset, version) | {"thumbnail": spec.key, "thumbnail_size": len(data)}
        await self.events.publish(self.events.new("thumbnail.created", asset.owner, data_out))
        return thumb

    # -- after an upload ---------------------------------------------------------------------------
    def committed(self, asset: Asset, version: Version) -> None:
        """Make the presets of a new image version in the background (on demand covers a crash)."""
        if not self.s.thumbnail_eager or not self.presets or self.b.thumbs is None:
            return
        kind = likely_type(asset.name, version.content_type)
        if not kind.startswith("image/") or kind == "image/svg+xml":
            return
        task = asyncio.create_task(self._presets(asset, version), name=f"thumbnails-{asset.id}")
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _presets(self, asset: Asset, version: Version) -> None:
        for spec in self.presets.values():
            try:
                await self.get(asset, version, spec)
            except (GatewayError, OSError) as exc:
                log.info("preset thumbnail of %s not made: %s", asset.id, getattr(exc, "message", exc))
                return  # one refusal (not an image, too big) says the same for every preset

    async def close(self) -> None:
        """Presets being made get a moment to finish (they are short), then are cancelled."""
        if self._background:
            await asyncio.wait(list(self._background), timeout=5)
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)

    # -- removing ----------------------------------------------------------------------------------
    async def forget_asset(self, asset_id: str) -> None:
        if self.b.thumbs is not None:
            await self._remove(await self.b.thumbs.of_asset(asset_id))

    async def purge(self, owner: str | None = None) -> int:
        thumbs = await self.records.indexed(owner)
        await self._remove(thumbs)
        return len(thumbs)

    async def _remove(self, thumbs: list[Thumbnail]) -> None:
        for t in thumbs:  # bytes first: a record without bytes is re-rendered, bytes without one leak
            await self.b.storages.get(t.storage).store.delete(t.blob_key)
        if thumbs:
            await self.records.forget(thumbs)


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data
