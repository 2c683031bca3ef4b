"""Typed application and request keys: the only things handlers pull out of app and request."""

from __future__ import annotations

import asyncio

from aiohttp import web

from gateway.auth import Authenticator, Principal
from gateway.config import Settings
from gateway.observability import Metrics
from gateway.service import Services


class InFlight:
    """Requests being handled, and whether the server is draining for shutdown."""

    def __init__(self) -> None:
        self.count = 0
        self.draining = False
        self.idle = asyncio.Event()
        self.idle.set()

    def enter(self) -> None:
        self.count += 1
        self.idle.clear()

    def leave(self) -> None:
        self.count -= 1
        if self.count == 0:
            self.idle.set()


SETTINGS = web.AppKey("settings", Settings)
INFLIGHT = web.AppKey("inflight", InFlight)
SERVICE = web.AppKey("service", Services)
AUTH = web.AppKey("auth", Authenticator)
METRICS = web.AppKey("metrics", Metrics)
PRINCIPAL = web.RequestKey("principal", Principal)
REQUEST_ID = web.RequestKey("request_id", str)


def principal(request: web.Request) -> Principal:
    return request[PRINCIPAL]
