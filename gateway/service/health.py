"""Backend health for ``/healthcheck``, probed at most once per ``ttl`` however often it is asked.

Why: load balancers and orchestrators poll the healthcheck from every node, often several times a second;
each answer used to cost a storage call and a catalog call (a DynamoDB read, an S3 HEAD: money and
latency at scale). Now one probe runs at a time, its result is reused for ``ttl`` seconds
(``GATEWAY_HEALTH_CACHE_SECONDS``, default 2; 0 probes every time), and callers that arrive while a
probe runs wait for that probe instead of starting their own. The answer says how old it is (``age``,
sent as the HTTP ``Age`` header), so a poller can tell a fresh result from a reused one.

With several storages each is probed on its own and reported by name: the catalog or the default
storage down fails the check (most traffic cannot be served); another storage down is reported in
``storages`` while the check stays up, so one customer's bucket cannot take every node out of rotation.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from gateway.errors import GatewayError

PROBE_TIMEOUT = 5.0


@dataclass(frozen=True)
class Health:
    ok: bool
    error: str | None
    checked: float  # monotonic time of the probe
    storages: dict[str, str | None] = field(default_factory=dict)  # name -> None (up) or the reason
    workers: dict[str, float] | None = None  # the outbox: entries due now and the oldest one's age

    def age(self, now: float) -> float:
        return max(0.0, now - self.checked)


class HealthProbe:
    def __init__(
        self,
        probes: list[Callable[[], Awaitable[None]]],
        ttl: float,
        storages: Callable[[], Awaitable[dict[str, str | None]]] | None = None,
        critical: str = "",
        workers: Callable[[], Awaitable[dict[str, float]]] | None = None,
    ) -> None:
        self.workers = workers  # reported, never failing the check: a backlog is not an outage
        self.probes = probes
        self.ttl = ttl
        self.storages = storages
        self.critical = critical  # the storage whose failure fails the check (the default one)
        self._last: Health | None = None
        self._running: asyncio.Future[Health] | None = None

    async def check(self) -> Health:
        now = time.monotonic()
        if self._last is not None and self._last.age(now) < self.ttl:
            return self._last
        if self._running is None or self._running.done():
            self._running = asyncio.ensure_future(self._probe())
        return await asyncio.shield(self._running)  # one caller going away does not cancel the probe

    async def _probe(self) -> Health:
        states: dict[str, str | None] = {}

        async def storage_states() -> None:
            nonlocal states
            if self.storages is not None:
                states = await self.storages()

        try:
            async with asyncio.timeout(PROBE_TIMEOUT):
                await asyncio.gather(storage_states(), *(probe() for probe in self.probes))
        except (GatewayError, TimeoutError) as exc:
            message = getattr(exc, "message", None) or "storage or catalog timed out"
            self._last = Health(False, message, time.monotonic())
            return self._last
        workers = None
        if self.workers is not None:
            try:
                async with asyncio.timeout(PROBE_TIMEOUT):
                    workers = await self.workers()
            except (GatewayError, TimeoutError):
                workers = None
        down = states.get(self.critical)
        if down is not None:
            self._last = Health(False, down, time.monotonic(), states, workers)
        else:
            self._last = Health(True, None, time.monotonic(), states, workers)
        return self._last
