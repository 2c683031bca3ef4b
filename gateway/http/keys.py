"""Typed application and request keys: the only things handlers pull out of app and request."""

from __future__ import annotations

from aiohttp import web

from gateway.assets import AssetService
from gateway.auth import Authenticator, Principal
from gateway.config import Settings
from gateway.observability import Metrics

SETTINGS = web.AppKey("settings", Settings)
SERVICE = web.AppKey("service", AssetService)
AUTH = web.AppKey("auth", Authenticator)
METRICS = web.AppKey("metrics", Metrics)
PRINCIPAL = web.RequestKey("principal", Principal)
REQUEST_ID = web.RequestKey("request_id", str)


def principal(request: web.Request) -> Principal:
    return request[PRINCIPAL]
