"""Which storage an upload goes to, under which key prefix, and whose quota it counts against.

The rules, in order (docs/storage-topology.md):
1. **profile**: the request's ``profile``, else the principal's (config or JWT claim), else the default.
   Unknown → 400 ``unknown_profile``; not among the principal's / tenant's allowed profiles → 403.
2. **purpose**: the request's ``purpose``, else the default (``general``). Unknown in the profile → 400.
3. **region**, when the purpose names a storage per region: the request's ``region``, else the
   principal's, else the profile's ``default_region``. A region the profile does not have → 400.
4. **tenant** (principal config or JWT claim): a tenant with its own storage puts everything there (a
   customer's bucket); its prefix (default ``tenants/<name>/`` in a shared storage) prefixes every key.
Keys are built by the gateway from these validated names and generated ids, never from a file name, so
one tenant can never write under another's prefix. The result is a :class:`Placement`, recorded with
the upload (tus sessions, upload links) so a later request finishes in the same place.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from gateway.auth import Principal
from gateway.config import Settings
from gateway.errors import BadRequest, Forbidden
from gateway.records import Placement
from gateway.topology import DEFAULT, NAME, PURPOSES_BUILTIN, PrincipalSpec, ProfileSpec, Quota, TenantSpec

THUMBNAILS = "thumbnails"


@dataclass(frozen=True)
class Choice:
    """What a request asked for (each None: inherit)."""

    profile: str | None = None
    purpose: str | None = None
    region: str | None = None

    @classmethod
    def of(cls, values: Mapping[str, str | None]) -> Choice:
        """From query parameters, form fields or tus metadata (``profile``, ``purpose``, ``region``)."""
        return cls(values.get("profile"), values.get("purpose"), values.get("region"))


class Placer:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.profiles: dict[str, ProfileSpec] = dict(settings.profiles) or {
            DEFAULT: ProfileSpec(purposes=dict.fromkeys(PURPOSES_BUILTIN, settings.default_storage))
        }

    def spec_of(self, who: Principal) -> PrincipalSpec:
        return self.settings.principals.get(who.id) or PrincipalSpec()

    def tenant_of(self, who: Principal) -> str | None:
        return who.tenant or self.spec_of(who).tenant

    def scope_of(self, who: Principal) -> str:
        """The quota scope of what ``who`` uploads: its tenant's, else its own."""
        tenant = self.tenant_of(who)
        return f"tenant:{tenant}" if tenant else f"owner:{who.id}"

    def place(self, who: Principal, choice: Choice = Choice()) -> Placement:
        spec = self.spec_of(who)
        tenant = who.tenant or spec.tenant
        tspec = self.settings.tenants.get(tenant) if tenant else None
        profile_name = _name("profile", choice.profile) or who.profile or spec.profile
        profile_name = profile_name or self.settings.default_profile
        profile = self.profiles.get(profile_name)
        if profile is None:
            raise BadRequest(f"unknown storage profile {profile_name[:63]!r}", code="unknown_profile")
        for allowed in (spec.profiles, tspec.profiles if tspec else None):
            if allowed is not None and profile_name not in allowed:
                raise Forbidden(
                    f"not allowed to use storage profile {profile_name!r}", code="profile_forbidden"
                )
        purpose = _name("purpose", choice.purpose) or self.settings.default_purpose
        target = profile.purposes.get(purpose)
        if target is None:
            raise BadRequest(f"profile {profile_name!r} has no purpose {purpose!r}", code="unknown_purpose")
        regions = profile.regions()
        region = _name("region", choice.region)
        if region is not None and region not in regions:
            raise BadRequest(f"profile {profile_name!r} has no region {region!r}", code="unknown_region")
        if region is None:
            inherited = who.region or spec.region
            region = inherited if inherited in regions else profile.default_region
        if isinstance(target, str):
            storage = target
        else:
            found = target.get(region or "")
            if found is None:
                raise BadRequest(
                    f"purpose {purpose!r} is not stored in region {region!r}", code="unknown_region"
                )
            storage = found
        return self._tenanted(Placement(storage=storage, scope=f"owner:{who.id}"), tenant, tspec)

    def thumbnails_of(self, placement: Placement, profile: str | None = None) -> Placement:
        """Derived data (thumbnails) of an upload: the profile's ``thumbnails`` purpose, same tenant."""
        prof = self.profiles.get(profile or self.settings.default_profile)
        target = prof.purposes.get(THUMBNAILS) if prof else None
        if not isinstance(target, str) or placement.scope.startswith("tenant:"):
            return placement  # regional or tenant-owned: stay beside the original
        return Placement(storage=target, prefix=placement.prefix, scope=placement.scope)

    @staticmethod
    def _tenanted(placement: Placement, tenant: str | None, tspec: TenantSpec | None) -> Placement:
        if tenant is None:
            return placement
        own = tspec.storage if tspec else None
        prefix = tspec.prefix if tspec and tspec.prefix is not None else ("" if own else f"tenants/{tenant}/")
        return Placement(storage=own or placement.storage, prefix=prefix, scope=f"tenant:{tenant}")

    def quota_of(self, scope: str) -> Quota:
        """Limits of a quota scope: the tenant's, else the principal's, else the deployment default."""
        kind, _, name = scope.partition(":")
        found: TenantSpec | PrincipalSpec | None
        found = self.settings.tenants.get(name) if kind == "tenant" else self.settings.principals.get(name)
        default = Quota(max_bytes=self.settings.quota_max_bytes, max_assets=self.settings.quota_max_assets)
        if found is None:
            return default
        return Quota(
            max_bytes=found.max_bytes if found.max_bytes is not None else default.max_bytes,
            max_assets=found.max_assets if found.max_assets is not None else default.max_assets,
        )


def _name(kind: str, value: str | None) -> str | None:
    if value is None or value == "":
        return None
    if not NAME.match(value):
        raise BadRequest(f"invalid {kind} name", code=f"unknown_{kind}")
    return value
