"""One JSON error shape for every failure, whichever layer raised it."""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from gateway.errors import GatewayError
from gateway.http.models import ErrorDetail, ErrorResponse

log = logging.getLogger("gateway.http")

_AIOHTTP_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    411: "length_required",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


def error_response(
    status: int, code: str, message: str, details: dict[str, Any] | None = None
) -> web.Response:
    detail = ErrorDetail(code=code, message=message, **(details or {}))
    body = ErrorResponse(error=detail).model_dump_json(exclude_none=True)
    return web.Response(status=status, text=body, content_type="application/json")


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except GatewayError as exc:
        resp = error_response(exc.status, exc.code, exc.message, exc.details)
        resp.headers.update(exc.headers())
        if exc.closes_connection:
            # Answer, then hang up: waiting for the rest of a stalled body is what the timeout ended.
            resp.force_close()
            await resp.prepare(request)
            await resp.write_eof()
            if request.transport is not None:
                request.transport.close()  # after the buffered answer is flushed
        return resp
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        resp = error_response(exc.status, _AIOHTTP_CODES.get(exc.status, "error"), exc.reason)
        for name in ("Allow",):
            if name in exc.headers:
                resp.headers[name] = exc.headers[name]
        return resp
    except ConnectionError:
        if request.transport is None or request.transport.is_closing():
            # The client hung up (mid-body, or before the headers could go out): nobody to answer.
            # A plain response lets aiohttp finish quietly, where an exception is logged as a crash.
            return web.Response(status=499)
        raise
    except Exception:
        # The route template only: a raw path can hold a share-link secret (/asset-token/<secret>).
        log.exception("unhandled error on %s %s", request.method, route_template(request))
        return error_response(500, "internal", "internal server error")


def route_template(request: web.Request) -> str:
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "-"
