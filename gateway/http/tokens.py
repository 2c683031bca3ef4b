"""Token management: mint for an existing asset, list without secrets, revoke two ways."""

from __future__ import annotations

from aiohttp import web

from gateway.durations import is_decimal
from gateway.errors import BadRequest
from gateway.http.bodies import read_json
from gateway.http.keys import SERVICE, principal
from gateway.http.models import DownloadList, TokenCreated, TokenCreateRequest, TokenInfo, TokenList
from gateway.http.openapi import Operation, Param, operation
from gateway.http.uploads import token_out
from gateway.service.params import TokenRequest
from gateway.service.tokens import IssuedToken

MAX_JSON = 16 * 1024


async def link_request(
    request: web.Request, expiry: str | int | None, max_downloads: str | int | None, password: str | None
) -> TokenRequest:
    """A link that is always minted (tokens, bundles): its limits parsed, its password hashed."""
    svc = request.app[SERVICE]
    return await svc.passwords.protected(svc.params.mint_request(expiry, max_downloads), password)


def token_created(request: web.Request, issued: IssuedToken) -> web.Response:
    out = TokenCreated(token=token_out(request, issued))
    return web.Response(status=201, text=out.model_dump_json(), content_type="application/json")


@operation(
    Operation(
        summary="Mint a share link for an asset",
        tag="tokens",
        body=TokenCreateRequest,
        responses={201: TokenCreated},
    )
)
async def create_token(request: web.Request) -> web.Response:
    """POST /asset/{id}/tokens"""
    svc = request.app[SERVICE]
    body = await read_json(request, TokenCreateRequest, max_bytes=MAX_JSON, allow_empty=True)
    req = await link_request(request, body.expiry, body.max_downloads, body.password)
    issued = await svc.tokens.mint(request.match_info["id"], req, owner=principal(request).id)
    return token_created(request, issued)


@operation(
    Operation(
        summary="An asset's usable share links, without their secrets",
        tag="tokens",
        responses={200: TokenList},
    )
)
async def list_tokens(request: web.Request) -> web.Response:
    """GET /asset/{id}/tokens"""
    tokens = await request.app[SERVICE].tokens.live(request.match_info["id"], owner=principal(request).id)
    out = TokenList(tokens=[TokenInfo.of(t) for t in tokens])
    return web.Response(text=out.model_dump_json(), content_type="application/json")


@operation(
    Operation(
        summary="A link's download history (time, bytes, status, hashed client), newest first",
        tag="tokens",
        params=(Param("limit", "entries", {"type": "integer", "minimum": 1, "maximum": 1000}),),
        responses={200: DownloadList},
    )
)
async def token_downloads(request: web.Request) -> web.Response:
    """GET /asset/{id}/tokens/{token_id}/downloads"""
    raw = request.query.get("limit", "100")
    if not is_decimal(raw) or len(raw) > 4 or not 1 <= int(raw) <= 1000:
        raise BadRequest("limit must be an integer from 1 to 1000", code="invalid_limit")
    records = await request.app[SERVICE].tokens.history(
        request.match_info["id"], request.match_info["token_id"], owner=principal(request).id, limit=int(raw)
    )
    return web.Response(text=DownloadList.of(records).model_dump_json(), content_type="application/json")


@operation(
    Operation(
        summary="Revoke a share link by its token",
        tag="tokens",
        responses={204: "revoked"},
        errors=(404, 410),
    )
)
async def revoke_by_secret(request: web.Request) -> web.Response:
    """DELETE /asset-token/{token}"""
    await request.app[SERVICE].tokens.revoke_secret(request.match_info["token"])
    return web.Response(status=204)


@operation(
    Operation(
        summary="Revoke a share link by its token_id",
        tag="tokens",
        responses={204: "revoked"},
        errors=(404, 410),
    )
)
async def revoke_by_id(request: web.Request) -> web.Response:
    """DELETE /asset/{id}/tokens/{token_id}"""
    await request.app[SERVICE].tokens.revoke_id(
        request.match_info["id"], request.match_info["token_id"], owner=principal(request).id
    )
    return web.Response(status=204)
