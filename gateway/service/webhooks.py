"""Subscriptions: the operator's (config, every owner's events) and each owner's own (``/webhooks``).

An owner sees, changes and receives only their own: an owner's subscription matches only events whose
``owner`` is that owner (``Subscription.wants``), and every lookup here is by (owner, id). Target URLs
are checked when subscribed (scheme, no credentials in the URL, no refused IP literal) and again at every
send by the SSRF guard (``sinks/netguard.py``), since a name may resolve elsewhere later.

The signing secret is generated here and shown once, on creation; it is stored as is (it must sign),
never logged, and never part of a listing.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from urllib.parse import urlsplit

from gateway.errors import BadRequest, Conflict, NotFound
from gateway.ports import Outbox
from gateway.records import Delivery, Subscription
from gateway.service.context import Backends
from gateway.service.events import EVENT_TYPES, Events
from gateway.sinks.netguard import RefusedAddress, check_target
from gateway.sinks.signing import new_secret

MAX_PER_OWNER = 100
MAX_URL = 2048


class Webhooks:
    def __init__(
        self, backends: Backends, events: Events, internal: list[Subscription] | None = None
    ) -> None:
        self.b = backends
        self.events = events
        self.internal = internal or []  # the gateway's own consumers (scanning): url internal:<name>
        if events.listens(self.internal):
            events.listened = True

    def _outbox(self) -> Outbox:
        if self.b.outbox is None or not self.b.settings.events:
            raise Conflict("events are turned off on this gateway", code="events_disabled")
        return self.b.outbox

    def configured(self) -> list[Subscription]:
        return [
            Subscription(
                id=f"cfg_{name}",
                owner="",
                url=spec.url,
                secret=spec.secret.get_secret_value() if spec.secret else "",
                types=tuple(spec.types),
                created=0.0,
                description=f"configured sink {name}",
            )
            for name, spec in self.b.settings.event_sinks.items()
        ]

    async def everyone(self) -> list[Subscription]:
        """Every subscription the dispatcher fans out to."""
        stored = await self.b.outbox.subscriptions() if self.b.outbox is not None else []
        return [*self.internal, *self.configured(), *stored]

    async def create(self, owner: str, url: str, types: Sequence[str], description: str) -> Subscription:
        outbox = self._outbox()
        self._check_url(url)
        wanted = tuple(dict.fromkeys(types)) or ("*",)
        unknown = [t for t in wanted if t != "*" and t not in EVENT_TYPES]
        if unknown:
            raise BadRequest(f"unknown event type {unknown[0][:60]!r}", code="invalid_event_types")
        if len(await self.owned(owner)) >= MAX_PER_OWNER:
            raise Conflict(f"at most {MAX_PER_OWNER} webhooks per owner", code="too_many_webhooks")
        sub = Subscription(
            id=f"wh_{secrets.token_hex(12)}",
            owner=owner,
            url=url,
            secret=new_secret(),
            types=wanted,
            created=self.b.clock(),
            description=description,
        )
        await outbox.put_subscription(sub)
        self.events.subscription_added()
        return sub

    def _check_url(self, url: str) -> None:
        parts = urlsplit(url)
        if len(url) > MAX_URL or parts.scheme not in ("https", "http") or not parts.hostname:
            raise BadRequest("a webhook URL is http(s)://host/path", code="invalid_webhook_url")
        if parts.username or parts.password or any(c in url for c in "\r\n\t "):
            raise BadRequest("a webhook URL carries no credentials or whitespace", code="invalid_webhook_url")
        try:
            parts.port  # noqa: B018 (raises on a bad port)
            check_target(parts.hostname, allow_private=self.b.settings.webhook_allow_private)
        except (ValueError, RefusedAddress) as exc:
            raise BadRequest(f"webhook URL refused: {str(exc)[:100]}", code="invalid_webhook_url") from None

    async def owned(self, owner: str) -> list[Subscription]:
        subs = await self._outbox().subscriptions()
        return sorted((s for s in subs if s.owner == owner), key=lambda s: s.created)

    async def get(self, owner: str, sub_id: str) -> Subscription:
        for sub in await self.owned(owner):
            if sub.id == sub_id:
                return sub
        raise NotFound("unknown webhook", code="webhook_not_found")

    async def delete(self, owner: str, sub_id: str) -> None:
        sub = await self.get(owner, sub_id)
        if not await self._outbox().delete_subscription(sub.id):
            raise NotFound("unknown webhook", code="webhook_not_found")

    async def deliveries(self, owner: str, sub_id: str, limit: int) -> list[Delivery]:
        sub = await self.get(owner, sub_id)
        return await self._outbox().deliveries(sub.id, limit)

    async def retry(self, owner: str, sub_id: str, delivery_id: str) -> Delivery:
        sub = await self.get(owner, sub_id)
        outbox = self._outbox()
        for d in await outbox.deliveries(sub.id, 1000):
            if d.id == delivery_id and d.state == "pending":
                raise Conflict("this delivery is still pending", code="delivery_pending")
        again = await outbox.requeue(sub.id, delivery_id, self.b.clock())
        if again is None:
            raise NotFound("unknown delivery", code="delivery_not_found")
        return again
