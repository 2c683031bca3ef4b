"""Blob store adapters, chosen by URL scheme (``file://`` or ``s3://``); one per named storage."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from gateway.config import Settings
from gateway.ports import BlobStore
from gateway.topology import StorageSpec


def blob_store_for(url: str, settings: Settings, spec: StorageSpec | None = None) -> BlobStore:
    store = _plain_store(url, settings, spec)
    if spec is not None and spec.encryption == "envelope" and spec.kek:
        from gateway.storage.envelope import envelope
        from gateway.storage.keks import kek_from

        query = {k: v[-1] for k, v in parse_qs(urlsplit(url).query).items()}
        region = spec.kms_region or query.get("region")
        old = [kek_from(k, region, spec.kms_endpoint) for k in spec.old_keks]
        return envelope(store, kek_from(spec.kek, region, spec.kms_endpoint), old)
    return store


def _plain_store(url: str, settings: Settings, spec: StorageSpec | None) -> BlobStore:
    parts = urlsplit(url)
    if parts.scheme == "file":
        from gateway.storage.filesystem import FilesystemBlobStore

        path = (parts.netloc + parts.path) or "."
        return FilesystemBlobStore(path, chunk_size=settings.read_chunk_size)
    if parts.scheme == "s3":
        from gateway.awsconfig import CallPolicy
        from gateway.storage.s3 import S3BlobStore

        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        return S3BlobStore(
            bucket=parts.netloc,
            prefix=parts.path.lstrip("/"),
            region=query.get("region"),
            endpoint_url=query.get("endpoint"),
            part_size=settings.s3_part_size,
            parts_in_flight=settings.s3_parts_in_flight,
            max_object_size=settings.max_upload_size,
            chunk_size=settings.read_chunk_size,
            policy=CallPolicy.of(settings),
            spec=spec,
        )
    raise ValueError(f"unsupported storage URL scheme {parts.scheme!r} (use file:// or s3://)")


def blob_store_from_settings(settings: Settings) -> BlobStore:
    """The default storage's store (the one-URL deployment's only one)."""
    spec = settings.storages.get(settings.default_storage)
    return blob_store_for(spec.url if spec else settings.storage_url, settings, spec)
