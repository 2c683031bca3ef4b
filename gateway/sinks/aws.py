"""SNS topics and SQS queues as event targets (the image service "posts on SNS").

The message is the same JSON body webhooks get; the event type and id are message attributes, so
subscribers can filter (SNS subscription filter policies) without parsing. Calls use the backends'
timeout and retry policy; a failure is a failed attempt, retried by the dispatcher like a webhook's.
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from types import TracebackType
from typing import Any

import aioboto3
from botocore.exceptions import BotoCoreError, ClientError

from gateway.awsconfig import DEFAULT_POLICY
from gateway.records import Event, Subscription
from gateway.sinks import Outcome, payload


class AwsSink:
    def __init__(self, kind: str, region: str | None, endpoint: str | None) -> None:
        self.kind = kind  # "sns" or "sqs"
        self.region = region
        self.endpoint = endpoint
        self._stack = AsyncExitStack()
        self.client: Any = None

    async def __aenter__(self) -> AwsSink:
        session = aioboto3.Session()
        self.client = await self._stack.enter_async_context(
            session.client(
                self.kind, region_name=self.region, endpoint_url=self.endpoint, config=DEFAULT_POLICY.config()
            )
        )
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._stack.aclose()

    async def send(self, sub: Subscription, event: Event) -> Outcome:
        target = sub.url.split(":", 1)[1]
        body = payload(event).decode()
        attrs = {
            "type": {"DataType": "String", "StringValue": event.type},
            "event_id": {"DataType": "String", "StringValue": event.id},
        }
        try:
            if self.kind == "sns":
                await self.client.publish(TopicArn=target, Message=body, MessageAttributes=attrs)
            else:
                await self.client.send_message(QueueUrl=target, MessageBody=body, MessageAttributes=attrs)
        except ClientError as exc:
            return Outcome(False, error=f"{self.kind}: {exc.response.get('Error', {}).get('Code', 'error')}")
        except BotoCoreError as exc:
            return Outcome(False, error=f"{self.kind}: {type(exc).__name__}")
        return Outcome(True)
