"""A fault-injecting HTTP proxy that sits between the gateway and S3 or DynamoDB in tests.

Real engines fail in more ways than an error status: connections reset, responses stall past the
client's timeout, bodies stop half-way. moto and Ceph cannot be asked to do any of that, so the tests
put this proxy on the backend's endpoint and decide, per request, what happens to it. The proxy forwards
the gateway's headers untouched (``Host`` included: it is part of the SigV4 signature) and streams
response bodies through, so a truncation can land in the middle of a large GET.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

from gateway.config import Settings

MiB = 1024 * 1024


@dataclass(frozen=True)
class Respond:
    """Answer with this status and an S3/DynamoDB-shaped error body instead of forwarding."""

    status: int


@dataclass(frozen=True)
class Reset:
    """Drop the connection without answering (the request is not forwarded)."""


@dataclass(frozen=True)
class Stall:
    """Say nothing for ``seconds`` (longer than the gateway's read timeout), then drop the connection."""

    seconds: float


@dataclass(frozen=True)
class Truncate:
    """Forward, send the response headers and ``after`` bytes of the body, then drop the connection."""

    after: int


@dataclass(frozen=True)
class LoseAnswer:
    """Forward the request (it takes effect upstream), then drop the connection without answering."""


Action = Respond | Reset | Stall | Truncate | LoseAnswer
Rule = Callable[[web.Request], Action | None]  # None: forward untouched


def is_upload_part(request: web.Request) -> bool:
    return request.method == "PUT" and "partNumber" in request.query


def is_get_object(request: web.Request) -> bool:
    return request.method == "GET" and request.path.count("/") >= 2 and not request.query.get("list-type")


def dynamodb_op(request: web.Request) -> str:
    return request.headers.get("X-Amz-Target", "").rsplit(".", 1)[-1]


def _abort(request: web.Request) -> None:
    if request.transport is not None:
        request.transport.abort()


@asynccontextmanager
async def fault_proxy(upstream: str, rule: Rule) -> AsyncIterator[str]:
    """Serve on 127.0.0.1 and yield the proxy's base URL; ``rule`` picks each request's fate."""
    session = aiohttp.ClientSession(auto_decompress=False, timeout=aiohttp.ClientTimeout(total=120))

    async def forward(request: web.Request) -> web.StreamResponse:
        action = rule(request)
        body = await request.read()
        if isinstance(action, Respond):
            if dynamodb_op(request):
                error = (
                    b'{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"injected"}'
                )
                return web.Response(
                    status=action.status, body=error, content_type="application/x-amz-json-1.0"
                )
            error = b"<Error><Code>InternalError</Code><Message>injected</Message></Error>"
            return web.Response(status=action.status, body=error, content_type="application/xml")
        if isinstance(action, Reset):
            _abort(request)
            return web.Response()
        if isinstance(action, Stall):
            await asyncio.sleep(action.seconds)
            _abort(request)
            return web.Response()
        headers = {k: v for k, v in request.headers.items() if k.lower() != "content-length"}
        async with session.request(
            request.method, upstream + request.path_qs, headers=headers, data=body
        ) as up:
            if isinstance(action, LoseAnswer):
                await up.read()
                _abort(request)
                return web.Response()
            drop = ("transfer-encoding", "content-encoding", "connection")
            resp = web.StreamResponse(
                status=up.status, headers={k: v for k, v in up.headers.items() if k.lower() not in drop}
            )
            if "Content-Length" in up.headers:
                resp.content_length = int(up.headers["Content-Length"])
            await resp.prepare(request)
            sent = 0
            limit = action.after if isinstance(action, Truncate) else None
            async for chunk in up.content.iter_chunked(256 * 1024):
                if limit is not None and sent + len(chunk) >= limit:
                    await resp.write(chunk[: limit - sent])
                    _abort(request)
                    return resp
                await resp.write(chunk)
                sent += len(chunk)
            await resp.write_eof()
            return resp

    app = web.Application(client_max_size=64 * MiB)
    app.router.add_route("*", "/{tail:.*}", forward)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield str(server.make_url("")).rstrip("/")
    finally:
        await server.close()
        await session.close()


def endpoint_of(url: str) -> str:
    return parse_qs(urlsplit(url).query)["endpoint"][0]


def via(settings: Settings, *, storage: str | None = None, catalog: str | None = None) -> Settings:
    """The same settings with the storage and/or catalog endpoint replaced by a proxy's."""
    update = {}
    if storage:
        update["storage_url"] = settings.storage_url.replace(endpoint_of(settings.storage_url), storage)
    if catalog:
        update["catalog_url"] = settings.catalog_url.replace(endpoint_of(settings.catalog_url), catalog)
    return settings.model_copy(update=update)
