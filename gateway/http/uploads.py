"""Upload endpoints: raw body, multipart form, JSON base64.

All three end in the same two service calls (stage bytes, commit catalog). What differs is only how
the bytes and parameters arrive, which is all this module deals with. Bodies are consumed as async
iterators straight off aiohttp's stream, so backpressure reaches the client's socket.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from collections.abc import AsyncIterator

from aiohttp import BodyPartReader, MultipartReader, hdrs, web
from prometheus_client import Counter

from gateway.errors import (
    BadRequest,
    GatewayError,
    PayloadTooLarge,
    RequestTimeout,
    UnsupportedMediaType,
)
from gateway.hashing import Expected, b64decode_digest
from gateway.http.bodies import body_chunks, read_json, send_continue
from gateway.http.keys import METRICS, SERVICE, SETTINGS, principal
from gateway.http.models import AssetOut, JsonUploadRequest, MultiUploadResponse, TokenOut, UploadResponse
from gateway.http.openapi import Operation, Param, operation
from gateway.names import is_media_type, validate_name
from gateway.service.uploads import Staged

MAX_FIELD_BYTES = 1024
MAX_FORM_PARTS = 100  # files and fields together: bounds the CPU a form of tiny parts can burn
FORM_FIELDS = ("token", "expiry", "max_downloads", "name", "expires", "password")
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
    )
    return created(
        UploadResponse(
            asset=AssetOut.of(asset, version),
            token=TokenOut.of(issued, link_base_url(request)) if issued else None,
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
        return await _upload_form(request)
    if request.content_type == "application/json":
        return await _upload_json(request)
    raise UnsupportedMediaType(
        "POST /asset takes multipart/form-data or application/json; for a raw body use POST /asset/{name}"
    )


async def _part_chunks(
    part: BodyPartReader, size: int, idle: float, counter: Counter | None = None
) -> AsyncIterator[bytes]:
    try:
        while True:
            async with asyncio.timeout(idle):
                chunk = await part.read_chunk(size)
            if not chunk:
                return
            if counter is not None:
                counter.inc(len(chunk))
            yield chunk
    except TimeoutError:
        raise RequestTimeout(f"no request body data for {idle:g} seconds") from None
    except GatewayError:
        raise
    except Exception as exc:
        raise BadRequest(
            f"malformed multipart body: {type(exc).__name__}", code="malformed_multipart"
        ) from exc


async def _read_field(part: BodyPartReader, idle: float) -> str:
    data = bytearray()
    async for chunk in _part_chunks(part, MAX_FIELD_BYTES, idle):
        data += chunk
        if len(data) > MAX_FIELD_BYTES:
            raise BadRequest(f"form field {part.name!r} is too long", code="malformed_multipart")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest(f"form field {part.name!r} is not UTF-8", code="malformed_multipart") from None


async def _next_part(reader: MultipartReader, idle: float) -> BodyPartReader | None:
    try:
        async with asyncio.timeout(idle):
            part = await reader.next()
    except TimeoutError:
        raise RequestTimeout(f"no request body data for {idle:g} seconds") from None
    except Exception as exc:
        raise BadRequest("malformed multipart body", code="malformed_multipart") from exc
    if part is not None and not isinstance(part, BodyPartReader):
        raise BadRequest("nested multipart is not supported", code="malformed_multipart")
    return part


async def _upload_form(request: web.Request) -> web.Response:
    """Files are staged as their parts arrive; fields may come before or after them. The number of
    files is bounded by what one catalog transaction can commit, the number of parts by MAX_FORM_PARTS;
    both are enforced when the offending part's headers arrive, before its bytes are read."""
    svc = request.app[SERVICE]
    settings = request.app[SETTINGS]
    idle = settings.body_idle_timeout
    max_files = svc.uploads.max_form_files
    fields: dict[str, str] = {}
    staged: list[Staged] = []
    parts = 0
    try:
        await send_continue(request)
        try:
            reader = await request.multipart()
        except Exception as exc:
            raise BadRequest("malformed multipart body", code="malformed_multipart") from exc
        while (part := await _next_part(reader, idle)) is not None:
            parts += 1
            if parts > MAX_FORM_PARTS:
                raise BadRequest(f"at most {MAX_FORM_PARTS} parts per form", code="too_many_parts")
            if part.name == "file" or part.filename is not None:
                if len(staged) >= max_files:
                    raise BadRequest(f"at most {max_files} files per form", code="too_many_files")
                if not part.filename:
                    raise BadRequest("file part without a filename", code="invalid_name")
                counter = request.app[METRICS].bytes_in
                staged.append(
                    await svc.uploads.stage(
                        name=validate_name(part.filename),
                        content_type=content_type_of(part.headers.get(hdrs.CONTENT_TYPE)),
                        chunks=_part_chunks(part, settings.read_chunk_size, idle, counter),
                        size_hint=None,
                    )
                )
            elif part.name in FORM_FIELDS:
                fields[part.name] = await _read_field(part, idle)
            else:
                await _read_field(part, idle)  # unknown small fields are ignored, big ones refused
        if not staged:
            raise BadRequest("no file part in the form (name it 'file')", code="missing_file")
        p = svc.params
        password = svc.passwords.validate(fields.get("password"))
        token_req = p.token_request(
            fields.get("token"), fields.get("expiry"), fields.get("max_downloads"), password
        )
        token_req = await svc.passwords.protect(token_req, password)
        bundle_name = validate_name(fields["name"]) if fields.get("name") else "files.zip"
        retention = p.retention(fields.get("expires"))
        who = principal(request)
        pairs, issued = await svc.uploads.commit(
            staged,
            owner=who.id,
            token=token_req,
            bundle_name=bundle_name,
            retention=retention,
            metadata=who.metadata,
        )
    except BaseException:
        await svc.uploads.discard(staged)
        raise
    token = TokenOut.of(issued, link_base_url(request)) if issued else None
    if len(pairs) == 1:
        return created(UploadResponse(asset=AssetOut.of(*pairs[0]), token=token))
    return created(MultiUploadResponse(assets=[AssetOut.of(a, v) for a, v in pairs], token=token))


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
    )
    return created(
        UploadResponse(
            asset=AssetOut.of(asset, version),
            token=TokenOut.of(issued, link_base_url(request)) if issued else None,
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
