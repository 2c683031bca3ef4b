"""The outbox port written once, over the item primitives each engine provides (``item_store.py``).

Both adapters store the same items (``outbox_items.py``); what differs is only how a query, a
transaction and a conditional swap are spelled, and that is ``sqlite_items.py`` / ``dynamodb_items.py``.
Every rule -- what a lease is, how an event becomes deliveries, what a finished delivery keeps -- lives
here.

Every write that acts on a claimed entry is conditional on the lease value its claimer set: a process
that stalled past its lease cannot overwrite the work of the process that took over (it gets False and
drops the entry).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from gateway.catalog import outbox_items as ob
from gateway.catalog.item_store import Held, ItemStore, Key
from gateway.ports import Queued
from gateway.records import Delivery, Event, Subscription


def _queued(item: ob.Item) -> Queued:
    kind = item["kind"]
    return Queued(
        pk=item["PK"],
        sk=item["SK"],
        lease_ms=int(item.get("lease_ms", 0)),
        next_ms=int(item.get("next_ms", 0)),
        event=ob.event_from(item) if kind == "event" else None,
        delivery=ob.delivery_from(item) if kind == "delivery" else None,
    )


class OutboxCatalog:
    def __init__(self, store: ItemStore) -> None:
        self.s = store

    async def publish(self, events: Sequence[Event]) -> None:
        for start in range(0, len(events), self.s.limit):
            await self.s.write(ob.event_items(list(events[start : start + self.s.limit])), [])

    async def _all_queued(self) -> list[Queued]:
        out: list[Queued] = []
        for shard in range(ob.SHARDS):
            out += [_queued(i) for i in await self.s.query(f"OUTBOX#{shard}")]
        return out

    async def due(self, now: float, limit: int) -> list[Queued]:
        t = ob.ms(now)
        ready = [q for q in await self._all_queued() if q.next_ms <= t and q.lease_ms <= t]
        ready.sort(key=lambda q: q.next_ms)
        return ready[:limit]

    async def lease(self, entry: Queued, until: float) -> Queued | None:
        new = ob.ms(until)
        if new == entry.lease_ms:
            new += 1
        if not await self.s.swap_lease(entry.pk, entry.sk, entry.lease_ms, new):
            return None
        return dataclasses.replace(entry, lease_ms=new)

    async def fan_out(self, entry: Queued, deliveries: Sequence[Delivery]) -> bool:
        held: Held = (entry.pk, entry.sk, entry.lease_ms)
        puts = [ob.delivery_item(d) for d in deliveries]
        room = self.s.limit - 1
        # Deliveries first in batches (deterministic ids: repeating a batch after a crash rewrites the
        # same items), the event's removal last, with the final batch, conditional on the lease.
        while len(puts) > room:
            if not await self.s.write(puts[:room], [], held):
                return False
            puts = puts[room:]
        return await self.s.write(puts, [(entry.pk, entry.sk)], held)

    async def reschedule(self, entry: Queued, delivery: Delivery) -> bool:
        return await self.s.write([ob.delivery_item(delivery)], [], (entry.pk, entry.sk, entry.lease_ms))

    async def finish(self, entry: Queued, delivery: Delivery, keep_until: int) -> bool:
        done = ob.delivery_item(delivery, expires_at=keep_until)
        return await self.s.write([done], [(entry.pk, entry.sk)], (entry.pk, entry.sk, entry.lease_ms))

    async def deliveries(self, subscription_id: str, limit: int) -> list[Delivery]:
        pending: list[Delivery] = []
        for shard in range(ob.SHARDS):
            items = await self.s.query(f"OUTBOX#{shard}", f"D#{subscription_id}#")
            pending += [ob.delivery_from(i) for i in items]
        done = [ob.delivery_from(i) for i in await self.s.query(ob.history_pk(subscription_id), "D#")]
        return sorted([*pending, *done], key=lambda d: d.created, reverse=True)[:limit]

    async def requeue(self, subscription_id: str, delivery_id: str, now: float) -> Delivery | None:
        key = (ob.history_pk(subscription_id), f"D#{delivery_id}")
        item = await self.s.get(*key)
        if item is None:
            return None
        again = dataclasses.replace(ob.delivery_from(item), state="pending", next_at=now)
        await self.s.write([ob.delivery_item(again)], [key])
        return again

    async def backlog(self) -> tuple[int, float | None]:
        queued = await self._all_queued()
        times = [q.event.at if q.event else q.delivery.created if q.delivery else 0.0 for q in queued]
        return len(queued), min(times) if times else None

    async def put_subscription(self, sub: Subscription) -> None:
        await self.s.write([ob.subscription_item(sub)], [])

    async def subscriptions(self) -> list[Subscription]:
        return [ob.subscription_from(i) for i in await self.s.query(ob.SUBSCRIPTIONS_PK)]

    async def delete_subscription(self, sub_id: str) -> bool:
        if await self.s.get(ob.SUBSCRIPTIONS_PK, sub_id) is None:
            return False
        pending: list[Key] = []
        for shard in range(ob.SHARDS):
            pending += [(i["PK"], i["SK"]) for i in await self.s.query(f"OUTBOX#{shard}", f"D#{sub_id}#")]
        for start in range(0, len(pending), self.s.limit):
            await self.s.write([], pending[start : start + self.s.limit])
        await self.s.write([], [(ob.SUBSCRIPTIONS_PK, sub_id)])
        return True
