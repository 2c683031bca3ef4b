"""The share page of a link, ``/s/<token>``: what a recipient who clicks a link in a chat sees.

Opening it never counts a download (chat apps' unfurlers and link previews open every URL they see; a
one-time link must survive them): the page resolves the link and describes it -- name, size, type,
"expires in 3 days", downloads left, a bundle's members, OpenGraph tags -- and its Download button is a
plain link to ``/asset-token/<token>``, where counting happens. Without JavaScript it all still works.

A protected link's page shows nothing but a password form (not even the name). The password is
checked by the same throttled ``LinkPasswords.check`` as HTTP Basic; a right one renders the details
with a short-lived grant in a download form (``POST /s/<token>/download``): see service/passwords.py.
"""

from __future__ import annotations

import datetime
import io
from typing import Any

import segno
from aiohttp import web

from gateway.errors import BadRequest, GatewayError, Gone, NotFound, PasswordRequired, TooManyRequests
from gateway.http.downloads import serve_link
from gateway.http.keys import SERVICE
from gateway.http.openapi import HTML, Operation, operation
from gateway.http.page_kit import expires_in, html_errors, render
from gateway.http.uploads import base_url, link_base_url
from gateway.names import likely_type, served_type
from gateway.records import Asset, Token, Version
from gateway.service import Services

PAGE_ERRORS = (400, 401, 404, 410, 413, 429)
_FORM_FIELD_MAX = 1024


def _urls(request: web.Request, secret: str) -> dict[str, str]:
    return {
        "page_url": f"{base_url(request)}/s/{secret}",
        "download_url": f"{link_base_url(request)}/asset-token/{secret}",
        "qr_url": f"/s/{secret}/qr.svg",
        "action": f"/s/{secret}",
    }


async def _details(request: web.Request, token: Token, secret: str) -> dict[str, Any]:
    svc = request.app[SERVICE]
    try:
        if token.is_bundle:
            found = await svc.zips.listing(token.asset_ids)
            members = [{"name": a.name, "size": v.size} for a, v in found]
            name, size, content_type = (
                token.name or "files.zip",
                sum(v.size for _, v in found),
                "application/zip",
            )
        else:
            asset, version = await svc.assets.find(token.asset_ids[0], owner=None)
            members = []
            name, size, content_type = asset.name, version.size, served_type(version.content_type)
    except NotFound:
        raise Gone("the content behind this link no longer exists", code="asset_gone") from None
    preview = None
    if not token.is_bundle and token.password_hash is None and _previewable(svc, asset, version):
        preset = "medium" if "medium" in svc.thumbnails.presets else next(iter(svc.thumbnails.presets))
        preview = f"/asset-token/{secret}/thumbnail?preset={preset}"  # never counts a download
    left = None if token.max_downloads is None else max(0, token.max_downloads - token.downloads)
    expires = datetime.datetime.fromtimestamp(token.expires_at, datetime.UTC)
    return {
        "name": name,
        "size": size,
        "content_type": content_type,
        "members": members,
        "bundle": token.is_bundle,
        "expires_words": expires_in(token.expires_at, svc.backends.clock()),
        "expires_iso": expires.isoformat(timespec="minutes").replace("+00:00", "Z"),
        "downloads_left": left,
        "protected": token.password_hash is not None,
        "grant": None,
        "preview": preview,
        "preview_abs": f"{base_url(request)}{preview}" if preview else None,  # og:image for unfurlers
    } | _urls(request, secret)


def _previewable(svc: Services, asset: Asset, version: Version) -> bool:
    """An image with presets to show, that may be served now (not flagged, not held for scanning)."""
    kind = likely_type(asset.name, version.content_type)
    if not kind.startswith("image/") or kind == "image/svg+xml" or not svc.thumbnails.presets:
        return False
    try:
        svc.scanning.check(version)
    except GatewayError:
        return False
    return True


def _locked(
    request: web.Request, secret: str, *, error: str | None = None, status: int = 200
) -> web.Response:
    return render(request, "locked.html", {"error": error} | _urls(request, secret), status=status)


async def _form_field(request: web.Request, name: str) -> str | None:
    form = await request.post()
    value = form.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > _FORM_FIELD_MAX:
        raise BadRequest(f"{name} must be a short text field", code="invalid_form")
    return value


@operation(
    Operation(
        summary="The share page of a link (never counts a download)",
        tag="pages",
        public=True,
        responses={200: "HTML page: name, size, expiry, downloads left, download button"},
        errors=(404, 410),
        media=(HTML,),
    )
)
@html_errors
async def share_page(request: web.Request) -> web.Response:
    """GET|HEAD /s/{token}"""
    secret = request.match_info["token"]
    token = await request.app[SERVICE].tokens.resolve(secret)
    if token.password_hash is not None:
        return _locked(request, secret)
    return render(request, "share.html", await _details(request, token, secret))


async def _unlock(
    request: web.Request, token: Token, secret: str, password: str | None
) -> web.Response | None:
    """None when the password is right; else the password page saying why (401 or 429)."""
    try:
        await request.app[SERVICE].passwords.check(token, password)
    except PasswordRequired as exc:
        return _locked(request, secret, error="Wrong password." if password else exc.message, status=401)
    except TooManyRequests as exc:
        resp = _locked(request, secret, error="Too many attempts. Wait a minute, then try again.", status=429)
        resp.headers.update(exc.headers())
        return resp
    return None


@operation(
    Operation(
        summary="Unlock a protected link's share page with its password (form field 'password')",
        tag="pages",
        public=True,
        responses={200: "HTML page: the link's details and a download form"},
        errors=PAGE_ERRORS,
        media=(HTML,),
    )
)
@html_errors
async def unlock_page(request: web.Request) -> web.Response:
    """POST /s/{token}"""
    secret = request.match_info["token"]
    svc = request.app[SERVICE]
    token = await svc.tokens.resolve(secret)
    if token.password_hash is None:
        return render(request, "share.html", await _details(request, token, secret))
    if (refused := await _unlock(request, token, secret, await _form_field(request, "password"))) is not None:
        return refused
    details = await _details(request, token, secret)
    return render(request, "share.html", details | {"grant": svc.passwords.grant(token)})


@operation(
    Operation(
        summary="Download from the share page's form (a protected link: its grant or password); counts",
        tag="pages",
        public=True,
        responses={200: "the bytes"},
        binary_response="*/*",
        errors=PAGE_ERRORS,
        media=(HTML,),
    )
)
@html_errors
async def page_download(request: web.Request) -> web.StreamResponse:
    """POST /s/{token}/download"""
    secret = request.match_info["token"]
    svc = request.app[SERVICE]
    token = await svc.tokens.resolve(secret)
    if token.password_hash is not None:
        grant = await _form_field(request, "grant")
        if grant is None or not svc.passwords.granted(token, grant):
            password = await _form_field(request, "password")
            if (refused := await _unlock(request, token, secret, password)) is not None:
                return refused
    return await serve_link(request, token)


@operation(
    Operation(
        summary="A QR code (SVG) of the link's share page",
        tag="pages",
        public=True,
        responses={200: "image/svg+xml"},
        errors=(404, 410),
    )
)
async def share_qr(request: web.Request) -> web.Response:
    """GET|HEAD /s/{token}/qr.svg"""
    secret = request.match_info["token"]
    await request.app[SERVICE].tokens.resolve(secret)
    return qr_svg(f"{base_url(request)}/s/{secret}")


def qr_svg(url: str) -> web.Response:
    out = io.BytesIO()
    segno.make(url, error="m").save(out, kind="svg", scale=6, border=2, title="QR code of the share link")
    return web.Response(
        body=out.getvalue(),
        content_type="image/svg+xml",
        headers={
            "Cache-Control": "no-store",
            "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
        },
    )
