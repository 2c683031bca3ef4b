"""Rate limits for anonymous uploads and link downloads (off unless configured): 429 + Retry-After.

Fixed one-minute windows counted **per process** (documented): with N processes a client can make up to
N times the limit. That is the right trade for a request-rate brake — it costs nothing per request —
whereas what must hold exactly across processes (download limits, password guessing) is in the catalog.
Keys are the client address (open mode, and link downloads) or the principal (secured uploads); the
table holds at most ``MAX_KEYS`` keys, oldest evicted first, so a flood of addresses cannot grow it.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict

from aiohttp import web
from aiohttp.typedefs import Handler

from gateway.errors import TooManyRequests
from gateway.http.clients import client_address
from gateway.http.keys import METRICS, PRINCIPAL, SETTINGS
from gateway.http.routes import route_of

MAX_KEYS = 100_000


class MinuteWindows:
    def __init__(self, max_keys: int = MAX_KEYS) -> None:
        self._counts: OrderedDict[tuple[str, str], tuple[int, int]] = OrderedDict()
        self._max_keys = max_keys

    def hit(self, kind: str, key: str, limit: int, now: float) -> int | None:
        """Count one request; None when allowed, else the seconds until the window ends."""
        minute = int(now // 60)
        slot = (kind, key)
        start, count = self._counts.get(slot, (minute, 0))
        if start != minute:
            start, count = minute, 0
        if count >= limit:
            return math.ceil((minute + 1) * 60 - now)
        self._counts[slot] = (start, count + 1)
        self._counts.move_to_end(slot)
        while len(self._counts) > self._max_keys:
            self._counts.popitem(last=False)
        return None


WINDOWS = web.AppKey("rate_windows", MinuteWindows)


@web.middleware
async def rate_limit_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    settings = request.app[SETTINGS]
    route = route_of(request)
    limited: tuple[str, str, int] | None = None
    if route is not None and route.transfer == "upload" and settings.rate_limit_uploads:
        who = request.get(PRINCIPAL)
        key = who.id if who is not None and who.authenticated else f"addr:{client_address(request)}"
        limited = ("upload", key, settings.rate_limit_uploads)
    elif route is not None and route.link_download and settings.rate_limit_link_downloads:
        limited = ("link_download", client_address(request), settings.rate_limit_link_downloads)
    if limited is not None:
        kind, key, limit = limited
        retry_after = request.app[WINDOWS].hit(kind, key, limit, time.time())
        if retry_after is not None:
            request.app[METRICS].rate_limited.labels(kind).inc()
            raise TooManyRequests(f"too many requests; at most {limit} per minute", retry_after=retry_after)
    return await handler(request)
