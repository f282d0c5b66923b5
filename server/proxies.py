"""What a request's proxy headers may be believed for.

With ``MAEUL_TRUST_PROXY`` a TLS-terminating proxy (nginx) in front of Maeul says, in
X-Forwarded-For and X-Forwarded-Proto, who the client is and whether it came over https. Those
headers are believed only from a peer in ``MAEUL_TRUSTED_PROXIES``: anyone else could write them.
"""

from __future__ import annotations

import ipaddress

from aiohttp import web

from server.config import IpNetwork
from server.keys import SETTINGS


def via_trusted_proxy(request: web.Request) -> bool:
    """Whether the request came through a proxy whose forwarding headers are believed."""
    settings = request.app[SETTINGS]
    return settings.trust_proxy and _is_trusted(request.remote or "", settings.trusted_proxies)


def client_address(request: web.Request) -> str:
    """The address of the client, for throttles and logs.

    Without ``trust_proxy`` it is the TCP peer. With it, and only when the peer is itself a
    trusted proxy, X-Forwarded-For is read right to left (each proxy appends the address it saw)
    and the first entry that is not a trusted proxy is the client: entries further left were
    written by the client and could be anything, so taking the leftmost (as before) let anyone
    pick the address a login limit counted."""
    peer = request.remote or "unknown"
    settings = request.app[SETTINGS]
    if not via_trusted_proxy(request):
        return peer
    hops = [hop.strip() for line in request.headers.getall("X-Forwarded-For", []) for hop in line.split(",")]
    client = peer
    for hop in reversed(hops):
        if not _is_trusted(hop, settings.trusted_proxies):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                # Garbage where a trusted proxy should have written an address: keep the last
                # trusted hop rather than believe it.
                return client
        client = hop
    return client


def _is_trusted(address: str, networks: tuple[IpNetwork, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)
