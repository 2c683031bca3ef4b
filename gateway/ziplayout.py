"""Zip archives as a deterministic layout of byte segments, streamed without buffering.

Why our own writer: every member is *stored* (no compression) and its size and CRC-32 are already in
the catalog, so the whole archive -- headers, data offsets, central directory -- is known before the first
byte. That gives an exact ``Content-Length``, no data descriptors, and Range requests: a byte range is
just a slice of the segment list. Measured alternatives did not fit: stream-zip cannot predict the length
and hops to a thread per chunk in its async API; zipstream-ng predicts length but is sync and LGPL;
aiozipstream has no ZIP64 (see docs/zips.md).

Format references are to PKWARE's APPNOTE.TXT 6.3.10:
- 4.3.7 local file header, 4.3.12 central directory header, 4.3.16 end of central directory record;
- 4.3.14/4.3.15 ZIP64 end of central directory record and locator;
- 4.5.3 ZIP64 extended information extra field (0x0001): only the fields whose 32-bit slot is 0xFFFFFFFF,
  in the order uncompressed size, compressed size, local header offset; in a local header both sizes;
- 4.4.4 general purpose bit 11: names are UTF-8;
- 4.5.5 / Info-ZIP "UT" extra (0x5455): modification time as UNIX seconds (DOS time has no zone).
A member uses ZIP64 only when it needs it (size >= 4 GiB, or in the central directory an offset >=
4 GiB), so the first member stays zip32 unless it is itself huge -- macOS Archive Utility and Safari
mishandle a zip64 first entry.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Generic, TypeVar

S = TypeVar("S")

MAX32 = 0xFFFFFFFF
MAX16 = 0xFFFF
UTF8_FLAG = 0x0800
VERSION_STORED = 20  # 2.0
VERSION_ZIP64 = 45  # 4.5
MADE_BY_UNIX = 3 << 8
FILE_MODE = 0o100644 << 16


@dataclass(frozen=True)
class Member(Generic[S]):
    name: str  # path inside the archive, already unique and safe
    size: int
    crc32: int
    mtime: float
    source: S  # what the stream reads the member's bytes from (opaque here)


@dataclass(frozen=True)
class Slice(Generic[S]):
    """``length`` bytes of a member's data starting at ``offset``."""

    source: S
    offset: int
    length: int


Segment = bytes | Slice[S]


@dataclass(frozen=True)
class ZipLayout(Generic[S]):
    segments: tuple[tuple[int, int, bytes | Slice[S]], ...]  # (start, length, segment)
    size: int
    etag: str

    def range(self, start: int, end: int) -> list[bytes | Slice[S]]:
        """The segments covering bytes ``start..end`` (inclusive), trimmed to the range."""
        out: list[bytes | Slice[S]] = []
        for seg_start, length, seg in self.segments:
            seg_end = seg_start + length - 1
            if seg_end < start or seg_start > end or length == 0:
                continue
            lo, hi = max(start, seg_start) - seg_start, min(end, seg_end) - seg_start + 1
            if isinstance(seg, bytes):
                out.append(seg[lo:hi])
            else:
                out.append(Slice(seg.source, seg.offset + lo, hi - lo))
        return out


def _dos_datetime(ts: float) -> tuple[int, int]:
    dt = datetime.fromtimestamp(max(ts, 315532800), UTC)  # DOS dates start in 1980
    if dt.year > 2107:
        dt = dt.replace(year=2107)
    time = (dt.hour << 11) | (dt.minute << 5) | (dt.second // 2)
    date = ((dt.year - 1980) << 9) | (dt.month << 5) | dt.day
    return time, date


def _ut_extra(ts: float) -> bytes:
    return struct.pack("<HHBI", 0x5455, 5, 1, max(0, min(int(ts), 0x7FFFFFFF)))


def layout(members: Sequence[Member[S]]) -> ZipLayout[S]:
    segments: list[tuple[int, int, bytes | Slice[S]]] = []
    central = bytearray()
    pos = 0
    digest = hashlib.sha256()

    def emit(seg: bytes | Slice[S], length: int) -> None:
        nonlocal pos
        segments.append((pos, length, seg))
        pos += length

    for m in members:
        name = m.name.encode("utf-8")
        dos_time, dos_date = _dos_datetime(m.mtime)
        offset = pos
        big = m.size >= MAX32
        # local header: ZIP64 only for a huge member (both sizes then live in the extra field)
        extra = _ut_extra(m.mtime)
        if big:
            extra = struct.pack("<HHQQ", 0x0001, 16, m.size, m.size) + extra
        size32 = MAX32 if big else m.size
        header = struct.pack(
            "<IHHHHHIIIHH",
            0x04034B50,
            VERSION_ZIP64 if big else VERSION_STORED,
            UTF8_FLAG,
            0,  # stored
            dos_time,
            dos_date,
            m.crc32,
            size32,
            size32,
            len(name),
            len(extra),
        )
        emit(header + name + extra, 30 + len(name) + len(extra))
        emit(Slice(m.source, 0, m.size), m.size)

        # central directory entry: ZIP64 fields for whichever value overflows
        z64 = b""
        if big:
            z64 += struct.pack("<QQ", m.size, m.size)
        if offset >= MAX32:
            z64 += struct.pack("<Q", offset)
        cextra = (struct.pack("<HH", 0x0001, len(z64)) + z64 if z64 else b"") + _ut_extra(m.mtime)
        needs64 = bool(z64)
        central += struct.pack(
            "<IHHHHHHIIIHHHHHII",
            0x02014B50,
            MADE_BY_UNIX | (VERSION_ZIP64 if needs64 else VERSION_STORED),
            VERSION_ZIP64 if needs64 else VERSION_STORED,
            UTF8_FLAG,
            0,
            dos_time,
            dos_date,
            m.crc32,
            size32,
            size32,
            len(name),
            len(cextra),
            0,  # comment length
            0,  # disk number start
            0,  # internal attributes
            FILE_MODE,
            min(offset, MAX32),
        )
        central += name + cextra
        digest.update(struct.pack("<QIQ", m.size, m.crc32, int(m.mtime)) + name + b"\0")

    cd_offset, cd_size, count = pos, len(central), len(members)
    tail = bytes(central)
    if count >= MAX16 or cd_size >= MAX32 or cd_offset >= MAX32:
        zip64_eocd_offset = cd_offset + cd_size
        tail += struct.pack(
            "<IQHHIIQQQQ",
            0x06064B50,
            44,
            MADE_BY_UNIX | VERSION_ZIP64,
            VERSION_ZIP64,
            0,
            0,
            count,
            count,
            cd_size,
            cd_offset,
        )
        tail += struct.pack("<IIQI", 0x07064B50, 0, zip64_eocd_offset, 1)
    tail += struct.pack(
        "<IHHHHIIH",
        0x06054B50,
        0,
        0,
        min(count, MAX16),
        min(count, MAX16),
        min(cd_size, MAX32),
        min(cd_offset, MAX32),
        0,
    )
    emit(tail, len(tail))
    return ZipLayout(tuple(segments), pos, f'"zip-{digest.hexdigest()[:40]}"')


def unique_names(names: Sequence[str]) -> list[str]:
    """Make names unique (case-insensitively, for Windows/macOS): 'a.txt', 'a (1).txt', 'a (2).txt'.

    Linear in the number of names: each stem remembers the last suffix it handed out, so 10,000 copies
    of one name cost 10,000 steps, not 50 million (it runs on the event loop).
    """
    seen: set[str] = set()
    last_suffix: dict[tuple[str, str], int] = {}
    out = []
    for name in names:
        if name.casefold() not in seen:
            seen.add(name.casefold())
            out.append(name)
            continue
        stem, dot, ext = name.rpartition(".")
        if not stem or "/" in ext:
            stem, dot, ext = name, "", ""
        key = (stem.casefold(), ext.casefold())
        n = last_suffix.get(key, 0)
        while True:
            n += 1
            candidate = f"{stem} ({n}){dot}{ext}"
            if candidate.casefold() not in seen:
                break
        last_suffix[key] = n
        seen.add(candidate.casefold())
        out.append(candidate)
    return out
