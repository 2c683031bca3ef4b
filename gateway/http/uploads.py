"""Upload endpoints: raw body, multipart form, JSON base64.

All three end in the same two service calls (stage bytes, commit catalog). What differs is only how
the bytes and parameters arrive, which is all this module deals with. Bodies are consumed as async
iterators straight off aiohttp's stream, so backpressure reaches the client's socket.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import AsyncIterator

from aiohttp import BodyPartReader, hdrs, web
from prometheus_client import Counter

from gateway.assets import Staged
from gateway.errors import BadRequest, ClientGone, GatewayError, PayloadTooLarge, UnsupportedMediaType
from gateway.hashing import Expected, b64decode_digest
from gateway.http.bodies import read_json
from gateway.http.keys import METRICS, SERVICE, SETTINGS, principal
from gateway.http.models import AssetOut, JsonUploadRequest, MultiUploadResponse, TokenOut, UploadResponse
from gateway.http.openapi import Operation, Param, operation
from gateway.names import validate_name

MAX_FORM_FILES = 30  # keeps one form's catalog change inside a single DynamoDB transaction
MAX_FIELD_BYTES = 1024
_MEDIA_TYPE = re.compile(r"[A-Za-z0-9!#$&^_.+-]+/[A-Za-z0-9!#$&^_.+-]+(\s*;\s*[\x20-\x7e]*)?")


def base_url(request: web.Request) -> str:
    configured = request.app[SETTINGS].public_base_url
    return configured or f"{request.scheme}://{request.host}"


def content_type_of(value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    value = value.strip()
    if len(value) > 255 or not _MEDIA_TYPE.fullmatch(value):
        raise BadRequest("invalid Content-Type", code="invalid_content_type")
    return value


def announced_length(request: web.Request) -> int | None:
    """Content-Length when sent; 413 before reading a byte when it is over the limit."""
    length = request.content_length
    limit = request.app[SETTINGS].max_upload_size
    if length is not None and length > limit:
        raise PayloadTooLarge(f"body of {length} bytes exceeds the maximum of {limit} bytes")
    return length


def expected_digests(request: web.Request) -> Expected:
    """Digests announced via Content-MD5, Digest (RFC 3230) or Repr-/Content-Digest (RFC 9530)."""
    md5 = sha256 = None
    if (raw := request.headers.get("Content-MD5")) is not None:
        md5 = b64decode_digest(raw, 16)
        if md5 is None:
            raise BadRequest("Content-MD5 is not base64 of 16 bytes", code="invalid_digest")
    for header in ("Repr-Digest", "Content-Digest", "Digest"):
        raw = request.headers.get(header)
        if raw is None:
            continue
        for item in raw.split(","):
            alg, sep, value = item.strip().partition("=")
            if not sep or alg.strip().lower() != "sha-256":
                continue
            value = value.strip()
            if header != "Digest":
                if not (len(value) >= 2 and value[0] == value[-1] == ":"):
                    raise BadRequest(f"{header} sha-256 must be a byte sequence", code="invalid_digest")
                value = value[1:-1]
            sha256 = b64decode_digest(value, 32)
            if sha256 is None:
                raise BadRequest(f"{header} sha-256 is not base64 of 32 bytes", code="invalid_digest")
    return Expected(md5=md5, sha256=sha256)


async def body_chunks(request: web.Request) -> AsyncIterator[bytes]:
    counter = request.app[METRICS].bytes_in
    try:
        async for chunk in request.content.iter_any():
            counter.inc(len(chunk))
            yield chunk
    except GatewayError:
        raise
    except Exception as exc:  # a broken or truncated body is the client's doing
        raise ClientGone(f"request body ended early: {type(exc).__name__}") from exc


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
    """POST|PUT /asset/{name}: the body is the file."""
    svc = request.app[SERVICE]
    name = validate_name(request.match_info["name"])
    q = request.query
    token_req = svc.token_request(q.get("token"), q.get("expiry"), q.get("max_downloads"))
    retention = svc.parse_retention(q.get("expires"))
    asset, version, issued = await svc.upload(
        name=name,
        content_type=content_type_of(request.headers.get(hdrs.CONTENT_TYPE)),
        chunks=body_chunks(request),
        size_hint=announced_length(request),
        expected=expected_digests(request),
        owner=principal(request).id,
        token=token_req,
        retention=retention,
        metadata=principal(request).metadata,
    )
    return created(
        UploadResponse(
            asset=AssetOut.of(asset, version),
            token=TokenOut.of(issued, base_url(request)) if issued else None,
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
    part: BodyPartReader, size: int, counter: Counter | None = None
) -> AsyncIterator[bytes]:
    try:
        while chunk := await part.read_chunk(size):
            if counter is not None:
                counter.inc(len(chunk))
            yield chunk
    except GatewayError:
        raise
    except Exception as exc:
        raise BadRequest(
            f"malformed multipart body: {type(exc).__name__}", code="malformed_multipart"
        ) from exc


async def _read_field(part: BodyPartReader) -> str:
    data = bytearray()
    async for chunk in _part_chunks(part, MAX_FIELD_BYTES):
        data += chunk
        if len(data) > MAX_FIELD_BYTES:
            raise BadRequest(f"form field {part.name!r} is too long", code="malformed_multipart")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest(f"form field {part.name!r} is not UTF-8", code="malformed_multipart") from None


async def _upload_form(request: web.Request) -> web.Response:
    svc = request.app[SERVICE]
    chunk_size = request.app[SETTINGS].read_chunk_size
    fields: dict[str, str] = {}
    staged: list[Staged] = []
    try:
        try:
            reader = await request.multipart()
        except Exception as exc:
            raise BadRequest("malformed multipart body", code="malformed_multipart") from exc
        while True:
            try:
                part = await reader.next()
            except Exception as exc:
                raise BadRequest("malformed multipart body", code="malformed_multipart") from exc
            if part is None:
                break
            if not isinstance(part, BodyPartReader):
                raise BadRequest("nested multipart is not supported", code="malformed_multipart")
            if part.name == "file" or part.filename is not None:
                if len(staged) >= MAX_FORM_FILES:
                    raise BadRequest(f"at most {MAX_FORM_FILES} files per form", code="too_many_files")
                if not part.filename:
                    raise BadRequest("file part without a filename", code="invalid_name")
                staged.append(
                    await svc.stage(
                        name=validate_name(part.filename),
                        content_type=content_type_of(part.headers.get(hdrs.CONTENT_TYPE)),
                        chunks=_part_chunks(part, chunk_size, request.app[METRICS].bytes_in),
                        size_hint=None,
                    )
                )
            elif part.name in ("token", "expiry", "max_downloads", "name", "expires"):
                fields[part.name] = await _read_field(part)
            else:
                await _read_field(part)  # unknown small fields are ignored, big ones refused
        if not staged:
            raise BadRequest("no file part in the form (name it 'file')", code="missing_file")
        token_req = svc.token_request(fields.get("token"), fields.get("expiry"), fields.get("max_downloads"))
        bundle_name = validate_name(fields["name"]) if fields.get("name") else "files.zip"
        retention = svc.parse_retention(fields.get("expires"))
        who = principal(request)
        pairs, issued = await svc.commit(
            staged,
            owner=who.id,
            token=token_req,
            bundle_name=bundle_name,
            retention=retention,
            metadata=who.metadata,
        )
    except BaseException:
        await svc.discard(staged)
        raise
    token = TokenOut.of(issued, base_url(request)) if issued else None
    if len(pairs) == 1:
        return created(UploadResponse(asset=AssetOut.of(*pairs[0]), token=token))
    return created(MultiUploadResponse(assets=[AssetOut.of(a, v) for a, v in pairs], token=token))


async def _upload_json(request: web.Request) -> web.Response:
    svc = request.app[SERVICE]
    cap = request.app[SETTINGS].max_json_upload_size  # over it: 413, use a raw or multipart upload
    body = await read_json(request, JsonUploadRequest, max_bytes=cap)
    name = validate_name(body.name)
    token_req = svc.token_request(
        "1" if body.token is True else None if body.token is False else _opt_str(body.token),
        _opt_str(body.expiry),
        body.max_downloads,
    )
    retention = svc.parse_retention(_opt_str(body.expires))
    data = _decode_base64(body.data.image)

    async def once() -> AsyncIterator[bytes]:
        yield data

    asset, version, issued = await svc.upload(
        name=name,
        content_type=content_type_of(body.content_type),
        chunks=once(),
        size_hint=len(data),
        expected=None,  # checksum headers describe the JSON, not the file
        owner=principal(request).id,
        token=token_req,
        retention=retention,
        metadata=principal(request).metadata,
    )
    return created(
        UploadResponse(
            asset=AssetOut.of(asset, version),
            token=TokenOut.of(issued, base_url(request)) if issued else None,
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
