"""DynamoDB catalog: the production single table (see gateway/catalog/items.py for the item design).

Every read that decides access is strongly consistent, and every rule about a token's life is a
ConditionExpression evaluated by DynamoDB itself, so limits hold across any number of gateway
processes. ``expires_at`` doubles as the table's TTL attribute; TTL deletes lazily (up to ~48 h late),
which is why expiry is also part of every condition rather than trusted to TTL.

Why one module over 350 lines: it is the whole translation of the three catalog ports into one engine's
calls, and every method shares the same wire codec, error mapping and transaction helper; split by port,
each piece would re-import the same private helpers and the engine's rules would live in three places.
What both adapters share is already in catalog/items.py.
"""

from __future__ import annotations

import asyncio
import secrets
import uuid
from collections.abc import Sequence
from contextlib import AsyncExitStack
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import aioboto3
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import BotoCoreError, ClientError

from gateway.awsconfig import DEFAULT_POLICY, CallPolicy
from gateway.catalog import items as it
from gateway.catalog import outbox_items as ob
from gateway.catalog import transactions as tx
from gateway.errors import CatalogError
from gateway.ports import BlobRefs, CatalogLimits, Outbox, QuotaLedger, UploadLinks, UploadSessions
from gateway.records import Asset, DownloadRecord, DueAsset, Event, NewAsset, Retrieval, Token, Version

TTL_ATTRIBUTE = "expires_at"
BATCH_WRITE_ROUNDS = 8  # BatchWriteItem rounds for items DynamoDB leaves unprocessed (backoff up to 2 s)

if TYPE_CHECKING:
    from gateway.catalog.thumbnail_catalog import ThumbnailCatalog
    from gateway.catalog.transfer_catalog import TransferCatalog

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
    if isinstance(v, dict):
        return {k: _num_in(x) for k, x in v.items()}
    return v


def _num_out(v: Any) -> Any:
    if isinstance(v, Decimal):
        return int(v) if v == v.to_integral_value() else float(v)
    if isinstance(v, list):
        return [_num_out(x) for x in v]
    if isinstance(v, dict):
        return {k: _num_out(x) for k, x in v.items()}
    return v


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


class DynamoCatalog:
    limits = CatalogLimits(max_transaction_items=100)  # TransactWriteItems' own limit

    def __init__(
        self,
        *,
        table: str,
        region: str | None = None,
        endpoint_url: str | None = None,
        policy: CallPolicy = DEFAULT_POLICY,
    ) -> None:
        if not table:
            raise ValueError("DynamoDB catalog URL needs a table: dynamodb://table")
        self.table = table
        self.policy = policy
        self.region = region
        self.endpoint_url = endpoint_url
        self._stack = AsyncExitStack()
        self._client: Any = None

    async def start(self) -> None:
        session = aioboto3.Session()
        config = self.policy.config(max_pool_connections=50)
        self._client = await self._stack.enter_async_context(
            session.client("dynamodb", region_name=self.region, endpoint_url=self.endpoint_url, config=config)
        )

    async def close(self) -> None:
        await self._stack.aclose()
        self._client = None

    def upload_links(self) -> UploadLinks:
        from gateway.catalog.dynamodb_links import DynamoUploadLinks

        return DynamoUploadLinks(self)

    def quota_ledger(self) -> QuotaLedger:
        from gateway.catalog.dynamodb_quotas import DynamoQuotaLedger

        return DynamoQuotaLedger(self)

    def blob_refs(self) -> BlobRefs:
        from gateway.catalog.dynamodb_refs import DynamoBlobRefs

        return DynamoBlobRefs(self)

    def upload_sessions(self) -> UploadSessions:
        from gateway.catalog.dynamodb_sessions import DynamoUploadSessions

        return DynamoUploadSessions(self)

    def thumbnails(self) -> ThumbnailCatalog:
        from gateway.catalog.dynamodb_items import DynamoItems
        from gateway.catalog.thumbnail_catalog import ThumbnailCatalog

        return ThumbnailCatalog(DynamoItems(self))

    def transfers(self) -> TransferCatalog:
        from gateway.catalog.dynamodb_items import DynamoItems
        from gateway.catalog.transfer_catalog import TransferCatalog

        return TransferCatalog(DynamoItems(self))

    def outbox(self) -> Outbox:
        from gateway.catalog.dynamodb_items import DynamoItems
        from gateway.catalog.outbox import OutboxCatalog

        return OutboxCatalog(DynamoItems(self))

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

    async def _query(self, pk: str, sk_prefix: str = "", sk_max: str | None = None) -> list[it.Item]:
        if sk_max is not None:
            cond, values = "PK = :pk AND SK <= :max", {":pk": pk, ":max": sk_max}
        elif sk_prefix:
            cond, values = "PK = :pk AND begins_with(SK, :pre)", {":pk": pk, ":pre": sk_prefix}
        else:
            cond, values = "PK = :pk", {":pk": pk}
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": cond,
            "ExpressionAttributeValues": _to_wire(values),
            "ConsistentRead": True,
        }
        out: list[it.Item] = []
        while True:
            resp = await self._call("query", **kwargs)
            out += [_from_wire(i) for i in resp.get("Items", [])]
            if "LastEvaluatedKey" not in resp:
                return out
            kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]

    async def _put_all_new(self, rows: Sequence[it.Item], cursor_day: int | None = None) -> None:
        actions: list[dict[str, Any]] = [
            {
                "Put": {
                    "TableName": self.table,
                    "Item": _to_wire(row),
                    "ConditionExpression": "attribute_not_exists(PK)",
                }
            }
            for row in rows
        ]
        if cursor_day is not None:
            actions.append(self._cursor_action(cursor_day))
        tx.check_transaction(len(actions), self.limits.max_transaction_items)
        # An idempotency token: botocore retries a call whose answer was lost with the same token, and
        # DynamoDB then reports the first outcome instead of failing our own attribute_not_exists.
        await self._call("transact_write_items", TransactItems=actions, ClientRequestToken=str(uuid.uuid4()))

    async def _conditional(self, **kwargs: Any) -> dict[str, Any] | None:
        """update_item whose ConditionalCheckFailed is an answer (None), not an error."""
        try:
            resp: dict[str, Any] = await self.client.update_item(TableName=self.table, **kwargs)
            return resp
        except ClientError as exc:
            if _code(exc) == "ConditionalCheckFailedException":
                return None
            raise CatalogError(f"catalog update_item failed: {_code(exc)}") from exc
        except BotoCoreError as exc:
            raise CatalogError(f"catalog update_item failed: {type(exc).__name__}") from exc

    # -- port ----------------------------------------------------------------------------------------
    async def create_assets(self, items: Sequence[NewAsset], events: Sequence[Event] = ()) -> None:
        rows: list[it.Item] = ob.event_items(list(events))
        for new in items:
            rows += it.new_asset_rows(new.asset, new.version, new.tokens)
        days = [it.expiry_day(n.asset.expires_at) for n in items if n.asset.expires_at is not None]
        await self._put_all_new(rows, cursor_day=min(days) if days else None)

    async def get_asset(self, asset_id: str) -> Asset | None:
        item = await self._get(it.asset_pk(asset_id), it.META)
        return None if item is None else it.asset_from(item)

    async def get_version(self, asset_id: str, version: int) -> Version | None:
        item = await self._get(it.asset_pk(asset_id), it.version_sk(version))
        return None if item is None else it.version_from(item)

    async def _get_many(self, keys: Sequence[tuple[str, str]]) -> list[it.Item]:
        out: list[it.Item] = []
        for start in range(0, len(keys), 100):
            wire = [_to_wire({"PK": pk, "SK": sk}) for pk, sk in keys[start : start + 100]]
            request: dict[str, Any] = {self.table: {"Keys": wire, "ConsistentRead": True}}
            while request:
                resp = await self._call("batch_get_item", RequestItems=request)
                out += [_from_wire(i) for i in resp["Responses"].get(self.table, [])]
                request = resp.get("UnprocessedKeys") or {}
        return out

    async def get_assets(self, asset_ids: Sequence[str]) -> dict[str, Asset]:
        items = await self._get_many([(it.asset_pk(a), it.META) for a in dict.fromkeys(asset_ids)])
        return {i["asset_id"]: it.asset_from(i) for i in items}

    async def get_versions(self, keys: Sequence[tuple[str, int]]) -> dict[tuple[str, int], Version]:
        items = await self._get_many([(it.asset_pk(a), it.version_sk(v)) for a, v in dict.fromkeys(keys)])
        return {(v.asset_id, v.version): v for v in map(it.version_from, items)}

    async def put_token(self, token: Token, events: Sequence[Event] = ()) -> None:
        await tx.put_token_in_parts(
            token,
            self.limits.max_transaction_items,
            self._put_all_new,
            self._delete_keys,
            ob.event_items(list(events)),
        )

    def _event_puts(self, events: Sequence[Event]) -> list[dict[str, Any]]:
        """The Put actions of a change's events, for the transaction making the change."""
        return [{"Put": {"TableName": self.table, "Item": _to_wire(i)}} for i in ob.event_items(list(events))]

    async def get_token(self, token_hash: str) -> Token | None:
        item = await self._get(it.token_pk(token_hash), it.TOKEN_SK)
        return None if item is None else it.token_from(item)

    async def claim_download(self, token_hash: str, now: float) -> Token | None:
        update = self._claim_update(token_hash, now)
        del update["TableName"]
        resp = await self._conditional(**update, ReturnValues="ALL_NEW")
        return None if resp is None else it.token_from(_from_wire(resp["Attributes"]))

    async def release_download(self, token_hash: str) -> None:
        await self._conditional(
            Key=_to_wire({"PK": it.token_pk(token_hash), "SK": it.TOKEN_SK}),
            UpdateExpression="SET downloads = downloads - :one",
            ConditionExpression="attribute_exists(PK) AND downloads > :zero",
            ExpressionAttributeValues=_to_wire({":one": 1, ":zero": 0}),
        )

    def _claim_update(self, token_hash: str, now: float) -> dict[str, Any]:
        return {
            "TableName": self.table,
            "Key": _to_wire({"PK": it.token_pk(token_hash), "SK": it.TOKEN_SK}),
            "UpdateExpression": "SET downloads = downloads + :one",
            "ConditionExpression": (
                "attribute_exists(PK) AND revoked = :false AND expires_at > :now "
                "AND (attribute_not_exists(max_downloads) OR downloads < max_downloads)"
            ),
            "ExpressionAttributeValues": _to_wire({":one": 1, ":false": False, ":now": int(now)}),
        }

    async def open_retrieval(self, retrieval: Retrieval, now: float) -> bool:
        return await self._transact(
            [
                {"Update": self._claim_update(retrieval.token_hash, now)},
                {"Put": {"TableName": self.table, "Item": _to_wire(it.retrieval_item(retrieval))}},
            ]
        )

    async def charge_retrieval(
        self, token_hash: str, client: str, amount: int, limit: int, now: float, expires_at: int
    ) -> bool:
        pk = it.token_pk(token_hash)
        return await self._transact(
            [
                {
                    "ConditionCheck": {
                        "TableName": self.table,
                        "Key": _to_wire({"PK": pk, "SK": it.TOKEN_SK}),
                        "ConditionExpression": "revoked = :false AND expires_at > :now",
                        "ExpressionAttributeValues": _to_wire({":false": False, ":now": int(now)}),
                    }
                },
                {
                    "Update": {
                        "TableName": self.table,
                        "Key": _to_wire({"PK": pk, "SK": it.retrieval_sk(client)}),
                        "UpdateExpression": "SET charged = charged + :amount, expires_at = :until",
                        "ConditionExpression": (
                            "attribute_exists(PK) AND expires_at > :now AND charged <= :room"
                        ),
                        "ExpressionAttributeValues": _to_wire(
                            {
                                ":amount": amount,
                                ":until": expires_at,
                                ":now": int(now),
                                ":room": limit - amount,
                            }
                        ),
                    }
                },
            ]
        )

    async def refund_retrieval(self, token_hash: str, client: str, amount: int) -> None:
        await self._conditional(
            Key=_to_wire({"PK": it.token_pk(token_hash), "SK": it.retrieval_sk(client)}),
            UpdateExpression="SET charged = charged - :amount",
            ConditionExpression="attribute_exists(PK) AND charged >= :amount",
            ExpressionAttributeValues=_to_wire({":amount": amount}),
        )

    async def shared_secret(self, name: str) -> bytes:
        key = {"PK": it.CONFIG_PK, "SK": it.secret_sk(name)}
        try:
            await self.client.put_item(
                TableName=self.table,
                Item=_to_wire(key | {"kind": "secret", "value": secrets.token_hex(32)}),
                ConditionExpression="attribute_not_exists(PK)",
            )
        except ClientError as exc:
            if _code(exc) != "ConditionalCheckFailedException":
                raise CatalogError(f"catalog put_item failed: {_code(exc)}") from exc
        except BotoCoreError as exc:
            raise CatalogError(f"catalog put_item failed: {type(exc).__name__}") from exc
        item = await self._get(key["PK"], key["SK"])
        assert item is not None
        return bytes.fromhex(item["value"])

    async def record_downloads(self, records: Sequence[DownloadRecord]) -> None:
        items = [it.download_item(r, secrets.token_hex(4)) for r in records]
        await self._batch_write([{"PutRequest": {"Item": _to_wire(i)}} for i in items])

    async def list_downloads(self, token_hash: str, limit: int) -> list[DownloadRecord]:
        resp = await self._call(
            "query",
            TableName=self.table,
            KeyConditionExpression="PK = :pk AND begins_with(SK, :pre)",
            ExpressionAttributeValues=_to_wire(
                {":pk": it.token_pk(token_hash), ":pre": it.DOWNLOAD_SK_PREFIX}
            ),
            ScanIndexForward=False,
            Limit=limit,
            ConsistentRead=True,
        )
        return [it.download_from(_from_wire(i)) for i in resp.get("Items", [])]

    async def wrong_guesses(self, token_hash: str, minute: int) -> int:
        item = await self._get(it.token_pk(token_hash), it.guesses_sk(minute))
        return 0 if item is None else int(item["guesses"])

    async def add_wrong_guess(self, token_hash: str, minute: int, limit: int) -> bool:
        resp = await self._conditional(
            Key=_to_wire({"PK": it.token_pk(token_hash), "SK": it.guesses_sk(minute)}),
            UpdateExpression="SET guesses = if_not_exists(guesses, :zero) + :one, expires_at = :gone",
            ConditionExpression="attribute_not_exists(guesses) OR guesses < :limit",
            ExpressionAttributeValues=_to_wire(
                {":zero": 0, ":one": 1, ":limit": limit, ":gone": (minute + 2) * 60}
            ),
        )
        return resp is not None

    async def revoke_token(self, token_hash: str, events: Sequence[Event] = ()) -> bool:
        update = {
            "Key": _to_wire({"PK": it.token_pk(token_hash), "SK": it.TOKEN_SK}),
            "UpdateExpression": "SET revoked = :true",
            "ConditionExpression": "attribute_exists(PK) AND revoked = :false",
            "ExpressionAttributeValues": _to_wire({":true": True, ":false": False}),
        }
        if events:
            return await self._transact(
                [{"Update": {"TableName": self.table, **update}}, *self._event_puts(events)]
            )
        return await self._conditional(**update) is not None

    async def list_tokens(self, asset_id: str) -> list[Token]:
        pointers = await self._query(it.asset_pk(asset_id), "TOKEN#")
        items = await self._get_many([(it.token_pk(p["token_hash"]), it.TOKEN_SK) for p in pointers])
        return sorted(map(it.token_from, items), key=lambda t: t.created)

    async def find_token_hash(self, asset_id: str, token_id: str) -> str | None:
        item = await self._get(it.asset_pk(asset_id), f"TOKEN#{token_id}")
        return None if item is None else str(item["token_hash"])

    async def list_versions(self, asset_id: str) -> list[Version]:
        return [it.version_from(i) for i in await self._query(it.asset_pk(asset_id), "V#")]

    async def delete_asset(
        self, asset_id: str, *, due: DueAsset | None = None, events: Sequence[Event] = ()
    ) -> bool:
        owned = await self._query(it.asset_pk(asset_id))
        first, final = tx.delete_plan(owned, due, self.limits.max_transaction_items - len(events))
        if not any(i["SK"] == it.META for i in owned):
            await self._delete_keys(final)
            return False
        await self._delete_keys(first)
        actions: list[dict[str, Any]] = [
            {
                "Delete": {
                    "TableName": self.table,
                    "Key": _to_wire({"PK": it.asset_pk(asset_id), "SK": it.META}),
                    "ConditionExpression": "attribute_exists(PK)",
                }
            },
            *(
                {"Delete": {"TableName": self.table, "Key": _to_wire({"PK": pk, "SK": sk})}}
                for pk, sk in final
            ),
            *self._event_puts(events),
        ]
        return await self._transact(actions)  # False: another deleter won the race

    async def _delete_keys(self, keys: Sequence[tuple[str, str]]) -> None:
        await self._batch_write(
            [{"DeleteRequest": {"Key": _to_wire({"PK": pk, "SK": sk})}} for pk, sk in keys]
        )

    async def _batch_write(self, requests: Sequence[dict[str, Any]]) -> None:
        """BatchWriteItem, 25 at a time; what DynamoDB leaves unprocessed is sent again after a backoff,
        ``BATCH_WRITE_ROUNDS`` times at most (then a CatalogError rather than a loop without end)."""
        for start in range(0, len(requests), 25):
            pending: dict[str, Any] = {self.table: list(requests[start : start + 25])}
            delay = 0.05
            for _ in range(BATCH_WRITE_ROUNDS):
                resp = await self._call("batch_write_item", RequestItems=pending)
                pending = resp.get("UnprocessedItems") or {}
                if not pending:
                    break
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
            else:
                raise CatalogError("catalog batch write left items unprocessed (throttled)")

    async def _transact(self, actions: list[dict[str, Any]]) -> bool:
        """TransactWriteItems; False when a condition failed (someone else changed it first).

        Idempotent under botocore's retries (ClientRequestToken): a lost answer is not a lost race.
        """
        tx.check_transaction(len(actions), self.limits.max_transaction_items)
        try:
            await self.client.transact_write_items(
                TransactItems=actions, ClientRequestToken=str(uuid.uuid4())
            )
        except ClientError as exc:
            if _code(exc) == "TransactionCanceledException":
                return False
            raise CatalogError(f"catalog transaction failed: {_code(exc)}") from exc
        except BotoCoreError as exc:
            raise CatalogError(f"catalog transaction failed: {type(exc).__name__}") from exc
        return True

    def _cursor_action(self, day: int) -> dict[str, Any]:
        return {
            "Update": {
                "TableName": self.table,
                "Key": _to_wire({"PK": it.EXPIRY_CURSOR_PK, "SK": it.EXPIRY_CURSOR_SK}),
                "UpdateExpression": "SET #day = if_not_exists(#day, :day)",
                "ExpressionAttributeNames": {"#day": "day"},
                "ExpressionAttributeValues": _to_wire({":day": day}),
            }
        }

    async def set_crc32(self, asset_id: str, version: int, crc32: int, sha256: str | None = None) -> None:
        sha = {":sha": sha256} if sha256 else {}
        await self._conditional(
            Key=_to_wire({"PK": it.asset_pk(asset_id), "SK": it.version_sk(version)}),
            UpdateExpression="SET crc32 = :crc" + (", sha256 = :sha" if sha else ""),
            ConditionExpression="attribute_exists(PK)",
            ExpressionAttributeValues=_to_wire({":crc": crc32} | sha),
        )
        await self._conditional(  # and the asset's copy, if this is still its latest version
            Key=_to_wire({"PK": it.asset_pk(asset_id), "SK": it.META}),
            UpdateExpression="SET latest.crc32 = :crc" + (", latest.sha256 = :sha" if sha else ""),
            ConditionExpression="latest.#v = :v",
            ExpressionAttributeNames={"#v": "version"},
            ExpressionAttributeValues=_to_wire({":crc": crc32, ":v": version} | sha),
        )

    async def set_scan(self, asset_id: str, version: int, state: str, detail: str) -> bool:
        values = {":s": state, ":d": detail}
        found = await self._conditional(
            Key=_to_wire({"PK": it.asset_pk(asset_id), "SK": it.version_sk(version)}),
            UpdateExpression="SET #scan = :s, scan_detail = :d",  # SCAN is a reserved word
            ConditionExpression="attribute_exists(PK)",
            ExpressionAttributeNames={"#scan": "scan"},
            ExpressionAttributeValues=_to_wire(values),
        )
        if found is None:
            return False
        await self._conditional(  # and the asset's copy, if this is still its latest version
            Key=_to_wire({"PK": it.asset_pk(asset_id), "SK": it.META}),
            UpdateExpression="SET latest.#scan = :s, latest.scan_detail = :d",
            ConditionExpression="latest.#v = :v",
            ExpressionAttributeNames={"#v": "version", "#scan": "scan"},
            ExpressionAttributeValues=_to_wire(values | {":v": version}),
        )
        return True

    async def all_asset_ids(self) -> list[str]:
        out: list[str] = []
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "ProjectionExpression": "PK",
            "FilterExpression": "SK = :meta AND begins_with(PK, :asset)",
            "ExpressionAttributeValues": _to_wire({":meta": it.META, ":asset": "ASSET#"}),
        }
        while True:
            resp = await self._call("scan", **kwargs)
            out += [str(_from_wire(i)["PK"]).removeprefix("ASSET#") for i in resp.get("Items", [])]
            if "LastEvaluatedKey" not in resp:
                return out
            kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]

    async def add_version(self, asset: Asset, version: Version, events: Sequence[Event] = ()) -> bool:
        return await self._transact(
            [
                {
                    "Update": {
                        "TableName": self.table,
                        "Key": _to_wire({"PK": it.asset_pk(asset.id), "SK": it.META}),
                        "UpdateExpression": "SET latest_version = :new, latest = :latest",
                        "ConditionExpression": "latest_version = :old",
                        "ExpressionAttributeValues": _to_wire(
                            {
                                ":new": version.version,
                                ":old": asset.latest_version,
                                ":latest": it.version_fields(version),
                            }
                        ),
                    }
                },
                {
                    "Put": {
                        "TableName": self.table,
                        "Item": _to_wire(it.version_item(version)),
                        "ConditionExpression": "attribute_not_exists(PK)",
                    }
                },
                *self._event_puts(events),
            ]
        )

    async def expire_asset(self, asset_id: str, at: int) -> bool:
        entry = {"PK": "", "SK": "", "kind": "expiry", "asset_id": asset_id, "due": at}
        entry["PK"], entry["SK"] = it.expiry_key(asset_id, at)
        return await self._transact(
            [
                {
                    "Update": {
                        "TableName": self.table,
                        "Key": _to_wire({"PK": it.asset_pk(asset_id), "SK": it.META}),
                        "UpdateExpression": "SET asset_expires_at = :at",
                        "ConditionExpression": "attribute_exists(PK)",
                        "ExpressionAttributeValues": _to_wire({":at": at}),
                    }
                },
                {"Put": {"TableName": self.table, "Item": _to_wire(entry)}},
                self._cursor_action(it.expiry_day(at)),
            ]
        )

    async def list_owner_assets(
        self, owner: str, limit: int, before: str | None
    ) -> tuple[list[str], str | None]:
        pk = it.owner_pk(owner)
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "PK = :pk AND begins_with(SK, :pre)",
            "ExpressionAttributeValues": _to_wire({":pk": pk, ":pre": it.OWNER_SK_PREFIX}),
            "ScanIndexForward": False,  # newest first
            "Limit": limit + 1,  # one more tells whether there is a next page
            "ConsistentRead": True,
        }
        if before is not None:
            kwargs["ExclusiveStartKey"] = _to_wire({"PK": pk, "SK": before})
        items = [_from_wire(i) for i in (await self._call("query", **kwargs)).get("Items", [])]
        more = len(items) > limit
        items = items[:limit]
        return [i["asset_id"] for i in items], (items[-1]["SK"] if more and items else None)

    async def due_assets(self, now: float, limit: int) -> list[DueAsset]:
        cursor = await self._get(it.EXPIRY_CURSOR_PK, it.EXPIRY_CURSOR_SK)

        async def query_day(day: int) -> list[DueAsset]:
            items = await self._query(it.expiry_pk(day), sk_max=it.due_upper_bound(now))
            return [it.due_from(i) for i in items]

        async def advance(day: int) -> None:
            await self._conditional(
                Key=_to_wire({"PK": it.EXPIRY_CURSOR_PK, "SK": it.EXPIRY_CURSOR_SK}),
                UpdateExpression="SET #day = :next",
                ConditionExpression="#day = :day",
                ExpressionAttributeNames={"#day": "day"},
                ExpressionAttributeValues=_to_wire({":next": day + 1, ":day": day}),
            )

        start = None if cursor is None else int(cursor["day"])
        return await it.walk_due(start, now, limit, query_day, advance)
