"""Scanners: ClamAV over clamd's INSTREAM protocol (``clamav.py``) and moderation webhooks
(``moderation.py``), behind one small interface. ``service/scanning.py`` decides what runs when and what
a verdict means for serving; a scanner only looks at bytes and answers.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal, Protocol

from gateway.ports import BlobReader
from gateway.records import Asset, Version

State = Literal["clean", "flagged", "error"]


@dataclass(frozen=True)
class Verdict:
    state: State
    detail: str = ""  # a signature name, a moderation reason, or why there is no verdict


@dataclass(frozen=True)
class ScanJob:
    asset: Asset
    version: Version
    open: Callable[[], Awaitable[BlobReader]]  # a fresh stream of the version's bytes
    source_url: Callable[[], Awaitable[str]]  # a short-lived URL to them (for remote scanners)


class Scanner(Protocol):
    label: str

    async def scan(self, job: ScanJob) -> Verdict: ...
