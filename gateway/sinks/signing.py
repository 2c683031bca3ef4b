"""Standard Webhooks signatures (https://www.standardwebhooks.com/): what receivers verify.

    webhook-id:        the event id (stable across retries: receivers de-duplicate on it)
    webhook-timestamp: UNIX seconds of this attempt
    webhook-signature: "v1," + base64(HMAC-SHA256(key, f"{id}.{timestamp}.{body}"))

where ``key`` is the base64 body of the ``whsec_…`` secret. Tests verify with the ``standardwebhooks``
package, not with this module, so a mistake here cannot hide behind a matching mistake in a checker.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from gateway.sinks.spec import SECRET_PREFIX, secret_key


def new_secret() -> str:
    import secrets

    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    mac = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def headers(secret: str, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, msg_id, timestamp, body),
    }
