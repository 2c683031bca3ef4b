"""Catalog conformance: the SQLite and DynamoDB adapters must behave identically."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest

from gateway.errors import CatalogError
from gateway.ports import Catalog
from gateway.records import Asset, NewAsset, Token, Version
from tests.conftest import Inspector


def make_asset(owner: str = "alice") -> NewAsset:
    aid = str(uuid.uuid4())
    now = time.time()
    asset = Asset(id=aid, name="f.txt", owner=owner, content_type="text/plain", created=now)
    version = Version(aid, 0, 42, "ab" * 32, 12345, f"assets/{aid}/x", now, "text/plain")
    return NewAsset(asset, version)


def make_token(
    asset_ids: tuple[str, ...], *, expires_in: int = 3600, max_downloads: int | None = None
) -> Token:
    now = time.time()
    return Token(
        token_hash=uuid.uuid4().hex * 2,
        token_id=uuid.uuid4().hex[:16],
        asset_ids=asset_ids,
        owner="alice",
        created=now,
        expires_at=int(now) + expires_in,
        max_downloads=max_downloads,
        bundle=len(asset_ids) > 1,
    )


async def test_asset_roundtrip(catalog: Catalog) -> None:
    new = make_asset()
    await catalog.create_assets([new])
    assert await catalog.get_asset(new.asset.id) == new.asset
    assert await catalog.get_version(new.asset.id, 0) == new.version
    assert await catalog.get_version(new.asset.id, 1) is None
    assert await catalog.get_asset(str(uuid.uuid4())) is None


async def test_create_is_all_or_nothing(catalog: Catalog, inspector: Inspector) -> None:
    first = make_asset()
    await catalog.create_assets([first])
    before = len(inspector.catalog_items())
    fresh = make_asset()
    with pytest.raises(CatalogError):
        await catalog.create_assets([fresh, first])  # `first` exists: the whole change must fail
    assert await catalog.get_asset(fresh.asset.id) is None
    assert len(inspector.catalog_items()) == before


async def test_token_roundtrip_and_bundle(catalog: Catalog) -> None:
    a, b = make_asset(), make_asset()
    token = make_token((a.asset.id, b.asset.id), max_downloads=3)
    await catalog.create_assets([a, NewAsset(b.asset, b.version, (token,))])
    got = await catalog.get_token(token.token_hash)
    assert got == token
    assert got is not None and got.is_bundle


async def test_claim_is_exact_under_concurrency(catalog: Catalog) -> None:
    new = make_asset()
    token = make_token((new.asset.id,), max_downloads=5)
    await catalog.create_assets([NewAsset(new.asset, new.version, (token,))])
    results = await asyncio.gather(
        *(catalog.claim_download(token.token_hash, time.time()) for _ in range(20))
    )
    winners = [r for r in results if r is not None]
    assert len(winners) == 5
    assert sorted(w.downloads for w in winners) == [1, 2, 3, 4, 5]
    stored = await catalog.get_token(token.token_hash)
    assert stored is not None and stored.downloads == 5


async def test_claim_refuses_expired_and_unknown(catalog: Catalog) -> None:
    new = make_asset()
    token = make_token((new.asset.id,), expires_in=10)
    await catalog.put_token(token)
    assert await catalog.claim_download(token.token_hash, time.time()) is not None
    assert await catalog.claim_download(token.token_hash, time.time() + 11) is None
    assert await catalog.claim_download("0" * 64, time.time()) is None


async def test_unlimited_token_counts(catalog: Catalog) -> None:
    token = make_token((str(uuid.uuid4()),))
    await catalog.put_token(token)
    for expected in (1, 2, 3):
        claimed = await catalog.claim_download(token.token_hash, time.time())
        assert claimed is not None and claimed.downloads == expected


async def test_init_is_idempotent(catalog: Catalog) -> None:
    await catalog.init()
    await catalog.init()
    await catalog.ping()


async def test_expiry_index_across_day_buckets(catalog: Catalog) -> None:
    from dataclasses import replace

    now = time.time()
    offsets = {"old": -3 * 86400, "yesterday": -86400, "soon": 3600, "later": 3 * 86400}
    news = {}
    for label, offset in offsets.items():
        new = make_asset()
        news[label] = NewAsset(replace(new.asset, expires_at=int(now + offset)), new.version)
    for new in news.values():
        await catalog.create_assets([new])
    due = await catalog.due_assets(now, 100)
    assert {d.asset_id for d in due} == {news["old"].asset.id, news["yesterday"].asset.id}
    assert len(await catalog.due_assets(now, 1)) == 1
    for d in due:
        assert await catalog.delete_asset(d.asset_id, due=d) is True
        assert await catalog.delete_asset(d.asset_id, due=d) is False  # racing deleter: no error
    assert await catalog.due_assets(now, 100) == []
    later = await catalog.due_assets(now + 2 * 3600, 100)
    assert [d.asset_id for d in later] == [news["soon"].asset.id]
    assert await catalog.get_asset(news["later"].asset.id) is not None


async def test_revoke_and_list_tokens(catalog: Catalog) -> None:
    new = make_asset()
    t1, t2 = make_token((new.asset.id,)), make_token((new.asset.id,), max_downloads=1)
    await catalog.create_assets([NewAsset(new.asset, new.version, (t1, t2))])
    assert {t.token_id for t in await catalog.list_tokens(new.asset.id)} == {t1.token_id, t2.token_id}
    assert await catalog.find_token_hash(new.asset.id, t1.token_id) == t1.token_hash
    assert await catalog.revoke_token(t1.token_hash) is True
    assert await catalog.revoke_token(t1.token_hash) is False
    assert await catalog.revoke_token("f" * 64) is False
    assert await catalog.claim_download(t1.token_hash, time.time()) is None
    assert await catalog.delete_asset(new.asset.id) is True
    assert await catalog.get_token(t1.token_hash) is None and await catalog.list_tokens(new.asset.id) == []


async def test_batch_reads(catalog: Catalog) -> None:
    news = [make_asset() for _ in range(150)]  # more than one DynamoDB BatchGetItem page
    for i in range(0, 150, 30):
        await catalog.create_assets(news[i : i + 30])
    ids = [n.asset.id for n in news] + [str(uuid.uuid4())]
    assets = await catalog.get_assets(ids + ids[:5])
    assert set(assets) == {n.asset.id for n in news}
    assert assets[news[7].asset.id] == news[7].asset
    versions = await catalog.get_versions([(n.asset.id, 0) for n in news] + [(news[0].asset.id, 9)])
    assert len(versions) == 150 and versions[(news[3].asset.id, 0)] == news[3].version


async def test_owner_listing_pages(catalog: Catalog) -> None:
    from dataclasses import replace

    base = time.time()
    news = []
    for i in range(5):
        new = make_asset(owner="olivia")
        news.append(NewAsset(replace(new.asset, created=base + i), new.version))
    await catalog.create_assets(news)
    await catalog.create_assets([make_asset(owner="oscar")])
    seen, before = [], None
    while True:
        ids, before = await catalog.list_owner_assets("olivia", 2, before)
        seen += ids
        if before is None:
            break
    assert seen == [n.asset.id for n in reversed(news)]
    assert (await catalog.list_owner_assets("nobody", 10, None)) == ([], None)


async def test_add_version_is_conditional(catalog: Catalog) -> None:
    from dataclasses import replace

    new = make_asset()
    await catalog.create_assets([new])
    v1 = replace(new.version, version=1, blob_key="k1")
    assert await catalog.add_version(new.asset, v1) is True
    assert await catalog.add_version(new.asset, replace(v1, blob_key="k1b")) is False  # stale latest
    asset = await catalog.get_asset(new.asset.id)
    assert asset is not None and asset.latest_version == 1
    assert [v.version for v in await catalog.list_versions(new.asset.id)] == [0, 1]
    assert (await catalog.get_version(new.asset.id, 1)) == v1


async def test_asset_carries_a_copy_of_its_latest_version(catalog: Catalog) -> None:
    """The copy that lets a download read one item: written at creation, moved by add_version, and
    kept in step by set_crc32 (only while that version is still the latest)."""
    from dataclasses import replace

    new = make_asset()
    new = NewAsset(new.asset, replace(new.version, crc32=None))
    await catalog.create_assets([new])
    asset = await catalog.get_asset(new.asset.id)
    assert asset is not None and asset.latest == new.version
    await catalog.set_crc32(new.asset.id, 0, 777)
    asset = await catalog.get_asset(new.asset.id)
    assert asset is not None and asset.latest == replace(new.version, crc32=777)
    v1 = replace(new.version, version=1, blob_key="k1", size=7, crc32=None)
    assert await catalog.add_version(asset, v1) is True
    (fetched,) = (await catalog.get_assets([new.asset.id])).values()
    assert fetched.latest == v1 and fetched.latest_version == 1
    await catalog.set_crc32(new.asset.id, 0, 999)  # an older version: the copy of v1 stays as it is
    asset = await catalog.get_asset(new.asset.id)
    assert asset is not None and asset.latest == v1
    assert (await catalog.get_version(new.asset.id, 0)) == replace(new.version, crc32=999)


async def test_expire_asset_enters_the_index(catalog: Catalog) -> None:
    new = make_asset()
    await catalog.create_assets([new])
    now = int(time.time())
    assert await catalog.expire_asset(new.asset.id, now) is True
    asset = await catalog.get_asset(new.asset.id)
    assert asset is not None and asset.expired(now)
    assert [d.asset_id for d in await catalog.due_assets(now + 1, 10)] == [new.asset.id]
    assert await catalog.expire_asset(str(uuid.uuid4()), now) is False
