"""Download endpoints: by asset id and by share token.

Both go through :func:`serve_version`, so Range, conditional requests and headers behave identically.
For token links the order matters: validate the request (304 / 416 answered without counting), open
the blob (so a counted download is one that can actually start), then claim one download atomically,
and only then send headers. A storage failure after headers aborts the connection: a truncated body
with a correct Content-Length is detectable by every client, a well-formed error would not be.
"""

from __future__ import annotations

import logging

from aiohttp import hdrs, web

from gateway.errors import BadRequest, Gone, NotFound
from gateway.http.keys import SERVICE
from gateway.http.ranges import http_date, if_range_allows, not_modified, parse_range
from gateway.names import content_disposition
from gateway.records import Asset, Token, Version

log = logging.getLogger("gateway.http")


def _version_param(request: web.Request) -> int | None:
    raw = request.query.get("version")
    if raw is None:
        return None
    if not raw.isdigit() or len(raw) > 9:
        raise BadRequest("version must be a non-negative integer", code="invalid_version")
    return int(raw)


async def download_asset(request: web.Request) -> web.StreamResponse:
    """GET|HEAD /asset/{id}"""
    svc = request.app[SERVICE]
    asset, version = await svc.find(request.match_info["id"], _version_param(request))
    return await serve_version(request, asset, version, token=None)


async def download_token(request: web.Request) -> web.StreamResponse:
    """GET|HEAD /asset-token/{token}"""
    svc = request.app[SERVICE]
    token = await svc.resolve_token(request.match_info["token"])
    if token.is_bundle:
        raise NotFound("bundle downloads (zip) are not available on this server", code="not_implemented")
    try:
        asset, version = await svc.find(token.asset_ids[0])
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
    etag = f'"{version.sha256}"'
    headers = {
        hdrs.ETAG: etag,
        hdrs.LAST_MODIFIED: http_date(version.created),
        hdrs.ACCEPT_RANGES: "bytes",
        hdrs.CONTENT_DISPOSITION: content_disposition(asset.name),
        hdrs.CONTENT_TYPE: version.content_type,
        hdrs.CACHE_CONTROL: "no-store" if token else "private, no-cache",
        "X-Content-Type-Options": "nosniff",
    }
    if not_modified(
        request.headers.get(hdrs.IF_NONE_MATCH),
        request.headers.get(hdrs.IF_MODIFIED_SINCE),
        etag,
        version.created,
    ):
        del headers[hdrs.CONTENT_TYPE], headers[hdrs.CONTENT_DISPOSITION]
        return web.Response(status=304, headers=headers)

    size = version.size
    rng = None
    if if_range_allows(request.headers.get(hdrs.IF_RANGE), etag, version.created):
        rng = parse_range(request.headers.get(hdrs.RANGE), size)
    offset, length = (rng.start, rng.length) if rng else (0, size)
    status = 206 if rng else 200
    if rng:
        headers[hdrs.CONTENT_RANGE] = f"bytes {rng.start}-{rng.end}/{size}"

    resp = web.StreamResponse(status=status, headers=headers)
    resp.content_length = length
    if request.method == hdrs.METH_HEAD:
        await resp.prepare(request)
        return resp

    reader = await svc.open(version, offset, length)
    try:
        if token is not None:
            await svc.claim(token)
        await resp.prepare(request)
        sent = 0
        try:
            async for chunk in reader:
                await resp.write(chunk)
                sent += len(chunk)
        except (ConnectionResetError, ConnectionError):
            raise
        except Exception:
            log.exception("download of %s aborted after %d of %d bytes", asset.id, sent, length)
            if request.transport is not None:
                request.transport.abort()
            return resp
        if sent != length:
            log.error("blob of %s ended after %d of %d bytes", asset.id, sent, length)
            if request.transport is not None:
                request.transport.abort()
            return resp
        await resp.write_eof()
        return resp
    finally:
        await reader.aclose()
