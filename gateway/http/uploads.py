"""Upload endpoints: raw body, multipart form, JSON base64.

All three end in the same two service calls (stage bytes, commit catalog). What differs is only how
the bytes and parameters arrive, which is all this module deals with. Bodies are consumed as async
iterators straight off aiohttp's stream, so backpressure reaches the client's socket.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import AsyncIterator

from aiohttp import hdrs, web

from gateway.errors import (
    BadRequest,
    PayloadTooLarge,
    UnsupportedMediaType,
)
from gateway.hashing import Expected, b64decode_digest
from gateway.http.bodies import body_chunks, read_json
from gateway.http.keys import SERVICE, SETTINGS, principal
from gateway.http.models import AssetOut, JsonUploadRequest, MultiUploadResponse, TokenOut, UploadResponse
from gateway.http.openapi import Operation, Param, operation
from gateway.names import is_media_type, validate_name
from gateway.service.placement import Choice
from gateway.service.tokens import IssuedToken

SHARE_PASSWORD = "Share-Password"  # noqa: S105 (a header name: carries a link password)
# What curl --data-binary and HTML forms send by default: a statement about encoding, not about the file.
_NOT_A_FILE_TYPE = {"application/x-www-form-urlencoded"}


def base_url(request: web.Request) -> str:
    configured = request.app[SETTINGS].public_base_url
    return configured or f"{request.scheme}://{request.host}"


def link_base_url(request: web.Request) -> str:
    """Where share links point: a separate download origin when configured, so a link's response never
    shares cookies or storage with the API and pages origin."""
    return request.app[SETTINGS].download_base_url or base_url(request)


def token_out(request: web.Request, issued: IssuedToken) -> TokenOut:
    """A minted link as answered: bytes from the download origin, the share page on the pages origin."""
    return TokenOut.of(issued, link_base_url(request), base_url(request))


def content_type_of(value: str | None, *, raw_body: bool = False) -> str | None:
    """A client-declared media type, validated; None when absent (then guessed from the name).

    ``raw_body``: the type came with a raw upload, where a form encoding type is curl's default and
    says nothing about the file, so it is treated as absent.
    """
    if value is None or not value.strip(" \t"):
        return None
    value = value.strip(" \t")
    if not is_media_type(value):
        raise BadRequest("invalid Content-Type", code="invalid_content_type")
    if raw_body and value.split(";", 1)[0].strip().lower() in _NOT_A_FILE_TYPE:
        return None
    return value


def announced_length(request: web.Request) -> int | None:
    """Content-Length when sent; 413 before reading a byte when it is over the limit."""
    length = request.content_length
    limit = request.app[SETTINGS].max_upload_size
    if length is not None and length > limit:
        raise PayloadTooLarge(f"body of {length} bytes exceeds the maximum of {limit} bytes")
    return length


def expected_digests(request: web.Request) -> Expected:
    """Digests announced via Content-MD5, Digest (RFC 3230) or Repr-/Content-Digest (RFC 9530).

    Every sha-256 value in every one of those headers is checked against the body, not just the last.
    """
    md5 = None
    sha256: list[bytes] = []
    if (raw := request.headers.get("Content-MD5")) is not None:
        md5 = b64decode_digest(raw, 16)
        if md5 is None:
            raise BadRequest("Content-MD5 is not base64 of 16 bytes", code="invalid_digest")
    for header in ("Repr-Digest", "Content-Digest", "Digest"):
        for raw in request.headers.getall(header, []):
            for item in raw.split(","):
                alg, sep, value = item.strip().partition("=")
                if not sep or alg.strip().lower() != "sha-256":
                    continue
                value = value.strip()
                if header != "Digest":
                    if not (len(value) >= 2 and value[0] == value[-1] == ":"):
                        raise BadRequest(f"{header} sha-256 must be a byte sequence", code="invalid_digest")
                    value = value[1:-1]
                digest = b64decode_digest(value, 32)
                if digest is None:
                    raise BadRequest(f"{header} sha-256 is not base64 of 32 bytes", code="invalid_digest")
                sha256.append(digest)
    if len(set(sha256)) > 1:
        raise BadRequest("the sha-256 digests sent disagree with each other", code="checksum_mismatch")
    return Expected(md5=md5, sha256=tuple(sha256))


def created(model: UploadResponse | MultiUploadResponse) -> web.Response:
    return web.Response(status=201, text=model.model_dump_json(), content_type="application/json")


@operation(
    Operation(
        summary="Upload a file: the request body is the file (curl -T)",
        tag="upload",
        body="raw",
        params=(
            Param("token", "1/true: also mint a download token"),
            Param("expiry", "token lifetime: minutes, 90s, 2h, 4 days, PT20M, ..."),
            Param("max_downloads", "downloads after which the token stops working", {"type": "integer"}),
            Param("expires", "retention of the asset itself (same formats as expiry)"),
        ),
        responses={201: UploadResponse},
        errors=(400, 411, 413, 502, 503),
    )
)
async def upload_raw(request: web.Request) -> web.Response:
    """POST|PUT /asset/{name}: the body is the file. Everything is checked before the body is read."""
    svc = request.app[SERVICE]
    name = validate_name(request.match_info["name"])
    q = request.query
    if "password" in q:
        raise BadRequest(
            "send a link password as the Share-Password header, never in the URL", code="invalid_password"
        )
    password = svc.passwords.validate(request.headers.get(SHARE_PASSWORD))
    token_req = svc.params.token_request(q.get("token"), q.get("expiry"), q.get("max_downloads"), password)
    retention = svc.params.retention(q.get("expires"))
    content_type = content_type_of(request.headers.get(hdrs.CONTENT_TYPE), raw_body=True)
    size_hint = announced_length(request)
    expected = expected_digests(request)
    who = principal(request)
    placement = svc.placer.place(who, Choice.of(q))
    token_req = await svc.passwords.protect(token_req, password)
    asset, version, issued = await svc.uploads.upload(
        name=name,
        content_type=content_type,
        chunks=body_chunks(request),
        size_hint=size_hint,
        expected=expected,
        owner=who.id,
        token=token_req,
        retention=retention,
        metadata=who.metadata,
        placement=placement,
    )
    return created(
        UploadResponse(
            asset=AssetOut.of(asset, version),
            token=token_out(request, issued) if issued else None,
        )
    )


@operation(
    Operation(
        summary="Upload one or more files as multipart/form-data, or one small file as base64 JSON",
        tag="upload",
        body="multipart+json",
        responses={201: (UploadResponse, MultiUploadResponse)},
        errors=(400, 413, 415, 502, 503),
    )
)
async def upload_form_or_json(request: web.Request) -> web.Response:
    """POST /asset: multipart/form-data or JSON, by Content-Type."""
    if request.content_type == "multipart/form-data":
        from gateway.http.forms import upload_form  # forms builds on this module's helpers

        return await upload_form(request)
    if request.content_type == "application/json":
        return await _upload_json(request)
    raise UnsupportedMediaType(
        "POST /asset takes multipart/form-data or application/json; for a raw body use POST /asset/{name}"
    )


async def _upload_json(request: web.Request) -> web.Response:
    svc = request.app[SERVICE]
    cap = request.app[SETTINGS].max_json_upload_size  # over it: 413, use a raw or multipart upload
    body = await read_json(request, JsonUploadRequest, max_bytes=cap)
    name = validate_name(body.name)
    password = svc.passwords.validate(body.password)
    token_req = svc.params.token_request(
        "1" if body.token is True else "0" if body.token is False else _opt_str(body.token),
        _opt_str(body.expiry),
        body.max_downloads,
        password,
    )
    retention = svc.params.retention(_opt_str(body.expires))
    content_type = content_type_of(body.content_type)
    placement = svc.placer.place(principal(request), Choice(body.profile, body.purpose, body.region))
    data = _decode_base64(body.data.image)
    token_req = await svc.passwords.protect(token_req, password)

    async def once() -> AsyncIterator[bytes]:
        yield data

    who = principal(request)
    asset, version, issued = await svc.uploads.upload(
        name=name,
        content_type=content_type,
        chunks=once(),
        size_hint=len(data),
        expected=None,  # checksum headers describe the JSON, not the file
        owner=who.id,
        token=token_req,
        retention=retention,
        metadata=who.metadata,
        placement=placement,
    )
    return created(
        UploadResponse(
            asset=AssetOut.of(asset, version),
            token=token_out(request, issued) if issued else None,
        )
    )


def _opt_str(value: object) -> str | None:
    return None if value is None else str(value)


def _decode_base64(text: str) -> bytes:
    if text.startswith("data:") and "," in text:  # tolerate data: URLs from browser canvases
        text = text.split(",", 1)[1]
    text = "".join(text.split())
    try:
        if "-" in text or "_" in text:
            return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest("data.image is not valid base64", code="invalid_base64") from None
