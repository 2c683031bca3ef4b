"""tus concatenation: parts uploaded in parallel (tus-js-client ``parallelUploads``) become one asset.

Each part is an ordinary resumable upload marked ``partial`` whose blob is completed but never becomes an
asset. The final upload streams the parts' blobs, in order, through the same staging and digesting path
as any upload (so the asset gets its sha256 and CRC32 on the way) and deletes the parts afterwards.
Copying server-side (S3 UploadPartCopy) would avoid the bytes passing through the gateway, but parts
smaller than 5 MiB -- the common case for small files uploaded in parallel -- cannot be copied as
parts, so one streaming path serves every store and every part size.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from gateway.errors import BadRequest, GatewayError
from gateway.records import UploadSession

if TYPE_CHECKING:
    from gateway.service.resumable import Completed, NewUpload, Resumable


async def concatenate(
    r: Resumable, new: NewUpload, partial_ids: list[str]
) -> tuple[UploadSession, Completed]:
    """A final upload: the partial uploads' blobs, in order, streamed into one new asset."""
    if not partial_ids:
        raise BadRequest("Upload-Concat: final needs at least one partial upload", code="invalid_concat")
    parts = [await r.find(pid, owner=new.owner, link=new.link or None) for pid in partial_ids]
    if any(p.concat != "partial" or not p.stored for p in parts):
        raise BadRequest("every part must be a finished partial upload", code="invalid_concat")
    total = sum(p.offset for p in parts)
    session = await r.create(dataclasses.replace(new, length=total, concat="final"))

    async def chunks() -> AsyncIterator[bytes]:
        for part in parts:
            reader = await r.storage(part).store.open(part.blob_key)
            try:
                async for chunk in reader:
                    yield chunk
            finally:
                await reader.aclose()

    staged = await r.uploads.stage(
        name=session.metadata["filename"],
        content_type=session.metadata.get("filetype"),
        chunks=chunks(),
        size_hint=total,
        asset_id=session.asset_id,
        placement=new.placement,
        new_asset=not session.new_version,
    )
    completed = await r.commit(session, staged)
    session = await r.swap(
        dataclasses.replace(
            session,
            offset=total,
            stored=True,
            blob_key=staged.blob_key,
            done_version=completed.version.version,
        )
    )
    for part in parts:
        with contextlib.suppress(GatewayError):
            await r.forget(part)
    return session, completed
