"""Property tests (hypothesis) for the parsers every request goes through."""

from __future__ import annotations

import string

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.durations import DurationError, parse_duration
from gateway.errors import BadRequest, RangeNotSatisfiable
from gateway.http.ranges import parse_range
from gateway.names import content_disposition, validate_name
from gateway.ziplayout import unique_names

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


@given(st.lists(st.tuples(st.integers(1, 10_000), st.sampled_from(sorted(UNITS))), min_size=1, max_size=5))
def test_duration_terms_add_up(terms: list[tuple[int, str]]) -> None:
    text = " ".join(f"{n}{u}" for n, u in terms)
    assert parse_duration(text) == sum(n * UNITS[u] for n, u in terms)


@given(st.integers(1, 10**6))
def test_bare_integers_are_minutes(n: int) -> None:
    assert parse_duration(str(n)) == n * 60


@given(st.integers(0, 99), st.integers(0, 99), st.integers(0, 99), st.integers(0, 99))
def test_iso_durations(d: int, h: int, m: int, s: int) -> None:
    total = d * 86400 + h * 3600 + m * 60 + s
    text = f"P{d}DT{h}H{m}M{s}S"
    if total == 0:
        try:
            parse_duration(text)
            raise AssertionError("zero accepted")
        except DurationError:
            return
    assert parse_duration(text) == total


@given(st.text(max_size=40))
def test_durations_never_crash(text: str) -> None:
    try:
        assert parse_duration(text) > 0
    except DurationError:
        pass


@given(st.text(min_size=0, max_size=300))
@settings(max_examples=300)
def test_names_accepted_are_safe(name: str) -> None:
    try:
        validate_name(name)
    except BadRequest:
        return
    assert "/" not in name and "\\" not in name and ".." not in name and "\x00" not in name
    assert all(ord(c) >= 0x20 for c in name)
    header = content_disposition(name)
    assert header.isascii() and "\r" not in header and "\n" not in header
    fallback = header.split('filename="', 1)[1].split('"', 1)[0]
    assert '"' not in fallback and "\\" not in fallback


@given(st.integers(0, 10**12), st.text(alphabet=string.digits + "bytes=-, ", max_size=30))
def test_range_parser_is_total(size: int, header: str) -> None:
    try:
        rng = parse_range(header, size)
    except RangeNotSatisfiable as exc:
        assert exc.size == size
        return
    if rng is not None:
        assert 0 <= rng.start <= rng.end < size and rng.length == rng.end - rng.start + 1


@given(st.integers(1, 10**12), st.integers(0, 10**12), st.integers(0, 10**12))
def test_satisfiable_ranges_are_clamped(size: int, a: int, b: int) -> None:
    first, last = min(a, b), max(a, b)
    if first >= size:
        return
    rng = parse_range(f"bytes={first}-{last}", size)
    assert rng is not None and rng.start == first and rng.end == min(last, size - 1)


@given(st.lists(st.sampled_from(["a.txt", "A.TXT", "b", ".env", "x.tar.gz", "a (1).txt"]), max_size=30))
def test_unique_names_are_unique(names: list[str]) -> None:
    out = unique_names(names)
    assert len(out) == len(names)
    assert len({n.casefold() for n in out}) == len(out)
