"""Envelope encryption as a storage wrapper: the store sees ciphertext, everything above sees plaintext.

Each object gets a random 256-bit data key; its content is encrypted in fixed-size chunks with
AES-256-GCM, each chunk independently decryptable, so a Range read decrypts only the chunks it covers
(at most one extra chunk read at each end). The data key is wrapped by a key-encryption key (KEK):
a local key file, AWS KMS, or an RSA public key whose private half the gateway never holds (then the
storage is write-only here and ``gateway decrypt --key private.pem`` reads what it exported).

Format (docs/encryption.md):

    "GWENC1\\n" | u32 header length | header (JSON) | chunk 0 | chunk 1 | … | chunk n-1
    header:  {"v": 1, "alg": "AES-256-GCM", "chunk": C, "object": b64(16 random bytes),
              "kek": {"kind": "local|kms|rsa-oaep", "id": …, "wrapped": b64(wrapped data key)}}
    chunk i: AES-256-GCM(data key, nonce = 0x00000000 || u64be(i),
                         aad = object || u64be(i) || (0x01 if i is the last chunk else 0x00))
             = ciphertext (C bytes, fewer for the last chunk) || 16-byte tag

The nonce never repeats under one data key (one key per object, one index per chunk). Binding each chunk
to the object and its index stops reordering and splicing; the last-chunk flag stops truncation at a
chunk boundary (a shortened object ends on a chunk not flagged last, which fails). An empty object is one
empty, flagged chunk. Any tag failure raises: a tampered object fails its download, never returns wrong
bytes. Sizes, CRC32 and SHA-256 in the catalog stay those of the plaintext (they are computed before the
store). Presigning, resumable writes and server-side moves are not offered by this wrapper: a presigned
URL would hand out ciphertext.
"""

from __future__ import annotations

import base64
import collections
import json
import os
import struct
from collections.abc import AsyncIterator, Sequence
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from gateway.errors import GatewayError, StorageError
from gateway.ports import BlobEntry, BlobInventory, BlobReader, BlobStore, Sized, WriteResult
from gateway.storage.keks import OAEP, Kek, KmsKek

MAGIC = b"GWENC1\n"
CHUNK = 64 * 1024
TAG = 16
PREFIX = len(MAGIC) + 4


class Tampered(StorageError):
    code = "content_tampered"


def _nonce(i: int) -> bytes:
    return b"\0\0\0\0" + struct.pack(">Q", i)


def _aad(obj: bytes, i: int, last: bool) -> bytes:
    return obj + struct.pack(">Q", i) + (b"\x01" if last else b"\x00")


# -- the store ---------------------------------------------------------------------------------------
class EnvelopeStore:
    """A BlobStore (and BlobInventory, when the inner one is) that encrypts what it stores."""

    def __init__(self, inner: BlobStore, kek: Kek, *, chunk: int = CHUNK, old: Sequence[Kek] = ()) -> None:
        self.inner = inner
        self.kek = kek
        self.keks = {k.id: k for k in (*old, kek)}  # unwrapping: the key that wrapped it (rotation)
        self.chunk = chunk
        self._headers: collections.OrderedDict[str, tuple[dict[str, Any], int, bytes, int]] = (
            collections.OrderedDict()
        )
        if not isinstance(inner, Sized):
            raise ValueError("envelope encryption needs a store that can tell an object's size")
        self.sized: Sized = inner

    async def start(self) -> None:
        await self.inner.start()

    async def close(self) -> None:
        if isinstance(self.kek, KmsKek):
            await self.kek.close()
        await self.inner.close()

    async def init(self) -> None:
        await self.inner.init()

    async def ping(self) -> None:
        await self.inner.ping()

    async def exists(self, key: str) -> bool:
        return await self.inner.exists(key)

    async def delete(self, key: str) -> None:
        self._headers.pop(key, None)
        await self.inner.delete(key)

    async def write(self, key: str, chunks: AsyncIterator[bytes], *, size_hint: int | None) -> WriteResult:
        dk, obj = AESGCM.generate_key(bit_length=256), os.urandom(16)
        header = {
            "v": 1,
            "alg": "AES-256-GCM",
            "chunk": self.chunk,
            "object": base64.b64encode(obj).decode(),
            "kek": await self.kek.wrap(dk),
        }
        head = json.dumps(header, separators=(",", ":")).encode()
        plain = 0
        aes = AESGCM(dk)

        async def sealed() -> AsyncIterator[bytes]:
            nonlocal plain
            yield MAGIC + struct.pack(">I", len(head)) + head
            buf, i = bytearray(), 0
            async for piece in chunks:
                plain += len(piece)
                buf += piece
                while len(buf) > self.chunk:  # hold back at least one byte: the last chunk is flagged
                    block = bytes(buf[: self.chunk])
                    del buf[: self.chunk]
                    yield aes.encrypt(_nonce(i), block, _aad(obj, i, False))
                    i += 1
            yield aes.encrypt(_nonce(i), bytes(buf), _aad(obj, i, True))

        stored = None
        if size_hint is not None:
            stored = PREFIX + len(head) + size_hint + TAG * max(1, -(-size_hint // self.chunk))
        result = await self.inner.write(key, sealed(), size_hint=stored)
        return WriteResult(size=plain, etag=result.etag)

    async def _header(self, key: str) -> tuple[dict[str, Any], int, bytes, int]:
        """(header, offset of chunk 0, data key, number of chunks): cached, since a blob key is never
        rewritten. The chunk count comes from the stored size: the last chunk is the one flagged last."""
        found = self._headers.get(key)
        if found is not None:
            self._headers.move_to_end(key)
            return found
        stored = await self.sized.size_of(key)
        raw = await self._read(key, min(4096, stored))
        if not raw.startswith(MAGIC) or len(raw) < PREFIX:
            raise Tampered("stored object is not in the envelope format")
        (size,) = struct.unpack(">I", raw[len(MAGIC) : PREFIX])
        if size > 64 * 1024 or PREFIX + size > stored:
            raise Tampered("envelope header out of bounds")
        if len(raw) < PREFIX + size:
            raw = await self._read(key, PREFIX + size)
        try:
            header = json.loads(raw[PREFIX : PREFIX + size])
            dk = await self._kek_of(header).unwrap(header["kek"])
        except (ValueError, KeyError, InvalidTag) as exc:
            raise Tampered(f"envelope header unreadable: {type(exc).__name__}") from None
        chunks = -(-(stored - PREFIX - size) // (int(header["chunk"]) + TAG))
        if chunks < 1:
            raise Tampered("encrypted object has no chunk")
        entry = (header, PREFIX + size, dk, chunks)
        self._headers[key] = entry
        if len(self._headers) > 1024:
            self._headers.popitem(last=False)
        return entry

    def _kek_of(self, header: dict[str, Any]) -> Kek:
        found = self.keks.get(str(header["kek"].get("id", "")))
        if found is None:
            raise Tampered("this object's data key is wrapped by a key-encryption key not configured here")
        return found

    async def rewrap(self, key: str) -> bool:
        """Key rotation: the data key wrapped again by the current KEK; the chunks are copied as they are
        (no re-encryption). False when the object already uses the current KEK."""
        self._headers.pop(key, None)
        header, base, dk, _ = await self._header(key)
        if header["kek"].get("id") == self.kek.id:
            return False
        header = header | {"kek": await self.kek.wrap(dk)}
        head = json.dumps(header, separators=(",", ":")).encode()
        stored = await self.sized.size_of(key)
        body = await self.inner.open(key, base, stored - base)

        async def rewritten() -> AsyncIterator[bytes]:
            yield MAGIC + struct.pack(">I", len(head)) + head
            async for part in body:
                yield part

        try:
            await self.inner.write(key, rewritten(), size_hint=PREFIX + len(head) + stored - base)
        finally:
            await body.aclose()
            self._headers.pop(key, None)
        return True

    async def _read(self, key: str, n: int) -> bytes:
        reader = await self.inner.open(key, 0, n)
        raw = b""
        try:
            async for part in reader:
                raw += part
        finally:
            await reader.aclose()
        return raw

    async def open(self, key: str, offset: int = 0, length: int | None = None) -> BlobReader:
        header, base, dk, chunks = await self._header(key)
        c = int(header["chunk"])
        obj = base64.b64decode(header["object"])
        first = min(offset // c, chunks - 1)
        start = base + first * (c + TAG)
        if length is None:
            inner = await self.inner.open(key, start, None)
        else:
            last = min((offset + max(length, 1) - 1) // c, chunks - 1)
            if last == chunks - 1:  # to the real end: the last chunk may be short
                end = await self.sized.size_of(key)
            else:
                end = base + (last + 1) * (c + TAG)
            inner = await self.inner.open(key, start, end - start)
        return _Reader(inner, AESGCM(dk), obj, c, first, offset - first * c, length, chunks - 1)


class _Reader:
    def __init__(
        self,
        inner: BlobReader,
        aes: AESGCM,
        obj: bytes,
        c: int,
        first: int,
        skip: int,
        want: int | None,
        final: int,
    ):
        self.inner, self.aes, self.obj, self.c = inner, aes, obj, c
        self.i, self.skip, self.want, self.final = first, skip, want, final
        self._source = inner.__aiter__()
        self._buf = bytearray()
        self._ended = False
        self._done = False

    def __aiter__(self) -> _Reader:
        return self

    async def _fill(self, n: int) -> None:
        while len(self._buf) < n and not self._ended:
            try:
                self._buf += await self._source.__anext__()
            except StopAsyncIteration:
                self._ended = True

    async def __anext__(self) -> bytes:
        while not self._done:
            sealed = self.c + TAG
            await self._fill(sealed)
            if not self._buf:
                raise Tampered("encrypted object ends before its last chunk")
            is_last = self.i == self.final  # from the stored size: a shortened object fails here
            block = bytes(self._buf[:sealed])
            del self._buf[:sealed]
            try:
                plain = self.aes.decrypt(_nonce(self.i), block, _aad(self.obj, self.i, is_last))
            except InvalidTag:
                raise Tampered("an encrypted chunk failed authentication") from None
            self.i += 1
            if is_last:
                self._done = True
            if self.skip:
                plain, self.skip = plain[self.skip :], 0
            if self.want is not None:
                plain = plain[: self.want]
                self.want -= len(plain)
                if self.want <= 0:
                    self._done = True
            if plain:
                return plain
        await self.aclose()
        raise StopAsyncIteration

    async def aclose(self) -> None:
        await self.inner.aclose()


class EnvelopeInventory(EnvelopeStore):
    """The same, for stores that can list what they hold (gc, sync): sizes listed are stored sizes."""

    def list_blobs(self, prefix: str) -> AsyncIterator[BlobEntry]:
        assert isinstance(self.inner, BlobInventory)
        return self.inner.list_blobs(prefix)

    async def abort_stale_uploads(self, older_than: float, keep: Any = None) -> int:
        assert isinstance(self.inner, BlobInventory)
        return await self.inner.abort_stale_uploads(older_than, keep)


def envelope(inner: BlobStore, kek: Kek, old: Sequence[Kek] = ()) -> EnvelopeStore:
    kind = EnvelopeInventory if isinstance(inner, BlobInventory) else EnvelopeStore
    return kind(inner, kek, old=old)


def decrypt_file(
    data_in: Any, data_out: Any, *, private_key_pem: bytes | None = None, local_key: bytes | None = None
) -> int:
    """``gateway decrypt``: a whole object from a file (the format above) to a file; its plaintext size."""
    prefix = data_in.read(PREFIX)
    if not prefix.startswith(MAGIC):
        raise GatewayError("not an encrypted object (no envelope header)", code="not_encrypted")
    (size,) = struct.unpack(">I", prefix[len(MAGIC) :])
    header = json.loads(data_in.read(size))
    kek = header["kek"]
    if kek["kind"] == "rsa-oaep" and private_key_pem is not None:
        private = serialization.load_pem_private_key(private_key_pem, password=None)
        assert isinstance(private, rsa.RSAPrivateKey)
        dk = private.decrypt(base64.b64decode(kek["wrapped"]), OAEP)
    elif kek["kind"] == "local" and local_key is not None:
        blob = base64.b64decode(kek["wrapped"])
        dk = AESGCM(local_key).decrypt(blob[:12], blob[12:], b"gateway-dek")
    else:
        raise GatewayError(
            f"this object's key is wrapped by {kek['kind']!r}: give that key", code="wrong_key"
        )
    aes, obj, c = AESGCM(dk), base64.b64decode(header["object"]), int(header["chunk"])
    sealed, i, total = c + TAG, 0, 0
    block = data_in.read(sealed)
    while True:
        after = data_in.read(sealed)
        last = not after
        try:
            plain = aes.decrypt(_nonce(i), block, _aad(obj, i, last))
        except InvalidTag:
            raise GatewayError(
                f"chunk {i} failed authentication: the file was altered", code="tampered"
            ) from None
        data_out.write(plain)
        total += len(plain)
        if last:
            return total
        block, i = after, i + 1
