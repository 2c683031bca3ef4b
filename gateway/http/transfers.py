"""``POST /transfers`` and ``GET /transfers/{id}``: an owner's assets copied to target storages.

Secured mode only (``403 credentials_required`` in open mode: targets are the operator's storages).
Raw keys of a storage are the operator's business (``gateway transfer``), never the API's. The rules
are ``service/transfers.py``'s.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from gateway.http.bodies import read_json
from gateway.http.keys import SERVICE
from gateway.http.openapi import Operation, operation
from gateway.http.webhooks import owner_required
from gateway.service.transfers import MAX_OBJECTS, MAX_TARGETS, Target, expiry_seconds


class TargetIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    storage: str = Field(max_length=63, description="a configured storage")
    path: str = Field(
        max_length=512, description="template: {owner}/{date}/{name} (also {asset_id}, {version})"
    )
    expires: str | int | None = Field(
        default=None, description="the copy is deleted after this ('4 years 3 months')"
    )


class TransferRequest(BaseModel):
    """POST /transfers"""

    model_config = ConfigDict(extra="forbid")
    assets: list[str] = Field(min_length=1, max_length=MAX_OBJECTS)
    targets: list[TargetIn] = Field(min_length=1, max_length=MAX_TARGETS)
    delete_source: bool = Field(default=False, description="delete the assets once every copy is made")


class TransferOut(BaseModel):
    transfer: dict[str, Any] = Field(description="the job: state, attempts, each object's state per target")
    error: None = None


def _json(job: dict[str, Any], status: int = 200) -> web.Response:
    return web.Response(
        status=status, text=TransferOut(transfer=job).model_dump_json(), content_type="application/json"
    )


@operation(
    Operation(
        summary="Copy your assets to one or more storages (path templates, expiry, delete after)",
        tag="transfers",
        body=TransferRequest,
        responses={202: TransferOut},
        errors=(400, 401, 403, 404, 415),
    )
)
async def create_transfer(request: web.Request) -> web.Response:
    owner = owner_required(request)
    body = await read_json(request, TransferRequest, max_bytes=256 * 1024)
    targets = [Target(t.storage, t.path, expiry_seconds(t.expires)) for t in body.targets]
    job = await request.app[SERVICE].transfers.create(
        owner, targets, assets=body.assets, delete_source=body.delete_source
    )
    return _json(job, 202)


@operation(
    Operation(
        summary="A transfer's progress and errors",
        tag="transfers",
        responses={200: TransferOut},
        errors=(401, 403, 404),
    )
)
async def get_transfer(request: web.Request) -> web.Response:
    job = await request.app[SERVICE].transfers.get(request.match_info["id"], owner=owner_required(request))
    return _json(job)
