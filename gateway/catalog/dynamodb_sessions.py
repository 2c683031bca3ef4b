"""Resumable upload sessions in the DynamoDB table (items in catalog/session_items.py).

Shares the catalog's client (created by :meth:`DynamoCatalog.upload_sessions`). Every state change is a
PutItem conditioned on the stored ``rev``: the lease a PATCH takes, each checkpoint of its progress and
the completion are all the same compare-and-swap, so two processes can never both advance one upload.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from gateway.catalog import session_items as si
from gateway.catalog.dynamodb import _code, _from_wire, _to_wire
from gateway.errors import CatalogError
from gateway.records import UploadSession

if TYPE_CHECKING:
    from gateway.catalog.dynamodb import DynamoCatalog


class DynamoUploadSessions:
    def __init__(self, catalog: DynamoCatalog) -> None:
        self.c = catalog

    def _put(self, item: si.Item, condition: str, values: dict[str, Any] | None = None) -> dict[str, Any]:
        put: dict[str, Any] = {
            "TableName": self.c.table,
            "Item": _to_wire(item),
            "ConditionExpression": condition,
        }
        if values:
            put["ExpressionAttributeValues"] = _to_wire(values)
        return put

    async def create_upload(self, session: UploadSession) -> None:
        ok = await self.c._transact(
            [
                {"Put": self._put(si.session_item(session), "attribute_not_exists(PK)")},
                {"Put": self._put(si.due_item(session), "attribute_not_exists(PK)")},
            ]
        )
        if not ok:
            raise CatalogError("upload id collision", code="catalog_conflict")

    async def get_upload(self, upload_id: str) -> UploadSession | None:
        item = await self.c._get(si.upload_pk(upload_id), si.STATE_SK)
        return None if item is None else si.session_from(item)

    async def swap_upload(self, session: UploadSession) -> UploadSession | None:
        new = dataclasses.replace(session, rev=session.rev + 1)
        put = self._put(si.session_item(new), "rev = :rev", {":rev": session.rev})
        try:
            await self.c.client.put_item(**put)
        except ClientError as exc:
            if _code(exc) == "ConditionalCheckFailedException":
                return None
            raise CatalogError(f"catalog put_item failed: {_code(exc)}") from exc
        except BotoCoreError as exc:
            raise CatalogError(f"catalog put_item failed: {type(exc).__name__}") from exc
        return new

    async def delete_upload(self, session: UploadSession) -> None:
        await self.c._transact(
            [
                {"Delete": {"TableName": self.c.table, "Key": _to_wire({"PK": pk, "SK": sk})}}
                for pk, sk in ((si.upload_pk(session.id), si.STATE_SK), (si.DUE_PK, si.due_sk(session)))
            ]
        )

    async def due_uploads(self, now: float, limit: int) -> list[UploadSession]:
        resp = await self.c._call(
            "query",
            TableName=self.c.table,
            KeyConditionExpression="PK = :pk AND SK <= :max",
            ExpressionAttributeValues=_to_wire({":pk": si.DUE_PK, ":max": si.due_upper_bound(now)}),
            Limit=limit,
            ConsistentRead=True,
        )
        out: list[UploadSession] = []
        for entry in (_from_wire(i) for i in resp.get("Items", [])):
            item = await self.c._get(si.upload_pk(si.due_id(entry)), si.STATE_SK)
            if item is None:  # the session went without its entry
                await self.c._call(
                    "delete_item", TableName=self.c.table, Key=_to_wire({"PK": si.DUE_PK, "SK": entry["SK"]})
                )
            else:
                out.append(si.session_from(item))
        return out
