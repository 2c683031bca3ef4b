"""Typed application keys: the only things handlers pull out of the app."""

from __future__ import annotations

from aiohttp import web

from gateway.assets import AssetService
from gateway.config import Settings

SETTINGS = web.AppKey("settings", Settings)
SERVICE = web.AppKey("service", AssetService)
