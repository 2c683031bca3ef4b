"""The operator's event subscriptions, as configured (``[event_sinks.<name>]`` in the TOML file).

A sink is a webhook URL (signed per Standard Webhooks with its ``secret``), an SNS topic
(``sns:arn:aws:sns:…``) or an SQS queue (``sqs:https://sqs.…/queue``). Configured sinks see every
owner's events; owners subscribe to their own through ``/webhooks`` (HTTP targets only: an owner must
never make the gateway publish to the operator's AWS resources).
"""

from __future__ import annotations

import base64
import binascii

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

SECRET_PREFIX = "whsec_"  # noqa: S105 (a prefix, not a secret)


def secret_key(secret: str) -> bytes:
    """The HMAC key of a ``whsec_…`` secret (base64 after the prefix), as Standard Webhooks defines it."""
    body = secret.removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("a webhook secret is 'whsec_' followed by base64") from None
    if not 24 <= len(key) <= 64:
        raise ValueError("a webhook secret's key is 24 to 64 bytes")
    return key


class SinkSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = Field(description="https://… (webhook), sns:<topic arn> or sqs:<queue url>")
    secret: SecretStr | None = Field(default=None, description="whsec_… (webhooks only)")
    types: list[str] = Field(default=["*"], description="Event types this sink receives ('*': all).")
    region: str | None = Field(default=None, description="SNS/SQS region.")
    endpoint: str | None = Field(default=None, description="SNS/SQS endpoint (tests, LocalStack).")

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("https://", "http://", "sns:arn:", "sqs:https://", "sqs:http://")):
            raise ValueError("a sink is https://…, sns:arn:aws:sns:… or sqs:https://…")
        return value

    @model_validator(mode="after")
    def _secret(self) -> SinkSpec:
        is_http = self.url.startswith(("https://", "http://"))
        if is_http and self.secret is None:
            raise ValueError("a webhook sink needs a secret (whsec_…): receivers verify with it")
        if self.secret is not None:
            secret_key(self.secret.get_secret_value())
        return self
