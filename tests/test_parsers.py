"""Pure parsing rules: durations, names, Content-Disposition, Range."""

from __future__ import annotations

import pytest

from gateway.durations import DurationError, parse_duration
from gateway.errors import BadRequest, RangeNotSatisfiable
from gateway.http.ranges import ByteRange, parse_range
from gateway.names import content_disposition, validate_name

D = 86400


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("20", 1200), ("90s", 90), ("15m", 900), ("2h", 7200), ("3d", 3 * D), ("4 days", 4 * D),
     ("1 week", 7 * D), ("2 weeks, 1 day", 15 * D), ("1 hour and 30 minutes", 5400),
     ("4 years 3 months 2 weeks 1 day", (4 * 365 + 90 + 14 + 1) * D), ("PT20M", 1200),
     ("P1DT2H", D + 7200), ("p1w", 7 * D), ("P1Y2M", (365 + 60) * D), ("PT1H30M5S", 5405), (" 2H ", 7200)],
)  # fmt: skip
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    "text", ["", "0", "-5", "abc", "5 parsecs", "P", "PT", "P1H", "1.5h", "h", "20 minutes ago", "9" * 200]
)
def test_bad_durations(text: str) -> None:
    with pytest.raises(DurationError):
        parse_duration(text)


@pytest.mark.parametrize("name", ["a.txt", "résumé.pdf", "日本語.txt", "spaces ok.csv", ".hidden", "x" * 255])
def test_good_names(name: str) -> None:
    assert validate_name(name) == name


@pytest.mark.parametrize(
    "name", ["", " ", ".", "..", "../x", "a/b", "a\\b", "a\x00b", "a\nb", "a\rb", "a\u202eb", "é" * 128]
)
def test_bad_names(name: str) -> None:
    with pytest.raises(BadRequest):
        validate_name(name)


def test_content_disposition_is_header_safe() -> None:
    header = content_disposition('we"ird;name%\\.txt')
    assert header == (
        "attachment; filename=\"we_ird_name__.txt\"; filename*=UTF-8''we%22ird%3Bname%25%5C.txt"
    )
    assert "\r" not in content_disposition("é") and content_disposition("é").isascii()


@pytest.mark.parametrize(
    ("header", "size", "expected"),
    [(None, 10, None), ("bytes=0-4", 10, ByteRange(0, 4)), ("bytes=5-", 10, ByteRange(5, 9)),
     ("bytes=-3", 10, ByteRange(7, 9)), ("bytes=0-100", 10, ByteRange(0, 9)), ("bytes=1-2,4-5", 10, None)],
)  # fmt: skip
def test_ranges(header: str | None, size: int, expected: ByteRange | None) -> None:
    assert parse_range(header, size) == expected


@pytest.mark.parametrize(
    ("header", "size"), [("bytes=10-", 10), ("bytes=-1", 0), ("bytes=x-1", 10), ("bytes=3-1", 10)]
)
def test_unsatisfiable_ranges(header: str, size: int) -> None:
    with pytest.raises(RangeNotSatisfiable):
        parse_range(header, size)


@pytest.mark.parametrize("text", ["¹", "٣", "²0", "1²"])
def test_non_ascii_digits_are_not_numbers(text: str) -> None:
    """str.isdigit() accepts these; int() does not (found by hypothesis: it was a 500)."""
    with pytest.raises(DurationError):
        parse_duration(text)
