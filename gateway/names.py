"""File names: what we accept, and how we hand them back safely.

A name is only ever display metadata (storage keys are derived from ids, never from names), but it is
echoed into ``Content-Disposition`` and later into zip member paths, so anything that could split a
header or climb a directory is refused at the door rather than escaped at every exit.
"""

from __future__ import annotations

import functools
import mimetypes
import re
import unicodedata
from urllib.parse import quote

from gateway.errors import BadRequest

MAX_NAME_BYTES = 255
MAX_MEDIA_TYPE = 255
# type/subtype, then parameters of visible ASCII, spaces and tabs only: no CR/LF, no other controls,
# so a stored type can never split a response header later.
_MEDIA_TYPE = re.compile(r"[A-Za-z0-9!#$&^_.+-]+/[A-Za-z0-9!#$&^_.+-]+([ \t]*;[\x20-\x7e\t]*)?")
FALLBACK_TYPE = "application/octet-stream"


def is_media_type(value: str) -> bool:
    return len(value) <= MAX_MEDIA_TYPE and _MEDIA_TYPE.fullmatch(value) is not None


def served_type(value: str) -> str:
    """The Content-Type to send for a stored type: anything that is not a clean media type (data
    written before uploads were this strict) is served as opaque bytes instead of breaking the response."""
    return value if is_media_type(value) else FALLBACK_TYPE


def validate_name(name: str) -> str:
    if not name or not name.strip():
        raise BadRequest("file name must not be empty", code="invalid_name")
    if len(name.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
        raise BadRequest(f"file name longer than {MAX_NAME_BYTES} bytes", code="invalid_name")
    if "/" in name or "\\" in name:
        raise BadRequest("file name must not contain '/' or '\\'", code="invalid_name")
    if ".." in name or name == ".":
        raise BadRequest("file name must not contain '..' or be '.'", code="invalid_name")
    for ch in name:
        if unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Zl", "Zp"):
            raise BadRequest("file name contains control characters", code="invalid_name")
    return name


# Types a browser displays without running anything: the only ones ``inline=1`` may show. HTML, SVG,
# XML, JavaScript and unknown types can carry script, so they are always downloaded (attachment).
_INLINE_PREFIXES = ("image/", "audio/", "video/")
_INLINE_EXACT = {"application/pdf", "text/plain"}
_NEVER_INLINE = {"image/svg+xml"}


def safe_inline(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    if media in _NEVER_INLINE:
        return False
    return media in _INLINE_EXACT or media.startswith(_INLINE_PREFIXES)


def guess_content_type(name: str) -> str:
    guessed, _ = mimetypes.guess_type(name, strict=False)
    return guessed or "application/octet-stream"


def likely_type(name: str, declared: str) -> str:
    """What a stored file probably is: its declared type, or a guess from its name when the declared one
    says nothing (``curl -T`` sends no type: the body is stored as application/octet-stream)."""
    if declared in ("application/octet-stream", "binary/octet-stream"):
        return guess_content_type(name)
    return declared


@functools.lru_cache(maxsize=4096)  # pure, and built for every download of the same few names
def content_disposition(name: str, disposition: str = "attachment") -> str:
    """RFC 6266 header with an ASCII fallback and an RFC 8187 UTF-8 form, safe for any stored name."""
    fallback = (
        "".join(ch if 0x20 <= ord(ch) < 0x7F and ch not in '"\\%;' else "_" for ch in name).strip()
        or "download"
    )
    encoded = quote(name, safe="")
    return f"{disposition}; filename=\"{fallback}\"; filename*=UTF-8''{encoded}"
