"""Authentication middleware: every request gets a principal before its handler runs.

Open mode: everyone is the ``public`` principal (an asset id is a capability). Secured mode: everything
needs a bearer credential except the routes named in ``PUBLIC`` -- share links (GET/HEAD, the token is the
credential), health, metrics and the API description.
"""

from __future__ import annotations

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler

from gateway.auth import OPEN
from gateway.http.keys import AUTH, PRINCIPAL

PUBLIC = {"token-download", "healthcheck", "metrics", "openapi", "docs"}


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    auth = request.app[AUTH]
    route = request.match_info.route
    public = route.name in PUBLIC and request.method in (hdrs.METH_GET, hdrs.METH_HEAD)
    if not auth.secured or public or route.resource is None:
        request[PRINCIPAL] = OPEN
    else:
        request[PRINCIPAL] = auth.authenticate(request.headers.get(hdrs.AUTHORIZATION))
    return await handler(request)
