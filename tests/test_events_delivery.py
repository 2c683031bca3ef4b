"""Events survive the process that wrote them, and reach SNS and SQS (moto) as well as webhooks."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import aiohttp
import boto3
import pytest

from tests.helpers import free_port, running_gateway
from tests.webhook_receiver import Receiver, wait_for

SECRET = "whsec_" + base64.b64encode(os.urandom(32)).decode()
FAST_ENV = {
    "GATEWAY_WEBHOOK_ALLOW_PRIVATE": "true",
    "GATEWAY_WEBHOOK_RETRY_BASE": "0.2",
    "GATEWAY_WEBHOOK_RETRY_MAX_DELAY": "0.5",
    "GATEWAY_OUTBOX_POLL_INTERVAL": "0.1",
    "GATEWAY_OUTBOX_LEASE": "1",
}


async def test_kill_9_between_commit_and_delivery_loses_nothing(tmp_path: Path) -> None:
    """Events committed by a gateway that dies before delivering are delivered by the next one."""
    port = free_port()  # the receiver is down while the first gateway runs: every attempt fails
    env = FAST_ENV | {
        "GATEWAY_STORAGE_URL": f"file://{tmp_path}/blobs",
        "GATEWAY_CATALOG_URL": f"sqlite:///{tmp_path}/catalog.db",
        "GATEWAY_EVENT_SINKS": json.dumps(
            {"hook": {"url": f"http://127.0.0.1:{port}/hook", "secret": SECRET}}
        ),
    }
    with ExitStack() as stack:
        first = await asyncio.to_thread(stack.enter_context, running_gateway(tmp_path, env, "first.log"))
        ids = []
        async with aiohttp.ClientSession() as http:
            for i in range(3):
                async with http.put(f"{first}/asset/f{i}.txt", data=f"file {i}".encode()) as resp:
                    assert resp.status == 201
                    ids.append((await resp.json())["asset"]["id"])
        await asyncio.sleep(0.5)  # attempts fail against the closed port meanwhile
        first.proc.send_signal(signal.SIGKILL)
        first.proc.wait()
    receiver = await Receiver().start(port)
    try:
        with ExitStack() as stack:
            await asyncio.to_thread(stack.enter_context, running_gateway(tmp_path, env, "second.log"))
            await wait_for(lambda: len(receiver.verified(SECRET)) >= 3, what="the dead gateway's events")
            await asyncio.sleep(0.5)
            events = receiver.verified(SECRET)
            assert sorted(e["data"]["asset_id"] for e in events.values()) == sorted(ids)
            assert {e["type"] for e in events.values()} == {"asset.created"}
    finally:
        await receiver.stop()


@pytest.fixture
def aws_targets(moto_endpoint: str) -> dict[str, Any]:
    """An SQS queue, and an SNS topic delivering raw messages to a second queue (moto)."""
    sqs = boto3.client("sqs", endpoint_url=moto_endpoint, region_name="us-east-1")
    sns = boto3.client("sns", endpoint_url=moto_endpoint, region_name="us-east-1")
    name = os.urandom(6).hex()
    direct = sqs.create_queue(QueueName=f"direct-{name}")["QueueUrl"]
    via_topic = sqs.create_queue(QueueName=f"topic-{name}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=via_topic, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    topic = sns.create_topic(Name=f"events-{name}")["TopicArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn, Attributes={"RawMessageDelivery": "true"})
    return {"sqs": sqs, "direct": direct, "via_topic": via_topic, "topic": topic, "endpoint": moto_endpoint}


def receive(sqs: Any, queue: str) -> list[dict[str, Any]]:
    resp = sqs.receive_message(
        QueueUrl=queue, MaxNumberOfMessages=10, MessageAttributeNames=["All"], WaitTimeSeconds=0
    )
    return list(resp.get("Messages", []))


async def test_events_reach_sns_and_sqs(settings_factory: Any, make_client: Any, aws_targets: Any) -> None:
    t = aws_targets
    aws = {"region": "us-east-1", "endpoint": t["endpoint"]}
    sinks = {
        "queue": {"url": f"sqs:{t['direct']}", "types": ["asset.created"]} | aws,
        "topic": {"url": f"sns:{t['topic']}"} | aws,
    }
    client = await make_client(settings_factory(event_sinks=sinks, outbox_poll_interval=0.05))
    resp = await client.put("/asset/photo.jpg", data=b"\xff\xd8 not really a jpeg", params={"token": "1"})
    assert resp.status == 201
    aid = (await resp.json())["asset"]["id"]

    got: dict[str, list[dict[str, Any]]] = {"direct": [], "via_topic": []}

    def poll() -> bool:
        for queue in got:
            got[queue] += receive(t["sqs"], t[queue])
        return len(got["direct"]) >= 1 and len(got["via_topic"]) >= 2

    await wait_for(poll, what="SQS and SNS deliveries")
    [direct] = got["direct"]  # the queue's filter: asset.created only
    body = json.loads(direct["Body"])
    assert body["type"] == "asset.created" and body["data"]["asset_id"] == aid
    assert direct["MessageAttributes"]["type"]["StringValue"] == "asset.created"
    topic_types = sorted(json.loads(m["Body"])["type"] for m in got["via_topic"])
    assert topic_types == ["asset.created", "token.created"]
    event_ids = {m["MessageAttributes"]["event_id"]["StringValue"] for m in got["via_topic"]}
    assert {json.loads(m["Body"])["data"]["event_id"] for m in got["via_topic"]} == event_ids
