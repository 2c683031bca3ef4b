"""Storage topology as configured: named storages, profiles × purposes (× regions), tenants, principals.

Why a topology and not one URL: the systems this gateway replaces run on many buckets -- a bucket per
*profile* (``default``, ``govcloud``), *purpose* (general, thumbnails) and *region* (us-east, us-west);
customers who bring their own bucket; tenants isolated by a path in a shared one. The config file names
them once (TOML, docs/storage-topology.md) and everything else refers to storages by name:

    [storages.us-east-general]            url, credentials, sse, storage class, presign, dedup
    [profiles.default]                    default_region, allowed regions through its purposes
    [profiles.default.purposes]           general = "us-east-general" | {us-east = "…", us-west = "…"}
    [tenants.acme]                        storage (a customer's own bucket) and/or prefix; quotas
    [principals."key:alice"]              tenant, profile, region, allowed profiles; quotas

With no ``storages`` table the single ``GATEWAY_STORAGE_URL`` is the storage named ``default`` and the
implicit profile ``default`` sends every purpose there: the one-URL deployment keeps working unchanged.
These are plain pydantic models validated with the settings; resolving a request to a storage is
``service/placement.py``, opening the stores is ``storage/registry.py``.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
PREFIX = re.compile(r"^[A-Za-z0-9_.=-]+(/[A-Za-z0-9_.=-]+)*$")
DEFAULT = "default"
PURPOSES_BUILTIN = ("general", "thumbnails")


def check_name(kind: str, value: str) -> str:
    if not NAME.match(value):
        raise ValueError(f"{kind} names are 1-63 letters, digits, '-', '_' or '.' (got {value[:40]!r})")
    return value


def check_prefix(value: str) -> str:
    """A key prefix: relative, '/'-separated, no empty, '.' or '..' segments; stored with one trailing '/'."""
    value = value.strip("/")
    if not value:
        return ""
    if not PREFIX.match(value) or any(p in (".", "..") for p in value.split("/")):
        raise ValueError(f"prefix {value[:60]!r} must be relative segments of letters, digits, '-_.='")
    return value + "/"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StorageSpec(_Strict):
    url: str = Field(description="s3://bucket/prefix?region=…&endpoint=… or file:///path")
    aws_profile: str | None = Field(default=None, description="Credentials from this AWS config profile.")
    access_key_id_env: str | None = Field(default=None, description="Env var holding the access key id.")
    secret_access_key_env: str | None = None
    session_token_env: str | None = None
    role_arn: str | None = Field(
        default=None, description="STS AssumeRole into this role (customer buckets)."
    )
    external_id: str | None = None
    role_session_name: str = "asset-gateway"
    sts_endpoint: str | None = Field(default=None, description="STS endpoint (default: the S3 endpoint's).")
    sse: Literal["AES256", "aws:kms"] | None = None
    kms_key_id: str | None = None
    storage_class: str | None = None
    presign: bool = Field(default=True, description="Redirect downloads may presign URLs to this storage.")
    dedup: bool = Field(default=False, description="Content-addressed: identical uploads share one blob.")
    gc: bool = Field(default=True, description="`gateway gc` may delete unreferenced objects here.")
    backup: str | None = Field(
        default=None, description="Another storage every committed version is copied to (docs/backup.md)."
    )
    retain: bool = Field(
        default=False, description="As a backup storage: keep copies when their asset is deleted."
    )
    encryption: Literal["envelope"] | None = Field(
        default=None, description="Encrypt every object here (AES-256-GCM chunks; docs/encryption.md)."
    )
    kek: str | None = Field(
        default=None, description="Key-encryption key: local:/path, kms:<key id>, rsa:/path/public.pem"
    )
    old_keks: list[str] = Field(
        default=[],
        description="Previous KEKs, still read while `gateway keys rotate-kek` re-wraps data keys.",
    )
    kms_region: str | None = None
    kms_endpoint: str | None = Field(default=None, description="KMS endpoint (tests, LocalStack).")

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("s3://", "file://")):
            raise ValueError("storage URLs are s3://bucket/prefix?region=… or file:///path")
        return value

    @model_validator(mode="after")
    def _envelope(self) -> StorageSpec:
        if (self.encryption == "envelope") != bool(self.kek):
            raise ValueError("encryption = 'envelope' and kek go together")
        if self.encryption and self.dedup:
            raise ValueError("an encrypted storage cannot be content-addressed (dedup)")
        return self

    @model_validator(mode="after")
    def _consistent(self) -> StorageSpec:
        s3_only = [self.aws_profile, self.access_key_id_env, self.role_arn, self.sse, self.storage_class]
        if self.url.startswith("file://") and any(v is not None for v in s3_only):
            raise ValueError("credentials, sse and storage_class apply to s3:// storages only")
        if (self.access_key_id_env is None) != (self.secret_access_key_env is None):
            raise ValueError("set both access_key_id_env and secret_access_key_env, or neither")
        if self.aws_profile and self.access_key_id_env:
            raise ValueError("choose aws_profile or access_key_id_env, not both")
        if self.external_id and not self.role_arn:
            raise ValueError("external_id needs role_arn")
        if self.kms_key_id and self.sse != "aws:kms":
            raise ValueError("kms_key_id needs sse = 'aws:kms'")
        return self


PurposeTarget = str | dict[str, str]  # one storage, or region -> storage


class ProfileSpec(_Strict):
    default_region: str | None = None
    purposes: dict[str, PurposeTarget] = Field(default_factory=dict)

    def regions(self) -> list[str]:
        out: list[str] = []
        for target in self.purposes.values():
            if isinstance(target, dict):
                out += [r for r in target if r not in out]
        return out


class Quota(_Strict):
    max_bytes: int | None = Field(default=None, ge=0)
    max_assets: int | None = Field(default=None, ge=0)


class TenantSpec(_Strict):
    storage: str | None = Field(default=None, description="The tenant's own storage (all purposes).")
    prefix: str | None = Field(default=None, description="Key prefix; default tenants/<name>/ when shared.")
    profiles: list[str] | None = Field(default=None, description="Profiles allowed (None: any).")
    max_bytes: int | None = Field(default=None, ge=0)
    max_assets: int | None = Field(default=None, ge=0)

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, value: str | None) -> str | None:
        return None if value is None else check_prefix(value)


class PrincipalSpec(_Strict):
    tenant: str | None = None
    profile: str | None = None
    region: str | None = None
    profiles: list[str] | None = Field(default=None, description="Profiles allowed (None: any).")
    max_bytes: int | None = Field(default=None, ge=0)
    max_assets: int | None = Field(default=None, ge=0)


def validate_topology(
    storages: dict[str, StorageSpec],
    profiles: dict[str, ProfileSpec],
    tenants: dict[str, TenantSpec],
    principals: dict[str, PrincipalSpec],
    default_storage: str,
    default_profile: str,
    default_purpose: str,
) -> None:
    """Every name refers to something that exists; raises ValueError naming the first that does not."""
    names = set(storages) or {DEFAULT}
    for name in storages:
        check_name("storage", name)
    if default_storage not in names:
        raise ValueError(f"default_storage {default_storage!r} is not a configured storage")

    def storage(where: str, name: str) -> None:
        if name not in names:
            raise ValueError(f"{where} names an unknown storage {name!r}")

    for sname, stored in storages.items():
        if stored.backup is not None:
            storage(f"storages.{sname}.backup", stored.backup)
            if stored.backup == sname:
                raise ValueError(f"storages.{sname}.backup names the storage itself")
            if stored.dedup:
                raise ValueError(f"storages.{sname}: backups of content-addressed storages are not supported")
    for pname, profile in profiles.items():
        check_name("profile", pname)
        for purpose, target in profile.purposes.items():
            check_name("purpose", purpose)
            if isinstance(target, str):
                storage(f"profiles.{pname}.purposes.{purpose}", target)
                continue
            if not target:
                raise ValueError(f"profiles.{pname}.purposes.{purpose} names no region")
            for region, sname in target.items():
                check_name("region", region)
                storage(f"profiles.{pname}.purposes.{purpose}.{region}", sname)
        regions = profile.regions()
        if regions and profile.default_region is None:
            raise ValueError(f"profiles.{pname} has regions: set its default_region")
        if profile.default_region is not None and profile.default_region not in regions:
            raise ValueError(f"profiles.{pname}.default_region is not one of its regions")
    known_profiles = set(profiles) or {DEFAULT}
    if default_profile not in known_profiles:
        raise ValueError(f"default_profile {default_profile!r} is not a configured profile")
    if profiles and default_purpose not in profiles[default_profile].purposes:
        raise ValueError(f"profile {default_profile!r} has no default purpose {default_purpose!r}")

    def allowed(where: str, listed: list[str] | None) -> None:
        for p in listed or []:
            if p not in known_profiles:
                raise ValueError(f"{where} allows an unknown profile {p!r}")

    for tname, tenant in tenants.items():
        check_name("tenant", tname)
        if tenant.storage is not None:
            storage(f"tenants.{tname}", tenant.storage)
        allowed(f"tenants.{tname}", tenant.profiles)
    for who, spec in principals.items():
        if spec.tenant is not None:
            check_name("tenant", spec.tenant)
        if spec.profile is not None and spec.profile not in known_profiles:
            raise ValueError(f"principals.{who[:40]} names an unknown profile")
        allowed(f"principals.{who[:40]}", spec.profiles)
