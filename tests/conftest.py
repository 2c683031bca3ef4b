"""Shared fixtures: every backend-facing test runs on both backend pairs.

- ``local``: filesystem blobs + SQLite catalog (the embedded default);
- ``moto``: S3 + DynamoDB served by an in-process ThreadedMotoServer on 127.0.0.1, reached over real
  HTTP by real botocore, so the adapters are exercised exactly as in production;
- ``real``: Ceph radosgw + AWS DynamoDB Local, started by ``scripts/real-lane.sh`` (``make test-real``),
  which exports their endpoints as ``REAL_*`` variables. moto is lenient (bad Content-MD5, odd names,
  everything in RAM); this lane is what says the adapters work against production engines.

``TEST_BACKENDS`` (comma list, default ``local,moto``) picks the pairs. In the real lane only tests that
touch a backend run: the parsers and pure-logic tests have nothing new to learn from Ceph.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from aiohttp.test_utils import TestClient

from gateway.catalog import catalog_from_settings
from gateway.config import MiB, Settings
from gateway.http.app import create_app
from gateway.ports import BlobStore, Catalog
from gateway.storage import blob_store_from_settings

os.environ.update(
    AWS_ACCESS_KEY_ID=os.environ.get("REAL_AWS_ACCESS_KEY_ID", "testing"),
    AWS_SECRET_ACCESS_KEY=os.environ.get("REAL_AWS_SECRET_ACCESS_KEY", "testing"),
    AWS_DEFAULT_REGION="us-east-1",
    AWS_EC2_METADATA_DISABLED="true",
)
os.environ.pop("AWS_PROFILE", None)
for _key in [k for k in os.environ if k.startswith("GATEWAY_")]:
    os.environ.pop(_key)

BACKENDS = [b.strip() for b in os.environ.get("TEST_BACKENDS", "local,moto").split(",") if b.strip()]
REMOTE_BACKENDS = [b for b in BACKENDS if b != "local"]  # the S3 + DynamoDB pairs
if "real" in BACKENDS and not os.environ.get("REAL_S3_ENDPOINT"):
    raise RuntimeError("TEST_BACKENDS=real needs the lane's endpoints: run `make test-real`")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if BACKENDS != ["real"]:
        return
    keep = [i for i in items if {"backend_kind", "remote_kind"} & set(getattr(i, "fixturenames", ()))]
    config.hook.pytest_deselected(items=[i for i in items if i not in keep])
    items[:] = keep


# Property tests draw the same examples every run (CI must not go red on a lucky draw); explore with
# `pytest --hypothesis-profile=explore`, and pin anything it finds as an explicit test.
from hypothesis import settings as hypothesis_settings  # noqa: E402

hypothesis_settings.register_profile("deterministic", derandomize=True, max_examples=300, deadline=None)
hypothesis_settings.register_profile("explore", max_examples=3000, deadline=None)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "deterministic"))


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """`gateway.cli.main` configures the root logger for a real process; tests that call it must not
    leave later tests logging into a captured stream pytest has since closed."""
    import logging

    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def _make_moto_writes_atomic() -> None:
    """DynamoDB applies a conditional write atomically; moto checks the condition, then validates and
    applies the update with no lock, and its server runs every request on its own thread. Two racing
    claims can then both pass ``downloads < max_downloads`` (a rare, load-dependent flake of the
    exact-limit tests). One lock around moto's write paths restores the semantics being tested."""
    import functools
    import threading

    from moto.dynamodb.models import DynamoDBBackend

    lock = threading.RLock()  # re-entrant: transact/batch writes call the single-item ones
    for name in ("put_item", "update_item", "delete_item", "transact_write_items", "batch_write_item"):
        original = getattr(DynamoDBBackend, name, None)
        if original is None or getattr(original, "_atomic", False):
            continue

        @functools.wraps(original)
        def atomic(*args: Any, __original: Any = original, **kwargs: Any) -> Any:
            with lock:
                return __original(*args, **kwargs)

        atomic._atomic = True  # type: ignore[attr-defined]
        setattr(DynamoDBBackend, name, atomic)


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    _make_moto_writes_atomic()

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def remote_endpoints(kind: str, request: pytest.FixtureRequest) -> tuple[str, str]:
    """(S3 endpoint, DynamoDB endpoint) of a remote pair."""
    if kind == "real":
        return os.environ["REAL_S3_ENDPOINT"], os.environ["REAL_DYNAMODB_ENDPOINT"]
    moto = str(request.getfixturevalue("moto_endpoint"))
    return moto, moto


def backend_settings(kind: str, tmp_path: Path, endpoints: tuple[str, str] | None, **extra: Any) -> Settings:
    base: dict[str, Any] = {
        "s3_part_size": 5 * MiB,
        "auto_init": True,
        "public_base_url": "http://gateway.test",
    }
    if kind == "local":
        base |= {
            "storage_url": f"file://{tmp_path}/blobs",
            "catalog_url": f"sqlite:///{tmp_path}/catalog.db",
        }
    else:
        assert endpoints
        s3, ddb = endpoints
        name = f"t{uuid.uuid4().hex[:16]}"
        base |= {
            "storage_url": f"s3://{name}/pfx?region=us-east-1&endpoint={s3}",
            "catalog_url": f"dynamodb://{name}?region=us-east-1&endpoint={ddb}",
        }
    return Settings(**(base | extra))


@pytest.fixture(params=BACKENDS)
def backend_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(params=REMOTE_BACKENDS)
def remote_kind(request: pytest.FixtureRequest) -> str:
    """For tests that only an S3 + DynamoDB pair can express (a proxy in front of S3, say)."""
    return str(request.param)


@pytest.fixture
def remote_settings(remote_kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> Settings:
    return backend_settings(remote_kind, tmp_path, remote_endpoints(remote_kind, request))


@pytest.fixture
def settings_factory(backend_kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> Any:
    endpoints = remote_endpoints(backend_kind, request) if backend_kind != "local" else None

    def make(**extra: Any) -> Settings:
        return backend_settings(backend_kind, tmp_path, endpoints, **extra)

    return make


@pytest.fixture
def settings(settings_factory: Any) -> Settings:
    return settings_factory()  # type: ignore[no-any-return]


@pytest.fixture
async def store(settings: Settings) -> AsyncIterator[BlobStore]:
    blob = blob_store_from_settings(settings)
    await blob.start()
    await blob.init()
    yield blob
    await blob.close()


@pytest.fixture
async def catalog(settings: Settings) -> AsyncIterator[Catalog]:
    cat = catalog_from_settings(settings)
    await cat.start()
    await cat.init()
    yield cat
    await cat.close()


@pytest.fixture
async def client(settings: Settings, aiohttp_client: Any) -> TestClient[Any, Any]:
    return await aiohttp_client(create_app(settings))  # type: ignore[no-any-return]


@pytest.fixture
def make_client(aiohttp_client: Any) -> Any:
    async def make(settings: Settings) -> TestClient[Any, Any]:
        return await aiohttp_client(create_app(settings))  # type: ignore[no-any-return]

    return make


class Inspector:
    """Looks at a backend's raw state behind the gateway's back (sync boto3 / sqlite3)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def _s3(self) -> tuple[Any, str, str]:
        from urllib.parse import parse_qs, urlsplit

        parts = urlsplit(self.settings.storage_url)
        endpoint = parse_qs(parts.query)["endpoint"][0]
        return boto3.client("s3", endpoint_url=endpoint), parts.netloc, parts.path.lstrip("/")

    def blob_keys(self) -> list[str]:
        url = self.settings.storage_url
        if url.startswith("file://"):
            root = Path(url.removeprefix("file://"))
            return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
        s3, bucket, prefix = self._s3()
        resp = s3.list_objects_v2(Bucket=bucket, Prefix=prefix)
        return sorted(o["Key"] for o in resp.get("Contents", []))

    def multipart_uploads(self) -> list[dict[str, Any]]:
        if not self.settings.storage_url.startswith("s3://"):
            return []
        s3, bucket, _ = self._s3()
        return list(s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []))

    def catalog_items(self, *, with_config: bool = False) -> list[dict[str, Any]]:
        """Every item, except (unless asked) the deployment's CONFIG items, which a gateway writes once
        when it starts, not on behalf of any request."""
        url = self.settings.catalog_url
        if url.startswith("sqlite://"):
            import sqlite3

            path = url.split("://", 1)[1][1:]
            with sqlite3.connect(path) as db:
                rows = [
                    {"PK": pk, "SK": sk, "data": data}
                    for pk, sk, data in db.execute("SELECT pk, sk, data FROM items")
                ]
            return [r for r in rows if with_config or r["PK"] != "CONFIG"]
        from urllib.parse import parse_qs, urlsplit

        parts = urlsplit(url)
        ddb = boto3.client("dynamodb", endpoint_url=parse_qs(parts.query)["endpoint"][0])
        items = list(ddb.scan(TableName=parts.netloc).get("Items", []))
        return [i for i in items if with_config or i["PK"] != {"S": "CONFIG"}]


@pytest.fixture
def inspector(settings: Settings) -> Inspector:
    return Inspector(settings)
