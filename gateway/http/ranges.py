"""``Range`` and conditional request evaluation (RFC 9110 sections 13-14) for one representation."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from email.utils import formatdate, parsedate_to_datetime

from gateway.errors import RangeNotSatisfiable

_RANGE = re.compile(r"([0-9]*)[ \t]*-[ \t]*([0-9]*)")
_BIG = 10**18  # beyond any object size; longer numbers are clamped, never converted (int-size limit)


def _number(digits: str) -> int:
    return _BIG if len(digits) > 18 else int(digits)


@dataclass(frozen=True)
class ByteRange:
    start: int
    end: int  # inclusive

    @property
    def length(self) -> int:
        return self.end - self.start + 1


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """The single range to serve, or None for the whole body.

    Several ranges are answered with the whole body (allowed by RFC 9110 §14.2, and what most object
    stores do); a malformed or unsatisfiable single byte range is a 416. A range unit other than
    ``bytes`` (compared case-insensitively) is ignored, as RFC 9110 §14.2 requires.
    """
    if header is None:
        return None
    unit, eq, spec = header.partition("=")
    if not eq or unit.strip().lower() != "bytes":
        return None
    if "," in spec:
        return None
    match = _RANGE.fullmatch(spec.strip(" \t"))
    if not match:
        raise RangeNotSatisfiable("malformed Range header", size=size)
    first, last = match.groups()
    if first == "" and last == "":
        raise RangeNotSatisfiable("malformed Range header", size=size)
    if first == "":
        suffix = _number(last)
        if suffix == 0 or size == 0:
            raise RangeNotSatisfiable("range not satisfiable", size=size)
        return ByteRange(max(0, size - suffix), size - 1)
    start = _number(first)
    end = size - 1 if last == "" else min(_number(last), size - 1)
    if last != "" and _number(last) < start:
        raise RangeNotSatisfiable("malformed Range header", size=size)
    if start >= size:
        raise RangeNotSatisfiable("range not satisfiable", size=size)
    return ByteRange(start, end)


def etag_matches(header: str, etag: str) -> bool:
    """Weak comparison, as If-None-Match requires."""
    if header.strip() == "*":
        return True
    bare = etag.removeprefix("W/")
    return any(t.strip().removeprefix("W/") == bare for t in header.split(","))


def not_modified(if_none_match: str | None, if_modified_since: str | None, etag: str, mtime: float) -> bool:
    if if_none_match is not None:
        return etag_matches(if_none_match, etag)
    if if_modified_since:
        try:
            since = parsedate_to_datetime(if_modified_since).timestamp()
        except (TypeError, ValueError, IndexError, OverflowError):
            return False
        return int(mtime) <= since
    return False


def if_range_allows(if_range: str | None, etag: str, mtime: float) -> bool:
    """Whether a Range may be honoured given If-Range (RFC 9110 §13.1.5).

    An entity tag matches only by strong comparison; a date only when it is exactly the representation's
    Last-Modified (a date is a weak validator unless it equals the one we send).
    """
    if if_range is None:
        return True
    value = if_range.strip()
    if value.startswith('"') or value.startswith("W/"):
        return value == etag and not value.startswith("W/")
    try:
        return int(mtime) == int(parsedate_to_datetime(value).timestamp())
    except (TypeError, ValueError, IndexError, OverflowError):
        return False


def http_date(ts: float) -> str:
    return _http_date(int(ts))


@functools.lru_cache(maxsize=4096)
def _http_date(seconds: int) -> str:
    return formatdate(seconds, usegmt=True)  # whole seconds either way; formatting is not cheap
