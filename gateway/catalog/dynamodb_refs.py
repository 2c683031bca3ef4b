"""Shared-blob references in the DynamoDB table: one item per content-addressed blob.

    PK                  SK      what
    BLOBREF#<ref id>    REF     blob_key, members (a string set: one member per upload holding it)

Members rather than a counter make every change idempotent: a sweeper retrying a half-finished purge
removes a member that is already gone, and nothing is counted twice. ``leave`` deletes the item with its
last member in one conditional write, so exactly one caller learns the blob must go. An item holds up to
~10,000 members of identical content within one owner or tenant (DynamoDB's 400 KB item limit).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gateway.catalog.dynamodb import _from_wire, _to_wire
from gateway.ports import BlobRef

if TYPE_CHECKING:
    from gateway.catalog.dynamodb import DynamoCatalog

SK = "REF"


def ref_pk(ref_id: str) -> str:
    return f"BLOBREF#{ref_id}"


class DynamoBlobRefs:
    def __init__(self, catalog: DynamoCatalog) -> None:
        self.c = catalog

    def _key(self, ref_id: str) -> dict[str, Any]:
        return _to_wire({"PK": ref_pk(ref_id), "SK": SK})

    async def join(self, ref_id: str, member: str) -> BlobRef | None:
        resp = await self.c._conditional(
            Key=self._key(ref_id),
            UpdateExpression="ADD members :m",
            ConditionExpression="attribute_exists(PK)",
            ExpressionAttributeValues=_to_wire({":m": {member}}),
            ReturnValues="ALL_NEW",
        )
        if resp is None:
            return None
        item = _from_wire(resp["Attributes"])
        return BlobRef(ref_id, str(item["blob_key"]), len(item["members"]))

    async def create(self, ref_id: str, blob_key: str, member: str) -> bool:
        return await self.c._transact(
            [
                {
                    "Put": {
                        "TableName": self.c.table,
                        "Item": _to_wire(
                            {
                                "PK": ref_pk(ref_id),
                                "SK": SK,
                                "kind": "blob_ref",
                                "blob_key": blob_key,
                                "members": {member},
                            }
                        ),
                        "ConditionExpression": "attribute_not_exists(PK)",
                    }
                }
            ]
        )

    async def leave(self, ref_id: str, member: str) -> str | None:
        for _ in range(8):  # a join or leave racing ours changes the count: look again
            item = await self.c._get(ref_pk(ref_id), SK)
            if item is None or member not in item["members"]:
                return None  # already left (a retried purge)
            if len(item["members"]) > 1:
                done = await self.c._conditional(
                    Key=self._key(ref_id),
                    UpdateExpression="DELETE members :m",
                    ConditionExpression="contains(members, :one) AND size(members) > :n",
                    ExpressionAttributeValues=_to_wire({":m": {member}, ":one": member, ":n": 1}),
                )
                if done is not None:
                    return None
                continue
            gone = await self.c._transact(
                [
                    {
                        "Delete": {
                            "TableName": self.c.table,
                            "Key": self._key(ref_id),
                            "ConditionExpression": "contains(members, :one) AND size(members) = :n",
                            "ExpressionAttributeValues": _to_wire({":one": member, ":n": 1}),
                        }
                    }
                ]
            )
            if gone:
                return str(item["blob_key"])
        return None  # contended beyond reason: the blob stays (a leak, never a loss)
