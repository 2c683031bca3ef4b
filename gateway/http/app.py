"""Application assembly: middleware, routes, and the one place backends are opened and closed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack

from aiohttp import web

from gateway.auth import Authenticator
from gateway.catalog import catalog_from_settings
from gateway.config import Settings
from gateway.http.auth import auth_middleware
from gateway.http.bodies import close_if_body_unread
from gateway.http.errors import error_middleware
from gateway.http.keys import AUTH, INFLIGHT, METRICS, SERVICE, SETTINGS, InFlight
from gateway.http.observe import add_request_id, cors_preflight_middleware, observe_middleware
from gateway.http.page_kit import setup_pages
from gateway.http.ratelimit import WINDOWS, MinuteWindows, rate_limit_middleware
from gateway.http.routes import add_routes
from gateway.observability import Metrics, Timed
from gateway.ports import BlobStore, Catalog
from gateway.service import Services
from gateway.service.context import Backends
from gateway.service.dispatch import Dispatcher
from gateway.sinks import Sinks
from gateway.storage.registry import open_storages


def create_app(
    settings: Settings, *, store: BlobStore | None = None, catalog: Catalog | None = None
) -> web.Application:
    """Build the app; backends come from ``settings`` unless injected (tests inject started ones)."""
    app = web.Application(
        middlewares=[
            observe_middleware,
            cors_preflight_middleware,
            error_middleware,
            auth_middleware,
            rate_limit_middleware,
        ],
        client_max_size=1024**2,
    )
    app[SETTINGS] = settings
    app[AUTH] = Authenticator(settings)
    app[METRICS] = metrics = Metrics()
    app[INFLIGHT] = InFlight()
    app[WINDOWS] = MinuteWindows()
    app.on_response_prepare.append(add_request_id)
    app.on_response_prepare.append(close_if_body_unread)

    async def backends(app: web.Application) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            storages = await open_storages(
                settings, stack, injected=store, wrap=lambda s: Timed(s, "storage", metrics)
            )
            cat = catalog or catalog_from_settings(settings)
            await cat.start()
            stack.push_async_callback(cat.close)
            if settings.auto_init:
                await cat.init()
            composed = Backends.compose(
                storages,
                Timed(cat, "catalog", metrics),
                settings,
                client_secret=await cat.shared_secret("client-id"),
            )
            services = Services.of(composed, on_sweep_failure=metrics.sweep_failures.inc)
            app[SERVICE] = services
            sinks = Sinks(settings)
            sinks.internal["scan"] = services.scanning.handle
            sinks.internal["backup"] = services.backups.handle
            sinks.internal["transfer"] = services.transfers.handle
            services.assets.on_failover = metrics.backup_reads.inc
            stack.push_async_callback(sinks.close)
            dispatcher = Dispatcher(
                composed,
                services.events,
                services.webhooks,
                sinks,
                on_attempt=lambda outcome: metrics.event_deliveries.labels(outcome).inc(),
            )
            workers = [
                asyncio.create_task(services.retention.sweeper(), name="retention-sweeper"),
                asyncio.create_task(dispatcher.run(), name="event-dispatcher"),
            ]
            try:
                yield
            finally:
                for task in workers:
                    task.cancel()
                await asyncio.gather(*workers, return_exceptions=True)
                await services.close()

    app.cleanup_ctx.append(backends)
    setup_pages(app)
    add_routes(app)
    return app
