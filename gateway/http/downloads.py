"""Downloads: one asset by id or token link, and zips of many assets (POST /zip, bundle links).

Single files and zips share the same two steps. :func:`plan` answers conditionals (304) and Range
(206/416) from size, ETag and mtime alone, before any storage I/O. :func:`send_body` streams and, if storage
fails after the headers went out, aborts the TCP connection: with an exact Content-Length every client
then sees a truncated transfer, never a complete-looking file or zip missing a member.

For token links the order is: validate (304 / 416 answered without counting), open the blob (a counted
download is one that can actually start), claim one download atomically, then send headers.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from dataclasses import dataclass

from aiohttp import hdrs, web

from gateway.assets import AssetService, MemberSpec
from gateway.durations import is_decimal
from gateway.errors import BadRequest, Gone, NotFound
from gateway.http.bodies import read_json
from gateway.http.keys import METRICS, SERVICE, principal
from gateway.http.models import BundleRequest, TokenCreated, ZipRequest
from gateway.http.openapi import Operation, Param, operation
from gateway.http.ranges import http_date, if_range_allows, not_modified, parse_range
from gateway.http.tokens import token_created
from gateway.names import content_disposition, validate_name
from gateway.ports import BlobReader
from gateway.records import Asset, Token, Version
from gateway.ziplayout import Member, ZipLayout, layout

log = logging.getLogger("gateway.http")
MAX_ZIP_REQUEST = 8 * 1024 * 1024


@dataclass(frozen=True)
class Plan:
    status: int
    offset: int
    length: int
    headers: dict[str, str]


def plan(
    request: web.Request, *, size: int, etag: str, mtime: float, headers: dict[str, str]
) -> Plan | web.Response:
    """Status, byte window and headers for a GET/HEAD of one representation; or a ready 304."""
    headers = {
        hdrs.ETAG: etag,
        hdrs.LAST_MODIFIED: http_date(mtime),
        hdrs.ACCEPT_RANGES: "bytes",
        "X-Content-Type-Options": "nosniff",
        **headers,
    }
    if request.method in (hdrs.METH_GET, hdrs.METH_HEAD) and not_modified(
        request.headers.get(hdrs.IF_NONE_MATCH), request.headers.get(hdrs.IF_MODIFIED_SINCE), etag, mtime
    ):
        keep = (hdrs.ETAG, hdrs.LAST_MODIFIED, hdrs.CACHE_CONTROL)
        return web.Response(status=304, headers={k: v for k, v in headers.items() if k in keep})
    rng = None
    if request.method in (hdrs.METH_GET, hdrs.METH_HEAD) and if_range_allows(
        request.headers.get(hdrs.IF_RANGE), etag, mtime
    ):
        rng = parse_range(request.headers.get(hdrs.RANGE), size)
    if rng is None:
        return Plan(200, 0, size, headers)
    headers[hdrs.CONTENT_RANGE] = f"bytes {rng.start}-{rng.end}/{size}"
    return Plan(206, rng.start, rng.length, headers)


def response_for(p: Plan) -> web.StreamResponse:
    resp = web.StreamResponse(status=p.status, headers=p.headers)
    resp.content_length = p.length
    return resp


async def read_ahead(chunks: AsyncIterator[bytes]) -> AsyncGenerator[bytes, None]:
    """Fetch the next chunk while the current one is written: storage and socket work overlap.

    Depth one, so memory stays at two chunks. For zips the "next chunk" may be opening the next member,
    which happens only after the previous member's stream has closed (one member stream at a time).
    """
    pending: asyncio.Future[bytes] = asyncio.ensure_future(anext(chunks))
    try:
        while True:
            try:
                chunk = await pending
            except StopAsyncIteration:
                return
            pending = asyncio.ensure_future(anext(chunks))
            yield chunk
    finally:
        if not pending.done():
            pending.cancel()
        await asyncio.gather(pending, return_exceptions=True)


async def send_body(
    request: web.Request, resp: web.StreamResponse, chunks: AsyncIterator[bytes], length: int, what: str
) -> web.StreamResponse:
    await resp.prepare(request)
    sent = 0
    counter = request.app[METRICS].bytes_out
    ahead = read_ahead(chunks)
    try:
        async for chunk in ahead:
            await resp.write(chunk)
            sent += len(chunk)
            counter.inc(len(chunk))
    except ConnectionError:
        raise
    except Exception:
        log.exception("%s aborted after %d of %d bytes", what, sent, length)
        _abort(request)
        return resp
    finally:
        await ahead.aclose()
    if sent != length:
        log.error("%s: storage ended after %d of %d bytes", what, sent, length)
        _abort(request)
        return resp
    await resp.write_eof()
    return resp


def _abort(request: web.Request) -> None:
    if request.transport is not None:
        request.transport.abort()


# -- single assets -------------------------------------------------------------------------------------
def _version_param(request: web.Request) -> int | None:
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
        params=(Param("version", "an older version", {"type": "integer", "minimum": 0}),),
        responses={200: "the bytes", 206: "a byte range", 304: "not modified", 416: "bad range"},
        binary_response="*/*",  # the asset's own content type
    )
)
async def download_asset(request: web.Request) -> web.StreamResponse:
    """GET|HEAD /asset/{id}"""
    svc = request.app[SERVICE]
    asset, version = await svc.find(
        request.match_info["id"], _version_param(request), owner=principal(request).id
    )
    return await serve_version(request, asset, version, token=None)


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
            410: "expired, revoked or exhausted",
            416: "bad range",
        },
        binary_response="*/*",  # the asset's own content type
        errors=(404, 410),
    )
)
async def download_token(request: web.Request) -> web.StreamResponse:
    """GET|HEAD /asset-token/{token}"""
    svc = request.app[SERVICE]
    token = await svc.resolve_token(request.match_info["token"])
    if token.is_bundle:
        try:
            members = await svc.zip_members([MemberSpec(a) for a in token.asset_ids], owner=None)
        except NotFound:
            raise Gone("an asset in this bundle no longer exists", code="asset_gone") from None
        return await serve_zip(request, members, token.name or "files.zip", token=token)
    try:
        asset, version = await svc.find(token.asset_ids[0], owner=None)  # the token is the capability
    except NotFound:
        raise Gone("the asset behind this link no longer exists", code="asset_gone") from None
    if request.method == hdrs.METH_GET:  # a presigned GET URL cannot answer HEAD: HEAD is proxied
        location = await svc.redirect_download(token, asset, version)
        if location is not None:
            return web.Response(status=302, headers={hdrs.LOCATION: location, hdrs.CACHE_CONTROL: "no-store"})
    return await serve_version(request, asset, version, token=token)


async def serve_version(
    request: web.Request, asset: Asset, version: Version, *, token: Token | None
) -> web.StreamResponse:
    svc = request.app[SERVICE]
    planned = plan(
        request,
        size=version.size,
        etag=f'"{version.sha256}"',
        mtime=version.created,
        headers={
            hdrs.CONTENT_DISPOSITION: content_disposition(asset.name),
            hdrs.CONTENT_TYPE: version.content_type,
            hdrs.CACHE_CONTROL: "no-store" if token else "private, no-cache",
        },
    )
    if isinstance(planned, web.Response):
        return planned
    resp = response_for(planned)
    if request.method == hdrs.METH_HEAD:
        await resp.prepare(request)
        return resp
    reader = await svc.open(version, planned.offset, planned.length)
    try:
        if token is not None:
            await svc.claim(token)
        return await send_body(request, resp, aiter(reader), planned.length, f"download of {asset.id}")
    finally:
        await reader.aclose()


# -- zips ----------------------------------------------------------------------------------------------
async def serve_zip(
    request: web.Request, members: Sequence[Member[Version]], name: str, *, token: Token | None
) -> web.StreamResponse:
    svc = request.app[SERVICE]
    zl = layout(members)
    planned = plan(
        request,
        size=zl.size,
        etag=zl.etag,
        mtime=max(m.mtime for m in members),
        headers={
            hdrs.CONTENT_DISPOSITION: content_disposition(name),
            hdrs.CONTENT_TYPE: "application/zip",
            hdrs.CACHE_CONTROL: "no-store" if token else "private, no-cache",
        },
    )
    if isinstance(planned, web.Response):
        return planned
    resp = response_for(planned)
    if request.method == hdrs.METH_HEAD:
        await resp.prepare(request)
        return resp
    if token is not None:
        await svc.claim(token)
    chunks = zip_chunks(svc, zl, planned.offset, planned.length)
    try:
        return await send_body(request, resp, chunks, planned.length, f"zip {name!r}")
    finally:
        await chunks.aclose()


async def zip_chunks(
    svc: AssetService, zl: ZipLayout[Version], offset: int, length: int
) -> AsyncGenerator[bytes, None]:
    """The archive's bytes in ``offset .. offset+length``; member streams are opened one at a time."""
    for seg in zl.range(offset, offset + length - 1):
        if isinstance(seg, bytes):
            yield seg
            continue
        reader: BlobReader = await svc.open(seg.source, seg.offset, seg.length)
        try:
            async for chunk in reader:
                yield chunk
        finally:
            await reader.aclose()


@operation(
    Operation(
        summary="Stream a zip of several assets (exact Content-Length, ZIP64 where needed)",
        tag="zip",
        body=ZipRequest,
        responses={200: "the zip"},
        binary_response="application/zip",
    )
)
async def create_zip(request: web.Request) -> web.StreamResponse:
    """POST /zip: stream a zip of the listed assets."""
    body = await read_json(request, ZipRequest, max_bytes=MAX_ZIP_REQUEST)
    name = validate_name(body.name)
    specs = [
        MemberSpec(m) if isinstance(m, str) else MemberSpec(m.id, m.version, m.path) for m in body.assets
    ]
    members = await request.app[SERVICE].zip_members(specs, owner=principal(request).id)
    return await serve_zip(request, members, name, token=None)


@operation(
    Operation(
        summary="Create a bundle link that streams a zip of several assets",
        tag="zip",
        body=BundleRequest,
        responses={201: TokenCreated},
    )
)
async def create_bundle(request: web.Request) -> web.Response:
    """POST /bundle: a token whose link streams a zip of the listed assets."""
    svc = request.app[SERVICE]
    body = await read_json(request, BundleRequest, max_bytes=MAX_ZIP_REQUEST)
    name = validate_name(body.name)
    req = svc.mint_request(body.expiry, body.max_downloads)
    issued = await svc.mint_bundle(body.assets, req, owner=principal(request).id, name=name)
    return token_created(request, issued)
