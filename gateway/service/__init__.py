"""The gateway's rules, one module per concern, each written against the ports (never HTTP, never an SDK).

    params.py     what a request may ask for: expiry, limits, retention (the one parser of each)
    context.py    Backends: the store, the catalog and their declared capabilities and limits
    assets.py     finding, listing, describing and reading assets (ownership lives here)
    uploads.py    stage bytes, commit the catalog change, new versions; nothing half-visible
    resumable.py  tus uploads: leases, checkpoints, completion into an asset, concatenation, expiry
    upload_links.py  links anyone can upload through: limits claimed before bytes, owner's assets
    tokens.py     minting, resolving, admitting / settling downloads, revoking, redirects
    passwords.py  password-protected links: argon2id, throttled guessing
    zips.py       resolving zip members and bundle links
    retention.py  deletion, expiry and the sweeper
    download_history.py  link download history, written in batches behind the responses
    health.py     backend health, probed at most once per interval however often it is asked
    placement.py  which storage (profile × purpose × region, tenant) an upload goes to
    quotas.py     stored bytes and assets per owner / tenant: hold before, settle after the commit
    events.py     event types and payloads; events ride on the catalog write of their change (outbox)
    webhooks.py   subscriptions: the operator's (config) and each owner's (/webhooks)
    dispatch.py   the dispatcher every process runs: lease, fan out, deliver, back off
    thumbnails.py presets after each image upload, other sizes on demand, stored once, purged
    scanning.py   scan states, what serving does with them, scans run as internal event deliveries
    backups.py    continuous copies to a storage's backup (internal deliveries), read failover
    transfers.py  jobs copying assets or raw keys to target storages (templates, expiry, delete source)

:class:`Services` bundles them for the HTTP layer, which reaches it through one typed app key.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from gateway.service.assets import AssetReader
from gateway.service.backups import SUBSCRIPTION as BACKUP_SUBSCRIPTION
from gateway.service.backups import Backups
from gateway.service.context import Backends
from gateway.service.events import Events
from gateway.service.health import HealthProbe
from gateway.service.params import Params
from gateway.service.passwords import LinkPasswords
from gateway.service.placement import Placer
from gateway.service.quotas import Quotas
from gateway.service.resumable import Resumable
from gateway.service.retention import Retention
from gateway.service.scanning import SUBSCRIPTION as SCAN_SUBSCRIPTION
from gateway.service.scanning import Scanning
from gateway.service.thumbnails import Thumbnails
from gateway.service.tokens import Tokens
from gateway.service.transfers import SUBSCRIPTION as TRANSFER_SUBSCRIPTION
from gateway.service.transfers import Transfers
from gateway.service.upload_links import UploadLinkService
from gateway.service.uploads import Uploads
from gateway.service.webhooks import Webhooks
from gateway.service.zips import Zips


@dataclass(frozen=True)
class Services:
    backends: Backends
    params: Params
    assets: AssetReader
    uploads: Uploads
    resumable: Resumable
    upload_links: UploadLinkService
    tokens: Tokens
    passwords: LinkPasswords
    zips: Zips
    retention: Retention
    health: HealthProbe
    placer: Placer
    quotas: Quotas
    events: Events
    webhooks: Webhooks
    thumbnails: Thumbnails
    scanning: Scanning
    backups: Backups
    transfers: Transfers

    async def close(self) -> None:
        """Write what waits to be written (the download history's last batch)."""
        await self.tokens.recorder.close()
        await self.thumbnails.close()

    @classmethod
    def of(cls, backends: Backends, *, on_sweep_failure: Callable[[], None] | None = None) -> Services:
        params = Params(backends.settings)
        events = Events(backends)
        assets = AssetReader(backends)
        tokens = Tokens(backends, assets, events)
        placer = Placer(backends.settings)
        quotas = Quotas(backends, placer, backends.quota_ledger)
        uploads = Uploads(backends, assets, tokens, quotas, events)
        scanning = Scanning(backends, assets, events)
        uploads.initial_scan = scanning.initial()
        resumable = Resumable(backends, uploads, assets)
        retention = Retention(backends, assets, quotas, events, on_failure=on_sweep_failure)
        retention.also += [resumable.sweep_once, quotas.reconcile]
        thumbnails = Thumbnails(backends, assets, placer, events)
        uploads.after_commit.append(thumbnails.committed)
        retention.derived.append(thumbnails.forget_asset)
        backups = Backups(backends, assets)
        retention.derived.append(backups.forget_asset)
        internal = [SCAN_SUBSCRIPTION] if scanning.enabled else []
        internal += [BACKUP_SUBSCRIPTION] if backups.enabled else []
        internal += [TRANSFER_SUBSCRIPTION] if backends.jobs is not None else []
        return cls(
            backends=backends,
            params=params,
            assets=assets,
            uploads=uploads,
            resumable=resumable,
            upload_links=UploadLinkService(backends),
            tokens=tokens,
            passwords=LinkPasswords(backends),
            zips=Zips(backends, assets, tokens, scanning),
            retention=retention,
            health=HealthProbe(
                [lambda: backends.catalog.ping()],  # looked up per probe (tests replace methods)
                ttl=backends.settings.health_cache_seconds,
                storages=lambda: backends.storages.ping_each(),
                critical=backends.storages.default,
                workers=events.backlog if events.possible else None,
            ),
            placer=placer,
            quotas=quotas,
            events=events,
            webhooks=Webhooks(backends, events, internal=internal),
            thumbnails=thumbnails,
            scanning=scanning,
            backups=backups,
            transfers=Transfers(backends, assets, retention, events),
        )
