"""Managing one's assets: listing, metadata with versions, new versions, deletion."""

from __future__ import annotations

import base64
import binascii

from aiohttp import hdrs, web

from gateway.durations import is_decimal
from gateway.errors import BadRequest, Forbidden
from gateway.http.bodies import body_chunks
from gateway.http.keys import SERVICE, SETTINGS, principal
from gateway.http.models import AssetList, AssetMeta, AssetOut, UploadResponse
from gateway.http.openapi import Operation, Param, operation
from gateway.http.uploads import announced_length, content_type_of, created, expected_digests
from gateway.service.placement import Choice

DEFAULT_LIMIT = 50


def _json(model: AssetList | AssetMeta) -> web.Response:
    return web.Response(text=model.model_dump_json(), content_type="application/json")


def encode_cursor(key: str) -> str:
    return base64.urlsafe_b64encode(key.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    try:
        key = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise BadRequest("invalid cursor", code="invalid_cursor") from None
    if not key.startswith("ASSET#") or len(key) > 200:
        raise BadRequest("invalid cursor", code="invalid_cursor")
    return key


@operation(
    Operation(
        summary="The principal's own assets, newest first",
        tag="assets",
        params=(
            Param("limit", "page size", {"type": "integer", "minimum": 1, "maximum": 1000}),
            Param("cursor", "next_cursor of the previous page"),
        ),
        responses={200: AssetList},
        errors=(400, 403),
    )
)
async def list_assets(request: web.Request) -> web.Response:
    """GET /assets?limit=&cursor=: the principal's own assets, newest first."""
    who = principal(request)
    if not who.authenticated:
        raise Forbidden("listing needs credentials: in open mode an asset id is a secret capability")
    cap = request.app[SETTINGS].max_list_limit
    raw = request.query.get("limit", str(DEFAULT_LIMIT))
    if not is_decimal(raw) or len(raw) > 9 or not 1 <= int(raw) <= cap:
        raise BadRequest(f"limit must be an integer from 1 to {cap}", code="invalid_limit")
    cursor = request.query.get("cursor")
    items, next_key = await request.app[SERVICE].assets.list_assets(
        owner=who.id, limit=int(raw), cursor=decode_cursor(cursor) if cursor else None
    )
    return _json(
        AssetList(
            assets=[AssetOut.of(a, v) for a, v in items],
            next_cursor=encode_cursor(next_key) if next_key else None,
        )
    )


@operation(Operation(summary="An asset's metadata and versions", tag="assets", responses={200: AssetMeta}))
async def asset_meta(request: web.Request) -> web.Response:
    """GET /asset/{id}/meta"""
    asset, versions = await request.app[SERVICE].assets.describe(
        request.match_info["id"], owner=principal(request).id
    )
    return _json(AssetMeta.of(asset, versions))


@operation(
    Operation(
        summary="Upload a new version (raw body)",
        tag="assets",
        body="raw",
        responses={201: UploadResponse},
        errors=(400, 404, 413, 502, 503),
    )
)
async def put_content(request: web.Request) -> web.Response:
    """PUT /asset/{id}/content: the body becomes version N+1."""
    content_type = content_type_of(request.headers.get(hdrs.CONTENT_TYPE), raw_body=True)
    size_hint = announced_length(request)
    expected = expected_digests(request)
    svc = request.app[SERVICE]
    who = principal(request)
    asset, version = await svc.uploads.new_version(
        request.match_info["id"],
        owner=who.id,
        content_type=content_type,
        chunks=body_chunks(request),
        size_hint=size_hint,
        expected=expected,
        placement=svc.placer.place(who, Choice.of(request.query)),
    )
    return created(UploadResponse(asset=AssetOut.of(asset, version), token=None))


@operation(
    Operation(
        summary="Delete an asset: all versions, bytes and tokens", tag="assets", responses={204: "deleted"}
    )
)
async def delete_asset(request: web.Request) -> web.Response:
    """DELETE /asset/{id}: all versions, blobs and tokens."""
    await request.app[SERVICE].retention.delete(request.match_info["id"], owner=principal(request).id)
    return web.Response(status=204)
