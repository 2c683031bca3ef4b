"""Authentication middleware: every request gets a principal before its handler runs.

Open mode: everyone is the ``public`` principal (an asset id is a capability). Secured mode: everything
needs a bearer credential except what the route table calls public (``routes.is_public``): share links
(GET/HEAD, the token is the credential), health, the API description, and metrics unless
``GATEWAY_METRICS_PUBLIC=false``.
"""

from __future__ import annotations

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler

from gateway.auth import OPEN
from gateway.http.keys import AUTH, PRINCIPAL, SETTINGS
from gateway.http.routes import is_public


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    auth = request.app[AUTH]
    route = request.match_info.route
    public = is_public(request, metrics_public=request.app[SETTINGS].metrics_public)
    if not auth.secured or public or route.resource is None:
        request[PRINCIPAL] = OPEN
    else:
        request[PRINCIPAL] = auth.authenticate(request.headers.get(hdrs.AUTHORIZATION))
    return await handler(request)
