"""Share links: mint, resolve, claim and release downloads, revoke, and redirect mode.

A download is claimed with one conditional catalog write (live, under its limit) right before the
response's headers go out, so a limit of N admits exactly N downloads however many requests race, on
however many processes. If the headers then cannot be sent, the claim is released again (one
conditional decrement): a download is counted only when its response actually started.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

from gateway.errors import GatewayError, Gone, NotFound
from gateway.names import content_disposition
from gateway.records import Asset, Token, Version
from gateway.service.assets import AssetReader
from gateway.service.context import Backends
from gateway.service.params import TokenRequest
from gateway.tokens import hash_token, new_token, new_token_id, well_formed

log = logging.getLogger("gateway.service")


@dataclass(frozen=True)
class IssuedToken:
    secret: str
    record: Token


class Tokens:
    def __init__(self, backends: Backends, assets: AssetReader) -> None:
        self.b = backends
        self.assets = assets

    def issue(
        self,
        assets: Sequence[Asset],
        owner: str,
        req: TokenRequest,
        *,
        bundle: bool = False,
        name: str | None = None,
    ) -> IssuedToken:
        """A new token (not yet stored); it never outlives the assets it covers."""
        secret = new_token()
        now = self.b.clock()
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
            name=name if bundle else None,
            bundle=bundle,
        )
        return IssuedToken(secret, record)

    async def mint(self, asset_id: str, req: TokenRequest, *, owner: str) -> IssuedToken:
        asset, _ = await self.assets.find(asset_id, owner=owner)
        issued = self.issue([asset], owner, req)
        await self.b.catalog.put_token(issued.record)
        return issued

    async def live(self, asset_id: str, *, owner: str) -> list[Token]:
        await self.assets.find(asset_id, owner=owner)
        now = self.b.clock()
        return [t for t in await self.b.catalog.list_tokens(asset_id) if usable(t, now)]

    async def revoke_secret(self, secret: str) -> None:
        """DELETE /asset-token/{token}: the token is its own credential."""
        if not well_formed(secret):
            raise NotFound("unknown token", code="token_not_found")
        await self._revoke(hash_token(secret))

    async def revoke_id(self, asset_id: str, token_id: str, *, owner: str) -> None:
        await self.assets.find(asset_id, owner=owner)
        cat = self.b.catalog
        token_hash = await cat.find_token_hash(asset_id, token_id) if _is_hex(token_id) else None
        if token_hash is None:
            raise NotFound("unknown token id", code="token_not_found")
        await self._revoke(token_hash)

    async def _revoke(self, token_hash: str) -> None:
        if await self.b.catalog.revoke_token(token_hash):
            return
        if await self.b.catalog.get_token(token_hash) is None:
            raise NotFound("unknown token", code="token_not_found")
        raise Gone("this link was already revoked", code="token_revoked")

    async def resolve(self, secret: str) -> Token:
        """The token behind a link, if it is still usable; 404 unknown, 410 expired/revoked/exhausted."""
        if not well_formed(secret):
            raise NotFound("unknown token", code="token_not_found")
        token = await self.b.catalog.get_token(hash_token(secret))
        if token is None:
            raise NotFound("unknown token", code="token_not_found")
        self._check_live(token)
        return token

    def _check_live(self, token: Token) -> None:
        if token.revoked:
            raise Gone("this link has been revoked", code="token_revoked")
        if token.expires_at <= self.b.clock():
            raise Gone("this link has expired", code="token_expired")
        if not usable(token, self.b.clock()):
            raise Gone("this link has reached its download limit", code="token_exhausted")

    async def claim(self, token: Token) -> Token:
        """Count one download, atomically; 410 when the limit or expiry was reached meanwhile."""
        claimed = await self.b.catalog.claim_download(token.token_hash, self.b.clock())
        if claimed is None:
            latest = await self.b.catalog.get_token(token.token_hash)
            if latest is None:
                raise Gone("this link is no longer valid", code="token_gone")
            self._check_live(latest)
            raise Gone("this link is no longer valid", code="token_gone")
        return claimed

    async def release(self, token: Token) -> None:
        """Give back a claimed download whose response never started (best effort: a failure here
        errs toward serving fewer downloads, never more)."""
        try:
            await self.b.catalog.release_download(token.token_hash)
        except GatewayError as exc:
            log.warning("could not release a download claim: %s", exc.message)

    async def presigned_location(self, token: Token, asset: Asset, version: Version) -> str | None:
        """Redirect mode: a presigned URL for this download, or None to proxy instead.

        The URL lives min(``presign_max_seconds``, the token's remaining life): a few seconds by default,
        because whoever holds it can fetch it again until then, past the link's limit or revocation.
        It is signed before the claim, so a count is only spent on a URL that exists; the caller claims.
        """
        presigner = self.b.presigner
        if presigner is None or not self.b.settings.redirect_downloads:
            return None
        remaining = token.expires_at - math.ceil(self.b.clock())  # whole seconds: never outlives the token
        return await presigner.presign_get(
            version.blob_key,
            expires_in=max(1, min(self.b.settings.presign_max_seconds, remaining)),
            filename_header=content_disposition(asset.name),
            content_type=version.content_type,
        )


def usable(token: Token, now: float) -> bool:
    return (
        not token.revoked
        and token.expires_at > now
        and (token.max_downloads is None or token.downloads < token.max_downloads)
    )


def _is_hex(value: str) -> bool:
    return 0 < len(value) <= 64 and all(c in "0123456789abcdef" for c in value)
