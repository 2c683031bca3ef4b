"""Parsing of the human duration strings the API accepts for ``expiry`` and ``expires``.

The seeds used bare minutes (``expiry=20``), unit suffixes (``90s``, ``2h``), prose ("4 years 3 months")
and ISO 8601 (``PT20M``). No maintained library covers all four (isodate does ISO only, pytimeparse has
no months/years), and the grammar is small, so it lives here. Calendar units are fixed lengths so a
duration means the same number of seconds whenever it is parsed: a year is 365 days, a month 30 days.
"""

from __future__ import annotations

import re

_UNIT_SECONDS = {
    "s": 1,
    "m": 60,
    "h": 3600,
    "d": 86400,
    "w": 7 * 86400,
    "mo": 30 * 86400,
    "y": 365 * 86400,
}

_UNIT_ALIASES = {
    "s": "s", "sec": "s", "secs": "s", "second": "s", "seconds": "s",
    "m": "m", "min": "m", "mins": "m", "minute": "m", "minutes": "m",
    "h": "h", "hr": "h", "hrs": "h", "hour": "h", "hours": "h",
    "d": "d", "day": "d", "days": "d",
    "w": "w", "wk": "w", "wks": "w", "week": "w", "weeks": "w",
    "mo": "mo", "mon": "mo", "month": "mo", "months": "mo",
    "y": "y", "yr": "y", "yrs": "y", "year": "y", "years": "y",
}  # fmt: skip

_TERM = re.compile(r"\s*([0-9]{1,9})\s*([a-z]+)\s*,?\s*(?:and\s+)?")
_ISO = re.compile(
    r"P(?!$)(?:([0-9]{1,9})Y)?(?:([0-9]{1,9})M)?(?:([0-9]{1,9})W)?(?:([0-9]{1,9})D)?"
    r"(?:T(?=[0-9])(?:([0-9]{1,9})H)?(?:([0-9]{1,9})M)?(?:([0-9]{1,9})S)?)?"
)
_ISO_UNITS = ("y", "mo", "w", "d", "h", "m", "s")


class DurationError(ValueError):
    pass


_DECIMAL = re.compile(r"[0-9]+")


def is_decimal(text: str) -> bool:
    """ASCII digits only: ``str.isdigit`` also accepts '¹' or '٣', which ``int`` then rejects or misreads."""
    return _DECIMAL.fullmatch(text) is not None


def parse_duration(text: str) -> int:
    """Return the duration in seconds; raise DurationError for anything malformed or non-positive."""
    raw = text.strip()
    if not raw or len(raw) > 100:
        raise DurationError("duration is empty or too long")
    if is_decimal(raw):
        seconds = int(raw) * 60  # a bare integer is minutes, as in the original service
    elif raw[0] in "Pp":
        seconds = _parse_iso(raw.upper())
    else:
        seconds = _parse_human(raw.lower())
    if seconds <= 0:
        raise DurationError("duration must be positive")
    return seconds


def _parse_iso(raw: str) -> int:
    match = _ISO.fullmatch(raw)
    if not match:
        raise DurationError(f"not an ISO 8601 duration: {raw!r}")
    return sum(int(v) * _UNIT_SECONDS[u] for v, u in zip(match.groups(), _ISO_UNITS, strict=True) if v)


def _parse_human(raw: str) -> int:
    pos, total, seen = 0, 0, False
    while pos < len(raw):
        match = _TERM.match(raw, pos)
        if not match:
            raise DurationError(f"cannot parse duration {raw!r}")
        unit = _UNIT_ALIASES.get(match.group(2))
        if unit is None:
            raise DurationError(f"unknown unit {match.group(2)!r}")
        total += int(match.group(1)) * _UNIT_SECONDS[unit]
        pos, seen = match.end(), True
    if not seen:
        raise DurationError(f"cannot parse duration {raw!r}")
    return total


def format_duration(seconds: int) -> str:
    """The shortest string :func:`parse_duration` reads back as exactly ``seconds`` ('1d', '90m')."""
    for unit in ("y", "mo", "w", "d", "h", "m"):
        size = _UNIT_SECONDS[unit]
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
