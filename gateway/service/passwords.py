"""Password-protected links: argon2id hashes, verification off the event loop, guessing throttled.

Only an argon2id hash of a link's password is stored (argon2-cffi, its default parameters: about a
sixth of a second on these machines, so hashing and verifying run on a worker thread). Wrong guesses
are counted per link and UTC minute in the catalog with one conditional write each, so the limit
(``password_attempts_per_minute``, default 10) holds across every gateway process; past it the link
answers 429 until the minute ends, even for the right password, and nothing is counted as a download.

The share page (``/s/<token>``) asks for the password once, then hands the browser a *grant*: an
HMAC over the link's hash and an expiry, good for ten minutes, carried in the page's download form. So
the password is never echoed back into a page, no cookie carries authority (nothing for CSRF to ride
on), and any gateway process can check the grant (the key derives from the catalog's shared secret).
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import hmac
import math
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from gateway.errors import BadRequest, PasswordRequired, TooManyRequests
from gateway.records import Token
from gateway.service.context import Backends
from gateway.service.params import TokenRequest

MAX_PASSWORD = 256
GRANT_SECONDS = 600


class LinkPasswords:
    def __init__(self, backends: Backends) -> None:
        self.b = backends
        self._hasher = PasswordHasher()
        root = backends.client_secret or secrets.token_bytes(32)  # empty only in hand-built test setups
        self._grant_key = hmac.new(root, b"share-page-grant", hashlib.sha256).digest()

    @staticmethod
    def validate(raw: str | None) -> str | None:
        """A password as given when minting (None or empty: no password)."""
        if raw is None or raw == "":
            return None
        if len(raw) > MAX_PASSWORD or any(ord(c) < 0x20 or ord(c) == 0x7F for c in raw):
            raise BadRequest(
                f"password must be 1 to {MAX_PASSWORD} characters without control characters",
                code="invalid_password",
            )
        return raw

    async def protect(self, req: TokenRequest | None, password: str | None) -> TokenRequest | None:
        """``req`` (if a link is wanted at all) with the password's hash attached."""
        return None if req is None else await self.protected(req, password)

    async def protected(self, req: TokenRequest, password: str | None) -> TokenRequest:
        """``req`` with the password's hash attached (hashing runs on a worker thread)."""
        password = self.validate(password)
        if password is None:
            return req
        digest = await asyncio.to_thread(self._hasher.hash, password)
        return dataclasses.replace(req, password_hash=digest)

    async def check(self, token: Token, presented: str | None) -> None:
        """Pass, or 401 (no/wrong password) / 429 (too many wrong guesses this minute)."""
        if token.password_hash is None:
            return
        if presented is None:
            raise PasswordRequired(
                "this link needs a password (HTTP Basic, any user name, or Share-Password)"
            )
        now = self.b.clock()
        minute = int(now // 60)
        retry_after = math.ceil((minute + 1) * 60 - now)
        limit = self.b.settings.password_attempts_per_minute
        if await self.b.catalog.wrong_guesses(token.token_hash, minute) >= limit:
            raise TooManyRequests("too many wrong passwords for this link; wait", retry_after=retry_after)
        try:
            await asyncio.to_thread(self._hasher.verify, token.password_hash, presented)
            return
        except (VerificationError, InvalidHashError):
            pass
        if not await self.b.catalog.add_wrong_guess(token.token_hash, minute, limit):
            raise TooManyRequests("too many wrong passwords for this link; wait", retry_after=retry_after)
        raise PasswordRequired("wrong password for this link", code="wrong_password")

    def grant(self, token: Token) -> str:
        """Proof, for the share page's download form, that this link's password was just given."""
        expires = int(self.b.clock()) + GRANT_SECONDS
        return f"{expires}.{self._sign(token.token_hash, expires)}"

    def granted(self, token: Token, grant: str) -> bool:
        raw_expiry, _, signature = grant.partition(".")
        if not raw_expiry.isascii() or not raw_expiry.isdigit() or len(raw_expiry) > 12:
            return False
        expires = int(raw_expiry)
        if expires <= self.b.clock():
            return False
        return hmac.compare_digest(
            signature.encode("utf-8", "replace"), self._sign(token.token_hash, expires).encode()
        )

    def _sign(self, token_hash: str, expires: int) -> str:
        return hmac.new(self._grant_key, f"{token_hash}:{expires}".encode(), hashlib.sha256).hexdigest()
