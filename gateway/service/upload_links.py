"""Upload links ("file requests"): a URL that lets anyone upload into its owner's assets, within limits.

The link's secret is a share token (same strength, only its sha256 stored). What an upload through it may
be is decided before a byte is read: the type against ``content_types``, an announced length against
``max_size``, and one of ``max_uploads`` claimed with a single conditional catalog write (exact across
processes). A body longer than it announced, or one that never announced, is cut at ``max_size`` by the
same digesting stream every upload goes through, and the failed upload releases its claim.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from gateway.errors import Gone, NotFound, PayloadTooLarge, UnsupportedMediaType
from gateway.names import guess_content_type
from gateway.ports import UploadLinks
from gateway.records import Placement, UploadLink
from gateway.service.context import Backends
from gateway.service.params import TokenRequest
from gateway.tokens import hash_token, new_token, new_token_id, well_formed


@dataclass(frozen=True)
class LinkRequest:
    expiry_seconds: int
    max_uploads: int | None
    max_size: int | None
    content_types: tuple[str, ...]
    label: str
    share: TokenRequest | None
    placement: Placement | None = None  # the creator's: uploads through the link go there


def type_allowed(content_type: str, patterns: tuple[str, ...]) -> bool:
    """``image/*``-style patterns; parameters and case ignored. No patterns: everything."""
    if not patterns:
        return True
    essence = content_type.split(";", 1)[0].strip().lower()
    major = essence.split("/", 1)[0]
    for pattern in patterns:
        p = pattern.strip().lower()
        if p in ("*/*", essence) or (p.endswith("/*") and p[:-2] == major):
            return True
    return False


class UploadLinkService:
    def __init__(self, backends: Backends) -> None:
        self.b = backends

    @property
    def links(self) -> UploadLinks:
        if self.b.upload_links is None:
            raise NotFound("upload links are not available with this catalog", code="not_supported")
        return self.b.upload_links

    async def create(self, owner: str, req: LinkRequest) -> tuple[UploadLink, str]:
        secret = new_token()
        now = self.b.clock()
        link = UploadLink(
            token_hash=hash_token(secret),
            link_id=new_token_id(),
            owner=owner,
            created=now,
            expires_at=math.ceil(now) + req.expiry_seconds,
            max_uploads=req.max_uploads,
            max_size=req.max_size,
            content_types=req.content_types,
            label=req.label,
            share=None if req.share is None else asdict(req.share),
            placement=None if req.placement is None else req.placement.as_dict(),
        )
        await self.links.create_link(link)
        return link, secret

    async def resolve(self, secret: str, *, continuing: bool = False) -> UploadLink:
        """The link behind a URL: 404 unknown, 410 revoked, expired or used up.

        ``continuing``: a resumable upload already counted against the link may go on after the link
        is used up or has expired (it was admitted while live); only revocation stops it.
        """
        if not well_formed(secret):
            raise NotFound("unknown upload link", code="upload_link_not_found")
        link = await self.links.get_link(hash_token(secret))
        if link is None:
            raise NotFound("unknown upload link", code="upload_link_not_found")
        self._check(link, continuing=continuing)
        return link

    def _check(self, link: UploadLink, *, continuing: bool = False) -> None:
        if link.revoked:
            raise Gone("this upload link has been revoked", code="upload_link_revoked")
        if continuing:
            return
        if link.expires_at <= self.b.clock():
            raise Gone("this upload link has expired", code="upload_link_expired")
        if link.max_uploads is not None and link.uploads >= link.max_uploads:
            raise Gone("this upload link has been used up", code="upload_link_used_up")

    async def claim(self, link: UploadLink) -> UploadLink:
        """Count one upload against the link, before any byte is read; 410 when none is left."""
        claimed = await self.links.claim_upload(link.token_hash, self.b.clock())
        if claimed is None:
            latest = await self.links.get_link(link.token_hash)
            if latest is not None:
                self._check(latest)
            raise Gone("this upload link is no longer valid", code="upload_link_used_up")
        return claimed

    async def release(self, link: UploadLink) -> None:
        await self.links.release_upload(link.token_hash)

    def max_size(self, link: UploadLink) -> int:
        limit = self.b.settings.max_upload_size
        return limit if link.max_size is None else min(limit, link.max_size)

    def admit(self, link: UploadLink, *, name: str, content_type: str | None, length: int | None) -> None:
        """415 for a type the link does not take, 413 for an announced length over its limit.

        The type is the declared one, or -- when none or only the generic octet-stream was declared, as
        most clients do -- the one the name implies.
        """
        declared = (content_type or "").split(";")[0].strip().lower()
        generic = content_type is None or declared == "application/octet-stream"
        effective = guess_content_type(name) if generic or content_type is None else content_type
        if not type_allowed(effective, link.content_types):
            raise UnsupportedMediaType(
                f"this link takes {', '.join(link.content_types)}, not {effective.split(';')[0]}",
                code="type_not_allowed",
            )
        if length is not None and length > self.max_size(link):
            raise PayloadTooLarge(f"this link takes files up to {self.max_size(link)} bytes")

    @staticmethod
    def share(link: UploadLink) -> TokenRequest | None:
        return None if link.share is None else TokenRequest(**link.share)

    async def list(self, owner: str) -> list[UploadLink]:
        return await self.links.list_links(owner)

    async def revoke(self, owner: str, link_id: str) -> None:
        token_hash = await self.links.find_link_hash(owner, link_id)
        if token_hash is None:
            raise NotFound("unknown upload link", code="upload_link_not_found")
        await self.links.revoke_link(token_hash)
