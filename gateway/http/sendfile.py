"""Sending a local file's window without streaming it through Python (the ``LocalFile`` capability).

Two cases, both cheaper than the general read-ahead loop in ``streaming.py``:

- **small** (up to ``SMALL_BODY``): one ``pread`` on the event loop and one socket write carrying the
  headers and the body together. From the page cache that read costs microseconds, a thread handoff
  ~50-100 µs; most of a small download was that handoff. (A cold read blocks the loop for one disk read
  of at most 64 KiB, the trade nginx makes too.)
- **large**: ``loop.sendfile`` (``sendfile(2)``): the kernel copies page cache to socket, no user-space
  buffer, no thread, no per-chunk Python; ranges are an offset and a count. Transports that cannot
  (TLS) fall back to the streaming loop.

Both keep the engine's rules: bytes are counted when handed to the kernel, ``on_end(sent)`` runs
however the response ends, and a file shorter than its catalog entry is never sent as a "complete"
response: before the headers that is a storage error, after them the connection is aborted.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable
from typing import BinaryIO

from aiohttp import web

from gateway.errors import StorageError
from gateway.http.keys import METRICS

log = logging.getLogger("gateway.http")
SMALL_BODY = 64 * 1024


def read_small(fh: BinaryIO, offset: int, length: int) -> bytes:
    """The whole window, or a storage error before anything is sent."""
    data = os.pread(fh.fileno(), length, offset)
    if len(data) != length:
        raise StorageError("blob is shorter than its catalog entry")
    return data


async def send_buffered(
    request: web.Request, resp: web.Response, on_end: Callable[[int], Awaitable[None]] | None
) -> web.StreamResponse:
    """``resp`` (prepared, body set) goes out in one write with its headers."""
    sent = resp.content_length or 0
    request.app[METRICS].bytes_out.inc(sent)
    try:
        await resp.write_eof()
        return resp
    finally:
        await settle(on_end, sent)


async def send_file(
    request: web.Request,
    resp: web.StreamResponse,
    fh: BinaryIO,
    offset: int,
    length: int,
    what: str,
    on_end: Callable[[int], Awaitable[None]] | None,
) -> web.StreamResponse | None:
    """sendfile ``length`` bytes from ``offset``; None when the transport cannot (the caller streams)."""
    transport = request.transport
    if transport is None:
        raise ConnectionResetError("the client went away")
    sent = 0
    settled_here = True
    try:
        try:
            sent = await asyncio.get_running_loop().sendfile(transport, fh, offset, length, fallback=False)
        except asyncio.SendfileNotAvailableError:
            settled_here = False  # nothing was sent; the streaming loop takes over, and settles
            return None
        except ConnectionError:
            sent = max(0, fh.tell() - offset)  # asyncio leaves the position after what was sent
            abort(request)  # the peer is gone; the transport learns it only now
            raise
        except OSError:
            sent = max(0, fh.tell() - offset)
            log.exception("%s aborted after %d of %d bytes", what, sent, length)
            abort(request)
            return resp
        finally:
            request.app[METRICS].bytes_out.inc(sent)
        return await end_body(request, resp, sent, length, what)
    finally:
        if settled_here:
            await settle(on_end, sent)


async def end_body(
    request: web.Request, resp: web.StreamResponse, sent: int, length: int, what: str
) -> web.StreamResponse:
    """After the last byte: a body shorter than announced is never ended cleanly (the connection is
    aborted, so the client sees a truncated transfer), a complete one is."""
    if sent != length:
        log.error("%s: storage ended after %d of %d bytes", what, sent, length)
        abort(request)
        return resp
    await resp.write_eof()
    return resp


async def settle(on_end: Callable[[int], Awaitable[None]] | None, sent: int) -> None:
    """Run a response's ``on_end(sent)`` however it ended, shielded from the handler's cancellation."""
    if on_end is not None:
        await asyncio.shield(on_end(sent))


def abort(request: web.Request) -> None:
    """Hang up without a clean end: with an exact Content-Length the client sees a truncated body."""
    if request.transport is not None:
        request.transport.abort()
