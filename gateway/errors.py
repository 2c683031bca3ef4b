"""Failure kinds shared by the service and its backends.

Each kind carries the HTTP status the contract gives it, so a backend or the service can fail precisely
without knowing anything about aiohttp; the HTTP layer renders them all as one JSON shape.
"""

from __future__ import annotations

from typing import Any


class GatewayError(Exception):
    status = 500
    code = "internal"
    closes_connection = False  # the rest of the request cannot be read: answer, then hang up
    details: dict[str, Any] = {}  # extra fields of the JSON error (quota figures); never secrets

    def headers(self) -> dict[str, str]:
        """Response headers this failure needs (WWW-Authenticate, Retry-After, Content-Range…)."""
        return {}

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class Forbidden(GatewayError):
    status = 403
    code = "forbidden"


class BadRequest(GatewayError):
    status = 400
    code = "bad_request"


class ChecksumMismatch(BadRequest):
    code = "checksum_mismatch"


class ChunkChecksumMismatch(GatewayError):
    """tus's checksum extension gives a mismatching chunk its own status, 460."""

    status = 460
    code = "checksum_mismatch"


class Unauthorized(GatewayError):
    status = 401
    code = "unauthorized"

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": 'Bearer realm="gateway"'}


class PasswordRequired(GatewayError):
    """A password-protected link without (the right) password: HTTP Basic, any user name."""

    status = 401
    code = "password_required"

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": 'Basic realm="share", charset="UTF-8"'}


class TooManyRequests(GatewayError):
    status = 429
    code = "too_many_requests"

    def __init__(self, message: str, *, retry_after: int, code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.retry_after = max(1, retry_after)

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class ScanPending(GatewayError):
    """Scanning is required and this version has no verdict yet (pending), or none could be had (error)."""

    status = 409
    code = "scan_pending"

    def __init__(
        self, message: str, *, retry_after: int = 5, status: int = 409, code: str | None = None
    ) -> None:
        super().__init__(message, code=code)
        self.retry_after = retry_after
        self.status = status

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class Blocked(GatewayError):
    """A scanner flagged this content: it is never served (RFC 7725)."""

    status = 451
    code = "content_blocked"


class NotFound(GatewayError):
    status = 404
    code = "not_found"


class Conflict(GatewayError):
    status = 409
    code = "conflict"


class PreconditionFailed(GatewayError):
    status = 412
    code = "precondition_failed"


class Gone(GatewayError):
    status = 410
    code = "gone"


class RequestTimeout(GatewayError):
    """The client stopped sending its request body."""

    status = 408
    code = "request_timeout"
    closes_connection = True


class LengthRequired(GatewayError):
    status = 411
    code = "length_required"


class PayloadTooLarge(GatewayError):
    status = 413
    code = "payload_too_large"


class QuotaExceeded(PayloadTooLarge):
    code = "quota_exceeded"

    def __init__(self, message: str, *, used: dict[str, int], allowed: dict[str, int | None]) -> None:
        super().__init__(message)
        self.details = {"used": used, "allowed": allowed}


class UnsupportedMediaType(GatewayError):
    status = 415
    code = "unsupported_media_type"


class Unprocessable(GatewayError):
    """Well-formed, but its content cannot be processed (an image that is no image, or too big)."""

    status = 422
    code = "unprocessable"


class ExpectationFailed(GatewayError):
    status = 417
    code = "expectation_failed"


class RangeNotSatisfiable(GatewayError):
    status = 416
    code = "range_not_satisfiable"

    def __init__(self, message: str, *, size: int) -> None:
        super().__init__(message)
        self.size = size

    def headers(self) -> dict[str, str]:
        return {"Content-Range": f"bytes */{self.size}"}


class StorageError(GatewayError):
    """The blob store failed or could not be reached."""

    status = 502
    code = "storage_error"


class CatalogError(GatewayError):
    """The catalog failed or could not be reached."""

    status = 503
    code = "catalog_unavailable"


class ClientGone(BadRequest):
    """The request body broke off (client disconnected or sent a truncated body)."""

    code = "incomplete_body"
