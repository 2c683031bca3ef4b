"""Share links: mint, resolve, admit and settle downloads, revoke, and redirect mode.

**What a download is.** A limit of N means N *retrievals*. A retrieval is opened by a client (one
address) with one conditional catalog write that claims a download -- live, under the limit -- and
records a retrieval item for that client and link. For ``resume_window`` seconds after its latest
request, the same client's *range* requests belong to that retrieval: resuming (``curl -C -``,
``wget -c``, a browser's ``If-Range``) and segmented downloaders (``aria2c -x4``) are charged their byte
length against it, not a new download, up to ``ALLOWANCE`` times the file's size in all. A request
without ``Range`` is always a new retrieval (a second full download is a second download), as is a range
request past the allowance or the window. Each response is charged its full length before its headers
go out; an interrupted transfer gets the unsent remainder back (one extra write, only then), and a
response whose headers could not be sent is undone entirely. Every condition is evaluated by the
catalog, so the limit is exact under any concurrency across processes; a crash loses at most a refund,
so errors fall toward serving fewer downloads, never more.

Why an allowance of twice the size: a segmented downloader starts with a full GET (charged whole) and
opens its range requests while that first response is still streaming; it closes the first one early
(refunded then), but until it does the charges overlap. Two sizes cover that overlap and re-split
segments; it is also what a client can get away with (see docs/api.md).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

from gateway.errors import GatewayError, Gone, NotFound
from gateway.names import content_disposition
from gateway.records import Asset, DownloadRecord, Event, Retrieval, Token, Version
from gateway.service.assets import AssetReader
from gateway.service.context import Backends
from gateway.service.download_history import DownloadHistory
from gateway.service.events import Events, token_data
from gateway.service.params import TokenRequest
from gateway.tokens import hash_token, new_token, new_token_id, well_formed

log = logging.getLogger("gateway.service")
ALLOWANCE = 2  # bytes one retrieval may be charged, in multiples of the file's size


@dataclass(frozen=True)
class Admission:
    """A response admitted to a link: what it was charged, and whether it opened a retrieval."""

    token: Token
    client: str
    charged: int
    opened: bool
    started: float  # when it was admitted: the history's order is the order requests arrived in


def client_key(secret: bytes, token_hash: str, address: str) -> str:
    """Who is retrieving, as far as a link is concerned: a keyed hash of the link and the address --
    never the address, not comparable across links, and not reversible by enumerating addresses without
    the deployment's secret (``catalog.shared_secret``)."""
    return hmac.new(secret, f"{token_hash}|{address}".encode(), hashlib.sha256).hexdigest()[:32]


@dataclass(frozen=True)
class IssuedToken:
    secret: str
    record: Token


class Tokens:
    def __init__(self, backends: Backends, assets: AssetReader, events: Events) -> None:
        self.b = backends
        self.assets = assets
        self.events = events
        self.recorder = DownloadHistory(backends.catalog)

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
            password_hash=req.password_hash,
        )
        return IssuedToken(secret, record)

    async def mint(self, asset_id: str, req: TokenRequest, *, owner: str) -> IssuedToken:
        asset, _ = await self.assets.find(asset_id, owner=owner)
        issued = self.issue([asset], owner, req)
        await self.put(issued)
        return issued

    async def put(self, issued: IssuedToken) -> None:
        """Store a new link, with its ``token.created`` event."""
        token = issued.record
        events = self.events.of(self.events.new("token.created", token.owner, token_data(token)))
        await self.b.catalog.put_token(token, events)
        self.events.committed(events)

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
        token = await self.b.catalog.get_token(token_hash)
        events: tuple[Event, ...] = ()
        if token is not None:
            events = self.events.of(self.events.new("token.revoked", token.owner, token_data(token)))
        if await self.b.catalog.revoke_token(token_hash, events):
            self.events.committed(events)
            return
        if token is None:
            raise NotFound("unknown token", code="token_not_found")
        raise Gone("this link was already revoked", code="token_revoked")

    async def resolve(self, secret: str, *, resuming: bool = False) -> Token:
        """The token behind a link, if it is still usable; 404 unknown, 410 expired/revoked/exhausted.

        ``resuming`` (a range request): a link whose downloads are all claimed may still serve the range
        to a client inside its retrieval, so exhaustion is left to :meth:`admit` to decide.
        """
        if not well_formed(secret):
            raise NotFound("unknown token", code="token_not_found")
        token = await self.b.catalog.get_token(hash_token(secret))
        if token is None:
            raise NotFound("unknown token", code="token_not_found")
        self._check_live(token, exhausted_ok=resuming)
        return token

    def _check_live(self, token: Token, *, exhausted_ok: bool = False) -> None:
        if token.revoked:
            raise Gone("this link has been revoked", code="token_revoked")
        if token.expires_at <= self.b.clock():
            raise Gone("this link has expired", code="token_expired")
        if not exhausted_ok and not usable(token, self.b.clock()):
            raise Gone("this link has reached its download limit", code="token_exhausted")

    async def admit(self, token: Token, address: str, *, length: int, size: int, ranged: bool) -> Admission:
        """Charge one response to the link (see the module docstring); 410 when it may not be served."""
        client = client_key(self.b.client_secret, token.token_hash, address)
        now = self.b.clock()
        until = math.ceil(now) + self.b.settings.resume_window
        limit = ALLOWANCE * max(size, 1)
        cat = self.b.catalog
        if ranged and await cat.charge_retrieval(token.token_hash, client, length, limit, now, until):
            return Admission(token, client, length, opened=False, started=now)
        if await cat.open_retrieval(Retrieval(token.token_hash, client, length, until), now):
            return Admission(token, client, length, opened=True, started=now)
        latest = await cat.get_token(token.token_hash)
        if latest is None:
            raise Gone("this link is no longer valid", code="token_gone")
        self._check_live(latest)
        raise Gone("this link is no longer valid", code="token_gone")

    async def settle(self, admission: Admission, sent: int, status: int) -> None:
        """After a transfer: give back what was charged but not sent (nothing to do when complete), and
        enter the response in the link's history (when kept)."""
        try:
            if sent < admission.charged:
                await self.b.catalog.refund_retrieval(
                    admission.token.token_hash, admission.client, admission.charged - sent
                )
            if days := self.b.settings.download_history_days:
                at = admission.started
                record = DownloadRecord(
                    admission.token.token_hash, at, sent, status, admission.client, int(at) + days * 86400
                )
                self.recorder.add(record)
            if sent > 0 and sent >= admission.charged and status < 300:
                await self._downloaded(admission, sent)
        except GatewayError as exc:
            log.warning("could not settle a link download: %s", exc.message)

    async def _downloaded(self, admission: Admission, sent: int) -> None:
        """``download.completed`` (and ``token.exhausted`` when this download took the last count)."""
        token = admission.token
        data = {"token_id": token.token_id, "asset_ids": list(token.asset_ids), "bytes": sent}
        events = [self.events.new("download.completed", token.owner, data | {"client": admission.client})]
        if (
            admission.opened
            and token.max_downloads is not None
            and token.downloads + 1 >= token.max_downloads
        ):
            events.append(self.events.new("token.exhausted", token.owner, token_data(token)))
        await self.events.publish(*events)

    async def undo(self, admission: Admission) -> None:
        """The response never started: nothing of it counts (best effort, errs toward fewer)."""
        try:
            await self.b.catalog.refund_retrieval(
                admission.token.token_hash, admission.client, admission.charged
            )
        except GatewayError as exc:
            log.warning("could not undo a link download: %s", exc.message)
        if admission.opened:
            await self.release(admission.token)

    async def history(self, asset_id: str, token_id: str, *, owner: str, limit: int) -> list[DownloadRecord]:
        """A link's download history, for the owner of its asset."""
        await self.assets.find(asset_id, owner=owner)
        cat = self.b.catalog
        token_hash = await cat.find_token_hash(asset_id, token_id) if _is_hex(token_id) else None
        if token_hash is None:
            raise NotFound("unknown token id", code="token_not_found")
        return await cat.list_downloads(token_hash, limit)

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
        if not self.b.settings.redirect_downloads:
            return None
        presigner = self.b.storages.get(version.storage).presigner  # the version's bucket and region
        if presigner is None:
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
