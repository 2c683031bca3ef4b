"""S3 (and S3-compatible) blob store on aioboto3.

Uploads run our own multipart loop rather than ``upload_fileobj``: its queue lets ~100 parts pile up in
memory, and we want a hard bound. The reader fills one part buffer; a semaphore with
``parts_in_flight`` permits must be taken before a part is handed to an uploader task, so while S3 is
slower than the client we simply stop reading the request body, aiohttp's buffer fills, and TCP pushes
back on the client. Memory is therefore about ``part_size * (parts_in_flight + 1)``.

A body that ends inside its first part is sent as a single PutObject (no multipart bookkeeping for small
files). Any failure, including the client disconnecting or the task being cancelled, aborts the
multipart upload so no orphaned parts are billed; the abort is shielded from further cancellation.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any

import aiohttp
from botocore.exceptions import BotoCoreError, ClientError, ConnectTimeoutError, ReadTimeoutError

from gateway.awsconfig import DEFAULT_POLICY, CallPolicy
from gateway.errors import NotFound, StorageError
from gateway.ports import BlobEntry, ResumableWrites, WriteResult
from gateway.storage.s3_credentials import session_for, write_args
from gateway.topology import StorageSpec

MiB = 1024 * 1024
MIN_PART = 5 * MiB
MAX_PARTS = 10_000
_MISSING_CODES = {"NoSuchKey", "404", "NotFound"}


class S3BlobStore:
    def __init__(
        self,
        *,
        bucket: str,
        prefix: str = "",
        region: str | None = None,
        endpoint_url: str | None = None,
        part_size: int = 8 * MiB,
        parts_in_flight: int = 2,
        max_object_size: int = 64 * 1024 * MiB,
        chunk_size: int = MiB,
        policy: CallPolicy = DEFAULT_POLICY,
        spec: StorageSpec | None = None,
    ) -> None:
        if not bucket:
            raise ValueError("S3 storage URL needs a bucket: s3://bucket/prefix")
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.region = region
        self.endpoint_url = endpoint_url
        self.part_size = max(part_size, MIN_PART)
        self.parts_in_flight = parts_in_flight
        self.max_object_size = max_object_size
        self.chunk_size = chunk_size
        self.policy = policy
        self.spec = spec
        self.write_args = write_args(spec)  # SSE, KMS key, storage class: on every object we create
        self._stack = AsyncExitStack()
        self._client: Any = None

    # -- lifecycle -----------------------------------------------------------------------------------
    async def start(self) -> None:
        session = session_for(self.spec, region=self.region, endpoint=self.endpoint_url, policy=self.policy)
        config = self.policy.config(
            max_pool_connections=max(10, self.parts_in_flight * 4),
            signature_version="s3v4",  # also for presigned URLs (SigV2 is deprecated)
            s3={"addressing_style": "path"} if self.endpoint_url else None,
        )
        self._client = await self._stack.enter_async_context(
            session.client("s3", region_name=self.region, endpoint_url=self.endpoint_url, config=config)
        )

    async def close(self) -> None:
        await self._stack.aclose()
        self._client = None

    @property
    def client(self) -> Any:
        if self._client is None:
            raise RuntimeError("S3BlobStore used before start()")
        return self._client

    def _key(self, key: str) -> str:
        return self.prefix + key

    def resumable_writes(self) -> ResumableWrites:
        from gateway.storage.resumable_s3 import S3ResumableWrites

        return S3ResumableWrites(self)

    async def init(self) -> None:
        try:
            await self.client.head_bucket(Bucket=self.bucket)
            return
        except ClientError as exc:
            if _code(exc) not in ("404", "NoSuchBucket", "NotFound"):
                raise _storage_error("head_bucket", exc) from exc
        except BotoCoreError as exc:
            raise _storage_error("head_bucket", exc) from exc
        kwargs: dict[str, Any] = {"Bucket": self.bucket}
        if self.region and self.region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
        try:
            await self.client.create_bucket(**kwargs)
        except ClientError as exc:
            if _code(exc) not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise _storage_error("create_bucket", exc) from exc
        except BotoCoreError as exc:
            raise _storage_error("create_bucket", exc) from exc

    async def ping(self) -> None:
        try:
            await self.client.head_bucket(Bucket=self.bucket)
        except (ClientError, BotoCoreError) as exc:
            raise _storage_error("head_bucket", exc) from exc

    # -- writes --------------------------------------------------------------------------------------
    def part_size_for(self, size_hint: int | None) -> int:
        """Smallest part size ≥ the configured one that fits the object in 10,000 parts (whole MiB)."""
        total = size_hint if size_hint is not None else self.max_object_size
        needed = math.ceil(total / MAX_PARTS)
        return max(self.part_size, math.ceil(needed / MiB) * MiB)

    async def write(self, key: str, chunks: Any, *, size_hint: int | None) -> WriteResult:
        s3_key = self._key(key)
        part_size = self.part_size_for(size_hint)
        buf = bytearray()
        upload_id: str | None = None
        etags: dict[int, str] = {}
        tasks: set[asyncio.Task[None]] = set()
        slots = asyncio.Semaphore(self.parts_in_flight)
        part_no = 0
        size = 0

        async def send(number: int, data: bytes) -> None:
            try:
                resp = await self.client.upload_part(
                    Bucket=self.bucket, Key=s3_key, UploadId=upload_id, PartNumber=number, Body=data
                )
                etags[number] = resp["ETag"]
            finally:
                slots.release()

        async def dispatch(data: bytes) -> None:
            nonlocal upload_id, part_no
            if upload_id is None:
                resp = await self.client.create_multipart_upload(
                    Bucket=self.bucket, Key=s3_key, **self.write_args
                )
                upload_id = resp["UploadId"]
            await slots.acquire()  # backpressure: no more reading until a part slot is free
            for done in [t for t in tasks if t.done()]:
                tasks.discard(done)
                done.result()  # surface an uploader failure promptly
            part_no += 1
            if part_no > MAX_PARTS:
                slots.release()
                raise StorageError("object needs more than 10,000 parts")
            tasks.add(asyncio.create_task(send(part_no, data)))

        try:
            async for chunk in chunks:
                buf += chunk
                size += len(chunk)
                while len(buf) >= part_size:
                    data = bytes(memoryview(buf)[:part_size])
                    del buf[:part_size]
                    await dispatch(data)
            if upload_id is None:
                resp = await self.client.put_object(
                    Bucket=self.bucket, Key=s3_key, Body=bytes(buf), **self.write_args
                )
                return WriteResult(size=size, etag=resp.get("ETag", ""))
            if buf:
                await dispatch(bytes(buf))
                buf = bytearray()
            await asyncio.gather(*tasks)
            resp = await self.client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=s3_key,
                UploadId=upload_id,
                MultipartUpload={
                    "Parts": [{"PartNumber": n, "ETag": etags[n]} for n in sorted(etags)],
                },
            )
            return WriteResult(size=size, etag=resp.get("ETag", ""))
        except BaseException as exc:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if upload_id is not None:
                await asyncio.shield(self._abort(s3_key, upload_id))
            if isinstance(exc, ClientError | BotoCoreError):
                raise _storage_error("upload", exc) from exc
            raise

    async def _abort(self, s3_key: str, upload_id: str) -> None:
        try:
            await self.client.abort_multipart_upload(Bucket=self.bucket, Key=s3_key, UploadId=upload_id)
        except (ClientError, BotoCoreError):
            # A bucket lifecycle rule (see deploy/) and `gateway gc` catch what an abort cannot.
            pass

    # -- reads ---------------------------------------------------------------------------------------
    async def open(self, key: str, offset: int = 0, length: int | None = None) -> _S3Reader:
        if length == 0:  # no Range header can ask for zero bytes (RGW/AWS answer 416); check it exists
            if not await self.exists(key):
                raise NotFound(f"blob {key} not found")
            return _S3Reader(self, key, None, 0, 0, "")
        end = None if length is None else offset + length
        resp = await self._get(key, offset, end, if_match=None)
        return _S3Reader(self, key, resp["Body"], offset, end, resp.get("ETag", ""))

    async def _get(self, key: str, offset: int, end: int | None, *, if_match: str | None) -> Any:
        """GetObject of bytes [offset, end) (end None: to the end of the object)."""
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": self._key(key)}
        if offset or end is not None:
            kwargs["Range"] = f"bytes={offset}-{'' if end is None else end - 1}"
        if if_match:
            kwargs["IfMatch"] = if_match
        try:
            return await self.client.get_object(**kwargs)
        except ClientError as exc:
            if _code(exc) in _MISSING_CODES:
                raise NotFound(f"blob {key} not found") from None
            raise _storage_error("get_object", exc) from exc
        except BotoCoreError as exc:
            raise _storage_error("get_object", exc) from exc

    async def size_of(self, key: str) -> int:
        """The stored object's size (the Sized capability, ports.py)."""
        try:
            resp = await self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as exc:
            if _code(exc) in _MISSING_CODES:
                raise NotFound(f"blob {key} not found") from None
            raise _storage_error("head_object", exc) from exc
        except BotoCoreError as exc:
            raise _storage_error("head_object", exc) from exc
        return int(resp["ContentLength"])

    async def exists(self, key: str) -> bool:
        try:
            await self.client.head_object(Bucket=self.bucket, Key=self._key(key))
            return True
        except ClientError as exc:
            if _code(exc) in _MISSING_CODES:
                return False
            raise _storage_error("head_object", exc) from exc
        except BotoCoreError as exc:
            raise _storage_error("head_object", exc) from exc

    async def move(self, src: str, dst: str, *, size: int) -> None:
        """Server-side copy, then delete (storage/s3_copy.py)."""
        from gateway.storage.s3_copy import move

        await move(self, src, dst, size=size)

    async def delete(self, key: str) -> None:
        try:
            await self.client.delete_object(Bucket=self.bucket, Key=self._key(key))
        except (ClientError, BotoCoreError) as exc:
            raise _storage_error("delete_object", exc) from exc

    async def presign_get(self, key: str, *, expires_in: int, filename_header: str, content_type: str) -> str:
        url: str = await self.client.generate_presigned_url(
            "get_object",
            Params={
                "Bucket": self.bucket,
                "Key": self._key(key),
                "ResponseContentDisposition": filename_header,
                "ResponseContentType": content_type,
            },
            ExpiresIn=max(1, expires_in),
        )
        return url

    async def list_blobs(self, prefix: str) -> AsyncIterator[BlobEntry]:
        paginator = self.client.get_paginator("list_objects_v2")
        try:
            async for page in paginator.paginate(Bucket=self.bucket, Prefix=self._key(prefix)):
                for obj in page.get("Contents", []):
                    key = obj["Key"][len(self.prefix) :]
                    yield BlobEntry(key, int(obj["Size"]), obj["LastModified"].timestamp())
        except (ClientError, BotoCoreError) as exc:
            raise _storage_error("list_objects_v2", exc) from exc

    async def abort_stale_uploads(
        self, older_than: float, keep: Callable[[str], Awaitable[bool]] | None = None
    ) -> int:
        """Multipart uploads under our prefix initiated before ``older_than`` (e.g. after kill -9)."""
        aborted = 0
        paginator = self.client.get_paginator("list_multipart_uploads")
        try:
            async for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix):
                for up in page.get("Uploads", []):
                    if up["Initiated"].timestamp() >= older_than:
                        continue
                    if keep is None or not await keep(up["Key"][len(self.prefix) :]):
                        await self._abort(up["Key"], up["UploadId"])
                        aborted += 1
        except (ClientError, BotoCoreError) as exc:
            raise _storage_error("list_multipart_uploads", exc) from exc
        return aborted


class _S3Reader:
    """A GetObject body read in chunks that survives a broken stream.

    botocore retries a call only until the response headers arrive; a connection reset or stall in the
    middle of a large body would otherwise fail the whole download. The reader re-requests the rest —
    ``Range`` from the first byte not yet returned, ``If-Match`` the first response's ETag so a replaced
    object cannot be spliced in — at most ``RESUMES`` times per reader, so a link that keeps breaking
    cannot turn one download into an unbounded series of GETs.
    """

    RESUMES = 3

    def __init__(self, store: S3BlobStore, key: str, body: Any, pos: int, end: int | None, etag: str) -> None:
        self._store = store
        self._key = key
        self._body = body  # None: an empty read
        self._pos = pos
        self._end = end
        self._etag = etag
        self._closed = body is None
        self._resumes_left = self.RESUMES

    def __aiter__(self) -> _S3Reader:
        return self

    async def __anext__(self) -> bytes:
        if self._closed:
            raise StopAsyncIteration
        while True:
            try:
                data: bytes = await self._body.read(self._store.chunk_size)
                break
            except (TimeoutError, BotoCoreError, OSError, aiohttp.ClientError) as exc:
                self._body.close()
                if not self._resumes_left:
                    self._closed = True
                    raise StorageError(f"reading from storage failed: {type(exc).__name__}") from exc
                self._resumes_left -= 1
                try:
                    resp = await self._store._get(self._key, self._pos, self._end, if_match=self._etag)
                except BaseException:
                    self._closed = True
                    raise
                self._body = resp["Body"]
        if not data:
            await self.aclose()
            raise StopAsyncIteration
        self._pos += len(data)
        return data

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            self._body.close()


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _storage_error(op: str, exc: Exception) -> StorageError:
    if isinstance(exc, ClientError):
        return StorageError(f"storage {op} failed: {_code(exc) or 'error'}")
    if isinstance(exc, ReadTimeoutError | ConnectTimeoutError):
        return StorageError(f"storage {op} timed out", code="storage_timeout")
    return StorageError(f"storage {op} failed: {type(exc).__name__}")
