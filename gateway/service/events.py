"""What happened, as events: their types, their payloads, and how a change carries its events.

Why a transactional outbox: an event sent after a commit is lost when the process dies in between, and
one sent before may describe a change that never happened. So every event is built here and handed to
the catalog write that makes the change (``create_assets(..., events)``, ``revoke_token(..., events)``,
…); the catalog writes both in one transaction, and ``service/dispatch.py`` delivers from there. The
one exception is a completed download: nothing else is written at that moment, so its events are one
write of their own (``Outbox.publish``) after the response ended.

Payloads never carry a secret: token events name the link by its id, clients by a keyed hash.

Events nobody subscribed to are not written: ``listened`` is true while a configured sink or a stored
webhook exists (set at once when one is created here, refreshed by every dispatcher pass for the ones
other processes create). A deployment without webhooks pays nothing per request; a new subscription
receives events from about the moment it exists.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Sequence
from typing import Any

from gateway.records import Asset, Event, Token, Version
from gateway.service.context import Backends

BACKLOG_READ = 100
# Work items of the gateway's own consumers (service/transfers.py): never offered to subscribers.
INTERNAL_TYPES = ("transfer.requested", "transfer.expire")
EVENT_TYPES = (
    "asset.created",
    "asset.version_created",
    "asset.deleted",
    "asset.expired",
    "token.created",
    "token.revoked",
    "token.exhausted",
    "download.completed",
    "upload_link.used",
    "scan.completed",
    "scan.flagged",
    "thumbnail.created",
)


def asset_data(asset: Asset, version: Version | None = None) -> dict[str, Any]:
    v = version or asset.latest
    data: dict[str, Any] = {"asset_id": asset.id, "name": asset.name, "owner": asset.owner}
    if v is not None:
        data |= {"version": v.version, "size": v.size, "sha256": v.sha256, "content_type": v.content_type}
    return data


def token_data(token: Token) -> dict[str, Any]:
    return {
        "token_id": token.token_id,
        "asset_ids": list(token.asset_ids),
        "bundle": token.bundle,
        "expires_at": token.expires_at,
        "max_downloads": token.max_downloads,
    }


class Events:
    """Builds events (ids, times) and tells the dispatcher of this process when some were written."""

    def __init__(self, backends: Backends) -> None:
        self.b = backends
        self.possible = backends.outbox is not None and backends.settings.events
        self.listened = bool(backends.settings.event_sinks)
        self.subscribed = 0  # bumped by each new subscription in this process (see refresh)
        self.written = asyncio.Event()  # a nudge: the dispatcher need not wait for its next poll

    @property
    def enabled(self) -> bool:
        return self.possible and self.listened

    def subscription_added(self) -> None:
        self.listened = True
        self.subscribed += 1

    @staticmethod
    def listens(subs: list[Any]) -> bool:
        """Whether any subscription wants public events (internal-only consumers do not count)."""
        return any(not set(s.types) <= set(INTERNAL_TYPES) for s in subs)

    def refresh(self, any_subscription: bool, subscribed_before: int) -> None:
        """From a dispatcher pass: whether anyone listens. A subscription created here while the pass
        was reading must not be overwritten by the pass's older answer."""
        if any_subscription:
            self.listened = True
        elif self.subscribed == subscribed_before:
            self.listened = False

    def new(self, type_: str, owner: str, data: dict[str, Any]) -> Event:
        assert type_ in EVENT_TYPES or type_ in INTERNAL_TYPES, type_
        at = self.b.clock()
        return Event(
            id=f"evt_{int(at * 1000):012x}{secrets.token_hex(8)}", type=type_, at=at, owner=owner, data=data
        )

    def of(self, *events: Event) -> tuple[Event, ...]:
        """The events to hand to a catalog write: none when events are off."""
        return events if self.enabled else ()

    def committed(self, events: Sequence[Event]) -> None:
        if events:
            self.written.set()

    async def backlog(self) -> dict[str, float]:
        """For /healthcheck: outbox entries due now (a bounded read: at most 100) and the oldest's age."""
        if self.b.outbox is None:
            return {}
        now = time.time()
        due = await self.b.outbox.due(now, BACKLOG_READ)
        waits = [now - (q.event.at if q.event is not None else q.next_ms / 1000) for q in due]
        return {"outbox_due": float(len(due)), "oldest_due_seconds": round(max([0.0, *waits]), 3)}

    async def publish(self, *events: Event) -> None:
        """Events that ride on no other write (see the module docstring)."""
        if self.enabled and events and self.b.outbox is not None:
            await self.b.outbox.publish(events)
            self.written.set()
