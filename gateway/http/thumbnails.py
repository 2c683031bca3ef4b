"""Thumbnails over HTTP: the owner's (any allowed size) and a share link's (presets only, never counted).

Through a share link the link is the only credential, so the sizes are the configured presets: anyone
holding a link could otherwise make the gateway render and store thousands of variants. A thumbnail
never spends a download (chat previews and the share page use it), but a password-protected link wants
its password here too, and an expired, revoked or used-up link answers 410 like its download.
"""

from __future__ import annotations

from aiohttp import hdrs, web

from gateway.errors import BadRequest, Gone, NotFound
from gateway.http.downloads import presented_password, version_param
from gateway.http.keys import SERVICE, principal
from gateway.http.openapi import Operation, Param, operation
from gateway.http.streaming import Representation, serve
from gateway.names import content_disposition
from gateway.ports import BlobReader
from gateway.records import Asset, Thumbnail
from gateway.service import Services

PARAMS = (
    Param("preset", "a configured preset name (e.g. small)"),
    Param("w", "width, px", {"type": "integer", "minimum": 16}),
    Param("h", "height, px", {"type": "integer", "minimum": 16}),
    Param("fit", "cover (crop to fill, default) or contain (fit inside)"),
    Param("format", "webp (default), jpeg or png"),
)


def _representation(svc: Services, asset: Asset, thumb: Thumbnail, *, shared: bool) -> Representation:
    async def open_window(offset: int, length: int) -> BlobReader:
        return await svc.thumbnails.open(thumb, offset, length)

    stem = asset.name.rsplit(".", 1)[0] or "thumbnail"
    return Representation(
        size=thumb.size,
        etag=thumb.etag,
        mtime=thumb.created,
        headers={
            hdrs.CONTENT_TYPE: thumb.content_type,
            hdrs.CONTENT_DISPOSITION: content_disposition(f"{stem}.{thumb.key.rsplit('.', 1)[1]}", "inline"),
            hdrs.CACHE_CONTROL: "no-store" if shared else "private, max-age=300",
        },
        open=open_window,
        what=f"thumbnail of {asset.id}",
    )


@operation(
    Operation(
        summary="A thumbnail of an image asset (made on first request, then stored)",
        tag="media",
        params=(*PARAMS, Param("version", "an older version", {"type": "integer", "minimum": 0})),
        responses={200: "the thumbnail", 304: "not modified", 422: "not an image this gateway decodes"},
        binary_response="image/*",
        errors=(400, 404, 422),
    )
)
async def asset_thumbnail(request: web.Request) -> web.StreamResponse:
    svc = request.app[SERVICE]
    q = request.query
    spec = svc.thumbnails.spec(
        preset=q.get("preset"), w=q.get("w"), h=q.get("h"), fit=q.get("fit"), fmt=q.get("format")
    )
    asset, version = await svc.assets.find(
        request.match_info["id"], version_param(request), owner=principal(request).id
    )
    svc.scanning.check(version)
    thumb = await svc.thumbnails.get(asset, version, spec)
    return await serve(request, _representation(svc, asset, thumb, shared=False))


@operation(
    Operation(
        summary="A preset thumbnail through a share link (never counts a download); bundles: ?asset=<id>",
        tag="media",
        public=True,
        params=(
            Param("preset", "a configured preset name"),
            Param("fit", "cover or contain"),
            Param("format", "webp, jpeg or png"),
            Param("asset", "a bundle member's asset id"),
        ),
        responses={200: "the thumbnail", 304: "not modified", 401: "password needed", 410: "link gone"},
        binary_response="image/*",
        errors=(400, 401, 404, 410, 422, 429),
    )
)
async def link_thumbnail(request: web.Request) -> web.StreamResponse:
    svc = request.app[SERVICE]
    q = request.query
    if q.get("w") is not None or q.get("h") is not None:
        raise BadRequest("share links serve preset thumbnails only (?preset=)", code="invalid_thumbnail")
    spec = svc.thumbnails.spec(
        preset=q.get("preset") or _first_preset(svc), fit=q.get("fit"), fmt=q.get("format")
    )
    token = await svc.tokens.resolve(request.match_info["token"])
    await svc.passwords.check(token, presented_password(request))
    wanted = q.get("asset")
    if token.is_bundle:
        if wanted is None or wanted not in token.asset_ids:
            raise BadRequest("name a member of this bundle: ?asset=<id>", code="invalid_member")
    elif wanted is not None and wanted != token.asset_ids[0]:
        raise BadRequest("this link shares one asset", code="invalid_member")
    try:
        asset, version = await svc.assets.find(wanted or token.asset_ids[0], owner=None)
    except NotFound:
        raise Gone("the asset behind this link no longer exists", code="asset_gone") from None
    svc.scanning.check(version)
    thumb = await svc.thumbnails.get(asset, version, spec)
    return await serve(request, _representation(svc, asset, thumb, shared=True))


def _first_preset(svc: Services) -> str:
    if not svc.thumbnails.presets:
        raise BadRequest("no thumbnail presets are configured", code="invalid_thumbnail")
    return next(iter(svc.thumbnails.presets))
