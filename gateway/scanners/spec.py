"""The configured scanners (``scanners = [...]`` in the TOML file; docs/scanning.md).

[[scanners]]
kind = "clamav"
address = "tcp://127.0.0.1:3310"          # or unix:///run/clamav/clamd.ctl
stream_max_bytes = 104857600              # clamd's StreamMaxLength: bigger versions end in `error`

[[scanners]]
kind = "webhook"                          # a moderation service (e.g. safe-for-work checks)
url = "https://moderation.internal/verdict"
secret = "whsec_…"                        # requests are signed like our webhooks
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

MiB = 1024 * 1024


class ScannerSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["clamav", "webhook"]
    name: str = Field(default="", description="shown in scan details; default: the kind")
    address: str | None = Field(default=None, description="clamd: tcp://host:port or unix:///path")
    stream_max_bytes: int = Field(default=100 * MiB, gt=0, description="clamd's StreamMaxLength")
    url: str | None = Field(default=None, description="webhook: where verdicts are asked")
    secret: SecretStr | None = Field(default=None, description="webhook: whsec_… to sign requests")
    timeout: float = Field(default=60.0, gt=0, le=3600, description="seconds one scan may take")
    content_types: list[str] = Field(default=[], description="only these types (prefixes like image/)")

    @model_validator(mode="after")
    def _complete(self) -> ScannerSpec:
        if self.kind == "clamav":
            if not self.address or not self.address.startswith(("tcp://", "unix://")):
                raise ValueError("a clamav scanner needs address = tcp://host:port or unix:///path")
        elif not self.url or not self.url.startswith(("https://", "http://")):
            raise ValueError("a webhook scanner needs url = https://…")
        return self

    @property
    def label(self) -> str:
        return self.name or self.kind

    def wants(self, content_type: str) -> bool:
        return not self.content_types or any(content_type.startswith(p) for p in self.content_types)
