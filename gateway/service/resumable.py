"""Resumable uploads (tus 1.0): the state machine, written against the ports, never HTTP.

An upload is a catalog session (:class:`~gateway.records.UploadSession`) plus the store's resumable
writes. Every change to a session is a compare-and-swap on its ``rev``, which is what makes uploads safe
across processes:

- a PATCH first takes the session's *lease* (one swap: offset as the client says, no live lease), so a
  second PATCH on the same upload, in this process or another, gets 409 and never writes a byte;
- the store checkpoints durable progress while the body streams (each checkpoint is a swap that also
  renews the lease), so a process killed mid-PATCH loses only bytes it never acknowledged;
- when the last byte is durable the blob is completed in storage, then committed to the catalog exactly
  as a raw upload is (same record, digests, transaction, share link).

Digests: sha256 and CRC32 cannot be carried between processes (hash state is not serialisable), so each
process keeps the running hash of uploads it is appending to, keyed by upload and offset. When the next
PATCH lands elsewhere or after a restart, the hash is computed by reading the finished blob back once.

Why a little over 350 lines: creation, appending, completion and expiry all move the same session
through the same lease and compare-and-swap; the PATCH body and the digests (resumable_body.py) and
concatenation (resumable_concat.py) already live apart.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
import secrets
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

from gateway.errors import (
    BadRequest,
    Conflict,
    GatewayError,
    Gone,
    NotFound,
    PayloadTooLarge,
    StorageError,
)
from gateway.hashing import Digests
from gateway.names import guess_content_type
from gateway.ports import Partial, ResumableWrites, UploadSessions
from gateway.records import Asset, Placement, UploadSession, Version
from gateway.service.assets import AssetReader
from gateway.service.context import Backends
from gateway.service.params import TokenRequest
from gateway.service.resumable_body import ChunkChecksum, PatchBody, RunningDigest, RunningDigests
from gateway.service.resumable_concat import concatenate
from gateway.service.staging import Staged
from gateway.service.tokens import IssuedToken
from gateway.service.uploads import Uploads
from gateway.storage.registry import Storage

log = logging.getLogger("gateway.resumable")
LEASE_SECONDS = 300  # a PATCH renews it before every storage write, so only a stuck write outlives it
HASH_CACHE = 1024  # running hashes kept per process (a few hundred bytes each)
SWEEP_BATCH = 100
_ID = re.compile(r"[0-9a-f]{32}")


@dataclass(frozen=True)
class Completed:
    asset: Asset
    version: Version
    issued: IssuedToken | None


@dataclass(frozen=True)
class NewUpload:
    """What a creation request asks for, validated by the caller (metadata decoded, link parsed)."""

    owner: str
    length: int | None
    metadata: dict[str, str]
    name: str
    content_type: str | None
    share: TokenRequest | None
    retention: int | None
    asset: Asset | None  # upload a new version of this asset
    concat: str = ""
    link: str = ""  # the upload link's token hash: its claim is released if the upload never finishes
    max_size: int | None = None
    placement: Placement | None = None  # None: the default storage


class Resumable:
    def __init__(self, backends: Backends, uploads: Uploads, assets: AssetReader) -> None:
        self.b = backends
        self.uploads = uploads
        self.assets = assets
        self._digests = RunningDigests(HASH_CACHE)

    def storage(self, session: UploadSession | NewUpload) -> Storage:
        """The storage the upload writes to (recorded in the session at creation)."""
        placement = session.placement
        if isinstance(placement, dict):
            return self.b.storages.get(placement.get("storage", ""))
        return self.b.storages.get(placement.storage if placement else "")

    def writes(self, session: UploadSession | NewUpload) -> ResumableWrites:
        writes = self.storage(session).resumable
        if writes is None:
            raise NotFound("resumable uploads are not available with this storage", code="not_supported")
        return writes

    @property
    def sessions(self) -> UploadSessions:
        if self.b.sessions is None:
            raise NotFound("resumable uploads are not available with this catalog", code="not_supported")
        return self.b.sessions

    # -- creation --------------------------------------------------------------------------------------
    def _limit(self, max_size: int | None) -> int:
        limit = self.b.settings.max_upload_size
        return limit if max_size is None else min(limit, max_size)

    async def create(self, new: NewUpload) -> UploadSession:
        limit = self._limit(new.max_size)
        if new.length is not None and new.length > limit:
            raise PayloadTooLarge(f"Upload-Length exceeds the maximum of {limit} bytes")
        if new.length is not None and new.placement is not None:  # early; exact at completion
            await self.uploads.quotas.precheck(new.placement.scope, new.length, int(new.asset is None))
        upload_id = secrets.token_hex(16)
        asset_id = new.asset.id if new.asset is not None else str(uuid.uuid4())
        partial = new.concat == "partial"
        now = self.b.clock()
        metadata = dict(new.metadata)
        prefix = new.placement.prefix if new.placement else ""
        metadata["filename"] = new.name
        if new.content_type:
            metadata["filetype"] = new.content_type
        session = UploadSession(
            id=upload_id,
            owner=new.owner,
            created=now,
            expires_at=int(now) + self.b.settings.resumable_expiry,
            length=new.length,
            blob_key=prefix
            + (f"uploads/{upload_id}.bin" if partial else f"assets/{asset_id}/tus-{upload_id}"),
            staging_key=f"{prefix}uploads/{upload_id}.part",
            part_size=self.writes(new).part_size_for(new.length),
            asset_id=asset_id,
            metadata=metadata,
            concat=new.concat,
            new_version=new.asset is not None,
            share=None if new.share is None else dataclasses.asdict(new.share),
            retention=new.retention,
            link=new.link,
            max_size=new.max_size,
            placement=None if new.placement is None else new.placement.as_dict(),
        )
        await self.sessions.create_upload(session)
        return session

    async def find(self, upload_id: str, *, owner: str, link: str | None = None) -> UploadSession:
        """The upload, if it is the caller's and not expired (404 unknown or not yours, 410 expired).

        ``link``: the caller holds an upload link (its token hash) and reaches only what came through it.
        """
        if not _ID.fullmatch(upload_id):
            raise NotFound("unknown upload", code="upload_not_found")
        session = await self.sessions.get_upload(upload_id)
        if session is None or session.owner != owner or (link is not None and session.link != link):
            raise NotFound("unknown upload", code="upload_not_found")
        if session.expires_at <= self.b.clock() and not session.finished:
            raise Gone("this upload has expired", code="upload_expired")
        return session

    # -- appending -------------------------------------------------------------------------------------
    async def append(
        self,
        session: UploadSession,
        *,
        offset: int,
        chunks: AsyncIterator[bytes],
        length: int | None = None,
        checksum: ChunkChecksum | None = None,
        size_hint: int | None = None,
    ) -> tuple[UploadSession, Completed | None]:
        """One PATCH: lease, stream, checkpoint, release; completes the upload with its last byte."""
        if session.finished or session.concat == "final":
            raise Conflict("this upload is already complete", code="upload_complete")
        if offset != session.offset:
            raise Conflict(f"Upload-Offset {offset} does not match the upload's {session.offset}")
        if length is not None:
            if session.length is not None and session.length != length:
                raise BadRequest("Upload-Length cannot change", code="invalid_upload_length")
            if length < session.offset or length > self._limit(session.max_size):
                raise PayloadTooLarge(f"Upload-Length {length} is not allowed here")
        total = length if length is not None else session.length
        room = (total if total is not None else self._limit(session.max_size)) - offset
        if size_hint is not None and size_hint > room:
            raise PayloadTooLarge(f"the body of {size_hint} bytes goes past the upload's length")
        cur = await self._lease(dataclasses.replace(session, length=total))
        running = self._digests.resume(cur.id, cur.offset)  # None: bytes before `offset` unseen here
        seen = RunningDigest(cur.offset) if running is None else running

        async def checkpoint(p: Partial) -> None:
            nonlocal cur
            now = self.b.clock()
            got = await self.sessions.swap_upload(
                dataclasses.replace(
                    cur, offset=p.offset, ref=p.ref, parts=p.parts, lease_until=now + LEASE_SECONDS
                )
            )
            if got is None:
                raise Conflict("the upload was changed by another request", code="upload_locked")
            cur = got

        body = PatchBody(chunks, room, checksum, seen)
        completed = None
        try:
            try:
                await self.writes(cur).append(
                    cur.blob_key,
                    cur.staging_key,
                    cur.part_size,
                    Partial(cur.offset, cur.ref, cur.parts),
                    body,
                    checkpoint,
                    keep_partial=checksum is None,
                )
            finally:
                await asyncio.shield(body.settle())
                if running is not None and seen.offset == cur.offset:
                    self._digests.keep(cur.id, seen)
                else:
                    self._digests.drop(cur.id)
            if cur.length is not None and cur.offset == cur.length:
                cur, completed = await self._complete(cur)  # still holding the lease
        finally:
            cur = await self._release(cur)
        return cur, completed

    async def _lease(self, session: UploadSession) -> UploadSession:
        now = self.b.clock()
        if session.lease and session.lease_until > now:
            raise Conflict("another request is appending to this upload", code="upload_locked")
        got = await self.sessions.swap_upload(
            dataclasses.replace(session, lease=secrets.token_hex(8), lease_until=now + LEASE_SECONDS)
        )
        if got is None:
            raise Conflict("another request is appending to this upload", code="upload_locked")
        return got

    async def _release(self, session: UploadSession) -> UploadSession:
        """Give the lease back (shielded: a cancelled request must not keep the upload locked)."""

        async def release() -> UploadSession:
            got = await self.sessions.swap_upload(dataclasses.replace(session, lease="", lease_until=0.0))
            if got is None:  # our view is stale (a step failed after writing): release the latest, if ours
                latest = await self.sessions.get_upload(session.id)
                if latest is not None and latest.lease == session.lease:
                    got = await self.sessions.swap_upload(
                        dataclasses.replace(latest, lease="", lease_until=0.0)
                    )
            return got or session

        try:
            return await asyncio.shield(release())
        except GatewayError:
            return session  # the lease then lapses by itself

    # -- completion ------------------------------------------------------------------------------------
    async def finish(self, session: UploadSession) -> tuple[UploadSession, Completed | None]:
        """Complete an upload whose bytes are all there (a zero-length one, or one whose completion was
        cut short) under its lease; when another request holds the lease, that one completes it."""
        try:
            cur = await self._lease(session)
        except Conflict:
            return session, None
        completed = None
        try:
            cur, completed = await self._complete(cur)
        finally:
            cur = await self._release(cur)
        return cur, completed

    async def _complete(self, session: UploadSession) -> tuple[UploadSession, Completed | None]:
        """Blob whole in storage, then the asset committed; re-entrant after a failure in between.
        The caller holds the lease, so no other request completes (or appends to) it meanwhile."""
        cur = session
        if not cur.stored:
            await self.writes(cur).complete(
                cur.blob_key, cur.staging_key, cur.part_size, Partial(cur.offset, cur.ref, cur.parts)
            )
            cur = await self.swap(dataclasses.replace(cur, stored=True))
        if cur.concat == "partial":
            return cur, None
        digests = await self._digests_of(cur)
        staged = Staged(
            asset_id=cur.asset_id,
            name=cur.metadata.get("filename", "upload.bin"),
            content_type=cur.metadata.get("filetype") or guess_content_type(cur.metadata.get("filename", "")),
            blob_key=cur.blob_key,
            digests=digests,
            storage=self.storage(cur).name,
            scope=Placement.of(cur.placement, cur.owner).scope,
        )
        completed = await self.commit(cur, staged)
        cur = await self.swap(dataclasses.replace(cur, done_version=completed.version.version))
        self._digests.drop(cur.id)
        return cur, completed

    async def commit(self, session: UploadSession, staged: Staged) -> Completed:
        """The catalog write that makes the upload an asset, as for a raw upload. A failed write keeps the
        blob: the upload stays complete-but-uncommitted, the next HEAD/GET retries, and an upload that
        expires so is reclaimed with its blob by the sweeper."""
        share = None if session.share is None else TokenRequest(**session.share)
        if session.new_version:
            asset, _ = await self.assets.find(session.asset_id, owner=session.owner)
            version = await self.uploads.commit_version(asset, staged, owner=session.owner)
            return Completed(asset, version, None)
        link_id = None
        if session.link and session.concat != "partial" and self.b.upload_links is not None:
            link = await self.b.upload_links.get_link(session.link)
            link_id = None if link is None else link.link_id
        pairs, issued = await self.uploads.commit(
            [staged],
            owner=session.owner,
            token=share,
            retention=session.retention,
            keep_on_failure=True,
            link_id=link_id,
        )
        [(asset, version)] = pairs
        return Completed(asset, version, issued)

    async def _digests_of(self, session: UploadSession) -> Digests:
        running = self._digests.at(session.id, session.offset)
        if running is None:
            running = RunningDigest()
            reader = await self.storage(session).store.open(session.blob_key)
            try:
                async for chunk in reader:
                    running.update(chunk)
            finally:
                await reader.aclose()
            if running.offset != session.offset:
                raise StorageError("the finished upload's size does not match its offset")
        return Digests(size=running.offset, sha256=running.sha.hexdigest(), crc32=running.crc)

    async def swap(self, session: UploadSession) -> UploadSession:
        got = await self.sessions.swap_upload(session)
        if got is None:
            raise Conflict("the upload was changed by another request", code="upload_locked")
        return got

    async def result(self, session: UploadSession) -> tuple[Asset, Version] | None:
        """The asset a finished upload became (None while unfinished, or for a partial upload)."""
        if session.done_version is None:
            return None
        return await self.assets.find(session.asset_id, session.done_version, owner=session.owner)

    # -- concatenation ---------------------------------------------------------------------------------
    async def concatenate(self, new: NewUpload, partial_ids: list[str]) -> tuple[UploadSession, Completed]:
        return await concatenate(self, new, partial_ids)

    # -- termination and expiry ------------------------------------------------------------------------
    async def terminate(self, session: UploadSession) -> None:
        """DELETE: the upload's bytes go (an asset it already became stays), then the session."""
        if session.lease and session.lease_until > self.b.clock():
            raise Conflict("a request is appending to this upload", code="upload_locked")
        await self.forget(session)

    async def forget(self, session: UploadSession) -> None:
        if session.done_version is None and session.concat != "final":
            await self.writes(session).abort(
                session.blob_key, session.staging_key, Partial(0, session.ref, 0)
            )
            if session.stored:
                await self.storage(session).store.delete(session.blob_key)
            if session.link and session.concat != "partial" and self.b.upload_links is not None:
                await self.b.upload_links.release_upload(session.link)  # it never became an upload
        self._digests.drop(session.id)
        await self.sessions.delete_upload(session)

    async def sweep_once(self) -> int:
        """Expired uploads: storage reclaimed (multipart aborted, staging deleted), session removed."""
        if self.b.sessions is None:
            return 0
        now = self.b.clock()
        removed = 0
        for session in await self.sessions.due_uploads(now, SWEEP_BATCH):
            if session.lease and session.lease_until > now:
                continue  # being appended to right now: next pass
            try:
                await self.forget(session)
                removed += 1
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("expired upload %s not reclaimed yet: %s", session.id, type(exc).__name__)
        return removed
