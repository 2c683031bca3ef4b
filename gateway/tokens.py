"""Share-token secrets.

A token is 24 random bytes from ``secrets`` (192 bits), base64url without padding: 32 characters, easy
to paste. Only its sha256 is stored, so a leaked catalog (or backup) grants nothing. Lookups go by hash,
which is a constant-time comparison in effect: the secret itself is never compared byte by byte.
"""

from __future__ import annotations

import hashlib
import re
import secrets

TOKEN_BYTES = 24
_SHAPE = re.compile(r"[A-Za-z0-9_-]{20,128}")


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def new_token_id() -> str:
    """Public handle for a token (listing, revoking by id); unrelated to the secret."""
    return secrets.token_hex(8)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def well_formed(token: str) -> bool:
    return _SHAPE.fullmatch(token) is not None
