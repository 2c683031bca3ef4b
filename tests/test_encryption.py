"""Envelope-encrypted storages through the HTTP API: ciphertext at rest, exact plaintext out (whole,
ranges at chunk edges, zips), tampering fails the download, KMS wrapping (moto), and public-key storages
that only ``gateway decrypt`` with the private key can read."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import boto3
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from gateway.http.keys import SERVICE
from gateway.storage.envelope import CHUNK, TAG
from tests.helpers import error_code, upload


def encrypted(settings: Any, kek: str, **extra: Any) -> Any:
    spec = {"url": settings.storage_url, "encryption": "envelope", "kek": kek} | extra
    return type(settings)(**(settings.model_dump() | {"storages": {"main": spec}, "default_storage": "main"}))


class Raw:
    """The stored object, behind the gateway's back."""

    def __init__(self, storage_url: str) -> None:
        self.url = storage_url

    def _s3(self) -> tuple[Any, str, str]:
        parts = urlsplit(self.url)
        client = boto3.client(
            "s3", endpoint_url=parse_qs(parts.query)["endpoint"][0], region_name="us-east-1"
        )
        return client, parts.netloc, parts.path.strip("/")

    def read(self, key: str) -> bytes:
        if self.url.startswith("file://"):
            return (Path(self.url.removeprefix("file://")) / key).read_bytes()
        s3, bucket, prefix = self._s3()
        return bytes(s3.get_object(Bucket=bucket, Key=f"{prefix}/{key}")["Body"].read())

    def write(self, key: str, data: bytes) -> None:
        if self.url.startswith("file://"):
            (Path(self.url.removeprefix("file://")) / key).write_bytes(data)
            return
        s3, bucket, prefix = self._s3()
        s3.put_object(Bucket=bucket, Key=f"{prefix}/{key}", Body=data)


@pytest.fixture
def local_kek(tmp_path: Path) -> str:
    path = tmp_path / "kek.bin"
    path.write_bytes(os.urandom(32))
    return f"local:{path}"


async def key_of(client: Any, aid: str) -> str:
    _, version = await client.app[SERVICE].assets.find(aid, owner=None)
    return str(version.blob_key)


async def test_ciphertext_at_rest_exact_plaintext_out(
    settings_factory: Any, make_client: Any, local_kek: str
) -> None:
    settings = encrypted(settings_factory(), local_kek)
    client = await make_client(settings)
    data = os.urandom(5 * CHUNK + 1234)
    out = await upload(client, "secret.bin", data, token="1")
    aid = out["asset"]["id"]
    assert out["asset"]["size"] == len(data)  # sizes and digests are the plaintext's
    stored = Raw(settings.storages["main"].url).read(await key_of(client, aid))
    assert data[:64] not in stored and data[-64:] not in stored and stored.startswith(b"GWENC1\n")
    assert len(stored) > len(data) + 6 * TAG
    whole = await client.get(f"/asset/{aid}")
    assert await whole.read() == data and whole.headers["Content-Length"] == str(len(data))
    for start, end in [
        (0, 0),
        (CHUNK - 1, CHUNK),
        (CHUNK, CHUNK),
        (CHUNK + 1, 2 * CHUNK - 1),
        (2 * CHUNK - 1, 3 * CHUNK + 1),
        (5 * CHUNK - 1, 5 * CHUNK + 1233),
        (len(data) - 1, len(data) - 1),
    ]:
        resp = await client.get(f"/asset/{aid}", headers={"Range": f"bytes={start}-{end}"})
        assert resp.status == 206 and await resp.read() == data[start : end + 1], (start, end)
    empty = (await upload(client, "empty.txt", b""))["asset"]["id"]
    assert await (await client.get(f"/asset/{empty}")).read() == b""
    other = os.urandom(CHUNK * 2)
    second = (await upload(client, "other.bin", other))["asset"]["id"]
    resp = await client.post("/zip", json={"assets": [aid, second, empty], "name": "all.zip"})
    body = await resp.read()
    assert resp.status == 200 and len(body) == int(resp.headers["Content-Length"])
    with zipfile.ZipFile(io.BytesIO(body)) as z:
        assert z.read("secret.bin") == data and z.read("other.bin") == other and z.read("empty.txt") == b""
        assert z.testzip() is None


async def test_one_altered_byte_fails_the_download(
    settings_factory: Any, make_client: Any, local_kek: str
) -> None:
    settings = encrypted(settings_factory(), local_kek)
    client = await make_client(settings)
    data = os.urandom(4 * CHUNK)
    aid = (await upload(client, "victim.bin", data))["asset"]["id"]
    assert await (await client.get(f"/asset/{aid}")).read() == data  # the header is cached now
    raw = Raw(settings.storages["main"].url)
    key = await key_of(client, aid)
    stored = bytearray(raw.read(key))
    stored[-(2 * CHUNK)] ^= 0x01  # one bit, inside chunk 2
    raw.write(key, bytes(stored))
    resp = await client.get(f"/asset/{aid}")
    with pytest.raises(aiohttp.ClientPayloadError):
        await resp.read()  # the connection is cut: never wrong bytes presented as the file
    first = await client.get(f"/asset/{aid}", headers={"Range": f"bytes=0-{CHUNK - 1}"})
    assert await first.read() == data[:CHUNK]  # untouched chunks still read
    truncated = bytes(stored[: -(CHUNK + TAG)])  # drop the last chunk whole
    raw.write(key, truncated)
    client.app[SERVICE].backends.storages.get("main").store._headers.clear()  # type: ignore[attr-defined]
    resp = await client.get(f"/asset/{aid}", headers={"Range": f"bytes={2 * CHUNK}-{3 * CHUNK - 1}"})
    with pytest.raises(aiohttp.ClientPayloadError):
        await resp.read()  # chunk 2 now looks last but was not written as last: refused


async def test_kms_wrapped_keys(settings_factory: Any, make_client: Any, moto_endpoint: str) -> None:
    kms = boto3.client("kms", endpoint_url=moto_endpoint, region_name="us-east-1")
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    settings = encrypted(
        settings_factory(), f"kms:{key_id}", kms_endpoint=moto_endpoint, kms_region="us-east-1"
    )
    client = await make_client(settings)
    data = os.urandom(3 * CHUNK + 7)
    aid = (await upload(client, "kms.bin", data))["asset"]["id"]
    assert await (await client.get(f"/asset/{aid}")).read() == data
    stored = Raw(settings.storages["main"].url).read(await key_of(client, aid))
    assert b'"kind":"kms"' in stored[:2048] and data[:64] not in stored


async def test_public_key_storage_needs_the_private_key(
    settings_factory: Any, make_client: Any, tmp_path: Path
) -> None:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (tmp_path / "public.pem").write_bytes(
        private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    (tmp_path / "private.pem").write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    settings = encrypted(settings_factory(), f"rsa:{tmp_path / 'public.pem'}")
    client = await make_client(settings)
    data = os.urandom(2 * CHUNK + 99)
    aid = (await upload(client, "export.bin", data))["asset"]["id"]
    resp = await client.get(f"/asset/{aid}")
    assert resp.status == 502 and await error_code(resp) == "storage_error"  # the gateway cannot read it
    exported = tmp_path / "exported.enc"
    exported.write_bytes(Raw(settings.storages["main"].url).read(await key_of(client, aid)))

    def decrypt(key: str, src: Path, dst: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "gateway", "decrypt", "--key", key, str(src), str(dst)],
            capture_output=True,
            text=True,
            timeout=60,
        )

    done = decrypt(str(tmp_path / "private.pem"), exported, tmp_path / "plain.bin")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "plain.bin").read_bytes() == data
    altered = bytearray(exported.read_bytes())
    altered[-50] ^= 0x80
    (tmp_path / "altered.enc").write_bytes(bytes(altered))
    refused = decrypt(str(tmp_path / "private.pem"), tmp_path / "altered.enc", tmp_path / "nope.bin")
    assert refused.returncode == 1 and "altered" in refused.stderr
    assert not (tmp_path / "nope.bin").exists() and not (tmp_path / "nope.bin.part").exists()


async def test_rotate_kek_rewraps_without_reencrypting(
    settings_factory: Any, make_client: Any, tmp_path: Path
) -> None:
    import json
    import struct

    old, new = tmp_path / "old.key", tmp_path / "new.key"
    old.write_bytes(os.urandom(32))
    new.write_bytes(os.urandom(32))
    base = settings_factory()
    client = await make_client(encrypted(base, f"local:{old}"))
    payloads = {"a.bin": os.urandom(3 * CHUNK + 5), "b.bin": os.urandom(100)}
    ids = {n: (await upload(client, n, d))["asset"]["id"] for n, d in payloads.items()}
    raw = Raw(base.storage_url)
    keys = {n: await key_of(client, aid) for n, aid in ids.items()}

    def split(blob: bytes) -> tuple[dict[str, Any], bytes]:
        (size,) = struct.unpack(">I", blob[7:11])
        return json.loads(blob[11 : 11 + size]), blob[11 + size :]

    before = {n: split(raw.read(k)) for n, k in keys.items()}
    storages = {
        "main": {
            "url": base.storage_url,
            "encryption": "envelope",
            "kek": f"local:{new}",
            "old_keks": [f"local:{old}"],
        }
    }
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")} | {
        "GATEWAY_STORAGES": json.dumps(storages),
        "GATEWAY_DEFAULT_STORAGE": "main",
        "GATEWAY_CATALOG_URL": base.catalog_url,
    }
    for expected in (
        {"rewrapped": 2, "current": 0, "failed": 0},
        {"rewrapped": 0, "current": 2, "failed": 0},
    ):
        run = subprocess.run(
            [sys.executable, "-m", "gateway", "keys", "rotate-kek", "main"],
            capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path,
        )  # fmt: skip
        assert run.returncode == 0, run.stderr
        assert json.loads(run.stdout.splitlines()[-1]) == expected
    for name, key in keys.items():
        header, chunks = split(raw.read(key))
        assert header["kek"]["id"] != before[name][0]["kek"]["id"]
        assert chunks == before[name][1]  # the content was not re-encrypted, only its key re-wrapped
    rotated = await make_client(encrypted(base, f"local:{new}"))
    for name, aid in ids.items():
        assert await (await rotated.get(f"/asset/{aid}")).read() == payloads[name]
    stale = await make_client(encrypted(base, f"local:{old}"))
    resp = await stale.get(f"/asset/{ids['b.bin']}")
    assert resp.status == 502  # the old key no longer opens it
