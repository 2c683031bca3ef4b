"""One HTTP session to the gateway, and every failure as one line a person can act on.

Exit codes (documented in docs/client.md): 1 failed, 2 usage, 3 credentials refused (401/403),
4 unknown or gone (404/410), 5 server unreachable, 130 interrupted. The message says what the server
said (its JSON error's code and message), never a traceback, never the credential.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import aiohttp

from gateway.client.config import ClientConfig

EXIT_FAILED, EXIT_USAGE, EXIT_AUTH, EXIT_GONE, EXIT_UNREACHABLE, EXIT_INTERRUPTED = 1, 2, 3, 4, 5, 130


class ClientError(Exception):
    def __init__(self, message: str, code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


_MEANING = {
    401: "unauthorized",
    403: "forbidden",
    404: "not found: check the link or id",
    410: "gone: the link expired, was used up or revoked",
    429: "too many requests: wait a minute",
}


def status_error(status: int, text: str, what: str) -> ClientError:
    """A ClientError for an unexpected answer, with the server's own words when it gave JSON."""
    detail = ""
    try:
        body = json.loads(text)
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, dict):
            detail = f"{error.get('code', '')}: {error.get('message', '')}"
    except ValueError:
        pass
    if not detail and text.strip():
        detail = text.strip().splitlines()[0][:200]
    detail = detail or _MEANING.get(status, "")
    code = {401: EXIT_AUTH, 403: EXIT_AUTH, 404: EXIT_GONE, 410: EXIT_GONE}.get(status, EXIT_FAILED)
    hint = " (set GATEWAY_API_KEY or --api-key)" if status == 401 else ""
    return ClientError(f"{what}: HTTP {status}" + (f" {detail}" if detail else "") + hint, code)


class Api:
    def __init__(self, config: ClientConfig) -> None:
        self.config = config
        self.server = config.server
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=15, sock_read=120)
        self.session = aiohttp.ClientSession(timeout=timeout, auto_decompress=False)

    async def __aenter__(self) -> Api:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.session.close()

    def url(self, path: str) -> str:
        return path if path.startswith(("http://", "https://")) else self.server + path

    def headers(self, extra: Mapping[str, str] | None = None, *, auth: bool = True) -> dict[str, str]:
        h = {"User-Agent": "gateway-client/1"}
        if auth and self.config.api_key:
            h["Authorization"] = f"Bearer {self.config.api_key}"
        return h | dict(extra or {})

    async def json(self, method: str, path: str, body: Any = None, *, what: str) -> dict[str, Any]:
        try:
            async with self.session.request(
                method, self.url(path), json=body, headers=self.headers()
            ) as resp:
                text = await resp.text()
                if resp.status >= 300:
                    raise status_error(resp.status, text, what)
                return json.loads(text) if text else {}
        except aiohttp.ClientConnectionError as exc:
            raise unreachable(self.server, exc) from None


def unreachable(server: str, exc: BaseException) -> ClientError:
    reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return ClientError(f"cannot reach {server}: {reason}", EXIT_UNREACHABLE)
