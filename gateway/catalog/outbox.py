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
from gateway.catalog.item_store import Held, Item, ItemStore
from gateway.ports import Queued
from gateway.records import Delivery, Event, Subscription


def _queued(item: Item) -> Queued:
    return Queued(
        pk=item["PK"],
        sk=item["SK"],
        lease_ms=int(item.get("lease_ms", 0)),
        next_ms=int(item.get("next_ms", 0)),
        event=ob.event_from(item) if item["kind"] == "event" else None,
        ref=(item["subscription"], item["delivery_id"]) if item["kind"] == "pointer" else None,
    )


class OutboxCatalog:
    def __init__(self, store: ItemStore) -> None:
        self.s = store

    async def publish(self, events: Sequence[Event]) -> None:
        for start in range(0, len(events), self.s.limit):
            await self.s.write(ob.event_items(list(events[start : start + self.s.limit])), [])

    async def due(self, now: float, limit: int) -> list[Queued]:
        """Only what is due is read (the queue's keys start with the due time), at most ``limit`` per
        shard; entries leased by a live process are skipped."""
        t = ob.ms(now)
        ready: list[Queued] = []
        for shard in range(ob.SHARDS):
            items = await self.s.query_upto(f"OUTBOX#{shard}", ob.due_bound(now), limit)
            ready += [q for q in map(_queued, items) if q.lease_ms <= t]
        ready.sort(key=lambda q: q.next_ms)
        return ready[:limit]

    async def lease(self, entry: Queued, until: float) -> Queued | None:
        new = ob.ms(until)
        if new == entry.lease_ms:
            new += 1
        if not await self.s.swap_lease(entry.pk, entry.sk, entry.lease_ms, new):
            return None
        held = dataclasses.replace(entry, lease_ms=new)
        if entry.ref is not None:
            record = await self.s.get(*ob.record_key(*entry.ref))
            held = dataclasses.replace(held, delivery=None if record is None else ob.delivery_from(record))
        return held

    def _held(self, entry: Queued) -> Held:
        return (entry.pk, entry.sk, entry.lease_ms)

    async def drop(self, entry: Queued) -> bool:
        """A pointer whose delivery record is gone: nothing left to do."""
        return await self.s.write([], [(entry.pk, entry.sk)], self._held(entry))

    async def fan_out(self, entry: Queued, deliveries: Sequence[Delivery]) -> bool:
        puts = [item for d in deliveries for item in (ob.record_item(d), ob.pointer_item(d))]
        room = (self.s.limit - 1) // 2 * 2  # whole deliveries (record + pointer) per transaction
        # Deliveries first in batches (deterministic ids: repeating a batch after a crash rewrites the
        # same items), the event's removal last, with the final batch, conditional on the lease.
        while len(puts) > room:
            if not await self.s.write(puts[:room], [], self._held(entry)):
                return False
            puts = puts[room:]
        return await self.s.write(puts, [(entry.pk, entry.sk)], self._held(entry))

    async def reschedule(self, entry: Queued, delivery: Delivery) -> bool:
        puts = [ob.record_item(delivery), ob.pointer_item(delivery)]  # the pointer moves to its new time
        return await self.s.write(puts, [(entry.pk, entry.sk)], self._held(entry))

    async def finish(self, entry: Queued, delivery: Delivery, keep_until: int) -> bool:
        done = ob.record_item(delivery, expires_at=keep_until)
        return await self.s.write([done], [(entry.pk, entry.sk)], self._held(entry))

    async def deliveries(self, subscription_id: str, limit: int) -> list[Delivery]:
        found = [ob.delivery_from(i) for i in await self.s.query(ob.history_pk(subscription_id), "D#")]
        return sorted(found, key=lambda d: d.created, reverse=True)[:limit]

    async def schedule(self, delivery: Delivery) -> None:
        await self.s.write([ob.record_item(delivery), ob.pointer_item(delivery)], [])

    async def requeue(self, subscription_id: str, delivery_id: str, now: float) -> Delivery | None:
        item = await self.s.get(*ob.record_key(subscription_id, delivery_id))
        if item is None:
            return None
        again = dataclasses.replace(ob.delivery_from(item), state="pending", next_at=now)
        await self.s.write([ob.record_item(again), ob.pointer_item(again)], [])
        return again

    async def put_subscription(self, sub: Subscription) -> None:
        await self.s.write([ob.subscription_item(sub)], [])

    async def subscriptions(self) -> list[Subscription]:
        return [ob.subscription_from(i) for i in await self.s.query(ob.SUBSCRIPTIONS_PK)]

    async def delete_subscription(self, sub_id: str) -> bool:
        """Its queued deliveries are closed as failed by the dispatcher when their turn comes."""
        if await self.s.get(ob.SUBSCRIPTIONS_PK, sub_id) is None:
            return False
        await self.s.write([], [(ob.SUBSCRIPTIONS_PK, sub_id)])
        return True
