"""The ports every backend implements, plus optional capabilities.

The HTTP layer and the service only ever see these protocols; a backend is a module that satisfies
them. The catalog is one store but several cohesive ports (assets, tokens, the retention index), so a
service module depends on what it uses and a new capability adds a port rather than methods to a
20-method interface. Optional capabilities (presigning, inventory, self-purging) are separate protocols,
resolved once at start-up by ``service.context.Backends.compose``; limits are declared by each adapter
as :class:`CatalogLimits`, so nothing downstream knows which engine it talks to.

Longer than most modules on purpose: it is the one list of every port, so a new backend author reads
one file to know what to implement.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO, Protocol, runtime_checkable

from gateway.records import (
    Asset,
    Delivery,
    DownloadRecord,
    DueAsset,
    Event,
    NewAsset,
    Retrieval,
    Subscription,
    Thumbnail,
    Token,
    UploadLink,
    UploadSession,
    Version,
)


@dataclass(frozen=True)
class WriteResult:
    size: int
    etag: str  # the store's own tag; informational


class BlobReader(Protocol):
    """A stream opened by :meth:`BlobStore.open`; must be closed even if not fully read."""

    def __aiter__(self) -> AsyncIterator[bytes]: ...

    async def aclose(self) -> None: ...


@runtime_checkable
class LocalFile(Protocol):
    """Optional, on a :class:`BlobReader`: its bytes are a local file, which the HTTP layer may send
    without reading them itself (sendfile, or one read for a small window; ``http/sendfile.py``).
    The reader still owns the file: ``aclose`` closes it."""

    def local_file(self) -> BinaryIO: ...


class BlobStore(Protocol):
    async def start(self) -> None:
        """Open connections; called once from the app's cleanup context."""

    async def close(self) -> None: ...

    async def init(self) -> None:
        """Create the bucket / root directory if missing (idempotent)."""

    async def ping(self) -> None:
        """Raise StorageError when the store cannot be reached."""

    async def write(self, key: str, chunks: AsyncIterator[bytes], *, size_hint: int | None) -> WriteResult:
        """Store everything ``chunks`` yields under ``key``.

        Either the whole object becomes visible, or (on any exception from ``chunks``, from the store, or
        cancellation) nothing does and no partial upload is left behind; the exception propagates.
        ``size_hint`` is the announced length when known; it only tunes part sizes.
        """

    async def open(self, key: str, offset: int = 0, length: int | None = None) -> BlobReader:
        """Open ``length`` bytes from ``offset`` (to the end when None). Raises NotFound if missing."""

    async def delete(self, key: str) -> None:
        """Remove ``key``; deleting a missing key is not an error."""

    async def exists(self, key: str) -> bool: ...


@dataclass(frozen=True)
class BlobEntry:
    key: str
    size: int
    modified: float  # UNIX seconds


@runtime_checkable
class BlobInventory(Protocol):
    """Optional: stores that can enumerate what they hold, for garbage collection."""

    def list_blobs(self, prefix: str) -> AsyncIterator[BlobEntry]: ...

    async def abort_stale_uploads(
        self, older_than: float, keep: Callable[[str], Awaitable[bool]] | None = None
    ) -> int:
        """Abandon partial uploads (multipart uploads, temp files) started before ``older_than``, except
        those whose key ``keep`` claims (a resumable upload still in progress)."""


@runtime_checkable
class Sized(Protocol):
    """Optional: a stored object's size without reading it (envelope encryption finds its last chunk)."""

    async def size_of(self, key: str) -> int: ...


@runtime_checkable
class Presigner(Protocol):
    """Optional: stores that can hand out short-lived direct download URLs."""

    async def presign_get(
        self, key: str, *, expires_in: int, filename_header: str, content_type: str
    ) -> str: ...


@runtime_checkable
class BlobMover(Protocol):
    """Optional store capability: give a stored blob another key without streaming it through us
    (a rename on disk, a server-side copy then delete on S3). Content-addressed storage needs it."""

    async def move(self, src: str, dst: str, *, size: int) -> None: ...


@dataclass(frozen=True)
class CatalogLimits:
    """What one catalog write may hold. Both adapters declare DynamoDB's figure and enforce it, so a
    change too big for DynamoDB fails in the embedded default's tests too."""

    max_transaction_items: int = 100


class Lifecycle(Protocol):
    limits: CatalogLimits

    async def start(self) -> None:
        """Open connections; called once from the app's cleanup context."""

    async def close(self) -> None: ...

    async def init(self) -> None:
        """Create the table/schema if missing (idempotent)."""

    async def ping(self) -> None:
        """Raise CatalogError when the catalog cannot be reached."""

    async def shared_secret(self, name: str) -> bytes:
        """32 random bytes shared by every process using this catalog, created on first use (a
        conditional put, so racing processes agree on one)."""


class AssetCatalog(Protocol):
    async def create_assets(self, items: Sequence[NewAsset], events: Sequence[Event] = ()) -> None:
        """Write assets, their first versions and tokens in one transaction (all or nothing)."""

    async def get_asset(self, asset_id: str) -> Asset | None: ...

    async def get_version(self, asset_id: str, version: int) -> Version | None: ...

    async def get_assets(self, asset_ids: Sequence[str]) -> dict[str, Asset]:
        """Batch read (zips of thousands of members); missing ids are simply absent."""

    async def get_versions(self, keys: Sequence[tuple[str, int]]) -> dict[tuple[str, int], Version]: ...

    async def list_versions(self, asset_id: str) -> list[Version]: ...

    async def set_crc32(self, asset_id: str, version: int, crc32: int, sha256: str | None = None) -> None:
        """Record a version's CRC-32 (and sha256, for adopted objects) when it lacks them (imported data);
        no-op if the version is gone."""

    async def set_scan(self, asset_id: str, version: int, state: str, detail: str) -> bool:
        """Record a version's scan state (and in the asset's copy of its latest version); False if gone."""

    async def all_asset_ids(self) -> list[str]:
        """Every asset id: a full scan, for admin commands only (``gateway scan --all``)."""

    async def add_version(self, asset: Asset, version: Version, events: Sequence[Event] = ()) -> bool:
        """Add ``version`` (= asset.latest_version + 1) if the latest is still ``asset.latest_version``.

        One transaction (META update conditioned on the old number + new version item); False when
        another upload won the number, so concurrent uploads never share one.
        """

    async def list_owner_assets(
        self, owner: str, limit: int, before: str | None
    ) -> tuple[list[str], str | None]:
        """Asset ids of ``owner``, newest first, from the owner partition; plus the key to continue."""


class TokenCatalog(Protocol):
    async def put_token(self, token: Token, events: Sequence[Event] = ()) -> None:
        """Store a token and its per-asset pointers. The token item is written last, so the link works
        only once everything it needs exists (a bundle's pointers may take several writes)."""

    async def get_token(self, token_hash: str) -> Token | None: ...

    async def claim_download(self, token_hash: str, now: float) -> Token | None:
        """Atomically count one download if the token is live and under its limit.

        Returns the updated token, or None when the claim was refused (expired, revoked, exhausted or
        gone). One conditional write: exact under any concurrency, across processes.
        """

    async def release_download(self, token_hash: str) -> None:
        """Undo one claim whose response never started (conditional: never below zero)."""

    async def open_retrieval(self, retrieval: Retrieval, now: float) -> bool:
        """Claim one download (as :meth:`claim_download`) and start ``retrieval`` -- replacing any older
        one of the same client -- in one transaction; False when the claim was refused."""

    async def charge_retrieval(
        self, token_hash: str, client: str, amount: int, limit: int, now: float, expires_at: int
    ) -> bool:
        """Add ``amount`` bytes to the client's live retrieval if the total stays within ``limit`` and
        the token is neither revoked nor expired (one conditional write), and move its window's end to
        ``expires_at``. False: no live retrieval, or over its allowance."""

    async def refund_retrieval(self, token_hash: str, client: str, amount: int) -> None:
        """Give back bytes charged but never sent (an interrupted transfer); never below zero."""

    async def record_downloads(self, records: Sequence[DownloadRecord]) -> None:
        """Append entries to links' download histories (each expires with its ``expires_at``); written
        in batches by ``service/download_history.py``, so one write carries many responses."""

    async def list_downloads(self, token_hash: str, limit: int) -> list[DownloadRecord]:
        """The link's history, newest first."""

    async def wrong_guesses(self, token_hash: str, minute: int) -> int:
        """Wrong password guesses recorded for the link in that minute."""

    async def add_wrong_guess(self, token_hash: str, minute: int, limit: int) -> bool:
        """Record one wrong guess if fewer than ``limit`` were made this minute (one conditional write);
        False: the link is throttled."""

    async def revoke_token(self, token_hash: str, events: Sequence[Event] = ()) -> bool:
        """Mark a token revoked; True only for the call that revoked it (False: unknown or already)."""

    async def list_tokens(self, asset_id: str) -> list[Token]:
        """Every token item reachable from the asset's token pointers (live or not)."""

    async def find_token_hash(self, asset_id: str, token_id: str) -> str | None: ...


class RetentionIndex(Protocol):
    async def expire_asset(self, asset_id: str, at: int) -> bool:
        """Make the asset unreadable from ``at`` and enter it in the expiry index (one transaction)."""

    async def due_assets(self, now: float, limit: int) -> list[DueAsset]:
        """Assets whose retention ended by ``now``, from the day-bucketed expiry index (no scans)."""

    async def delete_asset(
        self, asset_id: str, *, due: DueAsset | None = None, events: Sequence[Event] = ()
    ) -> bool:
        """Remove the asset's items, its tokens, owner and expiry entries.

        Items beyond one transaction (many versions, many tokens) go first in batches -- the asset is
        already unreadable when this runs -- and the asset's META item goes last, conditionally, so the
        call that removes it is the one that returns True; False when it was already gone (then only
        ``due``'s expiry entry, if given, is removed). Safe to race and to repeat after a crash.
        """


class Catalog(Lifecycle, AssetCatalog, TokenCatalog, RetentionIndex, Protocol):
    """The whole catalog, as adapters implement it."""


@runtime_checkable
class ExpiredItemPurger(Protocol):
    """Optional: catalogs without native TTL delete expired token items themselves."""

    async def purge_expired(self, now: float) -> int: ...


# -- resumable uploads (tus) ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Partial:
    """How far a resumable blob has durably got: what a checkpoint records in the upload's session."""

    offset: int  # bytes durably stored
    ref: str  # the store's own handle (an S3 multipart upload id; "" before the first full part)
    parts: int  # full parts written (S3); the rest of ``offset`` is in the staging object


Checkpoint = Callable[[Partial], Awaitable[None]]


class ResumableWrites(Protocol):
    """Optional store capability: a blob written by several requests, possibly on several processes.

    ``key`` is where the finished blob will live, ``staging`` where the store keeps what is not yet
    part of it; both are chosen by the service. Nothing here lives in process memory between calls.
    """

    def part_size_for(self, length: int | None) -> int:
        """The unit of durable progress for a blob of ``length`` bytes (None: not known yet)."""

    async def append(
        self,
        key: str,
        staging: str,
        part_size: int,
        at: Partial,
        chunks: AsyncIterator[bytes],
        checkpoint: Checkpoint,
        *,
        keep_partial: bool,
    ) -> Partial:
        """Add ``chunks`` after ``at`` and return the new durable state.

        ``checkpoint`` records durable progress and renews the caller's lease; it raises to stop when the
        lease was lost. Stores call it whenever more bytes became durable, at least at the end, and
        before any write that could overwrite another request's (S3: before each part, with the
        durable state so far and the multipart upload id). If ``chunks`` fails (client gone) and
        ``keep_partial``, what was received is made durable and checkpointed before the exception
        propagates; without ``keep_partial`` (a checksum still to verify) nothing of this call counts.
        """

    async def complete(self, key: str, staging: str, part_size: int, at: Partial) -> None:
        """Turn the appended bytes into the blob ``key`` and drop the staging data."""

    async def abort(self, key: str, staging: str, at: Partial) -> None:
        """Drop everything appended (idempotent)."""


@runtime_checkable
class HasResumableWrites(Protocol):
    """Optional store capability: resumable writes (the filesystem and S3 both have it)."""

    def resumable_writes(self) -> ResumableWrites: ...


class UploadSessions(Protocol):
    """The catalog's part of resumable uploads: one item per upload plus an expiry index entry."""

    async def create_upload(self, session: UploadSession) -> None: ...

    async def get_upload(self, upload_id: str) -> UploadSession | None: ...

    async def swap_upload(self, session: UploadSession) -> UploadSession | None:
        """Store ``session`` with ``rev + 1`` if the stored one still has ``session.rev``; the stored
        result, or None when another write got there first (or the upload is gone)."""

    async def delete_upload(self, session: UploadSession) -> None:
        """Remove the upload and its expiry entry (idempotent)."""

    async def due_uploads(self, now: float, limit: int) -> list[UploadSession]:
        """Uploads whose ``expires_at`` has passed, oldest first."""


@runtime_checkable
class HasUploadSessions(Protocol):
    """Optional catalog capability: storing resumable upload sessions."""

    def upload_sessions(self) -> UploadSessions: ...


class UploadLinks(Protocol):
    """The catalog's part of upload links: the link, its owner's index entry, an exact use counter."""

    async def create_link(self, link: UploadLink) -> None: ...

    async def get_link(self, token_hash: str) -> UploadLink | None: ...

    async def claim_upload(self, token_hash: str, now: float) -> UploadLink | None:
        """Count one upload if the link is live and not used up (one conditional write); None if not."""

    async def release_upload(self, token_hash: str) -> None:
        """Give a claim back (the upload failed); never below zero."""

    async def list_links(self, owner: str) -> list[UploadLink]: ...

    async def find_link_hash(self, owner: str, link_id: str) -> str | None: ...

    async def revoke_link(self, token_hash: str) -> bool: ...


@runtime_checkable
class HasUploadLinks(Protocol):
    """Optional catalog capability: storing upload links."""

    def upload_links(self) -> UploadLinks: ...


@dataclass(frozen=True)
class Usage:
    """What a quota scope stores: bytes and assets, open holds included (service/quotas.py)."""

    bytes: int = 0
    assets: int = 0


@dataclass(frozen=True)
class Hold:
    """Room reserved in a scope for one upload until it commits (settle) or fails (release).

    Crash-safe: a hold outlives a dead process as an item with ``expires``; the sweeper then settles it
    if the upload did commit (a version with ``blob_key`` exists) and releases it otherwise.
    """

    scope: str
    hold_id: str
    bytes: int
    assets: int
    expires: int
    asset_id: str
    blob_key: str = ""


class QuotaLedger(Protocol):
    """Per-scope usage counters and holds, every change one catalog transaction (exact across processes)."""

    async def usage(self, scope: str) -> Usage: ...

    async def hold(self, hold: Hold, max_bytes: int | None, max_assets: int | None) -> bool:
        """Add the hold to the scope's usage if the result stays within the limits; False if not."""

    async def grow(self, hold: Hold, to_bytes: int, max_bytes: int | None) -> bool:
        """Raise a hold to ``to_bytes`` within the limit; False if it does not fit (or the hold is gone)."""

    async def settle(self, hold: Hold, actual_bytes: int) -> bool:
        """The upload committed: drop the hold, usage corrected to ``actual_bytes``; False if already gone."""

    async def release(self, hold: Hold) -> bool:
        """The upload failed: drop the hold and give its room back; False if already gone."""

    async def charge(self, scope: str, bytes_: int, assets: int) -> None:
        """Unconditional change (negative for deletions)."""

    async def due_holds(self, now: float, limit: int) -> list[Hold]:
        """Holds whose ``expires`` has passed, oldest first."""


@runtime_checkable
class HasQuotaLedger(Protocol):
    """Optional catalog capability: quota usage and holds."""

    def quota_ledger(self) -> QuotaLedger: ...


@dataclass(frozen=True)
class BlobRef:
    """A content-addressed blob shared by the versions that hold a member in it (service/dedup.py)."""

    ref_id: str
    blob_key: str
    members: int


class BlobRefs(Protocol):
    """Reference counts of shared blobs; members are per upload, so every change is idempotent."""

    async def join(self, ref_id: str, member: str) -> BlobRef | None:
        """Add ``member`` to an existing ref; None when there is none (the caller creates it)."""

    async def create(self, ref_id: str, blob_key: str, member: str) -> bool:
        """Create the ref with one member; False when another upload created it first."""

    async def leave(self, ref_id: str, member: str) -> str | None:
        """Remove ``member``; the blob key to delete when it was the last one, else None."""


@runtime_checkable
class HasBlobRefs(Protocol):
    """Optional catalog capability: reference-counted shared blobs."""

    def blob_refs(self) -> BlobRefs: ...


@dataclass(frozen=True)
class Queued:
    """An outbox entry as read: its key and the lease value a claim must still find (``lease``)."""

    pk: str
    sk: str
    lease_ms: int
    next_ms: int
    event: Event | None = None  # an event to fan out
    ref: tuple[str, str] | None = None  # or a delivery's pointer: (subscription, delivery id)
    delivery: Delivery | None = None  # that delivery, loaded once the pointer is leased


class Outbox(Protocol):
    """The transactional outbox (``catalog/outbox.py``): events written with the changes they describe
    (the ``events`` argument of the write methods above), fanned out to subscriptions, delivered by
    whichever gateway process holds the lease. At least once; ids are stable."""

    async def publish(self, events: Sequence[Event]) -> None:
        """Events with no other change to ride on (a completed download): one write."""

    async def due(self, now: float, limit: int) -> list[Queued]:
        """Entries whose time has come and whose lease (if any) has run out."""

    async def lease(self, entry: Queued, until: float) -> Queued | None:
        """Claim ``entry`` until ``until`` (a pointer: with its delivery loaded); None when another
        process changed it first."""

    async def drop(self, entry: Queued) -> bool:
        """Remove a claimed pointer whose delivery no longer exists."""

    async def fan_out(self, entry: Queued, deliveries: Sequence[Delivery]) -> bool:
        """Replace a claimed event by its deliveries (idempotent: delivery ids are deterministic)."""

    async def reschedule(self, entry: Queued, delivery: Delivery) -> bool:
        """A failed attempt: record it, release the lease, wait until ``delivery.next_at``."""

    async def finish(self, entry: Queued, delivery: Delivery, keep_until: int) -> bool:
        """Delivered or failed for good: out of the queue, into the subscription's history."""

    async def deliveries(self, subscription_id: str, limit: int) -> list[Delivery]:
        """A subscription's deliveries, newest first: pending ones and the kept history."""

    async def schedule(self, delivery: Delivery) -> None:
        """A delivery due at ``delivery.next_at`` (work for later: a transfer's copy that expires)."""

    async def requeue(self, subscription_id: str, delivery_id: str, now: float) -> Delivery | None:
        """A finished delivery back into the queue (``POST …/retry``); None if unknown."""

    async def put_subscription(self, sub: Subscription) -> None: ...

    async def subscriptions(self) -> list[Subscription]: ...

    async def delete_subscription(self, sub_id: str) -> bool:
        """False when there was no such subscription; its queued deliveries end as failed."""


@runtime_checkable
class HasOutbox(Protocol):
    """Optional catalog capability: events and their delivery."""

    def outbox(self) -> Outbox: ...


class ThumbnailRecords(Protocol):
    """Stored thumbnails (``catalog/thumbnail_catalog.py``): per version and spec, plus a purge index."""

    async def get(self, asset_id: str, version: int, key: str) -> Thumbnail | None: ...

    async def put(self, t: Thumbnail) -> None: ...

    async def of_asset(self, asset_id: str) -> list[Thumbnail]: ...

    async def indexed(self, owner: str | None = None) -> list[Thumbnail]: ...

    async def forget(self, thumbs: list[Thumbnail]) -> None: ...


class TransferRecords(Protocol):
    """Transfer jobs (``catalog/transfer_catalog.py``), as JSON-shaped dicts (``service/transfers.py``)."""

    async def get(self, job_id: str) -> dict[str, Any] | None: ...

    async def put(self, job: dict[str, Any]) -> None: ...


@runtime_checkable
class HasTransfers(Protocol):
    """Optional catalog capability: transfer jobs."""

    def transfers(self) -> TransferRecords: ...


@runtime_checkable
class HasThumbnails(Protocol):
    """Optional catalog capability: thumbnail records."""

    def thumbnails(self) -> ThumbnailRecords: ...
