"""Settings, read once at start-up.

Everything is an environment variable with the ``GATEWAY_`` prefix so the same image runs anywhere
(12-factor); a TOML file named by ``GATEWAY_CONFIG_FILE`` may hold the same keys for people who prefer
files. Environment wins over the file. Backends are picked by URL scheme so that switching from the
embedded default to S3 + DynamoDB is a configuration change, never a code change.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from gateway.scanners.spec import ScannerSpec
from gateway.sinks.spec import SinkSpec
from gateway.topology import PrincipalSpec, ProfileSpec, StorageSpec, TenantSpec, validate_topology

StrList = Annotated[list[str], NoDecode]

MiB = 1024 * 1024
GiB = 1024 * MiB
DAY = 86400
MIN_HMAC_SECRET = 32


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    workers: str = Field(
        default="1", description="Server processes sharing the port (SO_REUSEPORT); 'auto': one per core."
    )
    storage_url: str = "file://./data/blobs"
    catalog_url: str = "sqlite:///./data/catalog.db"
    public_base_url: str | None = Field(
        default=None, description="Base URL used in token links; derived from the request when unset."
    )
    download_base_url: str | None = Field(
        default=None,
        description="A separate origin for share-link downloads (no shared cookies with the API/pages).",
    )

    max_upload_size: int = Field(default=64 * GiB, gt=0, description="Largest accepted body, bytes.")
    max_json_upload_size: int = Field(default=16 * MiB, gt=0, description="Largest JSON (base64) body.")
    default_token_expiry: int = Field(default=DAY, gt=0, description="Seconds, when `expiry` is omitted.")
    max_token_expiry: int = Field(default=5 * 365 * DAY, gt=0, description="Largest accepted `expiry`, s.")
    max_downloads_limit: int = Field(default=1_000_000_000, gt=0)
    open_upload_links: bool = Field(
        default=True, description="In open mode (no credentials configured), anyone may create upload links."
    )
    resumable_expiry: int = Field(
        default=DAY,
        gt=0,
        le=90 * DAY,
        description="Seconds an unfinished tus upload lives (`Upload-Expires`); then it is reclaimed.",
    )
    resume_window: int = Field(
        default=3600,
        gt=0,
        le=7 * DAY,
        description="Seconds a client may resume or segment one counted download (from its last request).",
    )
    download_history_days: int = Field(
        default=30, ge=0, le=3650, description="Days a link's download history is kept (0: not recorded)."
    )
    password_attempts_per_minute: int = Field(
        default=10, ge=1, le=1000, description="Wrong password guesses per link per minute before 429."
    )
    max_asset_retention: int = Field(
        default=100 * 365 * DAY, gt=0, description="Largest accepted `expires` (asset retention), seconds."
    )

    s3_part_size: int = Field(default=8 * MiB, ge=5 * MiB, le=5 * GiB)
    s3_parts_in_flight: int = Field(default=2, ge=1, le=64)
    read_chunk_size: int = Field(default=1 * MiB, ge=4096)
    backend_connect_timeout: float = Field(
        default=5.0, gt=0, description="Seconds to connect to S3/DynamoDB."
    )
    backend_read_timeout: float = Field(
        default=30.0, gt=0, description="Seconds an S3/DynamoDB call may wait for a byte before a retry."
    )
    backend_max_attempts: int = Field(
        default=4, ge=1, le=10, description="Attempts per S3/DynamoDB call (backoff with jitter between)."
    )

    redirect_downloads: bool = Field(
        default=False, description="Token downloads answer 302 to a presigned storage URL (S3 only)."
    )
    presign_max_seconds: int = Field(
        default=15,
        gt=0,
        le=7 * DAY,
        description="Lifetime cap of a redirect's presigned URL: anyone holding it may fetch it until then.",
    )
    sweep_interval: float = Field(
        default=60.0, gt=0, description="Seconds between retention sweeps (expired assets and tokens)."
    )
    expired_token_grace: int = Field(
        default=7 * DAY, ge=0, description="Expired tokens answer 410 this long before being purged."
    )

    # -- secured mode (any key or JWT verifier configured) -----------------------------------------
    api_keys: StrList = Field(
        default=[], description="'name:sha256hex' entries (JSON list or comma-separated); see `gateway keys`."
    )
    api_keys_file: str | None = Field(default=None, description="File with one 'name:sha256hex' per line.")
    jwt_algorithms: StrList = Field(
        default=[], description="Pinned JWT algorithms, e.g. HS256 or RS256,ES256."
    )
    jwt_secret: SecretStr | None = None
    jwt_public_key_file: str | None = None
    jwt_jwks_file: str | None = None
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    jwt_leeway: int = Field(default=30, ge=0, le=300)
    jwt_metadata_claims: StrList = Field(default=[], description="JWT claims copied into asset metadata.")
    max_list_limit: int = Field(default=1000, ge=1)

    cors_origins: StrList = Field(default=[], description="Origins allowed by CORS ('*' for any).")
    header_timeout: float = Field(
        default=30.0, gt=0, description="Seconds a connection may take to send its request headers (or idle)."
    )
    body_idle_timeout: float = Field(
        default=60.0, gt=0, description="Seconds a request body may stall between chunks before 408."
    )
    trusted_proxies: StrList = Field(
        default=[], description="CIDRs whose Forwarded / X-Forwarded-For headers are believed."
    )
    rate_limit_uploads: int = Field(
        default=0, ge=0, description="Uploads per minute per client address (open) or principal; 0: off."
    )
    rate_limit_link_downloads: int = Field(
        default=0, ge=0, description="Link downloads per minute per client address; 0: off."
    )
    metrics_public: bool = Field(
        default=True, description="Serve /metrics without credentials in secured mode (false: bearer needed)."
    )
    owner_aliases: StrList = Field(
        default=[],
        description="'principal=owner' entries: keep owners of data written before principal namespaces.",
    )
    health_cache_seconds: float = Field(
        default=2.0,
        ge=0,
        le=60,
        description="Seconds a /healthcheck probe of the backends is reused (0: never).",
    )
    shutdown_grace: float = Field(
        default=30.0, ge=0, description="On SIGTERM, seconds in-flight transfers get to finish."
    )
    log_level: str = Field(default="INFO", description="DEBUG, INFO, WARNING or ERROR (any case).")

    auto_init: bool = Field(
        default=False, description="Create bucket/table on start (the embedded backends always do)."
    )

    # -- storage topology (gateway/topology.py, docs/storage-topology.md); usually in the TOML file --
    storages: dict[str, StorageSpec] = Field(
        default={}, description="Named storages; none: GATEWAY_STORAGE_URL is the storage 'default'."
    )
    default_storage: str = Field(default="default", description="Where versions without a storage live.")
    profiles: dict[str, ProfileSpec] = Field(default={}, description="Profiles: purposes (× regions).")
    default_profile: str = "default"
    default_purpose: str = "general"
    tenants: dict[str, TenantSpec] = Field(default={}, description="Tenants: own storage and/or prefix.")
    principals: dict[str, PrincipalSpec] = Field(
        default={}, description="Per principal id ('key:alice', 'jwt:iss:sub'): tenant, profile, region."
    )
    jwt_tenant_claim: str | None = Field(default=None, description="JWT claim naming the caller's tenant.")
    jwt_profile_claim: str | None = None
    jwt_region_claim: str | None = None
    quota_max_bytes: int | None = Field(default=None, ge=0, description="Default stored bytes per owner.")
    quota_max_assets: int | None = Field(default=None, ge=0, description="Default assets per owner.")
    quota_hold_seconds: int = Field(
        default=86400, gt=0, description="How long a quota hold outlives a dead process (then reconciled)."
    )

    # -- thumbnails (service/thumbnails.py, gateway/imaging.py, docs/media.md) ----------------------------
    thumbnail_presets: dict[str, str] = Field(
        default={"small": "128x128", "medium": "512x512"},
        description="Named sizes ('WxH'), made after each image upload and always allowed.",
    )
    thumbnail_eager: bool = Field(default=True, description="Make the presets right after an image upload.")
    thumbnail_on_demand: bool = Field(default=True, description="Allow sizes other than the presets.")
    thumbnail_max_dimension: int = Field(default=2048, ge=16, le=8192, description="Largest w or h asked.")
    thumbnail_max_pixels: int = Field(
        default=100_000_000, gt=0, description="Largest source image (width × height) decoded."
    )
    thumbnail_max_source_bytes: int = Field(default=64 * MiB, gt=0, description="Largest source file read.")
    thumbnail_concurrency: int = Field(default=2, ge=1, le=64, description="Thumbnails rendered at once.")

    # -- scanning (service/scanning.py, gateway/scanners/, docs/scanning.md) ------------------------------
    scanners: list[ScannerSpec] = Field(default=[], description="Scanners run on every new version.")
    scan_required: bool = Field(
        default=False, description="Serve only scanned-clean versions (pending: 409, error: 503)."
    )

    # -- events (service/events.py, service/dispatch.py, docs/events.md) ---------------------------------
    events: bool = Field(default=True, description="Write events (the outbox); false: none are recorded.")
    event_sinks: dict[str, SinkSpec] = Field(default={}, description="The operator's subscriptions.")
    webhook_retry_for: int = Field(
        default=DAY,
        gt=0,
        le=30 * DAY,
        description="Seconds a delivery is retried before it is marked failed.",
    )
    webhook_retry_base: float = Field(default=5.0, gt=0, description="Seconds before the first retry.")
    webhook_retry_max_delay: float = Field(default=3600.0, gt=0, description="Longest wait between retries.")
    webhook_timeout: float = Field(default=10.0, gt=0, le=120, description="Seconds a receiver may take.")
    webhook_allow_private: bool = Field(
        default=False, description="Allow loopback / private-network webhook targets (never link-local)."
    )
    webhook_history_days: int = Field(
        default=7, ge=1, le=90, description="Days finished deliveries are listed."
    )
    outbox_poll_interval: float = Field(default=1.0, gt=0, le=60, description="Seconds between outbox polls.")
    outbox_lease: float = Field(default=60.0, gt=0, description="Seconds a process holds an outbox entry.")
    webhook_concurrency: int = Field(default=8, ge=1, le=256, description="Deliveries in flight per process.")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = os.environ.get("GATEWAY_CONFIG_FILE")
        if config_file:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=Path(config_file)))
        return tuple(sources)

    @field_validator(
        "api_keys",
        "jwt_algorithms",
        "jwt_metadata_claims",
        "cors_origins",
        "owner_aliases",
        "trusted_proxies",
        mode="before",
    )
    @classmethod
    def _str_list(cls, v: Any) -> Any:
        if isinstance(v, str):
            text = v.strip()
            if text.startswith("["):
                return json.loads(text)
            return [p.strip() for p in text.split(",") if p.strip()]
        return v

    @field_validator("workers")
    @classmethod
    def _workers(cls, value: str) -> str:
        value = str(value).strip().lower()
        if value != "auto" and not (value.isdecimal() and 1 <= int(value) <= 256):
            raise ValueError("must be a number of processes from 1 to 256, or 'auto'")
        return value

    @property
    def worker_count(self) -> int:
        return (os.cpu_count() or 1) if self.workers == "auto" else int(self.workers)

    @field_validator("log_level")
    @classmethod
    def _log_level(cls, value: str) -> str:
        level = value.strip().upper()
        if level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
            raise ValueError("must be DEBUG, INFO, WARNING or ERROR")
        return level

    @field_validator("trusted_proxies")
    @classmethod
    def _cidrs(cls, v: list[str]) -> list[str]:
        import ipaddress

        for cidr in v:
            try:
                ipaddress.ip_network(cidr, strict=False)
            except ValueError:
                raise ValueError(f"not a CIDR: {cidr[:60]!r}") from None
        return v

    @field_validator("public_base_url", "download_base_url")
    @classmethod
    def _strip_slash(cls, v: str | None) -> str | None:
        return v.rstrip("/") if v else v

    @model_validator(mode="after")
    def _check(self) -> Settings:
        if self.default_token_expiry > self.max_token_expiry:
            raise ValueError("default_token_expiry must not exceed max_token_expiry")
        validate_topology(
            self.storages,
            self.profiles,
            self.tenants,
            self.principals,
            self.default_storage,
            self.default_profile,
            self.default_purpose,
        )
        verifiers = [self.jwt_secret, self.jwt_public_key_file, self.jwt_jwks_file]
        if any(v is not None for v in verifiers):
            algs = {a.upper() for a in self.jwt_algorithms}
            if not algs or "NONE" in algs:
                raise ValueError("set GATEWAY_JWT_ALGORITHMS (pinned; 'none' is never accepted)")
            hmac_algs = {a for a in algs if a.startswith("HS")}
            if hmac_algs and hmac_algs != algs:
                raise ValueError("do not mix HMAC and public-key JWT algorithms (algorithm confusion)")
            if self.jwt_secret is not None and (self.jwt_public_key_file or self.jwt_jwks_file):
                raise ValueError(
                    "set either GATEWAY_JWT_SECRET (HS*) or GATEWAY_JWT_PUBLIC_KEY_FILE / "
                    "GATEWAY_JWT_JWKS_FILE (RS*/ES*), not both"
                )
            if hmac_algs and self.jwt_secret is None:
                raise ValueError("HS* algorithms need GATEWAY_JWT_SECRET")
            if hmac_algs and self.jwt_secret is not None:
                if len(self.jwt_secret.get_secret_value().encode("utf-8")) < MIN_HMAC_SECRET:
                    raise ValueError(
                        f"GATEWAY_JWT_SECRET must be at least {MIN_HMAC_SECRET} bytes for HS* (RFC 7518 3.2)"
                    )
            if not hmac_algs and self.jwt_public_key_file is None and self.jwt_jwks_file is None:
                raise ValueError(
                    "RS*/ES* algorithms need GATEWAY_JWT_PUBLIC_KEY_FILE or GATEWAY_JWT_JWKS_FILE"
                )
        return self

    def redacted(self) -> dict[str, Any]:
        """Settings safe to log: URLs lose any userinfo."""
        from urllib.parse import urlsplit, urlunsplit

        out = self.model_dump()

        def strip(url: str) -> str:
            parts = urlsplit(url)
            if parts.username or parts.password:
                host = parts.hostname or ""
                if parts.port:
                    host = f"{host}:{parts.port}"
                return urlunsplit(parts._replace(netloc=host))
            return url

        for key in ("storage_url", "catalog_url"):
            out[key] = strip(out[key])
        for spec in out["storages"].values():
            spec["url"] = strip(spec["url"])
        return out


class ConfigError(Exception):
    """A configuration problem, described without any configured value (values may be secrets)."""


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment / config file; a bad value names its variable, never echoes it.

    pydantic's own message repeats the input (``input_value='…'``), which for GATEWAY_JWT_SECRET is the
    secret itself: this is the only place settings are built for a process, and it renders errors
    from their location and message alone.
    """
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        lines = []
        for err in exc.errors(include_input=False, include_url=False, include_context=False):
            where = f"GATEWAY_{str(err['loc'][0]).upper()}: " if err["loc"] else ""
            lines.append(where + str(err["msg"]).removeprefix("Value error, "))
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(lines)) from None
    except (OSError, ValueError) as exc:  # an unreadable or malformed GATEWAY_CONFIG_FILE
        raise ConfigError(f"cannot read the configuration file: {type(exc).__name__}") from None
