"""The catalog's records, as the service sees them (storage-neutral, immutable)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Asset:
    id: str
    name: str
    owner: str
    content_type: str
    created: float  # UNIX seconds
    latest_version: int = 0
    expires_at: int | None = None  # retention: the asset (and its tokens) die at this UNIX second
    metadata: dict[str, Any] = field(default_factory=dict, compare=False)  # e.g. copied JWT claims
    scope: str = ""  # quota scope its bytes count against ('': "owner:<owner>"), service/quotas.py
    # A copy of version ``latest_version``, kept in the asset's own item so that serving the latest
    # version is one catalog read, not two. None for items written before the copy existed.
    latest: Version | None = field(default=None, compare=False)

    def expired(self, now: float) -> bool:
        return self.expires_at is not None and self.expires_at <= now


@dataclass(frozen=True)
class Version:
    asset_id: str
    version: int
    size: int
    sha256: str
    crc32: int | None  # None only for versions imported without one (see AssetService.zip_members)
    blob_key: str
    created: float
    content_type: str
    storage: str = ""  # the named storage holding the blob ("": the default storage)
    shared: str = ""  # content-addressed: the blob's reference-counted catalog entry (service/dedup.py)
    scan: str = ""  # '' (no scanners when written), pending, clean, flagged or error (service/scanning.py)
    scan_detail: str = ""  # what a scanner said (a signature name, a moderation reason, an error)


@dataclass(frozen=True)
class Placement:
    """Where an upload's bytes go and whose quota they count against (``service/placement.py``).

    ``prefix`` is the tenant's key prefix inside ``storage`` ('' or ending in '/'); ``scope`` is the
    boundary of quotas and of content deduplication: ``tenant:<name>`` or ``owner:<principal>``.
    """

    storage: str
    prefix: str = ""
    scope: str = ""

    def as_dict(self) -> dict[str, str]:
        return {"storage": self.storage, "prefix": self.prefix, "scope": self.scope}

    @classmethod
    def of(cls, data: dict[str, Any] | None, owner: str) -> Placement:
        """From a stored dict; records written before placements existed: default storage, owner scope."""
        if not data:
            return cls(storage="", prefix="", scope=f"owner:{owner}")
        return cls(storage=str(data["storage"]), prefix=str(data["prefix"]), scope=str(data["scope"]))


@dataclass(frozen=True)
class Token:
    """A share link. Only ``token_hash`` (sha256 of the secret) is ever stored."""

    token_hash: str
    token_id: str
    asset_ids: tuple[str, ...]
    owner: str
    created: float
    expires_at: int  # UNIX seconds; also the DynamoDB TTL attribute
    max_downloads: int | None = None
    downloads: int = 0
    revoked: bool = False
    name: str | None = None  # archive name for bundle tokens
    bundle: bool = False  # a bundle link streams a zip, even of one asset (explicit, never inferred)
    password_hash: str | None = field(default=None, repr=False)  # argon2id; None: no password

    @property
    def is_bundle(self) -> bool:
        return self.bundle


@dataclass(frozen=True)
class Retrieval:
    """One client's retrieval of a link: bytes charged to it, and until when it may be resumed.

    ``client`` is a hash of the link and the client's address, never the address itself.
    """

    token_hash: str
    client: str
    charged: int
    expires_at: int


@dataclass(frozen=True)
class DownloadRecord:
    """One response served through a link, for its owner's history (kept ``download_history_days``)."""

    token_hash: str
    time: float
    bytes: int
    status: int
    client: str  # a keyed hash of the link and the client's address, never the address
    expires_at: int


@dataclass(frozen=True)
class NewAsset:
    """An asset and its first version, written together."""

    asset: Asset
    version: Version
    tokens: tuple[Token, ...] = field(default=())


@dataclass(frozen=True)
class DueAsset:
    """An entry of the expiry index: this asset is due for deletion."""

    asset_id: str
    expires_at: int


@dataclass(frozen=True)
class UploadSession:
    """A resumable (tus) upload in progress, or recently completed; the whole state lives here.

    ``rev`` is bumped by every write and every write is conditional on it, so two processes can never
    both advance one upload. ``lease``/``lease_until`` say which request is appending right now: a PATCH
    takes the lease before reading a byte and renews it with each checkpoint.
    ``parts``/``ref`` are the storage's own progress (the S3 multipart upload and its full parts); bytes
    past ``parts * part_size`` are in the staging object (S3) or the staging file (filesystem).
    """

    id: str
    owner: str
    created: float
    expires_at: int
    length: int | None  # None: Upload-Defer-Length, not known yet
    blob_key: str
    staging_key: str
    part_size: int
    asset_id: str
    offset: int = 0
    metadata: dict[str, str] = field(default_factory=dict)
    ref: str = ""
    parts: int = 0
    rev: int = 0
    lease: str = ""
    lease_until: float = 0.0
    concat: str = ""  # "" | "partial" | "final"
    new_version: bool = False  # asset_id names an existing asset
    stored: bool = False  # the blob is whole in storage (completion's first step)
    done_version: int | None = None  # set once the upload became version N of asset_id
    share: dict[str, Any] | None = None  # the link to mint on completion (a TokenRequest's fields)
    retention: int | None = None  # seconds the asset lives, from `expires`
    link: str = ""  # the upload link it came through (the link's token hash), if any
    max_size: int | None = None  # a limit tighter than the deployment's (the link's)
    placement: dict[str, str] | None = None  # Placement.as_dict(): storage, key prefix, quota scope

    @property
    def finished(self) -> bool:
        """Nothing more to do: an asset was made (or, for a partial upload, its blob is whole)."""
        return self.done_version is not None or (self.concat == "partial" and self.stored)


@dataclass(frozen=True)
class UploadLink:
    """A link anyone holding it can upload through (a "file request"); uploads belong to ``owner``.
    Only ``token_hash`` is stored; ``uploads`` counts claims, taken before any byte is accepted."""

    token_hash: str
    link_id: str
    owner: str
    created: float
    expires_at: int
    max_uploads: int | None = None
    uploads: int = 0
    max_size: int | None = None
    content_types: tuple[str, ...] = ()
    label: str = ""
    share: dict[str, Any] | None = None  # a TokenRequest's fields: each upload gets such a share link
    revoked: bool = False
    placement: dict[str, str] | None = None  # where uploads through it go (its creator's placement)


@dataclass(frozen=True)
class Event:
    """Something that happened, as subscribers receive it (``service/events.py``).

    ``id`` is stable across retries (receivers de-duplicate on it); ``owner`` decides which owners'
    subscriptions may see it (config subscriptions see every event).
    """

    id: str
    type: str
    at: float
    owner: str
    data: dict[str, Any]


@dataclass(frozen=True)
class Subscription:
    """Where events go: an owner's webhook (API) or an operator's target (config: URL, SNS, SQS)."""

    id: str
    owner: str  # '' for the operator's subscriptions, which see every owner's events
    url: str  # https://… for webhooks; sns:<topic arn> / sqs:<queue url> for config targets
    secret: str  # whsec_… (Standard Webhooks); '' for SNS/SQS
    types: tuple[str, ...]  # event types, or ('*',)
    created: float
    description: str = ""

    def wants(self, event: Event) -> bool:
        if self.owner and self.owner != event.owner:
            return False
        return "*" in self.types or event.type in self.types


@dataclass(frozen=True)
class Attempt:
    at: float
    status: int | None  # the receiver's HTTP status, None when it could not be reached
    error: str  # '' on success; a short reason otherwise (never a secret)
    ms: int


@dataclass(frozen=True)
class Delivery:
    """One event on its way to one subscription; ``state``: pending, delivered or failed."""

    id: str
    subscription: str
    event: Event
    state: str
    attempts: tuple[Attempt, ...]
    next_at: float
    created: float


@dataclass(frozen=True)
class Thumbnail:
    """A stored derivative of one version (``service/thumbnails.py``); ``key`` names its spec."""

    asset_id: str
    version: int
    key: str  # e.g. "256x256-cover.webp"
    owner: str
    storage: str
    blob_key: str
    size: int
    content_type: str
    etag: str
    created: float
