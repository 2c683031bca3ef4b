"""GET /usage: what the caller's quota scope stores and may still store (service/quotas.py)."""

from __future__ import annotations

from aiohttp import web

from gateway.errors import Forbidden
from gateway.http.keys import SERVICE, principal
from gateway.http.models import UsageOut
from gateway.http.openapi import Operation, operation


@operation(
    Operation(
        summary="Stored bytes and assets of the caller's owner or tenant, with its quota",
        tag="assets",
        responses={200: UsageOut},
        errors=(401, 403),
    )
)
async def get_usage(request: web.Request) -> web.Response:
    who = principal(request)
    if not who.authenticated:
        raise Forbidden("usage needs credentials", code="forbidden")
    svc = request.app[SERVICE]
    report = await svc.quotas.report(svc.placer.scope_of(who))
    q, used = report.quota, report.used
    out = UsageOut(
        scope=report.scope,
        bytes=used.bytes,
        assets=used.assets,
        max_bytes=q.max_bytes,
        max_assets=q.max_assets,
        remaining_bytes=None if q.max_bytes is None else max(0, q.max_bytes - used.bytes),
        remaining_assets=None if q.max_assets is None else max(0, q.max_assets - used.assets),
    )
    return web.Response(text=out.model_dump_json(), content_type="application/json")
