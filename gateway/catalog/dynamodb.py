"""DynamoDB catalog: the production single table (see gateway/catalog/items.py for the item design).

Every read that decides access is strongly consistent, and every rule about a token's life is a
ConditionExpression evaluated by DynamoDB itself, so limits hold across any number of gateway
processes. ``expires_at`` doubles as the table's TTL attribute; TTL deletes lazily (up to ~48 h late),
which is why expiry is also part of every condition rather than trusted to TTL.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from contextlib import AsyncExitStack
from decimal import Decimal
from typing import Any

import aioboto3
from aiobotocore.config import AioConfig
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import BotoCoreError, ClientError

from gateway.catalog import items as it
from gateway.errors import CatalogError
from gateway.records import Asset, NewAsset, Token, Version

TTL_ATTRIBUTE = "expires_at"
MAX_TRANSACTION_ITEMS = 100

_ser = TypeSerializer()
_deser = TypeDeserializer()


def _to_wire(item: it.Item) -> dict[str, Any]:
    return {k: _ser.serialize(_num_in(v)) for k, v in item.items()}


def _from_wire(raw: dict[str, Any]) -> it.Item:
    return {k: _num_out(_deser.deserialize(v)) for k, v in raw.items()}


def _num_in(v: Any) -> Any:
    if isinstance(v, float):
        return Decimal(repr(v))
    if isinstance(v, list):
        return [_num_in(x) for x in v]
    return v


def _num_out(v: Any) -> Any:
    if isinstance(v, Decimal):
        return int(v) if v == v.to_integral_value() else float(v)
    if isinstance(v, list):
        return [_num_out(x) for x in v]
    return v


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


class DynamoCatalog:
    def __init__(self, *, table: str, region: str | None = None, endpoint_url: str | None = None) -> None:
        if not table:
            raise ValueError("DynamoDB catalog URL needs a table: dynamodb://table")
        self.table = table
        self.region = region
        self.endpoint_url = endpoint_url
        self._stack = AsyncExitStack()
        self._client: Any = None

    async def start(self) -> None:
        session = aioboto3.Session()
        config = AioConfig(
            retries={"max_attempts": 4, "mode": "standard"},
            connect_timeout=5,
            read_timeout=20,
            max_pool_connections=50,
        )
        self._client = await self._stack.enter_async_context(
            session.client("dynamodb", region_name=self.region, endpoint_url=self.endpoint_url, config=config)
        )

    async def close(self) -> None:
        await self._stack.aclose()
        self._client = None

    @property
    def client(self) -> Any:
        if self._client is None:
            raise RuntimeError("DynamoCatalog used before start()")
        return self._client

    async def _call(self, op: str, **kwargs: Any) -> Any:
        try:
            return await getattr(self.client, op)(**kwargs)
        except ClientError as exc:
            raise CatalogError(f"catalog {op} failed: {_code(exc) or 'error'}") from exc
        except BotoCoreError as exc:
            raise CatalogError(f"catalog {op} failed: {type(exc).__name__}") from exc

    # -- schema --------------------------------------------------------------------------------------
    async def init(self) -> None:
        try:
            await self.client.create_table(
                TableName=self.table,
                AttributeDefinitions=[
                    {"AttributeName": "PK", "AttributeType": "S"},
                    {"AttributeName": "SK", "AttributeType": "S"},
                ],
                KeySchema=[
                    {"AttributeName": "PK", "KeyType": "HASH"},
                    {"AttributeName": "SK", "KeyType": "RANGE"},
                ],
                BillingMode="PAY_PER_REQUEST",
            )
        except ClientError as exc:
            if _code(exc) != "ResourceInUseException":
                raise CatalogError(f"cannot create table: {_code(exc)}") from exc
        for _ in range(120):
            desc = await self._call("describe_table", TableName=self.table)
            if desc["Table"]["TableStatus"] == "ACTIVE":
                break
            await asyncio.sleep(0.5)
        ttl = await self._call("describe_time_to_live", TableName=self.table)
        if ttl.get("TimeToLiveDescription", {}).get("TimeToLiveStatus") not in ("ENABLED", "ENABLING"):
            try:
                await self.client.update_time_to_live(
                    TableName=self.table,
                    TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE},
                )
            except ClientError as exc:
                if "already enabled" not in str(exc).lower():
                    raise CatalogError(f"cannot enable TTL: {_code(exc)}") from exc

    async def ping(self) -> None:
        await self._call("describe_table", TableName=self.table)

    # -- helpers -------------------------------------------------------------------------------------
    async def _get(self, pk: str, sk: str) -> it.Item | None:
        resp = await self._call(
            "get_item", TableName=self.table, Key=_to_wire({"PK": pk, "SK": sk}), ConsistentRead=True
        )
        raw = resp.get("Item")
        return None if raw is None else _from_wire(raw)

    async def _put_all_new(self, rows: Sequence[it.Item]) -> None:
        if len(rows) > MAX_TRANSACTION_ITEMS:
            raise CatalogError(f"one change may touch at most {MAX_TRANSACTION_ITEMS} items")
        await self._call(
            "transact_write_items",
            TransactItems=[
                {
                    "Put": {
                        "TableName": self.table,
                        "Item": _to_wire(row),
                        "ConditionExpression": "attribute_not_exists(PK)",
                    }
                }
                for row in rows
            ],
        )

    # -- port ----------------------------------------------------------------------------------------
    async def create_assets(self, items: Sequence[NewAsset]) -> None:
        rows: list[it.Item] = []
        for new in items:
            rows += [it.asset_item(new.asset), it.owner_item(new.asset), it.version_item(new.version)]
            for token in new.tokens:
                rows += it.token_items(token)
        await self._put_all_new(rows)

    async def get_asset(self, asset_id: str) -> Asset | None:
        item = await self._get(it.asset_pk(asset_id), it.META)
        return None if item is None else it.asset_from(item)

    async def get_version(self, asset_id: str, version: int) -> Version | None:
        item = await self._get(it.asset_pk(asset_id), it.version_sk(version))
        return None if item is None else it.version_from(item)

    async def put_token(self, token: Token) -> None:
        await self._put_all_new(it.token_items(token))

    async def get_token(self, token_hash: str) -> Token | None:
        item = await self._get(it.token_pk(token_hash), it.TOKEN_SK)
        return None if item is None else it.token_from(item)

    async def claim_download(self, token_hash: str, now: float) -> Token | None:
        try:
            resp = await self.client.update_item(
                TableName=self.table,
                Key=_to_wire({"PK": it.token_pk(token_hash), "SK": it.TOKEN_SK}),
                UpdateExpression="SET downloads = downloads + :one",
                ConditionExpression=(
                    "attribute_exists(PK) AND revoked = :false AND expires_at > :now "
                    "AND (attribute_not_exists(max_downloads) OR downloads < max_downloads)"
                ),
                ExpressionAttributeValues=_to_wire({":one": 1, ":false": False, ":now": int(now)}),
                ReturnValues="ALL_NEW",
            )
        except ClientError as exc:
            if _code(exc) == "ConditionalCheckFailedException":
                return None
            raise CatalogError(f"catalog update_item failed: {_code(exc)}") from exc
        except BotoCoreError as exc:
            raise CatalogError(f"catalog update_item failed: {type(exc).__name__}") from exc
        return it.token_from(_from_wire(resp["Attributes"]))
