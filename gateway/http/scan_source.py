"""``GET /scan-source/{asset}/{version}?expires=&sig=``: the bytes a remote scanner is asked to judge.

The URL is minted by ``service/scanning.py`` for one version, HMAC-signed with a key derived from the
deployment's shared secret, and valid for a few minutes; it is the only credential (no API key is sent
to a moderation service). It serves the version whatever its scan state (the scanner must read what is
pending) and counts nothing. A wrong, expired or tampered URL is a plain 404: it reveals nothing.
"""

from __future__ import annotations

from aiohttp import web

from gateway.durations import is_decimal
from gateway.errors import NotFound
from gateway.http.downloads import version_representation
from gateway.http.keys import SERVICE
from gateway.http.openapi import Operation, Param, operation
from gateway.http.streaming import serve


@operation(
    Operation(
        summary="A version's bytes for a remote scanner (signed, short-lived URL)",
        tag="media",
        public=True,
        params=(Param("expires", "UNIX time the URL stops working"), Param("sig", "the URL's signature")),
        responses={200: "the bytes", 206: "a byte range"},
        binary_response="*/*",
        errors=(404,),
    )
)
async def scan_source(request: web.Request) -> web.StreamResponse:
    svc = request.app[SERVICE]
    m, q = request.match_info, request.query
    expires, sig, version = q.get("expires", ""), q.get("sig", ""), m["version"]
    if not (is_decimal(expires) and len(expires) < 12 and is_decimal(version) and len(version) < 10):
        raise NotFound("unknown scan source", code="not_found")
    if not svc.scanning.verify_source(m["id"], int(version), int(expires), sig[:128]):
        raise NotFound("unknown scan source", code="not_found")
    asset, found = await svc.assets.find(m["id"], int(version), owner=None)
    return await serve(request, version_representation(svc, asset, found, shared=True, for_scanner=True))
