"""Catalog items of quotas (both engines store exactly these; service/quotas.py explains the rules).

    PK                      SK                          what
    USAGE#<scope>           USAGE                       bytes, assets: committed + held
    USAGE#<scope>           HOLD#<hold id>              one open hold: bytes, assets, expires, asset, key
    HOLD#DUE                <expires:012d>#<hold id>    index of holds by expiry, for the sweeper

The due index is one partition: every upload under a quota writes it twice (hold, settle). That is
DynamoDB's 1,000 writes/s per partition, far above what a deployment's uploads reach; if it ever is
not, the partition can be split by hour like the asset expiry index.
"""

from __future__ import annotations

from gateway.catalog.items import Item
from gateway.ports import Hold, Usage

USAGE_SK = "USAGE"
DUE_PK = "HOLD#DUE"


def usage_pk(scope: str) -> str:
    return f"USAGE#{scope}"


def hold_sk(hold_id: str) -> str:
    return f"HOLD#{hold_id}"


def due_sk(hold: Hold) -> str:
    return f"{hold.expires:012d}#{hold.hold_id}"


def due_upper(now: float) -> str:
    return f"{int(now):012d}#\uffff"


def usage_from(item: Item | None) -> Usage:
    if item is None:
        return Usage()
    return Usage(bytes=int(item.get("bytes", 0)), assets=int(item.get("assets", 0)))


def hold_item(h: Hold) -> Item:
    return {
        "PK": usage_pk(h.scope),
        "SK": hold_sk(h.hold_id),
        "kind": "quota_hold",
        "bytes": h.bytes,
        "assets": h.assets,
        "due": h.expires,
        "asset_id": h.asset_id,
        "blob_key": h.blob_key,
    }


def due_item(h: Hold) -> Item:
    return {
        "PK": DUE_PK,
        "SK": due_sk(h),
        "kind": "quota_hold_due",
        "scope": h.scope,
        "hold_id": h.hold_id,
    }


def hold_from(item: Item, scope: str) -> Hold:
    return Hold(
        scope=scope,
        hold_id=str(item["SK"]).removeprefix("HOLD#"),
        bytes=int(item["bytes"]),
        assets=int(item["assets"]),
        expires=int(item["due"]),
        asset_id=str(item["asset_id"]),
        blob_key=str(item.get("blob_key", "")),
    )
