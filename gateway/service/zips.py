"""Zip members and bundle links: every member resolved and checked before a byte is sent.

Work here is proportional to the member count and runs on the event loop, so it is bounded twice: at
most ``MAX_ZIP_MEMBERS`` members per request (documented in docs/zips.md), and name de-duplication is
linear (``ziplayout.unique_names``). Long loops yield to the loop every ``YIELD_EVERY`` members, so a
big zip request cannot stall other requests; the archive layout of a big plan is computed in a worker
thread (http/zips.py). A test measures the CPU the loop spends between two turns of a ticker meanwhile.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from gateway.errors import BadRequest, NotFound
from gateway.hashing import crc32
from gateway.names import validate_name
from gateway.records import Asset, Version
from gateway.service.assets import AssetReader, is_uuid
from gateway.service.context import Backends
from gateway.service.params import TokenRequest
from gateway.service.scanning import Scanning
from gateway.service.tokens import IssuedToken, Tokens
from gateway.ziplayout import Member, unique_names

MAX_ZIP_MEMBERS = 10_000
YIELD_EVERY = 500


@dataclass(frozen=True)
class MemberSpec:
    """One entry of a zip request: an asset, optionally a version and a path inside the archive."""

    asset_id: str
    version: int | None = None
    path: str | None = None


class Zips:
    def __init__(self, backends: Backends, assets: AssetReader, tokens: Tokens, scanning: Scanning) -> None:
        self.b = backends
        self.scanning = scanning
        self.assets = assets
        self.tokens = tokens

    async def _resolve(self, specs: Sequence[MemberSpec], owner: str | None) -> list[tuple[Asset, Version]]:
        """Every member's asset and version, in two batched catalog reads; 404 for any miss."""
        if not specs:
            raise BadRequest("a zip needs at least one asset", code="invalid_members")
        if len(specs) > MAX_ZIP_MEMBERS:
            raise BadRequest(f"a zip holds at most {MAX_ZIP_MEMBERS} members", code="invalid_members")
        for spec in specs:
            if not is_uuid(spec.asset_id):
                raise NotFound(f"unknown asset {spec.asset_id[:40]!r}", code="asset_not_found")
        now = self.b.clock()
        assets = await self.b.catalog.get_assets([s.asset_id for s in specs])
        wanted: list[tuple[str, int]] = []
        for spec in specs:
            asset = assets.get(spec.asset_id)
            if asset is None or asset.expired(now) or (owner is not None and asset.owner != owner):
                raise NotFound(f"unknown asset {spec.asset_id}", code="asset_not_found")
            wanted.append((asset.id, asset.latest_version if spec.version is None else spec.version))
        known = {(a.id, a.latest.version): a.latest for a in assets.values() if a.latest is not None}
        missing = [key for key in dict.fromkeys(wanted) if key not in known]
        versions = known | (await self.b.catalog.get_versions(missing) if missing else {})
        out = []
        for key in wanted:
            version = versions.get(key)
            if version is None:
                raise NotFound(f"asset {key[0]} has no version {key[1]}", code="version_not_found")
            out.append((assets[key[0]], version))
        return out

    async def listing(self, asset_ids: Sequence[str]) -> list[tuple[Asset, Version]]:
        """A bundle's members as its share page lists them (nothing read, nothing counted)."""
        return await self._resolve([MemberSpec(a) for a in asset_ids], None)

    async def members(self, specs: Sequence[MemberSpec], *, owner: str | None) -> list[Member[Version]]:
        """Check every member (exists, readable) before anything is sent; names made unique."""
        paths = [safe_member_path(s.path) if s.path is not None else None for s in specs]
        found = await self._resolve(specs, owner)
        names = unique_names([p or a.name for p, (a, _) in zip(paths, found, strict=True)])
        members = []
        for i, (name, (_, version)) in enumerate(zip(names, found, strict=True)):
            if i % YIELD_EVERY == YIELD_EVERY - 1:
                await asyncio.sleep(0)
            self.scanning.check(version)  # a flagged (or, if required, unscanned) member: no zip at all
            crc = version.crc32
            if crc is None or not version.sha256:  # imported or adopted: never read here before
                crc = await self._backfill_crc32(version)
            members.append(
                Member(name=name, size=version.size, crc32=crc, mtime=version.created, source=version)
            )
        return members

    async def _backfill_crc32(self, version: Version) -> int:
        """A version without a CRC (imported, never uploaded here): read it once, record it, go on.

        Done before any header is sent, so the zip keeps its exact length and Range support; the cost
        (one extra read of that member) is paid once, since the CRC is then stored.
        """
        reader = await self.assets.open(version)
        crc = 0
        sha = hashlib.sha256()
        try:
            async for chunk in reader:
                crc = crc32(chunk, crc)
                sha.update(chunk)
        finally:
            await reader.aclose()
        await self.b.catalog.set_crc32(version.asset_id, version.version, crc, sha.hexdigest())
        return crc

    async def mint_bundle(
        self, asset_ids: Sequence[str], req: TokenRequest, *, owner: str, name: str
    ) -> IssuedToken:
        """A bundle link: always a zip (even of one asset); each asset once, in first-seen order."""
        unique = list(dict.fromkeys(asset_ids))
        found = await self._resolve([MemberSpec(a) for a in unique], owner)
        issued = self.tokens.issue([a for a, _ in found], owner, req, bundle=True, name=name)
        await self.tokens.put(issued)
        return issued


def safe_member_path(path: str) -> str:
    """A relative path inside an archive: '/'-separated, every part a valid file name."""
    parts = path.split("/")
    if not path or len(path.encode("utf-8")) > 1024 or any(not p for p in parts):
        raise BadRequest(f"invalid member path {path[:60]!r}", code="invalid_path")
    for part in parts:
        try:
            validate_name(part)
        except BadRequest as exc:
            raise BadRequest(
                f"invalid member path {path[:60]!r}: {exc.message}", code="invalid_path"
            ) from None
    return path
