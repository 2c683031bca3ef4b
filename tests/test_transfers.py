"""Transfers through the API and the CLI: two targets with path templates and expirations, the source
deleted only once every copy exists, failures retried then reported, public-key targets."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from gateway.auth import hash_api_key
from gateway.http.keys import SERVICE
from tests.helpers import error_code, free_port

KEY = "alice-key-0123456789abcdef0123456789"
AUTH = {"Authorization": f"Bearer {KEY}"}
FAST = {"outbox_poll_interval": 0.05, "webhook_retry_base": 0.05, "webhook_retry_max_delay": 0.2}


def with_targets(settings: Any, tmp_path: Path, **targets: dict[str, Any]) -> Any:
    storages = {"main": {"url": settings.storage_url}} | targets
    extra = {"storages": storages, "default_storage": "main", "api_keys": [f"alice:{hash_api_key(KEY)}"]}
    return type(settings)(**(settings.model_dump() | extra | FAST))


def read(url: str, key: str) -> bytes | None:
    from tests.test_encryption import Raw

    try:
        return Raw(url).read(key)
    except Exception:
        return None


async def until(client: Any, job_id: str, states: set[str]) -> dict[str, Any]:
    for _ in range(400):
        job = (await (await client.get(f"/transfers/{job_id}", headers=AUTH)).json())["transfer"]
        if job["state"] in states:
            return dict(job)
        await asyncio.sleep(0.05)
    raise AssertionError(f"transfer never reached {states}: {job}")


async def put(client: Any, name: str, data: bytes) -> str:
    resp = await client.put(f"/asset/{name}", data=data, headers=AUTH)
    assert resp.status == 201
    return str((await resp.json())["asset"]["id"])


async def test_two_targets_expiry_and_delete_after(
    settings_factory: Any, make_client: Any, tmp_path: Path
) -> None:
    t1, t2 = f"file://{tmp_path}/t1", f"file://{tmp_path}/t2"
    client = await make_client(with_targets(settings_factory(), tmp_path, t1={"url": t1}, t2={"url": t2}))
    data = {"report.pdf": os.urandom(200_000), "photo.jpg": os.urandom(70_000)}
    ids = {name: await put(client, name, body) for name, body in data.items()}
    body = {
        "assets": list(ids.values()),
        "targets": [
            {"storage": "t1", "path": "{owner}/{date}/{name}", "expires": "3s"},
            {"storage": "t2", "path": "archive/{asset_id}/{name}", "expires": "4 years 3 months"},
        ],
        "delete_source": True,
    }
    resp = await client.post("/transfers", json=body, headers=AUTH)
    assert resp.status == 202, await resp.text()
    job = (await resp.json())["transfer"]
    done = await until(client, job["id"], {"done", "failed"})
    assert done["state"] == "done" and done["source_deleted"] is True
    for obj in done["objects"]:
        name = next(n for n, i in ids.items() if i == obj["asset_id"])
        k1, k2 = (t["key"] for t in obj["targets"])
        assert (
            k1.startswith("key-alice/")
            and k1.endswith(f"/{name}")
            and k2 == f"archive/{obj['asset_id']}/{name}"
        )
        assert read(t1, k1) == data[name] and read(t2, k2) == data[name]
        assert (await client.get(f"/asset/{obj['asset_id']}", headers=AUTH)).status == 404  # moved
    await asyncio.sleep(3.5)  # t1's copies expire; t2's live for years
    for obj in done["objects"]:
        k1, k2 = (t["key"] for t in obj["targets"])
        for _ in range(100):
            if read(t1, k1) is None:
                break
            await asyncio.sleep(0.05)
        assert read(t1, k1) is None and read(t2, k2) is not None


async def test_a_failing_target_is_retried_reported_and_keeps_the_source(
    settings_factory: Any, make_client: Any, tmp_path: Path
) -> None:
    dead = f"s3://nowhere/x?region=us-east-1&endpoint=http://127.0.0.1:{free_port()}"
    settings = with_targets(
        settings_factory(), tmp_path, ok={"url": f"file://{tmp_path}/ok"}, down={"url": dead}
    )
    client = await make_client(
        settings.model_copy(update={"backend_max_attempts": 1, "backend_connect_timeout": 0.5})
    )
    aid = await put(client, "keep.bin", b"stay where you are")
    body = {
        "assets": [aid],
        "targets": [{"storage": "ok", "path": "{name}"}, {"storage": "down", "path": "{name}"}],
        "delete_source": True,
    }
    job = (await (await client.post("/transfers", json=body, headers=AUTH)).json())["transfer"]
    midway = await until(client, job["id"], {"retrying", "failed"})
    states = [t["state"] for t in midway["objects"][0]["targets"]]
    assert (
        states[0] == "done"
        and states[1] in ("retrying", "failed")
        and midway["objects"][0]["targets"][1]["error"]
    )
    failed = await until(client, job["id"], {"failed"})
    assert failed["attempts"] == 8 and failed["objects"][0]["targets"][1]["state"] == "failed"
    assert failed["source_deleted"] is False
    assert await (await client.get(f"/asset/{aid}", headers=AUTH)).read() == b"stay where you are"


@pytest.mark.parametrize(
    ("target", "code"),
    [
        ({"storage": "t", "path": "../escape/{name}"}, "invalid_template"),
        ({"storage": "t", "path": "/abs/{name}"}, "invalid_template"),
        ({"storage": "t", "path": "{secret}/{name}"}, "invalid_template"),
        ({"storage": "t", "path": "a b/{name}"}, "invalid_template"),
        ({"storage": "nope", "path": "{name}"}, "unknown_storage"),
        ({"storage": "t", "path": "{name}", "expires": "soon"}, "invalid_expires"),
    ],
)
async def test_hostile_transfers_are_refused(
    settings_factory: Any, make_client: Any, tmp_path: Path, target: dict[str, Any], code: str
) -> None:
    client = await make_client(with_targets(settings_factory(), tmp_path, t={"url": f"file://{tmp_path}/t"}))
    aid = await put(client, "a.txt", b"a")
    resp = await client.post("/transfers", json={"assets": [aid], "targets": [target]}, headers=AUTH)
    assert resp.status == 400 and await error_code(resp) == code
    assert not (tmp_path / "escape").exists()


async def test_public_key_target_and_cli_raw_keys(
    settings_factory: Any, make_client: Any, tmp_path: Path
) -> None:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (tmp_path / "pub.pem").write_bytes(
        private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    (tmp_path / "priv.pem").write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    vault = {
        "url": f"file://{tmp_path}/vault",
        "encryption": "envelope",
        "kek": f"rsa:{tmp_path / 'pub.pem'}",
    }
    settings = with_targets(settings_factory(), tmp_path, vault=vault)
    client = await make_client(settings)
    data = os.urandom(150_000)
    aid = await put(client, "ledger.csv", data)
    body = {"assets": [aid], "targets": [{"storage": "vault", "path": "exports/{name}"}]}
    job = (await (await client.post("/transfers", json=body, headers=AUTH)).json())["transfer"]
    assert (await until(client, job["id"], {"done", "failed"}))["state"] == "done"
    stored = tmp_path / "vault" / "exports" / "ledger.csv"
    assert stored.read_bytes().startswith(b"GWENC1\n") and data[:64] not in stored.read_bytes()
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "gateway",
            "decrypt",
            "--key",
            str(tmp_path / "priv.pem"),
            str(stored),
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "out").read_bytes() == data

    if not settings.storage_url.startswith("file://"):
        return  # the CLI part: raw keys of a local storage, on the embedded catalog below
    _, version = await client.app[SERVICE].assets.find(aid, owner=None)
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")} | {
        "GATEWAY_STORAGES": json.dumps(
            settings.model_dump()["storages"] | {"copies": {"url": f"file://{tmp_path}/copies"}}
        ),
        "GATEWAY_DEFAULT_STORAGE": "main",
        "GATEWAY_CATALOG_URL": settings.catalog_url,
    }
    cli = subprocess.run(
        [
            sys.executable,
            "-m",
            "gateway",
            "transfer",
            "--from",
            "main",
            "--key",
            version.blob_key,
            "--to",
            "copies:raw/{name}",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=tmp_path,
    )
    assert cli.returncode == 0, cli.stderr
    final = json.loads(cli.stdout.splitlines()[-1])["transfer"]
    assert final["state"] == "done"
    assert (tmp_path / "copies" / "raw" / version.blob_key.rsplit("/", 1)[1]).read_bytes() == data


async def test_a_job_too_big_for_one_item_is_refused(
    settings_factory: Any, make_client: Any, tmp_path: Path
) -> None:
    targets = {f"t{i}": {"url": f"file://{tmp_path}/t{i}"} for i in range(3)}
    client = await make_client(with_targets(settings_factory(), tmp_path, **targets))
    aid = await put(client, "a.txt", b"a")
    body = {
        "assets": [aid] * 1,
        "targets": [{"storage": f"t{i % 3}", "path": f"{i}/{{name}}"} for i in range(11)],
    }
    resp = await client.post("/transfers", json=body, headers=AUTH)
    assert resp.status == 400 and await error_code(resp) == "invalid_json"  # more than 10 targets
    many = [str(uuid.uuid4()) for _ in range(400)]
    body = {"assets": many, "targets": [{"storage": f"t{i}", "path": "{name}"} for i in range(3)]}
    resp = await client.post("/transfers", json=body, headers=AUTH)
    assert resp.status == 400 and await error_code(resp) == "invalid_sources"  # 1,200 copies
