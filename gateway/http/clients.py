"""Who is calling, by address: the socket's peer, or what a trusted proxy says the client was.

``Forwarded`` (RFC 7239) and ``X-Forwarded-For`` are believed only when the peer itself is in
``GATEWAY_TRUSTED_PROXIES``; then the client is the right-most address in the chain that is not a
trusted proxy (anything left of it could have been written by the client). A spoofed header from any
other peer changes nothing. The address feeds link retrievals, rate limits and download history, and is
stored only as a keyed hash.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from functools import lru_cache

from aiohttp import web

from gateway.http.keys import SETTINGS

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
CLIENT_ADDRESS = web.RequestKey("client_address", str)


@lru_cache(maxsize=8)
def _networks(cidrs: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(c.strip(), strict=False) for c in cidrs if c.strip())


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    text = text.strip().strip('"')
    if text.startswith("["):  # [v6]:port
        text = text[1:].split("]", 1)[0]
    elif text.count(":") == 1:  # v4:port
        text = text.split(":", 1)[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _trusted(address: str, networks: Sequence[Network]) -> bool:
    ip = _ip(address)
    return ip is not None and any(ip in n for n in networks)


def _chain(request: web.Request) -> list[str]:
    """Addresses the proxies reported, left (client side) to right (nearest proxy)."""
    forwarded = request.headers.getall("Forwarded", [])
    if forwarded:
        out = []
        for element in ",".join(forwarded).split(","):
            for pair in element.split(";"):
                key, _, value = pair.strip().partition("=")
                if key.lower() == "for":
                    out.append(value.strip().strip('"'))
        return out
    return [
        a.strip() for a in ",".join(request.headers.getall("X-Forwarded-For", [])).split(",") if a.strip()
    ]


def client_address(request: web.Request) -> str:
    if CLIENT_ADDRESS in request:
        return request[CLIENT_ADDRESS]
    peer = request.remote or "-"
    networks = _networks(tuple(request.app[SETTINGS].trusted_proxies))
    address = peer
    if networks and _trusted(peer, networks):
        for hop in reversed(_chain(request)):
            ip = _ip(hop)
            if ip is None:
                break  # "unknown" or an obfuscated identifier: stop at the last address we can trust
            address = str(ip)
            if not any(ip in n for n in networks):
                break
    request[CLIENT_ADDRESS] = address
    return address
