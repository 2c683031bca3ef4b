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
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass

from gateway.config import Settings
from gateway.durations import DurationError, parse_duration
from gateway.errors import BadRequest, Gone, NotFound
from gateway.hashing import DigestingStream, Digests, Expected
from gateway.names import guess_content_type, validate_name
from gateway.ports import BlobReader, BlobStore, Catalog, Presigner
from gateway.records import Asset, NewAsset, Token, Version
from gateway.tokens import hash_token, new_token, new_token_id, well_formed

OPEN_OWNER = "public"  # owner of everything uploaded in open mode


@dataclass(frozen=True)
class TokenRequest:
    expiry_seconds: int
    max_downloads: int | None


@dataclass(frozen=True)
class IssuedToken:
    secret: str
    record: Token


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
        if not text.isdigit() or not 1 <= int(text) <= self.settings.max_downloads_limit:
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
        req = TokenRequest(self.parse_expiry(expiry), self.parse_max_downloads(max_downloads))
        return req if flag in ("1", "true", "yes", "on") else None

    # -- uploads -------------------------------------------------------------------------------------
    async def stage(
        self,
        *,
        name: str,
        content_type: str | None,
        chunks: AsyncIterator[bytes],
        size_hint: int | None,
        expected: Expected | None = None,
    ) -> Staged:
        validate_name(name)
        asset_id = str(uuid.uuid4())
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
    ) -> tuple[list[tuple[Asset, Version]], IssuedToken | None]:
        now = self.clock()
        pairs = [
            (
                Asset(id=s.asset_id, name=s.name, owner=owner, content_type=s.content_type, created=now),
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
                [a.id for a, _ in pairs], owner, token, name=bundle_name if len(pairs) > 1 else None
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
    ) -> tuple[Asset, Version, IssuedToken | None]:
        staged = await self.stage(
            name=name, content_type=content_type, chunks=chunks, size_hint=size_hint, expected=expected
        )
        [(asset, version)], issued = await self.commit([staged], owner=owner, token=token)
        return asset, version, issued

    # -- tokens --------------------------------------------------------------------------------------
    def _mint(
        self, asset_ids: Sequence[str], owner: str, req: TokenRequest, *, name: str | None = None
    ) -> IssuedToken:
        secret = new_token()
        now = self.clock()
        record = Token(
            token_hash=hash_token(secret),
            token_id=new_token_id(),
            asset_ids=tuple(asset_ids),
            owner=owner,
            created=now,
            expires_at=int(now) + req.expiry_seconds,
            max_downloads=req.max_downloads,
            name=name,
        )
        return IssuedToken(secret, record)

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
        if token.max_downloads is not None and token.downloads >= token.max_downloads:
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
    async def find(self, asset_id: str, version: int | None = None) -> tuple[Asset, Version]:
        if not _is_uuid(asset_id):
            raise NotFound("unknown asset", code="asset_not_found")
        asset = await self.catalog.get_asset(asset_id)
        if asset is None:
            raise NotFound("unknown asset", code="asset_not_found")
        wanted = asset.latest_version if version is None else version
        found = await self.catalog.get_version(asset_id, wanted)
        if found is None:
            raise NotFound(f"asset has no version {wanted}", code="version_not_found")
        return asset, found

    async def open(self, version: Version, offset: int = 0, length: int | None = None) -> BlobReader:
        return await self.store.open(version.blob_key, offset, length)

    def presigner(self) -> Presigner | None:
        return self.store if isinstance(self.store, Presigner) else None


def _is_uuid(value: str) -> bool:
    try:
        return str(uuid.UUID(value)) == value
    except ValueError:
        return False
