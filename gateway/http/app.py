"""Application assembly: routes, middleware, and the one place backends are opened and closed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from aiohttp import web

from gateway.assets import AssetService
from gateway.auth import Authenticator
from gateway.catalog import catalog_from_settings
from gateway.config import Settings
from gateway.errors import GatewayError
from gateway.http import downloads, manage, tokens, uploads
from gateway.http.auth import auth_middleware
from gateway.http.docs_page import docs_page
from gateway.http.errors import error_middleware
from gateway.http.keys import AUTH, INFLIGHT, METRICS, SERVICE, SETTINGS, InFlight
from gateway.http.models import HealthResponse
from gateway.http.observe import (
    add_request_id,
    cors_preflight_middleware,
    metrics_endpoint,
    observe_middleware,
)
from gateway.http.openapi import Operation, build_spec, operation
from gateway.observability import Metrics, Timed
from gateway.ports import BlobStore, Catalog
from gateway.storage import blob_store_from_settings

HEALTH_TIMEOUT = 5.0


@operation(
    Operation(
        summary="Liveness and reachability of storage and catalog",
        tag="operations",
        public=True,
        responses={200: HealthResponse, 500: HealthResponse},
        errors=(),
    )
)
async def healthcheck(request: web.Request) -> web.Response:
    svc = request.app[SERVICE]
    try:
        async with asyncio.timeout(HEALTH_TIMEOUT):
            await asyncio.gather(svc.store.ping(), svc.catalog.ping())
    except (GatewayError, TimeoutError) as exc:
        message = getattr(exc, "message", None) or "storage or catalog timed out"
        body = HealthResponse(status="error", error=message)
        return web.Response(status=500, text=body.model_dump_json(), content_type="application/json")
    body = HealthResponse(status="success")
    return web.Response(text=body.model_dump_json(exclude_none=True), content_type="application/json")


@operation(
    Operation(
        summary="This description",
        tag="operations",
        public=True,
        responses={200: "OpenAPI 3.1 document"},
        errors=(),
    )
)
async def openapi_json(request: web.Request) -> web.Response:
    spec = build_spec(request.app, secured=request.app[AUTH].secured)
    return web.json_response(spec)


def create_app(
    settings: Settings, *, store: BlobStore | None = None, catalog: Catalog | None = None
) -> web.Application:
    """Build the app; backends come from ``settings`` unless injected (tests inject started ones)."""
    app = web.Application(
        middlewares=[observe_middleware, cors_preflight_middleware, error_middleware, auth_middleware],
        client_max_size=1024**2,
    )
    app[SETTINGS] = settings
    app[AUTH] = Authenticator(settings)
    app[METRICS] = metrics = Metrics()
    app[INFLIGHT] = InFlight()
    app.on_response_prepare.append(add_request_id)

    async def backends(app: web.Application) -> AsyncIterator[None]:
        blob = store or blob_store_from_settings(settings)
        cat = catalog or catalog_from_settings(settings)
        await blob.start()
        try:
            await cat.start()
            try:
                if settings.auto_init:
                    await blob.init()
                    await cat.init()
                service = AssetService(
                    Timed(blob, "storage", metrics), Timed(cat, "catalog", metrics), settings
                )
                app[SERVICE] = service
                sweeper = asyncio.create_task(service.sweeper(), name="retention-sweeper")
                try:
                    yield
                finally:
                    sweeper.cancel()
                    await asyncio.gather(sweeper, return_exceptions=True)
            finally:
                await cat.close()
        finally:
            await blob.close()

    app.cleanup_ctx.append(backends)
    r = app.router
    r.add_get("/healthcheck", healthcheck, name="healthcheck")
    r.add_get("/metrics", metrics_endpoint, name="metrics")
    r.add_get("/openapi.json", openapi_json, name="openapi")
    r.add_get("/docs", docs_page, name="docs")
    r.add_post("/asset", uploads.upload_form_or_json, name="upload-form")
    r.add_post("/asset/{name}", uploads.upload_raw, name="upload-raw-post")
    r.add_put("/asset/{name}", uploads.upload_raw, name="upload-raw-put")
    r.add_get("/asset/{id}", downloads.download_asset, name="asset-download")  # GET also answers HEAD
    r.add_delete("/asset/{id}", manage.delete_asset, name="asset-delete")
    r.add_get("/asset/{id}/meta", manage.asset_meta, name="asset-meta")
    r.add_put("/asset/{id}/content", manage.put_content, name="asset-content")
    r.add_get("/assets", manage.list_assets, name="asset-list")
    r.add_get("/asset-token/{token}", downloads.download_token, name="token-download")
    r.add_delete("/asset-token/{token}", tokens.revoke_by_secret, name="token-revoke")
    r.add_post("/asset/{id}/tokens", tokens.create_token, name="token-create")
    r.add_get("/asset/{id}/tokens", tokens.list_tokens, name="token-list")
    r.add_delete("/asset/{id}/tokens/{token_id}", tokens.revoke_by_id, name="token-revoke-id")
    r.add_post("/zip", downloads.create_zip, name="zip")
    r.add_post("/bundle", downloads.create_bundle, name="bundle")
    return app
