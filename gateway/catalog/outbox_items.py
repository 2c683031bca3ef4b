"""The outbox's items: a time-ordered queue, delivery records, subscriptions.

Written once for both adapters, like ``items.py``. An event is written by the same catalog transaction
as the change it describes (``event_items`` is appended to that transaction by the adapter), so a
committed change always has its event and a failed one never does.

    PK                  SK                                  what
    OUTBOX#<0..3>       <next ms, 13 digits>#E#<event id>   an event not yet fanned out (the event itself)
    OUTBOX#<0..3>       <next ms>#D#<sub>#<delivery id>     a delivery's next attempt (a pointer)
    WEBHOOK#<sub id>    D#<delivery id>                     a delivery: event, state, attempts (TTL when done)
    WEBHOOKS            <sub id>                            an owner's webhook subscription (secret: it signs)

The queue's sort key starts with the time an entry is due, so a dispatcher reads only what is due
(``SK <= now``, with a limit): a receiver that is down for a day, with a million deliveries backing
off, costs nothing per poll. Rescheduling moves the pointer to its new time (delete + put in one
conditional write). The queue is split over ``SHARDS`` partitions so one hot partition does not limit
throughput on DynamoDB. Times are integer milliseconds (exact in both engines), and the lease is the
classic conditional swap: ``lease_ms`` changes only if it still holds what the claimer read.
"""

from __future__ import annotations

import hashlib
from typing import Any

from gateway.records import Attempt, Delivery, Event, Subscription

Item = dict[str, Any]
SHARDS = 4
SUBSCRIPTIONS_PK = "WEBHOOKS"
MAX_ATTEMPTS_KEPT = 20  # a delivery's record shows its last attempts


def shard_pk(key: str) -> str:
    return f"OUTBOX#{hashlib.sha256(key.encode()).digest()[0] % SHARDS}"


def history_pk(subscription_id: str) -> str:
    return f"WEBHOOK#{subscription_id}"


def ms(t: float) -> int:
    return int(t * 1000)


def due_bound(now: float) -> str:
    """Queue sort keys <= this are due at ``now`` ('~' sorts after '#')."""
    return f"{ms(now):013d}~"


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
        "SK": f"{0:013d}#E#{e.id}",  # due at once: fanned out as soon as a dispatcher looks
        "kind": "event",
        **event_fields(e),
        "next_ms": 0,
        "lease_ms": 0,
    }


def event_items(events: tuple[Event, ...] | list[Event]) -> list[Item]:
    return [event_item(e) for e in events]


def pointer_item(d: Delivery) -> Item:
    """The queue entry of a pending delivery, due at ``d.next_at``."""
    return {
        "PK": shard_pk(d.id),
        "SK": f"{ms(d.next_at):013d}#D#{d.subscription}#{d.id}",
        "kind": "pointer",
        "subscription": d.subscription,
        "delivery_id": d.id,
        "next_ms": ms(d.next_at),
        "lease_ms": 0,
    }


def record_key(subscription_id: str, delivery_id: str) -> tuple[str, str]:
    return history_pk(subscription_id), f"D#{delivery_id}"


def record_item(d: Delivery, *, expires_at: int | None = None) -> Item:
    pk, sk = record_key(d.subscription, d.id)
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
