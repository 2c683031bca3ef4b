"""Managing one's assets: listing, metadata with versions, new versions, deletion."""

from __future__ import annotations

import base64
import binascii

from aiohttp import hdrs, web

from gateway.errors import BadRequest, Forbidden
from gateway.http.keys import SERVICE, SETTINGS, principal
from gateway.http.models import AssetList, AssetMeta, AssetOut, UploadResponse
from gateway.http.uploads import announced_length, body_chunks, content_type_of, created, expected_digests

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


async def list_assets(request: web.Request) -> web.Response:
    """GET /assets?limit=&cursor=: the principal's own assets, newest first."""
    who = principal(request)
    if not who.authenticated:
        raise Forbidden("listing needs credentials: in open mode an asset id is a secret capability")
    cap = request.app[SETTINGS].max_list_limit
    raw = request.query.get("limit", str(DEFAULT_LIMIT))
    if not raw.isdigit() or not 1 <= int(raw) <= cap:
        raise BadRequest(f"limit must be an integer from 1 to {cap}", code="invalid_limit")
    cursor = request.query.get("cursor")
    items, next_key = await request.app[SERVICE].list_assets(
        owner=who.id, limit=int(raw), cursor=decode_cursor(cursor) if cursor else None
    )
    return _json(
        AssetList(
            assets=[AssetOut.of(a, v) for a, v in items],
            next_cursor=encode_cursor(next_key) if next_key else None,
        )
    )


async def asset_meta(request: web.Request) -> web.Response:
    """GET /asset/{id}/meta"""
    asset, versions = await request.app[SERVICE].describe(
        request.match_info["id"], owner=principal(request).id
    )
    return _json(AssetMeta.of(asset, versions))


async def put_content(request: web.Request) -> web.Response:
    """PUT /asset/{id}/content: the body becomes version N+1."""
    asset, version = await request.app[SERVICE].new_version(
        request.match_info["id"],
        owner=principal(request).id,
        content_type=content_type_of(request.headers.get(hdrs.CONTENT_TYPE)),
        chunks=body_chunks(request),
        size_hint=announced_length(request),
        expected=expected_digests(request),
    )
    return created(UploadResponse(asset=AssetOut.of(asset, version), token=None))


async def delete_asset(request: web.Request) -> web.Response:
    """DELETE /asset/{id}: all versions, blobs and tokens."""
    await request.app[SERVICE].delete(request.match_info["id"], owner=principal(request).id)
    return web.Response(status=204)
