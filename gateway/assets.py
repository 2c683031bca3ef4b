"""Upload, download and token rules, written once against the two ports.

Uploads are two-phase: bytes first (``stage``), catalog second (``commit``). The catalog write is the
moment an asset becomes visible, so a failure at any point before it leaves nothing readable, and the
only cleanup ever needed is deleting blobs this request wrote. A multipart form stages several files
and commits them (and their token) in one catalog transaction.

Token downloads are claimed with one conditional catalog write *before* the first byte is sent, so a
limit of N admits exactly N downloads however many requests race, on however many gateway processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import secrets
import time
import uuid
import zlib
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from gateway.config import Settings
from gateway.durations import DurationError, is_decimal, parse_duration
from gateway.errors import BadRequest, CatalogError, GatewayError, Gone, NotFound
from gateway.hashing import DigestingStream, Digests, Expected
from gateway.names import content_disposition, guess_content_type, validate_name
from gateway.ports import BlobReader, BlobStore, Catalog, ExpiredItemPurger, Presigner
from gateway.records import Asset, DueAsset, NewAsset, Token, Version
from gateway.tokens import hash_token, new_token, new_token_id, well_formed
from gateway.ziplayout import Member, unique_names

SWEEP_BATCH = 100
VERSION_RETRIES = 8

log = logging.getLogger("gateway.assets")


@dataclass(frozen=True)
class TokenRequest:
    expiry_seconds: int
    max_downloads: int | None


@dataclass(frozen=True)
class IssuedToken:
    secret: str
    record: Token


@dataclass(frozen=True)
class MemberSpec:
    """One entry of a zip request: an asset, optionally a version and a path inside the archive."""

    asset_id: str
    version: int | None = None
    path: str | None = None


MAX_ZIP_MEMBERS = 100_000


@dataclass(frozen=True)
class Staged:
    """Bytes that are stored but not yet visible."""

    asset_id: str
    name: str
    content_type: str
    blob_key: str
    digests: Digests


class AssetService:
    def __init__(
        self,
        store: BlobStore,
        catalog: Catalog,
        settings: Settings,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.catalog = catalog
        self.settings = settings
        self.clock = clock

    # -- input rules ---------------------------------------------------------------------------------
    def parse_expiry(self, raw: str | None) -> int:
        if raw is None or raw == "":
            return self.settings.default_token_expiry
        try:
            seconds = parse_duration(raw)
        except DurationError as exc:
            raise BadRequest(f"invalid expiry {raw[:40]!r}: {exc}", code="invalid_expiry") from None
        if seconds > self.settings.max_token_expiry:
            raise BadRequest(
                f"expiry exceeds the maximum of {self.settings.max_token_expiry} seconds",
                code="invalid_expiry",
            )
        return seconds

    def parse_max_downloads(self, raw: str | int | None) -> int | None:
        if raw is None or raw == "":
            return None
        text = str(raw).strip()
        if not is_decimal(text) or len(text) > 12 or not 1 <= int(text) <= self.settings.max_downloads_limit:
            raise BadRequest(
                f"max_downloads must be an integer from 1 to {self.settings.max_downloads_limit}",
                code="invalid_max_downloads",
            )
        return int(text)

    def token_request(
        self, want: str | None, expiry: str | None, max_downloads: str | int | None
    ) -> TokenRequest | None:
        """Validate token parameters (always, even when no token is wanted) and say whether to mint."""
        flag = (want or "").strip().lower()
        if flag not in ("", "0", "1", "true", "false", "yes", "no", "on", "off"):
            raise BadRequest("token must be 1/true or 0/false", code="invalid_token_flag")
        req = self.mint_request(expiry, max_downloads)
        return req if flag in ("1", "true", "yes", "on") else None

    def mint_request(self, expiry: str | int | None, max_downloads: str | int | None) -> TokenRequest:
        """Parameters of a token that is always wanted (minting endpoints, bundles)."""
        return TokenRequest(
            self.parse_expiry(None if expiry is None else str(expiry)),
            self.parse_max_downloads(max_downloads),
        )

    def parse_retention(self, raw: str | None) -> int | None:
        """``expires``: how long the asset itself lives (None: until deleted). Same formats as expiry."""
        if raw is None or raw == "":
            return None
        try:
            return parse_duration(raw)
        except DurationError as exc:
            raise BadRequest(f"invalid expires {raw[:40]!r}: {exc}", code="invalid_expires") from None

    # -- uploads -------------------------------------------------------------------------------------
    async def stage(
        self,
        *,
        name: str,
        content_type: str | None,
        chunks: AsyncIterator[bytes],
        size_hint: int | None,
        expected: Expected | None = None,
        asset_id: str | None = None,
    ) -> Staged:
        """Store the bytes of a new asset (or, with ``asset_id``, of a new version of that asset).

        Blob keys are ``assets/<asset id>/<random>``: grouped by asset (gc relies on it), and unique per
        upload so racing writers never overwrite each other before the catalog decides.
        """
        validate_name(name)
        asset_id = asset_id or str(uuid.uuid4())
        blob_key = f"assets/{asset_id}/{uuid.uuid4().hex}"
        stream = DigestingStream(chunks, max_size=self.settings.max_upload_size, expected=expected)
        await self.store.write(blob_key, stream, size_hint=size_hint)
        return Staged(
            asset_id=asset_id,
            name=name,
            content_type=content_type or guess_content_type(name),
            blob_key=blob_key,
            digests=stream.digests(),
        )

    async def discard(self, staged: Sequence[Staged]) -> None:
        """Delete staged blobs; shielded so a cancelled request still cleans up."""

        async def _drop() -> None:
            for s in staged:
                with contextlib.suppress(Exception):
                    await self.store.delete(s.blob_key)

        await asyncio.shield(_drop())

    async def commit(
        self,
        staged: Sequence[Staged],
        *,
        owner: str,
        token: TokenRequest | None,
        bundle_name: str | None = None,
        retention: int | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> tuple[list[tuple[Asset, Version]], IssuedToken | None]:
        now = self.clock()
        expires_at = None if retention is None else math.ceil(now) + retention  # never shorter than asked
        pairs = [
            (
                Asset(
                    id=s.asset_id,
                    name=s.name,
                    owner=owner,
                    content_type=s.content_type,
                    created=now,
                    expires_at=expires_at,
                    metadata=dict(metadata or {}),
                ),
                Version(
                    asset_id=s.asset_id,
                    version=0,
                    size=s.digests.size,
                    sha256=s.digests.sha256,
                    crc32=s.digests.crc32,
                    blob_key=s.blob_key,
                    created=now,
                    content_type=s.content_type,
                ),
            )
            for s in staged
        ]
        issued = None
        if token is not None:
            issued = self._mint(
                [a for a, _ in pairs], owner, token, name=bundle_name if len(pairs) > 1 else None
            )
        news = [NewAsset(a, v) for a, v in pairs]
        if issued is not None and news:
            news[0] = NewAsset(news[0].asset, news[0].version, (issued.record,))
        try:
            await self.catalog.create_assets(news)
        except BaseException:
            await self.discard(staged)
            raise
        return pairs, issued

    async def upload(
        self,
        *,
        name: str,
        content_type: str | None,
        chunks: AsyncIterator[bytes],
        size_hint: int | None,
        expected: Expected | None,
        owner: str,
        token: TokenRequest | None,
        retention: int | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> tuple[Asset, Version, IssuedToken | None]:
        staged = await self.stage(
            name=name, content_type=content_type, chunks=chunks, size_hint=size_hint, expected=expected
        )
        [(asset, version)], issued = await self.commit(
            [staged], owner=owner, token=token, retention=retention, metadata=metadata
        )
        return asset, version, issued

    # -- tokens --------------------------------------------------------------------------------------
    def _mint(
        self, assets: Sequence[Asset], owner: str, req: TokenRequest, *, name: str | None = None
    ) -> IssuedToken:
        """A new token; it never outlives the assets it covers (retention caps its expiry)."""
        secret = new_token()
        now = self.clock()
        expires_at = math.ceil(now) + req.expiry_seconds  # whole seconds, never shorter than asked
        for asset in assets:
            if asset.expires_at is not None:
                expires_at = min(expires_at, asset.expires_at)
        record = Token(
            token_hash=hash_token(secret),
            token_id=new_token_id(),
            asset_ids=tuple(a.id for a in assets),
            owner=owner,
            created=now,
            expires_at=expires_at,
            max_downloads=req.max_downloads,
            name=name,
        )
        return IssuedToken(secret, record)

    async def mint(self, asset_id: str, req: TokenRequest, *, owner: str) -> IssuedToken:
        asset, _ = await self.find(asset_id, owner=owner)
        issued = self._mint([asset], owner, req)
        await self.catalog.put_token(issued.record)
        return issued

    async def live_tokens(self, asset_id: str, *, owner: str) -> list[Token]:
        await self.find(asset_id, owner=owner)
        now = self.clock()
        return [t for t in await self.catalog.list_tokens(asset_id) if _usable(t, now)]

    async def revoke_secret(self, secret: str) -> None:
        """DELETE /asset-token/{token}: the token is its own credential."""
        if not well_formed(secret):
            raise NotFound("unknown token", code="token_not_found")
        await self._revoke(hash_token(secret))

    async def revoke_id(self, asset_id: str, token_id: str, *, owner: str) -> None:
        await self.find(asset_id, owner=owner)
        token_hash = await self.catalog.find_token_hash(asset_id, token_id) if _is_hex(token_id) else None
        if token_hash is None:
            raise NotFound("unknown token id", code="token_not_found")
        await self._revoke(token_hash)

    async def _revoke(self, token_hash: str) -> None:
        if await self.catalog.revoke_token(token_hash):
            return
        if await self.catalog.get_token(token_hash) is None:
            raise NotFound("unknown token", code="token_not_found")
        raise Gone("this link was already revoked", code="token_revoked")

    async def resolve_token(self, secret: str) -> Token:
        """The token behind a link, if it is still usable; 404 unknown, 410 expired/revoked/exhausted."""
        if not well_formed(secret):
            raise NotFound("unknown token", code="token_not_found")
        token = await self.catalog.get_token(hash_token(secret))
        if token is None:
            raise NotFound("unknown token", code="token_not_found")
        self._check_live(token)
        return token

    def _check_live(self, token: Token) -> None:
        if token.revoked:
            raise Gone("this link has been revoked", code="token_revoked")
        if token.expires_at <= self.clock():
            raise Gone("this link has expired", code="token_expired")
        if not _usable(token, self.clock()):
            raise Gone("this link has reached its download limit", code="token_exhausted")

    async def claim(self, token: Token) -> Token:
        """Count one download, atomically; 410 when the limit or expiry was reached meanwhile."""
        claimed = await self.catalog.claim_download(token.token_hash, self.clock())
        if claimed is None:
            latest = await self.catalog.get_token(token.token_hash)
            if latest is None:
                raise Gone("this link is no longer valid", code="token_gone")
            self._check_live(latest)
            raise Gone("this link is no longer valid", code="token_gone")
        return claimed

    # -- downloads -----------------------------------------------------------------------------------
    async def find(
        self, asset_id: str, version: int | None = None, *, owner: str | None
    ) -> tuple[Asset, Version]:
        """An asset and one of its versions. ``owner`` None means unrestricted (token links only);
        another owner's asset is indistinguishable from a missing one (404, no existence leak)."""
        if not _is_uuid(asset_id):
            raise NotFound("unknown asset", code="asset_not_found")
        asset = await self.catalog.get_asset(asset_id)
        if asset is None or asset.expired(self.clock()) or (owner is not None and asset.owner != owner):
            raise NotFound("unknown asset", code="asset_not_found")
        wanted = asset.latest_version if version is None else version
        if asset.latest is not None and asset.latest.version == wanted:
            return asset, asset.latest  # one catalog read for the common case
        found = await self.catalog.get_version(asset_id, wanted)
        if found is None:
            raise NotFound(f"asset has no version {wanted}", code="version_not_found")
        return asset, found

    async def _resolve(self, specs: Sequence[MemberSpec], owner: str | None) -> list[tuple[Asset, Version]]:
        """Every member's asset and version, in two batched catalog reads; 404 for any miss."""
        if not specs:
            raise BadRequest("a zip needs at least one asset", code="invalid_members")
        if len(specs) > MAX_ZIP_MEMBERS:
            raise BadRequest(f"a zip holds at most {MAX_ZIP_MEMBERS} members", code="invalid_members")
        for spec in specs:
            if not _is_uuid(spec.asset_id):
                raise NotFound(f"unknown asset {spec.asset_id[:40]!r}", code="asset_not_found")
        now = self.clock()
        assets = await self.catalog.get_assets([s.asset_id for s in specs])
        wanted: list[tuple[str, int]] = []
        for spec in specs:
            asset = assets.get(spec.asset_id)
            if asset is None or asset.expired(now) or (owner is not None and asset.owner != owner):
                raise NotFound(f"unknown asset {spec.asset_id}", code="asset_not_found")
            wanted.append((asset.id, asset.latest_version if spec.version is None else spec.version))
        known = {(a.id, a.latest.version): a.latest for a in assets.values() if a.latest is not None}
        missing = [key for key in wanted if key not in known]
        versions = known | (await self.catalog.get_versions(missing) if missing else {})
        out = []
        for key in wanted:
            version = versions.get(key)
            if version is None:
                raise NotFound(f"asset {key[0]} has no version {key[1]}", code="version_not_found")
            out.append((assets[key[0]], version))
        return out

    async def zip_members(self, specs: Sequence[MemberSpec], *, owner: str | None) -> list[Member[Version]]:
        """Check every member (exists, readable) before anything is sent; names made unique."""
        paths = [safe_member_path(s.path) if s.path is not None else None for s in specs]
        found = await self._resolve(specs, owner)
        names = unique_names([p or a.name for p, (a, _) in zip(paths, found, strict=True)])
        members = []
        for name, (_, version) in zip(names, found, strict=True):
            crc = version.crc32 if version.crc32 is not None else await self._backfill_crc32(version)
            members.append(
                Member(name=name, size=version.size, crc32=crc, mtime=version.created, source=version)
            )
        return members

    async def _backfill_crc32(self, version: Version) -> int:
        """A version without a CRC (imported, never uploaded here): read it once, record it, go on.

        Done before any header is sent, so the zip keeps its exact length and Range support; the cost
        (one extra read of that member) is paid once, since the CRC is then stored.
        """
        reader = await self.store.open(version.blob_key)
        crc = 0
        try:
            async for chunk in reader:
                crc = zlib.crc32(chunk, crc)
        finally:
            await reader.aclose()
        await self.catalog.set_crc32(version.asset_id, version.version, crc)
        return crc

    async def mint_bundle(
        self, asset_ids: Sequence[str], req: TokenRequest, *, owner: str, name: str
    ) -> IssuedToken:
        found = await self._resolve([MemberSpec(a) for a in asset_ids], owner)
        issued = self._mint([a for a, _ in found], owner, req, name=name)
        await self.catalog.put_token(issued.record)
        return issued

    async def open(self, version: Version, offset: int = 0, length: int | None = None) -> BlobReader:
        return await self.store.open(version.blob_key, offset, length)

    def presigner(self) -> Presigner | None:
        return self.store if isinstance(self.store, Presigner) else None

    async def redirect_download(self, token: Token, asset: Asset, version: Version) -> str | None:
        """Redirect mode: a presigned URL for this download (counted), or None to proxy instead.

        The URL lives min(configured cap, the token's remaining life) and carries the download name and
        type as response overrides. It is signed before the download is claimed, so a count is only
        ever spent on a URL that exists.
        """
        presigner = self.presigner()
        if presigner is None or not self.settings.redirect_downloads:
            return None
        remaining = token.expires_at - math.ceil(self.clock())  # whole seconds: never outlives the token
        url = await presigner.presign_get(
            version.blob_key,
            expires_in=max(1, min(self.settings.presign_max_seconds, remaining)),
            filename_header=content_disposition(asset.name),
            content_type=version.content_type,
        )
        await self.claim(token)
        return url

    # -- management ----------------------------------------------------------------------------------
    async def new_version(
        self,
        asset_id: str,
        *,
        owner: str,
        content_type: str | None,
        chunks: AsyncIterator[bytes],
        size_hint: int | None,
        expected: Expected | None,
    ) -> tuple[Asset, Version]:
        """Stream a new version; its number is claimed by a conditional catalog write.

        The blob key is unique per upload, so when a concurrent upload wins the number we simply retry
        with the next one (the bytes are already stored); after a few lost races we give up and delete.
        """
        asset, _ = await self.find(asset_id, owner=owner)
        staged = await self.stage(
            name=asset.name,
            content_type=content_type or asset.content_type,
            chunks=chunks,
            size_hint=size_hint,
            expected=expected,
            asset_id=asset.id,
        )
        try:
            for _ in range(VERSION_RETRIES):
                version = Version(
                    asset_id=asset.id,
                    version=asset.latest_version + 1,
                    size=staged.digests.size,
                    sha256=staged.digests.sha256,
                    crc32=staged.digests.crc32,
                    blob_key=staged.blob_key,
                    created=self.clock(),
                    content_type=staged.content_type,
                )
                if await self.catalog.add_version(asset, version):
                    return asset, version
                asset, _ = await self.find(asset_id, owner=owner)
            raise CatalogError("too many concurrent version uploads; try again", code="version_conflict")
        except BaseException:
            await self.discard([staged])
            raise

    async def describe(self, asset_id: str, *, owner: str) -> tuple[Asset, list[Version]]:
        asset, _ = await self.find(asset_id, owner=owner)
        return asset, await self.catalog.list_versions(asset_id)

    async def delete(self, asset_id: str, *, owner: str) -> None:
        """Unreadable at once (one transaction), then bytes and items go; the sweeper finishes on failure."""
        asset, _ = await self.find(asset_id, owner=owner)
        now = int(self.clock())
        if not await self.catalog.expire_asset(asset.id, now):
            raise NotFound("unknown asset", code="asset_not_found")
        try:
            await self.purge(asset.id, due=DueAsset(asset.id, now))
        except GatewayError as exc:
            log.warning("delete of %s left for the sweeper: %s", asset.id, exc.message)

    async def list_assets(
        self, *, owner: str, limit: int, cursor: str | None
    ) -> tuple[list[tuple[Asset, Version]], str | None]:
        ids, next_key = await self.catalog.list_owner_assets(owner, limit, cursor)
        assets = await self.catalog.get_assets(ids)
        now = self.clock()
        live = [
            assets[i] for i in ids if i in assets and not assets[i].expired(now) and assets[i].owner == owner
        ]
        missing = [(a.id, a.latest_version) for a in live if a.latest is None]
        versions = await self.catalog.get_versions(missing) if missing else {}
        out = []
        for a in live:
            latest = a.latest or versions.get((a.id, a.latest_version))
            if latest is not None:
                out.append((a, latest))
        return out, next_key

    # -- retention -----------------------------------------------------------------------------------
    async def purge(self, asset_id: str, *, due: DueAsset | None = None) -> bool:
        """Delete every version's bytes, then the catalog items in one transaction.

        Bytes go first: if we die in between, the asset is still listed in the expiry index and the
        next sweep (in any process) finishes the job. Blob deletes are idempotent and the catalog
        delete is conditional, so concurrent sweepers cannot fail each other or lose a delete.
        """
        for version in await self.catalog.list_versions(asset_id):
            await self.store.delete(version.blob_key)
        return await self.catalog.delete_asset(asset_id, due=due)

    async def sweep_once(self) -> int:
        """One pass: purge assets whose retention ended, and (without TTL) long-expired tokens."""
        now = self.clock()
        purged = 0
        for due in await self.catalog.due_assets(now, SWEEP_BATCH):
            if await self.purge(due.asset_id, due=due):
                purged += 1
        if isinstance(self.catalog, ExpiredItemPurger):
            await self.catalog.purge_expired(now - self.settings.expired_token_grace)
        return purged

    async def sweeper(self) -> None:
        """Runs for the life of the process; every process runs one (they are safe together)."""
        interval = self.settings.sweep_interval
        while True:
            await asyncio.sleep(interval * (0.5 + secrets_fraction()))
            try:
                purged = await self.sweep_once()
                if purged:
                    log.info("retention sweep purged %d assets", purged)
            except GatewayError as exc:
                log.warning("retention sweep failed, will retry: %s", exc.message)


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


def _usable(token: Token, now: float) -> bool:
    return (
        not token.revoked
        and token.expires_at > now
        and (token.max_downloads is None or token.downloads < token.max_downloads)
    )


def _is_hex(value: str) -> bool:
    return 0 < len(value) <= 64 and all(c in "0123456789abcdef" for c in value)


def secrets_fraction() -> float:
    """Jitter in [0, 1) so sweepers in many processes do not run in lockstep."""
    return secrets.randbelow(1000) / 1000


def _is_uuid(value: str) -> bool:
    try:
        return str(uuid.UUID(value)) == value
    except ValueError:
        return False
