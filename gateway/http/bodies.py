"""Reading request bodies: one place for `Expect: 100-continue`, the idle timeout and the JSON rules.

Every handler that consumes a body does it through :func:`body_chunks` (or :func:`read_json`, built on
it), so three rules hold everywhere:

- ``100 Continue`` is sent only when the handler starts reading, i.e. after authentication, the name,
  the parameters and the announced length were checked. A client that waits for it (curl does for
  bodies over 1 MiB) gets its 401/403/413/400 without having sent a byte. aiohttp's default answers
  ``100 Continue`` before any middleware runs; :func:`defer_continue` replaces it on every route.
- A body that stops moving for ``body_idle_timeout`` seconds ends the request (408) and the connection;
  the timeout is between chunks, so a slow but moving upload is never cut off.
- A JSON body is read to its end (not "what happens to be buffered"), capped, then validated.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TypeVar

from aiohttp import hdrs, web
from aiohttp.http import HttpVersion11
from pydantic import BaseModel, ValidationError

from gateway.errors import (
    BadRequest,
    ClientGone,
    ExpectationFailed,
    GatewayError,
    PayloadTooLarge,
    RequestTimeout,
    UnsupportedMediaType,
)
from gateway.http.errors import error_response
from gateway.http.keys import METRICS, SETTINGS

M = TypeVar("M", bound=BaseModel)
EXPECTS_CONTINUE = web.RequestKey("expects_continue", bool)
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


async def defer_continue(request: web.Request) -> web.StreamResponse | None:
    """Route expect handler: remember the client waits for ``100 Continue``; send nothing yet."""
    expect = request.headers.get(hdrs.EXPECT, "")
    if expect.lower() != "100-continue":
        err = ExpectationFailed("only 'Expect: 100-continue' is supported")
        return error_response(err.status, err.code, err.message)
    if request.version == HttpVersion11:
        request[EXPECTS_CONTINUE] = True
    return None


async def send_continue(request: web.Request) -> None:
    """Tell a waiting client to send its body (once); called right before the first read."""
    if request.get(EXPECTS_CONTINUE):
        request[EXPECTS_CONTINUE] = False
        await request.writer.write(_CONTINUE)
        request.writer.output_size = 0


async def close_if_body_unread(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: a client still waiting for ``100 Continue`` never sends its body; tell it the
    connection ends here rather than leave aiohttp waiting for bytes that will not come."""
    if request.get(EXPECTS_CONTINUE):
        response.force_close()


async def _timed_read(request: web.Request, idle: float) -> bytes:
    try:
        async with asyncio.timeout(idle):
            return await request.content.readany()
    except TimeoutError:
        raise RequestTimeout(f"no request body data for {idle:g} seconds") from None


async def body_chunks(request: web.Request) -> AsyncIterator[bytes]:
    """The raw body, chunk by chunk as it arrives (backpressure reaches the client's socket)."""
    await send_continue(request)
    counter = request.app[METRICS].bytes_in
    idle = request.app[SETTINGS].body_idle_timeout
    try:
        while chunk := await _timed_read(request, idle):
            counter.inc(len(chunk))
            yield chunk
    except GatewayError:
        raise
    except Exception as exc:  # a broken or truncated body is the client's doing
        raise ClientGone(f"request body ended early: {type(exc).__name__}") from exc


async def read_json(request: web.Request, model: type[M], *, max_bytes: int, allow_empty: bool = False) -> M:
    """Parse the whole body as ``model``: 413 over ``max_bytes``, 415 if not JSON, 400 if invalid.

    ``allow_empty``: an absent body means "all defaults" (e.g. minting a token with default expiry).
    Length and media type are checked from the headers first, so a wrong request reads nothing.
    """
    if request.content_length is not None and request.content_length > max_bytes:
        raise PayloadTooLarge(f"JSON body larger than {max_bytes} bytes")
    if allow_empty and (request.content_length == 0 or not request.can_read_body):
        return model()
    if request.content_type != "application/json" and not allow_empty:
        raise UnsupportedMediaType("send the body as application/json")
    raw = bytearray()
    async for chunk in body_chunks(request):
        raw += chunk
        if len(raw) > max_bytes:
            raise PayloadTooLarge(f"JSON body larger than {max_bytes} bytes")
    if allow_empty and not raw.strip():
        return model()
    if request.content_type != "application/json":
        raise UnsupportedMediaType("send the body as application/json")
    try:
        return model.model_validate_json(bytes(raw))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise BadRequest(f"invalid JSON body: {where}: {first['msg']}", code="invalid_json") from None
