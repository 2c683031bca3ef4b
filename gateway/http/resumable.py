"""tus 1.0.0 endpoints (``/files/``): creation (with upload, deferred length), PATCH, HEAD, GET, DELETE,
OPTIONS. Headers are parsed in ``tus_headers``; the state machine is ``service.resumable``; this module
only maps one to the other. Metadata keys beyond tus's ``filename``/``filetype`` carry the same link and
retention parameters as a raw upload (``token``, ``expiry``, ``max_downloads``, ``expires``, ``password``,
``asset``), parsed by the same functions; a password is hashed at creation and never stored as sent.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from aiohttp import hdrs, web

from gateway.errors import BadRequest, UnsupportedMediaType
from gateway.http import tus_headers as tus
from gateway.http.bodies import body_chunks
from gateway.http.keys import SERVICE, SETTINGS, principal
from gateway.http.models import AssetOut, UploadProgress, UploadProgressResponse, UploadResponse
from gateway.http.openapi import Operation, operation
from gateway.http.uploads import base_url, content_type_of, link_base_url
from gateway.names import validate_name
from gateway.records import Placement, UploadLink, UploadSession
from gateway.service.placement import Choice
from gateway.service.resumable import Completed, NewUpload

_PRIVATE_KEYS = ("password",)  # never stored, never echoed in Upload-Metadata
# Choose the storage (docs/storage-topology.md); recorded as the upload's placement, not as metadata.
_PLACEMENT_KEYS = ("profile", "purpose", "region")


def _common(session: UploadSession | None = None) -> dict[str, str]:
    headers = {"Tus-Resumable": tus.TUS_VERSION, "Cache-Control": "no-store"}
    if session is not None and not session.finished:
        headers["Upload-Expires"] = tus.http_date(session.expires_at)
    return headers


def _completion(request: web.Request, completed: Completed | None) -> dict[str, str]:
    if completed is None:
        return {}
    headers = {"Asset-Id": completed.asset.id}
    if completed.issued is not None:
        headers["Asset-Token"] = completed.issued.secret
        headers["Asset-Token-Url"] = f"{link_base_url(request)}/asset-token/{completed.issued.secret}"
    return headers


@dataclass(frozen=True)
class Caller:
    """Who is uploading: a principal at ``/files/``, or the holder of an upload link at
    ``/upload/<token>/files/`` (then the link's owner owns the upload, and the link sets its limits)."""

    owner: str
    link: UploadLink | None
    files_url: str

    @property
    def link_hash(self) -> str | None:
        return None if self.link is None else self.link.token_hash


async def _caller(request: web.Request, *, creating: bool = False) -> Caller:
    token = request.match_info.get("token")
    if token is None:
        return Caller(principal(request).id, None, f"{base_url(request)}/files")
    link = await request.app[SERVICE].upload_links.resolve(token, continuing=not creating)
    return Caller(link.owner, link, f"{base_url(request)}/upload/{token}/files")


async def _session(request: web.Request) -> UploadSession:
    """The upload the URL names, as its caller may see it (404 otherwise)."""
    caller = await _caller(request)
    upload_id = request.match_info["id"]
    return await request.app[SERVICE].resumable.find(upload_id, owner=caller.owner, link=caller.link_hash)


async def _new_upload(request: web.Request, caller: Caller, length: int | None, concat: str) -> NewUpload:
    svc = request.app[SERVICE]
    meta = tus.metadata(request.headers.get("Upload-Metadata"))
    name = validate_name(meta.get("filename") or meta.get("name") or "upload.bin")
    content_type = content_type_of(meta.get("filetype") or meta.get("type"))
    if caller.link is not None:
        if meta.get("asset"):
            raise BadRequest("an upload link makes new assets only", code="invalid_metadata")
        links = svc.upload_links
        links.admit(caller.link, name=name, content_type=content_type, length=length)
        share, limit = links.share(caller.link), links.max_size(caller.link)
        kept = {k: v for k, v in meta.items() if k not in _PRIVATE_KEYS + _PLACEMENT_KEYS}
        link = caller.link.token_hash
        placement = Placement.of(caller.link.placement, caller.owner)
        return NewUpload(
            caller.owner, length, kept, name, content_type, share, None, None, concat, link, limit, placement
        )
    placement = svc.placer.place(principal(request), Choice.of(meta))
    password = svc.passwords.validate(meta.get("password"))
    share = svc.params.token_request(
        meta.get("token"), meta.get("expiry"), meta.get("max_downloads"), password
    )
    retention = svc.params.retention(meta.get("expires"))
    asset = None
    if meta.get("asset"):
        if share is not None or retention is not None:
            raise BadRequest("a new version takes no link or retention parameters", code="invalid_metadata")
        asset, _ = await svc.assets.find(meta["asset"], owner=caller.owner)
    share = await svc.passwords.protect(share, password)
    kept = {k: v for k, v in meta.items() if k not in _PRIVATE_KEYS + _PLACEMENT_KEYS}
    return NewUpload(
        caller.owner, length, kept, name, content_type, share, retention, asset, concat, placement=placement
    )


@operation(
    Operation(
        summary="tus: what this server supports (Tus-Version, Tus-Extension, Tus-Max-Size, checksums)",
        tag="resumable",
        responses={204: "tus capabilities in the headers"},
        public=True,
        errors=(),
    )
)
async def tus_options(request: web.Request) -> web.Response:
    headers = {
        "Tus-Resumable": tus.TUS_VERSION,
        "Tus-Version": tus.TUS_VERSION,
        "Tus-Extension": tus.EXTENSIONS,
        "Tus-Max-Size": str(request.app[SETTINGS].max_upload_size),
        "Tus-Checksum-Algorithm": tus.CHECKSUM_ALGORITHMS,
    }
    return web.Response(status=204, headers=headers)


@operation(
    Operation(
        summary="tus: create an upload (optionally with its first bytes, or as a concatenation of parts)",
        tag="resumable",
        body="raw",
        responses={201: "the upload's URL in Location"},
        errors=(400, 404, 409, 412, 413, 415, 460, 502, 503),
    )
)
async def tus_create(request: web.Request) -> web.Response:
    tus.check_version(request)
    svc = request.app[SERVICE]
    caller = await _caller(request, creating=True)
    kind, partial_ids = tus.concat(request.headers.get("Upload-Concat"))
    length = tus.number(request, "Upload-Length")
    defer = request.headers.get("Upload-Defer-Length")
    if kind == "final":
        if length is not None or defer is not None:
            raise BadRequest("a final upload's length is its parts' length", code="invalid_upload_length")
    elif (length is None) == (defer is None) or (defer is not None and defer.strip() != "1"):
        raise BadRequest("send Upload-Length, or Upload-Defer-Length: 1", code="invalid_upload_length")
    has_body = bool(request.content_length) or (request.body_exists and request.content_length is None)
    if has_body and request.content_type != tus.OFFSET_STREAM:
        raise UnsupportedMediaType(f"a creation request's body must be {tus.OFFSET_STREAM}")
    checksum = tus.checksum(request.headers.get("Upload-Checksum"))
    new = await _new_upload(request, caller, length, kind)
    # Through a link, an upload (not a part of one) counts before anything is stored; an upload that
    # never finishes gives its use back when it is terminated or expires (service/resumable.py).
    claimed = caller.link is not None and kind != "partial"
    if claimed and caller.link is not None:
        await svc.upload_links.claim(caller.link)
    session = None
    try:
        completed: Completed | None = None
        if kind == "final":
            session, completed = await svc.resumable.concatenate(new, partial_ids)
        else:
            session = await svc.resumable.create(new)
            if has_body:
                session, completed = await svc.resumable.append(
                    session,
                    offset=0,
                    chunks=body_chunks(request),
                    checksum=checksum,
                    size_hint=request.content_length,
                )
            elif length == 0:
                session, completed = await svc.resumable.finish(session)
    except BaseException:
        if claimed and session is None and caller.link is not None:
            await asyncio.shield(svc.upload_links.release(caller.link))
        raise
    headers = _common(session) | _completion(request, completed)
    headers[hdrs.LOCATION] = f"{caller.files_url}/{session.id}"
    if kind != "final":
        headers["Upload-Offset"] = str(session.offset)
    return web.Response(status=201, headers=headers)


@operation(
    Operation(
        summary="tus: append bytes at Upload-Offset (the last byte turns the upload into an asset)",
        tag="resumable",
        body="raw",
        responses={204: "the new offset in Upload-Offset; Asset-Id once complete"},
        errors=(400, 404, 409, 410, 412, 413, 415, 460, 502, 503),
    )
)
async def tus_patch(request: web.Request) -> web.Response:
    tus.check_version(request)
    if request.content_type != tus.OFFSET_STREAM:
        raise UnsupportedMediaType(f"PATCH bodies must be {tus.OFFSET_STREAM}")
    offset = tus.number(request, "Upload-Offset")
    if offset is None:
        raise BadRequest("Upload-Offset is required", code="invalid_header")
    svc = request.app[SERVICE]
    session = await _session(request)
    session, completed = await svc.resumable.append(
        session,
        offset=offset,
        chunks=body_chunks(request),
        length=tus.number(request, "Upload-Length"),
        checksum=tus.checksum(request.headers.get("Upload-Checksum")),
        size_hint=request.content_length,
    )
    headers = _common(session) | _completion(request, completed)
    headers["Upload-Offset"] = str(session.offset)
    return web.Response(status=204, headers=headers)


@operation(
    Operation(
        summary="tus: an upload's progress (HEAD), or the asset it became (GET, as a raw upload's 201 body)",
        tag="resumable",
        responses={200: (UploadResponse, UploadProgressResponse)},
        errors=(404, 410, 412),
    )
)
async def tus_status(request: web.Request) -> web.Response:
    if request.method == hdrs.METH_HEAD:
        tus.check_version(request)
    svc = request.app[SERVICE]
    session = await _session(request)
    if session.length == session.offset and not session.finished and session.concat != "final":
        session, _ = await svc.resumable.finish(session)  # a completion cut short: finish it now
    headers = _common(session) | {"Upload-Offset": str(session.offset)}
    if session.length is None:
        headers["Upload-Defer-Length"] = "1"
    else:
        headers["Upload-Length"] = str(session.length)
    if session.metadata:
        headers["Upload-Metadata"] = tus.encode_metadata(session.metadata)
    if session.concat == "partial":
        headers["Upload-Concat"] = "partial"
    if request.method == hdrs.METH_HEAD:
        return web.Response(status=200, headers=headers)
    result = await svc.resumable.result(session)
    if result is not None:
        body: UploadResponse | UploadProgressResponse = UploadResponse(asset=AssetOut.of(*result), token=None)
    else:
        body = UploadProgressResponse(upload=UploadProgress.of(session))
    return web.Response(text=body.model_dump_json(), content_type="application/json", headers=headers)


@operation(
    Operation(
        summary="tus: terminate an upload (its bytes go; an asset it already became stays)",
        tag="resumable",
        responses={204: "terminated"},
        errors=(404, 409, 410, 412),
    )
)
async def tus_delete(request: web.Request) -> web.Response:
    tus.check_version(request)
    svc = request.app[SERVICE]
    session = await _session(request)
    await svc.resumable.terminate(session)
    return web.Response(status=204, headers=_common())
