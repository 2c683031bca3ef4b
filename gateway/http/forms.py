"""multipart/form-data uploads: one or more ``file`` parts streamed to storage as they arrive.

Shared by ``POST /asset`` and ``POST /upload/<token>`` (an upload link). A form is hostile input with
many dimensions -- part count, field sizes, stalls between parts, nesting -- so each is bounded here, at
the moment the offending part's headers arrive and before its bytes are read.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from aiohttp import BodyPartReader, MultipartReader, hdrs, web
from prometheus_client import Counter

from gateway.errors import BadRequest, GatewayError, RequestTimeout
from gateway.http.bodies import send_continue
from gateway.http.keys import METRICS, SERVICE, SETTINGS, principal
from gateway.http.models import AssetOut, MultiUploadResponse, UploadResponse
from gateway.http.uploads import content_type_of, created, token_out
from gateway.names import validate_name
from gateway.records import Placement, UploadLink
from gateway.service.placement import Choice
from gateway.service.staging import Staged

MAX_FIELD_BYTES = 1024
MAX_FORM_PARTS = 100  # files and fields together: bounds the CPU a form of tiny parts can burn
FORM_FIELDS = ("token", "expiry", "max_downloads", "name", "expires", "password")
PLACEMENT_FIELDS = ("profile", "purpose", "region")  # must come before the first file part


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


async def upload_form(request: web.Request, link: UploadLink | None = None) -> web.Response:
    """Files are staged as their parts arrive; fields may come before or after them. The number of
    files is bounded by what one catalog transaction can commit, the number of parts by MAX_FORM_PARTS;
    both are enforced when the offending part's headers arrive, before its bytes are read.

    Through an upload ``link``: each file's type and a use of the link are checked and claimed when its
    part's headers arrive, the link's size limit cuts each file, the link decides the share link, and
    the files belong to the link's owner; every claim is released if the form fails.
    """
    svc = request.app[SERVICE]
    claims: list[UploadLink] = []
    settings = request.app[SETTINGS]
    idle = settings.body_idle_timeout
    max_files = svc.uploads.max_form_files
    fields: dict[str, str] = {}
    staged: list[Staged] = []
    placement: Placement | None = None
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
                name = validate_name(part.filename)
                content_type = content_type_of(part.headers.get(hdrs.CONTENT_TYPE))
                max_size = None
                if placement is None:
                    placement = _placement(request, link, fields)
                if link is not None:
                    svc.upload_links.admit(link, name=name, content_type=content_type, length=None)
                    claims.append(await svc.upload_links.claim(link))
                    max_size = svc.upload_links.max_size(link)
                staged.append(
                    await svc.uploads.stage(
                        name=name,
                        content_type=content_type,
                        chunks=_part_chunks(part, settings.read_chunk_size, idle, counter),
                        size_hint=None,
                        max_size=max_size,
                        placement=placement,
                    )
                )
            elif part.name in FORM_FIELDS:
                fields[part.name] = await _read_field(part, idle)
            elif part.name in PLACEMENT_FIELDS:
                if staged:
                    raise BadRequest(f"send the {part.name} field before the files", code="invalid_field")
                fields[part.name] = await _read_field(part, idle)
            else:
                await _read_field(part, idle)  # unknown small fields are ignored, big ones refused
        if not staged:
            raise BadRequest("no file part in the form (name it 'file')", code="missing_file")
        bundle_name = validate_name(fields["name"]) if fields.get("name") else "files.zip"
        if link is not None:
            owner, metadata, retention = link.owner, None, None
            token_req = svc.upload_links.share(link)
        else:
            p = svc.params
            password = svc.passwords.validate(fields.get("password"))
            token_req = p.token_request(
                fields.get("token"), fields.get("expiry"), fields.get("max_downloads"), password
            )
            token_req = await svc.passwords.protect(token_req, password)
            retention = p.retention(fields.get("expires"))
            who = principal(request)
            owner, metadata = who.id, who.metadata
        pairs, issued = await svc.uploads.commit(
            staged,
            owner=owner,
            token=token_req,
            bundle_name=bundle_name,
            retention=retention,
            metadata=metadata,
            link_id=None if link is None else link.link_id,
        )
    except BaseException:
        await svc.uploads.discard(staged)
        for claim in claims:
            await asyncio.shield(svc.upload_links.release(claim))
        raise
    token = token_out(request, issued) if issued else None
    if len(pairs) == 1:
        return created(UploadResponse(asset=AssetOut.of(*pairs[0]), token=token))
    return created(MultiUploadResponse(assets=[AssetOut.of(a, v) for a, v in pairs], token=token))


def _placement(request: web.Request, link: UploadLink | None, fields: dict[str, str]) -> Placement:
    """Through a link: where the link's creator chose; else the caller's choice (query or fields)."""
    if link is not None:
        return Placement.of(link.placement, link.owner)
    choice = Choice.of({**request.query, **{k: v for k, v in fields.items() if k in PLACEMENT_FIELDS}})
    return request.app[SERVICE].placer.place(principal(request), choice)
