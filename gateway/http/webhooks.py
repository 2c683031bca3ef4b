"""Owners' webhooks over HTTP: subscribe, list, unsubscribe, see and retry deliveries.

Thin: the rules (ownership, URL checks, event types) are ``service/webhooks.py``'s. The signing
secret appears in exactly one response, the creation's, and never in a listing or a log.
"""

from __future__ import annotations

from datetime import UTC, datetime

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, field_validator

from gateway.durations import is_decimal
from gateway.errors import BadRequest, Forbidden
from gateway.http.bodies import read_json
from gateway.http.keys import SERVICE, principal
from gateway.http.openapi import Operation, Param, operation
from gateway.records import Delivery, Subscription
from gateway.sinks import payload


class WebhookRequest(BaseModel):
    """POST /webhooks"""

    model_config = ConfigDict(extra="forbid")
    url: str = Field(max_length=2048, description="http(s) URL receiving signed POSTs")
    types: list[str] = Field(default_factory=lambda: ["*"], max_length=50, description="event types, or *")
    description: str = Field(default="", max_length=200)

    @field_validator("description")
    @classmethod
    def _printable(cls, value: str) -> str:
        if any(ord(c) < 32 or ord(c) == 127 for c in value):
            raise ValueError("control characters are not allowed")
        return value


class WebhookOut(BaseModel):
    id: str
    url: str
    types: list[str]
    description: str
    created: str
    secret: str | None = Field(default=None, description="whsec_…: shown once, at creation")

    @classmethod
    def of(cls, sub: Subscription, *, with_secret: bool = False) -> WebhookOut:
        return cls(
            id=sub.id,
            url=sub.url,
            types=list(sub.types),
            description=sub.description,
            created=_iso(sub.created),
            secret=sub.secret if with_secret else None,
        )


class WebhookCreated(BaseModel):
    webhook: WebhookOut
    error: None = None


class WebhookList(BaseModel):
    webhooks: list[WebhookOut]
    error: None = None


class AttemptOut(BaseModel):
    at: str
    status: int | None
    error: str
    duration_ms: int


class DeliveryOut(BaseModel):
    id: str
    event_id: str
    event_type: str
    state: str = Field(description="pending, delivered or failed")
    attempts: list[AttemptOut]
    next_attempt_at: str | None
    created: str
    payload: str = Field(description="the exact body sent (JSON)")

    @classmethod
    def of(cls, d: Delivery) -> DeliveryOut:
        return cls(
            id=d.id,
            event_id=d.event.id,
            event_type=d.event.type,
            state=d.state,
            attempts=[
                AttemptOut(at=_iso(a.at), status=a.status, error=a.error, duration_ms=a.ms)
                for a in d.attempts
            ],
            next_attempt_at=_iso(d.next_at) if d.state == "pending" else None,
            created=_iso(d.created),
            payload=payload(d.event).decode(),
        )


class DeliveryList(BaseModel):
    deliveries: list[DeliveryOut]
    error: None = None


class DeliveryRequeued(BaseModel):
    delivery: DeliveryOut
    error: None = None


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z")


def owner_required(request: web.Request) -> str:
    """Webhooks need credentials: in open mode everyone is one owner, and asset ids are capabilities."""
    who = principal(request)
    if not who.authenticated:
        raise Forbidden("webhooks need credentials", code="credentials_required")
    return who.id


def _json(model: BaseModel, status: int = 200) -> web.Response:
    return web.Response(status=status, text=model.model_dump_json(), content_type="application/json")


@operation(
    Operation(
        summary="Subscribe a URL to your events (Standard Webhooks signatures; the secret is shown once)",
        tag="webhooks",
        body=WebhookRequest,
        responses={201: WebhookCreated},
        errors=(400, 401, 403, 409, 415),
    )
)
async def create_webhook(request: web.Request) -> web.Response:
    body = await read_json(request, WebhookRequest, max_bytes=16 * 1024)
    sub = await request.app[SERVICE].webhooks.create(
        owner_required(request), body.url, body.types, body.description
    )
    return _json(WebhookCreated(webhook=WebhookOut.of(sub, with_secret=True)), 201)


@operation(
    Operation(
        summary="Your webhooks (no secrets)",
        tag="webhooks",
        responses={200: WebhookList},
        errors=(401, 403, 409),
    )
)
async def list_webhooks(request: web.Request) -> web.Response:
    subs = await request.app[SERVICE].webhooks.owned(owner_required(request))
    return _json(WebhookList(webhooks=[WebhookOut.of(s) for s in subs]))


@operation(
    Operation(
        summary="Unsubscribe (pending deliveries are dropped)",
        tag="webhooks",
        responses={204: "deleted"},
        errors=(401, 403, 404, 409),
    )
)
async def delete_webhook(request: web.Request) -> web.Response:
    await request.app[SERVICE].webhooks.delete(owner_required(request), request.match_info["id"])
    return web.Response(status=204)


@operation(
    Operation(
        summary="A webhook's deliveries, newest first: state and every attempt",
        tag="webhooks",
        params=(Param("limit", "entries", {"type": "integer", "minimum": 1, "maximum": 1000}),),
        responses={200: DeliveryList},
        errors=(400, 401, 403, 404, 409),
    )
)
async def list_deliveries(request: web.Request) -> web.Response:
    raw = request.query.get("limit", "100")
    if not is_decimal(raw) or len(raw) > 4 or not 1 <= int(raw) <= 1000:
        raise BadRequest("limit must be an integer from 1 to 1000", code="invalid_limit")
    svc = request.app[SERVICE]
    found = await svc.webhooks.deliveries(owner_required(request), request.match_info["id"], int(raw))
    return _json(DeliveryList(deliveries=[DeliveryOut.of(d) for d in found]))


@operation(
    Operation(
        summary="Send a finished (failed or delivered) delivery again",
        tag="webhooks",
        responses={202: DeliveryRequeued},
        errors=(401, 403, 404, 409),
    )
)
async def retry_delivery(request: web.Request) -> web.Response:
    svc = request.app[SERVICE]
    m = request.match_info
    again = await svc.webhooks.retry(owner_required(request), m["id"], m["delivery_id"])
    svc.events.written.set()
    return _json(DeliveryRequeued(delivery=DeliveryOut.of(again)), 202)
