"""Scanning and moderation: every new version is scanned after commit; a verdict decides serving.

States of a version (``Version.scan``): ``pending`` (written with the version when scanners are
configured), then ``clean``, ``flagged`` or ``error`` (no verdict could be had: clamd down, too large
for clamd, a moderation service that did not answer). What serving does with them (``check``):
- ``flagged``: never served, on any route (downloads, links, zips, bundles, thumbnails, redirects):
  ``451 content_blocked``. Owners still see the asset's metadata and the scanner's detail.
- with ``scan_required``: ``pending`` → ``409 scan_pending`` and ``error`` → ``503 scan_unavailable``,
  both with ``Retry-After``; without it, both are served (scanning then only reports).
- versions written before scanners were configured (state '') are served as before; re-scan them with
  ``gateway scan --all``.

How scans run: a scan is the delivery of the version's ``asset.created`` / ``asset.version_created``
event to an internal subscription (``internal:scan``), so it inherits the outbox's guarantees (written
with the commit, leased, retried with backoff, never lost across kill -9) instead of re-inventing them.
A scan that ends in ``error`` records the state at once and reports a failed delivery, so it is retried
until ``webhook_retry_for``; ``gateway scan`` runs scans by hand.

Remote scanners get a URL to the bytes that works for ``SOURCE_URL_SECONDS`` and for that one version
(HMAC-signed, ``http/scan_source.py``), served whatever the scan state, never counted.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time

from gateway.errors import Blocked, GatewayError, NotFound, ScanPending
from gateway.ports import BlobReader
from gateway.records import Asset, Event, Subscription, Version
from gateway.scanners import ScanJob, Scanner, Verdict
from gateway.scanners.clamav import ClamAV
from gateway.scanners.moderation import ModerationWebhook
from gateway.service.assets import AssetReader
from gateway.service.context import Backends
from gateway.service.events import Events, asset_data
from gateway.sinks import Outcome

log = logging.getLogger("gateway.scanning")
SOURCE_URL_SECONDS = 900
SUBSCRIPTION = Subscription(
    id="int_scan",
    owner="",
    url="internal:scan",
    secret="",
    types=("asset.created", "asset.version_created"),
    created=0.0,
    description="scanning (internal)",
)


class Scanning:
    def __init__(self, backends: Backends, assets: AssetReader, events: Events) -> None:
        self.b = backends
        self.assets = assets
        self.events = events
        specs = backends.settings.scanners
        self.scanners: list[tuple[Scanner, list[str]]] = [
            (ClamAV(s) if s.kind == "clamav" else ModerationWebhook(s), s.content_types) for s in specs
        ]
        self.enabled = bool(self.scanners)
        self.required = backends.settings.scan_required
        self._key = hmac.new(backends.client_secret, b"scan-source", hashlib.sha256).digest()
        self.base_url = (backends.settings.public_base_url or "").rstrip("/")

    # -- serving ------------------------------------------------------------------------------------
    def initial(self) -> str:
        """The state a new version is written with."""
        return "pending" if self.enabled else ""

    def check(self, version: Version) -> None:
        """Raise when this version may not be served now (see the module docstring)."""
        if version.scan == "flagged":
            raise Blocked("this content was flagged by a scanner and is not served", code="content_blocked")
        if not self.required:
            return
        if version.scan == "pending":
            raise ScanPending("this content is being scanned; try again shortly", retry_after=5)
        if version.scan == "error":
            raise ScanPending(
                "this content could not be scanned yet; try again later",
                retry_after=60,
                status=503,
                code="scan_unavailable",
            )

    # -- the short-lived source URL for remote scanners ---------------------------------------------
    def _sign(self, asset_id: str, version: int, expires: int) -> str:
        msg = f"{asset_id}\n{version}\n{expires}".encode()
        return hmac.new(self._key, msg, hashlib.sha256).hexdigest()

    def source_url(self, asset_id: str, version: int) -> str:
        expires = int(time.time()) + SOURCE_URL_SECONDS
        sig = self._sign(asset_id, version, expires)
        return f"{self.base_url}/scan-source/{asset_id}/{version}?expires={expires}&sig={sig}"

    def verify_source(self, asset_id: str, version: int, expires: int, sig: str) -> bool:
        if expires < time.time() or expires > time.time() + SOURCE_URL_SECONDS + 60:
            return False
        return hmac.compare_digest(self._sign(asset_id, version, expires), sig)

    # -- scanning -----------------------------------------------------------------------------------
    async def scan(self, asset: Asset, version: Version) -> Verdict:
        """Run every scanner that wants this content type; record and announce the verdict."""

        async def open_source() -> BlobReader:
            return await self.assets.open(version)

        async def source_url() -> str:
            return self.source_url(asset.id, version.version)

        job = ScanJob(asset, version, open_source, source_url)
        verdict = Verdict("clean")
        for scanner, types in self.scanners:
            if types and not any(version.content_type.startswith(t) for t in types):
                continue
            found = await scanner.scan(job)
            if found.state == "flagged":
                verdict = found
                break
            if found.state == "error" and verdict.state == "clean":
                verdict = found
        await self.b.catalog.set_scan(asset.id, version.version, verdict.state, verdict.detail)
        data = asset_data(asset, version) | {"scan": verdict.state, "detail": verdict.detail}
        events = [self.events.new("scan.completed", asset.owner, data)]
        if verdict.state == "flagged":
            events.append(self.events.new("scan.flagged", asset.owner, data))
            log.warning("asset %s version %d flagged: %s", asset.id, version.version, verdict.detail)
        await self.events.publish(*events)
        return verdict

    async def handle(self, event: Event) -> Outcome:
        """The internal subscription's sink: one scan per new version, retried while it ends in error."""
        try:
            asset, version = await self.assets.find(
                str(event.data["asset_id"]), int(event.data["version"]), owner=None
            )
        except NotFound:
            return Outcome(True)  # deleted meanwhile: nothing to scan
        except (GatewayError, KeyError, ValueError) as exc:
            return Outcome(False, error=f"scan: {type(exc).__name__}")
        if version.scan in ("clean", "flagged"):
            return Outcome(True)  # already decided (a repeated delivery, or a scan by hand)
        verdict = await self.scan(asset, version)
        if verdict.state == "error":
            return Outcome(False, error=verdict.detail[:200])
        return Outcome(True)
