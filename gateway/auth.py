"""Who is calling: API keys and JWT bearer tokens, independent of HTTP.

API keys are configured as sha256 hashes only (``gateway keys create`` prints a key once); a presented key
is hashed and compared with every configured hash in constant time. JWTs are verified by PyJWT with the
algorithm list pinned by configuration, so ``alg: none`` and HS/RS confusion are refused by construction
(HMAC and public-key algorithms may not even be configured together). Configured claims travel with the
principal into the metadata of what it uploads.

Principal ids live in separate namespaces so no credential can pose as another kind: an API key named
``alice`` is ``key:alice``, a JWT is ``jwt:<iss>:<sub>`` (``-`` without ``iss``), open mode is ``public``
(no colon, so neither kind can produce it). ``GATEWAY_OWNER_ALIASES`` maps a principal to the bare owner
name it had before namespaces existed (docs/api.md, "Migrating owners").
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt

from gateway.config import Settings
from gateway.errors import Unauthorized
from gateway.topology import NAME

OPEN_OWNER = "public"  # the principal of every request in open mode
KEY_PREFIX = "gw_"


@dataclass(frozen=True)
class Principal:
    id: str
    authenticated: bool
    metadata: dict[str, Any] = field(default_factory=dict)
    # Storage placement carried by a JWT's claims (GATEWAY_JWT_TENANT_CLAIM, …); config entries for the
    # principal id are applied by service/placement.py.
    tenant: str | None = None
    profile: str | None = None
    region: str | None = None


OPEN = Principal(id=OPEN_OWNER, authenticated=False)


def new_api_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_api_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def _parse_key_entry(entry: str) -> tuple[str, str]:
    name, sep, digest = entry.strip().rpartition(":")
    if not sep or not name or len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest.lower()):
        raise ValueError(f"API key entries are 'name:sha256hex' (entry for {name[:40]!r} is not)")
    return name, digest.lower()


class Authenticator:
    def __init__(self, settings: Settings) -> None:
        entries = list(settings.api_keys)
        if settings.api_keys_file:
            lines = Path(settings.api_keys_file).read_text().splitlines()
            entries += [ln for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]
        self._keys = [(name, bytes.fromhex(d)) for name, d in map(_parse_key_entry, entries)]
        self._aliases: dict[str, str] = {}
        for alias in settings.owner_aliases:
            principal, sep, owner = alias.partition("=")
            if not sep or not principal.strip() or not owner.strip():
                raise ValueError("GATEWAY_OWNER_ALIASES entries are 'principal=owner'")
            self._aliases[principal.strip()] = owner.strip()
        self._settings = settings
        self._algorithms = [a.upper() for a in settings.jwt_algorithms]
        self._jwt_key: Any = None
        self._jwks: jwt.PyJWKSet | None = None
        if settings.jwt_secret is not None:
            self._jwt_key = settings.jwt_secret.get_secret_value()
        elif settings.jwt_public_key_file:
            self._jwt_key = Path(settings.jwt_public_key_file).read_text()
        if settings.jwt_jwks_file:
            self._jwks = jwt.PyJWKSet.from_json(Path(settings.jwt_jwks_file).read_text())
        self.uses_jwt = self._jwt_key is not None or self._jwks is not None
        self.secured = bool(self._keys) or self.uses_jwt

    def authenticate(self, authorization: str | None) -> Principal:
        if not self.secured:
            return OPEN
        if not authorization:
            raise Unauthorized("this server needs Authorization: Bearer <api key or JWT>")
        scheme, _, credential = authorization.strip().partition(" ")
        credential = credential.strip()
        if scheme.lower() != "bearer" or not credential:
            raise Unauthorized("use Authorization: Bearer <api key or JWT>")
        if self.uses_jwt and credential.count(".") == 2:
            return self._verify_jwt(credential)
        return self._verify_key(credential)

    def _verify_key(self, key: str) -> Principal:
        presented = hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()
        match = None
        for name, digest in self._keys:  # no early exit: the time does not depend on which key matched
            if hmac.compare_digest(presented, digest):
                match = name
        if match is None:
            raise Unauthorized("invalid credentials")
        return Principal(id=self._owner(f"key:{match}"), authenticated=True)

    def _owner(self, principal_id: str) -> str:
        return self._aliases.get(principal_id, principal_id)

    def _verify_jwt(self, token: str) -> Principal:
        s = self._settings
        try:
            key = self._jwt_key
            if self._jwks is not None:
                kid = jwt.get_unverified_header(token).get("kid")
                key = next((k for k in self._jwks.keys if k.key_id == kid), None)
                if key is None:
                    raise Unauthorized("invalid credentials")
            claims: dict[str, Any] = jwt.decode(
                token,
                key=key,
                algorithms=self._algorithms,
                audience=s.jwt_audience,
                issuer=s.jwt_issuer,
                leeway=s.jwt_leeway,
                options={"require": ["exp", "sub"], "verify_aud": s.jwt_audience is not None},
            )
        except jwt.PyJWTError:
            raise Unauthorized("invalid credentials") from None
        sub, iss = claims.get("sub"), claims.get("iss", "-")
        if (
            not isinstance(sub, str)
            or not sub
            or len(sub) > 256
            or not isinstance(iss, str)
            or len(iss) > 256
        ):
            raise Unauthorized("invalid credentials")
        metadata = {c: claims[c] for c in s.jwt_metadata_claims if c in claims}
        json.dumps(metadata)  # claims came from JSON; keep it that way
        return Principal(
            id=self._owner(f"jwt:{iss}:{sub}"),
            authenticated=True,
            metadata=metadata,
            tenant=_claim(claims, s.jwt_tenant_claim),
            profile=_claim(claims, s.jwt_profile_claim),
            region=_claim(claims, s.jwt_region_claim),
        )


def _claim(claims: dict[str, Any], name: str | None) -> str | None:
    """A placement claim: absent is None; present, it must be a plain name (it becomes part of keys)."""
    if name is None or claims.get(name) is None:
        return None
    value = claims[name]
    if not isinstance(value, str) or not NAME.match(value):
        raise Unauthorized("invalid credentials")
    return value
