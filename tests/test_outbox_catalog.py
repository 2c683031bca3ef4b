"""The outbox on each catalog engine: leases are exclusive, entries move through their states, and a
dispatcher reads only what is due however long the queue of backed-off deliveries is."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from gateway.catalog import outbox_items as ob
from gateway.catalog.outbox import OutboxCatalog
from gateway.records import Delivery, Event


class Counting:
    """An ItemStore that counts the items its queries return."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.limit = inner.limit
        self.read = 0

    async def query(self, pk: str, prefix: str = "") -> list[dict[str, Any]]:
        found = await self.inner.query(pk, prefix)
        self.read += len(found)
        return list(found)

    async def query_upto(self, pk: str, upto: str, limit: int) -> list[dict[str, Any]]:
        found = await self.inner.query_upto(pk, upto, limit)
        self.read += len(found)
        return list(found)

    async def get(self, pk: str, sk: str) -> Any:
        return await self.inner.get(pk, sk)

    async def write(self, puts: Sequence[Any], deletes: Sequence[Any], held: Any = None) -> bool:
        return bool(await self.inner.write(puts, deletes, held))

    async def swap_lease(self, pk: str, sk: str, seen: int, new: int) -> bool:
        return bool(await self.inner.swap_lease(pk, sk, seen, new))


def event(n: int, now: float) -> Event:
    return Event(id=f"evt_{n:04d}", type="asset.created", at=now, owner="key:o", data={"n": n})


async def test_lease_fan_out_retry_finish_requeue(catalog: Any) -> None:
    outbox = catalog.outbox()
    now = time.time()
    await outbox.publish([event(1, now)])
    [entry] = await outbox.due(now, 10)
    held = await outbox.lease(entry, now + 60)
    assert held is not None and held.event is not None and held.event.data == {"n": 1}
    assert await outbox.lease(entry, now + 60) is None  # the lease is exclusive
    assert await outbox.due(now, 10) == []  # leased: not due for anyone else
    delivery = Delivery("d1", "wh_1", held.event, "pending", (), now, now)
    assert await outbox.fan_out(held, [delivery])
    [pointer] = await outbox.due(now, 10)
    claimed = await outbox.lease(pointer, now + 60)
    assert claimed is not None and claimed.delivery is not None and claimed.delivery.event.id == "evt_0001"
    later = Delivery("d1", "wh_1", held.event, "pending", (), now + 3600, now)
    assert await outbox.reschedule(claimed, later)
    assert await outbox.due(now, 10) == []  # backing off for an hour
    [moved] = await outbox.due(now + 3601, 10)
    again = await outbox.lease(moved, now + 3660)
    assert again is not None and not await outbox.finish(claimed, later, int(now))  # a stale holder loses
    assert await outbox.finish(
        again, Delivery("d1", "wh_1", held.event, "delivered", (), now, now), int(now) + 60
    )
    [listed] = await outbox.deliveries("wh_1", 10)
    assert listed.state == "delivered" and await outbox.due(now + 7200, 10) == []
    requeued = await outbox.requeue("wh_1", "d1", now)
    assert requeued is not None and requeued.state == "pending" and len(await outbox.due(now, 10)) == 1


async def test_a_long_backed_off_queue_is_not_read_by_every_poll(catalog: Any) -> None:
    store = Counting(catalog.outbox().s)
    outbox = OutboxCatalog(store)
    now = time.time()
    base = event(0, now)
    waiting = [Delivery(f"w{i}", "wh_down", base, "pending", (), now + 3600, now) for i in range(300)]
    for start in range(0, len(waiting), 40):
        await store.write([ob.pointer_item(d) for d in waiting[start : start + 40]], [])
    await outbox.publish([event(1, now)])
    store.read = 0
    found = await outbox.due(now, 10)
    assert [q.event.id for q in found if q.event] == ["evt_0001"] and len(found) == 1
    assert store.read <= 1  # only the due entry was read, not the 300 waiting ones
