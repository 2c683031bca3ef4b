"""Which addresses the gateway may send webhooks to (SSRF): decided per resolved address, at send time.

An owner chooses a webhook URL; without this, ``http://169.254.169.254/…`` would make the gateway read
the cloud's instance metadata (credentials) and ``http://10.0.0.5/admin`` would reach the private
network. Checking the name once at subscription time is not enough (DNS may answer differently later:
rebinding), so the HTTP sink resolves through :class:`GuardedResolver`, which drops refused addresses,
and literal IPs are checked before connecting. Link-local addresses (the metadata endpoints live there)
are refused always; loopback and private networks only unless ``webhook_allow_private``.
"""

from __future__ import annotations

import ipaddress
import socket

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

IP = ipaddress.IPv4Address | ipaddress.IPv6Address
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_METADATA = {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}


class RefusedAddress(OSError):
    """The target resolves only to addresses webhooks may not reach."""


def allowed(ip: IP, *, allow_private: bool) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip in _METADATA or ip.is_link_local or ip.is_multicast or ip.is_unspecified or ip.is_reserved:
        return False
    if ip.is_loopback or ip.is_private or (isinstance(ip, ipaddress.IPv4Address) and ip in _CGNAT):
        return allow_private
    return ip.is_global


def literal(host: str) -> IP | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


class GuardedResolver(AbstractResolver):
    def __init__(self, *, allow_private: bool) -> None:
        self.inner = DefaultResolver()
        self.allow_private = allow_private

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found = await self.inner.resolve(host, port, family)
        ok = [r for r in found if allowed(ipaddress.ip_address(r["host"]), allow_private=self.allow_private)]
        if not ok:
            raise RefusedAddress(f"{host} resolves to no address webhooks may reach")
        return ok

    async def close(self) -> None:
        await self.inner.close()


def check_target(host: str, *, allow_private: bool) -> None:
    """A URL's host, if it is an IP literal, must be allowed (names are checked as they resolve)."""
    ip = literal(host)
    if ip is not None and not allowed(ip, allow_private=allow_private):
        raise RefusedAddress(f"{host} is not an address webhooks may reach")
    if host.lower() in ("localhost", "localhost.localdomain") and not allow_private:
        raise RefusedAddress("localhost is not an address webhooks may reach")
