"""Typed application and request keys: the only things handlers pull out of app and request."""

from __future__ import annotations

from aiohttp import web

from gateway.assets import AssetService
from gateway.auth import Authenticator, Principal
from gateway.config import Settings

SETTINGS = web.AppKey("settings", Settings)
SERVICE = web.AppKey("service", AssetService)
AUTH = web.AppKey("auth", Authenticator)
PRINCIPAL = web.RequestKey("principal", Principal)


def principal(request: web.Request) -> Principal:
    return request[PRINCIPAL]
