"""Transfer jobs, written once over the item primitives (``item_store.py``).

    PK                  SK      what
    TRANSFER#<id>       JOB     the whole job: owner, sources, targets, each object's state per target

One item per job (a job is bounded: ``service/transfers.py`` caps its objects), rewritten as it
progresses; only the process holding the job's outbox lease writes it, so no condition is needed.
"""

from __future__ import annotations

from typing import Any

from gateway.catalog.item_store import ItemStore


class TransferCatalog:
    def __init__(self, store: ItemStore) -> None:
        self.s = store

    async def get(self, job_id: str) -> dict[str, Any] | None:
        item = await self.s.get(f"TRANSFER#{job_id}", "JOB")
        return None if item is None else dict(item["job"])

    async def put(self, job: dict[str, Any]) -> None:
        await self.s.write([{"PK": f"TRANSFER#{job['id']}", "SK": "JOB", "kind": "transfer", "job": job}], [])
