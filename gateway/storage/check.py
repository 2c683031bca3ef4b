"""``gateway storages check``: can the gateway do, in each storage, everything it will need to?

The onboarding step of a customer's own bucket (docs/storage-topology.md): they grant our principal
access by bucket policy, possibly to one path only; this proves it before any user depends on it. Each
permission is tried for real, under the storage's own prefix, on a probe object of our own making:
write (PutObject), read (GetObject, bytes compared), delete (DeleteObject), list (ListBucket, optional:
gc and ``adopt`` need it, serving does not), and a multipart upload (resumable uploads need it). A
failure names the operation and the store's error code, never a credential.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass, field

from gateway.errors import GatewayError
from gateway.ports import Partial
from gateway.storage.registry import Storage

PROBE_PREFIX = ".gateway-probe/"
REQUIRED = ("write", "read", "delete")


@dataclass
class StorageCheck:
    name: str
    results: dict[str, str] = field(default_factory=dict)  # permission -> "ok" | why not

    @property
    def ok(self) -> bool:
        return all(self.results.get(p) == "ok" for p in REQUIRED)

    def as_dict(self) -> dict[str, object]:
        return {"storage": self.name, "ok": self.ok, **self.results}


async def check_storage(storage: Storage) -> StorageCheck:
    report = StorageCheck(storage.name)
    store = storage.store
    key = PROBE_PREFIX + secrets.token_hex(8)
    body = secrets.token_bytes(64)

    async def once() -> AsyncIterator[bytes]:
        yield body

    async def attempt(name: str, op: Awaitable[object]) -> bool:
        try:
            await op
        except GatewayError as exc:
            report.results[name] = exc.message
            return False
        except OSError as exc:  # a filesystem storage: permissions, read-only mount
            report.results[name] = f"{type(exc).__name__}: {exc.strerror or exc}"
            return False
        report.results[name] = "ok"
        return True

    async def read_back() -> None:
        reader = await store.open(key)
        got = b""
        try:
            async for chunk in reader:
                got += chunk
        finally:
            await reader.aclose()
        if got != body:
            raise GatewayError("read returned other bytes than were written")

    async def list_probe() -> None:
        if storage.inventory is None:
            raise GatewayError("this storage cannot list")
        async for _ in storage.inventory.list_blobs(PROBE_PREFIX):
            break

    async def multipart() -> None:
        if storage.resumable is None:
            raise GatewayError("this storage has no resumable writes")
        part = storage.resumable.part_size_for(None)
        staging = PROBE_PREFIX + secrets.token_hex(8) + ".part"
        data = secrets.token_bytes(part + 1)  # one full part: a real multipart upload

        async def chunks() -> AsyncIterator[bytes]:
            yield data

        async def checkpoint(_: Partial) -> None:
            return None

        at = await storage.resumable.append(
            key + ".mp", staging, part, Partial(0, "", 0), chunks(), checkpoint, keep_partial=True
        )
        await storage.resumable.abort(key + ".mp", staging, at)

    if await attempt("write", store.write(key, once(), size_hint=len(body))):
        await attempt("read", read_back())
        await attempt("list", list_probe())
        await attempt("delete", store.delete(key))
    else:
        for name in ("read", "list", "delete"):
            report.results[name] = "not tried (write failed)"
    await attempt("multipart", multipart())
    return report
