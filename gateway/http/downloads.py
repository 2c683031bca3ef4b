"""Download handlers: one asset by id, or through a share link (a bundle link streams a zip).

They only build a :class:`~gateway.http.streaming.Representation` and hand it to the streaming engine,
which owns conditionals, Range, claiming and sending for files and zips alike.
"""

from __future__ import annotations

import base64
import hashlib

from aiohttp import hdrs, web

from gateway.durations import is_decimal
from gateway.errors import BadRequest, Gone, NotFound
from gateway.http.clients import client_address
from gateway.http.keys import SERVICE, principal
from gateway.http.openapi import Operation, Param, operation
from gateway.http.streaming import CountedLink, Representation, serve
from gateway.http.uploads import SHARE_PASSWORD
from gateway.http.zips import zip_representation
from gateway.names import content_disposition, safe_inline, served_type
from gateway.ports import BlobReader
from gateway.records import Asset, Token, Version
from gateway.service import Services
from gateway.service.zips import MemberSpec


def version_representation(
    svc: Services,
    asset: Asset,
    version: Version,
    *,
    shared: bool,
    inline: bool = False,
    for_scanner: bool = False,
) -> Representation:
    """``inline`` is honoured only for types a browser displays without running code (images but SVG,
    audio, video, PDF, plain text); everything else is always an attachment."""
    if not for_scanner:  # a scanner reads what it is to judge (http/scan_source.py)
        svc.scanning.check(version)  # 451 flagged; with scan_required 409/503 until a clean verdict
    content_type = served_type(version.content_type)
    disposition = "inline" if inline and safe_inline(content_type) else "attachment"

    async def open_window(offset: int, length: int) -> BlobReader:
        try:
            return await svc.assets.open(version, offset, length)
        except NotFound:
            if shared:
                raise Gone("the content behind this link no longer exists", code="asset_gone") from None
            raise

    return Representation(
        size=version.size,
        etag=etag_of(version),
        mtime=version.created,
        headers={
            hdrs.CONTENT_DISPOSITION: content_disposition(asset.name, disposition),
            hdrs.CONTENT_TYPE: content_type,
            hdrs.CACHE_CONTROL: "no-store" if shared else "private, no-cache",
        },
        open=open_window,
        what=f"download of {asset.id}",
        sha256=bytes.fromhex(version.sha256) if version.sha256 else None,
    )


def etag_of(version: Version) -> str:
    """The content's sha256; for adopted objects not yet hashed (``gateway adopt``), their identity."""
    if version.sha256:
        return f'"{version.sha256}"'
    ident = f"{version.storage}\n{version.blob_key}\n{version.size}\n{version.created}".encode()
    return f'"adopted-{hashlib.sha256(ident).hexdigest()[:32]}"'


def presented_password(request: web.Request) -> str | None:
    """A link password: the Share-Password header, or HTTP Basic with any user name (curl -u :secret)."""
    if (header := request.headers.get(SHARE_PASSWORD)) is not None:
        return header
    scheme, _, credentials = request.headers.get(hdrs.AUTHORIZATION, "").strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return None
    _, sep, password = decoded.partition(":")
    return password if sep else None


def _inline_param(request: web.Request) -> bool:
    raw = request.query.get("inline", "").strip().lower()
    if raw not in ("", "0", "1", "true", "false"):
        raise BadRequest("inline must be 1/true or 0/false", code="invalid_inline")
    return raw in ("1", "true")


def version_param(request: web.Request) -> int | None:
    raw = request.query.get("version")
    if raw is None:
        return None
    if not is_decimal(raw) or len(raw) > 9:
        raise BadRequest("version must be a non-negative integer", code="invalid_version")
    return int(raw)


@operation(
    Operation(
        summary="Download an asset (Range, If-None-Match, HEAD supported)",
        tag="download",
        params=(
            Param("version", "an older version", {"type": "integer", "minimum": 0}),
            Param(
                "inline",
                "1: display in the browser (safe types only: images but SVG, audio, video, PDF, text)",
            ),
        ),
        responses={200: "the bytes", 206: "a byte range", 304: "not modified", 416: "bad range"},
        binary_response="*/*",  # the asset's own content type
    )
)
async def download_asset(request: web.Request) -> web.StreamResponse:
    """GET|HEAD /asset/{id}"""
    svc = request.app[SERVICE]
    asset, version = await svc.assets.find(
        request.match_info["id"], version_param(request), owner=principal(request).id
    )
    rep = version_representation(svc, asset, version, shared=False, inline=_inline_param(request))
    return await serve(request, rep)


@operation(
    Operation(
        summary="Download through a share link (a bundle link streams a zip); counts one download",
        tag="download",
        public=True,
        responses={
            200: "the bytes",
            206: "a byte range",
            302: "redirect to a presigned storage URL (redirect mode)",
            304: "not modified",
            401: "the link needs a password (HTTP Basic, any user name, or Share-Password)",
            410: "expired, revoked or exhausted",
            429: "too many wrong passwords this minute (Retry-After)",
            416: "bad range",
        },
        binary_response="*/*",  # the asset's own content type
        params=(Param("inline", "1: display in the browser (safe types only)"),),
        errors=(400, 401, 404, 410, 429),
    )
)
async def download_token(request: web.Request) -> web.StreamResponse:
    """GET|HEAD /asset-token/{token}"""
    svc = request.app[SERVICE]
    inline = _inline_param(request)
    ranged = request.method == hdrs.METH_GET and hdrs.RANGE in request.headers
    token = await svc.tokens.resolve(request.match_info["token"], resuming=ranged)
    await svc.passwords.check(token, presented_password(request))
    return await serve_link(request, token, inline=inline)


async def serve_link(request: web.Request, token: Token, *, inline: bool = False) -> web.StreamResponse:
    """The bytes behind a resolved link whose password (if any) was checked; counts one download."""
    svc = request.app[SERVICE]
    link = CountedLink(svc.tokens, token, client_address(request))
    if token.is_bundle:
        try:
            members = await svc.zips.members([MemberSpec(a) for a in token.asset_ids], owner=None)
        except NotFound:
            raise Gone("an asset in this bundle no longer exists", code="asset_gone") from None
        rep = await zip_representation(svc, members, token.name or "files.zip", shared=True)
        return await serve(request, rep, link=link)
    try:
        asset, version = await svc.assets.find(token.asset_ids[0], owner=None)  # the token is the capability
    except NotFound:
        raise Gone("the asset behind this link no longer exists", code="asset_gone") from None

    async def presigned() -> str | None:
        return await svc.tokens.presigned_location(token, asset, version)

    rep = version_representation(svc, asset, version, shared=True, inline=inline)
    return await serve(request, rep, link=link, redirect=presigned)
