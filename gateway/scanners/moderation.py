"""A moderation service as a scanner: POST a short-lived URL to the bytes, get a verdict back.

Request (JSON, signed like our webhooks when a secret is configured)::

    {"asset_id": "…", "version": 0, "name": "cat.jpg", "content_type": "image/jpeg", "size": 1234,
     "sha256": "…", "url": "https://gateway/scan-source/…", "url_expires_at": 1796589724}

Answer: ``200 {"verdict": "clean"}`` or ``200 {"verdict": "flagged", "reason": "nsfw"}``. Anything else
(another status, a malformed body, a timeout) is no verdict: state ``error``, and the scan is retried.
The URL works for ``SOURCE_URL_SECONDS`` and only for that version (``http/scan_source.py``).
"""

from __future__ import annotations

import json
import time

import aiohttp

from gateway.scanners import ScanJob, Verdict
from gateway.scanners.spec import ScannerSpec
from gateway.sinks.signing import headers as signed_headers


class ModerationWebhook:
    def __init__(self, spec: ScannerSpec) -> None:
        self.spec = spec
        self.label = spec.label
        assert spec.url is not None
        self.url = spec.url

    async def scan(self, job: ScanJob) -> Verdict:
        v, a = job.version, job.asset
        body = json.dumps(
            {
                "asset_id": a.id,
                "version": v.version,
                "name": a.name,
                "content_type": v.content_type,
                "size": v.size,
                "sha256": v.sha256,
                "url": await job.source_url(),
            }
        ).encode()
        hdrs = {"Content-Type": "application/json"}
        if self.spec.secret is not None:
            msg_id = f"scan_{a.id}_{v.version}_{int(time.time())}"
            hdrs |= signed_headers(self.spec.secret.get_secret_value(), msg_id, int(time.time()), body)
        try:
            timeout = aiohttp.ClientTimeout(total=self.spec.timeout)
            async with (
                aiohttp.ClientSession(timeout=timeout) as http,
                http.post(self.url, data=body, headers=hdrs, allow_redirects=False) as resp,
            ):
                if resp.status != 200:
                    return Verdict("error", f"{self.label}: HTTP {resp.status}")
                answer = json.loads(await resp.content.read(64 * 1024))
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            return Verdict("error", f"{self.label}: {type(exc).__name__}")
        verdict = answer.get("verdict") if isinstance(answer, dict) else None
        reason = str(answer.get("reason", ""))[:200] if isinstance(answer, dict) else ""
        if verdict == "clean":
            return Verdict("clean")
        if verdict == "flagged":
            return Verdict("flagged", f"{self.label}: {reason or 'flagged'}")
        return Verdict("error", f"{self.label}: no verdict in the answer")
