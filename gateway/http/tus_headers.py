"""The tus 1.0.0 request headers, parsed strictly: every malformed value is a 400, never a 500.

Kept apart from the handlers because each header has its own small grammar (base64 metadata pairs,
``<algorithm> <base64>`` checksums, ``final;<url> <url>`` concatenation) and each is an attack surface:
sizes are bounded before any work, numbers are plain decimals of bounded length, upload URLs are reduced
to their last path segment and never fetched.
"""

from __future__ import annotations

import base64
import binascii
import re
from email.utils import formatdate

from aiohttp import web

from gateway.errors import BadRequest, PreconditionFailed
from gateway.service.resumable_body import CHECKSUMS, ChunkChecksum

TUS_VERSION = "1.0.0"
EXTENSIONS = (
    "creation,creation-with-upload,creation-defer-length,termination,expiration,checksum,concatenation"
)
CHECKSUM_ALGORITHMS = ",".join(CHECKSUMS)
OFFSET_STREAM = "application/offset+octet-stream"
MAX_METADATA = 4096  # bytes of Upload-Metadata
MAX_CONCAT_PARTS = 1000
_DIGITS = re.compile(r"[0-9]{1,19}")
_KEY = re.compile(r"[!-+\--~]{1,64}")  # printable ASCII without space or comma
_DIGEST_SIZES = {"sha1": 20, "sha256": 32, "md5": 16}


class UnsupportedVersion(PreconditionFailed):
    code = "unsupported_tus_version"

    def headers(self) -> dict[str, str]:
        return {"Tus-Version": TUS_VERSION}


def check_version(request: web.Request) -> None:
    if request.headers.get("Tus-Resumable") != TUS_VERSION:
        raise UnsupportedVersion(f"send Tus-Resumable: {TUS_VERSION}")


def number(request: web.Request, name: str) -> int | None:
    raw = request.headers.get(name)
    if raw is None:
        return None
    if not _DIGITS.fullmatch(raw.strip()):
        raise BadRequest(f"{name} must be a non-negative integer", code="invalid_header")
    return int(raw)


def metadata(raw: str | None) -> dict[str, str]:
    """``key base64value,key2,…`` → dict; values must be UTF-8 (ours are names and parameters)."""
    if raw is None or not raw.strip():
        return {}
    if len(raw) > MAX_METADATA:
        raise BadRequest(f"Upload-Metadata longer than {MAX_METADATA} bytes", code="invalid_metadata")
    out: dict[str, str] = {}
    for pair in raw.split(","):
        key, _, value = pair.strip().partition(" ")
        if not _KEY.fullmatch(key) or key in out or " " in value.strip():
            raise BadRequest("malformed Upload-Metadata", code="invalid_metadata")
        try:
            out[key] = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            raise BadRequest(
                f"Upload-Metadata {key!r} is not base64 of UTF-8", code="invalid_metadata"
            ) from None
    return out


def encode_metadata(values: dict[str, str]) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" if v else k for k, v in values.items())


def checksum(raw: str | None) -> ChunkChecksum | None:
    if raw is None:
        return None
    algorithm, _, value = raw.strip().partition(" ")
    algorithm = algorithm.lower()
    if algorithm not in CHECKSUMS:
        raise BadRequest(
            f"Upload-Checksum algorithm must be one of {CHECKSUM_ALGORITHMS}", code="invalid_checksum"
        )
    try:
        digest = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        digest = b""
    if len(digest) != _DIGEST_SIZES[algorithm]:
        raise BadRequest(f"Upload-Checksum is not a base64 {algorithm} digest", code="invalid_checksum")
    return ChunkChecksum(algorithm, digest)


def concat(raw: str | None) -> tuple[str, list[str]]:
    """``partial`` or ``final;<url> <url>…`` → ("partial"|"final"|"", upload ids)."""
    if raw is None:
        return "", []
    value = raw.strip()
    if value == "partial":
        return "partial", []
    kind, sep, urls = value.partition(";")
    if kind != "final" or not sep:
        raise BadRequest("Upload-Concat must be 'partial' or 'final;<urls>'", code="invalid_concat")
    ids = [u.rstrip("/").rsplit("/", 1)[-1] for u in urls.split()]
    if not ids or len(ids) > MAX_CONCAT_PARTS:
        raise BadRequest(f"a final upload takes 1 to {MAX_CONCAT_PARTS} parts", code="invalid_concat")
    return "final", ids


def http_date(ts: float) -> str:
    return formatdate(ts, usegmt=True)
