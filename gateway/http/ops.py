"""Operational endpoints: health of storage and catalog, and the OpenAPI description."""

from __future__ import annotations

import time

from aiohttp import hdrs, web
from prometheus_client import CONTENT_TYPE_LATEST

from gateway.http.keys import AUTH, METRICS, SERVICE
from gateway.http.models import HealthResponse
from gateway.http.openapi import Operation, Param, build_spec, operation


@operation(
    Operation(
        summary="Liveness and reachability of storage and catalog",
        tag="operations",
        public=True,
        params=(Param("detail", "1: also the outbox backlog (webhooks, scans, backups, transfers)"),),
        responses={200: HealthResponse, 500: HealthResponse},
        errors=(),
    )
)
async def healthcheck(request: web.Request) -> web.Response:
    """Probed at most once per ``health_cache_seconds`` (service/health.py); ``Age``: how old it is."""
    health = await request.app[SERVICE].health.check()
    headers = {hdrs.AGE: str(int(health.age(time.monotonic()))), hdrs.CACHE_CONTROL: "no-store"}
    storages = None
    if len(health.storages) > 1:
        storages = {name: error or "ok" for name, error in health.storages.items()}
    if not health.ok:
        body = HealthResponse(status="error", error=health.error, storages=storages)
        return web.Response(
            status=500,
            text=body.model_dump_json(exclude_none=True),
            content_type="application/json",
            headers=headers,
        )
    # The contract's body is exactly {"status": "success"}; the outbox backlog is there when asked for.
    detail = request.query.get("detail", "") in ("1", "true")
    body = HealthResponse(status="success", storages=storages, workers=health.workers if detail else None)
    return web.Response(
        text=body.model_dump_json(exclude_none=True), content_type="application/json", headers=headers
    )


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


@operation(
    Operation(
        summary="Prometheus metrics (text exposition format)",
        tag="operations",
        public=True,
        responses={200: "metrics"},
        errors=(),
    )
)
async def metrics_endpoint(request: web.Request) -> web.Response:
    body = request.app[METRICS].exposition()
    return web.Response(body=body, headers={hdrs.CONTENT_TYPE: CONTENT_TYPE_LATEST})
