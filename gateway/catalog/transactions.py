"""Catalog changes that must respect the transaction limit, written once for both adapters.

DynamoDB's TransactWriteItems takes at most 100 actions; both adapters declare that limit and refuse
bigger transactions (``check_transaction``), so a change too big for DynamoDB fails in every test.
Where a change can exceed it, the split is planned here: what may go first in batches and what must go
last (an asset's META, a token item), so that nothing becomes visible, or stays visible, half-done.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from gateway.catalog.items import (
    META,
    TOKEN_SK,
    Item,
    asset_from,
    expiry_key,
    owner_key,
    token_items,
    token_pk,
)
from gateway.errors import CatalogError
from gateway.records import DueAsset, Token

Key = tuple[str, str]


def check_transaction(count: int, limit: int) -> None:
    """Both adapters refuse the same oversized transaction (DynamoDB: 100 actions)."""
    if count > limit:
        raise CatalogError(f"one change may touch at most {limit} items, this one {count}")


def delete_plan(owned: Sequence[Item], due: DueAsset | None, limit: int) -> tuple[list[Key], list[Key]]:
    """Keys to remove for an asset: (removed first, in batches; removed with META in one transaction).

    ``owned`` is the asset's partition. The META item itself is not in either list (the final
    transaction deletes it conditionally). When everything fits one transaction the first list is
    empty; otherwise versions, tokens and pointers go first -- the asset is already unreadable (it is
    due), so removing them early is invisible and idempotent if repeated after a crash.
    """
    meta = next((i for i in owned if i["SK"] == META), None)
    final: list[Key] = []
    if due is not None:
        final.append(expiry_key(due.asset_id, due.expires_at))
    if meta is None:
        return [], final
    asset = asset_from(meta)
    final.append(owner_key(asset))
    if asset.expires_at is not None:
        final.append(expiry_key(asset.id, asset.expires_at))
    tokens = [(token_pk(i["token_hash"]), TOKEN_SK) for i in owned if i["SK"].startswith("TOKEN#")]
    rest = [*tokens, *((i["PK"], i["SK"]) for i in owned if i["SK"] != META)]
    final = list(dict.fromkeys(final))
    if len(rest) + len(final) + 1 <= limit:
        return [], list(dict.fromkeys([*rest, *final]))
    return list(dict.fromkeys(k for k in rest if k not in final)), final


async def put_token_in_parts(
    token: Token,
    limit: int,
    put_all_new: Callable[[Sequence[Item]], Awaitable[None]],
    delete_keys: Callable[[Sequence[Key]], Awaitable[None]],
    extra: Sequence[Item] = (),
) -> None:
    """A token whose pointers exceed one transaction (a bundle of hundreds of assets).

    Pointers first, in transactions of at most ``limit``; the token item last, so the link works only
    once every pointer exists, together with ``extra`` (its events). If anything fails, the pointers
    written so far are removed (best effort: a pointer to a token that does not exist is ignored by
    every reader).
    """
    items = token_items(token)
    if len(items) + len(extra) <= limit:
        await put_all_new([*items, *extra])
        return
    pointers, written = items[1:], 0
    try:
        for start in range(0, len(pointers), limit):
            await put_all_new(pointers[start : start + limit])
            written = start + limit
        await put_all_new([*items[:1], *extra])
    except BaseException:
        try:
            await delete_keys([(p["PK"], p["SK"]) for p in pointers[:written]])
        except CatalogError:
            pass
        raise
