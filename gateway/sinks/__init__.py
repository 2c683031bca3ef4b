"""Where events are delivered: webhooks (``webhook.py``), SNS and SQS (``aws.py``).

The dispatcher (``service/dispatch.py``) knows only :class:`Sinks`: give it a subscription and an event,
get an :class:`Outcome`. Clients (an aiohttp session with the SSRF-guarded resolver, SNS/SQS clients)
are opened once and closed by the app's cleanup context, like every other backend.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from gateway.records import Event, Subscription

if TYPE_CHECKING:  # gateway.config imports sinks.spec: this package must not import it back at run time
    from gateway.config import Settings


@dataclass(frozen=True)
class Outcome:
    ok: bool
    status: int | None = None  # the receiver's HTTP status, when it answered
    error: str = ""  # a short reason, never a secret or a response body


def payload(event: Event) -> bytes:
    """The body every sink sends: Standard Webhooks' recommended ``{type, timestamp, data}``."""
    stamp = datetime.fromtimestamp(event.at, UTC).isoformat().replace("+00:00", "Z")
    body = {"type": event.type, "timestamp": stamp, "data": {**event.data, "event_id": event.id}}
    return json.dumps(body, separators=(",", ":"), sort_keys=True).encode()


class Sink(Protocol):
    async def send(self, sub: Subscription, event: Event) -> Outcome: ...


class Sinks:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._stack = AsyncExitStack()
        self._http: Sink | None = None
        self._aws: dict[tuple[str, str | None, str | None], Sink] = {}
        self.internal: dict[str, Callable[[Event], Awaitable[Outcome]]] = {}  # internal:<name> handlers

    async def close(self) -> None:
        await self._stack.aclose()

    async def send(self, sub: Subscription, event: Event) -> Outcome:
        if sub.url.startswith("internal:"):
            handler = self.internal.get(sub.url.removeprefix("internal:"))
            if handler is None:
                return Outcome(False, error="no such internal consumer")
            return await handler(event)
        try:
            sink = await self._sink_for(sub)
        except Exception as exc:  # a sink that cannot even be set up is a failed attempt, retried
            return Outcome(False, error=f"sink unavailable: {type(exc).__name__}")
        return await sink.send(sub, event)

    async def _sink_for(self, sub: Subscription) -> Sink:
        if sub.url.startswith(("https://", "http://")):
            if self._http is None:
                from gateway.sinks.webhook import WebhookSink

                self._http = await self._stack.enter_async_context(WebhookSink(self.settings))
            return self._http
        kind = sub.url.split(":", 1)[0]
        spec = self._spec(sub)
        key = (kind, spec.get("region"), spec.get("endpoint"))
        if key not in self._aws:
            from gateway.sinks.aws import AwsSink

            self._aws[key] = await self._stack.enter_async_context(AwsSink(kind, key[1], key[2]))
        return self._aws[key]

    def _spec(self, sub: Subscription) -> dict[str, Any]:
        name = sub.id.removeprefix("cfg_")
        spec = self.settings.event_sinks.get(name)
        return {} if spec is None else {"region": spec.region, "endpoint": spec.endpoint}
