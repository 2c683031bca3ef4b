"""The single-table item design, written once for both catalog adapters.

DynamoDB and SQLite store exactly these items (see docs/data-model.md); only the encoding differs.
Keeping the key layout and the record <-> item mapping here means the two adapters cannot drift apart.

    PK                  SK                          what
    ASSET#<id>          META                        name, owner, content type, latest version (+ a copy)
    ASSET#<id>          V#<n, 8 digits>             size, sha256, crc32, blob key, created
    ASSET#<id>          TOKEN#<token_id>            pointer to a token (list/revoke by id)
    TOKEN#<sha256>      TOKEN                       asset ids, expires_at (TTL), limits, counter
    TOKEN#<sha256>      RET#<client hash>           one client's retrieval: bytes charged, resume window (TTL)
    TOKEN#<sha256>      GUESS#<minute>              wrong password guesses in that minute (TTL)
    TOKEN#<sha256>      DL#<time>#<random>          one response served through the link (history, TTL)
    CONFIG              SECRET#<name>               a random secret shared by every process
    OWNER#<owner>       ASSET#<created>#<id>        per-owner listing without scans
    EXPIRY#<day>        <expires_at 12 digits>#<id> retention index: due assets per UTC day
    EXPIRY#CURSOR       CURSOR                      oldest day bucket that may hold entries
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from gateway.records import Asset, DownloadRecord, DueAsset, Retrieval, Token, Version

Item = dict[str, Any]

META = "META"
DAY = 86400
EXPIRY_CURSOR_PK = "EXPIRY#CURSOR"
EXPIRY_CURSOR_SK = "CURSOR"
TOKEN_SK = "TOKEN"  # noqa: S105 (a sort key, not a secret)


def asset_pk(asset_id: str) -> str:
    return f"ASSET#{asset_id}"


def version_sk(version: int) -> str:
    return f"V#{version:08d}"


def token_pk(token_hash: str) -> str:
    return f"TOKEN#{token_hash}"


def owner_pk(owner: str) -> str:
    return f"OWNER#{owner}"


def asset_item(a: Asset, latest: Version | None = None) -> Item:
    """``latest`` (default ``a.latest``) is copied in: a download of the latest version reads one item."""
    latest = latest or a.latest
    return {
        "PK": asset_pk(a.id),
        "SK": META,
        "kind": "asset",
        "asset_id": a.id,
        "name": a.name,
        "owner": a.owner,
        "content_type": a.content_type,
        "created": a.created,
        "latest_version": a.latest_version,
        **({"asset_expires_at": a.expires_at} if a.expires_at is not None else {}),
        **({"metadata": a.metadata} if a.metadata else {}),
        **({"scope": a.scope} if a.scope else {}),
        **({"latest": version_fields(latest)} if latest is not None else {}),
    }


def asset_from(item: Item) -> Asset:
    return Asset(
        id=item["asset_id"],
        name=item["name"],
        owner=item["owner"],
        content_type=item["content_type"],
        created=float(item["created"]),
        latest_version=int(item["latest_version"]),
        expires_at=None if item.get("asset_expires_at") is None else int(item["asset_expires_at"]),
        metadata=dict(item.get("metadata") or {}),
        scope=str(item.get("scope", "")),
        latest=version_from({**item["latest"], "asset_id": item["asset_id"]}) if item.get("latest") else None,
    )


def owner_key(a: Asset) -> tuple[str, str]:
    return owner_pk(a.owner), f"ASSET#{a.created:017.6f}#{a.id}"


OWNER_SK_PREFIX = "ASSET#"


def owner_item(a: Asset) -> Item:
    pk, sk = owner_key(a)
    return {
        "PK": pk,
        "SK": sk,
        "kind": "owner_asset",
        "asset_id": a.id,
    }


def version_fields(v: Version) -> Item:
    """A version's own attributes: its item's body, and the copy in the asset's META item."""
    return {
        "version": v.version,
        "size": v.size,
        "sha256": v.sha256,
        **({"crc32": v.crc32} if v.crc32 is not None else {}),
        "blob_key": v.blob_key,
        "created": v.created,
        "content_type": v.content_type,
        **({"storage": v.storage} if v.storage else {}),
        **({"shared": v.shared} if v.shared else {}),
        **({"scan": v.scan} if v.scan else {}),
        **({"scan_detail": v.scan_detail} if v.scan_detail else {}),
    }


def version_item(v: Version) -> Item:
    return {
        "PK": asset_pk(v.asset_id),
        "SK": version_sk(v.version),
        "kind": "version",
        "asset_id": v.asset_id,
        **version_fields(v),
    }


def version_from(item: Item) -> Version:
    return Version(
        asset_id=item["asset_id"],
        version=int(item["version"]),
        size=int(item["size"]),
        sha256=item["sha256"],
        crc32=None if item.get("crc32") is None else int(item["crc32"]),
        blob_key=item["blob_key"],
        created=float(item["created"]),
        content_type=item["content_type"],
        storage=str(item.get("storage", "")),
        shared=str(item.get("shared", "")),
        scan=str(item.get("scan", "")),
        scan_detail=str(item.get("scan_detail", "")),
    )


def token_item(t: Token) -> Item:
    item: Item = {
        "PK": token_pk(t.token_hash),
        "SK": TOKEN_SK,
        "kind": "token",
        "token_id": t.token_id,
        "asset_ids": list(t.asset_ids),
        "owner": t.owner,
        "created": t.created,
        "expires_at": t.expires_at,
        "downloads": t.downloads,
        "revoked": t.revoked,
        "bundle": t.bundle,
    }
    if t.max_downloads is not None:
        item["max_downloads"] = t.max_downloads
    if t.name is not None:
        item["name"] = t.name
    if t.password_hash is not None:
        item["password_hash"] = t.password_hash
    return item


def token_from(item: Item) -> Token:
    max_downloads = item.get("max_downloads")
    return Token(
        token_hash=item["PK"].removeprefix("TOKEN#"),
        token_id=item["token_id"],
        asset_ids=tuple(item["asset_ids"]),
        owner=item["owner"],
        created=float(item["created"]),
        expires_at=int(item["expires_at"]),
        max_downloads=None if max_downloads is None else int(max_downloads),
        downloads=int(item["downloads"]),
        revoked=bool(item["revoked"]),
        name=item.get("name"),
        # items written before the kind was explicit: a bundle was any token of several assets
        bundle=bool(item.get("bundle", len(item["asset_ids"]) > 1)),
        password_hash=item.get("password_hash"),
    )


def guesses_sk(minute: int) -> str:
    """Wrong password guesses on a link in one UTC minute (throttling that holds across processes)."""
    return f"GUESS#{minute}"


DOWNLOAD_SK_PREFIX = "DL#"
CONFIG_PK = "CONFIG"


def secret_sk(name: str) -> str:
    return f"SECRET#{name}"


def download_item(d: DownloadRecord, nonce: str) -> Item:
    return {
        "PK": token_pk(d.token_hash),
        "SK": f"{DOWNLOAD_SK_PREFIX}{d.time:017.6f}#{nonce}",
        "kind": "download",
        "time": d.time,
        "bytes": d.bytes,
        "status": d.status,
        "client": d.client,
        "expires_at": d.expires_at,
    }


def download_from(item: Item) -> DownloadRecord:
    return DownloadRecord(
        token_hash=item["PK"].removeprefix("TOKEN#"),
        time=float(item["time"]),
        bytes=int(item["bytes"]),
        status=int(item["status"]),
        client=str(item["client"]),
        expires_at=int(item["expires_at"]),
    )


def retrieval_sk(client: str) -> str:
    return f"RET#{client}"


def retrieval_item(r: Retrieval) -> Item:
    return {
        "PK": token_pk(r.token_hash),
        "SK": retrieval_sk(r.client),
        "kind": "retrieval",
        "charged": r.charged,
        "expires_at": r.expires_at,
    }


def asset_token_item(t: Token, asset_id: str) -> Item:
    """Pointer from an asset to one of its tokens; expires with the token."""
    return {
        "PK": asset_pk(asset_id),
        "SK": f"TOKEN#{t.token_id}",
        "kind": "asset_token",
        "token_hash": t.token_hash,
        "expires_at": t.expires_at,
    }


def token_items(t: Token) -> list[Item]:
    return [token_item(t), *(asset_token_item(t, a) for a in t.asset_ids)]


def expiry_day(expires_at: int) -> int:
    return expires_at // DAY


def expiry_pk(day: int) -> str:
    return f"EXPIRY#{day}"


def expiry_key(asset_id: str, expires_at: int) -> tuple[str, str]:
    return expiry_pk(expiry_day(expires_at)), f"{expires_at:012d}#{asset_id}"


def expiry_item(a: Asset) -> Item:
    assert a.expires_at is not None
    pk, sk = expiry_key(a.id, a.expires_at)
    return {"PK": pk, "SK": sk, "kind": "expiry", "asset_id": a.id, "due": a.expires_at}


def due_from(item: Item) -> DueAsset:
    return DueAsset(asset_id=item["asset_id"], expires_at=int(item["due"]))


def due_upper_bound(now: float) -> str:
    """Sort keys ≤ this are due at ``now`` ('~' sorts after '#<uuid>')."""
    return f"{int(now):012d}~"


def new_asset_rows(asset: Asset, version: Version, tokens: tuple[Token, ...]) -> list[Item]:
    """Every item a new asset consists of (the expiry cursor is maintained separately)."""
    rows = [asset_item(asset, latest=version), owner_item(asset), version_item(version)]
    if asset.expires_at is not None:
        rows.append(expiry_item(asset))
    for token in tokens:
        rows += token_items(token)
    return rows


async def walk_due(
    cursor_day: int | None,
    now: float,
    limit: int,
    query_day: Callable[[int], Awaitable[list[DueAsset]]],
    advance: Callable[[int], Awaitable[None]],
) -> list[DueAsset]:
    """The expiry-index walk both adapters share: day buckets from the cursor up to today.

    ``query_day(day)`` returns the due entries of one bucket; ``advance(day)`` moves the cursor past a
    bucket, conditionally (only if it still points there). A past day's bucket holds only due entries,
    so once it is empty it stays empty and the cursor can move on; today's bucket is never skipped.
    """
    if cursor_day is None:
        return []
    day, today = cursor_day, expiry_day(int(now))
    out: list[DueAsset] = []
    while day <= today and len(out) < limit:
        found = await query_day(day)
        out += found[: limit - len(out)]
        if not found and day < today:
            await advance(day)
        day += 1
    return out
