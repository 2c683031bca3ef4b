"""Server-side copies inside one bucket: the bytes never pass through the gateway.

Used to move a content-addressed upload from its staging key to its digest key (service/dedup.py).
S3's CopyObject takes objects up to 5 GiB; above that a multipart upload is assembled from
UploadPartCopy ranges (the same 10,000-part bound as uploads). Every new object carries the storage's
write arguments (SSE, KMS key, storage class), as the objects the gateway writes itself do.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from gateway.errors import StorageError

if TYPE_CHECKING:
    from gateway.storage.s3 import S3BlobStore

SINGLE_COPY_MAX = 5 * 1024**3
COPY_PART = 512 * 1024**2


async def move(store: S3BlobStore, src: str, dst: str, *, size: int) -> None:
    await copy(store, src, dst, size=size)
    await store.delete(src)


async def copy(store: S3BlobStore, src: str, dst: str, *, size: int) -> None:
    client: Any = store.client
    source = {"Bucket": store.bucket, "Key": store._key(src)}
    target = {"Bucket": store.bucket, "Key": store._key(dst)}
    try:
        if size <= SINGLE_COPY_MAX:
            await client.copy_object(CopySource=source, **target, **store.write_args)
            return
        upload = await client.create_multipart_upload(**target, **store.write_args)
        upload_id = upload["UploadId"]
        try:
            part = max(COPY_PART, math.ceil(size / 10_000))
            parts = []
            for number, start in enumerate(range(0, size, part), start=1):
                end = min(size, start + part) - 1
                resp = await client.upload_part_copy(
                    CopySource=source,
                    CopySourceRange=f"bytes={start}-{end}",
                    PartNumber=number,
                    UploadId=upload_id,
                    **target,
                )
                parts.append({"PartNumber": number, "ETag": resp["CopyPartResult"]["ETag"]})
            await client.complete_multipart_upload(
                UploadId=upload_id, MultipartUpload={"Parts": parts}, **target
            )
        except BaseException:
            await client.abort_multipart_upload(UploadId=upload_id, **target)
            raise
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        raise StorageError(f"storage copy failed: {code}") from exc
    except BotoCoreError as exc:
        raise StorageError(f"storage copy failed: {type(exc).__name__}") from exc
