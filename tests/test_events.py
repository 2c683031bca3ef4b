"""Events and webhooks end to end: real HTTP receivers, signatures checked by ``standardwebhooks``.

Every action that has an event is performed through the API; the receiver must get each event exactly
once after de-duplication on ``webhook-id``, signed, with the right owner's data only.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from gateway.auth import hash_api_key
from gateway.http.keys import SERVICE
from gateway.sinks.netguard import GuardedResolver, RefusedAddress, allowed
from tests.helpers import error_code
from tests.webhook_receiver import Receiver, wait_for

ALICE = "alice-key-0123456789abcdef0123456789"
BOB = "bob-key-0123456789abcdef0123456789ab"
FAST = {
    "webhook_allow_private": True,
    "webhook_retry_base": 0.05,
    "webhook_retry_max_delay": 0.3,
    "outbox_poll_interval": 0.05,
}


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = await Receiver().start()
    yield r
    await r.stop()


@pytest.fixture
async def secured(settings_factory: Any, make_client: Any) -> TestClient[Any, Any]:
    keys = [f"alice:{hash_api_key(ALICE)}", f"bob:{hash_api_key(BOB)}"]
    return await make_client(settings_factory(api_keys=keys, **FAST))  # type: ignore[no-any-return]


async def subscribe(client: TestClient[Any, Any], url: str, key: str = ALICE, **body: Any) -> dict[str, Any]:
    resp = await client.post("/webhooks", json={"url": url, **body}, headers=auth(key))
    out = await resp.json()
    assert resp.status == 201, out
    hook: dict[str, Any] = out["webhook"]
    assert hook["secret"].startswith("whsec_")
    return hook


async def put(client: TestClient[Any, Any], name: str, data: bytes, key: str = ALICE, **params: Any) -> Any:
    resp = await client.put(f"/asset/{name}", data=data, params=params, headers=auth(key))
    assert resp.status == 201, await resp.text()
    return await resp.json()


async def test_every_action_arrives_signed_once_despite_five_failures(
    secured: TestClient[Any, Any], receiver: Receiver
) -> None:
    client = secured
    hook = await subscribe(client, receiver.url, description="all of alice's")
    receiver.fail_next = 5
    a = await put(client, "a.txt", b"first", token="1")  # asset.created + token.created
    aid = a["asset"]["id"]
    resp = await client.put(f"/asset/{aid}/content", data=b"second", headers=auth(ALICE))
    assert resp.status in (200, 201)  # asset.version_created
    once = await (
        await client.post(f"/asset/{aid}/tokens", json={"max_downloads": 1}, headers=auth(ALICE))
    ).json()
    got = await client.get(f"/asset-token/{once['token']['token']}")  # download.completed + exhausted
    assert got.status == 200 and await got.read() == b"second"
    resp = await client.delete(f"/asset-token/{a['token']['token']}", headers=auth(ALICE))  # revoked
    assert resp.status == 204
    link = await (await client.post("/upload-links", json={}, headers=auth(ALICE))).json()
    resp = await client.put(f"/upload/{link['upload_link']['token']}/via-link.txt", data=b"dropped")
    assert resp.status == 201  # asset.created + upload_link.used
    via = (await resp.json())["asset"]["id"]
    assert (await client.delete(f"/asset/{via}", headers=auth(ALICE))).status == 204  # asset.deleted
    short = await put(client, "short.txt", b"short", expires="1h")
    svc = client.app[SERVICE]
    real = svc.backends.clock
    svc.backends.clock = lambda: real() + 3601  # type: ignore[method-assign]
    assert await svc.retention.sweep_once() >= 1  # asset.expired
    svc.backends.clock = real  # type: ignore[method-assign]
    await put(client, "bobs.txt", b"not alice's", key=BOB)  # never reaches alice's webhook

    expected = sorted(
        ["asset.created"] * 3
        + ["token.created"] * 2
        + [
            "asset.version_created",
            "download.completed",
            "token.exhausted",
            "token.revoked",
            "upload_link.used",
            "asset.deleted",
            "asset.expired",
        ]
    )
    await wait_for(
        lambda: len(receiver.verified(hook["secret"])) >= len(expected),
        what="every event",
        show=receiver.types,
    )
    await asyncio.sleep(0.3)  # anything extra (a duplicate, bob's event) would arrive by now
    events = receiver.verified(hook["secret"])
    assert sorted(e["type"] for e in events.values()) == expected
    assert receiver.refused == 5
    assert all(e["data"]["owner"] == "key:alice" for e in events.values() if "owner" in e["data"])
    assert len({e["data"]["event_id"] for e in events.values()}) == len(expected)
    by_type = {e["type"]: e["data"] for e in events.values()}
    assert by_type["asset.version_created"]["version"] == 1 and by_type["asset.version_created"]["size"] == 6
    assert by_type["download.completed"]["bytes"] == 6 and by_type["download.completed"]["token_id"]
    assert "token" not in by_type["token.created"]  # the secret is never in an event
    assert by_type["upload_link.used"]["asset_ids"] == [via]
    assert by_type["asset.expired"]["asset_id"] == short["asset"]["id"]
    assert all("T" in e["timestamp"] for e in events.values())

    # the delivery log shows the failed attempts, then success, for this owner only
    resp = await client.get(f"/webhooks/{hook['id']}/deliveries", headers=auth(ALICE))
    deliveries = (await resp.json())["deliveries"]
    assert len(deliveries) == len(expected) and {d["state"] for d in deliveries} == {"delivered"}
    statuses = [a["status"] for d in deliveries for a in d["attempts"]]
    assert statuses.count(500) == 5 and statuses.count(204) == len(expected)
    resp = await client.get(f"/webhooks/{hook['id']}/deliveries", headers=auth(BOB))
    assert resp.status == 404 and await error_code(resp) == "webhook_not_found"
    listed = await (await client.get("/webhooks", headers=auth(ALICE))).json()
    assert [w["id"] for w in listed["webhooks"]] == [hook["id"]] and listed["webhooks"][0]["secret"] is None
    metrics = await (await client.get("/metrics")).text()
    assert 'gateway_event_delivery_attempts_total{outcome="retry"} 5.0' in metrics
    assert f'gateway_event_delivery_attempts_total{{outcome="delivered"}} {len(expected)}.0' in metrics


async def test_types_filter_and_owners_see_only_their_own(
    secured: TestClient[Any, Any], receiver: Receiver
) -> None:
    client = secured
    bobs = await Receiver().start()
    try:
        alice_hook = await subscribe(client, receiver.url, types=["token.created"])
        bob_hook = await subscribe(client, bobs.url, key=BOB)
        await put(client, "a.txt", b"a", token="1")
        await put(client, "b.txt", b"b", key=BOB)
        await wait_for(lambda: receiver.received and bobs.received, what="both receivers")
        await asyncio.sleep(0.3)
        assert [e["type"] for e in receiver.verified(alice_hook["secret"]).values()] == ["token.created"]
        bob_events = bobs.verified(bob_hook["secret"])
        assert [e["type"] for e in bob_events.values()] == ["asset.created"]
        assert next(iter(bob_events.values()))["data"]["name"] == "b.txt"
        # bob can neither see nor delete alice's webhook
        assert (await client.delete(f"/webhooks/{alice_hook['id']}", headers=auth(BOB))).status == 404
        assert (await client.delete(f"/webhooks/{alice_hook['id']}", headers=auth(ALICE))).status == 204
        assert (await client.get("/webhooks", headers=auth(ALICE))).status == 200
    finally:
        await bobs.stop()


async def test_failed_for_good_then_retried_by_hand(
    settings_factory: Any, make_client: Any, receiver: Receiver
) -> None:
    keys = [f"alice:{hash_api_key(ALICE)}"]
    client = await make_client(settings_factory(api_keys=keys, **FAST | {"webhook_retry_for": 1}))
    hook = await subscribe(client, receiver.url, types=["asset.created"])
    receiver.fail_next = 10**6
    await put(client, "x.txt", b"x")
    health = await (await client.get("/healthcheck", params={"detail": "1"})).json()
    assert set(health["workers"]) == {"outbox_due", "oldest_due_seconds"}  # reported, still healthy
    assert await (await client.get("/healthcheck")).json() == {"status": "success"}  # the contract's body
    url = f"/webhooks/{hook['id']}/deliveries"

    async def state() -> str:
        found = (await (await client.get(url, headers=auth(ALICE))).json())["deliveries"]
        return str(found[0]["state"]) if found else "not fanned out yet"

    for _ in range(200):
        if await state() == "failed":
            break
        await asyncio.sleep(0.05)
    [failed] = (await (await client.get(url, headers=auth(ALICE))).json())["deliveries"]
    assert failed["state"] == "failed" and len(failed["attempts"]) >= 2
    assert all(a["status"] == 500 and a["error"] == "HTTP 500" for a in failed["attempts"])
    assert receiver.received == []
    receiver.fail_next = 0
    resp = await client.post(f"{url}/{failed['id']}/retry", headers=auth(ALICE))
    assert resp.status == 202
    await wait_for(lambda: len(receiver.received) == 1, what="the retried delivery")
    [event] = receiver.verified(hook["secret"]).values()
    assert event["type"] == "asset.created" and event["data"]["event_id"] == failed["event_id"]
    resp = await client.post(f"{url}/nonexistent/retry", headers=auth(ALICE))
    assert resp.status == 404 and await error_code(resp) == "delivery_not_found"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"url": "http://169.254.169.254/latest/meta-data/"}, "invalid_webhook_url"),
        ({"url": "http://[fd00:ec2::254]/"}, "invalid_webhook_url"),
        ({"url": "http://10.1.2.3/hook"}, "invalid_webhook_url"),
        ({"url": "http://127.0.0.1:9/hook"}, "invalid_webhook_url"),
        ({"url": "http://localhost/hook"}, "invalid_webhook_url"),
        ({"url": "ftp://example.com/"}, "invalid_webhook_url"),
        ({"url": "https://user:pw@example.com/"}, "invalid_webhook_url"),
        ({"url": "https://example.com/\r\nX-Injected: 1"}, "invalid_webhook_url"),
        ({"url": "https://example.com:99999/"}, "invalid_webhook_url"),
        ({"url": "https://example.com/", "types": ["asset.nope"]}, "invalid_event_types"),
        ({"url": "https://example.com/", "extra": 1}, "invalid_json"),
        ({"url": "https://example.com/", "description": "a\u0000b"}, "invalid_json"),
    ],
)
async def test_hostile_subscriptions_are_refused(
    settings_factory: Any, make_client: Any, body: dict[str, Any], code: str
) -> None:
    client = await make_client(settings_factory(api_keys=[f"alice:{hash_api_key(ALICE)}"]))
    resp = await client.post("/webhooks", json=body, headers=auth(ALICE))
    assert resp.status == 400 and await error_code(resp) == code
    assert (await (await client.get("/webhooks", headers=auth(ALICE))).json())["webhooks"] == []


async def test_webhooks_need_credentials_in_open_mode(client: TestClient[Any, Any]) -> None:
    resp = await client.post("/webhooks", json={"url": "https://example.com/"})
    assert resp.status == 403 and await error_code(resp) == "credentials_required"
    assert (await client.get("/webhooks")).status == 403


async def test_no_subscriber_no_event_written(client: TestClient[Any, Any], inspector: Any) -> None:
    assert (await client.put("/asset/quiet.txt", data=b"nobody listens")).status == 201
    assert not [i for i in inspector.catalog_items() if "OUTBOX#" in repr(i)]


async def test_resolver_drops_refused_addresses() -> None:
    class Fixed:
        def __init__(self, hosts: list[str]) -> None:
            self.hosts = hosts

        async def resolve(
            self, host: str, port: int = 0, family: Any = socket.AF_INET
        ) -> list[dict[str, Any]]:
            return [
                {"hostname": host, "host": h, "port": port, "family": family, "proto": 0, "flags": 0}
                for h in self.hosts
            ]

        async def close(self) -> None:
            pass

    guard = GuardedResolver(allow_private=False)
    guard.inner = Fixed(["169.254.169.254", "10.0.0.7", "93.184.216.34"])  # type: ignore[assignment]
    assert [r["host"] for r in await guard.resolve("rebinding.example")] == ["93.184.216.34"]
    guard.inner = Fixed(["169.254.169.254", "::ffff:127.0.0.1"])  # type: ignore[assignment]
    with pytest.raises(RefusedAddress):
        await guard.resolve("rebinding.example")
    private = GuardedResolver(allow_private=True)
    private.inner = Fixed(["127.0.0.1", "169.254.169.254"])  # type: ignore[assignment]
    assert [r["host"] for r in await private.resolve("x")] == ["127.0.0.1"]  # link-local: never
    assert not allowed(ipaddress.ip_address("100.64.0.1"), allow_private=False)


async def test_a_slow_delivery_keeps_its_lease_against_a_second_process(
    settings_factory: Any, make_client: Any, receiver: Receiver
) -> None:
    """Two gateways on one catalog; the receiver takes 3x the lease to answer. The attempt renews its
    lease, so the other process never starts a second attempt of the same delivery."""
    keys = [f"alice:{hash_api_key(ALICE)}"]
    settings = settings_factory(api_keys=keys, **FAST | {"outbox_lease": 2.0, "webhook_timeout": 20})
    first, second = await make_client(settings), await make_client(settings)
    hook = await subscribe(first, receiver.url, types=["asset.created"])
    second.app[SERVICE].events.subscription_added()  # as its next poll would learn
    receiver.delay = 6.0  # three leases long
    await put(first, "slow.txt", b"slow")
    url = f"/webhooks/{hook['id']}/deliveries"
    delivery: dict[str, Any] = {}
    for _ in range(300):  # generous: CI machines are slow and shared
        found = (await (await first.get(url, headers=auth(ALICE))).json())["deliveries"]
        delivery = found[0] if found else {}
        if delivery.get("state") == "delivered":
            break
        await asyncio.sleep(0.1)
    assert delivery["state"] == "delivered" and len(delivery["attempts"]) == 1
    assert len(receiver.received) == 1  # one attempt reached the receiver: no takeover
