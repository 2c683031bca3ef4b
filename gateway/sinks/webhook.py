"""Webhooks: one signed POST per attempt (Standard Webhooks), never following redirects.

Only a 2xx answer counts as delivered; anything else (an error status, a timeout, a refused address)
is a failed attempt that the dispatcher retries with backoff. The response body is never read beyond a
small limit and never stored: a receiver's error page is not ours to keep.
"""

from __future__ import annotations

import time
from types import TracebackType
from urllib.parse import urlsplit

import aiohttp

from gateway.config import Settings
from gateway.records import Event, Subscription
from gateway.sinks import Outcome, payload
from gateway.sinks.netguard import GuardedResolver, RefusedAddress, check_target
from gateway.sinks.signing import headers


class WebhookSink:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> WebhookSink:
        resolver = GuardedResolver(allow_private=self.settings.webhook_allow_private)
        connector = aiohttp.TCPConnector(resolver=resolver, limit=64, ttl_dns_cache=10)
        self.session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=self.settings.webhook_timeout),
            headers={"User-Agent": "asset-gateway-webhooks"},
        )
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.session is not None:
            await self.session.close()

    async def send(self, sub: Subscription, event: Event) -> Outcome:
        assert self.session is not None
        body = payload(event)
        hdrs = headers(sub.secret, event.id, int(time.time()), body) | {"Content-Type": "application/json"}
        try:
            check_target(urlsplit(sub.url).hostname or "", allow_private=self.settings.webhook_allow_private)
            async with self.session.post(sub.url, data=body, headers=hdrs, allow_redirects=False) as resp:
                await resp.content.read(4096)
                if 200 <= resp.status < 300:
                    return Outcome(True, resp.status)
                return Outcome(False, resp.status, f"HTTP {resp.status}")
        except RefusedAddress as exc:
            return Outcome(False, error=str(exc)[:200])
        except aiohttp.ClientConnectorError as exc:
            if isinstance(exc.os_error, RefusedAddress):
                return Outcome(False, error=str(exc.os_error)[:200])
            return Outcome(False, error="connection failed")
        except TimeoutError:
            return Outcome(False, error="timed out")
        except aiohttp.ClientError as exc:
            return Outcome(False, error=f"connection error: {type(exc).__name__}")
