"""The dispatcher: every gateway process runs one; the outbox lease decides who handles what.

One pass reads the due entries of the outbox (``catalog/outbox.py``) and claims each with a lease:
- an event is fanned out into one delivery per subscription that wants it (config sinks, the owner's
  webhooks), written in the same conditional write that removes the event;
- a delivery is attempted (``sinks/``). Delivered: moved to the subscription's history. Failed: the
  attempt is recorded and the next one scheduled with exponential backoff (``webhook_retry_base`` ×
  2^n, at most ``webhook_retry_max_delay``, ±20 % jitter), until ``webhook_retry_for`` has passed since
  the event; then it is marked failed (and can be retried by hand: ``POST …/deliveries/{id}/retry``).

Nothing is lost across kill -9: an entry leaves the outbox only in the write that records its outcome,
and a lease that its holder does not renew runs out (``outbox_lease``), so another process takes over.
Delivery is therefore at least once; receivers de-duplicate on ``webhook-id`` (the event id).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import logging
import random
import time
from collections.abc import Callable

from gateway.ports import Outbox, Queued
from gateway.records import Attempt, Delivery, Event, Subscription
from gateway.service.context import Backends
from gateway.service.events import Events
from gateway.service.webhooks import Webhooks
from gateway.sinks import Sinks

log = logging.getLogger("gateway.events")
BATCH = 100


class Dispatcher:
    def __init__(
        self,
        backends: Backends,
        events: Events,
        webhooks: Webhooks,
        sinks: Sinks,
        clock: Callable[[], float] = time.time,
        on_attempt: Callable[[str], None] = lambda outcome: None,
    ) -> None:
        self.on_attempt = on_attempt  # a metric: delivered, retry or failed
        self.b = backends
        self.clock = clock  # wall time: leases are shared with other processes (tests move the service's)
        self.events = events
        self.webhooks = webhooks
        self.sinks = sinks
        self.settings = backends.settings
        self._slots = asyncio.Semaphore(self.settings.webhook_concurrency)
        self._inflight: set[asyncio.Task[None]] = set()

    @property
    def outbox(self) -> Outbox:
        assert self.b.outbox is not None
        return self.b.outbox

    async def run(self) -> None:
        """Poll forever; a failing pass is logged and retried, never the end of delivery."""
        if self.b.outbox is None or not self.events.possible:
            return
        try:
            while True:
                try:
                    await self.pass_once()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    log.warning("event dispatch pass failed, retried: %s", type(exc).__name__)
                self.events.written.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.events.written.wait(), self.settings.outbox_poll_interval)
        finally:
            for task in list(self._inflight):
                task.cancel()
            await asyncio.gather(*self._inflight, return_exceptions=True)

    async def pass_once(self) -> int:
        """Handle what is due now; the number of entries this process claimed."""
        before = self.events.subscribed
        subs = await self.webhooks.everyone()
        self.events.refresh(self.events.listens(subs), before)
        now = self.clock()
        claimed = 0
        busy = {t.get_name() for t in self._inflight}
        for entry in await self.outbox.due(now, BATCH):
            if entry.sk in busy:
                continue
            held = await self.outbox.lease(entry, now + self.settings.outbox_lease)
            if held is None:
                continue
            claimed += 1
            if held.event is not None:
                await self._fan_out(held, held.event, subs)
            elif held.delivery is None:
                await self.outbox.drop(held)  # a pointer to a record that is gone
            else:
                await self._slots.acquire()
                task = asyncio.create_task(self._attempt(held, held.delivery), name=held.sk)
                self._inflight.add(task)
                task.add_done_callback(self._inflight.discard)
        return claimed

    async def _fan_out(self, entry: Queued, event: Event, subs: list[Subscription]) -> None:
        now = self.clock()
        deliveries = [
            Delivery(
                id=_delivery_id(event.id, sub.id),
                subscription=sub.id,
                event=event,
                state="pending",
                attempts=(),
                next_at=now,
                created=event.at,
            )
            for sub in subs
            if sub.wants(event)
        ]
        if await self.outbox.fan_out(entry, deliveries) and deliveries:
            self.events.written.set()  # deliveries are due now: another pass at once

    async def _attempt(self, entry: Queued, delivery: Delivery) -> None:
        held = [entry]  # the lease as it is renewed
        renewing = asyncio.create_task(self._keep_leased(held))
        try:
            subs = {s.id: s for s in await self.webhooks.everyone()}
            sub = subs.get(delivery.subscription)
            started = time.monotonic()
            outcome = None if sub is None else await self.sinks.send(sub, delivery.event)
            renewing.cancel()  # stopped before the outcome's write, which is conditional on the lease
            await asyncio.gather(renewing, return_exceptions=True)
            if sub is None or outcome is None:  # unsubscribed since: nothing to deliver to
                await self.outbox.finish(held[0], dataclasses.replace(delivery, state="failed"), self._keep())
                return
            now = self.clock()
            attempt = Attempt(now, outcome.status, outcome.error, int((time.monotonic() - started) * 1000))
            tried = dataclasses.replace(delivery, attempts=(*delivery.attempts, attempt))
            if outcome.ok:
                self.on_attempt("delivered")
                await self.outbox.finish(held[0], dataclasses.replace(tried, state="delivered"), self._keep())
                return
            if now - delivery.created >= self.settings.webhook_retry_for:
                self.on_attempt("failed")
                log.warning("delivery %s to %s failed for good", delivery.id, sub.id)
                await self.outbox.finish(held[0], dataclasses.replace(tried, state="failed"), self._keep())
                return
            self.on_attempt("retry")
            later = dataclasses.replace(tried, next_at=now + self._backoff(len(tried.attempts)))
            await self.outbox.reschedule(held[0], later)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the lease runs out and the entry is tried again
            log.warning("delivery %s: %s", delivery.id, getattr(exc, "message", type(exc).__name__))
        finally:
            renewing.cancel()
            await asyncio.gather(renewing, return_exceptions=True)
            self._slots.release()

    async def _keep_leased(self, held: list[Queued]) -> None:
        """While an attempt runs (a slow receiver, a transfer of big objects, a scan of a big file), its
        lease is renewed every third of ``outbox_lease``: no other process takes over a live attempt."""
        lease = self.settings.outbox_lease
        while True:
            await asyncio.sleep(lease / 3)
            try:
                renewed = await self.outbox.lease(held[0], self.clock() + lease)
            except Exception as exc:
                log.warning("lease renewal failed: %s", getattr(exc, "message", type(exc).__name__))
                continue
            if renewed is None:
                return  # lost (it had lapsed): the outcome's write will be refused, another process retries
            held[0] = dataclasses.replace(held[0], lease_ms=renewed.lease_ms)

    def _backoff(self, attempts: int) -> float:
        s = self.settings
        delay = min(s.webhook_retry_base * 2 ** max(attempts - 1, 0), s.webhook_retry_max_delay)
        return float(delay * random.uniform(0.8, 1.2))  # jitter

    def _keep(self) -> int:
        return int(self.clock()) + self.settings.webhook_history_days * 86400


def _delivery_id(event_id: str, sub_id: str) -> str:
    """Deterministic: fanning the same event out twice (after a crash) makes the same deliveries."""
    return hashlib.sha256(f"{event_id}\n{sub_id}".encode()).hexdigest()[:32]
