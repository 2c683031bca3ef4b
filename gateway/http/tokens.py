"""Token management: mint for an existing asset, list without secrets, revoke two ways."""

from __future__ import annotations

from aiohttp import web
from pydantic import ValidationError

from gateway.errors import BadRequest, UnsupportedMediaType
from gateway.http.keys import SERVICE, principal
from gateway.http.models import TokenCreated, TokenCreateRequest, TokenInfo, TokenList, TokenOut
from gateway.http.openapi import Operation, operation
from gateway.http.uploads import base_url

MAX_JSON = 16 * 1024


async def read_json_body(request: web.Request, model: type[TokenCreateRequest]) -> TokenCreateRequest:
    if request.content_length is not None and request.content_length > MAX_JSON:
        raise BadRequest("request body too large", code="invalid_json")
    raw = await request.content.read(MAX_JSON + 1)
    if len(raw) > MAX_JSON:
        raise BadRequest("request body too large", code="invalid_json")
    if not raw.strip():
        return model()
    if request.content_type not in ("application/json", "application/octet-stream"):
        raise UnsupportedMediaType("send application/json")
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise BadRequest(f"invalid JSON body: {where}: {first['msg']}", code="invalid_json") from None


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
    body = await read_json_body(request, TokenCreateRequest)
    req = svc.token_request("1", None if body.expiry is None else str(body.expiry), body.max_downloads)
    assert req is not None
    issued = await svc.mint(request.match_info["id"], req, owner=principal(request).id)
    out = TokenCreated(token=TokenOut.of(issued, base_url(request)))
    return web.Response(status=201, text=out.model_dump_json(), content_type="application/json")


@operation(
    Operation(
        summary="An asset's usable share links, without their secrets",
        tag="tokens",
        responses={200: TokenList},
    )
)
async def list_tokens(request: web.Request) -> web.Response:
    """GET /asset/{id}/tokens"""
    tokens = await request.app[SERVICE].live_tokens(request.match_info["id"], owner=principal(request).id)
    out = TokenList(tokens=[TokenInfo.of(t) for t in tokens])
    return web.Response(text=out.model_dump_json(), content_type="application/json")


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
    await request.app[SERVICE].revoke_secret(request.match_info["token"])
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
    await request.app[SERVICE].revoke_id(
        request.match_info["id"], request.match_info["token_id"], owner=principal(request).id
    )
    return web.Response(status=204)
