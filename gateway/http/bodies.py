"""Reading a JSON request body into a pydantic model: one size rule, one media-type rule, one error shape."""

from __future__ import annotations

from typing import TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from gateway.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType

M = TypeVar("M", bound=BaseModel)


async def read_json(request: web.Request, model: type[M], *, max_bytes: int, allow_empty: bool = False) -> M:
    """Parse the body as ``model``: 413 over ``max_bytes``, 415 if not JSON, 400 if invalid.

    ``allow_empty``: an absent body means "all defaults" (e.g. minting a token with default expiry).
    """
    if request.content_length is not None and request.content_length > max_bytes:
        raise PayloadTooLarge(f"JSON body larger than {max_bytes} bytes")
    raw = await request.content.read(max_bytes + 1)
    if len(raw) > max_bytes:
        raise PayloadTooLarge(f"JSON body larger than {max_bytes} bytes")
    if allow_empty and not raw.strip():
        return model()
    if request.content_type != "application/json":
        raise UnsupportedMediaType("send the body as application/json")
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise BadRequest(f"invalid JSON body: {where}: {first['msg']}", code="invalid_json") from None
