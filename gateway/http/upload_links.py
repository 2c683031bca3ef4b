"""Upload links over HTTP: managing them (``/upload-links``) and uploading through one (``/upload/<token>``).

Uploading through a link takes exactly what the matching direct upload takes -- a raw body
(``PUT|POST /upload/<token>/<name>``, curl -T), a multipart form (``POST /upload/<token>``), or tus
(``POST /upload/<token>`` with ``Tus-Resumable``, then ``/upload/<token>/files/<id>``) -- and hands it to
the same service calls, with the link deciding the owner, the limits and the share link. The URL's token
is the only credential these routes take (routes.py marks them so), and it reaches nothing but uploading.
"""

from __future__ import annotations

import asyncio
import re

from aiohttp import hdrs, web
from pydantic import BaseModel, ConfigDict, Field, field_validator

from gateway.auth import OPEN_OWNER
from gateway.errors import Forbidden, UnsupportedMediaType
from gateway.http.bodies import body_chunks, read_json
from gateway.http.forms import upload_form
from gateway.http.keys import SERVICE, SETTINGS, principal
from gateway.http.models import AssetOut, MultiUploadResponse, UploadResponse
from gateway.http.openapi import Operation, operation
from gateway.http.resumable import tus_create
from gateway.http.uploads import (
    announced_length,
    base_url,
    content_type_of,
    created,
    token_out,
)
from gateway.names import is_media_type, validate_name
from gateway.records import Placement, UploadLink
from gateway.service.placement import Choice
from gateway.service.upload_links import LinkRequest

_TYPE_PATTERN = re.compile(r"[A-Za-z0-9!#$&^_.+-]{1,64}/(\*|[A-Za-z0-9!#$&^_.+-]{1,64})")


class ShareSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    expiry: str | int | None = None
    max_downloads: int | None = None


class UploadLinkRequest(BaseModel):
    """POST /upload-links"""

    model_config = ConfigDict(extra="forbid")
    expiry: str | int | None = Field(default=None, description="default: the token default (1 day)")
    max_uploads: int | None = Field(default=None, ge=1, le=1_000_000)
    max_size: int | None = Field(default=None, ge=1)
    content_types: list[str] = Field(default_factory=list, max_length=50, description="e.g. image/*")
    label: str = Field(default="", max_length=200)
    share: ShareSettings | None = Field(default=None, description="each upload also gets a share link")
    profile: str | None = Field(default=None, description="storage profile of what is uploaded through it")
    purpose: str | None = None
    region: str | None = None

    @field_validator("content_types")
    @classmethod
    def _types(cls, values: list[str]) -> list[str]:
        for v in values:
            if not (_TYPE_PATTERN.fullmatch(v) or v == "*/*") or not is_media_type(v.replace("*", "x")):
                raise ValueError(f"not a media type or type/* pattern: {v[:80]!r}")
        return values

    @field_validator("label")
    @classmethod
    def _label(cls, value: str) -> str:
        if any(ord(c) < 32 or ord(c) == 127 for c in value):
            raise ValueError("control characters are not allowed")
        return value


class UploadLinkOut(BaseModel):
    link_id: str
    token: str | None = Field(description="the secret: shown once, at creation")
    url: str | None
    label: str
    expiry: int
    max_uploads: int | None
    uploads: int
    max_size: int | None
    content_types: list[str]
    share: dict[str, int | None] | None
    revoked: bool

    @classmethod
    def of(cls, link: UploadLink, secret: str | None = None, base: str = "") -> UploadLinkOut:
        return cls(
            link_id=link.link_id,
            token=secret,
            url=f"{base}/upload/{secret}" if secret else None,
            label=link.label,
            expiry=link.expires_at,
            max_uploads=link.max_uploads,
            uploads=link.uploads,
            max_size=link.max_size,
            content_types=list(link.content_types),
            share=link.share,
            revoked=link.revoked,
        )


class UploadLinkCreated(BaseModel):
    upload_link: UploadLinkOut
    error: None = None


class UploadLinkList(BaseModel):
    upload_links: list[UploadLinkOut]
    error: None = None


@operation(
    Operation(
        summary="Create an upload link: a URL anyone can upload files to, within limits",
        tag="upload-links",
        body=UploadLinkRequest,
        responses={201: UploadLinkCreated},
        errors=(400, 403, 415),
    )
)
async def create_link(request: web.Request) -> web.Response:
    svc = request.app[SERVICE]
    who = principal(request)
    if who.id == OPEN_OWNER and not request.app[SETTINGS].open_upload_links:
        raise Forbidden("upload links are disabled in open mode", code="upload_links_disabled")
    body = await read_json(request, UploadLinkRequest, max_bytes=64 * 1024)
    share = None
    if body.share is not None:
        share = svc.params.mint_request(body.share.expiry, body.share.max_downloads)
    req = LinkRequest(
        expiry_seconds=svc.params.expiry(None if body.expiry is None else str(body.expiry)),
        max_uploads=body.max_uploads,
        max_size=body.max_size,
        content_types=tuple(body.content_types),
        label=body.label,
        share=share,
        placement=svc.placer.place(who, Choice(body.profile, body.purpose, body.region)),
    )
    link, secret = await svc.upload_links.create(who.id, req)
    out = UploadLinkCreated(upload_link=UploadLinkOut.of(link, secret, base_url(request)))
    return web.Response(status=201, text=out.model_dump_json(), content_type="application/json")


@operation(
    Operation(
        summary="The caller's upload links (no secrets)",
        tag="upload-links",
        responses={200: UploadLinkList},
        errors=(401,),
    )
)
async def list_links(request: web.Request) -> web.Response:
    links = await request.app[SERVICE].upload_links.list(principal(request).id)
    out = UploadLinkList(upload_links=[UploadLinkOut.of(link) for link in links])
    return web.Response(text=out.model_dump_json(), content_type="application/json")


@operation(
    Operation(
        summary="Revoke an upload link (uploads already made stay)",
        tag="upload-links",
        responses={204: "revoked"},
        errors=(401, 404),
    )
)
async def revoke_link(request: web.Request) -> web.Response:
    await request.app[SERVICE].upload_links.revoke(principal(request).id, request.match_info["link_id"])
    return web.Response(status=204)


@operation(
    Operation(
        summary="Upload one file through an upload link: the body is the file (curl -T)",
        tag="upload-links",
        body="raw",
        responses={201: UploadResponse},
        errors=(400, 404, 410, 413, 415),
    )
)
async def link_upload_raw(request: web.Request) -> web.Response:
    svc = request.app[SERVICE]
    link = await svc.upload_links.resolve(request.match_info["token"])
    name = validate_name(request.match_info["name"])
    content_type = content_type_of(request.headers.get(hdrs.CONTENT_TYPE), raw_body=True)
    length = announced_length(request)
    svc.upload_links.admit(link, name=name, content_type=content_type, length=length)
    link = await svc.upload_links.claim(link)
    try:
        asset, version, issued = await svc.uploads.upload(
            name=name,
            content_type=content_type,
            chunks=body_chunks(request),
            size_hint=length,
            expected=None,
            owner=link.owner,
            token=svc.upload_links.share(link),
            max_size=svc.upload_links.max_size(link),
            placement=Placement.of(link.placement, link.owner),
            link_id=link.link_id,
        )
    except BaseException:
        await asyncio.shield(svc.upload_links.release(link))
        raise
    token = token_out(request, issued) if issued else None
    return created(UploadResponse(asset=AssetOut.of(asset, version), token=token))


@operation(
    Operation(
        summary="Upload through an upload link: a multipart form of files, or a tus creation request",
        tag="upload-links",
        body="multipart+json",
        responses={201: (UploadResponse, MultiUploadResponse)},
        errors=(400, 404, 410, 412, 413, 415),
    )
)
async def link_upload_post(request: web.Request) -> web.StreamResponse:
    if "Tus-Resumable" in request.headers:
        return await tus_create(request)
    link = await request.app[SERVICE].upload_links.resolve(request.match_info["token"])
    if request.content_type != "multipart/form-data":
        raise UnsupportedMediaType("send multipart/form-data, or use tus (Tus-Resumable)")
    return await upload_form(request, link)
