"""Per-request observability: request id, metrics, one JSON access-log line, and CORS.

The access log names the *route template* (``/asset-token/{token}``), never the raw path or query, so
share-link secrets, keys and credentials cannot end up in logs.
"""

from __future__ import annotations

import logging
import re
import secrets
import time

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler

from gateway.errors import GatewayError
from gateway.http.clients import client_address
from gateway.http.keys import INFLIGHT, METRICS, PRINCIPAL, REQUEST_ID, SETTINGS
from gateway.http.routes import route_of

access = logging.getLogger("gateway.access")
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
EXPOSED = (
    "Content-Length, Content-Range, Content-Disposition, ETag, Accept-Ranges, Last-Modified, X-Request-ID, "
    "Repr-Digest, Retry-After, WWW-Authenticate, Location, Tus-Resumable, Tus-Version, Tus-Extension, "
    "Tus-Max-Size, Tus-Checksum-Algorithm, Upload-Offset, Upload-Length, Upload-Metadata, Upload-Expires, "
    "Upload-Defer-Length, Upload-Concat, Asset-Id, Asset-Token, Asset-Token-Url"
)
ALLOWED_HEADERS = (
    "Authorization, Content-Type, Content-MD5, Digest, Repr-Digest, Content-Digest, Range, If-Range, "
    "If-None-Match, If-Modified-Since, X-Request-ID, Share-Password, Want-Repr-Digest, Tus-Resumable, "
    "Upload-Offset, Upload-Length, Upload-Metadata, Upload-Defer-Length, Upload-Concat, Upload-Checksum"
)


def route_name(request: web.Request) -> str:
    route = request.match_info.route
    if route.resource is None:
        return "unmatched"
    return route.name or route.resource.canonical


@web.middleware
async def observe_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    metrics = request.app[METRICS]
    incoming = request.headers.get("X-Request-ID")
    request[REQUEST_ID] = incoming if incoming and _REQUEST_ID.fullmatch(incoming) else secrets.token_hex(16)
    name = route_name(request)
    route = route_of(request)
    kind = route.transfer if route is not None else None
    inflight = request.app[INFLIGHT]
    if inflight.draining:  # a new request on a kept-alive connection during shutdown
        return web.json_response(
            {"error": {"code": "shutting_down", "message": "server is shutting down; retry"}},
            status=503,
            headers={hdrs.CONNECTION: "close", hdrs.RETRY_AFTER: "1"},
        )
    if kind:
        metrics.transfers(kind).inc()
    inflight.enter()
    start = time.perf_counter()
    status = 500
    try:
        resp = await handler(request)
        status = resp.status
        return resp
    except web.HTTPException as exc:
        status = exc.status
        raise
    except GatewayError as exc:
        status = exc.status
        raise
    except BaseException:
        status = 499  # the client went away (or a bug, which the error middleware logged)
        raise
    finally:
        inflight.leave()
        elapsed = time.perf_counter() - start
        if kind:
            metrics.transfers(kind).dec()
        metrics.count_request(name, request.method, status, elapsed)
        if route is not None and route.link_download and request.method != hdrs.METH_HEAD:
            if status in (200, 206, 302):
                metrics.token_claims.labels("granted").inc()
            elif status == 410:
                metrics.token_claims.labels("refused").inc()
        if access.isEnabledFor(logging.INFO):
            _access_line(request, status, elapsed)


def _access_line(request: web.Request, status: int, elapsed: float) -> None:
    who = request.get(PRINCIPAL)
    access.info(
        "request",
        extra={
            "fields": {
                "request_id": request[REQUEST_ID],
                "method": request.method,
                "route": request.match_info.route.resource.canonical
                if request.match_info.route.resource is not None
                else "-",
                "status": status,
                "duration_ms": round(elapsed * 1000, 2),
                "principal": who.id if who is not None else None,
                "remote": client_address(request),
            }
        },
    )


async def add_request_id(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: echo the request id on every response, streamed ones included."""
    rid = request.get(REQUEST_ID)
    if rid:
        response.headers["X-Request-ID"] = rid
    origins = request.app[SETTINGS].cors_origins
    origin = request.headers.get(hdrs.ORIGIN)
    if origin and origins and ("*" in origins or origin in origins):
        response.headers[hdrs.ACCESS_CONTROL_ALLOW_ORIGIN] = origin if "*" not in origins else "*"
        response.headers[hdrs.ACCESS_CONTROL_EXPOSE_HEADERS] = EXPOSED
        if "*" not in origins:
            response.headers[hdrs.VARY] = "Origin"


@web.middleware
async def cors_preflight_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answer CORS preflights (OPTIONS + Origin + Access-Control-Request-Method) for configured origins."""
    origins = request.app[SETTINGS].cors_origins
    origin = request.headers.get(hdrs.ORIGIN)
    if (
        request.method == hdrs.METH_OPTIONS
        and origin
        and hdrs.ACCESS_CONTROL_REQUEST_METHOD in request.headers
        and origins
        and ("*" in origins or origin in origins)
    ):
        return web.Response(
            status=204,
            headers={
                hdrs.ACCESS_CONTROL_ALLOW_ORIGIN: origin if "*" not in origins else "*",
                hdrs.ACCESS_CONTROL_ALLOW_METHODS: "GET, HEAD, POST, PUT, PATCH, DELETE",
                hdrs.ACCESS_CONTROL_ALLOW_HEADERS: ALLOWED_HEADERS,
                hdrs.ACCESS_CONTROL_MAX_AGE: "600",
                hdrs.VARY: "Origin",
            },
        )
    return await handler(request)
