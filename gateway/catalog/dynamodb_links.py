"""Upload links in the DynamoDB table (items in catalog/link_items.py), sharing the catalog's client.
The claim is one UpdateItem whose ConditionExpression is the whole rule: live, not revoked, not used up."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gateway.catalog import link_items as li
from gateway.catalog.dynamodb import _from_wire, _to_wire
from gateway.records import UploadLink

if TYPE_CHECKING:
    from gateway.catalog.dynamodb import DynamoCatalog


class DynamoUploadLinks:
    def __init__(self, catalog: DynamoCatalog) -> None:
        self.c = catalog

    def _key(self, token_hash: str) -> dict[str, Any]:
        return _to_wire({"PK": li.link_pk(token_hash), "SK": li.LINK_SK})

    async def create_link(self, link: UploadLink) -> None:
        await self.c._put_all_new([li.link_item(link), li.pointer_item(link)])

    async def get_link(self, token_hash: str) -> UploadLink | None:
        item = await self.c._get(li.link_pk(token_hash), li.LINK_SK)
        return None if item is None else li.link_from(item)

    async def claim_upload(self, token_hash: str, now: float) -> UploadLink | None:
        resp = await self.c._conditional(
            Key=self._key(token_hash),
            UpdateExpression="SET uploads = uploads + :one",
            ConditionExpression=(
                "attribute_exists(PK) AND revoked = :no AND expires_at > :now "
                "AND (attribute_not_exists(max_uploads) OR uploads < max_uploads)"
            ),
            ExpressionAttributeValues=_to_wire({":one": 1, ":no": False, ":now": now}),
            ReturnValues="ALL_NEW",
        )
        if resp is None:
            return None
        return li.link_from(_from_wire(resp["Attributes"]))

    async def release_upload(self, token_hash: str) -> None:
        await self.c._conditional(
            Key=self._key(token_hash),
            UpdateExpression="SET uploads = uploads - :one",
            ConditionExpression="attribute_exists(PK) AND uploads > :zero",
            ExpressionAttributeValues=_to_wire({":one": 1, ":zero": 0}),
        )

    async def list_links(self, owner: str) -> list[UploadLink]:
        pointers = await self.c._query(li.owner_links_pk(owner), "ULINK#")
        found = await self.c._get_many([(li.link_pk(p["token_hash"]), li.LINK_SK) for p in pointers])
        return sorted((li.link_from(i) for i in found), key=lambda link: link.created)

    async def find_link_hash(self, owner: str, link_id: str) -> str | None:
        pointer = await self.c._get(li.owner_links_pk(owner), li.pointer_sk(link_id))
        return None if pointer is None else str(pointer["token_hash"])

    async def revoke_link(self, token_hash: str) -> bool:
        resp = await self.c._conditional(
            Key=self._key(token_hash),
            UpdateExpression="SET revoked = :yes",
            ConditionExpression="attribute_exists(PK) AND revoked = :no",
            ExpressionAttributeValues=_to_wire({":yes": True, ":no": False}),
        )
        return resp is not None
