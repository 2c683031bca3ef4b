"""Every route, declared once: method, path, name (metric label and operationId), handler, transfer kind.

Whether a route is public is part of its OpenAPI :class:`~gateway.http.openapi.Operation` (on the
handler), so the spec, the auth middleware and the metrics all read the same declaration; nothing
repeats route names in sets elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler

from gateway.http import (
    downloads,
    manage,
    ops,
    resumable,
    scan_source,
    share_page,
    thumbnails,
    tokens,
    transfers,
    upload_links,
    upload_page,
    uploads,
    usage,
    webhooks,
    zips,
)
from gateway.http.bodies import defer_continue
from gateway.http.docs_page import docs_page
from gateway.http.openapi import by_link, described
from gateway.http.page_kit import static_file

Transfer = Literal["upload", "download"]


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    name: str
    handler: Handler
    transfer: Transfer | None = None  # counted in gateway_transfers_in_flight
    link_download: bool = False  # spends a share link's download: rate-limited and counted as a claim


ROUTES: tuple[Route, ...] = (
    Route("GET", "/healthcheck", "healthcheck", ops.healthcheck),
    Route("GET", "/metrics", "metrics", ops.metrics_endpoint),
    Route("GET", "/openapi.json", "openapi", ops.openapi_json),
    Route("GET", "/docs", "docs", docs_page),
    Route("POST", "/asset", "upload-form", uploads.upload_form_or_json, "upload"),
    Route("POST", "/asset/{name}", "upload-raw-post", uploads.upload_raw, "upload"),
    Route("PUT", "/asset/{name}", "upload-raw-put", uploads.upload_raw, "upload"),
    Route("GET", "/asset/{id}", "asset-download", downloads.download_asset, "download"),
    Route("DELETE", "/asset/{id}", "asset-delete", manage.delete_asset),
    Route("GET", "/asset/{id}/meta", "asset-meta", manage.asset_meta),
    Route("GET", "/asset/{id}/thumbnail", "asset-thumbnail", thumbnails.asset_thumbnail),
    Route("PUT", "/asset/{id}/content", "asset-content", manage.put_content, "upload"),
    Route("GET", "/assets", "asset-list", manage.list_assets),
    Route("GET", "/usage", "usage", usage.get_usage),
    Route("GET", "/asset-token/{token}", "token-download", downloads.download_token, "download", True),
    Route("DELETE", "/asset-token/{token}", "token-revoke", tokens.revoke_by_secret),
    Route("GET", "/asset-token/{token}/thumbnail", "token-thumbnail", thumbnails.link_thumbnail),
    Route("GET", "/scan-source/{id}/{version}", "scan-source", scan_source.scan_source),
    Route("POST", "/asset/{id}/tokens", "token-create", tokens.create_token),
    Route("GET", "/asset/{id}/tokens", "token-list", tokens.list_tokens),
    Route("DELETE", "/asset/{id}/tokens/{token_id}", "token-revoke-id", tokens.revoke_by_id),
    Route("GET", "/asset/{id}/tokens/{token_id}/downloads", "token-downloads", tokens.token_downloads),
    Route("POST", "/zip", "zip", zips.create_zip, "download"),
    Route("POST", "/bundle", "bundle", zips.create_bundle),
    Route("OPTIONS", "/files/", "tus-options", resumable.tus_options),
    Route("POST", "/files/", "tus-create", resumable.tus_create, "upload"),
    Route("GET", "/files/{id}", "tus-status", resumable.tus_status),
    Route("PATCH", "/files/{id}", "tus-patch", resumable.tus_patch, "upload"),
    Route("DELETE", "/files/{id}", "tus-delete", resumable.tus_delete),
    Route("POST", "/upload-links", "upload-link-create", upload_links.create_link),
    Route("GET", "/upload-links", "upload-link-list", upload_links.list_links),
    Route("DELETE", "/upload-links/{link_id}", "upload-link-revoke", upload_links.revoke_link),
    Route("POST", "/upload/{token}", "link-upload", upload_links.link_upload_post, "upload"),
    Route("PUT", "/upload/{token}/{name}", "link-upload-raw-put", upload_links.link_upload_raw, "upload"),
    Route("POST", "/upload/{token}/{name}", "link-upload-raw-post", upload_links.link_upload_raw, "upload"),
    Route("GET", "/upload/{token}/files/{id}", "link-tus-status", resumable.tus_status),
    Route("PATCH", "/upload/{token}/files/{id}", "link-tus-patch", resumable.tus_patch, "upload"),
    Route("DELETE", "/upload/{token}/files/{id}", "link-tus-delete", resumable.tus_delete),
    Route("POST", "/transfers", "transfer-create", transfers.create_transfer),
    Route("GET", "/transfers/{id}", "transfer-get", transfers.get_transfer),
    Route("POST", "/webhooks", "webhook-create", webhooks.create_webhook),
    Route("GET", "/webhooks", "webhook-list", webhooks.list_webhooks),
    Route("DELETE", "/webhooks/{id}", "webhook-delete", webhooks.delete_webhook),
    Route("GET", "/webhooks/{id}/deliveries", "webhook-deliveries", webhooks.list_deliveries),
    Route("POST", "/webhooks/{id}/deliveries/{delivery_id}/retry", "webhook-retry", webhooks.retry_delivery),
    # Pages for browsers (gateway/http/page_kit.py): clients of the routes above like any other.
    Route("GET", "/", "upload-page", upload_page.upload_page),
    Route("GET", "/upload/{token}", "link-page", upload_page.link_page),
    Route("GET", "/static/{name}", "static", static_file),
    Route("GET", "/s/{token}", "share-page", share_page.share_page),
    Route("POST", "/s/{token}", "share-unlock", share_page.unlock_page),
    Route("POST", "/s/{token}/download", "share-download", share_page.page_download, "download", True),
    Route("GET", "/s/{token}/qr.svg", "share-qr", share_page.share_qr),
)
BY_NAME = {r.name: r for r in ROUTES}


def add_routes(app: web.Application) -> None:
    """Register every route; GET also answers HEAD. ``Expect: 100-continue`` is deferred to the first
    body read on every route (see gateway/http/bodies.py)."""
    for r in ROUTES:
        if r.method == hdrs.METH_GET:
            app.router.add_get(r.path, r.handler, name=r.name, expect_handler=defer_continue)
        else:
            app.router.add_route(r.method, r.path, r.handler, name=r.name, expect_handler=defer_continue)


def route_of(request: web.Request) -> Route | None:
    name = request.match_info.route.name
    return BY_NAME.get(name) if name else None


def is_public(request: web.Request, *, metrics_public: bool) -> bool:
    """No credentials needed: share-link downloads, health, the API description, and (configurable)
    metrics, tus's capability discovery -- for GET/HEAD/OPTIONS only; and every route under an upload link
    (``/upload/{token}``), where the link is the credential."""
    route = route_of(request)
    if route is not None and by_link(route.path):
        return True  # the handler resolves the upload link in the URL; no other credential applies
    if route is None or request.method not in (hdrs.METH_GET, hdrs.METH_HEAD, hdrs.METH_OPTIONS):
        return False
    if route.name == "metrics":
        return metrics_public
    op = described(route.handler)
    return op is not None and op.public
