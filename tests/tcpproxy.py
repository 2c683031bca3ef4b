"""A TCP proxy between a real client (a browser, the terminal client) and the gateway, for network faults.

The fault proxy in faultproxy.py speaks HTTP to S3; this one knows nothing of HTTP: it moves bytes and,
when told, cuts a connection after so many client bytes or slows the client's bytes down -- what a
dropped Wi-Fi or a train tunnel does to an upload. It also keeps the first bytes of every request it
saw (request lines are enough to tell a tus creation from a resume).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from dataclasses import dataclass, field

_REQUEST_LINE = re.compile(rb"(GET|HEAD|POST|PUT|PATCH|DELETE|OPTIONS) (/[^ \r\n]*) HTTP/1\.1\r\n")


@dataclass
class TcpProxy:
    upstream_port: int
    cut_after: int | None = None  # close the first connection whose upload passes this many bytes
    rate: float | None = None  # bytes per second from the client, per connection
    cut_download_after: int | None = None  # close the first connection whose response passes this
    cuts: int = 0
    download_cuts: int = 0
    port: int = 0
    upstream_bytes: int = 0
    _seen: bytearray = field(default_factory=bytearray)
    _server: asyncio.Server | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def __aenter__(self) -> TcpProxy:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def requests(self) -> list[tuple[str, str]]:
        """(method, path) of every request line the clients sent (bodies are binary noise, skipped by
        the pattern's strictness; good enough for the test files used here)."""
        return [(m.decode(), p.decode()) for m, p in _REQUEST_LINE.findall(bytes(self._seen))]

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            writer.close()
            self._tasks.discard(task)
            return
        down = asyncio.create_task(self._pump(up_reader, writer, client=False))
        try:
            await self._pump(reader, up_writer, client=True)
        except asyncio.CancelledError:
            pass  # the proxy is closing: end quietly (the streams callback reads this task's outcome)
        finally:
            down.cancel()
            with contextlib.suppress(BaseException):
                await down
            for w in (writer, up_writer):
                w.close()
            self._tasks.discard(task)

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, client: bool
    ) -> None:
        sent = 0
        with contextlib.suppress(ConnectionError, OSError):
            while chunk := await reader.read(65536):
                if client:
                    if len(self._seen) < 1 << 20:
                        self._seen += _headers_only(chunk)
                    sent += len(chunk)
                    self.upstream_bytes += len(chunk)
                    if self.cut_after is not None and self.cuts == 0 and sent > self.cut_after:
                        self.cuts += 1
                        transport = writer.transport
                        transport.abort()
                        return
                    if self.rate:
                        await asyncio.sleep(len(chunk) / self.rate)
                else:
                    sent += len(chunk)
                    if self.cut_download_after is not None and self.download_cuts == 0:
                        if sent > self.cut_download_after:
                            self.download_cuts += 1
                            writer.transport.abort()
                            return
                writer.write(chunk)
                await writer.drain()
            if not client:
                return
            with contextlib.suppress(OSError):
                writer.write_eof()


def _headers_only(chunk: bytes) -> bytes:
    """Keep a chunk only where it may hold request lines: bodies of test files are random bytes."""
    return chunk if _REQUEST_LINE.search(chunk) else b""
