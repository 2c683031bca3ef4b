"""A webhook receiver for tests: a real HTTP server on 127.0.0.1 that records what it is sent.

It verifies nothing itself; tests verify each request with the ``standardwebhooks`` package. It can be
told to fail its next N requests (HTTP 500) to exercise the gateway's retries.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from standardwebhooks.webhooks import Webhook


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> dict[str, Any]:
        return json.loads(self.body)  # type: ignore[no-any-return]


@dataclass
class Receiver:
    fail_next: int = 0
    status: int = 204
    delay: float = 0.0  # seconds before answering (a slow receiver)
    received: list[Received] = field(default_factory=list)
    refused: int = 0
    runner: web.AppRunner | None = None
    url: str = ""

    async def start(self, port: int = 0) -> Receiver:
        app = web.Application()
        app.router.add_post("/hook", self._hook)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", port)
        await site.start()
        bound = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{bound}/hook"
        return self

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    async def _hook(self, request: web.Request) -> web.Response:
        body = await request.read()
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.fail_next > 0:
            self.fail_next -= 1
            self.refused += 1
            return web.Response(status=500, text="not now")
        self.received.append(Received(dict(request.headers), body))
        return web.Response(status=self.status)

    def verified(self, secret: str) -> dict[str, dict[str, Any]]:
        """Every received request verified with standardwebhooks; by webhook-id (duplicates folded)."""
        hook = Webhook(secret)
        out: dict[str, dict[str, Any]] = {}
        for r in self.received:
            headers = {k.lower(): v for k, v in r.headers.items()}
            payload = hook.verify(r.body, headers)
            assert payload == r.json
            out[headers["webhook-id"]] = r.json
        return out

    def types(self) -> list[str]:
        return sorted(r.json["type"] for r in self.received)


async def wait_for(predicate: Any, timeout: float = 20.0, what: str = "condition", show: Any = None) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"{what} not reached in {timeout} s: {show() if show else ''}"
        await asyncio.sleep(0.05)
