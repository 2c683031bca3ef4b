"""Transfers: copy assets (or a storage's raw keys) to one or more target storages, durably.

The transfer service this grew from took queue messages naming a source bucket and keys plus targets
with a path and a human expiration ("4 years 3 months"), copied in chunks, optionally deleted the
source. Here a job is one catalog item (``catalog/transfer_catalog.py``) holding every object's state
per target, and its work is the delivery of an internal ``transfer.requested`` event
(``internal:transfer``): written when the job is created, claimed with a lease by whichever gateway
process is alive, retried with backoff while objects fail (each attempt copies only what is not done),
never lost across a crash. After ``MAX_ATTEMPTS`` attempts the job is ``failed`` and its errors stay on
it: an object is never silently skipped.

- **Targets** are named storages (their credentials, regions and encryption apply: a storage encrypted
  to an RSA public key is a target whose copies only the private key's holder can read). Each has a
  path template -- ``{owner}``, ``{date}`` (UTC, YYYY-MM-DD), ``{name}``, ``{asset_id}``, ``{version}``,
  ``{key}`` -- checked when the job is created: literal text of safe characters, every rendered segment a
  valid name, no ``..``, no absolute path.
- **Expiration** (same human / ISO 8601 formats as link expiry): the copy is deleted when it expires, by
  another internal delivery scheduled for that moment.
- **delete_source**: the sources are deleted only after every object reached every target.
"""

from __future__ import annotations

import dataclasses
import re
import secrets
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from gateway.durations import DurationError, parse_duration
from gateway.errors import BadRequest, GatewayError, NotFound
from gateway.names import validate_name
from gateway.ports import BlobReader, TransferRecords
from gateway.records import Delivery, Event, Subscription
from gateway.service.assets import AssetReader
from gateway.service.context import Backends
from gateway.service.events import Events
from gateway.service.retention import Retention
from gateway.sinks import Outcome

MAX_OBJECTS = 500  # per job: the job is one catalog item
MAX_TARGETS = 10
MAX_COPIES = 1000  # objects x targets: keeps the job item far below DynamoDB's 400 KB
MAX_ATTEMPTS = 8
SUBSCRIPTION = Subscription(
    id="int_transfer",
    owner="",
    url="internal:transfer",
    secret="",
    types=("transfer.requested", "transfer.expire"),
    created=0.0,
    description="transfers (internal)",
)
_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")
_LITERAL = re.compile(r"[A-Za-z0-9._\-/=+@]*")
FIELDS = ("owner", "date", "name", "asset_id", "version", "key")


@dataclasses.dataclass(frozen=True)
class Target:
    storage: str
    path: str
    expires: int | None = None  # seconds the copy lives


def check_template(template: str) -> None:
    if not template or len(template) > 512 or template.startswith("/"):
        raise BadRequest("a target path is a relative template", code="invalid_template")
    for name in _PLACEHOLDER.findall(template):
        if name not in FIELDS:
            raise BadRequest(
                f"unknown placeholder {{{name}}}; use {', '.join(FIELDS)}", code="invalid_template"
            )
    literal = _PLACEHOLDER.sub("", template)
    if not _LITERAL.fullmatch(literal) or ".." in template.split("/"):
        raise BadRequest("a target path's text is letters, digits and ._-/=+@", code="invalid_template")


def render(template: str, values: dict[str, str]) -> str:
    key = _PLACEHOLDER.sub(lambda m: values[m.group(1)], template)
    parts = key.split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise BadRequest(f"target path {key[:80]!r} has an empty or dot segment", code="invalid_template")
    for part in parts:
        validate_name(part)
    return key


def expiry_seconds(raw: str | int | None) -> int | None:
    if raw is None or raw == "":
        return None
    try:
        return parse_duration(str(raw))
    except DurationError as exc:
        raise BadRequest(f"invalid expires {str(raw)[:40]!r}: {exc}", code="invalid_expires") from None


class Transfers:
    def __init__(self, backends: Backends, assets: AssetReader, retention: Retention, events: Events) -> None:
        self.b = backends
        self.assets = assets
        self.retention = retention
        self.events = events

    @property
    def jobs(self) -> TransferRecords:
        if self.b.jobs is None or self.b.outbox is None:
            raise NotFound("transfers are not available with this catalog", code="transfers_unavailable")
        return self.b.jobs

    # -- creating ------------------------------------------------------------------------------------
    async def create(
        self,
        owner: str,
        targets: Sequence[Target],
        *,
        assets: Sequence[str] = (),
        storage: str | None = None,
        keys: Sequence[str] = (),
        delete_source: bool = False,
    ) -> dict[str, Any]:
        jobs = self.jobs
        if not targets or len(targets) > MAX_TARGETS:
            raise BadRequest(f"a transfer has 1 to {MAX_TARGETS} targets", code="invalid_targets")
        sources = list(dict.fromkeys(assets)) or list(dict.fromkeys(keys))
        if not sources or len(sources) > MAX_OBJECTS:
            raise BadRequest(f"a transfer moves 1 to {MAX_OBJECTS} objects", code="invalid_sources")
        if len(sources) * len(targets) > MAX_COPIES:
            raise BadRequest(
                f"a transfer makes at most {MAX_COPIES} copies; split it", code="invalid_sources"
            )
        known = set(self.b.storages.names())
        for t in targets:
            if t.storage not in known:
                raise BadRequest(f"unknown target storage {t.storage[:63]!r}", code="unknown_storage")
            check_template(t.path)
        if storage is not None and storage not in known:
            raise BadRequest(f"unknown source storage {storage[:63]!r}", code="unknown_storage")
        date = datetime.now(UTC).strftime("%Y-%m-%d")
        objects = []
        for source in sources:
            if storage is None:
                asset, version = await self.assets.find(source, owner=owner)
                values = {"owner": _slug(owner), "date": date, "name": asset.name, "asset_id": asset.id}
                values |= {"version": str(version.version), "key": asset.name}
                obj: dict[str, Any] = {"asset_id": asset.id, "version": version.version, "size": version.size}
            else:
                src = self.b.storages.get(storage)
                if not await src.store.exists(source):
                    raise NotFound(f"no key {source[:80]!r} in storage {storage!r}", code="key_not_found")
                base = source.rsplit("/", 1)[-1]
                values = {"owner": _slug(owner), "date": date, "name": base, "asset_id": "", "version": ""}
                values |= {"key": source}
                obj = {"storage": storage, "key": source}
            obj["targets"] = [
                {"key": render(t.path, values), "state": "pending", "error": ""} for t in targets
            ]
            objects.append(obj)
        job = {
            "id": f"tr_{secrets.token_hex(10)}",
            "owner": owner,
            "created": time.time(),
            "state": "pending",
            "attempts": 0,
            "delete_source": delete_source,
            "source_deleted": False,
            "targets": [dataclasses.asdict(t) for t in targets],
            "objects": objects,
        }
        await jobs.put(job)
        event = self.events.new("transfer.requested", owner, {"job": job["id"]})
        assert self.b.outbox is not None
        await self.b.outbox.publish([event])
        self.events.written.set()
        return job

    async def get(self, job_id: str, *, owner: str | None) -> dict[str, Any]:
        job = await self.jobs.get(job_id) if job_id.startswith("tr_") and len(job_id) < 40 else None
        if job is None or (owner is not None and job["owner"] != owner):
            raise NotFound("unknown transfer", code="transfer_not_found")
        return job

    # -- running -------------------------------------------------------------------------------------
    async def handle(self, event: Event) -> Outcome:
        """The internal subscription's sink: run a job, or delete a copy whose time is up."""
        if event.type == "transfer.expire":
            try:
                await self.b.storages.get(str(event.data["storage"])).store.delete(str(event.data["key"]))
            except (GatewayError, OSError) as exc:
                return Outcome(False, error=f"expire: {getattr(exc, 'message', type(exc).__name__)}")
            return Outcome(True)
        job = await self.jobs.get(str(event.data.get("job", "")))
        if job is None or job["state"] in ("done", "failed"):
            return Outcome(True)
        done = await self.run(job)
        return Outcome(True) if done or job["state"] == "failed" else Outcome(False, error="objects left")

    async def run(self, job: dict[str, Any]) -> bool:
        """One attempt: copy what is not done yet; True when every object reached every target."""
        job["state"], job["attempts"] = "running", job["attempts"] + 1
        await self.jobs.put(job)
        targets = [Target(**t) for t in job["targets"]]
        for obj in job["objects"]:
            for target, state in zip(targets, obj["targets"], strict=True):
                if state["state"] == "done":
                    continue
                try:
                    await self._copy(obj, target, state["key"])
                    state["state"], state["error"] = "done", ""
                    if target.expires is not None:
                        await self._schedule_expiry(job, target, state["key"])
                except (GatewayError, OSError, ValueError) as exc:
                    state["state"] = "retrying"
                    state["error"] = str(getattr(exc, "message", None) or type(exc).__name__)[:200]
                await self.jobs.put(job)  # progress is visible as it happens
        complete = all(s["state"] == "done" for o in job["objects"] for s in o["targets"])
        if complete and job["delete_source"] and not job["source_deleted"]:
            await self._delete_sources(job)
            job["source_deleted"] = True
        if complete:
            job["state"] = "done"
        elif job["attempts"] >= MAX_ATTEMPTS:
            job["state"] = "failed"
            for obj in job["objects"]:
                for s in obj["targets"]:
                    if s["state"] != "done":
                        s["state"] = "failed"
        else:
            job["state"] = "retrying"
        await self.jobs.put(job)
        return complete

    async def _open(self, obj: dict[str, Any]) -> tuple[BlobReader, int | None]:
        if "asset_id" in obj:
            _, version = await self.assets.find(obj["asset_id"], int(obj["version"]), owner=None)
            return await self.assets.open(version), version.size
        return await self.b.storages.get(obj["storage"]).store.open(obj["key"]), None

    async def _copy(self, obj: dict[str, Any], target: Target, key: str) -> None:
        reader, size = await self._open(obj)
        try:
            written = await self.b.storages.get(target.storage).store.write(
                key, reader.__aiter__(), size_hint=size
            )
        finally:
            await reader.aclose()
        if size is not None and written.size != size:
            raise GatewayError(f"copied {written.size} of {size} bytes", code="size_mismatch")

    async def _schedule_expiry(self, job: dict[str, Any], target: Target, key: str) -> None:
        assert self.b.outbox is not None and target.expires is not None
        due = time.time() + target.expires
        event = self.events.new("transfer.expire", job["owner"], {"storage": target.storage, "key": key})
        delivery_id = f"exp{secrets.token_hex(14)}"
        await self.b.outbox.schedule(Delivery(delivery_id, SUBSCRIPTION.id, event, "pending", (), due, due))

    async def _delete_sources(self, job: dict[str, Any]) -> None:
        for obj in job["objects"]:
            if "asset_id" in obj:
                try:
                    await self.retention.delete(obj["asset_id"], owner=job["owner"])
                except NotFound:
                    pass
            else:
                await self.b.storages.get(obj["storage"]).store.delete(obj["key"])


def _slug(owner: str) -> str:
    return re.sub(r"[^A-Za-z0-9._=+@-]", "-", owner)[:100] or "owner"
