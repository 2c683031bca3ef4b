"""Key-encryption keys for envelope encryption (``storage/envelope.py``): they wrap each object's data key.

- ``local:/path``: 32 bytes in a file (raw or base64); data keys wrapped with AES-256-GCM (AAD
  ``gateway-dek``).
- ``kms:<key id>``: AWS KMS ``Encrypt``/``Decrypt`` of the data key.
- ``rsa:/path/public.pem``: RSA-OAEP (SHA-256) with a public key; the gateway can wrap, never unwrap
  (``gateway decrypt`` with the private key reads what it wrote).
Each KEK has an ``id`` written in the object's header, so during rotation the one that wrapped a data key
is found (``old_keks``).
"""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from gateway.errors import StorageError

OAEP = padding.OAEP(mgf=padding.MGF1(algorithm=hashes.SHA256()), algorithm=hashes.SHA256(), label=None)


class LocalKek:
    """A 32-byte key in a file (raw, or base64); data keys wrapped with AES-256-GCM under it."""

    kind = "local"

    def __init__(self, path: str) -> None:
        raw = Path(path).read_bytes()
        key = raw if len(raw) == 32 else base64.b64decode(raw.strip())
        if len(key) != 32:
            raise ValueError("a local KEK file holds 32 bytes (raw or base64)")
        self.key = key
        self.id = hashlib.sha256(b"gateway-kek\n" + key).hexdigest()[:16]

    async def wrap(self, dk: bytes) -> dict[str, str]:
        nonce = os.urandom(12)
        wrapped = nonce + AESGCM(self.key).encrypt(nonce, dk, b"gateway-dek")
        return {"kind": self.kind, "id": self.id, "wrapped": base64.b64encode(wrapped).decode()}

    async def unwrap(self, kek: dict[str, str]) -> bytes:
        blob = base64.b64decode(kek["wrapped"])
        return AESGCM(self.key).decrypt(blob[:12], blob[12:], b"gateway-dek")


class KmsKek:
    """AWS KMS: data keys wrapped by ``Encrypt`` under a KMS key (moto mocks KMS in the tests)."""

    kind = "kms"

    def __init__(self, key_id: str, region: str | None, endpoint: str | None) -> None:
        self.id = key_id
        self.region, self.endpoint = region, endpoint
        self._client: Any = None
        self._ctx: Any = None

    async def _kms(self) -> Any:
        if self._client is None:
            import aioboto3

            from gateway.awsconfig import DEFAULT_POLICY

            self._ctx = aioboto3.Session().client(
                "kms", region_name=self.region, endpoint_url=self.endpoint, config=DEFAULT_POLICY.config()
            )
            self._client = await self._ctx.__aenter__()
        return self._client

    async def close(self) -> None:
        if self._ctx is not None:
            await self._ctx.__aexit__(None, None, None)

    async def wrap(self, dk: bytes) -> dict[str, str]:
        resp = await (await self._kms()).encrypt(KeyId=self.id, Plaintext=dk)
        return {
            "kind": self.kind,
            "id": self.id,
            "wrapped": base64.b64encode(resp["CiphertextBlob"]).decode(),
        }

    async def unwrap(self, kek: dict[str, str]) -> bytes:
        resp = await (await self._kms()).decrypt(CiphertextBlob=base64.b64decode(kek["wrapped"]))
        return bytes(resp["Plaintext"])


class RsaPublicKek:
    """An RSA public key (OAEP-SHA256): the gateway can write, only the private key's holder can read."""

    kind = "rsa-oaep"

    def __init__(self, path: str) -> None:
        key = serialization.load_pem_public_key(Path(path).read_bytes())
        if not isinstance(key, rsa.RSAPublicKey) or key.key_size < 2048:
            raise ValueError("an rsa KEK is an RSA public key of at least 2048 bits (PEM)")
        self.key = key
        der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        self.id = hashlib.sha256(der).hexdigest()[:16]

    async def wrap(self, dk: bytes) -> dict[str, str]:
        return {
            "kind": self.kind,
            "id": self.id,
            "wrapped": base64.b64encode(self.key.encrypt(dk, OAEP)).decode(),
        }

    async def unwrap(self, kek: dict[str, str]) -> bytes:
        raise StorageError("this storage is encrypted to a public key: read it with `gateway decrypt`")


Kek = LocalKek | KmsKek | RsaPublicKek


def kek_from(spec: str, region: str | None = None, endpoint: str | None = None) -> Kek:
    kind, _, rest = spec.partition(":")
    if kind == "local" and rest:
        return LocalKek(rest)
    if kind == "kms" and rest:
        return KmsKek(rest, region, endpoint)
    if kind == "rsa" and rest:
        return RsaPublicKek(rest)
    raise ValueError("kek is local:/path/to/key, kms:<key id or arn> or rsa:/path/to/public.pem")
