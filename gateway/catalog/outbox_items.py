"""The outbox's items: events waiting to fan out, deliveries waiting or done, subscriptions.

Written once for both adapters, like ``items.py``. An event is written by the same catalog transaction
as the change it describes (``event_items`` is appended to that transaction by the adapter), so a
committed change always has its event and a failed one never does.

    PK                  SK                          what
    OUTBOX#<0..3>       E#<event id>                an event not yet fanned out to its subscriptions
    OUTBOX#<0..3>       D#<subscription>#<delivery> a delivery still to be attempted (lease, next attempt)
    WEBHOOK#<sub id>    D#<delivery id>             a finished delivery (delivered/failed), listed (TTL)
    WEBHOOKS            <sub id>                    an owner's webhook subscription (secret kept: it signs)

The queue is split over ``SHARDS`` partitions so one hot partition does not limit throughput on
DynamoDB; dispatchers read all of them. Times are integer milliseconds (exact in both engines), and the
lease is the classic conditional swap: ``lease_ms`` changes only if it still holds what the claimer read.
"""

from __future__ import annotations

import hashlib
from typing import Any

from gateway.records import Attempt, Delivery, Event, Subscription

Item = dict[str, Any]
SHARDS = 4
SUBSCRIPTIONS_PK = "WEBHOOKS"
MAX_ATTEMPTS_KEPT = 20  # a delivery's history shows the last attempts; the count is kept apart


def shard_pk(key: str) -> str:
    return f"OUTBOX#{hashlib.sha256(key.encode()).digest()[0] % SHARDS}"


def history_pk(subscription_id: str) -> str:
    return f"WEBHOOK#{subscription_id}"


def ms(t: float) -> int:
    return int(t * 1000)


def event_fields(e: Event) -> Item:
    return {"event_id": e.id, "type": e.type, "at": e.at, "owner": e.owner, "data": e.data}


def event_from(item: Item) -> Event:
    return Event(
        id=item["event_id"],
        type=item["type"],
        at=float(item["at"]),
        owner=str(item["owner"]),
        data=dict(item["data"]),
    )


def event_item(e: Event) -> Item:
    return {
        "PK": shard_pk(e.id),
        "SK": f"E#{e.id}",
        "kind": "event",
        **event_fields(e),
        "next_ms": 0,  # due at once (an event is fanned out as soon as a dispatcher sees it)
        "lease_ms": 0,
    }


def event_items(events: tuple[Event, ...] | list[Event]) -> list[Item]:
    return [event_item(e) for e in events]


def pending_key(d: Delivery) -> tuple[str, str]:
    return shard_pk(d.id), f"D#{d.subscription}#{d.id}"


def delivery_item(d: Delivery, *, lease_ms: int = 0, expires_at: int | None = None) -> Item:
    """A pending delivery (queue key) or, with ``expires_at``, a finished one (history key)."""
    pk, sk = (history_pk(d.subscription), f"D#{d.id}") if expires_at is not None else pending_key(d)
    return {
        "PK": pk,
        "SK": sk,
        "kind": "delivery",
        "delivery_id": d.id,
        "subscription": d.subscription,
        "event": event_fields(d.event),
        "state": d.state,
        "attempts": [{"at": a.at, "status": a.status, "error": a.error, "ms": a.ms} for a in d.attempts][
            -MAX_ATTEMPTS_KEPT:
        ],
        "next_ms": ms(d.next_at),
        "created": d.created,
        "lease_ms": lease_ms,
        **({"expires_at": expires_at} if expires_at is not None else {}),
    }


def delivery_from(item: Item) -> Delivery:
    return Delivery(
        id=item["delivery_id"],
        subscription=item["subscription"],
        event=event_from(item["event"]),
        state=item["state"],
        attempts=tuple(
            Attempt(
                at=float(a["at"]),
                status=None if a.get("status") is None else int(a["status"]),
                error=str(a.get("error", "")),
                ms=int(a.get("ms", 0)),
            )
            for a in item.get("attempts", [])
        ),
        next_at=int(item["next_ms"]) / 1000,
        created=float(item["created"]),
    )


def subscription_item(s: Subscription) -> Item:
    return {
        "PK": SUBSCRIPTIONS_PK,
        "SK": s.id,
        "kind": "subscription",
        "sub_id": s.id,
        "owner": s.owner,
        "url": s.url,
        "secret": s.secret,
        "types": list(s.types),
        "created": s.created,
        "description": s.description,
    }


def subscription_from(item: Item) -> Subscription:
    return Subscription(
        id=item["sub_id"],
        owner=item["owner"],
        url=item["url"],
        secret=item["secret"],
        types=tuple(item["types"]),
        created=float(item["created"]),
        description=str(item.get("description", "")),
    )
