"""What every HTML page shares: templates, security headers, friendly error pages, static files, words.

Why server-rendered (Jinja2 via aiohttp-jinja2): a share page must work without JavaScript and be
readable by chat apps' link unfurlers (OpenGraph), and almost everything a page shows -- file names,
link labels -- is user input. So autoescaping is on for every template (never opted into per value), and
pages answer with a strict Content-Security-Policy (scripts and styles from ``/static/`` only, nothing
inline, no framing), ``Referrer-Policy: no-referrer`` (a page's URL holds the link's secret),
``Cache-Control: no-store``, and set no cookie ever: no ambient authority exists for CSRF to ride on.

Static files are a fixed set read once from the package and served from a dict by name, so no part of
a URL ever reaches the filesystem.
"""

from __future__ import annotations

import functools
import hashlib
import time
from collections.abc import Awaitable, Callable, Mapping
from importlib import resources
from typing import Any

import aiohttp_jinja2
import humanize
import jinja2
from aiohttp import hdrs, web

from gateway.errors import GatewayError, NotFound
from gateway.http.openapi import Operation, operation

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CSP,
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    hdrs.CACHE_CONTROL: "no-store",
}
_STATIC_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}

# What a recipient reads instead of an error code (the status is kept: 404 stays 404, 410 stays 410).
HEADLINES = {
    "token_not_found": ("This link does not exist", "Check that you copied the whole link."),
    "token_expired": ("This link has expired", "Ask the sender for a new one."),
    "token_exhausted": ("This link has been used up", "It allowed a limited number of downloads."),
    "token_revoked": ("This link was withdrawn", "The sender revoked it."),
    "asset_gone": ("The file is gone", "The file behind this link was deleted."),
    "upload_link_not_found": ("This upload link does not exist", "Check that you copied the whole link."),
    "upload_link_expired": ("This upload link has expired", "Ask for a new one."),
    "upload_link_used_up": ("This upload link has been used up", "It allowed a limited number of uploads."),
    "upload_link_revoked": ("This upload link was withdrawn", "Its owner revoked it."),
    "too_many_requests": ("Too many attempts", "Wait a minute, then try again."),
}


def setup_pages(app: web.Application) -> None:
    aiohttp_jinja2.setup(
        app,
        loader=jinja2.PackageLoader("gateway.http", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        filters={"size": human_size},
    )


def render(
    request: web.Request, template: str, context: Mapping[str, Any], *, status: int = 200
) -> web.Response:
    resp = aiohttp_jinja2.render_template(template, request, dict(context), status=status)
    resp.headers.update(PAGE_HEADERS)
    return resp


def error_page(request: web.Request, status: int, code: str, message: str) -> web.Response:
    title, hint = HEADLINES.get(code, (message, ""))
    return render(request, "error.html", {"title": title, "hint": hint, "code": code}, status=status)


PageHandler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def html_errors(handler: PageHandler) -> PageHandler:
    """A page's failures as a page (same status, no JSON, no ``WWW-Authenticate`` prompt)."""

    @functools.wraps(handler)
    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except GatewayError as exc:
            resp = error_page(request, exc.status, exc.code, exc.message)
            if retry := exc.headers().get(hdrs.RETRY_AFTER):
                resp.headers[hdrs.RETRY_AFTER] = retry
            return resp
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            return error_page(request, exc.status, "error", exc.reason)

    return wrapped


def wants_html(request: web.Request) -> bool:
    """Whether the client prefers HTML to JSON (browsers say ``text/html`` first; curl says ``*/*``)."""
    best: dict[str, float] = {}
    for part in request.headers.get(hdrs.ACCEPT, "").split(",")[:32]:
        media, *params = (p.strip() for p in part.split(";"))
        q = 1.0
        for p in params:
            name, _, value = p.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        best[media.lower()] = max(q, best.get(media.lower(), 0.0))
    html = best.get("text/html", 0.0)
    return html > 0 and html >= best.get("application/json", 0.0)


def human_size(size: int) -> str:
    return humanize.naturalsize(size)


def expires_in(expires_at: float, now: float | None = None) -> str:
    """'expires in 3 days'; precise to the largest unit, as people say it."""
    left = expires_at - (time.time() if now is None else now)
    return f"expires in {humanize.naturaldelta(max(left, 1))}"


def _load_static() -> dict[str, tuple[bytes, str, str]]:
    files: dict[str, tuple[bytes, str, str]] = {}
    for entry in resources.files("gateway.http").joinpath("static").iterdir():
        suffix = entry.name[entry.name.rfind(".") :]
        if entry.is_file() and suffix in _STATIC_TYPES:
            body = entry.read_bytes()
            files[entry.name] = (body, _STATIC_TYPES[suffix], f'"{hashlib.sha256(body).hexdigest()[:32]}"')
    return files


STATIC = _load_static()


@operation(
    Operation(
        summary="The pages' own scripts and stylesheet",
        tag="pages",
        public=True,
        responses={200: "the file", 304: "not modified"},
        errors=(404,),
    )
)
async def static_file(request: web.Request) -> web.Response:
    """GET /static/{name}: one of the page's own scripts or stylesheets."""
    found = STATIC.get(request.match_info["name"])
    if found is None:
        raise NotFound("no such static file", code="not_found")
    body, content_type, etag = found
    headers = {
        hdrs.ETAG: etag,
        hdrs.CACHE_CONTROL: "public, max-age=300",
        "X-Content-Type-Options": "nosniff",
    }
    if etag in request.headers.get(hdrs.IF_NONE_MATCH, ""):
        return web.Response(status=304, headers=headers)
    return web.Response(body=body, headers=headers | {hdrs.CONTENT_TYPE: content_type})
