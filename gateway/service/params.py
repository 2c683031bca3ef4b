"""What a request may ask for: token lifetimes and limits, asset retention. Parsed once, here.

Every upload path (query string, form fields, JSON, later tus metadata) hands its raw strings to these
functions, so "what does expiry=… mean" has one answer. Values are validated even when they would not
be used, and a link parameter without ``token`` means the client wants a link: it is minted rather than
silently ignored; ``token=0`` together with link parameters is a contradiction and refused.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.config import Settings
from gateway.durations import DurationError, is_decimal, parse_duration
from gateway.errors import BadRequest

_YES = ("1", "true", "yes", "on")
_NO = ("0", "false", "no", "off")


@dataclass(frozen=True)
class TokenRequest:
    expiry_seconds: int
    max_downloads: int | None
    password_hash: str | None = None  # set by LinkPasswords.protect


class Params:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def expiry(self, raw: str | None) -> int:
        if raw is None or raw == "":
            return self.settings.default_token_expiry
        return self._duration(raw, "expiry", self.settings.max_token_expiry)

    def max_downloads(self, raw: str | int | None) -> int | None:
        if raw is None or raw == "":
            return None
        text = str(raw).strip()
        limit = self.settings.max_downloads_limit
        if not is_decimal(text) or len(text) > 12 or not 1 <= int(text) <= limit:
            raise BadRequest(
                f"max_downloads must be an integer from 1 to {limit}", code="invalid_max_downloads"
            )
        return int(text)

    def token_request(
        self,
        want: str | None,
        expiry: str | None,
        max_downloads: str | int | None,
        password: str | None = None,
    ) -> TokenRequest | None:
        """Whether to mint a link with an upload, and with what limits (validated either way)."""
        flag = (want or "").strip().lower()
        if flag not in ("", *_YES, *_NO):
            raise BadRequest("token must be 1/true or 0/false", code="invalid_token_flag")
        req = self.mint_request(expiry, max_downloads)
        asks_for_link = any(v not in (None, "") for v in (expiry, max_downloads, password))
        if flag in _NO and asks_for_link:
            raise BadRequest(
                "expiry/max_downloads/password describe a link, but token=0 asks for none",
                code="invalid_token_flag",
            )
        return req if flag in _YES or (flag == "" and asks_for_link) else None

    def mint_request(self, expiry: str | int | None, max_downloads: str | int | None) -> TokenRequest:
        """Parameters of a token that is always wanted (minting endpoints, bundles)."""
        return TokenRequest(
            self.expiry(None if expiry is None else str(expiry)), self.max_downloads(max_downloads)
        )

    def retention(self, raw: str | None) -> int | None:
        """``expires``: how long the asset itself lives (None: until deleted). Same formats as expiry."""
        if raw is None or raw == "":
            return None
        return self._duration(raw, "expires", self.settings.max_asset_retention)

    @staticmethod
    def _duration(raw: str, what: str, maximum: int) -> int:
        try:
            seconds = parse_duration(raw)
        except DurationError as exc:
            raise BadRequest(f"invalid {what} {raw[:40]!r}: {exc}", code=f"invalid_{what}") from None
        if seconds > maximum:
            raise BadRequest(f"{what} exceeds the maximum of {maximum} seconds", code=f"invalid_{what}")
        return seconds
