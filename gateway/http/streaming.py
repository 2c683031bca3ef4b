"""The download engine: one path from a representation to bytes on the wire, for files and zips alike.

    plan      conditionals (304), If-Range and one Range (206/416) from size, ETag and mtime alone
    open      the bytes to send (a blob, or a zip's segments), before anything is counted
    admit     a share link's response is charged to a retrieval (``CountedLink``; service/tokens.py)
    prepare   headers go out; if that fails the charge is undone: a download counts only when sent
    send      read-ahead streaming; a storage failure after the headers aborts the TCP connection, so
              with an exact Content-Length a client sees a truncated transfer, never a short "complete" one;
              a local file is sent by the kernel instead (``sendfile.py``: one write when small)
    settle    an interrupted transfer gets its unsent bytes back (nothing to do when complete)

A single file and a zip differ only in their :class:`Representation`; HEAD, 304 and 416 never reach
``admit``, and neither does anything that fails before the response starts.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import BinaryIO

from aiohttp import hdrs, web

from gateway.http.keys import METRICS
from gateway.http.ranges import http_date, if_range_allows, not_modified, parse_range
from gateway.http.sendfile import SMALL_BODY, abort, end_body, read_small, send_buffered, send_file, settle
from gateway.ports import BlobReader
from gateway.records import Token
from gateway.service.tokens import Admission, Tokens

log = logging.getLogger("gateway.http")


@dataclass(frozen=True)
class Representation:
    """What a GET of one resource returns: its validators, its headers, and how to read a byte window."""

    size: int
    etag: str
    mtime: float
    headers: dict[str, str]  # Content-Type, Content-Disposition, Cache-Control
    open: Callable[[int, int], Awaitable[BlobReader]]  # (offset, length) -> reader
    what: str  # for logs: never a secret
    sha256: bytes | None = None  # of the whole representation, when known (files: yes; zips: no)


@dataclass(frozen=True)
class CountedLink:
    """A share link whose downloads are counted, and the client address its retrievals belong to."""

    tokens: Tokens
    token: Token
    address: str

    async def admit(self, planned: Plan, size: int) -> Admission:
        return await self.tokens.admit(
            self.token, self.address, length=planned.length, size=size, ranged=planned.status == 206
        )


@dataclass(frozen=True)
class Plan:
    status: int
    offset: int
    length: int
    headers: dict[str, str]


def plan(request: web.Request, rep: Representation) -> Plan | web.Response:
    """Status, byte window and headers for a GET/HEAD of ``rep``; or a ready 304. Raises 416."""
    headers = {
        hdrs.ETAG: rep.etag,
        hdrs.LAST_MODIFIED: http_date(rep.mtime),
        hdrs.ACCEPT_RANGES: "bytes",
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "sandbox",
        **rep.headers,
    }
    h = request.headers
    if rep.sha256 is not None and wants_sha256(h.get("Want-Repr-Digest")):
        headers["Repr-Digest"] = f"sha-256=:{base64.b64encode(rep.sha256).decode()}:"
    if request.method not in (hdrs.METH_GET, hdrs.METH_HEAD):  # POST /zip: always the whole archive
        return Plan(200, 0, rep.size, headers)
    if not_modified(h.get(hdrs.IF_NONE_MATCH), h.get(hdrs.IF_MODIFIED_SINCE), rep.etag, rep.mtime):
        keep = (hdrs.ETAG, hdrs.LAST_MODIFIED, hdrs.CACHE_CONTROL)
        return web.Response(status=304, headers={k: v for k, v in headers.items() if k in keep})
    rng = None
    if if_range_allows(h.get(hdrs.IF_RANGE), rep.etag, rep.mtime):
        rng = parse_range(h.get(hdrs.RANGE), rep.size)
    if rng is None:
        return Plan(200, 0, rep.size, headers)
    headers[hdrs.CONTENT_RANGE] = f"bytes {rng.start}-{rng.end}/{rep.size}"
    return Plan(206, rng.start, rng.length, headers)


def wants_sha256(header: str | None) -> bool:
    """RFC 9530 Want-Repr-Digest: send sha-256 unless the client gave it preference 0."""
    if not header:
        return True
    for item in header.split(","):
        alg, _, weight = item.partition("=")
        if alg.strip().lower() == "sha-256":
            return weight.strip() not in ("0", "0.0")
    return True  # it asked for others only: sha-256 is what we have, and it costs nothing to send


async def serve(
    request: web.Request,
    rep: Representation,
    *,
    link: CountedLink | None = None,
    redirect: Callable[[], Awaitable[str | None]] | None = None,
) -> web.StreamResponse:
    planned = plan(request, rep)
    if isinstance(planned, web.Response):
        return planned
    resp: web.StreamResponse = web.StreamResponse(status=planned.status, headers=planned.headers)
    resp.content_length = planned.length
    if request.method == hdrs.METH_HEAD:
        await resp.prepare(request)
        return resp
    if redirect is not None and (location := await redirect()) is not None:
        if link is not None:  # what the client then fetches from storage is not seen: charged whole
            admitted = await link.admit(planned, rep.size)
            await link.tokens.settle(admitted, admitted.charged, 302)
        return web.Response(status=302, headers={hdrs.LOCATION: location, hdrs.CACHE_CONTROL: "no-store"})
    reader = await rep.open(planned.offset, planned.length)
    try:
        # The LocalFile capability (ports.py); getattr, not isinstance: a Protocol check costs ~10 µs.
        local_file = getattr(reader, "local_file", None)
        source: BinaryIO | None = local_file() if local_file is not None else None
        if source is not None and planned.length <= SMALL_BODY:
            body = read_small(source, planned.offset, planned.length)
            resp = web.Response(status=planned.status, headers=planned.headers, body=body)
        admission = await link.admit(planned, rep.size) if link is not None else None
        try:
            await resp.prepare(request)
        except BaseException:
            if link is not None and admission is not None:
                await asyncio.shield(link.tokens.undo(admission))
            raise

        on_end: Callable[[int], Awaitable[None]] | None = None
        if link is not None and admission is not None:
            counted_link, counted = link, admission

            async def on_end(sent: int) -> None:
                await counted_link.tokens.settle(counted, sent, planned.status)

        if isinstance(resp, web.Response):
            return await send_buffered(request, resp, on_end=on_end)
        if source is not None:
            sent = await send_file(
                request, resp, source, planned.offset, planned.length, rep.what, on_end=on_end
            )
            if sent is not None:
                return sent
        return await send_body(request, resp, aiter(reader), planned.length, rep.what, on_end=on_end)
    finally:
        await reader.aclose()


async def read_ahead(chunks: AsyncIterator[bytes]) -> AsyncGenerator[bytes, None]:
    """Fetch the next chunk while the current one is written: storage and socket work overlap.

    Depth one, so memory stays at two chunks. For zips the "next chunk" may be opening the next member,
    which happens only after the previous member's stream has closed (one member stream at a time).
    """
    pending: asyncio.Future[bytes] = asyncio.ensure_future(anext(chunks))
    try:
        while True:
            try:
                chunk = await pending
            except StopAsyncIteration:
                return
            pending = asyncio.ensure_future(anext(chunks))
            yield chunk
    finally:
        if not pending.done():
            pending.cancel()
        await asyncio.gather(pending, return_exceptions=True)


async def send_body(
    request: web.Request,
    resp: web.StreamResponse,
    chunks: AsyncIterator[bytes],
    length: int,
    what: str,
    *,
    on_end: Callable[[int], Awaitable[None]] | None = None,
) -> web.StreamResponse:
    """Stream ``length`` bytes; ``on_end(sent)`` runs however it ends (complete, storage failure, the
    client gone), shielded from cancellation."""
    sent = 0
    counter = request.app[METRICS].bytes_out
    ahead = read_ahead(chunks)
    try:
        try:
            async for chunk in ahead:
                # Counted when handed to the socket, before the drain: if the client vanishes mid-chunk
                # the refund errs toward serving fewer bytes for free, never more.
                sent += len(chunk)
                counter.inc(len(chunk))
                await resp.write(chunk)
        except ConnectionError:
            raise
        except Exception:
            log.exception("%s aborted after %d of %d bytes", what, sent, length)
            abort(request)
            return resp
        finally:
            await ahead.aclose()
        return await end_body(request, resp, sent, length, what)
    finally:
        await settle(on_end, sent)
