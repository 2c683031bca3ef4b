"""How the S3 and DynamoDB adapters call AWS: one timeout and retry policy, set in one place.

Both adapters must give up on a stalled backend at the same, configured moment: a gateway that waits
botocore's default 60 s per attempt holds client connections (and part buffers) for minutes while S3 or
DynamoDB is in trouble. Retries use botocore's *standard* mode — exponential backoff with jitter, on
throttling, 5xx, connection resets and timeouts — bounded by ``max_attempts`` per call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiobotocore.config import AioConfig

from gateway.config import Settings


@dataclass(frozen=True)
class CallPolicy:
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    max_attempts: int = 4

    @classmethod
    def of(cls, settings: Settings) -> CallPolicy:
        return cls(
            connect_timeout=settings.backend_connect_timeout,
            read_timeout=settings.backend_read_timeout,
            max_attempts=settings.backend_max_attempts,
        )

    def config(self, **extra: Any) -> AioConfig:
        return AioConfig(
            retries={"total_max_attempts": self.max_attempts, "mode": "standard"},
            connect_timeout=self.connect_timeout,
            read_timeout=self.read_timeout,
            **extra,
        )


DEFAULT_POLICY = CallPolicy()
