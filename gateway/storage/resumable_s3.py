"""Resumable writes on S3: one multipart upload per resumable upload, plus a staging object (as tusd).

tus clients send chunks of any size (tus-js-client: often 1-5 MiB), but every S3 part except the last
must be at least 5 MiB. Full parts go straight into the multipart upload; what is left over at the end of
a request -- less than a part -- goes to a staging object that every gateway process can read, and is
put in front of the next request's bytes. Memory per request is one part buffer.

Crash safety follows from the order of writes. The catalog records (offset, parts, ref) only after the
storage holds them. A staging object is rewritten only with content that starts with what the catalog
says it holds, or after a checkpoint that says it holds nothing (``offset == parts * part_size``), so a
process killed between the two writes leaves a state the next request reads correctly (it reads only
``offset - parts * part_size`` bytes of the staging object). Part numbers past the recorded ``parts`` may
exist from such a crash; the next request overwrites them, and completion lists exactly the first
``parts`` parts.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from gateway.errors import StorageError
from gateway.ports import Checkpoint, Partial

if TYPE_CHECKING:
    from gateway.storage.s3 import S3BlobStore

_GONE = {"NoSuchUpload", "NoSuchKey", "404"}


class S3ResumableWrites:
    def __init__(self, store: S3BlobStore) -> None:
        self.store = store

    def part_size_for(self, length: int | None) -> int:
        return self.store.part_size_for(length)

    async def _s3(self, op: str, **kwargs: Any) -> Any:
        from gateway.storage.s3 import _storage_error

        try:
            return await getattr(self.store.client, op)(Bucket=self.store.bucket, **kwargs)
        except (ClientError, BotoCoreError) as exc:
            raise _storage_error(op, exc) from exc

    async def _read_staging(self, staging: str, size: int) -> bytearray:
        reader = await self.store.open(staging, 0, size)
        out = bytearray()
        try:
            async for chunk in reader:
                out += chunk
        finally:
            await reader.aclose()
        if len(out) != size:
            raise StorageError("staging object is shorter than the upload's offset")
        return out

    async def append(
        self,
        key: str,
        staging: str,
        part_size: int,
        at: Partial,
        chunks: AsyncIterator[bytes],
        checkpoint: Checkpoint,
        *,
        keep_partial: bool,
    ) -> Partial:
        s3_key = self.store._key(key)
        staged = at.offset - at.parts * part_size
        buf = await self._read_staging(staging, staged) if staged else bytearray()
        durable = at
        ref, parts = at.ref, at.parts

        async def save_tail() -> None:
            nonlocal durable
            if len(buf) == durable.offset - parts * part_size:
                return  # nothing new since the last checkpoint
            await checkpoint(durable)
            await self._s3(
                "put_object", Key=self.store._key(staging), Body=bytes(buf), **self.store.write_args
            )
            durable = Partial(parts * part_size + len(buf), ref, parts)
            await checkpoint(durable)

        try:
            async for chunk in chunks:
                buf += chunk
                while len(buf) >= part_size:
                    if not ref:
                        ref = (
                            await self._s3("create_multipart_upload", Key=s3_key, **self.store.write_args)
                        )["UploadId"]
                    await checkpoint(Partial(durable.offset, ref, durable.parts))  # lease, and the ref
                    data = bytes(memoryview(buf)[:part_size])
                    await self._s3("upload_part", Key=s3_key, UploadId=ref, PartNumber=parts + 1, Body=data)
                    del buf[:part_size]
                    parts += 1
                    if keep_partial:
                        durable = Partial(parts * part_size, ref, parts)
                        await checkpoint(durable)
        except BaseException:  # the client went away (the handler is cancelled) or broke its body
            if keep_partial:
                await asyncio.shield(save_tail())
            raise
        if parts > durable.parts:  # verified only now (a checksum): the full parts count first
            durable = Partial(parts * part_size, ref, parts)
            await checkpoint(durable)
        await save_tail()
        return durable

    async def complete(self, key: str, staging: str, part_size: int, at: Partial) -> None:
        s3_key = self.store._key(key)
        if await self._size_of(s3_key) == at.offset:
            await self.store.delete(staging)  # completed before, but not recorded (a crash in between)
            return
        tail = at.offset - at.parts * part_size
        data = bytes(await self._read_staging(staging, tail)) if tail else b""
        if not at.ref:  # the whole blob is in the staging object: one PutObject
            await self._s3("put_object", Key=s3_key, Body=data, **self.store.write_args)
        else:
            number = at.parts
            if data:
                number += 1
                await self._s3("upload_part", Key=s3_key, UploadId=at.ref, PartNumber=number, Body=data)
            etags = await self._etags(s3_key, at.ref, number)
            await self._s3(
                "complete_multipart_upload",
                Key=s3_key,
                UploadId=at.ref,
                MultipartUpload={
                    "Parts": [{"PartNumber": n, "ETag": etags[n]} for n in range(1, number + 1)]
                },
            )
        await self.store.delete(staging)

    async def _size_of(self, s3_key: str) -> int | None:
        try:
            head = await self.store.client.head_object(Bucket=self.store.bucket, Key=s3_key)
        except ClientError as exc:
            if str(exc.response.get("Error", {}).get("Code", "")) in _GONE:
                return None
            raise StorageError("storage head_object failed") from exc
        return int(head["ContentLength"])

    async def _etags(self, s3_key: str, ref: str, count: int) -> dict[int, str]:
        etags: dict[int, str] = {}
        marker = 0
        while True:
            resp = await self._s3("list_parts", Key=s3_key, UploadId=ref, PartNumberMarker=marker)
            for part in resp.get("Parts", []):
                etags[int(part["PartNumber"])] = part["ETag"]
            if not resp.get("IsTruncated"):
                break
            marker = int(resp["NextPartNumberMarker"])
        missing = [n for n in range(1, count + 1) if n not in etags]
        if missing:
            raise StorageError(f"multipart upload lost part {missing[0]}")
        return etags

    async def abort(self, key: str, staging: str, at: Partial) -> None:
        if at.ref:
            try:
                await self.store.client.abort_multipart_upload(
                    Bucket=self.store.bucket, Key=self.store._key(key), UploadId=at.ref
                )
            except ClientError as exc:
                if str(exc.response.get("Error", {}).get("Code", "")) not in _GONE:
                    raise StorageError("storage abort_multipart_upload failed") from exc
        await self.store.delete(staging)
