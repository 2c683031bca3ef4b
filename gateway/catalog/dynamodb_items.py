"""The item primitives (``item_store.py``) on DynamoDB, for the outbox and thumbnails.

One write is one TransactWriteItems. DynamoDB refuses two actions on one item in a transaction, so the
lease condition rides on the action that already touches the claimed entry (its Delete or Put) and is a
separate ConditionCheck only when the entry itself is not written.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from gateway.catalog.dynamodb import _from_wire, _to_wire
from gateway.catalog.item_store import Held, Item, Key

if TYPE_CHECKING:
    from gateway.catalog.dynamodb import DynamoCatalog

_HELD = "lease_ms = :held"


class DynamoItems:
    def __init__(self, catalog: DynamoCatalog) -> None:
        self.c = catalog
        self.limit = catalog.limits.max_transaction_items

    async def query(self, pk: str, prefix: str = "") -> list[Item]:
        return await self.c._query(pk, prefix)

    async def query_upto(self, pk: str, upto: str, limit: int) -> list[Item]:
        resp = await self.c._call(
            "query",
            TableName=self.c.table,
            KeyConditionExpression="PK = :pk AND SK <= :upto",
            ExpressionAttributeValues=_to_wire({":pk": pk, ":upto": upto}),
            ConsistentRead=True,
            Limit=limit,
        )
        return [_from_wire(i) for i in resp.get("Items", [])]

    async def get(self, pk: str, sk: str) -> Item | None:
        return await self.c._get(pk, sk)

    async def write(self, puts: Sequence[Item], deletes: Sequence[Key], held: Held | None = None) -> bool:
        table = self.c.table
        cond: dict[str, Any] = {}
        if held is not None:
            cond = {
                "ConditionExpression": _HELD,
                "ExpressionAttributeValues": _to_wire({":held": held[2]}),
            }
        held_key = None if held is None else (held[0], held[1])
        actions: list[dict[str, Any]] = []
        for item in puts:
            extra = cond if (item["PK"], item["SK"]) == held_key else {}
            actions.append({"Put": {"TableName": table, "Item": _to_wire(item), **extra}})
        for pk, sk in deletes:
            extra = cond if (pk, sk) == held_key else {}
            actions.append({"Delete": {"TableName": table, "Key": _to_wire({"PK": pk, "SK": sk}), **extra}})
        if held is not None and held_key not in {(i["PK"], i["SK"]) for i in puts} | set(deletes):
            key = _to_wire({"PK": held[0], "SK": held[1]})
            actions.append({"ConditionCheck": {"TableName": table, "Key": key, **cond}})
        return await self.c._transact(actions)

    async def swap_lease(self, pk: str, sk: str, seen: int, new: int) -> bool:
        resp = await self.c._conditional(
            Key=_to_wire({"PK": pk, "SK": sk}),
            UpdateExpression="SET lease_ms = :new",
            ConditionExpression="attribute_exists(PK) AND lease_ms = :seen",
            ExpressionAttributeValues=_to_wire({":new": new, ":seen": seen}),
        )
        return resp is not None
