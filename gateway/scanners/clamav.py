"""ClamAV through clamd's INSTREAM command, streaming from storage (never the whole file in memory).

Protocol (clamd(8)): send ``zINSTREAM\\0``, then chunks each prefixed by its length as a 4-byte
big-endian integer, then a zero length; clamd answers ``stream: OK``, ``stream: <signature> FOUND`` or
``… ERROR``, terminated by NUL. clamd refuses streams longer than its ``StreamMaxLength`` (it answers
``INSTREAM size limit exceeded`` and closes), so a version larger than ``stream_max_bytes`` is not sent
at all: its state is ``error`` ("too large for clamd"), documented, never ``clean``.
"""

from __future__ import annotations

import asyncio
import struct

from gateway.scanners import ScanJob, Verdict
from gateway.scanners.spec import ScannerSpec

CHUNK = 256 * 1024  # per INSTREAM chunk; clamd buffers up to StreamMaxLength in total, not per chunk


class ClamAV:
    def __init__(self, spec: ScannerSpec) -> None:
        self.spec = spec
        self.label = spec.label
        assert spec.address is not None
        self.address = spec.address

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.address.startswith("unix://"):
            return await asyncio.open_unix_connection(self.address.removeprefix("unix://"))
        host, _, port = self.address.removeprefix("tcp://").rpartition(":")
        return await asyncio.open_connection(host.strip("[]"), int(port))

    async def scan(self, job: ScanJob) -> Verdict:
        if job.version.size > self.spec.stream_max_bytes:
            return Verdict("error", f"{self.label}: larger than clamd's StreamMaxLength")
        try:
            return await asyncio.wait_for(self._scan(job), self.spec.timeout)
        except TimeoutError:
            return Verdict("error", f"{self.label}: timed out")
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            return Verdict("error", f"{self.label}: {type(exc).__name__}")

    async def _scan(self, job: ScanJob) -> Verdict:
        reader, writer = await self._connect()
        try:
            writer.write(b"zINSTREAM\0")
            source = await job.open()
            try:
                async for chunk in source:
                    for start in range(0, len(chunk), CHUNK):
                        piece = chunk[start : start + CHUNK]
                        writer.write(struct.pack(">I", len(piece)) + piece)
                        await writer.drain()
            finally:
                await source.aclose()
            writer.write(struct.pack(">I", 0))
            await writer.drain()
            reply = (await reader.readuntil(b"\0")).rstrip(b"\0").decode("utf-8", "replace").strip()
        finally:
            writer.close()
        return _verdict(self.label, reply)


def _verdict(label: str, reply: str) -> Verdict:
    body = reply.removeprefix("stream:").strip()
    if body == "OK":
        return Verdict("clean")
    if body.endswith(" FOUND"):
        return Verdict("flagged", f"{label}: {body.removesuffix(' FOUND')[:200]}")
    return Verdict("error", f"{label}: {body[:200] or 'no answer'}")
