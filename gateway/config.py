"""Settings, read once at start-up.

Everything is an environment variable with the ``GATEWAY_`` prefix so the same image runs anywhere
(12-factor); a TOML file named by ``GATEWAY_CONFIG_FILE`` may hold the same keys for people who prefer
files. Environment wins over the file. Backends are picked by URL scheme so that switching from the
embedded default to S3 + DynamoDB is a configuration change, never a code change.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

MiB = 1024 * 1024
GiB = 1024 * MiB
DAY = 86400


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    storage_url: str = "file://./data/blobs"
    catalog_url: str = "sqlite:///./data/catalog.db"
    public_base_url: str | None = Field(
        default=None, description="Base URL used in token links; derived from the request when unset."
    )

    max_upload_size: int = Field(default=64 * GiB, gt=0, description="Largest accepted body, bytes.")
    max_json_upload_size: int = Field(default=16 * MiB, gt=0, description="Largest JSON (base64) body.")
    default_token_expiry: int = Field(default=DAY, gt=0, description="Seconds, when `expiry` is omitted.")
    max_token_expiry: int = Field(default=5 * 365 * DAY, gt=0, description="Largest accepted `expiry`, s.")
    max_downloads_limit: int = Field(default=1_000_000_000, gt=0)

    s3_part_size: int = Field(default=8 * MiB, ge=5 * MiB, le=5 * GiB)
    s3_parts_in_flight: int = Field(default=2, ge=1, le=64)
    read_chunk_size: int = Field(default=1 * MiB, ge=4096)

    redirect_downloads: bool = Field(
        default=False, description="Token downloads answer 302 to a presigned storage URL (S3 only)."
    )
    presign_max_seconds: int = Field(default=300, gt=0, le=7 * DAY, description="Cap on presigned URLs.")
    sweep_interval: float = Field(
        default=60.0, gt=0, description="Seconds between retention sweeps (expired assets and tokens)."
    )
    expired_token_grace: int = Field(
        default=7 * DAY, ge=0, description="Expired tokens answer 410 this long before being purged."
    )

    auto_init: bool = Field(
        default=False, description="Create bucket/table on start (the embedded backends always do)."
    )

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

    @field_validator("public_base_url")
    @classmethod
    def _strip_slash(cls, v: str | None) -> str | None:
        return v.rstrip("/") if v else v

    @model_validator(mode="after")
    def _check(self) -> Settings:
        if self.default_token_expiry > self.max_token_expiry:
            raise ValueError("default_token_expiry must not exceed max_token_expiry")
        return self

    def redacted(self) -> dict[str, Any]:
        """Settings safe to log: URLs lose any userinfo."""
        from urllib.parse import urlsplit, urlunsplit

        out = self.model_dump()
        for key in ("storage_url", "catalog_url"):
            parts = urlsplit(out[key])
            if parts.username or parts.password:
                host = parts.hostname or ""
                if parts.port:
                    host = f"{host}:{parts.port}"
                out[key] = urlunsplit(parts._replace(netloc=host))
        return out
