"""Quota usage and holds in the DynamoDB table (items in catalog/quota_items.py).

Every change is one TransactWriteItems: the usage counter's ``ADD`` (conditional when it grows: the
limit minus the growth is a constant the condition compares with, DynamoDB conditions cannot add), the
hold item and its due-index entry. Two processes racing for the last bytes of a quota cannot both win.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from gateway.catalog import quota_items as qi
from gateway.catalog.dynamodb import _to_wire
from gateway.ports import Hold, Usage

if TYPE_CHECKING:
    from gateway.catalog.dynamodb import DynamoCatalog

_NAMES = {"#b": "bytes", "#a": "assets"}


class DynamoQuotaLedger:
    def __init__(self, catalog: DynamoCatalog) -> None:
        self.c = catalog

    def _usage_update(
        self, scope: str, d_bytes: int, d_assets: int, max_bytes: int | None, max_assets: int | None
    ) -> dict[str, Any]:
        values: dict[str, Any] = {":b": d_bytes, ":a": d_assets}
        conds = []
        if max_bytes is not None and d_bytes > 0:
            conds.append("(attribute_not_exists(#b) OR #b <= :maxb)")
            values[":maxb"] = max_bytes - d_bytes
        if max_assets is not None and d_assets > 0:
            conds.append("(attribute_not_exists(#a) OR #a <= :maxa)")
            values[":maxa"] = max_assets - d_assets
        update: dict[str, Any] = {
            "TableName": self.c.table,
            "Key": _to_wire({"PK": qi.usage_pk(scope), "SK": qi.USAGE_SK}),
            "UpdateExpression": "ADD #b :b, #a :a",
            "ExpressionAttributeNames": dict(_NAMES),
            "ExpressionAttributeValues": _to_wire(values),
        }
        if conds:
            update["ConditionExpression"] = " AND ".join(conds)
        return {"Update": update}

    def _hold_key(self, hold: Hold) -> dict[str, Any]:
        return _to_wire({"PK": qi.usage_pk(hold.scope), "SK": qi.hold_sk(hold.hold_id)})

    def _drop(self, hold: Hold) -> list[dict[str, Any]]:
        return [
            {
                "Delete": {
                    "TableName": self.c.table,
                    "Key": self._hold_key(hold),
                    # the caller's copy is the stored one (not a stale one from before a grow)
                    "ConditionExpression": "attribute_exists(PK) AND #b = :b",
                    "ExpressionAttributeNames": {"#b": "bytes"},
                    "ExpressionAttributeValues": _to_wire({":b": hold.bytes}),
                }
            },
            {
                "Delete": {
                    "TableName": self.c.table,
                    "Key": _to_wire({"PK": qi.DUE_PK, "SK": qi.due_sk(hold)}),
                }
            },
        ]

    async def usage(self, scope: str) -> Usage:
        return qi.usage_from(await self.c._get(qi.usage_pk(scope), qi.USAGE_SK))

    async def hold(self, hold: Hold, max_bytes: int | None, max_assets: int | None) -> bool:
        if (max_bytes is not None and hold.bytes > max_bytes) or (
            max_assets is not None and hold.assets > max_assets
        ):
            return False
        puts = [
            {
                "Put": {
                    "TableName": self.c.table,
                    "Item": _to_wire(row),
                    "ConditionExpression": "attribute_not_exists(PK)",
                }
            }
            for row in (qi.hold_item(hold), qi.due_item(hold))
        ]
        update = self._usage_update(hold.scope, hold.bytes, hold.assets, max_bytes, max_assets)
        return await self.c._transact([update, *puts])

    async def grow(self, hold: Hold, to_bytes: int, max_bytes: int | None) -> bool:
        if max_bytes is not None and to_bytes > max_bytes:
            return False
        return await self.c._transact(
            [
                self._usage_update(hold.scope, to_bytes - hold.bytes, 0, max_bytes, None),
                {
                    "Update": {
                        "TableName": self.c.table,
                        "Key": self._hold_key(hold),
                        "UpdateExpression": "SET #b = :to",
                        "ConditionExpression": "attribute_exists(PK)",
                        "ExpressionAttributeNames": {"#b": "bytes"},
                        "ExpressionAttributeValues": _to_wire({":to": to_bytes}),
                    }
                },
            ]
        )

    async def settle(self, hold: Hold, actual_bytes: int) -> bool:
        delta = actual_bytes - hold.bytes
        return await self.c._transact(
            [*self._drop(hold), self._usage_update(hold.scope, delta, 0, None, None)]
        )

    async def release(self, hold: Hold) -> bool:
        done = await self.c._transact(
            [*self._drop(hold), self._usage_update(hold.scope, -hold.bytes, -hold.assets, None, None)]
        )
        if done:
            await self._forget_if_empty(hold.scope)
        return done

    async def charge(self, scope: str, bytes_: int, assets: int) -> None:
        update = self._usage_update(scope, bytes_, assets, None, None)["Update"]
        update.pop("TableName")
        await self.c._call("update_item", TableName=self.c.table, **update)
        if bytes_ < 0 or assets < 0:
            await self._forget_if_empty(scope)

    async def _forget_if_empty(self, scope: str) -> None:
        """A scope back at zero leaves no item (a deleted asset leaves nothing behind). Conditional, so
        an upload counted meanwhile keeps its item; its ADD would recreate it anyway."""
        with contextlib.suppress(ClientError):
            await self.c.client.delete_item(
                TableName=self.c.table,
                Key=_to_wire({"PK": qi.usage_pk(scope), "SK": qi.USAGE_SK}),
                ConditionExpression="#b = :zero AND #a = :zero",
                ExpressionAttributeNames=dict(_NAMES),
                ExpressionAttributeValues=_to_wire({":zero": 0}),
            )

    async def due_holds(self, now: float, limit: int) -> list[Hold]:
        pointers = (await self.c._query(qi.DUE_PK, sk_max=qi.due_upper(now)))[:limit]
        keys = [(qi.usage_pk(p["scope"]), qi.hold_sk(p["hold_id"])) for p in pointers]
        scopes = {qi.hold_sk(p["hold_id"]): p["scope"] for p in pointers}
        found = await self.c._get_many(keys)
        holds = [qi.hold_from(i, scopes[i["SK"]]) for i in found]
        gone = {p["hold_id"] for p in pointers} - {h.hold_id for h in holds}
        if gone:  # an index entry whose hold was dropped without it (cannot happen in one transaction)
            await self.c._delete_keys([(qi.DUE_PK, p["SK"]) for p in pointers if p["hold_id"] in gone])
        return sorted(holds, key=lambda h: h.expires)
