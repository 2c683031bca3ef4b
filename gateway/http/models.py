"""Every JSON body the API reads or writes, as pydantic models (also the source of the OpenAPI schema)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from gateway.records import Asset, DownloadRecord, Token, UploadSession, Version
from gateway.service.tokens import IssuedToken


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class AssetOut(BaseModel):
    id: str
    name: str
    size: int
    version: int
    content_type: str
    sha256: str
    created: str
    expires: int | None = Field(default=None, description="UNIX time the asset is deleted (retention)")
    scan: str | None = Field(
        default=None,
        exclude_if=lambda v: v is None,
        description="pending, clean, flagged or error (absent: not scanned; docs/scanning.md)",
    )
    scan_detail: str | None = Field(default=None, exclude_if=lambda v: v is None)

    @classmethod
    def of(cls, asset: Asset, version: Version) -> AssetOut:
        return cls(
            scan=version.scan or None,
            scan_detail=version.scan_detail or None,
            expires=asset.expires_at,
            id=asset.id,
            name=asset.name,
            size=version.size,
            version=version.version,
            content_type=version.content_type,
            sha256=version.sha256,
            created=iso(asset.created),
        )


class TokenOut(BaseModel):
    token: str
    token_id: str
    expiry: int = Field(description="UNIX timestamp (seconds, UTC) after which the link stops working")
    asset_id: str | None = Field(description="The asset, or null for a bundle token")
    asset_ids: list[str]
    max_downloads: int | None
    url: str
    page_url: str = Field(description="the share page for browsers (never counts a download)")
    password: bool = Field(default=False, description="the link needs a password")

    @classmethod
    def of(cls, issued: IssuedToken, base_url: str, page_base: str) -> TokenOut:
        rec = issued.record
        return cls(
            token=issued.secret,
            token_id=rec.token_id,
            expiry=rec.expires_at,
            asset_id=None if rec.is_bundle else rec.asset_ids[0],
            asset_ids=list(rec.asset_ids),
            max_downloads=rec.max_downloads,
            url=f"{base_url}/asset-token/{issued.secret}",
            page_url=f"{page_base}/s/{issued.secret}",
            password=rec.password_hash is not None,
        )


class UploadResponse(BaseModel):
    asset: AssetOut
    token: TokenOut | None
    error: None = None


class UploadProgress(BaseModel):
    id: str
    offset: int
    length: int | None
    expires: int
    complete: bool

    @classmethod
    def of(cls, s: UploadSession) -> UploadProgress:
        return cls(id=s.id, offset=s.offset, length=s.length, expires=s.expires_at, complete=s.finished)


class UploadProgressResponse(BaseModel):
    """GET /files/{id} of an upload that is not an asset (yet): how far it got."""

    upload: UploadProgress
    error: None = None


class MultiUploadResponse(BaseModel):
    assets: list[AssetOut]
    token: TokenOut | None
    error: None = None


class JsonUploadData(BaseModel):
    model_config = ConfigDict(extra="forbid")
    image: str = Field(description="base64 of the file's bytes")


class JsonUploadRequest(BaseModel):
    """Upload for clients that can only send JSON (small files)."""

    model_config = ConfigDict(extra="forbid")
    name: str
    data: JsonUploadData
    content_type: str | None = None
    token: bool | int | str | None = None
    expiry: str | int | None = None
    max_downloads: int | str | None = None
    expires: str | int | None = None
    password: str | None = Field(default=None, description="protect the link: HTTP Basic or Share-Password")
    profile: str | None = Field(default=None, description="storage profile (docs/storage-topology.md)")
    purpose: str | None = Field(default=None, description="storage purpose, e.g. general")
    region: str | None = Field(default=None, description="region of the profile, e.g. us-west")


class TokenCreateRequest(BaseModel):
    """POST /asset/{id}/tokens"""

    model_config = ConfigDict(extra="forbid")
    expiry: str | int | None = None
    max_downloads: int | str | None = None
    password: str | None = Field(default=None, description="protect the link: HTTP Basic or Share-Password")


class TokenCreated(BaseModel):
    token: TokenOut
    error: None = None


class TokenInfo(BaseModel):
    """A token as its owner sees it in listings: never the secret."""

    token_id: str
    expiry: int
    max_downloads: int | None
    downloads: int
    created: str
    asset_ids: list[str]
    password: bool = False

    @classmethod
    def of(cls, t: Token) -> TokenInfo:
        return cls(
            token_id=t.token_id,
            expiry=t.expires_at,
            max_downloads=t.max_downloads,
            downloads=t.downloads,
            created=iso(t.created),
            asset_ids=list(t.asset_ids),
            password=t.password_hash is not None,
        )


class DownloadEntry(BaseModel):
    time: str
    bytes: int
    status: int = Field(description="200 full, 206 range, 302 redirect")
    client: str = Field(description="a keyed hash of the client's address, per link (never the address)")


class DownloadList(BaseModel):
    downloads: list[DownloadEntry]

    @classmethod
    def of(cls, records: list[DownloadRecord]) -> DownloadList:
        return cls(
            downloads=[
                DownloadEntry(time=iso(r.time), bytes=r.bytes, status=r.status, client=r.client)
                for r in records
            ]
        )


class TokenList(BaseModel):
    tokens: list[TokenInfo]


class ZipMember(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    version: int | None = Field(default=None, ge=0)
    path: str | None = Field(default=None, description="Path inside the archive (default: the asset's name)")


class ZipRequest(BaseModel):
    """POST /zip"""

    model_config = ConfigDict(extra="forbid")
    assets: list[str | ZipMember] = Field(min_length=1)
    name: str = "files.zip"


class BundleRequest(BaseModel):
    """POST /bundle"""

    model_config = ConfigDict(extra="forbid")
    assets: list[str] = Field(min_length=1)
    name: str = "files.zip"
    expiry: str | int | None = None
    max_downloads: int | str | None = None
    password: str | None = Field(default=None, description="protect the link: HTTP Basic or Share-Password")


class VersionOut(BaseModel):
    version: int
    size: int
    sha256: str
    content_type: str
    created: str
    scan: str | None = Field(default=None, exclude_if=lambda v: v is None)
    scan_detail: str | None = Field(default=None, exclude_if=lambda v: v is None)

    @classmethod
    def of(cls, v: Version) -> VersionOut:
        return cls(
            scan=v.scan or None,
            scan_detail=v.scan_detail or None,
            version=v.version,
            size=v.size,
            sha256=v.sha256,
            content_type=v.content_type,
            created=iso(v.created),
        )


class AssetMeta(BaseModel):
    """GET /asset/{id}/meta"""

    id: str
    name: str
    owner: str
    content_type: str
    created: str
    latest_version: int
    expires: int | None
    metadata: dict[str, Any]
    versions: list[VersionOut]
    scan: str | None = Field(
        default=None, exclude_if=lambda v: v is None, description="the latest version's scan state"
    )
    scan_detail: str | None = Field(default=None, exclude_if=lambda v: v is None)

    @classmethod
    def of(cls, a: Asset, versions: list[Version]) -> AssetMeta:
        latest = next((v for v in versions if v.version == a.latest_version), None)
        return cls(
            scan=(latest.scan or None) if latest else None,
            scan_detail=(latest.scan_detail or None) if latest else None,
            id=a.id,
            name=a.name,
            owner=a.owner,
            content_type=a.content_type,
            created=iso(a.created),
            latest_version=a.latest_version,
            expires=a.expires_at,
            metadata=a.metadata,
            versions=[VersionOut.of(v) for v in versions],
        )


class AssetList(BaseModel):
    """GET /assets"""

    assets: list[AssetOut]
    next_cursor: str | None


class UsageOut(BaseModel):
    scope: str = Field(description="owner:<principal> or tenant:<name>: whose uploads these figures count")
    bytes: int = Field(description="Stored bytes (every version), uploads in progress under a quota included")
    assets: int
    max_bytes: int | None = Field(description="null: no limit")
    max_assets: int | None
    remaining_bytes: int | None
    remaining_assets: int | None


class QuotaFigures(BaseModel):
    bytes: int | None = None
    assets: int | None = None


class ErrorDetail(BaseModel):
    code: str
    message: str
    used: QuotaFigures | None = Field(default=None, description="quota_exceeded: what the scope stores.")
    allowed: QuotaFigures | None = Field(default=None, description="quota_exceeded: its limits.")


class ErrorResponse(BaseModel):
    error: ErrorDetail


class HealthResponse(BaseModel):
    status: str
    error: str | None = None
    storages: dict[str, str] | None = Field(
        default=None, description="With several storages: each one's state, 'ok' or why it is down."
    )
    workers: dict[str, float] | None = Field(
        default=None,
        description="Outbox (webhooks, scans, backups): entries due now (at most 100 counted) and the "
        "oldest one's age in seconds",
    )
