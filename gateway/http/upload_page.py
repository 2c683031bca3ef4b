"""The upload pages: ``/`` for anyone allowed to upload, ``/upload/<token>`` for holders of an upload link.

Both are one template and one script (static/upload.js) speaking the public API like any other client:
tus for the bytes (resumable: the script remembers each file's upload URL in the browser's local storage
and continues from the server's offset when the same file is picked again), then ``POST
/asset/{id}/tokens`` or ``POST /bundle`` for the link. In secured mode the page asks for an API key,
which the script keeps in session storage and sends as a bearer header; it never goes into a URL. An
upload link's page needs no key: the link is the credential and it decides limits and sharing.

``GET /upload/<token>`` answers the page only to clients that prefer HTML; others get the link's limits
as JSON (never its secret), so a script can see what the link accepts before sending.
"""

from __future__ import annotations

from typing import Any

import humanize
from aiohttp import web

from gateway.durations import format_duration, parse_duration
from gateway.http.keys import AUTH, SERVICE, SETTINGS
from gateway.http.openapi import HTML, Operation, operation
from gateway.http.page_kit import expires_in, html_errors, render, wants_html
from gateway.http.upload_links import UploadLinkOut

EXPIRY_CHOICES = ("1h", "1d", "3d", "7d", "30d")


def _expiry_choices(request: web.Request) -> list[dict[str, Any]]:
    settings = request.app[SETTINGS]
    default = format_duration(settings.default_token_expiry)
    values = [default] + [c for c in EXPIRY_CHOICES if c != default]
    allowed = [v for v in values if parse_duration(v) <= settings.max_token_expiry]
    return [
        {"value": v, "label": humanize.naturaldelta(parse_duration(v)), "default": v == default}
        for v in allowed
    ]


@operation(
    Operation(
        summary="The upload page for browsers (drag and drop, resumable, share link and QR)",
        tag="pages",
        public=True,
        responses={200: "HTML page"},
        errors=(),
        media=(HTML,),
    )
)
async def upload_page(request: web.Request) -> web.Response:
    """GET|HEAD /"""
    context = {
        "mode": "direct",
        "endpoint": "/files/",
        "secured": request.app[AUTH].secured,
        "max_size": request.app[SETTINGS].max_upload_size,
        "expiry_choices": _expiry_choices(request),
        "link": None,
    }
    return render(request, "upload.html", context)


@operation(
    Operation(
        summary="An upload link's page (Accept: text/html), or its limits as JSON (no secret)",
        tag="pages",
        public=True,
        responses={200: "HTML page, or {upload_link: {...}} without the token"},
        errors=(404, 410),
        media=(HTML, "application/json"),
    )
)
async def link_page(request: web.Request) -> web.StreamResponse:
    """GET|HEAD /upload/{token}"""
    if not wants_html(request):
        link = await request.app[SERVICE].upload_links.resolve(request.match_info["token"])
        return web.json_response({"upload_link": UploadLinkOut.of(link).model_dump(mode="json")})
    return await _link_html(request)


@html_errors
async def _link_html(request: web.Request) -> web.Response:
    secret = request.match_info["token"]
    svc = request.app[SERVICE]
    link = await svc.upload_links.resolve(secret)
    limit = svc.upload_links.max_size(link)
    left = None if link.max_uploads is None else max(0, link.max_uploads - link.uploads)
    context = {
        "mode": "link",
        "endpoint": f"/upload/{secret}",
        "secured": False,
        "max_size": limit,
        "expiry_choices": [],
        "link": {
            "label": link.label,
            "uploads_left": left,
            "expires_words": expires_in(link.expires_at, svc.backends.clock()),
            "content_types": ",".join(link.content_types),
            "shares": link.share is not None,
        },
    }
    return render(request, "upload.html", context)
